"""What every importer shares: located errors, address checks, skipped entries, the table."""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bifrost.exceptions import AddressError, ConfigurationError, TagFileWarning, value_repr
from bifrost.model import Tag
from bifrost.protocols.modbus.address import parse_modbus_address
from bifrost.protocols.opcua.address import parse_opcua_address
from bifrost.protocols.s7.address import parse_s7_address
from bifrost.tags import TagTable

__all__ = ["Entry", "Source"]

_TAG_FIELDS = ("scale", "offset", "min", "max", "step", "name", "unit", "description")

_PARSERS: dict[str, Callable[[str], Any]] = {
    "modbus": parse_modbus_address,
    "s7": parse_s7_address,
    "opcua": parse_opcua_address,
}


@dataclass
class Entry:
    """One tag as found in the tool's file, before it becomes a :class:`Tag`."""

    name: str
    address: str
    protocol: str
    line: int | None
    source_address: str = ""  # as the tool wrote it, for messages
    unit: str = ""
    scale: float = 1.0
    offset: float = 0.0
    description: str = ""
    writable: bool = False
    min: float | None = None
    max: float | None = None
    meta: dict[str, Any] = field(default_factory=dict)


class Source:
    """A tool's file being imported: its name and lines, and the entries found so far.

    Parameters
    ----------
    where
        The file's name as errors show it.
    tool
        The tool's name, for messages (``"Telegraf"``).
    text
        The file's text, to find the line of an entry (None for binary formats).
    skip_unsupported
        Leave out entries of types bifrost cannot read (with one warning) instead of
        raising.
    line_word
        How a position in the file is called: ``"line"``, or ``"row"`` for a sheet.
    """

    def __init__(
        self,
        where: str,
        tool: str,
        text: str | None = None,
        *,
        skip_unsupported: bool = False,
        line_word: str = "line",
    ) -> None:
        self.where = where
        self.tool = tool
        self.lines = text.splitlines() if text is not None else []
        self.skip_unsupported = bool(skip_unsupported)
        self.line_word = line_word
        self.entries: list[Entry] = []
        self.skipped: list[str] = []

    # -- positions and errors -------------------------------------------------------------
    def at(self, line: int | None, field_name: str | None = None) -> str:
        """``plant.toml, line 12, field 'data_type'`` (as much as is known)."""
        text = self.where
        if line is not None:
            text += f", {self.line_word} {line}"
        if field_name:
            text += f", field {field_name!r}"
        return text

    def error(
        self, message: str, line: int | None = None, field_name: str | None = None
    ) -> ConfigurationError:
        """An error naming the file, the line and the field."""
        return ConfigurationError(f"{self.at(line, field_name)}: {message}")

    def line_of(self, pattern: str, start: int = 1) -> int | None:
        """The first line number (1-based) from ``start`` on whose text matches ``pattern``."""
        regex = re.compile(pattern)
        for number in range(max(start, 1), len(self.lines) + 1):
            if regex.search(self.lines[number - 1]):
                return number
        return None

    def unsupported(
        self, name: str, message: str, line: int | None, field_name: str | None
    ) -> None:
        """An entry bifrost cannot read: an error, or left out under ``skip_unsupported``."""
        if not self.skip_unsupported:
            raise self.error(
                f"{message}; pass skip_unsupported=True to leave such entries out",
                line,
                field_name,
            )
        self.skipped.append(f"{name!r} ({self.at(line)}: {message})")

    # -- entries --------------------------------------------------------------------------
    def add(self, entry: Entry, field_name: str = "address") -> None:
        """Check the entry's bifrost address with its protocol's grammar and keep it."""
        parse = _PARSERS[entry.protocol]
        try:
            parse(entry.address)
        except AddressError as exc:
            shown = entry.source_address or entry.address
            raise self.error(
                f"{shown!r} of tag {entry.name!r} becomes the bifrost address "
                f"{entry.address!r}, which is not valid: {exc.reason}",
                entry.line,
                field_name,
            ) from exc
        self.entries.append(entry)

    def table(self) -> TagTable:
        """The tags found, in file order; duplicate names name both lines."""
        first: dict[str, Entry] = {}
        tags: list[Tag] = []
        for entry in self.entries:
            if entry.name in first:
                other = first[entry.name]
                raise self.error(
                    f"tag name {entry.name!r} is used twice (also at {self.at(other.line)}); "
                    "names in a tag table are unique",
                    entry.line,
                    "name",
                )
            first[entry.name] = entry
            tags.append(self._tag(entry))
        if self.skipped:
            warnings.warn(
                TagFileWarning(
                    f"{self.where}: left out {len(self.skipped)} {self.tool} "
                    f"entr{'y' if len(self.skipped) == 1 else 'ies'} bifrost cannot read: "
                    + "; ".join(self.skipped)
                ),
                stacklevel=4,
            )
        if not tags:
            raise self.error(f"no tags bifrost can read in this {self.tool} file")
        return TagTable(tags)

    def _tag(self, entry: Entry) -> Tag:
        meta = {"source": self.at(entry.line), **entry.meta}
        if entry.source_address and entry.source_address != entry.address:
            meta.setdefault(f"{self.tool.lower().replace(' ', '_')}_address", entry.source_address)
        try:
            return Tag(
                name=entry.name,
                address=entry.address,
                unit=entry.unit,
                scale=entry.scale,
                offset=entry.offset,
                description=entry.description,
                writable=entry.writable,
                min=entry.min,
                max=entry.max,
                meta=meta,
            )
        except ConfigurationError as exc:
            # Tag names the field in its message ("tag 'a': scale must be ..."): point at it.
            message = str(exc)
            named = next((f for f in _TAG_FIELDS if f"': {f} " in message), None)
            raise self.error(message, entry.line, named) from None


def number(
    source: Source, value: Any, line: int | None, field_name: str, default: float | None = None
) -> float | None:
    """A number from a TOML/JSON/CSV/sheet cell (text or number); empty gives ``default``."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return default
    if isinstance(value, bool):
        raise source.error(f"expected a number, got {value_repr(value)}", line, field_name)
    try:
        result = float(value)
    except (TypeError, ValueError, OverflowError):
        raise source.error(
            f"expected a number, got {value_repr(value)}", line, field_name
        ) from None
    if not math.isfinite(result):
        raise source.error(f"expected a finite number, got {value_repr(value)}", line, field_name)
    return result


def integer(source: Source, value: Any, line: int | None, field_name: str) -> int:
    """A whole number >= 0 from a cell (``5``, ``"5"``)."""
    if isinstance(value, bool) or value is None:
        raise source.error(f"expected a whole number, got {value_repr(value)}", line, field_name)
    if isinstance(value, int):
        result = value
    elif isinstance(value, float) and value.is_integer():
        result = int(value)
    elif isinstance(value, str) and value.strip().isdigit() and len(value.strip()) <= 9:
        result = int(value.strip())
    else:
        raise source.error(f"expected a whole number, got {value_repr(value)}", line, field_name)
    if result < 0:
        raise source.error(f"expected a number >= 0, got {result}", line, field_name)
    return result


def text(source: Source, value: Any, line: int | None, field_name: str) -> str:
    """A text cell (numbers are accepted as their text); lists and tables are refused."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise source.error(f"expected a text, got {value_repr(value)}", line, field_name)
    return str(value)


__all__ += ["integer", "number", "text"]
