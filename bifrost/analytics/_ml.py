"""ML-ready features: one row per time window or machine cycle, vibration and process features.

:func:`features` turns a recording into a feature table for scikit-learn and friends;
:mod:`bifrost.analytics.sklearn` wraps the same kernel as a transformer. Both call the
``segment_features`` kernel (Rust, NumPy twin) once per column.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from bifrost.analytics._backend import kernels
from bifrost.analytics._checks import MOMENT_FEATURES
from bifrost.analytics._inputs import is_frame, is_series, pandas
from bifrost.exceptions import ConfigurationError

__all__ = [
    "DEFAULT_BAND_FRACTIONS",
    "FEATURES",
    "band_edges",
    "band_name",
    "check_features",
    "features",
    "moments_and_bands",
]

FEATURES = (*MOMENT_FEATURES, "bands")
"""Names accepted by ``features=``: the moment features, and ``"bands"`` (every band)."""

_DEFAULT = tuple(f for f in FEATURES if f != "count")

DEFAULT_BAND_FRACTIONS = (0.0, 1 / 16, 1 / 8, 1 / 4, 1 / 2, 1.0)
"""Default band edges as fractions of the Nyquist frequency: five octave-like bands.

For the simulated plant's vibration (6400 Hz): 0-200, 200-400, 400-800, 800-1600 and
1600-3200 Hz, so the shaft harmonics fall in the first band and the ringing of a bearing
defect's impacts in the last.
"""

F64 = NDArray[np.float64]


def features(
    data: Any,
    window: Any = None,
    *,
    per: str | None = None,
    tags: Sequence[str] | None = None,
    features: Sequence[str] | None = None,
    bands: Sequence[tuple[float, float]] | None = None,
    fs: float | Mapping[str, float] | None = None,
    block: int = 256,
) -> Any:
    """Vibration and process features of every time window or machine cycle.

    One row per window (or cycle), one column ``"<tag>.<feature>"`` per tag and feature:
    ``count``, ``mean``, ``std`` (population, ddof=0), ``min``, ``max``, ``rms``,
    ``peak`` (largest absolute value), ``crest`` (peak / rms), ``skewness``,
    ``kurtosis`` (both biased; kurtosis in excess, i.e. Fisher's, 0 for Gaussian noise,
    as ``scipy.stats.kurtosis`` by default), ``slope`` (least squares, units per second)
    and band energies ``band_<low>_<high>Hz`` (the power, units squared, in each
    frequency band of the window's mean Hann periodogram; blocks with a gap are left out).
    Missing samples are skipped; a window with none gives NaN. Skewness and kurtosis
    are NaN for a window without spread, and for one whose variance is below ~1.5e-154
    (its third and fourth powers would lose their digits to float underflow).

    Parameters
    ----------
    data : Recording, pandas.DataFrame or pandas.Series
        A recording (its ``to_pandas()`` wide frame is used) or a frame with a
        DatetimeIndex. A column whose cells hold arrays (a waveform, e.g. the plant's
        ``pump.vibration`` recorded over OPC UA) contributes every sample of every row;
        a row equal to the previous one (the same block read twice) is skipped.
    window : str or pandas.Timedelta, optional
        Length of consecutive windows, e.g. ``"10s"``, aligned to multiples of the
        window (``index.floor(window)``); windows without rows are left out. Give either
        `window` or `per`.
    per : str, optional
        A tag that defines machine cycles (a unique last part of a tag name also works:
        ``per="cycle"`` finds ``line.cycle``). A boolean tag starts a cycle at every
        rising edge (False to True); any other tag, e.g. a part counter, starts one
        wherever its value changes. A cycle runs up to the next start; rows before the
        first start and from the last start on are incomplete cycles and left out. The
        result then has a ``duration`` column (seconds to the next start).
    tags : sequence of str, optional
        Columns to describe; by default every numeric and waveform column (booleans
        and text only when named, booleans as 0/1).
    features : sequence of str, optional
        Names from :data:`FEATURES`; by default all but ``count``.
    bands : sequence of (float, float), optional
        Frequency bands ``(low, high)`` in Hz, low included, high excluded (a band
        reaching ``fs / 2`` includes it). By default :data:`DEFAULT_BAND_FRACTIONS` of
        each column's Nyquist frequency.
    fs : float or mapping, optional
        Sampling rate in Hz of the waveform columns (a float applies to all of them), or
        of named columns (a mapping; a plain column named there must be recorded at
        that rate, which its index is checked against). Columns without a rate get no
        band energies.
    block : int
        Samples per FFT block of a plain column given in `fs` (a waveform's block is
        its row).

    Returns
    -------
    pandas.DataFrame
        Indexed by the start of each window or cycle (``"start"``); ``attrs`` say how
        the rows were formed.

    Raises
    ------
    ConfigurationError
        For a missing tag, a bad window, band or rate, or both/neither of `window` and
        `per`.
    """
    pd = _pandas()
    frame = _as_frame(data, pd)
    if (window is None) == (per is None):
        raise ConfigurationError("features() needs either window='10s' or per='<cycle tag>'")
    if not isinstance(frame.index, pd.DatetimeIndex):
        raise ConfigurationError(
            "features() needs a DatetimeIndex (a recording's frame), "
            f"got {type(frame.index).__name__}"
        )
    if not frame.index.is_monotonic_increasing:
        frame = frame.sort_index()
    # Nanoseconds whatever the index's unit (pandas may give microseconds).
    frame = frame.set_axis(frame.index.as_unit("ns"), axis=0)
    wanted = check_features(features)
    ns = frame.index.asi8
    extra: dict[str, F64] = {}
    if window is not None:
        starts, labels = _windows(frame.index, window, pd)
        ends = np.append(starts[1:], len(frame)).astype(np.int64)
        how: dict[str, Any] = {"window": str(pd.Timedelta(window))}
        exclude: str | None = None
    else:
        exclude = _resolve_tag(frame, str(per))
        cycle_starts = _cycle_starts(frame[exclude], pd)
        starts, ends = cycle_starts[:-1], cycle_starts[1:]
        labels = frame.index[starts]
        extra["duration"] = (ns[ends] - ns[starts]) / 1e9 if len(starts) else np.zeros(0)
        how = {"per": exclude}
    names = _select_tags(frame, tags, exclude)
    rates = _rates(fs, names, [n for n in names if _is_waveform(frame[n])])
    if not rates and features is not None and "bands" in wanted:
        raise ConfigurationError(
            "band energies need a sampling rate: pass fs=<Hz> for the waveform columns "
            "(or fs={tag: Hz}), or leave 'bands' out of features"
        )
    columns: dict[str, F64] = dict(extra)
    seconds = (ns - (ns[0] if len(ns) else 0)) / 1e9
    for name in names:
        x, t, scale, rate, column_block = _samples(frame, name, seconds, rates.get(name), block)
        # Windows and cycles are contiguous: segment j is rows starts[j] to starts[j + 1].
        offsets = np.concatenate([starts, ends[-1:]]).astype(np.int64) * scale
        columns.update(
            moments_and_bands(
                x, t, offsets, rate, column_block, bands, wanted, prefix=f"{name}.", what=name
            )
        )
    out = pd.DataFrame(columns, index=pd.DatetimeIndex(labels, name="start"))
    out.attrs = {**how, "tags": list(names), "fs": {k: v for k, v in rates.items() if v}}
    return out


def moments_and_bands(
    x: F64,
    t: F64,
    offsets: NDArray[np.int64],
    fs: float | None,
    block: int,
    bands: Sequence[tuple[float, float]] | None,
    wanted: Sequence[str],
    *,
    prefix: str = "",
    what: str = "the signal",
) -> dict[str, F64]:
    """Run the kernel on one signal's segments; the wanted features by column name.

    Band energies are computed when `fs` is known and ``"bands"`` is wanted.

    Raises
    ------
    ConfigurationError
        If band energies are asked for explicitly and `fs` is missing, or a band is
        invalid for `fs` and `block`.
    """
    spectral = "bands" in wanted and fs is not None
    edges = band_edges(fs, block, bands, what) if spectral and fs is not None else np.zeros((0, 2))
    table = kernels().segment_features(
        x, t, offsets, float(fs or 0.0), block if spectral else 0, edges
    )
    out = {prefix + name: table[:, k] for k, name in enumerate(MOMENT_FEATURES) if name in wanted}
    for k, (low, high) in enumerate(edges):
        out[prefix + band_name(low, high)] = table[:, len(MOMENT_FEATURES) + k]
    return out


def band_name(low: float, high: float) -> str:
    """Column name of a band, e.g. ``band_1600_3200Hz``."""
    return f"band_{low:g}_{high:g}Hz"


def band_edges(
    fs: float, block: int, bands: Sequence[tuple[float, float]] | None, what: str
) -> F64:
    """The ``(n, 2)`` band edges for a signal at `fs` in blocks of `block`, checked.

    Default bands that hold no frequency bin (blocks too short to resolve them) are left
    out; bands given are checked.

    Raises
    ------
    ConfigurationError
        If a band is malformed, starts above the Nyquist frequency or holds no
        frequency bin.
    """
    nyquist = fs / 2.0
    if bands is None:
        fractions = DEFAULT_BAND_FRACTIONS
        pairs = [(a * nyquist, b * nyquist) for a, b in itertools.pairwise(fractions)]
        pairs = [(low, high) for low, high in pairs if _has_bin(fs, block, low, high)]
    else:
        pairs = []
        for band in bands:
            try:
                low, high = (float(v) for v in band)
            except (TypeError, ValueError):
                raise ConfigurationError(
                    f"{what}: a band is a (low, high) pair in Hz, got {band!r}"
                ) from None
            pairs.append((low, high))
    for low, high in pairs:
        if not (math.isfinite(low) and 0 <= low < high):
            raise ConfigurationError(f"{what}: band ({low:g}, {high:g}) Hz needs 0 <= low < high")
        if low >= nyquist:
            raise ConfigurationError(
                f"{what}: band ({low:g}, {high:g}) Hz starts at or above the Nyquist "
                f"frequency {nyquist:g} Hz of fs={fs:g} Hz"
            )
        if not _has_bin(fs, block, low, high):
            raise ConfigurationError(
                f"{what}: band ({low:g}, {high:g}) Hz holds no frequency bin: blocks of "
                f"{block} samples at {fs:g} Hz resolve {fs / block:g} Hz; widen the band"
            )
    return np.array(pairs, dtype=np.float64).reshape(-1, 2)


# -- helpers ----------------------------------------------------------------------------


def _has_bin(fs: float, block: int, low: float, high: float) -> bool:
    """Whether a one-sided spectrum of `block` samples has a bin in the band (as the kernel)."""
    df = fs / block
    frequencies = np.arange(block // 2 + 1) * df
    inside = (frequencies >= low) & ((frequencies < high) | (high >= fs / 2.0))
    return bool(inside.any())


def _pandas() -> Any:
    pd = pandas()
    if pd is None:
        import pandas as pd
    return pd


def _as_frame(data: Any, pd: Any) -> Any:
    if is_frame(data):
        return data
    if is_series(data):
        return data.to_frame()
    to_pandas = getattr(data, "to_pandas", None)
    if callable(to_pandas):
        frame = to_pandas()
        if is_frame(frame):
            return frame
    raise ConfigurationError(
        f"features() takes a Recording or a pandas DataFrame, got {type(data).__name__}"
    )


def check_features(names: Sequence[str] | None) -> tuple[str, ...]:
    """The feature names asked for (all but ``count`` for None), each one checked."""
    if names is None:
        return _DEFAULT
    if isinstance(names, str):
        names = [names]
    unknown = [n for n in names if n not in FEATURES]
    if unknown:
        raise ConfigurationError(
            f"unknown feature(s) {', '.join(map(repr, unknown))}; available: {', '.join(FEATURES)}"
        )
    return tuple(names)


def _windows(index: Any, window: Any, pd: Any) -> tuple[NDArray[np.int64], Any]:
    try:
        width = pd.Timedelta(window)
    except (TypeError, ValueError):
        raise ConfigurationError(
            f"window must be a duration such as '10s', got {window!r}"
        ) from None
    if width <= pd.Timedelta(0):
        raise ConfigurationError(f"window must be a positive duration, got {window!r}")
    if not len(index):
        return np.zeros(0, dtype=np.int64), index[:0]
    step = width.value
    ns = index.asi8
    origin = index[0].floor(width).value
    count = (ns[-1] - origin) // step + 1
    if count <= len(ns):
        # Binary search of every window edge: O(windows log rows), no pass over the rows.
        edges = origin + step * np.arange(count, dtype=np.int64)
        first_rows = np.searchsorted(ns, edges, side="left")
        used = np.flatnonzero(np.diff(np.append(first_rows, len(ns))) > 0)
        starts, first = first_rows[used].astype(np.int64), edges[used]
    else:  # more windows than rows (sparse data): bin the rows instead
        bins = (ns - origin) // step
        starts = np.flatnonzero(np.diff(bins, prepend=bins[0] - 1)).astype(np.int64)
        first = origin + bins[starts] * step
    labels = pd.to_datetime(first, utc=index.tz is not None)
    if index.tz is not None:
        labels = labels.tz_convert(index.tz)
    return starts, labels


def _resolve_tag(frame: Any, name: str) -> str:
    if name in frame.columns:
        return name
    matches = [c for c in frame.columns if str(c).rsplit(".", 1)[-1] == name]
    if len(matches) == 1:
        return str(matches[0])
    hint = f"several match: {', '.join(map(str, matches))}" if matches else "no column matches"
    raise ConfigurationError(
        f"per={name!r}: {hint}; name the cycle tag, one of {', '.join(map(str, frame.columns))}"
    )


def _cycle_starts(column: Any, pd: Any) -> NDArray[np.int64]:
    if pd.api.types.is_bool_dtype(column.dtype):
        on: NDArray[np.bool_] = column.fillna(False).to_numpy(dtype=bool)
        rising: NDArray[np.int64] = np.flatnonzero(on[1:] & ~on[:-1]) + 1
        return rising
    if not pd.api.types.is_numeric_dtype(column.dtype):
        raise ConfigurationError(
            f"per={column.name!r}: a cycle tag is a boolean trigger or a counter, "
            f"got {column.dtype} values"
        )
    values: F64 = column.to_numpy(dtype=np.float64, na_value=np.nan)
    known = np.flatnonzero(~np.isnan(values))
    changed: NDArray[np.int64] = known[1:][values[known[1:]] != values[known[:-1]]]
    return changed


def _is_waveform(column: Any) -> bool:
    if column.dtype != object:
        return False
    first = column.first_valid_index()
    cell = None if first is None else column.loc[first]
    return isinstance(cell, np.ndarray) and cell.ndim == 1 and cell.dtype.kind in "fiu"


def _select_tags(frame: Any, tags: Sequence[str] | None, exclude: str | None) -> list[str]:
    pd = _pandas()
    if tags is None:
        return [
            str(c)
            for c in frame.columns
            if c != exclude
            and (
                (
                    pd.api.types.is_numeric_dtype(frame[c].dtype)
                    and not pd.api.types.is_bool_dtype(frame[c].dtype)
                )
                or _is_waveform(frame[c])
            )
        ]
    if isinstance(tags, str):
        tags = [tags]
    missing = [t for t in tags if t not in frame.columns]
    if missing:
        raise ConfigurationError(
            f"no column {', '.join(map(repr, missing))} in the data; "
            f"available: {', '.join(map(str, frame.columns))}"
        )
    for t in tags:
        column = frame[t]
        if not (pd.api.types.is_numeric_dtype(column.dtype) or _is_waveform(column)):
            raise ConfigurationError(f"{t!r} holds {column.dtype} values, not numbers")
    return list(tags)


def _rates(
    fs: float | Mapping[str, float] | None, names: Sequence[str], waveforms: Sequence[str]
) -> dict[str, float]:
    if fs is None:
        return {}
    if isinstance(fs, Mapping):
        unknown = [k for k in fs if k not in names]
        if unknown:
            raise ConfigurationError(
                f"fs names {', '.join(map(repr, unknown))}, not among the tags described: "
                f"{', '.join(names)}"
            )
        pairs = dict(fs)
    else:
        pairs = {name: fs for name in waveforms}
    rates = {}
    for name, rate in pairs.items():
        value = float(rate)
        if not (math.isfinite(value) and value > 0):
            raise ConfigurationError(f"fs for {name!r} must be a positive rate in Hz, got {rate!r}")
        rates[name] = value
    return rates


def _samples(
    frame: Any, name: str, seconds: F64, fs: float | None, block: int
) -> tuple[F64, F64, int, float | None, int]:
    """Samples, times, samples per row, rate for bands and FFT block of one column."""
    column = frame[name]
    if _is_waveform(column):
        return _waveform(column, name, seconds, fs)
    x = column.to_numpy(dtype=np.float64, na_value=np.nan)
    if fs is not None:
        _check_rate(seconds, fs, name)
    return np.ascontiguousarray(x), seconds, 1, fs, int(block)


def _waveform(
    column: Any, name: str, seconds: F64, fs: float | None
) -> tuple[F64, F64, int, float | None, int]:
    cells = column.to_numpy()
    lengths = {c.size for c in cells if isinstance(c, np.ndarray)}
    if len(lengths) != 1:
        raise ConfigurationError(
            f"{name!r}: waveform rows differ in length ({sorted(lengths)} samples); "
            "describe rows of one length at a time"
        )
    (length,) = lengths
    rows = np.full((len(cells), length), np.nan)
    for i, cell in enumerate(cells):
        if isinstance(cell, np.ndarray):
            rows[i] = cell
    # A poll faster than the device updates reads the same block twice: count it once.
    repeated = np.zeros(len(rows), dtype=bool)
    repeated[1:] = np.all(rows[1:] == rows[:-1], axis=1)
    rows[repeated] = np.nan
    offsets = np.arange(length) / fs if fs else np.zeros(length)
    times = seconds[:, None] + offsets[None, :]
    return rows.reshape(-1), np.ascontiguousarray(times.reshape(-1)), length, fs, length


def _check_rate(seconds: F64, fs: float, name: str) -> None:
    if seconds.size < 2:
        return
    steps = np.diff(seconds)
    # Most rows (gaps aside) must be 1 / fs apart: a rate that would make wrong bands.
    if np.count_nonzero(np.abs(steps * fs - 1.0) <= 0.01) * 2 <= steps.size:
        spacing = float(np.median(steps))
        raise ConfigurationError(
            f"fs={fs:g} Hz for {name!r}, but its rows are {spacing:g} s apart "
            f"({1 / spacing:g} Hz); give the rate it was recorded at"
        )
