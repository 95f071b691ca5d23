"""Native OPC UA subscriptions: each publish response becomes ReadResults.

When a subscription is lost is decided here, not by asyncua's watchdog. A server that
is only slow for a while (its loop blocked for a publishing cycle, a congested link)
still holds the session, the subscription and the notifications it could not send, so
bifrost keeps all three: the watchdog's probe is made lenient (see ``driver.py``), and
this module watches the publish responses themselves. Every response, keep-alives
included, carries a sequence number; a message skipped over is fetched with Republish
before the newer one is delivered, so values arrive once and in order. The subscription
is reported lost (all tags bad, which makes :mod:`bifrost.subscriptions` re-create it)
only when the session is really gone: the connection closed (asyncua's BadShutdown), the
server says the session or subscription no longer exists, or it has been silent for
longer than its keep-alive promise and does not answer a Republish either.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import math
import time
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
MIN_NOTIFICATIONS_PER_PUBLISH = 1_000
"""Lower bound of MaxNotificationsPerPublish (the bound is this or one value per item)."""

_KEEP_ALIVE_S = 1.0  # the longest a live server stays silent: how soon a hung one shows
_LIFETIME_S = 60.0  # how long the server keeps the subscription without publish requests
_MAX_REPUBLISH = 100  # messages fetched to fill one gap (servers keep only a few anyway)
_NO_COMMUNICATION = 0x80310000  # BadNoCommunication: the server stopped answering
_MESSAGE_NOT_AVAILABLE = 0x807B0000  # BadMessageNotAvailable: nothing to republish
_GONE = {
    0x80280000,  # BadSubscriptionIdInvalid
    0x80790000,  # BadNoSubscription
    0x80250000,  # BadSessionIdInvalid
    0x80260000,  # BadSessionClosed
    0x80270000,  # BadSessionNotActivated
}


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
    def _subscriptions(self) -> list[PublishWatcher]: ...

    def abandon(self, client: Any, code: int) -> None: ...


def subscription_parameters(ua: Any, interval_s: float, items: int) -> Any:
    """CreateSubscription's parameters for ``items`` monitored items every ``interval_s``."""
    interval_ms = interval_s * 1000.0
    params = ua.CreateSubscriptionParameters()
    params.RequestedPublishingInterval = interval_ms
    # A keep-alive about every second lets a silent (hung) server be told from a quiet one
    # within seconds; the spec wants the lifetime to be at least three keep-alives, and a
    # long one lets the subscription outlive a stall of the link.
    keep_alive = max(1, math.ceil(_KEEP_ALIVE_S * 1000.0 / max(interval_ms, 1.0)))
    params.RequestedMaxKeepAliveCount = keep_alive
    params.RequestedLifetimeCount = max(
        3 * keep_alive, math.ceil(_LIFETIME_S * 1000.0 / max(interval_ms, 1.0))
    )
    # Unlimited (0) makes a server build one message of every queued value of every item
    # after a backlog, which stalls a large server; one round of every item still fits in
    # one message, so a normal cycle stays one notification.
    params.MaxNotificationsPerPublish = max(MIN_NOTIFICATIONS_PER_PUBLISH, items)
    params.PublishingEnabled = True
    params.Priority = 0
    return params


