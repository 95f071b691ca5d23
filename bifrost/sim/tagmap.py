"""The simulated plant's one tag map: the same tag names over Modbus, S7 and OPC UA.

Every protocol exposes the same tag names; only the addresses differ (the S7 and OPC UA
tables are defined further down, next to their specs). Each protocol's server, in
``bifrost/protocols/<name>/server.py``, serves the plant from this map. The Modbus map
(unit id 1; the server answers every unit id with the same data):

=====================  =====================  =========  ======  =================================
Tag                    Address                Unit       Access  Meaning
=====================  =====================  =========  ======  =================================
tank.level             hr:0:float32           m          R       tank level, 0-5 m
tank.inflow            hr:2:float32           m3/h       R       feed flow into the tank
tank.outflow           hr:4:float32           m3/h       R       drain flow, k*sqrt(level)
reactor.temperature    hr:6:float32           degC       R       measured reactor temperature
reactor.setpoint       hr:8:float32           degC       RW      temperature setpoint, 0-150 degC
pump.speed             hr:10:float32          rpm        R       pump speed, 1450 rpm running
line.state             hr:12 (uint16)                    R       0 stopped, 1 running, 2 fault
line.recipe            hr:16:string[16]                  R       product being made (hr 16-23)
pump.vibration_rms     ir:0:float32:CDAB      mm/s       R       vibration velocity RMS, low word
                                                                 first (as many drives send it)
line.counter           ir:2:uint32            parts      R       parts produced (wraps at 2**32)
reactor.heater         ir:4:int16, scale 0.1  %          R       heater output, raw 0-1000
plant.heartbeat        ir:5 (uint16)                     R       step counter, wraps at 65536
tank.high_alarm        di:0                              R       level high alarm (hysteresis)
line.cycle             di:1                              R       machine-cycle trigger
line.enable            co:0                              RW      operator enable of the line
=====================  =====================  =========  ======  =================================

Other areas: hr 0-999 reads as zeros where no tag is defined; hr 900-999 is a writable
scratch area that keeps what clients write; hr 1000 to 1000+aux-1 hold the auxiliary
benchmark channels (``aux.0000``...). Input registers, discrete inputs and coils 0-15 are
readable. Anything beyond, and any write outside the writable tags and the scratch area,
is answered with Modbus exception 2 (illegal data address).
"""

from __future__ import annotations

from dataclasses import dataclass

from bifrost.exceptions import ConfigurationError
from bifrost.model import Tag
from bifrost.tags import TagTable

__all__ = [
    "DEFAULT_AUX",
    "LIMITS",
    "MODBUS_AUX_START",
    "MODBUS_BIT_SIZE",
    "MODBUS_IR_SIZE",
    "MODBUS_SCRATCH_COUNT",
    "MODBUS_SCRATCH_START",
    "OPCUA_AUX_FOLDER",
    "OPCUA_NAMESPACE",
    "OPCUA_TAGS",
    "PROTOCOLS",
    "OpcUaTagSpec",
    "aux_tags",
    "modbus_tags",
    "opcua_aux_tags",
    "opcua_tags",
    "tag_table",
]

PROTOCOLS = ("modbus", "s7", "opcua")
"""Protocols the simulated plant serves so far."""

DEFAULT_AUX = 4000
"""Default number of auxiliary benchmark registers."""
MODBUS_AUX_START = 1000
"""First holding register of the auxiliary channels."""
MODBUS_SCRATCH_START = 900
"""First holding register of the writable scratch area."""
MODBUS_SCRATCH_COUNT = 100
"""Size of the writable scratch area."""
MODBUS_IR_SIZE = 16
"""Input registers 0..15 exist."""
MODBUS_BIT_SIZE = 16
"""Coils and discrete inputs 0..15 exist."""

