"""Glue between the simulated plant and an asyncua OPC UA server.

Address space (namespace ``urn:bifrost:sim``, index 2)::

    Objects/
      Plant/                        folder ns=2;s=Plant
        Tank/   Level Inflow Outflow HighAlarm
        Reactor/ Temperature Setpoint(RW) Heater
        Pump/   Speed VibrationRms Vibration (Double[64] waveform)
        Line/   Counter State Cycle Enable(RW) Recipe
        Heartbeat
        Aux/    aux.0000 ... (UInt16, only when ``aux`` > 0)

Every variable has its NodeId ``ns=2;s=Plant.<Unit>.<Name>``, a Description and an
``EngineeringUnits`` property (EUInformation) when it has a unit; the table is
:data:`bifrost.sim.tagmap.OPCUA_TAGS`.

Publishing: the plant calls :meth:`OpcUaBinding.publish` with its lock held, either on
its own loop thread (realtime plants) or on the caller's thread (stepped plants). The
values are written into the address space on the server's loop, synchronously in one
callback (``call_soon_threadsafe`` from other threads), so a Read never sees half a step
and a request sent after ``publish`` returned is served after the update. Data-change
notifications are then fed to the server's monitored items.

Client writes arrive through asyncua's Write service, which checks AccessLevel and the
variant type; an accepted write is recorded and handed to the plant by
:meth:`collect_writes` before its next step.

asyncua's server drops the oldest value of a full monitored-item queue without setting
the Overflow InfoBit that OPC UA Part 4 requires; the binding adds it, so clients can
tell that values were lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import secrets
import socket
import tempfile
import threading
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from asyncua import ua as _ua
from asyncua.crypto import cert_gen
from asyncua.crypto.permission_rules import User, UserRole
from asyncua.server.server import Server
from asyncua.server.user_managers import UserManager
from cryptography.x509.oid import ExtendedKeyUsageOID

from bifrost._accepts import close_listener
from bifrost.exceptions import ConfigurationError
from bifrost.protocols.opcua.nodes import datetime_ns
from bifrost.protocols.opcua.server_alarms import TankAlarm
from bifrost.protocols.opcua.server_history import PlantHistory
from bifrost.protocols.opcua.server_methods import add_plant_methods
from bifrost.secrets import Secret
from bifrost.sim.tagmap import OPCUA_AUX_FOLDER, OPCUA_NAMESPACE, OPCUA_TAGS, OpcUaTagSpec

__all__ = ["OpcUaBinding", "SecuritySetup", "listen", "quiet_asyncua"]

_log = logging.getLogger("bifrost.sim")
ua: Any = _ua  # asyncua's annotations want its wrapper int types everywhere

SERVER_URI = "urn:bifrost:sim:server"
CLIENT_URI = "urn:bifrost:sim:client"
_OVERFLOW_BITS = 0x0480  # InfoType = DataValue (0x400) | Overflow (0x80)
_UNITS_NS = "http://www.opcfoundation.org/UA/units/un/cefact"
_BIND_ATTEMPTS = 5
_VALUE = ua.AttributeIds.Value


def quiet_asyncua() -> None:
    """Keep asyncua's INFO chatter (and its per-request logs) out of notebooks."""
    logger = logging.getLogger("asyncua")
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.ERROR)


@dataclasses.dataclass(frozen=True)
class SecuritySetup:
    """Files and credentials of the plant's secured OPC UA endpoint.

    Attributes
    ----------
    directory
        Temporary directory holding the generated certificates (removed on stop).
    server_certificate
        The server's certificate (DER): give it to clients as ``server_certificate=``.
    client_certificate, client_private_key
        A client certificate (DER) and key (PEM) the server accepts.
    user, password
        The one user account.
    """

    directory: Path
    server_certificate: Path
    server_private_key: Path
    client_certificate: Path
    client_private_key: Path
    user: str
    password: Secret

    def client_options(self, mode: str = "SignAndEncrypt") -> dict[str, Any]:
        """Keyword arguments for :func:`bifrost.connect` that pass every check."""
        return {
            "security": f"Basic256Sha256,{mode}",
            "certificate": str(self.client_certificate),
            "private_key": str(self.client_private_key),
            "server_certificate": str(self.server_certificate),
            "user": self.user,
            "password": self.password,
        }


