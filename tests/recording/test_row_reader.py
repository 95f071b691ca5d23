"""A Modbus cycle decoded straight into a recording's row equals the ReadResult path.

The row reader (``ModbusDriver.row_reader``) is the recorder's fast path; here every
data type and byte order, coils, strings, scattered and repeated tags and every faulty
reply of the fault server go through both paths against the same real server, and the
row must be exactly ``as_float()`` and ``quality`` of the ReadResult (or the same error).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import numpy as np
import pytest
from faults.modbus_fault_server import FAULTS, ModbusFaultServer
from modbus_server import ModbusTestServer

import bifrost as bf
from bifrost.exceptions import BifrostError
from bifrost.model import Quality, Tag
from bifrost.protocols.modbus.driver import ModbusDriver
from bifrost.protocols.modbus.options import ModbusOptions
from bifrost.recording.buffers import SampleBuffer
from bifrost.recording.recorder import start_recording
from bifrost.recording.session import Recording

TYPES = ["int16", "uint16", "int32", "uint32", "int64", "uint64", "float32", "float64"]
ORDERS = ["ABCD", "CDAB", "BADC", "DCBA"]
TIMEOUT = 0.3


@pytest.fixture(scope="module")
def server() -> Iterator[ModbusTestServer]:
    with ModbusTestServer() as test_server:
        # Every bit pattern a register can hold, and then some: NaNs, infinities,
        # negative numbers and huge integers all come out of it somewhere.
        rng = np.random.default_rng(7)
        test_server.set("hr", 0, rng.integers(0, 65536, 400).tolist())
        test_server.set("hr", 400, [0xFFFF, 0x7FC0, 0x0000, 0x8000, 0x7F80, 0x0000, 0xFF80, 0])
        test_server.set("co", 0, [bool(b) for b in rng.integers(0, 2, 64)])
        test_server.set("hr", 500, list(b"Hello, world".ljust(16, b"\x00")))
        yield test_server


@pytest.fixture
def faults() -> Iterator[ModbusFaultServer]:
    with ModbusFaultServer(delay=2 * TIMEOUT) as fault_server:
        yield fault_server


def both(port: int, addresses: list[str], **options: object) -> tuple[object, object]:
    """The ReadResult path's (as_float, quality) or error, and the row reader's."""
    tags = [Tag(f"t{i}", a) for i, a in enumerate(addresses)]

    async def run() -> tuple[object, object]:
        outcomes: list[object] = []
        for fast in (False, True):
            driver = ModbusDriver(ModbusOptions(port=port, timeout=TIMEOUT, **options))  # type: ignore[arg-type]
            plan = driver.compile_read(tags)
            try:
                await driver.connect()
                if fast:
                    reader = driver.row_reader(plan)
                    assert reader is not None
                    values = np.full(len(tags), 12345.0)  # anything left unwritten shows
                    quality = np.full(len(tags), 99, dtype=np.uint8)
                    started = await reader(time.monotonic(), values, quality)
                    assert started <= time.monotonic()
                    outcomes.append((values, quality))
                else:
                    result = await driver.execute_read_at(plan, time.monotonic())
                    outcomes.append((result.as_float(), np.asarray(result.quality)))
            except BifrostError as exc:
                outcomes.append((type(exc), str(exc).split(" (")[0]))
            finally:
                await driver.close()
        return outcomes[0], outcomes[1]

    return asyncio.run(run())


def assert_same(slow: object, fast: object) -> None:
    if isinstance(slow[0], type):  # type: ignore[index]
        assert fast == slow
        return
    np.testing.assert_array_equal(fast[0], slow[0])  # type: ignore[index]  # NaN == NaN here
    np.testing.assert_array_equal(fast[1], slow[1])  # type: ignore[index]
    assert fast[0].dtype == np.float64  # type: ignore[index]


@pytest.mark.parametrize("order", ORDERS)
def test_every_type_in_every_order_decodes_into_the_row_as_as_float(server, order):
    addresses = []
    offset = 0
    for dtype in TYPES:
        width = int(np.dtype(dtype).itemsize) // 2
        if width == 1 and order in ("CDAB", "DCBA"):
            continue  # one register has no words to swap (the grammar refuses it)
        for _ in range(6):
            addresses.append(f"hr:{offset}:{dtype}:{order}")
            offset += width + 1  # gaps: several tags per request, not all adjacent
    addresses += [f"hr:{400 + i}:float32:{order}" for i in range(0, 8, 2)]  # NaN, inf
    slow, fast = both(server.port, addresses)
    assert not np.isnan(slow[0][:20]).all()  # type: ignore[index]
    assert_same(slow, fast)


def test_coils_strings_repeats_and_scattered_tags_decode_as_as_float(server):
    addresses = [
        *(f"co:{i}" for i in range(0, 40, 3)),
        "hr:500:string[12]",  # not numeric: NaN in the row, as as_float gives it
        "hr:3",
        "hr:3",  # the same register twice
        "hr:200:int16",
        "hr:7:uint16:BADC",
        "hr:90:float64",
        "hr:1",
        "hr:300:int32@2",  # another unit: another request
    ]
    slow, fast = both(server.port, addresses)
    assert np.isnan(fast[0][addresses.index("hr:500:string[12]")])  # type: ignore[index]
    assert_same(slow, fast)


def test_registers_in_order_decode_into_the_row_as_as_float(server):
    # The common shape (a block of 16-bit registers): copied as a view, no gather.
    for dtype in ("uint16", "int16"):
        slow, fast = both(server.port, [f"hr:{i}:{dtype}" for i in range(100)])
        assert_same(slow, fast)
    slow, fast = both(server.port, [f"hr:{i}:uint16:BADC" for i in range(100)])
    assert_same(slow, fast)


READ_FAULTS = [
    *(f"exception_{code}" for code in (1, 2, 3, 4, 6, 11)),
    "busy_then_ok",
    "short_byte_count",
    "odd_byte_count",
    "zero_byte_count",
    "one_register",
    "extra_registers",
    "wrong_tid",
    "stale_then_ok",
    "wrong_unit",
    "wrong_function",
    "exception_for_other_function",
    "wrong_protocol_id",
    "length_too_long",
    "length_too_short",
    "length_zero",
    "half_frame_close",
    "garbage",
    "delayed",
    "silent",
    "close",
    "duplicate",
]


@pytest.mark.parametrize("name", READ_FAULTS)
def test_a_faulty_reply_gives_the_same_bad_row_or_error_as_the_result_path(faults, name):
    start = FAULTS[name]
    # The faulty span and a good one in one read: the good tags must still read.
    addresses = [f"hr:{start + i}" for i in range(10)] + [f"hr:{10 + i}" for i in range(5)]
    slow, fast = both(faults.port, addresses)
    assert_same(slow, fast)
    if not isinstance(fast[0], type):  # type: ignore[index]
        values, quality = fast  # type: ignore[misc]
        assert (values[10:] == np.arange(10, 15)).all()
        bad = quality >= Quality.BAD
        assert np.isnan(values[bad]).all()


def test_coil_faults_give_the_same_bad_row_as_the_result_path(faults):
    for name in ("short_byte_count", "extra_registers", "wrong_function", "exception_4"):
        addresses = [f"co:{FAULTS[name] + i}" for i in range(10)]
        slow, fast = both(faults.port, addresses)
        assert_same(slow, fast)
        assert (fast[1] == Quality.BAD_PROTOCOL).all()  # type: ignore[index]


def test_pipelined_reads_decode_into_the_row_as_as_float(server):
    addresses = [f"hr:{i * 40}:float32" for i in range(8)] + [f"hr:{i * 40 + 7}" for i in range(8)]
    slow, fast = both(server.port, addresses, pipeline=4, max_gap_registers=0)
    assert_same(slow, fast)


def test_rtu_has_no_row_reader():
    driver = ModbusDriver(ModbusOptions(serial_port="/dev/null-port"))
    assert driver.row_reader(driver.compile_read([Tag("a", "hr:0")])) is None


# -- the buffer side ----------------------------------------------------------------------
def test_a_reserved_row_appears_only_once_committed():
    buffer = SampleBuffer(["a", "b"], [True, True], chunk_rows=2)
    for k in range(5):  # across chunks
        values, quality = buffer.reserve()
        values[:] = (k, -k)
        quality[:] = (Quality.GOOD, Quality.BAD_PROTOCOL)
        assert len(buffer) == k
        assert len(buffer.matrix()[0]) == k
        buffer.commit(100 + k)
    times, numbers, _, qualities = buffer.matrix()
    assert times.tolist() == [100, 101, 102, 103, 104]
    assert numbers[:, 0].tolist() == [0, 1, 2, 3, 4]
    assert (qualities[:, 1] == Quality.BAD_PROTOCOL).all()


def test_a_gap_after_a_reservation_fills_the_same_row():
    buffer = SampleBuffer(["a"], [True])
    values, _ = buffer.reserve()
    values[:] = 7.0  # a read that failed half way
    buffer.append_gap(5, Quality.BAD_TIMEOUT)
    times, numbers, _, qualities = buffer.matrix()
    assert times.tolist() == [5]
    assert np.isnan(numbers).all()
    assert qualities.tolist() == [[Quality.BAD_TIMEOUT]]


def test_rows_are_reserved_only_in_numeric_buffers():
    with pytest.raises(ValueError, match="numeric"):
        SampleBuffer(["a", "s"], [True, False]).reserve()


# -- the recorder --------------------------------------------------------------------------
def record(
    port: int, addresses: list[str], *, fast: bool, cycles: int = 6
) -> tuple[Recording, dict[str, int]]:
    tags = [Tag(f"t{i}", a) for i, a in enumerate(addresses)]
    calls = {"read": 0, "rows": 0}

    async def run() -> Recording:
        driver = ModbusDriver(ModbusOptions(port=port, timeout=TIMEOUT))
        plan = driver.compile_read(tags)
        reader = driver.row_reader(plan)
        assert reader is not None

        async def read(due: float):  # type: ignore[no-untyped-def]
            calls["read"] += 1
            return await driver.execute_read_at(plan, due)

        async def rows(due: float, values, quality) -> float:  # type: ignore[no-untyped-def]
            calls["rows"] += 1
            return await reader(due, values, quality)

        dtypes = [driver.describe(t)["dtype"] for t in tags]
        recording = Recording(tags, dtypes, 0.05)
        start_recording(recording, read, cycles * 0.05, rows=rows if fast else None)
        await recording
        await driver.close()
        return recording

    return asyncio.run(run()), calls


def test_the_recorder_decodes_cycles_into_its_rows(server):
    addresses = [f"hr:{i}" for i in range(20)] + ["hr:30:float32:CDAB", "co:3"]
    slow, slow_calls = record(server.port, addresses, fast=False)
    fast, fast_calls = record(server.port, addresses, fast=True)
    assert len(fast) == len(slow) == 6
    assert slow_calls == {"read": 6, "rows": 0}
    assert fast_calls == {"read": 0, "rows": 6}
    _, slow_numbers, _, slow_quality = slow.buffer.matrix()
    times, numbers, _, quality = fast.buffer.matrix()
    np.testing.assert_array_equal(numbers, slow_numbers)
    np.testing.assert_array_equal(quality, slow_quality)
    assert (np.diff(times) > 0).all()
    assert fast.stats.gaps == 0
    assert len(fast._timing.lateness) == 6  # each cycle's start, for the jitter stats


def test_the_recorder_keeps_the_result_path_for_scaled_or_text_tags(server):
    tags = [Tag("a", "hr:0", scale=2.0), Tag("b", "hr:1")]

    async def run() -> int:
        driver = ModbusDriver(ModbusOptions(port=server.port, timeout=TIMEOUT))
        plan = driver.compile_read(tags)
        used = [0]

        async def read(due: float):  # type: ignore[no-untyped-def]
            return await driver.execute_read_at(plan, due)

        async def rows(due: float, values, quality) -> float:  # type: ignore[no-untyped-def]
            used[0] += 1
            return 0.0

        recording = Recording(tags, ["float64", "uint16"], 0.05)
        start_recording(recording, read, 0.15, rows=rows)
        await recording
        await driver.close()
        return used[0]

    assert asyncio.run(run()) == 0


def test_a_timeout_on_the_row_path_is_a_gap_row(faults):
    # Reads of the delayed span time out: a gap row, as on the result path, never the
    # row the reader had been given.
    recording, calls = record(faults.port, [f"hr:{FAULTS['delayed']}"], fast=True, cycles=3)
    assert calls == {"read": 0, "rows": 1}
    times, numbers, _, quality = recording.buffer.matrix()
    assert len(times) == recording.stats.gaps == 1
    assert quality.tolist() == [[Quality.BAD_TIMEOUT]]
    assert np.isnan(numbers).all()
    assert recording.stats.missed_cycles == 2


@pytest.mark.parametrize(
    "options",
    [{"close_after_each_cycle": True}, {"pause_between_requests": 0.002}, {"busy_retries": 0}],
)
def test_the_row_path_keeps_the_connection_options(server, options):
    addresses = [f"hr:{i}" for i in range(10)] + ["hr:50:float32", "hr:300@2"]
    slow, fast = both(server.port, addresses, **options)
    assert_same(slow, fast)


def test_the_row_path_closes_after_each_cycle_when_asked(server):
    tags = [Tag("a", "hr:0"), Tag("b", "hr:300@2")]

    async def run() -> list[bool]:
        driver = ModbusDriver(
            ModbusOptions(port=server.port, timeout=TIMEOUT, close_after_each_cycle=True)
        )
        reader = driver.row_reader(driver.compile_read(tags))
        assert reader is not None
        connected = []
        for _ in range(2):
            values, quality = np.empty(2), np.empty(2, dtype=np.uint8)
            await reader(time.monotonic(), values, quality)
            connected.append(driver.connected)
        await driver.close()
        return connected

    assert asyncio.run(run()) == [False, False]


def test_a_connections_recording_takes_the_row_path_and_reads_the_same(server, monkeypatch):
    # Through the public API: a recording of plain numeric tags decodes into its rows,
    # and holds the values a read of the same tags returns.
    taken: list[int] = []
    original = ModbusDriver.row_reader

    def counting(self, plan):  # type: ignore[no-untyped-def]
        reader = original(self, plan)

        async def read_row(due, values, quality):  # type: ignore[no-untyped-def]
            taken.append(1)
            return await reader(due, values, quality)

        return read_row

    monkeypatch.setattr(ModbusDriver, "row_reader", counting)
    tags = [Tag(f"t{i}", f"hr:{i}") for i in range(10)] + [Tag("f", "hr:30:float32:CDAB")]
    with bf.connect(f"modbus://127.0.0.1:{server.port}", tags=tags, timeout=2.0) as plc:
        expected = plc.read_result([t.name for t in tags]).as_float()
        recording = plc.record([t.name for t in tags], interval="50ms", duration="0.3s")
    assert len(taken) == len(recording) >= 4
    frame = recording.to_pandas()
    np.testing.assert_array_equal(frame[[t.name for t in tags]].to_numpy()[0], expected)
