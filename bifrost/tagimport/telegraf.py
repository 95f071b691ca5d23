"""Tag tables from Telegraf configurations: ``inputs.modbus``, ``inputs.s7comm``, ``inputs.opcua``.

What each plugin's documented configuration becomes:

``[[inputs.modbus]]``
    All three configuration styles. ``register`` (``coils``, ``discrete_inputs``,
    ``holding_registers``, ``input_registers`` with ``address = [..]`` lists): the number
    of registers gives the width of ``FIXED``/``UFIXED`` (and of ``FLOAT32``, Telegraf's
    deprecated alias of ``UFIXED``); ``byte_order`` AB/BA, ABCD/DCBA/BADC/CDAB or the
    eight-letter 64-bit forms. ``request`` (``[[inputs.modbus.request]]`` with
    ``register``, ``byte_order`` and ``fields``) and ``metric`` (``[[inputs.modbus.metric]]``,
    a ``register`` per field): ``INT16`` ... ``FLOAT64``, ``STRING`` (``length`` registers);
    ``omit = true`` fields are left out. ``scale`` becomes the tag's scale, ``slave_id``
    the unit id in the address (``hr:0:int16@1``).
``[[inputs.s7comm]]``
    ``[[inputs.s7comm.metric]]`` fields ``{name, address}`` with Telegraf's addresses
    ``DB1.R4``, ``DB1.X2.1``, ``DB2.S1.32``, ``PE0.W4``, ``MK0.DI8`` ...
``[[inputs.opcua]]`` (and ``inputs.opcua_listener``)
    ``nodes`` and ``[[inputs.opcua.group]]`` nodes with ``namespace``,
    ``identifier_type`` and ``identifier`` (a group's values are the defaults of its
    nodes).

A field's name is its tag name, prefixed with its ``measurement`` (Modbus), metric
``name`` (S7) or group ``name`` (OPC UA) when the file sets one (``motor.jog``). A file
with several plugin instances (devices) needs ``device=``: the instance's ``name``,
``controller``, ``server`` or ``endpoint``.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator, Mapping
from typing import Any

from bifrost.exceptions import value_repr
from bifrost.tagimport._addresses import modbus_address, order_for, s7_address
from bifrost.tagimport._source import Entry, Source, integer, number, text
from bifrost.tags import TagTable, TextSource, read_tag_text

__all__ = ["from_telegraf"]

_PLUGINS = ("modbus", "s7comm", "opcua", "opcua_listener")

# -- Modbus -------------------------------------------------------------------------------
_REGISTER_LISTS = {
    "coils": "co",
    "discrete_inputs": "di",
    "holding_registers": "hr",
    "input_registers": "ir",
}
_REQUEST_REGISTERS = {"coil": "co", "discrete": "di", "holding": "hr", "input": "ir"}
# Telegraf type -> (bifrost type, registers); FIXED/UFIXED take their width from the
# address list (register style only).
_TYPES = {
    "INT16": ("int16", 1),
    "UINT16": ("uint16", 1),
    "INT32": ("int32", 2),
    "UINT32": ("uint32", 2),
    "INT64": ("int64", 4),
    "UINT64": ("uint64", 4),
    "FLOAT32": ("float32", 2),  # request/metric style; register style: see _REGISTER_TYPES
    "FLOAT64": ("float64", 4),
    "FLOAT32-IEEE": ("float32", 2),
    "FLOAT64-IEEE": ("float64", 4),
}
_UNREADABLE = {
    "INT8L": "the low byte of a register",
    "INT8H": "the high byte of a register",
    "UINT8L": "the low byte of a register",
    "UINT8H": "the high byte of a register",
    "FLOAT16": "a 16-bit float",
    "FLOAT16-IEEE": "a 16-bit float",
    "BIT": "one bit of a register",
}
_FIXED_WIDTHS = {1: "16", 2: "32", 4: "64"}
_ORDERS_64 = {"ABCDEFGH": "ABCD", "HGFEDCBA": "DCBA", "BADCFEHG": "BADC", "GHEFCDAB": "CDAB"}
_ORDERS = {"AB": "ABCD", "BA": "BADC", **{o: o for o in ("ABCD", "DCBA", "BADC", "CDAB")}}

# -- S7 -----------------------------------------------------------------------------------
_S7_ADDRESS = re.compile(r"^([A-Z]+)([0-9]+)\.([A-Z]+)([0-9]+)(?:\.(.*))?$")
_S7_AREAS = {"DB": "DB", "PE": "I", "PA": "Q", "MK": "M"}
_S7_TYPES = {
    "B": "BYTE",
    "C": "CHAR",
    "W": "WORD",
    "I": "INT",
    "DW": "DWORD",
    "DI": "DINT",
    "LI": "LINT",
    "R": "REAL",
    "LR": "LREAL",
}


def from_telegraf(
    source: TextSource,
    *,
    device: str | None = None,
    skip_unsupported: bool = False,
    encoding: str | None = None,
) -> TagTable:
    """Read the tags of a Telegraf configuration (see the module docstring).

    Parameters
    ----------
    source
        Path, open file or TOML text (with a newline).
    device
        Which plugin instance to import when the file has several.
    skip_unsupported
        Leave out fields of types bifrost cannot read, with a warning.
    encoding
        The file's encoding (UTF-8 by default).

    Returns
    -------
    TagTable

    Raises
    ------
    ConfigurationError
        Naming the file, the line and the field at fault.
    """
    content, where = read_tag_text(source, encoding)
    src = Source(where, "Telegraf", content, skip_unsupported=skip_unsupported)
    try:
        config = tomllib.loads(content)
    except tomllib.TOMLDecodeError as exc:
        # tomllib's message ends with "(at line N, column M)".
        raise src.error(f"not valid TOML: {exc}") from None
    instances = list(_instances(src, config))
    if not instances:
        raise src.error(
            "no [[inputs.modbus]], [[inputs.s7comm]] or [[inputs.opcua]] section in this file"
        )
    plugin, settings, line = _choose(src, instances, device)
    if plugin == "modbus":
        _modbus(src, settings, line)
    elif plugin == "s7comm":
        _s7comm(src, settings, line)
    else:
        _opcua(src, settings, line, plugin)
    return src.table()


_Instance = tuple[str, Mapping[str, Any], int]  # plugin, its settings, its header's line


def _instances(src: Source, config: Mapping[str, Any]) -> Iterator[_Instance]:
    inputs = config.get("inputs", {})
    if not isinstance(inputs, Mapping):
        return
    for plugin in _PLUGINS:
        blocks = inputs.get(plugin)
        if blocks is None:
            continue
        if isinstance(blocks, Mapping):
            blocks = [blocks]
        line = 0
        for block in blocks:
            found = src.line_of(rf"^\s*\[\[?\s*inputs\.{plugin}\s*\]\]?", line + 1)
            line = found or line
            if isinstance(block, Mapping):
                yield plugin, block, line


def _label(plugin: str, settings: Mapping[str, Any]) -> list[str]:
    keys = ("name", "controller", "server", "endpoint")
    return [str(settings[k]) for k in keys if isinstance(settings.get(k), str)] or [plugin]


def _choose(src: Source, instances: list[_Instance], device: str | None) -> _Instance:
    if device is None:
        if len(instances) == 1:
            return instances[0]
        shown = ", ".join(f"{p} {' / '.join(_label(p, s))!r}" for p, s, _ in instances)
        raise src.error(
            f"this file configures {len(instances)} devices ({shown}); pick one with device="
        )
    matches = [i for i in instances if device in _label(i[0], i[1])]
    if len(matches) != 1:
        shown = ", ".join(repr(" / ".join(_label(p, s))) for p, s, _ in instances)
        how = "no" if not matches else "more than one"
        raise src.error(f"{how} device matches device={device!r}; the file has {shown}")
    return matches[0]


def _name_line(src: Source, name: str, start: int) -> int | None:
    quoted = re.escape(name)
    return src.line_of(rf"\bname\s*=\s*[\"']{quoted}[\"']", start) or (start or None)


def _tag_name(name: str, measurement: Any) -> str:
    return f"{measurement}.{name}" if isinstance(measurement, str) and measurement else name


def _unit(src: Source, value: Any, line: int | None) -> int | None:
    if value is None:
        return None
    unit = integer(src, value, line, "slave_id")
    if unit > 255:
        raise src.error(f"a Modbus unit id is 0-255, got {unit}", line, "slave_id")
    return unit


def _order(src: Source, value: Any, line: int | None) -> str:
    if value is None:
        return "ABCD"
    text_value = str(value).strip().upper()
    order = _ORDERS.get(text_value) or _ORDERS_64.get(text_value)
    if order is None:
        raise src.error(
            f"unknown byte order {value_repr(value)}; Telegraf's are AB, BA, ABCD, DCBA, "
            "BADC, CDAB and their 64-bit forms",
            line,
            "byte_order",
        )
    return order


def _entries(src: Source, value: Any, what: str, line: int | None) -> list[Mapping[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, Mapping) for v in value):
        raise src.error(f"{what} must be a list of {{ name = ..., ... }} tables", line, what)
    return value


def _modbus(src: Source, settings: Mapping[str, Any], line: int) -> None:
    style = str(settings.get("configuration_type", "register")).strip().lower()
    if style == "register":
        _modbus_registers(src, settings, line)
    elif style in ("request", "metric"):
        unit_default = settings.get("slave_id")
        blocks = _entries(src, settings.get(style), style, line)
        start = line
        for block in blocks:
            header = src.line_of(rf"^\s*\[\[\s*inputs\.modbus\.{style}\s*\]\]", start + 1)
            start = header or start
            _modbus_block(src, block, start, style, unit_default)
    else:
        raise src.error(
            f"unknown configuration_type {value_repr(style)}; expected register, request or metric",
            src.line_of(r"configuration_type", line),
            "configuration_type",
        )


def _modbus_registers(src: Source, settings: Mapping[str, Any], line: int) -> None:
    unit = _unit(src, settings.get("slave_id"), src.line_of(r"\bslave_id\b", line))
    for key, table in _REGISTER_LISTS.items():
        for item in _entries(src, settings.get(key), key, line):
            name = text(src, item.get("name"), line, "name")
            at = _name_line(src, name, line) if name else line
            if not name:
                raise src.error(f"an entry of {key} has no name", at, "name")
            addresses = item.get("address")
            if not isinstance(addresses, list) or not addresses:
                raise src.error(f"{name!r}: address must be a list like [0]", at, "address")
            registers = [integer(src, a, at, "address") for a in addresses]
            first = registers[0]
            if registers != list(range(first, first + len(registers))):
                raise src.error(
                    f"{name!r}: the registers {registers} are not consecutive", at, "address"
                )
            tag_name = _tag_name(name, item.get("measurement"))
            if table in ("co", "di"):
                src.add(Entry(tag_name, modbus_address(table, first, unit=unit), "modbus", at))
                continue
            dtype = _register_type(src, item, len(registers), tag_name, at)
            if dtype is None:
                continue
            order = order_for(dtype, _order(src, item.get("byte_order"), at))
            scale = number(src, item.get("scale"), at, "scale", 1.0)
            src.add(
                Entry(
                    tag_name,
                    modbus_address(table, first, dtype, order, unit),
                    "modbus",
                    at,
                    scale=1.0 if scale is None else scale,
                    meta={"telegraf_type": str(item.get("data_type", ""))},
                )
            )


def _register_type(
    src: Source, item: Mapping[str, Any], count: int, name: str, line: int | None
) -> str | None:
    data_type = str(item.get("data_type", "")).strip().upper()
    if data_type in _UNREADABLE:
        src.unsupported(name, f"{data_type} is {_UNREADABLE[data_type]}", line, "data_type")
        return None
    if data_type in ("FIXED", "UFIXED", "FLOAT32"):
        width = _FIXED_WIDTHS.get(count)
        if width is None:
            raise src.error(
                f"{name!r}: {data_type} needs 1, 2 or 4 registers, the address has {count}",
                line,
                "address",
            )
        return ("int" if data_type == "FIXED" else "uint") + width
    if data_type not in _TYPES:
        raise src.error(
            f"{name!r}: unknown data_type {value_repr(item.get('data_type'))}", line, "data_type"
        )
    dtype, needed = _TYPES[data_type]
    if count != needed:
        raise src.error(
            f"{name!r}: {data_type} takes {needed} register{'s' if needed > 1 else ''}, the "
            f"address lists {count}",
            line,
            "address",
        )
    return dtype


def _modbus_block(
    src: Source, block: Mapping[str, Any], line: int, style: str, unit_default: Any
) -> None:
    unit = _unit(src, block.get("slave_id", unit_default), src.line_of(r"\bslave_id\b", line))
    order = _order(src, block.get("byte_order"), src.line_of(r"\bbyte_order\b", line))
    block_register = block.get("register")
    for item in _entries(src, block.get("fields"), "fields", line):
        name = text(src, item.get("name"), line, "name")
        at = _name_line(src, name, line) if name else line
        if item.get("omit") is True:
            continue
        if not name:
            raise src.error("a field has no name", at, "name")
        register = item.get("register", block_register) if style == "metric" else block_register
        table = _REQUEST_REGISTERS.get(str(register).strip().lower())
        if table is None:
            raise src.error(
                f"{name!r}: register must be coil, discrete, holding or input, got "
                f"{value_repr(register)}",
                at,
                "register",
            )
        offset = integer(src, item.get("address"), at, "address")
        tag_name = _tag_name(name, item.get("measurement", block.get("measurement")))
        if table in ("co", "di"):
            src.add(Entry(tag_name, modbus_address(table, offset, unit=unit), "modbus", at))
            continue
        dtype = _field_type(src, item, tag_name, at)
        if dtype is None:
            continue
        scale = number(src, item.get("scale"), at, "scale", 1.0)
        src.add(
            Entry(
                tag_name,
                modbus_address(table, offset, dtype, order_for(dtype, order), unit),
                "modbus",
                at,
                scale=1.0 if scale is None else scale,
                meta={"telegraf_type": str(item.get("type", ""))},
            )
        )


def _field_type(src: Source, item: Mapping[str, Any], name: str, line: int | None) -> str | None:
    field_type = str(item.get("type", "")).strip().upper()
    if not field_type:
        raise src.error(f"{name!r}: a register field needs a type", line, "type")
    if field_type in _UNREADABLE:
        src.unsupported(name, f"{field_type} is {_UNREADABLE[field_type]}", line, "type")
        return None
    if field_type == "STRING":
        registers = integer(src, item.get("length"), line, "length")
        return f"string[{2 * registers}]"
    if field_type not in _TYPES or field_type.endswith("-IEEE"):
        raise src.error(f"{name!r}: unknown type {value_repr(item.get('type'))}", line, "type")
    return _TYPES[field_type][0]


# -- S7 -----------------------------------------------------------------------------------
def _s7comm(src: Source, settings: Mapping[str, Any], line: int) -> None:
    start = line
    for metric in _entries(src, settings.get("metric"), "metric", line):
        header = src.line_of(r"^\s*\[\[\s*inputs\.s7comm\.metric\s*\]\]", start + 1)
        start = header or start
        for item in _entries(src, metric.get("fields"), "fields", start):
            name = text(src, item.get("name"), start, "name")
            at = _name_line(src, name, start) if name else start
            if not name:
                raise src.error("a field has no name", at, "name")
            shown = text(src, item.get("address"), at, "address")
            tag_name = _tag_name(name, metric.get("name"))
            address = _s7_address(src, shown, tag_name, at)
            if address is not None:
                src.add(Entry(tag_name, address, "s7", at, source_address=shown))


def _s7_address(src: Source, shown: str, name: str, line: int | None) -> str | None:
    match = _S7_ADDRESS.match(shown.strip().upper())
    if match is None:
        raise src.error(
            f"{shown!r} of {name!r} is not a Telegraf S7 address like DB1.R4 or DB1.X2.1",
            line,
            "address",
        )
    area_text, number_text, kind, start_text, extra = match.groups()
    area = _S7_AREAS.get(area_text)
    if area is None:
        src.unsupported(name, f"the S7 area {area_text!r} (timers, counters)", line, "address")
        return None
    db, offset = int(number_text), int(start_text)
    if kind == "X":
        if extra is None or not extra.isdigit():
            raise src.error(f"{shown!r}: a bit address needs .<bit>", line, "address")
        return s7_address(area, db, offset, "BOOL", bit=int(extra))
    if kind == "S":
        if extra is None or not extra.isdigit():
            raise src.error(f"{shown!r}: a string address needs .<length>", line, "address")
        return s7_address(area, db, offset, "STRING", length=int(extra))
    if kind == "DT":
        src.unsupported(name, "DATE_AND_TIME values", line, "address")
        return None
    if kind not in _S7_TYPES:
        raise src.error(f"{shown!r}: unknown S7 type letter {kind!r}", line, "address")
    return s7_address(area, db, offset, _S7_TYPES[kind])


# -- OPC UA -------------------------------------------------------------------------------
def _opcua(src: Source, settings: Mapping[str, Any], line: int, plugin: str) -> None:
    for node in _entries(src, settings.get("nodes"), "nodes", line):
        _opcua_node(src, node, {}, line, None)
    start = line
    for group in _entries(src, settings.get("group"), "group", line):
        header = src.line_of(rf"^\s*\[\[\s*inputs\.{plugin}\.group\s*\]\]", start + 1)
        start = header or start
        for node in _entries(src, group.get("nodes"), "nodes", start):
            _opcua_node(src, node, group, start, group.get("name"))


def _opcua_node(
    src: Source,
    node: Mapping[str, Any],
    defaults: Mapping[str, Any],
    line: int,
    group: Any,
) -> None:
    name = text(src, node.get("name"), line, "name")
    at = _name_line(src, name, line) if name else line
    if not name:
        raise src.error("a node has no name", at, "name")
    namespace = node.get("namespace", defaults.get("namespace"))
    kind = text(src, node.get("identifier_type", defaults.get("identifier_type")), at, "type")
    identifier = text(src, node.get("identifier", defaults.get("identifier")), at, "identifier")
    tag_name = _tag_name(name, group)
    if namespace is None:
        if node.get("namespace_uri", defaults.get("namespace_uri")) is not None:
            src.unsupported(
                tag_name, "a namespace_uri (give the namespace index instead)", at, "namespace"
            )
            return
        raise src.error(f"{name!r} has no namespace", at, "namespace")
    ns = integer(src, namespace, at, "namespace")
    if kind not in ("i", "s", "g", "b"):
        raise src.error(
            f"{name!r}: identifier_type must be i, s, g or b, got {kind!r}", at, "identifier_type"
        )
    if not identifier:
        raise src.error(f"{name!r} has no identifier", at, "identifier")
    src.add(Entry(tag_name, f"ns={ns};{kind}={identifier}", "opcua", at), "identifier")
