"""The simulated plant's tank alarm: an OffNormalAlarm condition on ``tank.high_alarm``.

The condition ``Plant/Tank/HighLevel`` (OffNormalAlarmType) follows the plant's
two-point high-level alarm; each transition, and each acknowledgement, is an event
emitted by the ``Plant`` folder (subscribe to ``/Objects/2:Plant``). Acknowledge is
asyncua's Call of ``AcknowledgeableConditionType.Acknowledge`` on the condition, with
the EventId of its latest event; asyncua's ConditionRefresh re-sends it while retained.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from asyncua import ua as _ua
from asyncua.server.server import Server

__all__ = ["CONDITION_ID", "TankAlarm"]

ua: Any = _ua
_log = logging.getLogger("bifrost.sim")
CONDITION_ID = "Plant.Tank.HighLevel"
_ACTIVE_SEVERITY = 700
_NORMAL_SEVERITY = 100


class TankAlarm:
    """The condition's state, its events and its Acknowledge method."""

    def __init__(self) -> None:
        self.active = False
        self.acked = True
        self._generator: Any = None
        self._condition = ua.NodeId(CONDITION_ID, 2)
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self, server: Server) -> None:
        """Add the condition node, the event generator and the Acknowledge callback."""
        item = ua.AddNodesItem()
        item.RequestedNewNodeId = self._condition
        item.BrowseName = ua.QualifiedName("HighLevel", 2)
        item.NodeClass = ua.NodeClass.Object
        item.ParentNodeId = ua.NodeId("Plant.Tank", 2)
        item.ReferenceTypeId = ua.NodeId(ua.ObjectIds.HasComponent)
        item.TypeDefinition = ua.NodeId(ua.ObjectIds.OffNormalAlarmType)
        attrs = ua.ObjectAttributes()
        attrs.DisplayName = ua.LocalizedText("HighLevel")
        attrs.Description = ua.LocalizedText("Tank level high (on 3.5 m, off 3.3 m)")
        item.NodeAttributes = attrs
        (result,) = await server.iserver.isession.add_nodes([item])
        result.StatusCode.check()
        plant = ua.NodeId("Plant", 2)
        generator = await server.get_event_generator(ua.ObjectIds.OffNormalAlarmType, plant)
        event = generator.event
        event.add_property("NodeId", self._condition, ua.VariantType.NodeId)
        event.SourceNode = ua.NodeId("Plant.Tank.Level", 2)
        event.SourceName = "Tank"
        event.ConditionName = "HighLevel"
        event.InputNode = ua.NodeId("Plant.Tank.HighAlarm", 2)
        self._generator = generator
        server.iserver.isession.add_method_callback(
            ua.NodeId(ua.ObjectIds.AcknowledgeableConditionType_Acknowledge), self._acknowledge
        )

    def update(self, active: bool, level: float) -> None:
        """Follow the plant's alarm (on the server's loop); a change emits an event."""
        if active == self.active or self._generator is None:
            return
        self.active = active
        if active:
            self.acked = False
            message = f"Tank level high: {level:.2f} m"
        else:
            message = f"Tank level back to normal: {level:.2f} m"
        task = asyncio.get_running_loop().create_task(self._emit(message))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _emit(self, message: str) -> None:
        async with self._lock:
            event = self._generator.event
            event.Severity = _ACTIVE_SEVERITY if self.active else _NORMAL_SEVERITY
            event.Retain = self.active or not self.acked
            setattr(event, "ActiveState/Id", self.active)
            event.ActiveState = ua.LocalizedText("Active" if self.active else "Inactive")
            setattr(event, "AckedState/Id", self.acked)
            event.AckedState = ua.LocalizedText("Acknowledged" if self.acked else "Unacknowledged")
            setattr(event, "ConfirmedState/Id", False)
            setattr(event, "EnabledState/Id", True)
            event.EnabledState = ua.LocalizedText("Enabled")
            try:
                await self._generator.trigger(message=message)
            except Exception:  # one failed event must not stop the plant's server
                _log.exception("the tank alarm's event failed")

    def _last_event_id(self) -> bytes | None:
        event_id = getattr(self._generator.event, "EventId", None)
        value = getattr(event_id, "Value", event_id)  # asyncua stores it as a Variant
        return bytes(value) if isinstance(value, bytes | bytearray) else None

    async def _acknowledge(self, parent: Any, *args: Any) -> Any:
        if parent != self._condition:
            return ua.StatusCode(ua.StatusCodes.BadNodeIdUnknown)
        if len(args) != 2:
            code = "BadArgumentsMissing" if len(args) < 2 else "BadTooManyArguments"
            return ua.StatusCode(getattr(ua.StatusCodes, code))
        event_id, comment = (arg.Value for arg in args)
        if not isinstance(event_id, bytes) or event_id != self._last_event_id():
            return ua.StatusCode(ua.StatusCodes.BadEventIdUnknown)
        if self.acked:
            return ua.StatusCode(ua.StatusCodes.BadConditionBranchAlreadyAcked)
        self.acked = True
        text = getattr(comment, "Text", None) or ""
        self._generator.event.Comment = ua.LocalizedText(text)
        await self._emit(f"Tank level alarm acknowledged: {text}" if text else "acknowledged")
        return []
