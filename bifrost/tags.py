"""Tag tables: named tags loaded from CSV or YAML, looked up by name.

A YAML table may carry the device's workarounds next to its tags, applied by every
connection that uses the table (``bf.connect(url, tags="plant.yaml")``)::

    quirks:
      device: {vendor: Acme, model: PM-200}
      one_request_per_tag: true
      pause_between_requests: 20ms
    tags:
      - {name: tank.level, address: "hr:0:float32"}

The keys are those of a device quirks file; the protocol checks them when connecting
(Modbus: :class:`bifrost.protocols.modbus.quirks.Quirks`), and explicit connection
options and ``quirks=`` win over them.
"""

from __future__ import annotations

import codecs
import csv
import io
import os
import warnings
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from bifrost.exceptions import (
    ArgumentTypeError,
    ConfigurationError,
    TagFileWarning,
    TagNotFound,
    value_repr,
)
from bifrost.model import Tag

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["TableQuirks", "TagLike", "TagTable", "key_lines", "read_tag_text"]

TagLike = str | Tag
"""A tag as given by a user: a name from the tag table, a ``Tag``, or a raw address."""

_FIELDS = ("name", "address", "unit", "scale", "offset", "description", "writable")
# Engineering limits: columns (keys) of their own, written out only by tables that use them.
_LIMITS = ("min", "max", "step")
_QUIRKS = "quirks"  # a YAML table's section of device workarounds
_TRUE = {"1", "true", "yes", "y", "on", "x"}
_FALSE = {"0", "false", "no", "n", "off", ""}


def _parse_bool(text: Any, where: str) -> bool:
    if isinstance(text, bool):
        return text
    if text is None:
        return False
    if isinstance(text, str | int | float):
        lowered = str(text).strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
    raise ConfigurationError(f"{where}: 'writable' must be true or false, got {value_repr(text)}")


def _parse_float(text: Any, field: str, where: str, default: float) -> float:
    if text is None or (isinstance(text, str) and not text.strip()):
        return default
    if isinstance(text, bool) or not isinstance(text, str | int | float):
        raise ConfigurationError(f"{where}: {field} must be a number, got {value_repr(text)}")
    try:
        return float(text)
    except (ValueError, OverflowError):
        raise ConfigurationError(
            f"{where}: {field} must be a number, got {value_repr(text)}"
        ) from None


def _parse_optional_float(text: Any, field: str, where: str) -> float | None:
    """A limit: a number, or None when the cell is empty (no limit)."""
    if text is None or (isinstance(text, str) and not text.strip()):
        return None
    return _parse_float(text, field, where, 0.0)


def _text_field(record: Mapping[Any, Any], field: str, where: str) -> str:
    # YAML gives numbers (`address: 40001`) and dates as well as strings; lists and
    # mappings are mistakes (and str() of a deep one can recurse or be huge).
    value = record.get(field)
    if value is None or value == "":
        return ""
    if isinstance(value, Mapping | list | tuple | set | bytes):
        raise ConfigurationError(
            f"{where}: {field!r} must be a text, got {value_repr(value)} ({type(value).__name__})"
        )
    return str(value)


def _tag_from_record(record: Mapping[Any, Any], where: str) -> Tag:
    if not isinstance(record, Mapping):
        raise ConfigurationError(
            f"{where}: a tag is a mapping of fields (name, address, ...), got {value_repr(record)}"
        )
    name = _text_field(record, "name", where).strip()
    address = _text_field(record, "address", where).strip()
    if not name or not address:
        raise ConfigurationError(f"{where}: every tag needs a 'name' and an 'address'")
    known = (*_FIELDS, *_LIMITS)
    meta = {k: v for k, v in record.items() if k not in known and v is not None and v != ""}
    try:
        return Tag(
            name=name,
            address=address,
            unit=_text_field(record, "unit", where),
            scale=_parse_float(record.get("scale"), "scale", where, 1.0),
            offset=_parse_float(record.get("offset"), "offset", where, 0.0),
            description=_text_field(record, "description", where),
            writable=_parse_bool(record.get("writable", False), where),
            min=_parse_optional_float(record.get("min"), "min", where),
            max=_parse_optional_float(record.get("max"), "max", where),
            step=_parse_optional_float(record.get("step"), "step", where),
            meta=meta,
        )
    except ValueError as exc:
        if isinstance(exc, ConfigurationError) and exc.args[0].startswith(where):
            raise
        raise ConfigurationError(f"{where}: {exc}") from None