class _Users(UserManager):
    """asyncua user manager: one user name and password (compared in constant time)."""

    def __init__(self, user: str, password: Secret) -> None:
        self._user = user
        self._password = password

    def get_user(
        self,
        iserver: Any,
        username: str | None = None,
        password: str | None = None,
        certificate: Any = None,
    ) -> User | None:
        if username is None or password is None:
            return None
        ok_user = secrets.compare_digest(username.encode(), self._user.encode())
        ok_password = secrets.compare_digest(password.encode(), self._password.reveal().encode())
        return User(role=UserRole.User, name=username) if ok_user and ok_password else None


@dataclasses.dataclass(slots=True)
class _Var:
    spec: OpcUaTagSpec
    node_id: ua.NodeId
    vtype: ua.VariantType
    attribute: Any = None  # asyncua AttributeValue, bound after the nodes exist


def _free_port(host: str) -> int:
    # asyncua advertises its endpoint URL before it binds, so port 0 would be advertised
    # as ":0": pick a free port first (and retry if someone takes it in between).
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


async def stop_server(server: Server | None) -> None:
    """Stop an asyncua server: accepting first, then its sessions and connections.

    asyncua closes the connections before the listener; one accepted in between would
    stay open (``bifrost._accepts``).
    """
    if server is None:
        return
    await close_listener(getattr(server.bserver, "_server", None))
    with contextlib.suppress(Exception):  # a half-started server may fail to stop
        await server.stop()


async def listen(
    start: Callable[[int], Awaitable[None]],
    stop: Callable[[], Awaitable[None]],
    host: str,
    port: int,
    what: str,
) -> int:
    """``await start(port)``, or with a free port for 0 (another one if it was taken).

    ``stop()`` undoes a start that failed; ``what`` names the server in the error.
    Returns the port listened on.
    """
    last_error: Exception | None = None
    for _ in range(_BIND_ATTEMPTS if port == 0 else 1):
        bound = _free_port(host) if port == 0 else port
        try:
            await start(bound)
        except OSError as exc:  # the free port was taken in between, or port in use
            last_error = exc
            await stop()
            continue
        return bound
    raise ConfigurationError(f"{what} cannot listen on {host}:{port}: {last_error}")


