"""Native OPC UA subscriptions: each publish response becomes ReadResults."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np

from bifrost.clock import wall_ns
from bifrost.model import Quality
from bifrost.protocols.base import ReadResult
from bifrost.protocols.opcua.codec import OpcUaReadResult, decode
from bifrost.protocols.opcua.options import OpcUaOptions
from bifrost.protocols.opcua.plan import ReadPlan
from bifrost.protocols.opcua.status import quality_of

DEFAULT_QUEUE = 10  # per monitored item: absorbs jitter between sampling and publishing


class _Owner(Protocol):
    """What a subscription uses of its OpcUaDriver (a protocol: driver.py imports this module)."""

    @property
    def options(self) -> OpcUaOptions: ...

    @property
    def endpoint(self) -> str: ...

    @property
    def connected(self) -> bool: ...

    @property
    def _client(self) -> Any: ...

    @property
    def _subscriptions(self) -> list[OpcUaSubscription]: ...


class OpcUaSubscription:
    """A native subscription: turns publish responses into ReadResults."""

    def __init__(
        self,
        driver: _Owner,
        plan: ReadPlan,
        on_data: Callable[[ReadResult], None],
        client: Any,
    ) -> None:
        self._driver = driver
        self._plan = plan
        self._on_data = on_data
        self._client = client
        self.subscription_id: int | None = None
        self.closed = False
        self.publishes = 0

    def report_failed(self, failed: Sequence[tuple[int, int]]) -> None:
        """Deliver once, with bad quality, the tags the server would not monitor."""
        positions = np.asarray([p for p, _ in failed], dtype=np.intp)
        n = len(positions)
        quality = np.asarray([quality_of(code) for _, code in failed], dtype=np.uint8)
        self._on_data(
            OpcUaReadResult(
                tuple(self._plan.tags[p] for p in positions),
                [],
                quality,
                np.full(n, wall_ns(), dtype=np.int64),
                [],
                positions,
                np.zeros(n, dtype=np.int64),
            )
        )

    def on_publish(self, result: Any) -> None:
        """Asyncua's publish loop calls this with each PublishResult (on the loop)."""
        if self.closed:
            return
        from asyncua import ua

        self.publishes += 1
        for notification in result.NotificationMessage.NotificationData or ():
            if isinstance(notification, ua.DataChangeNotification):
                self._data_change(notification.MonitoredItems)
            elif isinstance(notification, ua.StatusChangeNotification):
                code = notification.Status.value if notification.Status is not None else 0
                if code >> 30 >= 2:
                    self._lost(code)

    def _data_change(self, items: Sequence[Any]) -> None:
        rounds: list[tuple[list[int], list[Any]]] = []
        seen: dict[int, int] = {}
        for item in items:
            handle = item.ClientHandle
            k = seen.get(handle, 0)
            seen[handle] = k + 1
            if k == len(rounds):
                rounds.append(([], []))
            rounds[k][0].append(handle)
            rounds[k][1].append(item.Value)
        for handles, values in rounds:
            where = np.asarray(handles, dtype=np.intp)
            self._on_data(
                decode(
                    self._plan,
                    where,
                    values,
                    self._driver.endpoint,
                    reading=False,
                    indices=where,
                )
            )

    def _lost(self, code: int) -> None:
        n = len(self._plan.tags)
        quality = quality_of(code)
        self._on_data(
            OpcUaReadResult(
                self._plan.tags,
                [],
                np.full(n, quality if quality >= Quality.BAD else Quality.BAD, dtype=np.uint8),
                np.full(n, wall_ns(), dtype=np.int64),
                [],
                None,
                np.zeros(n, dtype=np.int64),
            )
        )

    async def close(self) -> None:
        """Delete the subscription on the server (quietly if the session is gone)."""
        self.closed = True
        if self.subscription_id is None:
            return
        subscription_id, self.subscription_id = self.subscription_id, None
        with contextlib.suppress(ValueError):
            self._driver._subscriptions.remove(self)
        if self._client is not self._driver._client or not self._driver.connected:
            return  # that session is gone, and its subscriptions with it
        with contextlib.suppress(Exception):
            async with asyncio.timeout(self._driver.options.timeout):
                await self._client.uaclient.delete_subscriptions([subscription_id])
