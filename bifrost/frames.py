"""Every pandas object bifrost hands out is built here (tz-aware UTC, units and addresses kept).

One set of conversions serves reads and recordings, so a tag looks the same wherever it
comes from: times are a UTC ``DatetimeIndex``, quality is one categorical of the
:class:`~bifrost.model.Quality` names, wide columns of bool and integer tags are
nullable (``boolean``, ``Int64``), and value cells of tidy frames are plain Python
objects with ``None`` where there is no value.
"""

from __future__ import annotations

import importlib
from collections.abc import Hashable, Iterator, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from bifrost import _extras
from bifrost.model import Quality, Tag
from bifrost.results import ReadResult

__all__ = [
    "EVENT_COLUMNS",
    "QUALITY_CATEGORIES",
    "ReadLayout",
    "events_frame",
    "history_frame",
    "long_frame",
    "quality_categorical",
    "quality_frame",
    "read_frame",
    "typed_column",
    "utc_index",
    "value_cells",
    "wide_frame",
]

QUALITY_CATEGORIES = [q.name.lower() for q in Quality]
# Maps every uint8 code to its category index; unknown codes count as plain "bad".
_CODE_TO_CATEGORY = np.full(256, QUALITY_CATEGORIES.index("bad"), dtype=np.int8)
_QUALITY_DTYPE = pd.CategoricalDtype(QUALITY_CATEGORIES)
for _i, _q in enumerate(Quality):
    _CODE_TO_CATEGORY[_q.value] = _i


def quality_categorical(codes: npt.NDArray[np.uint8]) -> pd.Categorical:
    """Readable quality names (``good``, ``bad_timeout``...) for an array of codes."""
    return pd.Categorical.from_codes(_CODE_TO_CATEGORY[codes], dtype=_QUALITY_DTYPE)


def utc_index(times_ns: npt.NDArray[np.int64], name: str | None = "time") -> pd.DatetimeIndex:
    """Times in ns since the epoch as a UTC ``DatetimeIndex`` (no copy)."""
    return pd.DatetimeIndex(np.asarray(times_ns).view("datetime64[ns]"), tz="UTC", name=name)


def typed_column(column: npt.NDArray[Any], dtype: str) -> Any:
    """A recorded column in the pandas type of its tag's data type.

    Samples are recorded as float64 with NaN for "no value"; nullable pandas arrays keep
    bools and integers exact while those rows stay missing. Object columns (strings,
    arrays) are returned as they are.
    """
    if column.dtype.kind != "f":
        return column
    missing = np.isnan(column)
    if dtype == "bool":
        return pd.arrays.BooleanArray(np.nan_to_num(column) != 0, missing)
    if dtype.startswith(("int", "uint")):
        return pd.arrays.IntegerArray(np.nan_to_num(column).astype(np.int64), missing)
    return column


def value_cells(column: npt.NDArray[Any], dtype: str) -> npt.NDArray[np.object_]:
    """The values of a recorded column as Python objects (``None`` where missing).

    The cells hold what :func:`typed_column` holds (``True``, ``7``, ``2.5``), the same
    Python types a read's ``value`` column has.
    """
    typed = typed_column(column, dtype)
    if isinstance(typed, pd.arrays.BooleanArray | pd.arrays.IntegerArray):
        cells = typed.to_numpy(dtype=object)
        cells[typed.isna()] = None  # pd.NA would be a third kind of "no value"
        return np.asarray(cells)
    if typed.dtype == object:
        return np.asarray(typed)
    out = typed.astype(object)
    out[np.isnan(typed)] = None
    return np.asarray(out)


def _value_quality_time(
    values: npt.NDArray[np.object_], quality: npt.NDArray[np.uint8], times_ns: Any, time: str
) -> dict[str, Any]:
    # The columns a read and a tidy recording share, in the order both show them.
    return {
        "value": values,
        "quality": quality_categorical(quality),
        time: utc_index(np.asarray(times_ns, dtype=np.int64), name=None),
    }


def _blocks_constructor() -> Any:
    # pandas >= 3.0: a frame from ready-made blocks, without the constructor's inference.
    try:
        return importlib.import_module("pandas.api.internals").create_dataframe_from_blocks
    except (ImportError, AttributeError):  # pragma: no cover - pandas 2.x
        return None


_from_blocks = _blocks_constructor()

_READ_COLUMNS = pd.Index(["value", "quality", "timestamp", "unit", "address"])
_PLACEMENT = [np.array([i], dtype=np.intp) for i in range(len(_READ_COLUMNS))]
_UTC = pd.DatetimeTZDtype("ns", "UTC")