class OpcUaBinding:
    """The plant's OPC UA server: address space, publishing, writes and lifecycle.

    Parameters
    ----------
    tags
        The plant's OPC UA tag table (names only; the layout is :data:`OPCUA_TAGS`).
    lock
        The plant's lock (publish/collect are called with it held; the server never
        takes it, so a stepped plant's caller can wait on nothing).
    aux
        Number of auxiliary variables ``Plant/Aux/aux.0000``... (0: none, fast start).
    aux_period
        Simulated seconds between updates of the auxiliary variables (10 Hz by default).
    security
        Serve only Basic256Sha256 (Sign, SignAndEncrypt) with a user name and password,
        with certificates generated into a temporary directory.
    dt
        The plant's step in seconds (to pace the auxiliary variables).
    """

    protocol = "opcua"

    def __init__(
        self,
        tags: Any,
        lock: threading.RLock,
        *,
        aux: int = 0,
        aux_period: float = 0.1,
        security: bool = False,
        dt: float = 0.01,
    ) -> None:
        if isinstance(aux, bool) or not isinstance(aux, int) or not 0 <= aux <= 100_000:
            raise ConfigurationError(f"opcua aux must be an integer 0-100000, got {aux!r}")
        del tags  # the layout comes from tagmap.OPCUA_TAGS, which the table mirrors
        self._lock = lock
        self._aux = aux
        self._secure = bool(security)
        self.security: SecuritySetup | None = None
        self._vars = [
            _Var(spec, ua.NodeId(spec.identifier, 2), ua.VariantType[spec.vtype])
            for spec in OPCUA_TAGS
        ]
        self._aux_vars: list[Any] = []
        # Scalar numbers and bools are historized (HistoryRead); strings and arrays not.
        self._historized = [var for var in self._vars if _historized(var)]
        self.history: PlantHistory | None = None
        self.alarm: TankAlarm | None = None
        self._aux_ids = [ua.NodeId(f"Plant.Aux.{i:04d}", 2) for i in range(aux)]
        self._aux_steps = max(1, round(float(aux_period) / float(dt)))
        self._aux_tick = -1
        self._writes: dict[str, Any] = {}
        self._writes_lock = threading.Lock()  # never held while waiting for anything
        self._server: Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: tuple[Mapping[str, Any], npt.NDArray[np.uint16] | None] | None = None
        self._tempdir: tempfile.TemporaryDirectory[str] | None = None
        self.read_calls: list[int] = []
        """Number of nodes of every Read service call served (to check batching)."""
        self.url = ""

    # -- plant side -----------------------------------------------------------------------
    def publish(self, snapshot: Mapping[str, Any], aux: npt.NDArray[np.uint16]) -> None:
        """Hand a snapshot to the server's loop (never blocks)."""
        aux_due = None
        if self._aux:
            # The step counter paces the auxiliary variables (a tick every aux_period).
            tick = int(snapshot.get("plant.heartbeat", 0)) // self._aux_steps
            if tick != self._aux_tick:
                self._aux_tick = tick
                aux_due = aux[: self._aux].copy()
        loop = self._loop
        if loop is None or loop.is_closed():
            self._pending = (snapshot, aux_due)  # applied when the server starts
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._apply(snapshot, aux_due)
        else:
            with contextlib.suppress(RuntimeError):  # the loop closed in between
                loop.call_soon_threadsafe(self._apply, snapshot, aux_due)

    def collect_writes(self) -> dict[str, Any]:
        """Values clients wrote since the last call, by tag name."""
        with self._writes_lock:
            writes, self._writes = self._writes, {}
        return writes

    # -- server side ----------------------------------------------------------------------
    def _apply(self, snapshot: Mapping[str, Any], aux: npt.NDArray[np.uint16] | None) -> None:
        """Write a snapshot into the address space (on the server's loop, in one go)."""
        now = datetime.now(UTC)
        changed: list[tuple[Any, ua.DataValue]] = []
        history = self.history
        now_ns = datetime_ns(now)
        if history is not None and history.due(now_ns):
            history.sample(
                now_ns,
                [
                    float(_to_variant_value(_served(snapshot, var.spec), var.vtype))
                    for var in self._historized
                ],
            )
        for var in self._vars:
            if var.attribute is None:
                continue
            value = _to_variant_value(_served(snapshot, var.spec), var.vtype)
            dv = ua.DataValue(
                ua.Variant(value, var.vtype), SourceTimestamp=now, ServerTimestamp=now
            )
            var.attribute.value = dv
            if var.attribute.datachange_callbacks:
                changed.append((var.attribute, dv))
        if aux is not None and self._aux_vars:
            for attribute, raw in zip(self._aux_vars, aux.tolist(), strict=False):
                dv = ua.DataValue(
                    ua.Variant(raw, ua.VariantType.UInt16),
                    SourceTimestamp=now,
                    ServerTimestamp=now,
                )
                attribute.value = dv
                if attribute.datachange_callbacks:
                    changed.append((attribute, dv))
        if changed and self._loop is not None:
            self._loop.create_task(_notify(changed))
        if self.alarm is not None:
            self.alarm.update(bool(snapshot["tank.high_alarm"]), float(snapshot["tank.level"]))

    def _on_write(self, spec: OpcUaTagSpec) -> Callable[[Any, ua.AttributeIds, ua.DataValue], None]:
        def setter(node: Any, attr: ua.AttributeIds, value: ua.DataValue) -> None:
            node.attributes[attr].value = value
            if value.Value is not None and value.Value.Value is not None:
                with self._writes_lock:
                    self._writes[spec.name] = value.Value.Value

        return setter

    def _command(self, name: str, value: Any) -> None:
        # A method call, applied by the plant before its next step like a write.
        with self._writes_lock:
            self._writes[name] = value

    def _served_counter(self) -> int:
        for var in self._vars:
            if var.spec.name == "line.counter" and var.attribute is not None:
                return int(var.attribute.value.Value.Value)
        return 0

    async def _make_security(self) -> SecuritySetup:
        self._tempdir = tempfile.TemporaryDirectory(prefix="bifrost-sim-opcua-")
        directory = Path(self._tempdir.name)
        hostname = socket.gethostname()
        paths = {
            name: directory / name
            for name in ("server.der", "server.pem", "client.der", "client.pem")
        }
        await cert_gen.setup_self_signed_certificate(
            paths["server.pem"],
            paths["server.der"],
            SERVER_URI,
            hostname,
            [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH],
            {"commonName": "bifrost simulated plant"},
        )
        await cert_gen.setup_self_signed_certificate(
            paths["client.pem"],
            paths["client.der"],
            CLIENT_URI,
            hostname,
            [ExtendedKeyUsageOID.CLIENT_AUTH],
            {"commonName": "bifrost client"},
        )
        return SecuritySetup(
            directory=directory,
            server_certificate=paths["server.der"],
            server_private_key=paths["server.pem"],
            client_certificate=paths["client.der"],
            client_private_key=paths["client.pem"],
            user="operator",
            password=Secret(secrets.token_urlsafe(12), "simulated plant"),
        )

    async def start(self, host: str, port: int) -> int:
        """Build the address space and listen (in the plant's loop); returns the port."""
        quiet_asyncua()
        self._loop = asyncio.get_running_loop()
        bound = await listen(
            lambda free: self._start_server(host, free),
            self._stop_server,
            host,
            port,
            "the simulated OPC UA server",
        )
        self.url = f"opc.tcp://{host}:{bound}/bifrost/"
        if self._pending is not None:
            pending, self._pending = self._pending, None
            self._apply(*pending)
        return bound

    async def _start_server(self, host: str, port: int) -> None:
        users = None
        if self._secure and self.security is None:
            # Certificates are made once: a restart keeps the ones clients already trust.
            self.security = await self._make_security()
        if self.security is not None:
            users = _Users(self.security.user, self.security.password)
        server = Server(user_manager=users)
        self._server = server
        # asyncua's HistoryRead service, over the plant's own store (server_history).
        self.history = PlantHistory(
            server.iserver,
            [var.node_id for var in self._historized],
            [var.vtype for var in self._historized],
        )
        server.iserver.history_manager = self.history
        # ConditionRefresh (off by default): clients see the tank alarm while it is active.
        server.iserver.bind_condition_methods = 1  # int: the Refresh events' severity
        await server.init()
        server.set_endpoint(f"opc.tcp://{host}:{port}/bifrost/")
        server.set_server_name("bifrost simulated plant")
        await server.set_application_uri(SERVER_URI)
        await server.set_build_info(
            "urn:bifrost:sim",
            "bifrost",
            "bifrost simulated plant",
            _version(),
            "0",
            datetime.now(UTC),
        )
        if self.security is not None:
            await server.load_certificate(str(self.security.server_certificate))
            await server.load_private_key(str(self.security.server_private_key))
            server.set_security_policy(
                [
                    ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt,
                    ua.SecurityPolicyType.Basic256Sha256_Sign,
                ]
            )
            server.set_identity_tokens([ua.UserNameIdentityToken])
        else:
            server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
        namespace = await server.register_namespace(OPCUA_NAMESPACE)
        if namespace != 2:  # the tag table's NodeIds assume index 2
            raise ConfigurationError(f"unexpected namespace index {namespace}")
        await self._build(server)
        await add_plant_methods(server, self._command, self._served_counter)
        alarm = TankAlarm()
        await alarm.start(server)
        self.alarm = alarm
        self._hook_services(server)
        await server.start()

    async def _build(self, server: Server) -> None:
        items: list[ua.AddNodesItem] = []
        folders: dict[str, ua.NodeId] = {}

        def folder(path: str, parent: ua.NodeId, description: str) -> ua.NodeId:
            node_id = ua.NodeId(path, 2)
            items.append(_folder_item(node_id, path.rsplit(".", 1)[-1], parent, description))
            folders[path] = node_id
            return node_id

        plant = folder("Plant", ua.NodeId(ua.ObjectIds.ObjectsFolder), "The simulated plant")
        properties: list[tuple[ua.NodeId, str]] = []
        for var in self._vars:
            unit_path = var.spec.identifier.rsplit(".", 1)[0]
            parent = folders.get(unit_path) or (
                plant if unit_path == "Plant" else folder(unit_path, plant, f"{unit_path} unit")
            )
            items.append(_variable_item(var, parent))
            if var.spec.unit:
                properties.append((var.node_id, var.spec.unit))
        aux_folder = None
        if self._aux:
            aux_folder = folder(
                f"Plant.{OPCUA_AUX_FOLDER}", plant, "Auxiliary benchmark channels (UInt16)"
            )
        for node_id, unit in properties:
            items.append(_units_item(node_id, unit))
        results = await server.iserver.isession.add_nodes(items)
        for result in results:
            result.StatusCode.check()
        if aux_folder is not None:
            self._add_aux(server, aux_folder)
        aspace = server.iserver.aspace
        for var in self._vars:
            var.attribute = aspace[var.node_id].attributes[_VALUE]
            if var.spec.writable:
                server.set_attribute_value_setter(var.node_id, self._on_write(var.spec))
        self._aux_vars = [aspace[node_id].attributes[_VALUE] for node_id in self._aux_ids]

    def _add_aux(self, server: Server, folder_id: ua.NodeId) -> None:
        """Add the auxiliary variables below their (new, empty) folder.

        asyncua checks every new child against all references of its parent, which is
        quadratic in a folder's size (5,000 variables took a minute to start). They are
        added without a parent, and the folder's references, unique by construction,
        appended directly.
        """
        iserver = server.iserver
        component = ua.NodeId(ua.ObjectIds.HasComponent)
        variable_type = ua.NodeId(ua.ObjectIds.BaseDataVariableType)
        items = []
        for i, node_id in enumerate(self._aux_ids):
            spec = OpcUaTagSpec(
                f"aux.{i:04d}", node_id.Identifier, "UInt16", "", False, "Auxiliary channel"
            )
            item = _variable_item(_Var(spec, node_id, ua.VariantType.UInt16), ua.NodeId())
            items.append(item)
        refused = list(iserver.node_mgt_service.try_add_nodes(items, check=False))
        if refused:
            raise ConfigurationError(f"could not add {len(refused)} auxiliary OPC UA variables")
        folder = iserver.aspace[folder_id]
        up = ua.ReferenceDescription(
            ReferenceTypeId=component,
            NodeId=folder_id,
            NodeClass=ua.NodeClass.Object,
            BrowseName=ua.QualifiedName(OPCUA_AUX_FOLDER, 2),
            DisplayName=ua.LocalizedText(OPCUA_AUX_FOLDER),
            TypeDefinition=ua.NodeId(ua.ObjectIds.FolderType),
            IsForward=False,
        )
        for item in items:
            folder.references.append(
                ua.ReferenceDescription(
                    ReferenceTypeId=component,
                    NodeId=item.RequestedNewNodeId,
                    NodeClass=ua.NodeClass.Variable,
                    BrowseName=item.BrowseName,
                    DisplayName=item.NodeAttributes.DisplayName,
                    TypeDefinition=variable_type,
                    IsForward=True,
                )
            )
            iserver.aspace[item.RequestedNewNodeId].references.append(up)

    def _hook_services(self, server: Server) -> None:
        iserver = server.iserver
        attribute_service = iserver.attribute_service
        original_read = attribute_service.read

        def counting_read(params: ua.ReadParameters) -> list[ua.DataValue]:
            self.read_calls.append(len(params.NodesToRead))
            del self.read_calls[:-1000]  # keep the record bounded
            return original_read(params)

        attribute_service.read = counting_read  # type: ignore[method-assign]
        service = iserver.subscription_service
        original_create = service.create_subscription

        async def create_subscription(*args: Any, **kwargs: Any) -> ua.CreateSubscriptionResult:
            result = await original_create(*args, **kwargs)
            subscription = service.subscriptions.get(result.SubscriptionId)
            if subscription is not None:
                _flag_overflow(subscription)
            return result

        service.create_subscription = create_subscription  # type: ignore[method-assign]

    async def stop(self) -> None:
        """Stop listening and drop the sessions (keeps the certificates for a restart)."""
        await self._stop_server()

    async def _stop_server(self) -> None:
        server, self._server = self._server, None
        self.alarm = None
        for var in self._vars:
            var.attribute = None
        self._aux_vars = []
        await stop_server(server)

    def cleanup(self) -> None:
        """Remove the generated certificates."""
        if self._tempdir is not None:
            self._tempdir.cleanup()
            self._tempdir = None