_MODBUS = (
    # name, address, unit, writable, description, scale
    ("tank.level", "hr:0:float32", "m", False, "Tank level (0-5 m)", 1.0),
    ("tank.inflow", "hr:2:float32", "m3/h", False, "Feed flow into the tank", 1.0),
    ("tank.outflow", "hr:4:float32", "m3/h", False, "Drain flow, k*sqrt(level)", 1.0),
    (
        "reactor.temperature",
        "hr:6:float32",
        "degC",
        False,
        "Measured reactor temperature",
        1.0,
    ),
    (
        "reactor.setpoint",
        "hr:8:float32",
        "degC",
        True,
        "Reactor temperature setpoint (0-150 degC; writes are clipped to that range)",
        1.0,
    ),
    ("pump.speed", "hr:10:float32", "rpm", False, "Pump speed (1450 rpm when running)", 1.0),
    ("line.state", "hr:12:uint16", "", False, "Line state: 0 stopped, 1 running, 2 fault", 1.0),
    ("line.recipe", "hr:16:string[16]", "", False, "Product being made (hr 16-23)", 1.0),
    (
        "pump.vibration_rms",
        "ir:0:float32:CDAB",
        "mm/s",
        False,
        "Pump vibration velocity RMS (1 s average), low word first",
        1.0,
    ),
    ("line.counter", "ir:2:uint32", "parts", False, "Parts produced (wraps at 2**32)", 1.0),
    ("reactor.heater", "ir:4:int16", "%", False, "Heater output, raw 0-1000 = 0-100 %", 0.1),
    ("plant.heartbeat", "ir:5:uint16", "", False, "Simulation step counter (wraps)", 1.0),
    ("tank.high_alarm", "di:0", "", False, "Tank level high alarm (on 3.5 m, off 3.3 m)", 1.0),
    ("line.cycle", "di:1", "", False, "Machine-cycle trigger, true 25 % of each cycle", 1.0),
    ("line.enable", "co:0", "", True, "Operator enable of the line (false stops it)", 1.0),
)


_Row = tuple[str, str, str, bool, str, float]

LIMITS: dict[str, tuple[float, float]] = {"reactor.setpoint": (0.0, 150.0)}
"""Engineering limits (min, max) of the plant's tags, the same over every protocol: the
plant clips the setpoint to 0-150 degC, and bifrost refuses writes outside it."""


def _limit(name: str, which: int) -> float | None:
    limits = LIMITS.get(name)
    return None if limits is None else limits[which]


def _table(rows: tuple[_Row, ...]) -> TagTable:
    """A tag table from rows of (name, address, unit, writable, description, scale)."""
    return TagTable(
        Tag(
            name=name,
            address=address,
            unit=unit,
            scale=scale,
            description=description,
            writable=writable,
            min=_limit(name, 0),
            max=_limit(name, 1),
        )
        for name, address, unit, writable, description, scale in rows
    )


def modbus_tags() -> TagTable:
    """The plant's Modbus tag table (see the module docstring for the map)."""
    return _table(_MODBUS)


def tag_table(protocol: str) -> TagTable:
    """The plant's tag table for ``protocol``.

    Raises
    ------
    ConfigurationError
        For a protocol the simulated plant does not serve.
    """
    if protocol == "modbus":
        return modbus_tags()
    if protocol == "s7":
        return s7_tags()
    if protocol == "opcua":
        return opcua_tags()
    raise ConfigurationError(
        f"the simulated plant does not serve {protocol!r}; available: {', '.join(PROTOCOLS)}"
    )


_AUX_TYPES = ("uint16", "int16")


def aux_tags(n: int, dtype: str = "uint16", *, aux: int = DEFAULT_AUX) -> TagTable:
    """``n`` tags on the auxiliary benchmark registers, named ``aux.0000``, ``aux.0001``...

    Parameters
    ----------
    n
        Number of tags, at most ``aux``.
    dtype
        ``"uint16"`` or ``"int16"`` (one register per tag).
    aux
        Number of auxiliary registers the plant has.
    """
    if dtype not in _AUX_TYPES:
        raise ConfigurationError(f"aux tags are {' or '.join(_AUX_TYPES)}, got {dtype!r}")
    if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= aux:
        raise ConfigurationError(f"the plant has {aux} auxiliary registers; cannot make {n!r}")
    width = max(4, len(str(max(n - 1, 0))))
    return TagTable(
        Tag(
            name=f"aux.{i:0{width}d}",
            address=f"hr:{MODBUS_AUX_START + i}:{dtype}",
            description=f"Auxiliary benchmark channel {i} (slow sine)",
        )
        for i in range(n)
    )