def _utc_array(times_ns: npt.NDArray[np.int64]) -> Any:
    # The timestamp column without a DatetimeIndex built and taken apart per read
    # (~20 us). _simple_new is pandas' own no-check constructor; the public route is
    # the fallback should it ever go.
    values = np.asarray(times_ns, dtype=np.int64).view("datetime64[ns]")
    simple_new = getattr(pd.arrays.DatetimeArray, "_simple_new", None)
    if simple_new is not None:
        return simple_new(values, dtype=_UTC)
    return pd.array(values, dtype=_UTC)  # pragma: no cover


class ReadLayout:
    """The per-tag columns of a read's DataFrame, built once per tag list and reused.

    Built lazily: a plan compiled for a recording never builds a read's frame.
    """

    __slots__ = ("_addresses", "_index", "_tags", "_units")

    def __init__(self, tags: Sequence[Tag]) -> None:
        self._tags = tags
        self._index: pd.Index | None = None
        self._units: Any = None
        self._addresses: Any = None

    @property
    def index(self) -> pd.Index:
        """The tag names, the frame's index."""
        if self._index is None:
            self._index = pd.Index([t.name for t in self._tags], name="tag", dtype="str")
        return self._index

    @property
    def units(self) -> Any:
        """The unit column."""
        if self._units is None:
            self._units = pd.array([t.unit for t in self._tags], dtype="str")
        return self._units

    @property
    def addresses(self) -> Any:
        """The address column."""
        if self._addresses is None:
            self._addresses = pd.array([t.address for t in self._tags], dtype="str")
        return self._addresses


def read_frame(result: ReadResult, layout: ReadLayout) -> pd.DataFrame:
    """One row per tag: value, quality, timestamp (UTC), unit, address; indexed by tag.

    The five columns go in as the frame's blocks, the per-tag ones cached in ``layout``:
    the DataFrame constructor's inference and consolidation cost ~0.25 ms per read,
    more than a short read's round trip.
    """
    values = result.values()
    quality = pd.Categorical.from_codes(
        _CODE_TO_CATEGORY[result.quality], dtype=_QUALITY_DTYPE, validate=False
    )
    timestamps = _utc_array(result.timestamp_ns)
    if _from_blocks is None:  # pragma: no cover - pandas 2.x
        columns = {"value": values, "quality": quality, "timestamp": timestamps}
        columns["unit"] = layout.units
        columns["address"] = layout.addresses
        return pd.DataFrame(columns, index=layout.index, copy=False)
    place = _PLACEMENT
    blocks = [
        (values.reshape(1, -1), place[0]),
        (quality, place[1]),
        (timestamps, place[2]),
        # Copies of the cached arrays: a frame's cells are its own (blocks put together
        # here are not tracked by copy-on-write). Arrow-backed, a copy is ~1 us.
        (layout.units.copy(), place[3]),
        (layout.addresses.copy(), place[4]),
    ]
    frame: pd.DataFrame = _from_blocks(blocks, index=layout.index, columns=_READ_COLUMNS)
    return frame


def history_frame(result: ReadResult) -> pd.DataFrame:
    """Stored values (a history read): UTC index ``time``; tag, value, quality per row.

    ``result`` has one row per value, ``result.tags[k]`` the tag of row ``k``; rows are
    sorted by time, then by the tags' order in the request.
    """
    order = np.lexsort((np.asarray(result.indices), result.timestamp_ns))
    frame = pd.DataFrame(
        {
            "tag": pd.array([t.name for t in result.tags], dtype="str"),
            "value": result.values(),
            "quality": quality_categorical(result.quality),
        },
        index=utc_index(result.timestamp_ns),
    )
    return frame.iloc[order]


EVENT_COLUMNS = [
    "time",
    "source",
    "severity",
    "message",
    "event_type",
    "condition",
    "active",
    "acked",
    "confirmed",
    "retain",
    "event_id",
]