async def _notify(changed: list[tuple[Any, ua.DataValue]]) -> None:
    for attribute, dv in changed:
        for handle, callback in list(attribute.datachange_callbacks.items()):
            try:
                await callback(handle, dv)
            except Exception:  # one broken monitored item must not stop the others
                _log.exception("an OPC UA data-change callback failed")


def _flag_overflow(subscription: Any) -> None:
    """Make a subscription set the Overflow InfoBit when its queue drops a value."""
    original = subscription._enqueue_event

    async def enqueue(mid: int, event: Any, size: int, queue: dict[int, list[Any]]) -> None:
        items = queue.get(mid)
        overflow = items is not None and size != 0 and len(items) >= size
        await original(mid, event, size, queue)
        if overflow:
            head = queue[mid][0]  # the oldest value kept: the one after the discarded one
            value = head.Value
            if isinstance(value, ua.DataValue):
                code = value.StatusCode.value if value.StatusCode is not None else 0
                head.Value = dataclasses.replace(
                    value, StatusCode=ua.StatusCode(code | _OVERFLOW_BITS)
                )

    subscription._enqueue_event = enqueue  # per instance: other servers are untouched


def _historized(var: _Var) -> bool:
    return not var.spec.length and var.vtype is not ua.VariantType.String


def _served(snapshot: Mapping[str, Any], spec: OpcUaTagSpec) -> Any:
    raw = snapshot[spec.name]
    if spec.scale != 1.0:  # served raw, as over Modbus (e.g. heater 0-1000)
        raw = raw / spec.scale
    return raw


