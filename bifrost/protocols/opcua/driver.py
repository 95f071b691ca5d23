"""The OPC UA driver: sessions, reads, writes, browsing, server info and subscriptions."""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import dataclasses
import math
from collections.abc import Callable, Sequence
from datetime import datetime
from types import ModuleType
from typing import Any, ClassVar

import numpy as np

from bifrost._extras import require
from bifrost.exceptions import (
    AddressError,
    BifrostError,
    ConfigurationError,
    ConnectionError,
    ProtocolError,
    TimeoutError,
    ValueOutOfRange,
    WriteNotAllowed,
)
from bifrost.model import Quality, Tag
from bifrost.protocols.base import Driver, ReadResult, TimestampKind
from bifrost.protocols.opcua.address import (
    BrowsePath,
    NodeIdAddress,
    OpcUaAddress,
    is_opcua_address,
    parse_opcua_address,
)
from bifrost.protocols.opcua.browse import (
    MAX_BROWSE_NODES,
    NODE_CLASSES,
    browse_level,
    node_details,
)
from bifrost.protocols.opcua.codec import (
    INT_BOUNDS,
    NodeMeta,
    OpcUaReadResult,
    decode,
    decode_values,
    plain_value,
    to_variant,
)
from bifrost.protocols.opcua.events import (
    EventStream,
    EventSubscription,
    KnownEvents,
    event_filter,
)
from bifrost.protocols.opcua.history import history_details, read_node_history
from bifrost.protocols.opcua.limits import OperationLimits, batched, read_limits
from bifrost.protocols.opcua.methods import (
    MethodSignature,
    call_result,
    encode_arguments,
    find_child,
    signature_of,
)
from bifrost.protocols.opcua.nodes import (
    BUILD_INFO,
    NAMESPACE_ARRAY,
    SERVER_STATE,
    TYPE_NAMES,
    datetime_ns,
    local_node_id,
    ns_datetime,
    plain,
    read_value_id,
    starts_at_root,
)
from bifrost.protocols.opcua.options import OpcUaOptions
from bifrost.protocols.opcua.plan import OpcUaWrite, ReadPlan
from bifrost.protocols.opcua.security import (
    REDACTOR,
    apply_security,
    check_trust,
    choose_endpoint,
    presented_certificate,
    quiet_asyncua,
)
from bifrost.protocols.opcua.status import (
    BAD_VALUE,
    CERT_REFUSED,
    NOT_WRITABLE,
    SECURITY_REFUSED,
    USER_REFUSED,
    quality_of,
    status_name,
)
from bifrost.protocols.opcua.subscription import (
    DEFAULT_QUEUE,
    OpcUaSubscription,
    PublishWatcher,
    subscription_parameters,
)
from bifrost.protocols.opcua.wire import WireError, WireValues, from_data_values, read_response

__all__ = ["OpcUaDriver"]