class PublishWatcher:
    """One server subscription's publish responses, in order, once; notices its loss.

    Subclasses say what a data change or an event list becomes and what the loss means
    (:meth:`_data_change`, :meth:`_events`, :meth:`_report_lost`).
    """

    def __init__(self, driver: _Owner, client: Any) -> None:
        self._driver = driver
        self._client = client
        self.subscription_id: int | None = None
        self.closed = False
        self.lost = False
        self.publishes = 0
        self.republished = 0
        self._expected: int | None = None  # sequence number of the next data message
        self._heard = time.monotonic()
        self._silence_allowed = _KEEP_ALIVE_S + driver.options.timeout
        self._order = asyncio.Lock()  # publish loop and watcher deliver one at a time
        self._watcher: asyncio.Task[None] | None = None

    def started(self, response: Any) -> None:
        """Take the server's revised timing and start watching for silence."""
        self.subscription_id = response.SubscriptionId
        interval_s = float(response.RevisedPublishingInterval or 0.0) / 1000.0
        keep_alive = int(response.RevisedMaxKeepAliveCount or 1)
        # A live server sends data or a keep-alive within keep_alive intervals; the
        # request timeout is the allowance for the network and a busy server.
        self._silence_allowed = max(interval_s, 0.0) * max(keep_alive, 1) + (
            self._driver.options.timeout
        )
        self._heard = time.monotonic()
        self._watcher = asyncio.get_running_loop().create_task(
            self._watch(), name="bifrost-opcua-watch"
        )

    async def on_publish(self, result: Any) -> None:
        """Asyncua's publish loop awaits this with each PublishResult (on the loop)."""
        if self.closed:
            return
        async with self._order:
            if self.closed:
                return
            self._heard = time.monotonic()
            message = result.NotificationMessage
            sequence = int(message.SequenceNumber or 0)
            if sequence == 0:  # made by asyncua itself (BadShutdown): no place in the order
                self._deliver(message)
                return
            data = bool(message.NotificationData)
            expected = self._expected
            if expected is not None and sequence < expected and data:
                return  # already delivered (republished before it arrived)
            if expected is not None and sequence > expected:
                await self._fill(expected, sequence, result.AvailableSequenceNumbers)
            self._deliver(message)
            if self.lost or self.closed:
                return
            self._expected = sequence + 1 if data else max(sequence, self._expected or 0)

    async def _fill(self, first: int, end: int, available: Sequence[int] | None) -> None:
        """Fetch the messages ``first`` .. ``end - 1`` that the server still holds."""
        wanted = range(first, end)
        if available:
            held = set(int(n) for n in available)
            numbers = [n for n in wanted if n in held]
        else:  # servers need not say what they hold; ask for the most recent ones
            numbers = list(wanted)
        for number in numbers[-_MAX_REPUBLISH:]:
            message = await self._republish(number)
            if message is None or self.lost:
                return
            if message.NotificationData:
                self.republished += 1
                self._deliver(message)

    async def _republish(self, number: int) -> Any:
        """The message ``number``, an empty one if the server has none; None when lost."""
        from asyncua import ua as _ua

        ua: Any = _ua  # its errors are re-exported without annotations

        client = self._client
        try:
            async with asyncio.timeout(self._driver.options.timeout):
                return await client.uaclient.session.republish(self.subscription_id, number)
        except ua.UaStatusCodeError as exc:
            code = int(getattr(exc, "code", 0) or 0) & 0xFFFF0000
            if code == _MESSAGE_NOT_AVAILABLE:
                return ua.NotificationMessage()
            if code in _GONE:
                self._lost(code)
                return None
            return ua.NotificationMessage()  # the server answered: it is alive
        except (builtins.TimeoutError, OSError, ua.UaError):
            # The server is silent or the connection closed: the session is gone for us.
            self._lost(_NO_COMMUNICATION)
            self._driver.abandon(client, _NO_COMMUNICATION)
            return None

    async def _watch(self) -> None:
        """Notice a server that stopped answering altogether (a hung one sends nothing)."""
        while not (self.closed or self.lost):
            wait = self._heard + self._silence_allowed - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
                continue
            async with self._order:
                if self.closed or self.lost:
                    return
                # One Republish both asks whether the server and the subscription are
                # still there and fetches a message we may have missed.
                message = await self._republish(self._expected or 1)
                if message is None:
                    return
                self._heard = time.monotonic()
                if message.NotificationData:
                    self.republished += 1
                    self._deliver(message)
                    if not self.lost:
                        self._expected = int(message.SequenceNumber) + 1

    def _deliver(self, message: Any) -> None:
        from asyncua import ua

        self.publishes += 1
        for notification in message.NotificationData or ():
            if isinstance(notification, ua.DataChangeNotification):
                if not self.lost:
                    self._data_change(notification.MonitoredItems)
            elif isinstance(notification, ua.EventNotificationList):
                if not self.lost:
                    self._events(notification.Events or ())
            elif isinstance(notification, ua.StatusChangeNotification):
                code = notification.Status.value if notification.Status is not None else 0
                if code >> 30 >= 2:
                    self._lost(code)

    def _data_change(self, items: Sequence[Any]) -> None:
        """A DataChangeNotification's MonitoredItems (none expected by default)."""

    def _events(self, events: Sequence[Any]) -> None:
        """An EventNotificationList's Events (none expected by default)."""

    def _report_lost(self, code: int) -> None:
        """Tell the listener the subscription is gone (``code``: why)."""

    def _lost(self, code: int) -> None:
        if self.lost or self.closed:
            return
        self.lost = True
        self._report_lost(code)

    def connection_lost(self, client: Any, code: int) -> None:
        """The driver dropped ``client``: if it carried this subscription, it is lost."""
        if client is self._client:
            self._lost(code)

    async def stop_watching(self) -> None:
        """End the watcher task (and wait for it, unless it is the caller)."""
        watcher, self._watcher = self._watcher, None
        if watcher is None or watcher is asyncio.current_task():
            return
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher

    async def close(self) -> None:
        """Delete the subscription on the server (quietly if the session is gone)."""
        self.closed = True
        await self.stop_watching()
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


class OpcUaSubscription(PublishWatcher):
    """A native data-change subscription: publish responses become ReadResults."""

    def __init__(
        self,
        driver: _Owner,
        plan: ReadPlan,
        on_data: Callable[[ReadResult], None],
        client: Any,
    ) -> None:
        super().__init__(driver, client)
        self._plan = plan
        self._on_data = on_data

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

    def _report_lost(self, code: int) -> None:
        """Every tag's value is no longer current: one all-bad result, no values."""
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
