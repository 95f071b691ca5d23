"""Tag tables: named tags loaded from CSV or YAML, looked up by name."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bifrost.exceptions import ConfigurationError, TagNotFound
from bifrost.model import Tag

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["TagLike", "TagTable"]

TagLike = str | Tag
"""A tag as given by a user: a name from the tag table, a ``Tag``, or a raw address."""

_FIELDS = ("name", "address", "unit", "scale", "offset", "description", "writable")
_TRUE = {"1", "true", "yes", "y", "on", "x"}
_FALSE = {"0", "false", "no", "n", "off", ""}


def _parse_bool(text: Any, where: str) -> bool:
    if isinstance(text, bool):
        return text
    lowered = str(text).strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ConfigurationError(f"{where}: 'writable' must be true or false, got {text!r}")


def _parse_float(text: Any, field: str, where: str, default: float) -> float:
    if text is None or (isinstance(text, str) and not text.strip()):
        return default
    try:
        return float(text)
    except (TypeError, ValueError):
        raise ConfigurationError(f"{where}: {field} must be a number, got {text!r}") from None


def _tag_from_record(record: Mapping[str, Any], where: str) -> Tag:
    name = str(record.get("name") or "").strip()
    address = str(record.get("address") or "").strip()
    if not name or not address:
        raise ConfigurationError(f"{where}: every tag needs a 'name' and an 'address'")
    meta = {k: v for k, v in record.items() if k not in _FIELDS and v not in (None, "")}
    try:
        return Tag(
            name=name,
            address=address,
            unit=str(record.get("unit") or ""),
            scale=_parse_float(record.get("scale"), "scale", where, 1.0),
            offset=_parse_float(record.get("offset"), "offset", where, 0.0),
            description=str(record.get("description") or ""),
            writable=_parse_bool(record.get("writable", False), where),
            meta=meta,
        )
    except ValueError as exc:
        if isinstance(exc, ConfigurationError):
            raise
        raise ConfigurationError(f"{where}: {exc}") from None


class TagTable(Sequence[Tag]):
    """An ordered collection of uniquely named tags.

    Parameters
    ----------
    tags
        The tags; names must be unique.

    Examples
    --------
    >>> table = TagTable([Tag("tank.level", "hr:0:float32", unit="m")])
    >>> table["tank.level"].address
    'hr:0:float32'
    """

    def __init__(self, tags: Iterable[Tag] = ()) -> None:
        self._tags: list[Tag] = []
        self._by_name: dict[str, Tag] = {}
        for tag in tags:
            if not isinstance(tag, Tag):
                raise TypeError(f"TagTable holds Tag objects, got {type(tag).__name__}")
            if tag.name in self._by_name:
                raise ConfigurationError(f"duplicate tag name {tag.name!r} in tag table")
            self._tags.append(tag)
            self._by_name[tag.name] = tag

    # -- construction -------------------------------------------------------------------
    @classmethod
    def from_records(cls, records: Iterable[Mapping[str, Any]], source: str = "") -> TagTable:
        """Build a table from dicts with the keys of :class:`Tag` (extra keys go to meta)."""
        prefix = f"{source}, " if source else ""
        return cls(_tag_from_record(rec, f"{prefix}tag #{i + 1}") for i, rec in enumerate(records))

    @classmethod
    def from_csv(cls, source: str | os.PathLike[str] | io.TextIOBase) -> TagTable:
        """Read a CSV file with a header row: name, address, unit, scale, offset, ...

        ``source`` is a path, an open text file, or CSV text containing a newline.
        """
        text, where = _read_text(source)
        rows = csv.DictReader(io.StringIO(text))
        if rows.fieldnames is None or not {"name", "address"} <= set(rows.fieldnames):
            raise ConfigurationError(f"{where}: the CSV header needs 'name' and 'address'")
        records = [{k.strip(): (v or "").strip() for k, v in row.items() if k} for row in rows]
        return cls.from_records(records, where)

    @classmethod
    def from_yaml(cls, source: str | os.PathLike[str] | io.TextIOBase) -> TagTable:
        """Read a YAML tag list.

        Accepted shapes: a list of tag mappings; ``{"tags": [...]}``; or a mapping of
        name to address string or to a mapping of the other fields.
        """
        import yaml

        text, where = _read_text(source)
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigurationError(f"{where}: not valid YAML: {exc}") from None
        if isinstance(data, Mapping) and "tags" in data:
            data = data["tags"]
        if isinstance(data, Mapping):
            records: list[Mapping[str, Any]] = []
            for name, spec in data.items():
                if isinstance(spec, str):
                    records.append({"name": name, "address": spec})
                elif isinstance(spec, Mapping):
                    records.append({"name": name, **spec})
                else:
                    raise ConfigurationError(f"{where}: tag {name!r} needs an address")
            return cls.from_records(records, where)
        if isinstance(data, list) and all(isinstance(r, Mapping) for r in data):
            return cls.from_records(data, where)
        raise ConfigurationError(f"{where}: expected a list of tags or a mapping name: address")

    @classmethod
    def load(cls, source: TagTable | Iterable[Tag] | str | os.PathLike[str]) -> TagTable:
        """Accept a TagTable, an iterable of Tags, or the path of a CSV or YAML file."""
        if isinstance(source, TagTable):
            return source
        if isinstance(source, str | os.PathLike):
            suffix = Path(source).suffix.lower()
            if suffix in (".yaml", ".yml"):
                return cls.from_yaml(source)
            if suffix == ".csv":
                return cls.from_csv(source)
            raise ConfigurationError(f"tag file {str(source)!r}: expected .csv, .yaml or .yml")
        return cls(source)

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
            return TagTable(self._tags[key])
        return self._tags[key]

    def __contains__(self, key: object) -> bool:
        if isinstance(key, Tag):
            return self._by_name.get(key.name) == key
        return key in self._by_name

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TagTable) and self._tags == other._tags

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
            raise TypeError(f"a tag is a name, a Tag or an address string, got {item!r}")
        tag = self._by_name.get(item)
        if tag is not None:
            return tag
        if is_address is not None and not is_address(item):
            raise TagNotFound(self._not_found_message(item))
        return Tag(name=item, address=item)

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
        fields = list(_FIELDS) + sorted({k for r in records for k in r} - set(_FIELDS))
        with open(path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=fields)
            writer.writeheader()
            writer.writerows(records)

    def to_yaml(self, path: str | os.PathLike[str]) -> None:
        """Write the table as YAML (readable again by :meth:`from_yaml`)."""
        import yaml

        with open(path, "w", encoding="utf-8") as handle:
            yaml.safe_dump({"tags": self.to_records()}, handle, sort_keys=False)


def _read_text(source: str | os.PathLike[str] | io.TextIOBase) -> tuple[str, str]:
    if isinstance(source, io.TextIOBase):
        return source.read(), getattr(source, "name", "<stream>")
    if isinstance(source, str) and "\n" in source:
        return source, "<text>"
    path = Path(source)
    try:
        return path.read_text(encoding="utf-8-sig"), str(path)
    except FileNotFoundError:
        raise ConfigurationError(f"tag file {str(path)!r} does not exist") from None
