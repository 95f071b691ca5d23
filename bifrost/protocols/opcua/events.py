"""Events and Alarms & Conditions: an event monitored item, its fields, acknowledging.

One subscription with one monitored item on the source node's EventNotifier; the event
filter selects the fields bifrost shows (time, source, severity, message, the
condition's name and Active/Acked/Confirmed states, Retain, EventId, ConditionId).
ConditionRefresh is called once per session, so conditions already active are reported
first, and again after the subscription is made anew on a new session (a lost session
is noticed as for data subscriptions, see ``subscription.py``). The EventId →
ConditionId of every event seen is kept (bounded) for acknowledge.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from bifrost.backoff import Backoff
from bifrost.clock import wall_ns
from bifrost.exceptions import BifrostError, ConnectionError, TimeoutError
from bifrost.protocols.opcua.nodes import datetime_ns
from bifrost.protocols.opcua.subscription import PublishWatcher

__all__ = [
    "EVENT_FIELDS",
    "EventStream",
    "EventSubscription",
    "KnownEvents",
    "event_filter",
    "event_row",
]

# (browse path below the event type, key of the row)
EVENT_FIELDS = (
    (("EventId",), "event_id"),
    (("EventType",), "event_type"),
    (("SourceName",), "source"),
    (("Time",), "time"),
    (("Message",), "message"),
    (("Severity",), "severity"),
    (("ConditionName",), "condition"),
    (("Retain",), "retain"),
    (("ActiveState", "Id"), "active"),
    (("AckedState", "Id"), "acked"),
    (("ConfirmedState", "Id"), "confirmed"),
)
_KNOWN_EVENTS = 10_000  # EventIds remembered for acknowledge()
_RESTORE_FIRST_S = 0.2  # first wait before making a lost event subscription again
_log = logging.getLogger(__name__)
_EPOCH_YEAR = 1970


def event_filter(ua: Any) -> Any:
    """The EventFilter selecting :data:`EVENT_FIELDS` and the ConditionId (last)."""
    event_filter = ua.EventFilter()
    for path, _ in EVENT_FIELDS:
        operand = ua.SimpleAttributeOperand()
        operand.TypeDefinitionId = ua.NodeId(ua.ObjectIds.BaseEventType)
        operand.BrowsePath = [ua.QualifiedName(name, 0) for name in path]
        operand.AttributeId = ua.AttributeIds.Value
        event_filter.SelectClauses.append(operand)
    condition = ua.SimpleAttributeOperand()
    condition.TypeDefinitionId = ua.NodeId(ua.ObjectIds.ConditionType)
    condition.BrowsePath = []
    condition.AttributeId = ua.AttributeIds.NodeId
    event_filter.SelectClauses.append(condition)
    return event_filter


def _ns(value: Any) -> int | None:
    if not isinstance(value, datetime) or value.tzinfo is None or value.year < _EPOCH_YEAR:
        return None
    return datetime_ns(value)


def event_row(ua: Any, fields: list[Any]) -> tuple[dict[str, Any], Any]:
    """One event's fields as a row (plain Python values), and its ConditionId."""
    values = [getattr(f, "Value", None) for f in fields]
    row: dict[str, Any] = {}
    for (_, key), value in zip(EVENT_FIELDS, values, strict=False):
        row[key] = value
    message = row.get("message")
    row["message"] = getattr(message, "Text", message) or ""
    event_type = row.get("event_type")
    row["event_type"] = _type_name(ua, event_type)
    stamp = _ns(row.pop("time", None))
    row["time_ns"] = stamp if stamp is not None else wall_ns()
    event_id = row.get("event_id")
    row["event_id"] = bytes(event_id) if isinstance(event_id, bytes | bytearray) else None
    for key in ("active", "acked", "confirmed", "retain"):
        if not isinstance(row.get(key), bool):
            row[key] = None
    severity = row.get("severity")
    row["severity"] = int(severity) if isinstance(severity, int) else None
    condition = values[len(EVENT_FIELDS)] if len(values) > len(EVENT_FIELDS) else None
    return row, condition


def _type_name(ua: Any, node_id: Any) -> str:
    if node_id is None:
        return ""
    if getattr(node_id, "NamespaceIndex", None) == 0:
        for name, number in vars(ua.ObjectIds).items():
            if number == node_id.Identifier and name.endswith("Type") and "_" not in name:
                return str(name)
    return str(node_id.to_string())


class EventStream(PublishWatcher):
    """One server subscription with the event monitored item; belongs to an EventSubscription."""

    def __init__(self, handle: EventSubscription, client: Any) -> None:
        super().__init__(handle._owner, client)
        self._handle = handle

    def _events(self, events: Sequence[Any]) -> None:
        self._handle.deliver(events)

    def _report_lost(self, code: int) -> None:
        self._handle.stream_lost(self, code)