def _to_variant_value(value: Any, vtype: ua.VariantType) -> Any:
    if vtype is ua.VariantType.Boolean:
        return bool(value)
    if vtype in (ua.VariantType.Float, ua.VariantType.Double):
        if isinstance(value, np.ndarray):
            return value.astype(np.float64).tolist()
        return float(value)
    if vtype is ua.VariantType.String:
        return str(value)
    bounds = _INT_BOUNDS[vtype]
    # Clipped like the Modbus image, so that both protocols serve the same value.
    return int(min(max(round(float(value)), bounds[0]), bounds[1]))


_INT_BOUNDS = {
    ua.VariantType.SByte: (-(2**7), 2**7 - 1),
    ua.VariantType.Byte: (0, 2**8 - 1),
    ua.VariantType.Int16: (-(2**15), 2**15 - 1),
    ua.VariantType.UInt16: (0, 2**16 - 1),
    ua.VariantType.Int32: (-(2**31), 2**31 - 1),
    ua.VariantType.UInt32: (0, 2**32 - 1),
    ua.VariantType.Int64: (-(2**63), 2**63 - 1),
    ua.VariantType.UInt64: (0, 2**64 - 1),
}


def _folder_item(
    node_id: ua.NodeId, name: str, parent: ua.NodeId, description: str
) -> ua.AddNodesItem:
    item = ua.AddNodesItem()
    item.RequestedNewNodeId = node_id
    item.BrowseName = ua.QualifiedName(name, 2)
    item.NodeClass = ua.NodeClass.Object
    item.ParentNodeId = parent
    item.ReferenceTypeId = ua.NodeId(ua.ObjectIds.Organizes)
    item.TypeDefinition = ua.NodeId(ua.ObjectIds.FolderType)
    attrs = ua.ObjectAttributes()
    attrs.DisplayName = ua.LocalizedText(name)
    attrs.Description = ua.LocalizedText(description)
    attrs.EventNotifier = 0
    item.NodeAttributes = attrs
    return item


