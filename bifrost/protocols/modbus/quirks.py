"""Device quirks: the workarounds one Modbus device needs, kept in a YAML file.

``bf.connect(url, quirks="device.yaml")`` reads the file, checks it (an error names the
file, the line and the key) and uses its values as connection options; options given
explicitly (keyword arguments, the URL's query) win over the file's.

.. code-block:: yaml

    device: {vendor: Acme, model: PM-200, notes: "refuses reads over 32 registers"}
    max_registers_per_request: 32
    pause_between_requests: 20ms
    busy_retries: 5

Every field except ``device`` is a :class:`~bifrost.protocols.modbus.options.ModbusOptions`
keyword of the same name (:meth:`Quirks.options`). To add a quirk, add the field here and
the option of the same name there; the register scanner (``plc.scan``) writes what it
finds through :meth:`Quirks.to_yaml`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from bifrost.exceptions import ConfigurationError
from bifrost.protocols.modbus.options import (
    MAX_BITS,
    MAX_BUSY_RETRIES,
    MAX_PIPELINE,
    MAX_REGISTERS,
    pause_seconds,
    unreadable_ranges,
)
from bifrost.protocols.options import explain_errors, load_yaml
from bifrost.tags import TableQuirks

__all__ = ["DeviceInfo", "Quirks", "load"]


class DeviceInfo(BaseModel):
    """What the quirks were found on; for people, never used to connect."""

    model_config = ConfigDict(extra="allow")
    vendor: str | None = None
    model: str | None = None
    firmware: str | None = None
    notes: str | None = None


class Quirks(BaseModel):
    """One device's workarounds; ``None`` leaves an option at its default."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)
    # Fields that describe the device rather than set an option.
    METADATA: ClassVar[frozenset[str]] = frozenset({"device"})

    device: DeviceInfo | None = None
    max_registers_per_request: int | None = Field(default=None, ge=1, le=MAX_REGISTERS)
    max_bits_per_request: int | None = Field(default=None, ge=1, le=MAX_BITS)
    one_request_per_tag: bool | None = None
    merge_gap: int | None = Field(default=None, ge=0, le=MAX_REGISTERS)
    max_gap_registers: int | None = Field(default=None, ge=0, le=MAX_REGISTERS)
    max_gap_bits: int | None = Field(default=None, ge=0, le=MAX_BITS)
    pause_between_requests: float | None = None
    pause_after_connect: float | None = None
    close_after_each_cycle: bool | None = None
    busy_retries: int | None = Field(default=None, ge=0, le=MAX_BUSY_RETRIES)
    busy_backoff: float | None = None
    timeout: float | None = Field(default=None, gt=0)
    # Found by the register scanner (plc.scan): requests kept in flight at once (1 for a
    # device that answers pipelined requests wrongly) and, per table, the [first, last]
    # address ranges the device refuses, which no merged request reaches into.
    pipeline: int | None = Field(default=None, ge=1, le=MAX_PIPELINE)
    unreadable: dict[str, list[list[int]]] | None = None

    @field_validator("unreadable")
    @classmethod
    def _unreadable(cls, value: Any) -> Any:
        if value is None:
            return None
        joined: dict[str, list[list[int]]] = {}
        for table, first, last in unreadable_ranges(value):
            joined.setdefault(table, []).append([first, last])
        return joined

    @field_validator("pause_between_requests", "pause_after_connect", "busy_backoff", mode="before")
    @classmethod
    def _pause(cls, value: Any, info: ValidationInfo) -> Any:
        # Durations as in the rest of bifrost ("20ms", 0.02); the range is the option's.
        if value is None:
            return None
        try:
            return pause_seconds(value, str(info.field_name))
        except ConfigurationError as exc:
            raise ValueError(str(exc)) from None

    def options(self) -> dict[str, Any]:
        """The connection options this file sets (metadata and unset fields left out)."""
        return self.model_dump(exclude_none=True, exclude=set(self.METADATA))

    @classmethod
    def from_mapping(cls, data: Any, where: str = "<quirks>") -> Quirks:
        """Check a mapping (e.g. a gateway's ``quirks:`` block) into quirks."""
        return cls._validated(data, where, {})

    @classmethod
    def from_table(cls, table: TableQuirks) -> Quirks:
        """Check a tag table's ``quirks:`` section (errors name its file, line and key)."""
        if not isinstance(table, TableQuirks):
            raise ConfigurationError(
                "table_quirks is set by the connection from its tag table's quirks: section"
            )
        return cls._validated(dict(table.values), table.where.rstrip(":"), table.lines)

    @classmethod
    def from_yaml(cls, path: str | os.PathLike[str]) -> Quirks:
        """Read and check a quirks file.

        Raises
        ------
        ConfigurationError
            Naming the file, and the line and key of each problem.
        """
        data, lines = load_yaml(path, "device quirks file")
        return cls._validated({} if data is None else data, os.fspath(path), lines)

    @classmethod
    def _validated(cls, data: Any, where: str, lines: Mapping[tuple[Any, ...], int]) -> Quirks:
        if not isinstance(data, Mapping):
            raise ConfigurationError(f"{where}: device quirks must be a mapping of option: value")
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            problems = explain_errors(exc.errors(), where, lines)
            raise ConfigurationError(
                f"{where}: invalid device quirks:\n  " + "\n  ".join(problems)
            ) from None

    def to_yaml(self, path: str | os.PathLike[str]) -> None:
        """Write the quirks as YAML (unset fields left out), readable by :meth:`from_yaml`."""
        import yaml

        data = self.model_dump(exclude_none=True)
        # Flow style for the innermost lists: unreadable ranges read as [first, last].
        text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=None)
        with open(path, "w", encoding="utf-8") as file:
            file.write(text)


def load(source: str | os.PathLike[str] | Mapping[str, Any] | Quirks) -> Quirks:
    """Quirks from a file path, a mapping or a :class:`Quirks` as given to ``quirks=``."""
    if isinstance(source, Quirks):
        return source
    if isinstance(source, Mapping):
        return Quirks.from_mapping(source)
    if isinstance(source, str | os.PathLike):
        return Quirks.from_yaml(source)
    raise ConfigurationError(
        f"quirks={source!r}: expected a YAML file's path, a mapping or a Quirks object"
    )