# -- OPC UA -------------------------------------------------------------------------------
# Served by bifrost.protocols.opcua.server in namespace 2; every variable's NodeId is
# ns=2;s=<identifier> and its browse path /Objects/2:Plant/2:<Unit>/2:<Name>. Types match
# the Modbus map (Float where Modbus has float32...) so both serve identical values;
# reactor.heater is the raw Int16 (0-1000) with scale 0.1, as over Modbus.

OPCUA_NAMESPACE = "urn:bifrost:sim"
"""Namespace URI of the plant's nodes (index 2)."""
OPCUA_AUX_FOLDER = "Aux"
"""Folder of the auxiliary benchmark variables (``Plant/Aux/aux.0000``...)."""


@dataclass(frozen=True, slots=True)
class OpcUaTagSpec:
    """One variable of the plant's OPC UA address space."""

    name: str
    identifier: str
    vtype: str
    unit: str
    writable: bool
    description: str
    length: int = 0  # array length; 0 for scalars
    scale: float = 1.0


OPCUA_TAGS = (
    OpcUaTagSpec("tank.level", "Plant.Tank.Level", "Float", "m", False, "Tank level (0-5 m)"),
    OpcUaTagSpec(
        "tank.inflow", "Plant.Tank.Inflow", "Float", "m3/h", False, "Feed flow into the tank"
    ),
    OpcUaTagSpec(
        "tank.outflow", "Plant.Tank.Outflow", "Float", "m3/h", False, "Drain flow, k*sqrt(level)"
    ),
    OpcUaTagSpec(
        "tank.high_alarm",
        "Plant.Tank.HighAlarm",
        "Boolean",
        "",
        False,
        "Tank level high alarm (on 3.5 m, off 3.3 m)",
    ),
    OpcUaTagSpec(
        "reactor.temperature",
        "Plant.Reactor.Temperature",
        "Float",
        "degC",
        False,
        "Measured reactor temperature",
    ),
    OpcUaTagSpec(
        "reactor.setpoint",
        "Plant.Reactor.Setpoint",
        "Float",
        "degC",
        True,
        "Reactor temperature setpoint (0-150 degC; writes are clipped to that range)",
    ),
    OpcUaTagSpec(
        "reactor.heater",
        "Plant.Reactor.Heater",
        "Int16",
        "%",
        False,
        "Heater output, raw 0-1000 = 0-100 % (scale 0.1)",
        scale=0.1,
    ),
    OpcUaTagSpec(
        "pump.speed",
        "Plant.Pump.Speed",
        "Float",
        "rpm",
        False,
        "Pump speed (1450 rpm when running)",
    ),
    OpcUaTagSpec(
        "pump.vibration_rms",
        "Plant.Pump.VibrationRms",
        "Float",
        "mm/s",
        False,
        "Pump vibration velocity RMS (1 s average)",
    ),
    OpcUaTagSpec(
        "pump.vibration",
        "Plant.Pump.Vibration",
        "Double",
        "mm/s",
        False,
        "Pump vibration waveform: the latest step's samples",
        length=64,
    ),
    OpcUaTagSpec("line.counter", "Plant.Line.Counter", "UInt32", "parts", False, "Parts produced"),
    OpcUaTagSpec(
        "line.state",
        "Plant.Line.State",
        "UInt16",
        "",
        False,
        "Line state: 0 stopped, 1 running, 2 fault",
    ),
    OpcUaTagSpec(
        "line.cycle",
        "Plant.Line.Cycle",
        "Boolean",
        "",
        False,
        "Machine-cycle trigger, true 25 % of each cycle",
    ),
    OpcUaTagSpec(
        "line.enable",
        "Plant.Line.Enable",
        "Boolean",
        "",
        True,
        "Operator enable of the line (false stops it)",
    ),
    OpcUaTagSpec("line.recipe", "Plant.Line.Recipe", "String", "", False, "Product being made"),
    OpcUaTagSpec(
        "plant.heartbeat",
        "Plant.Heartbeat",
        "UInt16",
        "",
        False,
        "Simulation step counter (wraps at 65536)",
    ),
)
"""The plant's OPC UA variables (see :mod:`bifrost.protocols.opcua.server` for the layout)."""