def _variable_item(var: _Var, parent: ua.NodeId) -> ua.AddNodesItem:
    spec = var.spec
    name = spec.identifier.rsplit(".", 1)[-1] if not spec.name.startswith("aux.") else spec.name
    item = ua.AddNodesItem()
    item.RequestedNewNodeId = var.node_id
    item.BrowseName = ua.QualifiedName(name, 2)
    item.NodeClass = ua.NodeClass.Variable
    item.ParentNodeId = parent
    item.ReferenceTypeId = ua.NodeId(ua.ObjectIds.HasComponent)
    item.TypeDefinition = ua.NodeId(ua.ObjectIds.BaseDataVariableType)
    attrs = ua.VariableAttributes()
    attrs.DisplayName = ua.LocalizedText(name)
    attrs.Description = ua.LocalizedText(spec.description)
    attrs.DataType = ua.NodeId(int(var.vtype))
    if spec.length:
        attrs.Value = ua.Variant([0.0] * spec.length, var.vtype)
        attrs.ValueRank = ua.ValueRank.OneDimension
        attrs.ArrayDimensions = [spec.length]
    else:
        attrs.Value = ua.Variant(_to_variant_value(_ZERO[var.vtype], var.vtype), var.vtype)
        attrs.ValueRank = ua.ValueRank.Scalar
    access = ua.AccessLevel.CurrentRead.mask
    if spec.writable:
        access |= ua.AccessLevel.CurrentWrite.mask
    if _historized(var):
        access |= ua.AccessLevel.HistoryRead.mask
    attrs.AccessLevel = access
    attrs.UserAccessLevel = access
    attrs.WriteMask = 0
    attrs.UserWriteMask = 0
    attrs.Historizing = _historized(var)
    item.NodeAttributes = attrs
    return item


