"""Tag tables from Node-RED flows: the registers node-red-contrib-modbus read nodes read.

A flow export (``flows.json``, or the JSON of *Export* > *Clipboard*) is a list of nodes.
Each ``modbus-read`` and ``modbus-getter`` node reads ``quantity`` values of one
``dataType`` from address ``adr`` (0-based) of unit ``unitid`` (empty: the unit of its
``modbus-client`` config node). Its payload is an array of those values, so every one of
them becomes a tag named ``<node name>.<index>`` (the node's ``topic`` or id when it has
no name):

=================  ===========  ===================================
``dataType``       table        each value
=================  ===========  ===================================
``HoldingRegister``  ``hr``     ``uint16`` (the payload's raw word)
``InputRegister``    ``ir``     ``uint16``
``Coil``             ``co``     bool
``Input``            ``di``     bool
=================  ===========  ===================================

Wider values (floats over two registers) are put together by a later node in the flow,
which this importer does not follow: edit the table's types where you know them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from bifrost.exceptions import value_repr
from bifrost.tagimport._addresses import modbus_address
from bifrost.tagimport._source import Entry, Source, integer, text
from bifrost.tags import TagTable, TextSource, read_tag_text

__all__ = ["from_node_red"]

_READ_NODES = ("modbus-read", "modbus-getter")
_TABLES = {"HoldingRegister": "hr", "InputRegister": "ir", "Coil": "co", "Input": "di"}
_MAX_QUANTITY = {"hr": 125, "ir": 125, "co": 2000, "di": 2000}


def from_node_red(
    source: TextSource, *, server: str | None = None, encoding: str | None = None
) -> TagTable:
    """Read the Modbus read nodes of a Node-RED flow export (see the module docstring).

    Raises
    ------
    ConfigurationError
        Naming the file, the line and the node's field at fault.
    """
    content, where = read_tag_text(source, encoding)
    src = Source(where, "Node-RED flow", content)
    try:
        flow = json.loads(content)
    except json.JSONDecodeError as exc:
        raise src.error(f"not valid JSON: {exc.msg}", exc.lineno) from None
    except RecursionError:
        raise src.error("not valid JSON: nested too deeply") from None
    if isinstance(flow, Mapping) and isinstance(flow.get("flows"), list):
        flow = flow["flows"]  # the admin API's {"rev": ..., "flows": [...]}
    if not isinstance(flow, list):
        raise src.error("a flow export is a JSON list of nodes")
    nodes = [n for n in flow if isinstance(n, Mapping)]
    servers = {str(n.get("id")): n for n in nodes if n.get("type") == "modbus-client"}
    readers = [n for n in nodes if n.get("type") in _READ_NODES]
    if not readers:
        raise src.error("no modbus-read or modbus-getter node in this flow")
    chosen = _choose_server(src, readers, servers, server)
    for node in readers:
        if chosen is None or str(node.get("server")) == chosen:
            _reader(src, node, servers.get(str(node.get("server"))))
    return src.table()


def _node_line(src: Source, node: Mapping[str, Any]) -> int | None:
    node_id = re.escape(str(node.get("id", "")))
    return src.line_of(rf"\"id\"\s*:\s*\"{node_id}\"") if node_id else None


def _server_labels(node: Mapping[str, Any] | None, server_id: str) -> list[str]:
    labels = [server_id]
    if node is not None:
        if node.get("name"):
            labels.append(str(node["name"]))
        if node.get("tcpHost"):
            labels.append(f"{node['tcpHost']}:{node.get('tcpPort', 502)}")
    return labels


def _choose_server(
    src: Source,
    readers: list[Mapping[str, Any]],
    servers: Mapping[str, Mapping[str, Any]],
    wanted: str | None,
) -> str | None:
    used = sorted({str(n.get("server")) for n in readers})
    if wanted is None:
        if len(used) == 1:
            return None
        shown = ", ".join(" / ".join(_server_labels(servers.get(s), s)) for s in used)
        raise src.error(
            f"the flow's read nodes use {len(used)} Modbus servers ({shown}); pick one with server="
        )
    matches = [s for s in used if wanted in _server_labels(servers.get(s), s)]
    if len(matches) != 1:
        raise src.error(f"no single Modbus server of the flow matches server={wanted!r}")
    return matches[0]


def _reader(src: Source, node: Mapping[str, Any], server: Mapping[str, Any] | None) -> None:
    line = _node_line(src, node)
    kind = node.get("dataType")
    table = _TABLES.get(str(kind))
    base = text(src, node.get("name"), line, "name") or text(src, node.get("topic"), line, "topic")
    base = base or str(node.get("id", "modbus"))
    if table is None:
        raise src.error(
            f"node {base!r}: dataType must be one of {', '.join(_TABLES)}, got {value_repr(kind)}",
            line,
            "dataType",
        )
    start = integer(src, node.get("adr"), line, "adr")
    quantity = integer(src, node.get("quantity", 1), line, "quantity")
    if not 1 <= quantity <= _MAX_QUANTITY[table]:
        raise src.error(
            f"node {base!r}: quantity must be 1-{_MAX_QUANTITY[table]} for {kind}, got {quantity}",
            line,
            "quantity",
        )
    unit = _unit(src, node, server, line)
    for k in range(quantity):
        entry = Entry(
            f"{base}.{k}",
            modbus_address(table, start + k, "uint16", unit=unit),
            "modbus",
            line,
            description=f"payload[{k}] of Node-RED node {base!r}",
            meta={"node_red_node": str(node.get("id", ""))},
        )
        src.add(entry, "adr")


def _unit(
    src: Source, node: Mapping[str, Any], server: Mapping[str, Any] | None, line: int | None
) -> int | None:
    value = node.get("unitid")
    field_name = "unitid"
    if value in (None, "") and server is not None:
        value, field_name = server.get("unit_id"), "unit_id"
    if value in (None, ""):
        return None
    unit = integer(src, value, line, field_name)
    if unit > 255:
        raise src.error(f"a Modbus unit id is 0-255, got {unit}", line, field_name)
    return unit
