"""Events and Alarms & Conditions: an event monitored item, its fields, acknowledging.

One subscription with one monitored item on the source node's EventNotifier; the event
filter selects the fields bifrost shows (time, source, severity, message, the
condition's name and Active/Acked/Confirmed states, Retain, EventId, ConditionId).
ConditionRefresh is called once, so conditions already active are reported first.
The EventId → ConditionId of every event seen is kept (bounded) for
:func:`acknowledge_request`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime
from typing import Any

from bifrost.clock import wall_ns
from bifrost.protocols.opcua.nodes import datetime_ns

__all__ = ["EVENT_FIELDS", "EventSubscription", "KnownEvents", "event_filter", "event_row"]

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


class EventSubscription:
    """One event monitored item on a source node; rows go to ``on_events``."""

    def __init__(self, owner: Any, client: Any, on_events: Callable[[list[dict[str, Any]]], None]):
        self._owner = owner
        self._client = client
        self._on_events = on_events
        self.subscription_id: int | None = None
        self.closed = False
        # ConditionRefresh re-sends an event that may also have come live: once each.
        self._seen = KnownEvents()

    async def on_publish(self, result: Any) -> None:
        """Asyncua's publish loop awaits this with each PublishResult."""
        if self.closed:
            return
        ua = self._owner._module()
        rows = []
        for data in result.NotificationMessage.NotificationData or []:
            for item in getattr(data, "Events", None) or []:
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

    async def close(self) -> None:
        """Delete the subscription on the server (quietly if the session is gone)."""
        self.closed = True
        subscription_id, self.subscription_id = self.subscription_id, None
        if subscription_id is None or self._client is not self._owner._client:
            return
        with contextlib.suppress(Exception):
            async with asyncio.timeout(self._owner.options.timeout):
                await self._client.uaclient.delete_subscriptions([subscription_id])


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
