"""The OPC UA driver against the simulated plant's real asyncua server (one per module)."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest

import bifrost as bf
from bifrost.model import Quality, Tag
from bifrost.protocols.opcua import OpcUaDriver, OpcUaOptions, quality_of
from bifrost.protocols.opcua.subscription import OpcUaSubscription
from bifrost.scaling import Scaling
from bifrost.sim import Plant
from bifrost.sim.tagmap import OPCUA_TAGS

WAIT = 10.0  # s: upper bound of every wait for notifications (never a timing assertion)


@pytest.fixture(scope="module")
def plant() -> Iterator[Plant]:
    with Plant(seed=3, realtime=False) as plant:
        plant.serve(opcua=0)
        plant.step(5)
        yield plant


@pytest.fixture(scope="module")
def url(plant: Plant) -> str:
    return plant.urls["opcua"]


@pytest.fixture
def plc(plant: Plant) -> Iterator[bf.Connection]:
    with plant.connect("opcua", writable=True) as connection:
        yield connection


def _binding(plant: Plant) -> Any:
    return plant._bindings["opcua"]


def _wait_for(predicate: Any, what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.01)


def _driver(url: str, **options: Any) -> OpcUaDriver:
    return OpcUaDriver(OpcUaOptions.from_url(url, security="None", **options))


# -- options ------------------------------------------------------------------------------
def test_security_must_be_explicit(url: str) -> None:
    with pytest.raises(bf.ConfigurationError, match="security='None'"):
        bf.connect(url)
    with pytest.raises(bf.ConfigurationError, match="unknown OPC UA security policy"):
        OpcUaOptions.from_url(url, security="Basic128")
    with pytest.raises(bf.ConfigurationError, match="certificate"):
        OpcUaOptions.from_url(url, security="Basic256Sha256,Sign")
    with pytest.raises(bf.ConfigurationError, match="unknown OPC UA option"):
        OpcUaOptions.from_url(url, security="None", colour="red")


def test_url_credentials_become_a_secret(url: str) -> None:
    with_credentials = url.replace("opc.tcp://", "opc.tcp://operator:s3cr3t-pw@")
    options = OpcUaOptions.from_url(with_credentials, security="None")
    assert options.user == "operator"
    assert options.password is not None
    assert options.password.reveal() == "s3cr3t-pw"
    assert "s3cr3t-pw" not in repr(options)
    assert "s3cr3t-pw" not in options.url


# -- reading ------------------------------------------------------------------------------
def test_every_type_decodes(plant: Plant, url: str) -> None:
    snapshot = plant.snapshot()
    tags = plant.tags("opcua")

    async def main() -> bf.ReadResult:
        driver = _driver(url)
        try:
            # Drivers return raw values; the connection applies scale/offset once.
            raw = await driver.execute_read(driver.compile_read(list(tags)))
            return Scaling(list(tags)).apply(raw)
        finally:
            await driver.close()

    result = asyncio.run(main())
    assert not result.errors
    assert (result.quality == Quality.GOOD).all()
    values = dict(zip([t.name for t in result.tags], result.values(), strict=True))
    dtypes = {}
    for positions, column in result.columns:
        for p in positions:
            dtypes[result.tags[p].name] = column.dtype
    for spec in OPCUA_TAGS:
        expected = snapshot[spec.name]
        got = values[spec.name]
        if spec.vtype == "Float":
            assert dtypes[spec.name] == np.float32
            assert got == float(np.float32(expected))
        elif spec.vtype == "Boolean":
            assert dtypes[spec.name] == np.bool_
            assert got is bool(expected)
        elif spec.vtype == "String":
            assert got == expected
        elif spec.length:
            assert isinstance(got, np.ndarray)
            assert got.shape == (spec.length,)
            np.testing.assert_array_equal(got, expected)
        elif spec.scale != 1.0:
            assert got == pytest.approx(round(expected / spec.scale) * spec.scale)
        else:
            assert dtypes[spec.name] == np.dtype(spec.vtype.lower())
            assert got == int(expected)
    # Timestamps are the server's source timestamps, close to now, in ns.
    assert np.all(np.abs(result.timestamp_ns - time.time_ns()) < 60e9)
    assert np.all(result.server_timestamp_ns > 0)


def test_one_read_call_for_many_nodes(plant: Plant, plc: bf.Connection) -> None:
    names = [spec.name for spec in OPCUA_TAGS]
    plc.read(names)  # first read: connects and plans
    calls = _binding(plant).read_calls
    before = len(calls)
    frame = plc.read([*names, "/Objects/2:Plant/2:Tank/2:Level", "i=2258"])
    assert len(calls) == before + 1
    assert calls[-1] == len(names) + 2
    assert frame.loc["/Objects/2:Plant/2:Tank/2:Level", "value"] == frame.loc["tank.level", "value"]


def test_reads_split_at_max_nodes_per_read(plant: Plant, url: str) -> None:
    tags = list(plant.tags("opcua"))

    async def main() -> None:
        driver = _driver(url, max_nodes_per_read=5)
        plan = driver.compile_read(tags)
        try:
            await driver.execute_read(plan)
            before = len(_binding(plant).read_calls)
            await driver.execute_read(plan)
        finally:
            await driver.close()
        assert _binding(plant).read_calls[before:] == [5, 5, 5, len(tags) - 15]

    asyncio.run(main())


def test_browse_paths_are_translated_once(plant: Plant, url: str) -> None:
    paths = [
        "/Objects/2:Plant/2:Tank/2:Level",
        "/Objects/2:Plant/2:Line/2:Recipe",
        "/Objects/Server",
    ]
    calls: list[int] = []

    async def main() -> list[Any]:
        driver = _driver(url)
        translate = driver._translate

        async def counting(batch: Any) -> None:
            calls.append(len(batch))
            await translate(batch)

        driver._translate = counting  # type: ignore[method-assign]
        try:
            first = await driver.execute_read(driver.compile_read([Tag(p, p) for p in paths]))
            second = await driver.execute_read(driver.compile_read([Tag(p, p) for p in paths[:2]]))
            return [first.values(), second.values()]
        finally:
            await driver.close()

    first, second = asyncio.run(main())
    assert calls == [3]  # one call for all three paths; the second plan uses the cache
    assert first[1] == plant.snapshot()["line.recipe"]
    assert second[0] == first[0]


def test_unknown_nodes_are_errors_with_the_tag_name(plc: bf.Connection) -> None:
    with pytest.raises(bf.ProtocolError, match="BadNodeIdUnknown") as info:
        plc.read(["tank.level", "ns=2;s=Plant.Nowhere", "/Objects/2:Plant/2:Nothing"])
    assert "ns=2;s=Plant.Nowhere" in info.value.tags or "/Objects/2:Plant/2:Nothing" in str(
        info.value
    )
    frame = plc.read(["tank.level", "ns=2;s=Plant.Nowhere"], errors="quality")
    assert frame.loc["tank.level", "quality"] == "good"
    assert frame.loc["ns=2;s=Plant.Nowhere", "quality"] == "bad_config"
    assert pd.isna(frame.loc["ns=2;s=Plant.Nowhere", "value"])


def test_malformed_address_fails_before_io(plc: bf.Connection) -> None:
    with pytest.raises(bf.AddressError) as info:
        plc.read(["ns=2;q=Tank"])
    assert info.value.position == 5


@pytest.mark.parametrize(
    ("code", "quality"),
    [
        (0, Quality.GOOD),
        (0x00000480, Quality.GOOD_OVERFLOW),
        (0x00000080, Quality.GOOD),  # the bit means overflow only for InfoType DataValue
        (0x40000000, Quality.UNCERTAIN),
        (0x80340000, Quality.BAD_CONFIG),
        (0x808A0000, Quality.BAD_COMM_LOST),
        (0x800A0000, Quality.BAD_TIMEOUT),
        (0x80320000, Quality.BAD_NO_DATA),
        (0x80010000, Quality.BAD),
    ],
)
def test_status_codes_map_to_quality(code: int, quality: Quality) -> None:
    assert quality_of(code) is quality


# -- writing ------------------------------------------------------------------------------
def test_read_only_connection_refuses(plant: Plant) -> None:
    with plant.connect("opcua") as plc, pytest.raises(bf.WriteNotAllowed, match="read-only"):
        plc.write({"reactor.setpoint": 70.0})


def test_write_respects_access_level(plc: bf.Connection) -> None:
    with pytest.raises(bf.WriteNotAllowed, match="AccessLevel"):
        plc.write({"ns=2;s=Plant.Tank.Level": 1.0})


def test_write_checks_the_data_type(plc: bf.Connection) -> None:
    with pytest.raises(bf.ValueOutOfRange, match="Float"):
        plc.write({"reactor.setpoint": "hot"})
    # By NodeId: the tag table's reactor.setpoint has limits (0-150), checked first.
    with pytest.raises(bf.ValueOutOfRange, match=r"32.bit"):  # "32 bits" or "32-bit float"
        plc.write({"ns=2;s=Plant.Reactor.Setpoint": 1e39})
    with pytest.raises(bf.ValueOutOfRange, match="Boolean"):
        plc.write({"line.enable": 2})
    with pytest.raises(bf.ValueOutOfRange, match="scalar"):
        plc.write({"reactor.setpoint": [1.0, 2.0]})


def test_write_reaches_the_plant(plant: Plant, plc: bf.Connection) -> None:
    plc.write({"reactor.setpoint": 75.5, "line.enable": False})
    plant.step(1)
    assert plant.snapshot()["reactor.setpoint"] == 75.5
    assert plant.snapshot()["line.enable"] is False
    assert plc.read_value("reactor.setpoint") == 75.5
    plc.write({"reactor.setpoint": 60.0, "line.enable": True})
    plant.step(1)
    assert plant.snapshot()["line.enable"] is True


# -- browsing and identification ----------------------------------------------------------
def test_browse(plc: bf.Connection) -> None:
    frame = plc.browse("/Objects/2:Plant", depth=2)
    by_path = frame.set_index("browse_path")
    level = by_path.loc["/Objects/2:Plant/2:Tank/2:Level"]
    assert level["node_id"] == "ns=2;s=Plant.Tank.Level"
    assert (level["node_class"], level["data_type"], level["access_level"]) == (
        "Variable",
        "Float",
        "R",
    )
    assert level["description"] == "Tank level (0-5 m)"
    assert by_path.loc["/Objects/2:Plant/2:Reactor/2:Setpoint", "access_level"] == "RW"
    assert by_path.loc["/Objects/2:Plant/2:Pump/2:Vibration", "data_type"] == "Double[]"
    assert by_path.loc["/Objects/2:Plant/2:Tank", "node_class"] == "Object"
    assert not any(frame["display_name"] == "EngineeringUnits")  # properties left out
    shallow = plc.browse("/Objects/2:Plant", depth=1)
    assert set(shallow["depth"]) == {1}
    assert "/Objects/2:Plant/2:Tank/2:Level" not in set(shallow["browse_path"])
    top = plc.browse()
    assert "/Objects/2:Plant" in set(top["browse_path"])


def test_info(plc: bf.Connection) -> None:
    info = plc.info()
    assert info["product_name"] == "bifrost simulated plant"
    assert info["manufacturer"] == "bifrost"
    assert "urn:bifrost:sim" in info["namespaces"]
    assert info["security_policy"] == "None"
    assert info["software_version"]


# -- subscriptions ------------------------------------------------------------------------
def test_subscription_delivers_changes_and_stops(plant: Plant, plc: bf.Connection) -> None:
    frames: list[pd.DataFrame] = []
    lock = threading.Lock()

    def collect(frame: pd.DataFrame) -> None:
        with lock:
            frames.append(frame)

    sub = plc.subscribe(
        ["tank.level", "reactor.setpoint", "pump.vibration"], collect, interval="50ms"
    )
    assert sub.native
    _wait_for(lambda: len(frames) >= 1, "the initial values")
    first = frames[0]
    assert set(first.index) == {"tank.level", "reactor.setpoint", "pump.vibration"}
    assert isinstance(first.loc["pump.vibration", "value"], np.ndarray)
    plc.write({"reactor.setpoint": 81.0})
    _wait_for(
        lambda: any(
            "reactor.setpoint" in f.index and f.loc["reactor.setpoint", "value"] == 81.0
            for f in list(frames)
        ),
        "the new setpoint",
    )
    plant.step(1)
    _wait_for(
        lambda: any(
            "tank.level" in f.index
            and f.loc["tank.level", "value"] == np.float32(plant.snapshot()["tank.level"])
            for f in list(frames)
        ),
        "the stepped level",
    )
    sub.cancel()
    _wait_for(lambda: not sub.active, "the cancellation")
    count = len(frames)
    plant.step(3)
    time.sleep(0.3)  # would be enough for notifications to arrive; they must not
    assert len(frames) == count
    plc.write({"reactor.setpoint": 60.0})


def test_queue_overflow_is_flagged(plant: Plant, plc: bf.Connection) -> None:
    frames: list[pd.DataFrame] = []
    sub = plc.subscribe(["tank.level"], frames.append, interval="1s", queue_size=1)
    try:
        _wait_for(lambda: len(frames) >= 1, "the initial value")
        for _ in range(5):  # five changes within one publishing interval, queue of one
            plant.step(1)
        _wait_for(lambda: len(frames) >= 2, "the next publish")
    finally:
        sub.cancel()
    assert frames[1].loc["tank.level", "quality"] == "good_overflow"
    assert frames[1].loc["tank.level", "value"] == np.float32(plant.snapshot()["tank.level"])


def test_queued_values_all_arrive(plant: Plant, plc: bf.Connection) -> None:
    frames: list[pd.DataFrame] = []
    sub = plc.subscribe(["plant.heartbeat"], frames.append, interval="1s", queue_size=10)
    try:
        _wait_for(lambda: len(frames) >= 1, "the initial value")
        start = int(frames[0].loc["plant.heartbeat", "value"])
        for _ in range(4):
            plant.step(1)
        _wait_for(lambda: len(frames) >= 5, "the queued values")
    finally:
        sub.cancel()
    beats = [int(f.loc["plant.heartbeat", "value"]) for f in frames[:5]]
    assert beats == [start, start + 1, start + 2, start + 3, start + 4]
    assert all(f.loc["plant.heartbeat", "quality"] == "good" for f in frames[:5])


def test_record_subscribe_mode(plant: Plant, plc: bf.Connection) -> None:
    rec = plc.record(["tank.level", "plant.heartbeat"], mode="subscribe", background=True)
    _wait_for(lambda: len(rec.to_pandas()) >= 1, "the first row")
    for _ in range(3):
        plant.step(1)
        time.sleep(0.05)
    _wait_for(lambda: len(rec.to_pandas()) >= 4, "rows for the steps")
    rec.stop()
    rec.wait()
    frame = rec.to_pandas()
    assert frame["plant.heartbeat"].is_monotonic_increasing


def test_skipped_publish_messages_are_republished_in_order() -> None:
    from asyncua import ua

    def message(sequence: int, *values: int) -> Any:
        items = [
            ua.MonitoredItemNotification(
                ClientHandle=0, Value=ua.DataValue(ua.Variant(v, ua.VariantType.Int64))
            )
            for v in values
        ]
        data = [ua.DataChangeNotification(MonitoredItems=items)] if items else []
        return ua.NotificationMessage(SequenceNumber=sequence, NotificationData=data)

    asked: list[int] = []

    class Session:
        async def republish(self, subscription_id: int, sequence: int) -> Any:
            asked.append(sequence)
            return message(sequence, sequence * 10)

    class Client:
        class uaclient:  # noqa: N801 - asyncua's attribute names
            session = Session()

    driver = _driver("opc.tcp://127.0.0.1:1/")  # never connects
    plan = driver.compile_read([Tag("counter", "ns=2;s=Counter")])
    values: list[int] = []
    subscription = OpcUaSubscription(
        driver, plan, lambda r: values.extend(int(v) for v in r.values()), Client()
    )
    subscription.subscription_id = 7

    async def publish(sequence: int, *values: int, held: tuple[int, ...] = ()) -> None:
        result = ua.PublishResult(
            SubscriptionId=7,
            AvailableSequenceNumbers=list(held),
            NotificationMessage=message(sequence, *values),
        )
        await subscription.on_publish(result)

    async def main() -> None:
        await publish(1, 10)
        await publish(4, 40, held=(2, 3, 4))  # 2 and 3 never came: fetched first
        await publish(3, 30)  # arriving late: already delivered
        await publish(5)  # a keep-alive naming the next number: nothing skipped
        await publish(7)  # a keep-alive after 5 and 6 were skipped; the server says nothing
        await publish(7, 70)

    asyncio.run(main())
    assert asked == [2, 3, 5, 6]
    assert values == [10, 20, 30, 40, 50, 60, 70]
    assert subscription.republished == 4
    assert not subscription.lost


# -- secrets ------------------------------------------------------------------------------
def test_no_secret_in_repr_or_errors(url: str) -> None:
    password = bf.secrets.Secret("hunter2-very-secret", "test")
    options = OpcUaOptions.from_url(url, security="None", user="op", password=password)
    driver = OpcUaDriver(options)
    assert "hunter2" not in repr(options)
    assert "hunter2" not in repr(driver)
    with pytest.raises(bf.ConnectionError) as info:
        asyncio.run(driver.connect())  # the plain server takes no user names
    assert "hunter2" not in str(info.value)


# -- the server goes away -----------------------------------------------------------------
def test_server_stop_and_restart() -> None:
    with Plant(seed=4, realtime=False) as plant:
        plant.serve(opcua=0)
        binding = _binding(plant)
        port = int(plant.urls["opcua"].rsplit(":", 1)[1].split("/")[0])
        loop = plant._loop
        assert loop is not None
        with plant.connect("opcua", timeout=2.0) as plc:
            assert plc.read_value("plant.heartbeat") == 0
            asyncio.run_coroutine_threadsafe(binding.stop(), loop).result(10)
            started = time.monotonic()
            with pytest.raises(bf.ConnectionError, match="OPC UA server"):
                plc.read_value("plant.heartbeat")
            assert time.monotonic() - started < 2.0 * 3 + 2  # the connect bound, not a hang
            asyncio.run_coroutine_threadsafe(binding.start("127.0.0.1", port), loop).result(10)
            plant.step(2)
            assert plc.read_value("plant.heartbeat") == 2  # reconnected on demand
            frames: list[pd.DataFrame] = []
            sub = plc.subscribe(["plant.heartbeat"], frames.append, interval="50ms")
            _wait_for(lambda: len(frames) >= 1, "a notification after the restart")
            sub.cancel()


def test_asyncua_logs_carry_no_password(caplog: pytest.LogCaptureFixture) -> None:
    with Plant(seed=5, realtime=False) as plant:
        plant.serve(opcua=0, opcua_security=True)
        security = plant.opcua_security
        password = security.password.reveal()
        logger = logging.getLogger("asyncua")
        old = logger.level
        logger.setLevel(logging.DEBUG)
        try:
            with caplog.at_level(logging.DEBUG), plant.connect("opcua") as plc:
                assert plc.read_value("line.recipe") == plant.snapshot()["line.recipe"]
                assert password not in repr(plc)
        finally:
            logger.setLevel(old)
        assert caplog.records  # asyncua did log at DEBUG
        assert password not in caplog.text
