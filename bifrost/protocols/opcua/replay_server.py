"""An asyncua server of named variables in one folder: how a replayed recording is served.

Address space (namespace ``urn:bifrost:replay``, index 2)::

    Objects/
      Replay/                 folder ns=2;s=Replay
        <tag name>            variable ns=2;s=Replay.<tag name>, browse name 2:<tag name>

Values arrive through :meth:`ReplayOpcUaBinding.publish` (the replay's lock held) and are
written into the address space on the server's loop in one callback, so a Read never sees
half a row; ``None`` for a variable serves it with the status ``BadNoCommunication`` (the
recording had no good value there). Data-change notifications follow. The variables are
read-only.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import numpy.typing as npt
from asyncua import ua as _ua
from asyncua.server.server import Server

from bifrost.exceptions import ConfigurationError
from bifrost.protocols.opcua.server import listen, quiet_asyncua, stop_server

__all__ = ["REPLAY_FOLDER", "REPLAY_NAMESPACE", "ReplayOpcUaBinding", "ReplayVariable"]

ua: Any = _ua
REPLAY_NAMESPACE = "urn:bifrost:replay"
REPLAY_FOLDER = "Replay"


@dataclass(frozen=True, slots=True)
class ReplayVariable:
    """One served variable: its tag name, OPC UA type (``"Float"``...) and description."""

    name: str
    vtype: str
    description: str = ""
    array: bool = False

    @property
    def node_id(self) -> str:
        """``ns=2;s=Replay.<name>`` as a bifrost address."""
        return f"ns=2;s={REPLAY_FOLDER}.{self.name}"


class ReplayOpcUaBinding:
    """A replay's OPC UA server (the plant's binding interface, see ``bifrost.sim.plant``)."""

    protocol = "opcua"

    def __init__(self, variables: Sequence[ReplayVariable], lock: threading.RLock) -> None:
        self._variables = list(variables)
        self._lock = lock
        self._server: Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._attributes: list[Any] = []
        self._pending: Mapping[str, Any] | None = None
        self.security = None
        self.url = ""

    # -- replay side ----------------------------------------------------------------------
    def publish(self, snapshot: Mapping[str, Any], aux: npt.NDArray[np.uint16]) -> None:
        """Hand a row of values to the server's loop (never blocks)."""
        loop = self._loop
        if loop is None or loop.is_closed() or not self._attributes:
            self._pending = snapshot
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._apply(snapshot)
        else:
            with contextlib.suppress(RuntimeError):  # the loop closed in between
                loop.call_soon_threadsafe(self._apply, snapshot)

    def collect_writes(self) -> dict[str, Any]:
        """A replay takes no writes."""
        return {}

    def _apply(self, snapshot: Mapping[str, Any]) -> None:
        now = datetime.now(UTC)
        changed: list[tuple[Any, Any]] = []
        for variable, attribute in zip(self._variables, self._attributes, strict=True):
            value = snapshot.get(variable.name)
            vtype = ua.VariantType[variable.vtype]
            if value is None:
                dv = ua.DataValue(
                    ua.Variant(None, ua.VariantType.Null),
                    StatusCode=ua.StatusCode(ua.StatusCodes.BadNoCommunication),
                    SourceTimestamp=now,
                    ServerTimestamp=now,
                )
            else:
                dv = ua.DataValue(
                    ua.Variant(_python(value, variable), vtype, is_array=variable.array),
                    SourceTimestamp=now,
                    ServerTimestamp=now,
                )
            attribute.value = dv
            if attribute.datachange_callbacks:
                changed.append((attribute, dv))
        if changed and self._loop is not None:
            self._loop.create_task(_notify_changes(changed))

    # -- server side ----------------------------------------------------------------------
    async def start(self, host: str, port: int) -> int:
        """Build the address space and listen; returns the port."""
        quiet_asyncua()
        self._loop = asyncio.get_running_loop()
        bound = await listen(
            lambda free: self._start(host, free),
            self.stop,
            host,
            port,
            "the replay's OPC UA server",
        )
        self.url = f"opc.tcp://{host}:{bound}/bifrost/"
        if self._pending is not None:
            pending, self._pending = self._pending, None
            self._apply(pending)
        return bound

    async def _start(self, host: str, port: int) -> None:
        server = Server()
        self._server = server
        await server.init()
        server.set_endpoint(f"opc.tcp://{host}:{port}/bifrost/")
        server.set_server_name("bifrost replay")
        server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
        namespace = await server.register_namespace(REPLAY_NAMESPACE)
        if namespace != 2:  # the tag table's NodeIds assume index 2
            raise ConfigurationError(f"unexpected namespace index {namespace}")
        folder = await server.nodes.objects.add_folder(
            ua.NodeId(REPLAY_FOLDER, namespace), ua.QualifiedName(REPLAY_FOLDER, namespace)
        )
        aspace = server.iserver.aspace
        self._attributes = []
        for variable in self._variables:
            node = await folder.add_variable(
                ua.NodeId(f"{REPLAY_FOLDER}.{variable.name}", namespace),
                ua.QualifiedName(variable.name, namespace),
                ua.Variant(None, ua.VariantType.Null),
                varianttype=ua.VariantType[variable.vtype],
            )
            if variable.description:
                await node.write_attribute(
                    ua.AttributeIds.Description,
                    ua.DataValue(ua.Variant(ua.LocalizedText(variable.description))),
                )
            self._attributes.append(aspace[node.nodeid].attributes[ua.AttributeIds.Value])
        await server.start()

    async def stop(self) -> None:
        """Stop listening and drop the sessions."""
        server, self._server = self._server, None
        self._attributes = []
        await stop_server(server)


def _python(value: Any, variable: ReplayVariable) -> Any:
    if variable.array:
        return [float(v) for v in np.asarray(value, dtype=np.float64).ravel()]
    if isinstance(value, np.generic):
        return value.item()
    return value


async def _notify_changes(changed: list[tuple[Any, Any]]) -> None:
    for attribute, dv in changed:
        for key, callback in list(attribute.datachange_callbacks.items()):
            with contextlib.suppress(Exception):  # a closing subscription must not stop the rest
                await callback(key, dv)