def opcua_tags() -> TagTable:
    """The plant's OPC UA tag table (NodeId addresses)."""
    return TagTable(
        Tag(
            name=spec.name,
            address=f"ns=2;s={spec.identifier}",
            unit=spec.unit,
            scale=spec.scale,
            description=spec.description,
            writable=spec.writable,
            min=_limit(spec.name, 0),
            max=_limit(spec.name, 1),
        )
        for spec in OPCUA_TAGS
    )


def opcua_aux_tags(n: int) -> TagTable:
    """``n`` tags on the plant's auxiliary OPC UA variables ``ns=2;s=Plant.Aux.0000``..."""
    return TagTable(
        Tag(
            name=f"aux.{i:04d}",
            address=f"ns=2;s=Plant.Aux.{i:04d}",
            description=f"Auxiliary benchmark channel {i}",
        )
        for i in range(n)
    )


# -- Siemens S7 ---------------------------------------------------------------------------
S7_PLANT_DB = 1
"""Data block holding the plant's tags (64 bytes)."""
S7_PLANT_DB_SIZE = 64
S7_SCRATCH_DB = 2
"""Writable scratch data block (256 bytes) that keeps what clients write."""
S7_SCRATCH_DB_SIZE = 256
S7_AUX_DB = 100
"""Data block of the auxiliary benchmark channels, one REAL per channel."""
S7_AUX_MAX = 16384
"""Most auxiliary channels DB100 holds (a data block has at most 65536 bytes)."""
S7_MARKER_SIZE = 64
"""Merker bytes MB0-MB63 exist (writable scratch)."""
S7_IO_SIZE = 16
"""Input bytes IB0-IB15 (zeros, read-only) and output bytes QB0-QB15 (writable) exist."""

_S7 = (
    # name, address, unit, writable, description, scale
    ("tank.level", "DB1.DBD0:REAL", "m", False, "Tank level (0-5 m)", 1.0),
    ("tank.inflow", "DB1.DBD4:REAL", "m3/h", False, "Feed flow into the tank", 1.0),
    ("tank.outflow", "DB1.DBD8:REAL", "m3/h", False, "Drain flow, k*sqrt(level)", 1.0),
    ("reactor.temperature", "DB1.DBD12:REAL", "degC", False, "Measured reactor temperature", 1.0),
    (
        "reactor.setpoint",
        "DB1.DBD16:REAL",
        "degC",
        True,
        "Reactor temperature setpoint (0-150 degC; writes are clipped to that range)",
        1.0,
    ),
    ("pump.speed", "DB1.DBD20:REAL", "rpm", False, "Pump speed (1450 rpm when running)", 1.0),
    (
        "pump.vibration_rms",
        "DB1.DBD24:REAL",
        "mm/s",
        False,
        "Pump vibration velocity RMS (1 s average)",
        1.0,
    ),
    ("line.counter", "DB1.DBD28", "parts", False, "Parts produced (DWORD, wraps at 2**32)", 1.0),
    ("line.state", "DB1.DBW32", "", False, "Line state: 0 stopped, 1 running, 2 fault", 1.0),
    ("reactor.heater", "DB1.DBW34:INT", "%", False, "Heater output, raw 0-1000 = 0-100 %", 0.1),
    ("plant.heartbeat", "DB1.DBW36", "", False, "Simulation step counter (wraps)", 1.0),
    ("tank.high_alarm", "DB1.DBX38.0", "", False, "Level high alarm (on 3.5 m, off 3.3 m)", 1.0),
    ("line.cycle", "DB1.DBX38.1", "", False, "Machine-cycle trigger, true 25 % of each cycle", 1.0),
    ("line.enable", "DB1.DBX38.2", "", True, "Operator enable of the line (false stops it)", 1.0),
    ("line.recipe", "DB1.DBB40:STRING[16]", "", False, "Product being made (DBB40-57)", 1.0),
)