_ZERO: dict[ua.VariantType, Any] = {
    **dict.fromkeys(_INT_BOUNDS, 0),
    ua.VariantType.Boolean: False,
    ua.VariantType.Float: 0.0,
    ua.VariantType.Double: 0.0,
    ua.VariantType.String: "",
}


def _units_item(parent: ua.NodeId, unit: str) -> ua.AddNodesItem:
    item = ua.AddNodesItem()
    item.RequestedNewNodeId = ua.NodeId(f"{parent.Identifier}.EngineeringUnits", 2)
    item.BrowseName = ua.QualifiedName("EngineeringUnits", 0)
    item.NodeClass = ua.NodeClass.Variable
    item.ParentNodeId = parent
    item.ReferenceTypeId = ua.NodeId(ua.ObjectIds.HasProperty)
    item.TypeDefinition = ua.NodeId(ua.ObjectIds.PropertyType)
    attrs = ua.VariableAttributes()
    attrs.DisplayName = ua.LocalizedText("EngineeringUnits")
    attrs.Description = ua.LocalizedText(f"Engineering unit: {unit}")
    attrs.DataType = ua.NodeId(ua.ObjectIds.EUInformation)
    attrs.Value = ua.Variant(
        ua.EUInformation(
            NamespaceUri=_UNITS_NS,
            UnitId=-1,
            DisplayName=ua.LocalizedText(unit),
            Description=ua.LocalizedText(unit),
        ),
        ua.VariantType.ExtensionObject,
    )
    attrs.ValueRank = ua.ValueRank.Scalar
    attrs.AccessLevel = ua.AccessLevel.CurrentRead.mask
    attrs.UserAccessLevel = ua.AccessLevel.CurrentRead.mask
    item.NodeAttributes = attrs
    return item


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("bifrost")
    except PackageNotFoundError:
        return "0+unknown"