def events_frame(rows: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """Events (alarms) as one row each; columns :data:`EVENT_COLUMNS`, ``time`` in UTC."""
    frame = pd.DataFrame.from_records(list(rows), columns=EVENT_COLUMNS)
    times = [row.get("time_ns") for row in rows]
    frame["time"] = utc_index(np.asarray([t or 0 for t in times], dtype=np.int64), name=None)
    frame["severity"] = frame["severity"].astype("Int64")
    for state in ("active", "acked", "confirmed", "retain"):
        frame[state] = frame[state].astype("boolean")
    return frame


def long_frame(
    times_ns: npt.NDArray[np.int64],
    names: Sequence[str],
    columns: Sequence[npt.NDArray[Any]],
    quality: npt.NDArray[np.uint8],
    dtypes: Sequence[str],
) -> pd.DataFrame:
    """Tidy: one row per (time, tag) with value and quality, sorted by time then tag."""
    n = len(times_ns)
    if not names:
        return pd.DataFrame(columns=["time", "tag", "value", "quality"])
    blocks = []
    for j, (name, column, dtype) in enumerate(zip(names, columns, dtypes, strict=True)):
        shared = _value_quality_time(value_cells(column, dtype), quality[:, j], times_ns, "time")
        blocks.append(
            pd.DataFrame(
                {
                    "time": shared["time"],
                    "tag": np.full(n, name, dtype=object),
                    "value": shared["value"],
                    "quality": shared["quality"],
                }
            )
        )
    tidy = pd.concat(blocks, ignore_index=True).sort_values(["time", "tag"], kind="stable")
    return tidy.reset_index(drop=True)


def wide_frame(
    times_ns: npt.NDArray[np.int64],
    names: Sequence[str],
    dtypes: Sequence[str],
    numbers: npt.NDArray[np.float64],
    numeric_index: npt.NDArray[np.intp],
    objects: npt.NDArray[np.object_],
    object_index: npt.NDArray[np.intp],
    attrs: dict[Hashable, Any] | None = None,
) -> pd.DataFrame:
    """A UTC ``DatetimeIndex`` and one typed column per tag, in the order of ``names``.

    ``numbers`` holds the numeric tags (columns at ``numeric_index`` of ``names``),
    ``objects`` the others (at ``object_index``).
    """
    index = utc_index(times_ns)
    floats = [j for j, i in enumerate(numeric_index) if dtypes[i].startswith("float")]
    # Float tags go in as one 2-D block (no per-column copies); the others need
    # nullable or object columns of their own, converted together as one block.
    extra: dict[str, Any] = dict(_nullable_columns(numbers, numeric_index, names, dtypes, floats))
    for j, i in enumerate(object_index):
        extra[names[i]] = objects[:, j]
    if not floats:
        frame = pd.DataFrame({n: extra[n] for n in names}, index=index, copy=False)
    else:
        block = numbers if len(floats) == len(numeric_index) else numbers[:, floats]
        frame = pd.DataFrame(
            block, index=index, columns=[names[numeric_index[j]] for j in floats], copy=False
        )
        if extra:
            frame = pd.concat([frame, pd.DataFrame(extra, index=index)], axis=1)
        if list(frame.columns) != list(names):
            frame = frame[list(names)]
    if attrs is not None:
        frame.attrs = attrs
    return frame


def _nullable_columns(
    numbers: npt.NDArray[np.float64],
    numeric_index: npt.NDArray[np.intp],
    names: Sequence[str],
    dtypes: Sequence[str],
    floats: list[int],
) -> Iterator[tuple[str, Any]]:
    """The bool and integer columns of a value block as nullable arrays.

    What :func:`typed_column` makes of each, converted in one step for all of them.
    """
    skip = set(floats)
    others = [j for j in range(len(numeric_index)) if j not in skip]
    if not others:
        return
    # Rows of the transposed block: each tag's values end up contiguous (a block read
    # from a file is column-major already, and taken whole without a copy).
    rows = numbers.T if len(others) == numbers.shape[1] else numbers.T[others]
    missing = np.isnan(rows)
    with np.errstate(invalid="ignore"):  # NaN rows are masked; their cells set to 0 below
        data = rows.astype(np.int64)
    if missing.any():
        data[missing] = 0
    for r, j in enumerate(others):
        i = numeric_index[j]
        if dtypes[i] == "bool":
            yield names[i], pd.arrays.BooleanArray(rows[r] != 0, missing[r])
        elif dtypes[i].startswith(("int", "uint")):
            yield names[i], pd.arrays.IntegerArray(data[r], missing[r])
        else:
            yield names[i], rows[r].copy()


def quality_frame(
    times_ns: npt.NDArray[np.int64], names: Sequence[str], quality: npt.NDArray[np.uint8]
) -> pd.DataFrame:
    """Quality codes as a wide DataFrame of categories (the index of :func:`wide_frame`)."""
    return pd.DataFrame(
        {name: quality_categorical(quality[:, j]) for j, name in enumerate(names)},
        index=utc_index(times_ns),
    )


# pandas is imported now: give its objects the lazy `.bifrost` accessor, whatever order
# bifrost's parts were imported in.
_extras.register_accessor_stubs()