@dataclass(frozen=True, slots=True)
class TableQuirks:
    """A tag table's ``quirks:`` section: device workarounds for connections using it.

    The protocol checks the keys when a connection uses the table (a key it has no option
    for is an error naming both); ``source`` and ``lines`` (line of each key path below
    ``quirks:``) are for its messages.
    """

    values: Mapping[str, Any]
    source: str = field(default="", compare=False)  # equal sections from two files are equal
    lines: Mapping[tuple[Any, ...], int] = field(default_factory=dict, compare=False)

    METADATA = frozenset({"device"})
    """Keys that describe the device rather than set an option."""

    def __post_init__(self) -> None:
        if not isinstance(self.values, Mapping) or not all(isinstance(k, str) for k in self.values):
            where = f"{self.source}: " if self.source else ""
            raise ConfigurationError(
                f"{where}a tag table's quirks are a mapping of option: value, got "
                f"{value_repr(self.values)}"
            )
        object.__setattr__(self, "values", MappingProxyType(dict(self.values)))

    @property
    def where(self) -> str:
        """Where the section is, for messages."""
        return f"{self.source}, {_QUIRKS}:" if self.source else f"the tag table's {_QUIRKS}:"

    def options(self) -> dict[str, Any]:
        """The connection options the section sets (the device description left out)."""
        return {k: v for k, v in self.values.items() if k not in self.METADATA}