class OpcUaDriver(Driver):
    """OPC UA client driver (asyncua)."""

    protocol: ClassVar[str] = "opcua"
    timestamps: ClassVar[tuple[str, ...]] = ("source", "server", "received")

    def __init__(self, options: OpcUaOptions) -> None:
        self.options = options
        for secret in (options.password, options.private_key_password):
            if secret is not None and secret.reveal():
                REDACTOR.add(secret.reveal())
        self._client: Any = None
        self._ua: ModuleType | None = None
        self._generation = 0
        self._paths: dict[BrowsePath, Any] = {}  # browse path -> NodeId or bad status code
        self._meta: dict[Any, NodeMeta] = {}
        self._limits = OperationLimits(read=options.max_nodes_per_read)
        self._server_fingerprint: str | None = None
        self._subscriptions: list[PublishWatcher] = []
        self._events = KnownEvents()
        self._event_subscriptions: list[EventSubscription] = []
        self._methods: dict[tuple[int, OpcUaAddress, OpcUaAddress], MethodSignature] = {}
        # Sessions being closed in the background after a failure: a call that timed out
        # returns at once, not after a CloseSession that the stalled server cannot answer
        # either. Kept here so close() can wait for them (no task is left pending).
        self._closing: set[asyncio.Task[None]] = set()

    def __del__(self) -> None:
        for secret in (self.options.password, self.options.private_key_password):
            if secret is not None and secret.reveal():
                REDACTOR.remove(secret.reveal())

    def __repr__(self) -> str:
        return f"<OpcUaDriver {self.options.url} security={self.options.security_policy}>"

    # -- basics ---------------------------------------------------------------------------
    @property
    def endpoint(self) -> str:
        """The server URL."""
        return self.options.url

    @property
    def connected(self) -> bool:
        """Whether the session is up."""
        client = self._client
        if client is None:
            return False
        from asyncua.client.ua_client import UaClientState

        return bool(client.uaclient.state is UaClientState.CONNECTED)

    def _module(self) -> Any:
        if self._ua is None:
            asyncua = require("asyncua", "OPC UA connections")
            quiet_asyncua()
            self._ua = asyncua
        return self._ua.ua

    def is_address(self, text: str) -> bool:
        """Whether ``text`` is a NodeId (``ns=2;s=...``) or a browse path (``/Objects/...``)."""
        return is_opcua_address(text)

    def _address(self, tag: Tag) -> OpcUaAddress:
        try:
            return parse_opcua_address(tag.address)
        except AddressError as exc:
            if tag.name != tag.address:
                raise AddressError(
                    exc.address, exc.position, f"{exc.reason} (tag {tag.name!r})", "OPC UA"
                ) from None
            raise

    def _node_id(self, address: NodeIdAddress) -> Any:
        ua = self._module()
        identifier = address.identifier
        kind = {
            "i": ua.NodeIdType.Numeric,
            "s": ua.NodeIdType.String,
            "g": ua.NodeIdType.Guid,
            "b": ua.NodeIdType.ByteString,
        }[address.id_type]
        if address.id_type == "i" and address.namespace == 0 and int(identifier) < 256:  # type: ignore[arg-type,unused-ignore]
            kind = ua.NodeIdType.TwoByte
        return ua.NodeId(identifier, address.namespace, kind)

    def describe(self, tag: Tag) -> dict[str, Any]:
        """The address kind and NodeId or browse path (the data type lives on the server)."""
        address = self._address(tag)
        if isinstance(address, BrowsePath):
            return {"dtype": "object", "kind": "browse path", "path": str(address)}
        return {"dtype": "object", "kind": "node id", "node_id": str(address)}

    # -- connection -----------------------------------------------------------------------
    def _scrub(self, text: str) -> str:
        for secret in (self.options.password, self.options.private_key_password):
            if secret is not None and secret.reveal():
                text = text.replace(secret.reveal(), "***")
        return text

    async def connect(self) -> None:
        """Open a session: check the endpoint and the server's certificate, then activate."""
        if self.connected:
            return
        if self._client is not None:  # a session that failed: replaced, not waited for
            self.abandon(self._client, _CONNECTION_CLOSED)
        self._module()
        assert self._ua is not None
        timeout = self.options.timeout
        # asyncua's watchdog probes the server every watchdog_intervall and, on a probe
        # that times out, ends the session for good (BadShutdown): a server stalled for a
        # second would lose its subscriptions. Liveness is judged by the subscriptions
        # (subscription.py) and by each request's timeout; the probe only keeps an idle
        # session from expiring (twice per session timeout).
        client = self._ua.Client(
            self.options.url, timeout=timeout, watchdog_intervall=self.options.session_timeout / 2
        )
        client.name = client.description = "bifrost"
        client.application_uri = "urn:bifrost:client"
        client.session_timeout = int(self.options.session_timeout * 1000)
        what = f"OPC UA server at {self.endpoint}"
        try:
            async with asyncio.timeout(timeout * 3 + 1):  # endpoints, channel, session
                endpoints = await client.connect_and_get_server_endpoints()
                endpoint = choose_endpoint(self._module(), self.options, endpoints)
                if self.options.secure:
                    await self._set_security(client, endpoint)
                if self.options.user:
                    client.set_user(self.options.user)
                if self.options.password is not None:
                    REDACTOR.install()
                    client.set_password(self.options.password.reveal())
                await client.connect()
                REDACTOR.install()  # loggers asyncua created while connecting
        except BifrostError:
            self._close_later(client)
            raise
        except builtins.TimeoutError:
            self._close_later(client)
            raise TimeoutError(f"could not connect to the {what} within {timeout:g} s") from None
        except Exception as exc:  # asyncua and OS errors end here, translated
            self._close_later(client)
            raise self._connect_error(exc) from None
        self._client = client
        self._generation += 1
        self._paths.clear()
        self._meta.clear()
        self._limits = await read_limits(
            self._module(), self._raw_read, self.options.max_nodes_per_read
        )

    async def _raw_read(self, params: Any) -> Any:
        # For optional nodes: a failure is the caller's to judge, the session stays.
        async with asyncio.timeout(self.options.timeout):
            return await self._client.uaclient.read(params)

    @property
    def limits(self) -> OperationLimits:
        """The server's OperationLimits, as read when the session opened."""
        return self._limits

    async def _set_security(self, client: Any, endpoint: Any) -> None:
        ua = self._module()
        presented, der, fingerprint = presented_certificate(self.options, endpoint)
        self._server_fingerprint = fingerprint
        await check_trust(self.options, presented, der, fingerprint)
        await apply_security(ua, self.options, client, der)

    def _connect_error(self, exc: BaseException) -> BifrostError:
        ua = self._module()
        what = f"the OPC UA server at {self.endpoint}"
        code = getattr(exc, "code", None)
        if isinstance(exc, ua.UaStatusCodeError) and isinstance(code, int):
            base = code & 0xFFFF0000
            name = status_name(code)
            if base in USER_REFUSED:
                user = self.options.user or "anonymous"
                return ConnectionError(
                    f"{what} refused user {user!r} ({name}): wrong user name or password?"
                )
            if base in CERT_REFUSED or base in SECURITY_REFUSED:
                return ConnectionError(
                    f"{what} refused the secure channel ({name}): is this client's "
                    "certificate trusted by the server?"
                )
            return ConnectionError(f"could not connect to {what}: {name}")
        text = self._scrub(str(exc) or type(exc).__name__)
        if isinstance(exc, OSError):
            return ConnectionError(
                f"could not connect to {what}: {text}; is the server running and the port right?"
            )
        return ConnectionError(f"could not connect to {what}: {type(exc).__name__}: {text}")

    async def close(self) -> None:
        """Close the session (idempotent); subscriptions end with it."""
        handles, self._event_subscriptions = self._event_subscriptions, []
        for handle in handles:
            await handle.stop_restoring()
        subscriptions, self._subscriptions = self._subscriptions, []
        for subscription in subscriptions:
            subscription.closed = True
            await subscription.stop_watching()
        await self._drop()
        while self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)

    async def _drop(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            self._tell_subscriptions(client, _CONNECTION_CLOSED)
            await _disconnect_quietly(client, self.options.timeout)

    def abandon(self, client: Any, code: int) -> None:
        """Give up ``client``, a failed or silent session, at once.

        Its subscriptions are lost; it is closed in the background so that the caller
        returns without waiting for a server that may not answer.
        """
        if client is None:
            return
        if client is self._client:
            self._client = None
        self._tell_subscriptions(client, code)
        self._close_later(client)

    def _tell_subscriptions(self, client: Any, code: int) -> None:
        for subscription in list(self._subscriptions):
            subscription.connection_lost(client, code)

    def _close_later(self, client: Any) -> None:
        task = asyncio.get_running_loop().create_task(
            _disconnect_quietly(client, self.options.timeout), name="bifrost-opcua-close"
        )
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _ensure_connected(self) -> Any:
        if not self.connected:
            await self.connect()
        return self._client

    async def _call(self, what: str, coroutine: Any) -> Any:
        """Await an asyncua request (at most the timeout); translate its failures."""
        ua = self._module()
        client = self._client
        try:
            async with asyncio.timeout(self.options.timeout):
                return await coroutine
        except builtins.TimeoutError:
            self.abandon(client, _NO_ANSWER)
            raise TimeoutError(
                f"no answer from the OPC UA server at {self.endpoint} within "
                f"{self.options.timeout:g} s ({what})"
            ) from None
        except ua.UaStatusCodeError as exc:
            code = int(getattr(exc, "code", 0) or 0)
            if quality_of(code) in (Quality.BAD_COMM_LOST, Quality.BAD_TIMEOUT):
                self.abandon(client, code)
                raise ConnectionError(
                    f"lost the connection to the OPC UA server at {self.endpoint} "
                    f"({status_name(code)})"
                ) from None
            raise ProtocolError(
                f"the OPC UA server at {self.endpoint} answered {status_name(code)} ({what})",
                code=code,
            ) from None
        except (OSError, builtins.ConnectionError, ua.UaError) as exc:
            self.abandon(client, _CONNECTION_CLOSED)
            text = self._scrub(str(exc) or type(exc).__name__)
            raise ConnectionError(
                f"lost the connection to the OPC UA server at {self.endpoint}: {text}"
            ) from None

    # -- reading --------------------------------------------------------------------------
    def compile_read(self, tags: Sequence[Tag]) -> ReadPlan:
        """Parse every address and prepare the NodeIds (browse paths resolve on first use)."""
        addresses = tuple(self._address(tag) for tag in tags)
        node_ids = [self._node_id(a) if isinstance(a, NodeIdAddress) else None for a in addresses]
        return ReadPlan(tuple(tags), addresses, node_ids)

    async def _resolve(self, plan: ReadPlan) -> None:
        """Resolve the plan's browse paths (one call for the uncached ones) and batch it."""
        ua = self._module()
        paths = [a for a in plan.addresses if isinstance(a, BrowsePath)]
        missing = list(dict.fromkeys(p for p in paths if p not in self._paths))
        if missing:
            await self._translate(missing)
        positions = []
        plan.unresolved = []
        for i, address in enumerate(plan.addresses):
            if isinstance(address, BrowsePath):
                found = self._paths[address]
                if isinstance(found, int):
                    plan.node_ids[i] = None
                    plan.unresolved.append((i, found))
                    continue
                plan.node_ids[i] = found
            positions.append(i)
        plan.positions = np.asarray(positions, dtype=np.intp)
        ids = [read_value_id(ua, plan.node_ids[i]) for i in positions]
        plan.batches = []
        for part in batched(ids, self._limits.read):
            params = ua.ReadParameters()
            params.NodesToRead = list(part)
            params.TimestampsToReturn = ua.TimestampsToReturn.Both
            plan.batches.append(params)
        plan.generation = self._generation

    async def _translate(self, paths: Sequence[BrowsePath]) -> None:
        ua = self._module()
        requests = []
        for path in paths:
            elements = []
            for namespace, name in path.elements[1:] if starts_at_root(path) else path.elements:
                element = ua.RelativePathElement()
                element.ReferenceTypeId = ua.NodeId(ua.ObjectIds.HierarchicalReferences)
                element.IsInverse = False
                element.IncludeSubtypes = True
                element.TargetName = ua.QualifiedName(name, namespace)
                elements.append(element)
            request = ua.BrowsePath()
            request.StartingNode = ua.NodeId(ua.ObjectIds.RootFolder)
            request.RelativePath = ua.RelativePath()
            request.RelativePath.Elements = elements
            requests.append(request)
        client = await self._ensure_connected()
        results: list[Any] = []
        for part in batched(requests, self._limits.translate):
            results.extend(
                await self._call(
                    "translating browse paths",
                    client.uaclient.translate_browsepaths_to_nodeids(list(part)),
                )
            )
        for path, result in zip(paths, results, strict=True):
            code = result.StatusCode.value if result.StatusCode is not None else 0
            if code >> 30 >= 2 or not result.Targets:
                self._paths[path] = code or 0x806F0000  # BadNoMatch
            else:
                self._paths[path] = local_node_id(ua, result.Targets[0].TargetId)

    def explain(self, plan: ReadPlan) -> list[dict[str, Any]]:
        """The service calls a read makes: browse paths translated once, then Read calls."""
        rows: list[dict[str, Any]] = []
        paths = sum(1 for node in plan.node_ids if node is None)
        if paths and plan.generation != self._generation:
            rows.append({"request": "TranslateBrowsePathsToNodeIds", "nodes": paths})
        limit = self._limits.read or len(plan.tags) or 1
        for start in range(0, len(plan.tags), limit):
            rows.append({"request": "Read", "nodes": min(limit, len(plan.tags) - start)})
        return rows

    async def execute_read(self, plan: ReadPlan) -> OpcUaReadResult:
        """One Read service call (per MaxNodesPerRead) for all the plan's nodes."""
        client = await self._ensure_connected()
        if plan.generation != self._generation:
            await self._resolve(plan)
        ua = self._module()
        parts = []
        for params in plan.batches:
            part = await self._read_call(ua, client, params)
            asked = len(params.NodesToRead)
            if len(part) != asked:
                # Read results pair with the request's nodes by order alone: a reply of
                # another length cannot be matched to them.
                raise ProtocolError(
                    f"the OPC UA server at {self.endpoint} answered {len(part)} values to a "
                    f"Read of {asked} nodes"
                )
            parts.append(part)
        values = WireValues.concat(parts) if parts else from_data_values([])
        return decode_values(plan, plan.positions, values, self.endpoint, reading=True)

    async def _read_call(self, ua: Any, client: Any, params: Any) -> WireValues:
        """One Read request; its response decoded into columns (``wire``)."""
        send = getattr(client.uaclient, "_send_request", None)
        if send is None:  # an asyncua without the raw request: its own DataValues
            return from_data_values(await self._call("reading", client.uaclient.read(params)))
        request = ua.ReadRequest()
        request.Parameters = params

        async def exchange() -> WireValues:
            # asyncua's session.read, with the response's body decoded here; inside
            # _call, so that a failed ServiceResult is translated as any failed call.
            return read_response(ua, await send(request))

        try:
            result: WireValues = await self._call("reading", exchange())
        except WireError as exc:
            raise ProtocolError(
                f"the OPC UA server at {self.endpoint} sent a ReadResponse that cannot be "
                f"decoded: {exc}"
            ) from None
        return result

    def restamp(self, result: ReadResult, timestamp: TimestampKind) -> ReadResult:
        """The result with server or received timestamps as ``timestamp_ns``.

        A value the server sent without a server timestamp gets NaT, not another time.
        """
        if not isinstance(result, OpcUaReadResult) or timestamp == "source":
            return result
        if timestamp == "server" and result.server_timestamp_ns is not None:
            stamps = result.server_timestamp_ns.copy()
            stamps[stamps == 0] = _NAT
        else:
            stamps = np.full(len(result.tags), result.received_ns, dtype=np.int64)
        return dataclasses.replace(result, timestamp_ns=stamps)

    # -- history ---------------------------------------------------------------------------
    async def read_history(
        self,
        plan: ReadPlan,
        start_ns: int,
        end_ns: int,
        *,
        max_values: int | None,
        aggregate: str | None,
        interval_s: float | None,
    ) -> OpcUaReadResult:
        """HistoryRead of the plan's nodes: one row per value (``indices``: the tag)."""
        ua = self._module()
        per_request = self.options.history_values_per_request
        if max_values is not None:
            per_request = min(per_request, max_values)
        details = history_details(
            ua,
            start_ns,
            end_ns,
            per_request=per_request,
            aggregate=aggregate,
            interval_s=interval_s,
        )
        client = await self._ensure_connected()
        if plan.generation != self._generation:
            await self._resolve(plan)
        failed: dict[int, tuple[int, str]] = {
            p: (code, f"browse path {plan.addresses[p]} does not exist")
            for p, code in plan.unresolved
        }
        positions = [int(p) for p in plan.positions]
        await self._metadata([plan.node_ids[p] for p in positions])
        asked = []
        for p in positions:
            meta = self._meta[plan.node_ids[p]]
            # No attributes at all (an unknown node): the server's answer names the cause.
            if meta.access & _HISTORY_READ or meta.data_type is None:
                asked.append(p)
            else:
                failed[p] = (
                    ua.StatusCodes.BadHistoryOperationUnsupported,
                    f"the server keeps no history of {plan.node_ids[p].to_string()} "
                    "(its AccessLevel has no HistoryRead)",
                )
        answers = await read_node_history(
            ua,
            self._call,
            client,
            [plan.node_ids[p] for p in asked],
            details,
            max_values=max_values,
            limit=self._limits.history_read_data,
        )
        rows: list[int] = []
        values: list[Any] = []
        for p, answer in zip(asked, answers, strict=True):
            if answer.status:
                failed[p] = (answer.status, f"the server answered {status_name(answer.status)}")
                continue
            if aggregate is None and not _within(answer.values, start_ns, end_ns):
                failed[p] = (0x80000000, "the server answered values outside the requested span")
                continue
            rows.extend([p] * len(answer.values))
            values.extend(answer.values)
        start = ns_datetime(start_ns)
        errors = []
        for p, (code, why) in sorted(failed.items()):
            rows.append(p)
            values.append(ua.DataValue(StatusCode=ua.StatusCode(code), SourceTimestamp=start))
            errors.append(
                ProtocolError(
                    f"no history for tag {plan.tags[p].name!r} from the OPC UA server at "
                    f"{self.endpoint}: {why}",
                    code=code,
                    tags=[plan.tags[p].name],
                )
            )
        where = np.asarray(rows, dtype=np.intp)
        result = decode(plan, where, values, self.endpoint, reading=False, indices=where)
        result.errors = errors
        return result

    # -- events and alarms -------------------------------------------------------------------
    def remember_event(self, event_id: bytes, condition: Any) -> None:
        """Keep an event's ConditionId for :meth:`acknowledge`."""
        self._events.add(event_id, condition)

    async def subscribe_events(
        self,
        source: str,
        on_events: Callable[[list[dict[str, Any]]], None],
        on_restore: Callable[[BifrostError | None, bool], None] | None = None,
    ) -> EventSubscription:
        """An event monitored item on ``source``; conditions already active come first.

        It is made again after a lost session (see :class:`EventSubscription`, which
        tells ``on_restore``).
        """
        handle = EventSubscription(self, source, on_events, on_restore)
        try:
            await self.open_event_stream(handle)
        except BifrostError:
            await handle.close()
            raise
        self._event_subscriptions.append(handle)
        return handle

    async def open_event_stream(self, handle: EventSubscription) -> None:
        """Make ``handle``'s subscription and event monitored item on this session."""
        ua = self._module()
        address = parse_opcua_address(handle.source)
        client = await self._ensure_connected()
        node = await self._node_of(address, handle.source)
        stream = EventStream(handle, client)
        handle.stream = stream  # set first: a loss while it is made is the handle's to see
        params = subscription_parameters(ua, _EVENT_INTERVAL_S, 1)
        try:
            response = await self._call(
                "creating an event subscription",
                client.uaclient.create_subscription(params, stream.on_publish),
            )
            stream.subscription_id = response.SubscriptionId
            request = ua.MonitoredItemCreateRequest()
            request.ItemToMonitor = read_value_id(ua, node, ua.AttributeIds.EventNotifier)
            request.MonitoringMode = ua.MonitoringMode.Reporting
            parameters = ua.MonitoringParameters()
            parameters.ClientHandle = 1
            parameters.SamplingInterval = 0.0
            parameters.QueueSize = _EVENT_QUEUE
            parameters.DiscardOldest = True
            parameters.Filter = event_filter(ua)
            request.RequestedParameters = parameters
            create = ua.CreateMonitoredItemsParameters()
            create.SubscriptionId = stream.subscription_id
            create.ItemsToCreate = [request]
            create.TimestampsToReturn = ua.TimestampsToReturn.Both
            (result,) = await self._call(
                "monitoring events", client.uaclient.create_monitored_items(create)
            )
            code = result.StatusCode.value
            if code >> 30 >= 2:
                raise ProtocolError(
                    f"{handle.source} emits no events the OPC UA server at {self.endpoint} "
                    f"lets this client monitor ({status_name(code)})",
                    code=code,
                )
        except BifrostError:
            if handle.stream is stream:
                handle.stream = None
            await stream.close()
            raise
        self._subscriptions.append(stream)
        stream.started(response)
        refresh = ua.CallMethodRequest()
        refresh.ObjectId = ua.NodeId(ua.ObjectIds.ConditionType)
        refresh.MethodId = ua.NodeId(ua.ObjectIds.ConditionType_ConditionRefresh)
        refresh.InputArguments = [ua.Variant(stream.subscription_id, ua.VariantType.UInt32)]
        with contextlib.suppress(BifrostError):  # a server without conditions
            await self._call("refreshing conditions", client.uaclient.call([refresh]))

    async def acknowledge(self, event_id: bytes, comment: str) -> None:
        """Call Acknowledge on the condition that sent ``event_id`` (seen by this client)."""
        ua = self._module()
        condition = self._events.condition(event_id)
        if condition is None:
            raise ConfigurationError(
                f"event {event_id!r} was not seen on this connection: acknowledge() takes an "
                "event_id from subscribe_events() or record_events() of the same connection"
            )
        text = plain_value("the acknowledgement's comment", comment)
        client = await self._ensure_connected()
        request = ua.CallMethodRequest()
        request.ObjectId = condition
        request.MethodId = ua.NodeId(ua.ObjectIds.AcknowledgeableConditionType_Acknowledge)
        request.InputArguments = [
            ua.Variant(event_id, ua.VariantType.ByteString),
            ua.Variant(ua.LocalizedText(text), ua.VariantType.LocalizedText),
        ]
        (result,) = await self._call("acknowledging an alarm", client.uaclient.call([request]))
        code = result.StatusCode.value if result.StatusCode is not None else 0
        if code >> 30 >= 2:
            raise ProtocolError(
                f"the OPC UA server at {self.endpoint} refused to acknowledge event "
                f"{event_id!r} of condition {condition.to_string()}: {status_name(code)}",
                code=code,
            )

    # -- methods --------------------------------------------------------------------------
    async def call(self, object_path: str, method: str, args: Sequence[Any]) -> Any:
        """Call ``method`` (a browse name like ``2:Reset`` or a NodeId) of an object."""
        ua = self._module()
        target = parse_opcua_address(object_path)
        text = method if is_opcua_address(method) else "/" + method
        named = parse_opcua_address(text)
        label = f"{object_path.rstrip('/')}/{method}"
        client = await self._ensure_connected()
        key = (self._generation, target, named)
        signature = self._methods.get(key)
        if signature is None:
            object_id = await self._node_of(target, object_path)
            if isinstance(named, BrowsePath):
                method_id = await find_child(ua, self._call, client, object_id, named.elements)
                if isinstance(method_id, int):
                    raise ProtocolError(
                        f"{object_path} has no method {method!r} on the OPC UA server at "
                        f"{self.endpoint} ({status_name(method_id)})",
                        code=method_id,
                    )
            else:
                method_id = self._node_id(named)
            signature = await signature_of(ua, self._call, client, label, object_id, method_id)
            self._methods[key] = signature
        request = ua.CallMethodRequest()
        request.ObjectId = signature.object_id
        request.MethodId = signature.method_id
        request.InputArguments = encode_arguments(ua, signature, args)
        (result,) = await self._call(f"calling {label}", client.uaclient.call([request]))
        return call_result(signature, result, self.endpoint)

    async def _node_of(self, address: OpcUaAddress, text: str) -> Any:
        if not isinstance(address, BrowsePath):
            return self._node_id(address)
        if address not in self._paths:
            await self._translate([address])
        found = self._paths[address]
        if isinstance(found, int):
            raise ProtocolError(
                f"browse path {text} does not exist on the OPC UA server at {self.endpoint} "
                f"({status_name(found)})",
                code=found,
            )
        return found

    # -- writing --------------------------------------------------------------------------
    def compile_write(self, items: Sequence[tuple[Tag, Any]]) -> list[OpcUaWrite]:
        """Parse addresses and check values' kinds (types are checked against the server)."""
        writes = []
        for tag, given in items:
            address = self._address(tag)
            value = given.tolist() if isinstance(given, np.ndarray) else given
            what = f"tag {tag.name!r}"
            if isinstance(value, list | tuple):
                checked: Any = [plain_value(what, v) for v in value]
            else:
                checked = plain_value(what, value)
            writes.append(OpcUaWrite(tag, address, checked))
        return writes

    async def _metadata(self, node_ids: Sequence[Any]) -> None:
        ua = self._module()
        missing = list(dict.fromkeys(n for n in node_ids if n not in self._meta))
        if not missing:
            return
        attributes = (
            ua.AttributeIds.DataType,
            ua.AttributeIds.ValueRank,
            ua.AttributeIds.AccessLevel,
            ua.AttributeIds.UserAccessLevel,
        )
        ids = [read_value_id(ua, node, attribute) for node in missing for attribute in attributes]
        client = await self._ensure_connected()
        values: list[Any] = []
        for part in batched(ids, self._limits.read):
            params = ua.ReadParameters()
            params.NodesToRead = list(part)
            values.extend(await self._call("reading data types", client.uaclient.read(params)))
        for i, node_id in enumerate(missing):
            dt, rank, access, user_access = (
                plain(values[4 * i + j]) for j in range(len(attributes))
            )
            type_id = None
            type_name = str(dt)
            if dt is not None and dt.NamespaceIndex == 0 and isinstance(dt.Identifier, int):
                type_id = dt.Identifier
                type_name = TYPE_NAMES.get(type_id, f"i={type_id}")
            self._meta[node_id] = NodeMeta(
                type_id,
                type_name,
                int(rank) if rank is not None else -1,
                int(access or 0),
                int(access or 0) if user_access is None else int(user_access),
            )

    async def execute_write(self, plan: list[OpcUaWrite]) -> None:
        """Check values against the nodes' DataType and AccessLevel, then one Write call."""
        ua = self._module()
        client = await self._ensure_connected()
        paths = [w.address for w in plan if isinstance(w.address, BrowsePath)]
        missing = [p for p in dict.fromkeys(paths) if p not in self._paths]
        if missing:
            await self._translate(missing)
        node_ids = []
        for write in plan:
            if isinstance(write.address, BrowsePath):
                found = self._paths[write.address]
                if isinstance(found, int):
                    raise ProtocolError(
                        f"tag {write.tag.name!r}: browse path {write.address} does not exist on "
                        f"the OPC UA server at {self.endpoint} ({status_name(found)})",
                        code=found,
                        tags=[write.tag.name],
                    )
                node_ids.append(found)
            else:
                node_ids.append(self._node_id(write.address))
        await self._metadata(node_ids)
        items = []
        for write, node_id in zip(plan, node_ids, strict=True):
            meta = self._meta[node_id]
            name = f"tag {write.tag.name!r} ({write.tag.address})"
            if not meta.access & 0x02:
                raise WriteNotAllowed(f"{name} is read-only on the OPC UA server (AccessLevel)")
            if not meta.user_access & 0x02:
                raise WriteNotAllowed(
                    f"{name} is not writable for user {self.options.user or 'anonymous'!r} "
                    "(UserAccessLevel)"
                )
            variant = to_variant(ua, name, meta, write.value)
            item = ua.WriteValue()
            item.NodeId = node_id
            item.AttributeId = ua.AttributeIds.Value
            item.Value = ua.DataValue(variant)
            items.append(item)
        results: list[Any] = []
        for part in batched(items, self._limits.write):
            params = ua.WriteParameters()
            params.NodesToWrite = list(part)
            results.extend(await self._call("writing", client.uaclient.write(params)))
        for write, status in zip(plan, results, strict=True):
            code = status.value
            if code >> 30 < 2:
                continue
            base = code & 0xFFFF0000
            text = (
                f"the OPC UA server at {self.endpoint} refused writing tag {write.tag.name!r}: "
                f"{status_name(code)}"
            )
            if base in NOT_WRITABLE:
                raise WriteNotAllowed(text)
            if base in BAD_VALUE:
                raise ValueOutOfRange(text)
            raise ProtocolError(text, code=code, tags=[write.tag.name])

    # -- browsing -------------------------------------------------------------------------
    async def browse(self, path: str | None, depth: int) -> Any:
        """Walk ``depth`` levels below ``path`` (default ``/Objects``), one level per call pair.

        Returns a DataFrame with node_id, browse_path, display_name, node_class, data_type,
        access_level, writable and description; properties (HasProperty) are left out.
        """
        import pandas as pd

        ua = self._module()
        if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
            raise ConfigurationError(f"depth must be an integer >= 1, got {depth!r}")
        start_text = path or "/Objects"
        address = parse_opcua_address(start_text)
        if isinstance(address, BrowsePath):
            if address not in self._paths:
                await self._translate([address])
            start = self._paths[address]
            if isinstance(start, int):
                raise ProtocolError(
                    f"browse path {start_text} does not exist on the OPC UA server at "
                    f"{self.endpoint} ({status_name(start)})",
                    code=start,
                )
        else:
            start = self._node_id(address)
        client = await self._ensure_connected()
        rows: list[dict[str, Any]] = []
        frontier: list[tuple[Any, str]] = [(start, str(address).rstrip("/"))]
        for level in range(1, depth + 1):
            if not frontier or len(rows) >= MAX_BROWSE_NODES:
                break
            children = await browse_level(
                ua, self._call, client, [node for node, _ in frontier], self._limits.browse
            )
            found: list[tuple[Any, str, Any]] = []
            for (_, parent_path), references in zip(frontier, children, strict=True):
                for ref in references:
                    name = ref.BrowseName
                    escaped = "".join(f"&{c}" if c in "&/:" else c for c in name.Name)
                    element = f"{name.NamespaceIndex}:{escaped}" if name.NamespaceIndex else escaped
                    found.append((ref, f"{parent_path}/{element}", local_node_id(ua, ref.NodeId)))
            details = await node_details(
                ua,
                self._call,
                client,
                [f[2] for f in found],
                [f[0] for f in found],
                self._limits.read,
            )
            frontier = []
            for (ref, child_path, node_id), detail in zip(found, details, strict=True):
                node_class = NODE_CLASSES.get(int(ref.NodeClass), str(ref.NodeClass))
                rows.append(
                    {
                        "node_id": node_id.to_string(),
                        "browse_path": child_path,
                        "display_name": ref.DisplayName.Text or "",
                        "node_class": node_class,
                        **detail,
                        "depth": level,
                    }
                )
                frontier.append((node_id, child_path))
        columns = [
            "node_id",
            "browse_path",
            "display_name",
            "node_class",
            "data_type",
            "access_level",
            "writable",
            "description",
            "depth",
        ]
        frame = pd.DataFrame.from_records(rows, columns=columns)
        return frame

    # -- identification -------------------------------------------------------------------
    async def info(self) -> dict[str, Any]:
        """Server BuildInfo, namespace array, state and the session's security."""
        ua = self._module()
        client = await self._ensure_connected()
        ids = [*BUILD_INFO.values(), NAMESPACE_ARRAY, SERVER_STATE]
        values: list[Any] = []
        for part in batched([read_value_id(ua, ua.NodeId(i, 0)) for i in ids], self._limits.read):
            params = ua.ReadParameters()
            params.NodesToRead = list(part)
            values.extend(
                await self._call("reading the server's BuildInfo", client.uaclient.read(params))
            )
        answers = [plain(v) for v in values]
        result: dict[str, Any] = {"protocol": "opcua", "endpoint": self.endpoint}
        for key, value in zip(BUILD_INFO, answers, strict=False):
            result[key] = value.isoformat() if isinstance(value, datetime) else value
        result["vendor"] = result.get("manufacturer")
        result["namespaces"] = list(answers[len(BUILD_INFO)] or [])
        state = answers[len(BUILD_INFO) + 1]
        result["state"] = getattr(state, "name", state)
        result["security_policy"] = self.options.security_policy
        result["security_mode"] = self.options.security_mode
        result["user"] = self.options.user
        result["server_certificate_sha256"] = self._server_fingerprint
        result["max_nodes_per_read"] = self._limits.read
        result["operation_limits"] = self._limits.as_dict()
        return result

    # -- subscriptions --------------------------------------------------------------------
    async def subscribe(
        self,
        plan: ReadPlan,
        interval_s: float,
        on_data: Callable[[ReadResult], None],
        *,
        queue_size: int | None = None,
        deadband: float = 0.0,
    ) -> OpcUaSubscription:
        """A data-change subscription: one ReadResult per publish response."""
        ua = self._module()
        if not interval_s > 0:
            raise ConfigurationError(f"interval must be positive, got {interval_s}")
        queue = DEFAULT_QUEUE if queue_size is None else int(queue_size)
        if queue < 1:
            raise ConfigurationError(f"queue_size must be at least 1, got {queue_size}")
        if deadband < 0 or not math.isfinite(deadband):
            raise ConfigurationError(f"deadband must be >= 0, got {deadband}")
        client = await self._ensure_connected()
        if plan.generation != self._generation:
            await self._resolve(plan)
        positions = [int(p) for p in plan.positions]
        numeric = set(positions)
        if deadband > 0:
            await self._metadata([plan.node_ids[p] for p in positions])
            numeric = {
                p
                for p in positions
                if self._meta[plan.node_ids[p]].data_type in INT_BOUNDS
                or self._meta[plan.node_ids[p]].data_type in (10, 11)
            }
        interval_ms = interval_s * 1000.0
        params = subscription_parameters(ua, interval_s, len(positions))
        subscription = OpcUaSubscription(self, plan, on_data, client)
        response = await self._call(
            "creating a subscription",
            client.uaclient.create_subscription(params, subscription.on_publish),
        )
        subscription.subscription_id = response.SubscriptionId
        requests = []
        for position in positions:
            request = ua.MonitoredItemCreateRequest()
            request.ItemToMonitor = read_value_id(ua, plan.node_ids[position])
            request.MonitoringMode = ua.MonitoringMode.Reporting
            parameters = ua.MonitoringParameters()
            parameters.ClientHandle = position
            parameters.SamplingInterval = interval_ms
            parameters.QueueSize = queue
            parameters.DiscardOldest = True
            if deadband > 0 and position in numeric:
                data_filter = ua.DataChangeFilter()
                data_filter.Trigger = ua.DataChangeTrigger.StatusValue
                data_filter.DeadbandType = ua.DeadbandType.Absolute
                data_filter.DeadbandValue = float(deadband)
                parameters.Filter = data_filter
            request.RequestedParameters = parameters
            requests.append(request)
        results: list[Any] = []
        try:
            for part in batched(requests, self._limits.monitored_items):
                create = ua.CreateMonitoredItemsParameters()
                create.SubscriptionId = subscription.subscription_id
                create.ItemsToCreate = list(part)
                create.TimestampsToReturn = ua.TimestampsToReturn.Both
                results.extend(
                    await self._call(
                        "creating monitored items", client.uaclient.create_monitored_items(create)
                    )
                )
        except BifrostError:
            await subscription.close()
            raise
        failed = [
            (position, result.StatusCode.value)
            for position, result in zip(positions, results, strict=True)
            if result.StatusCode.value >> 30 >= 2
        ]
        failed += plan.unresolved
        if failed and len(failed) == len(plan.tags):
            await subscription.close()
            code = failed[0][1]
            raise ProtocolError(
                f"the OPC UA server at {self.endpoint} refused to monitor every tag "
                f"({status_name(code)})",
                code=code,
                tags=[t.name for t in plan.tags],
            )
        self._subscriptions.append(subscription)
        subscription.started(response)
        if failed:
            subscription.report_failed(failed)
        return subscription


_NO_ANSWER = 0x800A0000  # BadTimeout
_EVENT_INTERVAL_S = 0.1  # publishing interval of event subscriptions
_EVENT_QUEUE = 1000  # events the server queues per publish
_HISTORY_READ = 0x04  # AccessLevel bit
_NAT = np.iinfo(np.int64).min  # NaT as datetime64[ns]


def _within(values: Sequence[Any], start_ns: int, end_ns: int) -> bool:
    # Raw values must lie in the span asked for (DateTime has 100 ns ticks, asyncua µs).
    for dv in values:
        stamp = dv.SourceTimestamp or dv.ServerTimestamp
        if stamp is None:
            return False
        if not start_ns - 1000 <= datetime_ns(stamp) <= end_ns + 1000:
            return False
    return True


_CONNECTION_CLOSED = 0x80AE0000  # BadConnectionClosed


async def _disconnect_quietly(client: Any, timeout: float) -> None:
    """Close a session and its socket, whatever state they are in; never raises.

    The steps of asyncua's ``disconnect`` one by one: it logs a traceback when the
    server does not answer CloseSession, which is the usual case here.
    """
    try:
        async with asyncio.timeout(min(timeout, 2.0)):
            with contextlib.suppress(Exception):
                await client.close_session()
            with contextlib.suppress(Exception):
                await client.close_secure_channel()
    except builtins.TimeoutError:
        pass
    finally:
        with contextlib.suppress(Exception):
            client.disconnect_socket()