class EventSubscription:
    """Events of one source node, delivered to ``on_events``; outlives its sessions.

    Each session carries one :class:`EventStream`. When it is lost (the same signs as a
    data subscription's: the connection closed, the server silent or saying the session
    is gone), the subscription is made again on a new session with backoff, and
    ConditionRefresh re-sends the active conditions; EventIds already delivered are
    not delivered again. ``on_restore(None, False)`` (settable: bifrost.subscriptions
    hooks in) tells of a restored subscription,
    ``on_restore(error, False)`` of an attempt that failed for now (the server away), and
    ``on_restore(error, True)`` that it cannot be restored (the server refuses the
    source now): the subscription then ends (``active`` False).
    """

    def __init__(
        self,
        owner: Any,
        source: str,
        on_events: Callable[[list[dict[str, Any]]], None],
        on_restore: Callable[[BifrostError | None, bool], None] | None = None,
    ) -> None:
        self._owner = owner
        self.source = source
        self._on_events = on_events
        self.on_restore = on_restore
        self.stream: EventStream | None = None
        self.closed = False
        self.restores = 0
        self.last_error: BifrostError | None = None
        self._restorer: asyncio.Task[None] | None = None
        # ConditionRefresh re-sends an event that may also have come live: once each.
        self._seen = KnownEvents()

    @property
    def active(self) -> bool:
        """Whether events can still arrive (now or after a restore)."""
        return not self.closed

    @property
    def subscription_id(self) -> int | None:
        """The server's id of the current subscription (None while restoring)."""
        return None if self.stream is None else self.stream.subscription_id

    def deliver(self, events: Sequence[Any]) -> None:
        """Rows of the events not delivered before, to ``on_events``."""
        if self.closed:
            return
        ua = self._owner._module()
        rows = []
        for item in events:
            row, condition = event_row(ua, list(item.EventFields or []))
            event_id = row["event_id"]
            if event_id is not None:
                if self._seen.condition(event_id) is not None:
                    continue
                self._seen.add(event_id, condition if condition is not None else True)
                if condition is not None:
                    self._owner.remember_event(event_id, condition)
            rows.append(row)
        if rows:
            self._on_events(rows)

    def stream_lost(self, stream: EventStream, code: int) -> None:
        """The session under ``stream`` is gone: make the subscription again."""
        del code  # the row-less event feed has no quality to report it with
        if self.closed or stream is not self.stream:
            return
        self.stream = None
        if self._restorer is None:  # a restore under way sees the stream gone
            self._restorer = asyncio.get_running_loop().create_task(
                self._restore(), name="bifrost-opcua-events-restore"
            )

    async def _restore(self) -> None:
        backoff = Backoff(first=_RESTORE_FIRST_S)
        try:
            while not self.closed:
                await asyncio.sleep(backoff.failed())
                try:
                    await self._owner.connect()
                    await self._owner.open_event_stream(self)
                except (ConnectionError, TimeoutError) as exc:  # the server is away: retry
                    self._report(exc, final=False)
                    continue
                except BifrostError as exc:  # it answers, but no longer for this source
                    self.closed = True
                    self._report(exc, final=True)
                    return
                if self.stream is None or self.stream.lost:
                    continue  # lost again while it was being made
                self.restores += 1
                if self.on_restore is not None:
                    self.on_restore(None, False)
                return
        finally:
            self._restorer = None

    def _report(self, error: BifrostError, *, final: bool) -> None:
        self.last_error = error
        if final:
            _log.warning("event subscription on %s ended: %s", self.source, error)
        if self.on_restore is not None:
            self.on_restore(error, final)

    async def stop_restoring(self) -> None:
        """End the subscription here without a word to the server (its session ends)."""
        self.closed = True
        restorer, self._restorer = self._restorer, None
        if restorer is not None and restorer is not asyncio.current_task():
            restorer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await restorer

    async def close(self) -> None:
        """End the subscription; delete it on the server (quietly if the session is gone)."""
        await self.stop_restoring()
        stream, self.stream = self.stream, None
        if stream is not None:
            await stream.close()
        with contextlib.suppress(ValueError):
            self._owner._event_subscriptions.remove(self)


class KnownEvents:
    """EventId -> ConditionId of recent events (what Acknowledge needs), bounded."""

    def __init__(self) -> None:
        self._known: OrderedDict[bytes, Any] = OrderedDict()

    def add(self, event_id: bytes, condition: Any) -> None:
        """Remember an event's condition; the oldest are forgotten first."""
        self._known[event_id] = condition
        self._known.move_to_end(event_id)
        while len(self._known) > _KNOWN_EVENTS:
            self._known.popitem(last=False)

    def condition(self, event_id: bytes) -> Any:
        """The ConditionId of a known event, or None."""
        return self._known.get(event_id)