class TagTable(Sequence[Tag]):
    """An ordered collection of uniquely named tags.

    Parameters
    ----------
    tags
        The tags; names must be unique.
    quirks
        Device workarounds for the connections using this table (the keys of a device
        quirks file), or None.

    Examples
    --------
    >>> table = TagTable([Tag("tank.level", "hr:0:float32", unit="m")])
    >>> table["tank.level"].address
    'hr:0:float32'
    """

    def __init__(
        self, tags: Iterable[Tag] = (), *, quirks: Mapping[str, Any] | TableQuirks | None = None
    ) -> None:
        if quirks is not None and not isinstance(quirks, TableQuirks):
            quirks = TableQuirks(quirks)
        self.quirks: TableQuirks | None = quirks if quirks is None or quirks.values else None
        self._tags: list[Tag] = []
        self._by_name: dict[str, Tag] = {}
        if isinstance(tags, str | bytes | bytearray) or not isinstance(tags, Iterable):
            raise ArgumentTypeError(
                f"TagTable takes an iterable of Tags, got {value_repr(tags)}; read a tag file "
                "with TagTable.load(path)"
            )
        for tag in tags:
            if not isinstance(tag, Tag):
                raise ArgumentTypeError(
                    f"TagTable holds Tag objects, got {value_repr(tag)} ({type(tag).__name__})"
                )
            if tag.name in self._by_name:
                raise ConfigurationError(f"duplicate tag name {tag.name!r} in tag table")
            self._tags.append(tag)
            self._by_name[tag.name] = tag

    # -- construction -------------------------------------------------------------------
    @classmethod
    def from_records(
        cls,
        records: Iterable[Mapping[str, Any]],
        source: str = "",
        *,
        quirks: Mapping[str, Any] | TableQuirks | None = None,
    ) -> TagTable:
        """Build a table from dicts with the keys of :class:`Tag` (extra keys go to meta)."""
        prefix = f"{source}, " if source else ""
        tags: list[Tag] = []
        first: dict[str, int] = {}
        for i, record in enumerate(records):
            tag = _tag_from_record(record, f"{prefix}tag #{i + 1}")
            if tag.name in first:
                raise ConfigurationError(
                    f"{prefix}tag #{i + 1}: duplicate tag name {tag.name!r} in tag table "
                    f"(tag #{first[tag.name] + 1} has it too)"
                )
            first[tag.name] = i
            tags.append(tag)
        return cls(tags, quirks=quirks)

    @classmethod
    def from_csv(cls, source: TextSource, encoding: str | None = None) -> TagTable:
        """Read a CSV file with a header row: name, address, unit, scale, offset, ...

        ``source`` is a path, an open file, or CSV text containing a newline. A file is
        read as UTF-8 unless ``encoding`` says otherwise; one that is not UTF-8 is read
        as Windows-1252 (what Excel writes on Western Windows) with a
        :class:`~bifrost.exceptions.TagFileWarning`.
        """
        text, where = _read_text(source, encoding)
        rows = csv.DictReader(io.StringIO(text))
        try:
            if rows.fieldnames is None or not {"name", "address"} <= set(rows.fieldnames):
                raise ConfigurationError(f"{where}: the CSV header needs 'name' and 'address'")
            records = [
                {k.strip(): (v or "").strip() for k, v in row.items() if isinstance(k, str) and k}
                for row in rows
            ]
        except csv.Error as exc:
            raise ConfigurationError(
                f"{where}, line {rows.line_num}: not valid CSV: {exc}"
            ) from None
        return cls.from_records(records, where)

    @classmethod
    def from_yaml(cls, source: TextSource, encoding: str | None = None) -> TagTable:
        """Read a YAML tag list.

        Accepted shapes: a list of tag mappings; ``{"tags": [...]}``, optionally with
        ``quirks:`` (see the module docstring); or a mapping of name to address or to a
        mapping of the other fields. ``source`` and ``encoding`` are as for
        :meth:`from_csv`.
        """
        import yaml

        text, where = _read_text(source, encoding)
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigurationError(f"{where}: not valid YAML: {exc}") from None
        except RecursionError:
            raise ConfigurationError(f"{where}: not valid YAML: nested too deeply") from None
        except (ValueError, TypeError, OverflowError) as exc:
            # PyYAML's constructors let some of these through for scalars it matched but
            # cannot build: an impossible date, a base-2 int with no digits, an int of
            # more than 4300 digits.
            raise ConfigurationError(f"{where}: not valid YAML: {exc}") from None
        quirks = None
        if isinstance(data, Mapping) and "tags" in data:
            if data.get(_QUIRKS) is not None:
                quirks = TableQuirks(data[_QUIRKS], where, _quirk_lines(text))
            data = data["tags"]
        if isinstance(data, Mapping):
            records: list[Mapping[Any, Any]] = []
            for name, spec in data.items():
                if isinstance(spec, str) or (isinstance(spec, int) and not isinstance(spec, bool)):
                    records.append({"name": name, "address": str(spec)})
                elif isinstance(spec, Mapping):
                    records.append({**spec, "name": name})
                else:
                    raise ConfigurationError(
                        f"{where}: tag {value_repr(name)} needs an address, got {value_repr(spec)}"
                    )
            return cls.from_records(records, where, quirks=quirks)
        if isinstance(data, list) and all(isinstance(r, Mapping) for r in data):
            return cls.from_records(data, where, quirks=quirks)
        raise ConfigurationError(
            f"{where}: expected a list of tags or a mapping name: address, got {value_repr(data)}"
        )

    @classmethod
    def load(
        cls,
        source: TagTable | Iterable[Tag] | str | os.PathLike[str],
        encoding: str | None = None,
    ) -> TagTable:
        """Accept a TagTable, an iterable of Tags, or the path of a CSV or YAML file."""
        if isinstance(source, TagTable):
            return source
        if isinstance(source, str | os.PathLike):
            path = _path(source)
            suffix = path.suffix.lower()
            if suffix in (".yaml", ".yml"):
                return cls.from_yaml(path, encoding)
            if suffix == ".csv":
                return cls.from_csv(path, encoding)
            raise ConfigurationError(
                f"tag file {value_repr(os.fspath(source))}: expected .csv, .yaml or .yml"
            )
        if isinstance(source, bytes | bytearray):
            raise ArgumentTypeError(
                f"a tag file's path is a str or a Path, not bytes: got {value_repr(source)}"
            )
        return cls(source)

    # -- other tools' exports (bifrost.tagimport; each importer's docstring has the details)
    @classmethod
    def from_telegraf(
        cls,
        source: TextSource,
        *,
        device: str | None = None,
        skip_unsupported: bool = False,
        encoding: str | None = None,
    ) -> TagTable:
        """Read a Telegraf configuration's ``inputs.modbus``, ``inputs.s7comm`` or ``inputs.opcua``.

        Every Modbus configuration style (register, request, metric) is understood. A
        file with several plugin instances needs ``device=`` (an instance's name,
        controller, server or endpoint). Fields of types bifrost cannot read are errors
        unless ``skip_unsupported=True`` (then left out, with a warning). Errors name the
        file, the line and the field. See :mod:`bifrost.tagimport.telegraf`.
        """
        from bifrost.tagimport.telegraf import from_telegraf

        return from_telegraf(
            source, device=device, skip_unsupported=skip_unsupported, encoding=encoding
        )

    @classmethod
    def from_kepware(
        cls,
        source: TextSource,
        *,
        protocol: str | None = None,
        first_word_low: bool = True,
        skip_unsupported: bool = False,
        encoding: str | None = None,
    ) -> TagTable:
        """Read a Kepware (KEPServerEX) tag CSV export of a Modbus or Siemens S7 device.

        Addresses like ``400001``/``40001`` (Modbus) and ``DB1.DBD0`` (S7) are told apart
        by their form, or by ``protocol="modbus"|"s7"``. ``first_word_low`` is the Modbus
        device's "First Word Low" data-encoding setting, on by default in Kepware (32-
        and 64-bit values low word first). Linear scaling becomes scale and offset. See
        :mod:`bifrost.tagimport.kepware`.
        """
        from bifrost.tagimport.kepware import from_kepware

        return from_kepware(
            source,
            protocol=protocol,
            first_word_low=first_word_low,
            skip_unsupported=skip_unsupported,
            encoding=encoding,
        )

    @classmethod
    def from_tia(
        cls, source: str | os.PathLike[str], *, skip_unsupported: bool = False
    ) -> TagTable:
        """Read a TIA Portal export: a PLC tag table (``.xlsx`` or SimaticML ``.xml``) or a DB.

        The ``.xlsx`` export needs openpyxl (``pip install "bifrost-core[xlsx]"``). A data
        block must have standard (not optimized) block access: only those have absolute
        addresses. See :mod:`bifrost.tagimport.tia`.
        """
        from bifrost.tagimport.tia import from_tia

        return from_tia(source, skip_unsupported=skip_unsupported)

    @classmethod
    def from_node_red(
        cls,
        source: TextSource,
        *,
        server: str | None = None,
        encoding: str | None = None,
    ) -> TagTable:
        """Read the registers of a Node-RED flow's Modbus read nodes (node-red-contrib-modbus).

        Every ``modbus-read`` and ``modbus-getter`` node's ``quantity`` registers (or bits)
        from ``adr`` become tags ``<node name>.<index in the payload>``. A flow whose nodes
        use several Modbus servers needs ``server=`` (the config node's name, id or
        host:port). See :mod:`bifrost.tagimport.node_red`.
        """
        from bifrost.tagimport.node_red import from_node_red

        return from_node_red(source, server=server, encoding=encoding)

    # -- access -------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._tags)

    def __iter__(self) -> Iterator[Tag]:
        return iter(self._tags)

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            try:
                return self._by_name[key]
            except KeyError:
                raise TagNotFound(self._not_found_message(key)) from None
        if isinstance(key, slice):
            return TagTable(self._tags[key], quirks=self.quirks)
        return self._tags[key]

    def __contains__(self, key: object) -> bool:
        if isinstance(key, Tag):
            return self._by_name.get(key.name) == key
        return key in self._by_name

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, TagTable)
            and self._tags == other._tags
            and self.quirks == other.quirks
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        names = ", ".join(t.name for t in self._tags[:5])
        more = f", … {len(self) - 5} more" if len(self) > 5 else ""
        return f"TagTable({len(self)} tags: {names}{more})"

    def _repr_html_(self) -> str:
        from bifrost._html import tags_html

        return tags_html(self)

    @property
    def names(self) -> list[str]:
        """Tag names in table order."""
        return [t.name for t in self._tags]

    def _ipython_key_completions_(self) -> list[str]:
        """The names IPython offers after ``table["`` (Tab)."""
        return self.names

    def get(self, name: str) -> Tag | None:
        """The tag called ``name``, or None."""
        return self._by_name.get(name)

    def _not_found_message(self, name: str) -> str:
        import difflib

        close = difflib.get_close_matches(name, self._by_name, n=3)
        hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
        return f"no tag named {name!r} in the tag table ({len(self)} tags){hint}"

    def resolve(self, item: TagLike, is_address: Any = None) -> Tag:
        """Turn a name, a Tag, or a raw address into a Tag.

        Parameters
        ----------
        item
            A tag name in this table, a :class:`Tag`, or an address string.
        is_address
            Optional predicate telling whether a string looks like an address of the
            connection's protocol; a string that is neither a name nor an address raises
            :class:`TagNotFound` with suggestions.
        """
        if isinstance(item, Tag):
            return item
        if not isinstance(item, str):
            raise ArgumentTypeError(
                f"a tag is a name, a Tag or an address string, got {value_repr(item)} "
                f"({type(item).__name__})"
            )
        tag = self._by_name.get(item)
        if tag is not None:
            return tag
        if is_address is not None and not is_address(item):
            raise TagNotFound(self._not_found_message(item))
        return _address_tag(item)

    def resolve_all(self, items: Sequence[TagLike], is_address: Any = None) -> list[Tag]:
        """:meth:`resolve` for each of ``items``, with the raw addresses made Tags at once.

        The same Tags and the same errors (for the first bad item) as resolving the items
        one by one; a cold plan of many thousand addresses spends most of its time here.
        """
        by_name = self._by_name
        try:
            found: list[Tag | None] = list(map(by_name.get, items))  # type: ignore[arg-type]
        except TypeError:  # an unhashable item: resolve() names it
            return [self.resolve(item, is_address) for item in items]
        raw: list[int] = []
        for i, tag in enumerate(found):
            if tag is not None:
                continue
            item = items[i]
            if type(item) is str and (is_address is None or is_address(item)):
                raw.append(i)
            else:
                found[i] = self.resolve(item, is_address)
        for i, tag in zip(raw, _address_tags([items[i] for i in raw]), strict=True):  # type: ignore[misc]
            found[i] = tag
        return found  # type: ignore[return-value]

    # -- export -------------------------------------------------------------------------
    def to_records(self) -> list[dict[str, Any]]:
        """One dict per tag (the inverse of :meth:`from_records`)."""
        return [
            {
                "name": t.name,
                "address": t.address,
                "unit": t.unit,
                "scale": t.scale,
                "offset": t.offset,
                "description": t.description,
                "writable": t.writable,
                **{k: getattr(t, k) for k in _LIMITS if getattr(t, k) is not None},
                **t.meta,
            }
            for t in self._tags
        ]

    def to_frame(self) -> pd.DataFrame:
        """A DataFrame with one row per tag, indexed by name."""
        import pandas as pd

        frame = pd.DataFrame.from_records(self.to_records(), columns=None)
        if frame.empty:
            frame = pd.DataFrame(columns=list(_FIELDS))
        return frame.set_index("name")

    def to_csv(self, path: str | os.PathLike[str]) -> None:
        """Write the table as CSV (readable again by :meth:`from_csv`)."""
        records = self.to_records()
        used = {k for r in records for k in r}
        limits = [k for k in _LIMITS if k in used]
        fields = [*_FIELDS, *limits, *sorted(used - set(_FIELDS) - set(_LIMITS))]
        with open(path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=fields)
            writer.writeheader()
            writer.writerows(records)

    def to_yaml(self, path: str | os.PathLike[str]) -> None:
        """Write the table (and its quirks) as YAML, readable again by :meth:`from_yaml`."""
        import yaml

        data: dict[str, Any] = {}
        if self.quirks is not None:
            data[_QUIRKS] = _plain(self.quirks.values)
        data["tags"] = self.to_records()
        with open(path, "w", encoding="utf-8") as handle:
            yaml.safe_dump(data, handle, sort_keys=False, allow_unicode=True)