def s7_tags() -> TagTable:
    """The plant's S7 tag table: data block DB1, the same names as over Modbus.

    =====================  =====================  =========  ======  =========================
    Tag                    Address                Unit       Access  Meaning
    =====================  =====================  =========  ======  =========================
    tank.level             DB1.DBD0:REAL          m          R       tank level, 0-5 m
    tank.inflow            DB1.DBD4:REAL          m3/h       R       feed flow into the tank
    tank.outflow           DB1.DBD8:REAL          m3/h       R       drain flow
    reactor.temperature    DB1.DBD12:REAL         degC       R       reactor temperature
    reactor.setpoint       DB1.DBD16:REAL         degC       RW      setpoint, 0-150 degC
    pump.speed             DB1.DBD20:REAL         rpm        R       pump speed
    pump.vibration_rms     DB1.DBD24:REAL         mm/s       R       vibration velocity RMS
    line.counter           DB1.DBD28 (DWORD)      parts      R       parts produced
    line.state             DB1.DBW32 (WORD)                  R       0 stopped, 1 running, 2 fault
    reactor.heater         DB1.DBW34:INT, x0.1    %          R       heater output, raw 0-1000
    plant.heartbeat        DB1.DBW36 (WORD)                  R       step counter (wraps)
    tank.high_alarm        DB1.DBX38.0                       R       level high alarm
    line.cycle             DB1.DBX38.1                       R       machine-cycle trigger
    line.enable            DB1.DBX38.2                       RW      operator enable of the line
    line.recipe            DB1.DBB40:STRING[16]              R       product (DBB40-57)
    =====================  =====================  =========  ======  =========================

    Other areas: DB1 bytes 39 and 58-63 read as zeros; DB2 (256 bytes), MB0-MB63 and
    QB0-QB15 are writable scratch areas that keep what clients write; IB0-IB15 read as
    zeros; DB100 holds the auxiliary benchmark channels as REALs (channel ``i`` at
    ``DB100.DBD{4 i}``). Writes anywhere else, and to the read-only bits of DBB38, are
    refused with item return code 0x03 (access denied); addresses past an area's end
    with 0x05, unknown data blocks with 0x0A, as a PLC does.
    """
    return _table(_S7)


def s7_aux_tags(n: int, *, every: int = 1, aux: int = DEFAULT_AUX) -> TagTable:
    """``n`` REAL tags on the auxiliary channels in DB100: channel ``0, every, 2 every...``.

    ``every=4`` spreads the tags over the block, one REAL every 16 bytes (the scattered
    read of the benchmarks); names are ``aux.0000``... by channel number.
    """
    if isinstance(every, bool) or not isinstance(every, int) or every < 1:
        raise ConfigurationError(f"every must be an integer >= 1, got {every!r}")
    channels = min(aux, S7_AUX_MAX)
    if isinstance(n, bool) or not isinstance(n, int) or n < 0 or (n - 1) * every >= channels:
        raise ConfigurationError(
            f"DB100 holds {channels} auxiliary channels; cannot make {n!r} tags every {every}"
        )
    width = max(4, len(str(max((n - 1) * every, 0))))
    return TagTable(
        Tag(
            name=f"aux.{i * every:0{width}d}",
            address=f"DB{S7_AUX_DB}.DBD{4 * i * every}:REAL",
            description=f"Auxiliary benchmark channel {i * every} (slow sine, as REAL)",
        )
        for i in range(n)
    )


__all__ += [
    "S7_AUX_DB",
    "S7_AUX_MAX",
    "S7_IO_SIZE",
    "S7_MARKER_SIZE",
    "S7_PLANT_DB",
    "S7_PLANT_DB_SIZE",
    "S7_SCRATCH_DB",
    "S7_SCRATCH_DB_SIZE",
    "s7_aux_tags",
    "s7_tags",
]
