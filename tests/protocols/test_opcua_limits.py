"""OperationLimits respected, against a stock asyncua server that enforces small limits.

asyncua's server states limits but does not enforce them; this one answers
BadTooManyOperations to any request above its limit (as real servers do), and records
the size of every request. Five of its variables are historized with asyncua's own
in-memory history (``historize_node_data_change``), which pages by
``max_history_data_response_size``: history reads follow its continuation points.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pytest
from asyncua import ua as _ua
from asyncua.server.server import Server

import bifrost as bf

ua: Any = _ua
LIMITS = {"read": 5, "write": 3, "browse": 3, "translate": 4, "monitored_items": 4}
LIMITS["history_read_data"] = 2
_NODES = {
    "read": ua.ObjectIds.Server_ServerCapabilities_OperationLimits_MaxNodesPerRead,
    "write": ua.ObjectIds.Server_ServerCapabilities_OperationLimits_MaxNodesPerWrite,
    "browse": ua.ObjectIds.Server_ServerCapabilities_OperationLimits_MaxNodesPerBrowse,
    "translate": (
        ua.ObjectIds.Server_ServerCapabilities_OperationLimits_MaxNodesPerTranslateBrowsePathsToNodeIds
    ),
    "monitored_items": (
        ua.ObjectIds.Server_ServerCapabilities_OperationLimits_MaxMonitoredItemsPerCall
    ),
    "history_read_data": (
        ua.ObjectIds.Server_ServerCapabilities_OperationLimits_MaxNodesPerHistoryReadData
    ),
}
GROUPS, PER_GROUP, HISTORIZED, HISTORY_VALUES = 6, 4, 5, 6
T0 = datetime(2026, 1, 1, tzinfo=UTC)
KEPT = timedelta(days=36_500)  # asyncua trims history older than this, counted from now
WAIT = 10.0


def _historized(g: int, v: int) -> bool:
    return g == 0 or (g == 1 and v == 0)


def _value(g: int, v: int) -> float:
    # A historized variable holds the last value written to its history.
    return float(HISTORY_VALUES - 1) if _historized(g, v) else g * 10.0 + v + 0.5


class LimitedServer:
    """An asyncua server on its own loop thread, with small enforced OperationLimits."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.sizes: dict[str, list[int]] = {name: [] for name in LIMITS}
        self.server: Any = None
        self.url = ""

    def run(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(WAIT)

    async def start(self) -> None:
        import socket

        with socket.socket() as probe:  # asyncua advertises its URL before binding
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        server = Server()
        await server.init()
        self.url = f"opc.tcp://127.0.0.1:{port}/limited/"
        server.set_endpoint(self.url)
        server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
        ns = await server.register_namespace("urn:bifrost:test:limits")
        folder = await server.nodes.objects.add_folder(ua.NodeId("Limited", ns), f"{ns}:Limited")
        for g in range(GROUPS):
            group = await folder.add_folder(ua.NodeId(f"G{g}", ns), f"{ns}:G{g}")
            for v in range(PER_GROUP):
                node = await group.add_variable(
                    ua.NodeId(f"G{g}.V{v}", ns), f"{ns}:V{v}", _value(g, v), ua.VariantType.Double
                )
                await node.set_writable()
                if _historized(g, v):
                    await server.historize_node_data_change(
                        node, period=timedelta(days=1), count=100
                    )
                    for k in range(HISTORY_VALUES):
                        stamp = T0 + timedelta(seconds=k)
                        await node.write_value(
                            ua.DataValue(
                                ua.Variant(float(k), ua.VariantType.Double),
                                SourceTimestamp=stamp,
                                ServerTimestamp=stamp,
                            )
                        )
                        await asyncio.sleep(0.02)  # the history subscription stores each
        server.iserver.history_manager.storage.max_history_data_response_size = 2
        for name, node_id in _NODES.items():
            node = server.get_node(ua.NodeId(node_id))
            await node.write_value(ua.Variant(LIMITS[name], ua.VariantType.UInt32))
        await server.start()
        self.server = server
        self._enforce(server.iserver)

    def _enforce(self, iserver: Any) -> None:
        def check(name: str, size: int) -> None:
            self.sizes[name].append(size)
            if size > LIMITS[name]:
                raise ua.UaStatusCodeError(ua.StatusCodes.BadTooManyOperations)

        attributes, view = iserver.attribute_service, iserver.view_service
        read, browse, translate = (
            attributes.read,
            view.browse,
            view.translate_browsepaths_to_nodeids,
        )
        write = attributes.write
        monitor = iserver.subscription_service.create_monitored_items
        history = iserver.history_manager.read_history

        def limited_read(params: Any) -> Any:
            check("read", len(params.NodesToRead))
            return read(params)

        async def limited_write(params: Any, user: Any = None) -> Any:
            check("write", len(params.NodesToWrite))
            return await write(params, user=user)

        def limited_browse(params: Any) -> Any:
            check("browse", len(params.NodesToBrowse))
            return browse(params)

        def limited_translate(params: Any) -> Any:
            check("translate", len(params))
            return translate(params)

        async def limited_monitor(params: Any) -> Any:
            check("monitored_items", len(params.ItemsToCreate))
            return await monitor(params)

        async def limited_history(params: Any) -> Any:
            check("history_read_data", len(params.NodesToRead))
            return await history(params)

        attributes.read = limited_read
        attributes.write = limited_write
        view.browse = limited_browse
        view.translate_browsepaths_to_nodeids = limited_translate
        iserver.subscription_service.create_monitored_items = limited_monitor
        iserver.history_manager.read_history = limited_history

    def stop(self) -> None:
        if self.server is not None:
            self.run(self.server.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(WAIT)
        self.loop.close()


@pytest.fixture(scope="module")
def server() -> Iterator[LimitedServer]:
    limited = LimitedServer()
    try:
        limited.run(limited.start())
        yield limited
    finally:
        limited.stop()


@pytest.fixture
def plc(server: LimitedServer) -> Iterator[bf.Connection]:
    for sizes in server.sizes.values():
        sizes.clear()
    with bf.connect(server.url, security="None", writable=True) as connection:
        yield connection


def _paths(groups: range = range(GROUPS)) -> list[str]:
    return [f"/Objects/2:Limited/2:G{g}/2:V{v}" for g in groups for v in range(PER_GROUP)]


def _assert_split(server: LimitedServer, name: str) -> None:
    sizes = server.sizes[name]
    assert len(sizes) > 1, f"{name}: the limit was not exercised ({sizes})"
    assert max(sizes) <= LIMITS[name], f"{name}: {sizes}"


def test_limits_are_read_at_connect(plc: bf.Connection) -> None:
    limits = plc.info()["operation_limits"]
    assert {name: limits[name] for name in LIMITS} == LIMITS


def test_reads_are_split_at_max_nodes_per_read_and_translate(
    plc: bf.Connection, server: LimitedServer
) -> None:
    frame = plc.read(_paths())
    expected = [_value(g, v) for g in range(GROUPS) for v in range(PER_GROUP)]
    assert frame.value.tolist() == expected
    assert (frame.quality == "good").all()
    _assert_split(server, "read")
    _assert_split(server, "translate")
    assert len(plc.explain(_paths())) >= GROUPS * PER_GROUP // LIMITS["read"]


def test_browse_is_split_at_max_nodes_per_browse(plc: bf.Connection, server: LimitedServer) -> None:
    frame = plc.browse("/Objects/2:Limited", depth=2)
    assert sorted(frame.display_name[frame.depth == 1]) == [f"G{g}" for g in range(GROUPS)]
    assert (frame.node_class[frame.depth == 2] == "Variable").sum() == GROUPS * PER_GROUP
    _assert_split(server, "browse")
    _assert_split(server, "read")


def test_writes_are_split_at_max_nodes_per_write(plc: bf.Connection, server: LimitedServer) -> None:
    values: dict[str | bf.Tag, Any] = {p: 100.0 + k for k, p in enumerate(_paths(range(2, 4)))}
    plc.write(values)
    assert plc.read(list(values)).value.tolist() == list(values.values())
    _assert_split(server, "write")


def test_monitored_items_are_split_at_the_limit(plc: bf.Connection, server: LimitedServer) -> None:
    tags = _paths(range(3, 6))
    seen: set[str] = set()
    lock = threading.Lock()

    def collect(frame: pd.DataFrame) -> None:
        with lock:
            seen.update(frame.index)

    subscription = plc.subscribe(tags, collect, interval="50ms")
    try:
        deadline = time.monotonic() + WAIT
        while len(seen) < len(tags) and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        subscription.cancel()
    assert seen == set(tags)
    _assert_split(server, "monitored_items")


def test_history_from_asyncua_history_dict_with_continuation(
    plc: bf.Connection, server: LimitedServer
) -> None:
    tags = [*_paths(range(1))[:PER_GROUP], "/Objects/2:Limited/2:G1/2:V0"]
    frame = plc.read_history(tags, T0 - timedelta(seconds=1), T0 + timedelta(seconds=60))
    for tag in tags:
        values = frame[frame.tag == tag]
        assert values.value.tolist() == [float(k) for k in range(HISTORY_VALUES)], tag
        assert list(values.index) == [
            pd.Timestamp(T0 + timedelta(seconds=k)) for k in range(HISTORY_VALUES)
        ]
    _assert_split(server, "history_read_data")