def _plain(value: Any) -> Any:
    # safe_dump writes dicts and lists only (the section's values are read-only views).
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def key_lines(node: Any, path: tuple[Any, ...], out: dict[tuple[Any, ...], int]) -> None:
    """Fill ``out`` with the line (1-based) of each key path under a composed YAML node."""
    import yaml

    out[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            child = (*path, key.value)
            key_lines(value, child, out)
            out[child] = key.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            key_lines(item, (*path, i), out)


def _quirk_lines(text: str) -> dict[tuple[Any, ...], int]:
    """The line of each key path below ``quirks:`` (paths without the ``quirks`` key)."""
    import yaml

    lines: dict[tuple[Any, ...], int] = {}
    key_lines(yaml.compose(text, Loader=yaml.SafeLoader), (), lines)
    return {k[1:]: v for k, v in lines.items() if k[:1] == (_QUIRKS,)}


# A raw address becomes a Tag named after it thousands of times in a cold plan; Tag's
# own checks (~3 us: numeric types, Unicode, writable) hold by construction for an ASCII
# string that is not blank, so such Tags are filled in through the slots directly.
_TAG_FIELDS = (
    "name",
    "address",
    "unit",
    "scale",
    "offset",
    "description",
    "writable",
    "min",
    "max",
    "step",
    "meta",
)
_SLOTS = [getattr(Tag, name, None) for name in _TAG_FIELDS]
_FAST_TAGS = all(type(slot).__name__ == "member_descriptor" for slot in _SLOTS)
if _FAST_TAGS:
    (_name, _address, _unit, _scale, _offset, _description, _writable, _min, _max, _step, _meta) = (
        slot.__set__  # type: ignore[union-attr]
        for slot in _SLOTS
    )


def _address_tags(addresses: list[str]) -> list[Tag]:
    """:func:`_address_tag` of each address, field by field over all of them at once."""
    if not _FAST_TAGS or not "".join(addresses).isascii() or not all(map(str.strip, addresses)):
        return [_address_tag(a) for a in addresses]
    n = len(addresses)
    tags = list(map(object.__new__, repeat(Tag, n)))
    deque(map(_name, tags, addresses), 0)
    deque(map(_address, tags, addresses), 0)
    for set_field, value in (
        (_unit, ""),
        (_scale, 1.0),
        (_offset, 0.0),
        (_description, ""),
        (_writable, False),
        (_min, None),
        (_max, None),
        (_step, None),
    ):
        deque(map(set_field, tags, repeat(value, n)), 0)
    deque(map(_meta, tags, [{} for _ in range(n)]), 0)  # a dict of its own for each
    return tags


def _address_tag(address: str) -> Tag:
    """``Tag(name=address, address=address)``, built without re-checking what holds."""
    if not _FAST_TAGS or not address.isascii() or not address.strip():
        return Tag(name=address, address=address)
    tag = object.__new__(Tag)
    _name(tag, address)
    _address(tag, address)
    _unit(tag, "")
    _scale(tag, 1.0)
    _offset(tag, 0.0)
    _description(tag, "")
    _writable(tag, False)
    _min(tag, None)
    _max(tag, None)
    _step(tag, None)
    _meta(tag, {})
    return tag


TextSource = str | os.PathLike[str] | io.IOBase
"""Where a tag file comes from: a path, an open file, or the text itself (with a newline)."""

_FALLBACK = "cp1252"


def read_tag_text(source: TextSource, encoding: str | None = None) -> tuple[str, str]:
    """A tag file's text and the name errors show for it (the path, or ``<text>``).

    ``source`` and ``encoding`` are as for :meth:`TagTable.from_csv`; refusals are
    :class:`~bifrost.exceptions.ConfigurationError`.
    """
    return _read_text(source, encoding)


def _path(source: str | os.PathLike[str]) -> Path:
    try:
        path = Path(source)
    except TypeError:  # an os.PathLike whose __fspath__ gives bytes
        raise ArgumentTypeError(
            f"a tag file's path is a str or a Path, got {value_repr(source)}"
        ) from None
    if "\0" in str(path):
        raise ConfigurationError(
            f"tag file path {value_repr(str(path))} contains a NUL character; no file has "
            "such a name"
        )
    return path


def _read_text(source: Any, encoding: str | None) -> tuple[str, str]:
    if isinstance(source, io.IOBase):
        where = str(getattr(source, "name", "<stream>"))
        try:
            data = source.read()
        except UnicodeDecodeError as exc:
            raise ConfigurationError(
                f"{where} is not text in the encoding it was opened with ({exc}); open it "
                "with the file's encoding=, or pass the path to read it as UTF-8"
            ) from None
        except (OSError, ValueError) as exc:
            raise ConfigurationError(f"cannot read {where}: {exc}") from None
        if isinstance(data, str):
            return data, where
        if isinstance(data, bytes | bytearray):
            return _decode(bytes(data), where, encoding), where
        raise ArgumentTypeError(f"{where}: read() gave {value_repr(data)}, not text")
    if isinstance(source, str) and "\n" in source:
        return source, "<text>"
    if not isinstance(source, str | os.PathLike):
        raise ArgumentTypeError(
            "a tag file is a path, an open file or the text itself (with a newline); got "
            f"{value_repr(source)} ({type(source).__name__})"
        )
    path = _path(source)
    where = str(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigurationError(f"tag file {where!r} does not exist") from None
    except IsADirectoryError:
        raise ConfigurationError(f"tag file {where!r} is a directory, not a file") from None
    except OSError as exc:
        raise ConfigurationError(f"cannot read tag file {where!r}: {exc.strerror or exc}") from None
    return _decode(data, where, encoding), where


def _decode(data: bytes, where: str, encoding: str | None) -> str:
    if encoding is not None:
        try:
            return data.decode(encoding)
        except LookupError:
            raise ConfigurationError(f"unknown encoding {encoding!r} for {where}") from None
        except UnicodeDecodeError as exc:
            raise ConfigurationError(
                f"{where} is not {encoding}: byte 0x{data[exc.start]:02x} at offset {exc.start} "
                "does not decode; pass the file's encoding="
            ) from None
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        # Excel's "Unicode text" export.
        return _decode(data, where, "utf-16")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        first = exc
    try:
        text = data.decode(_FALLBACK)
    except UnicodeDecodeError:
        raise ConfigurationError(
            f"{where} is neither UTF-8 nor Windows-1252 text (byte 0x{data[first.start]:02x} "
            f"at offset {first.start}); pass its encoding=, e.g. encoding='latin-1'"
        ) from None
    warnings.warn(
        TagFileWarning(
            f"{where} is not UTF-8 (byte 0x{data[first.start]:02x} at offset {first.start}); "
            f"read it as Windows-1252. Pass encoding='cp1252' to say so, or save it as UTF-8"
        ),
        stacklevel=4,
    )
    return text
