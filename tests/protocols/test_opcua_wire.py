"""ReadResponses decoded from their bytes (``wire``), checked against asyncua's decoder.

asyncua encodes each response and decodes it as it always does; bifrost's columns must
hold the same statuses, timestamps and values. Then, against the plant's real server
with its Read service altered: a reply short of a value is an error, and bad or uncertain
status codes never come out as good values.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest
from asyncua import ua as _ua
from asyncua.common.utils import Buffer
from asyncua.ua.ua_binary import struct_from_binary, struct_to_binary

import bifrost as bf
from bifrost.protocols.opcua import OpcUaDriver, OpcUaOptions
from bifrost.protocols.opcua.wire import WireError, WireValues, from_data_values, read_response
from bifrost.sim import Plant

ua: Any = _ua
NOW = datetime(2026, 12, 2, 13, 0, 0, 123456, tzinfo=UTC)


def _response(values: list[Any], diagnostics: list[Any] | None = None) -> bytes:
    response = ua.ReadResponse()
    response.Results = values
    if diagnostics is not None:
        response.DiagnosticInfos = diagnostics
    return struct_to_binary(response)


def _by_asyncua(body: bytes) -> WireValues:
    return from_data_values(struct_from_binary(ua.ReadResponse, Buffer(body)).Results)


def _cells(values: WireValues) -> list[Any]:
    out: list[Any] = [None] * len(values)
    for where, column in values.columns:
        for k, value in zip(where.tolist(), column, strict=True):
            out[k] = value
    return out


def _assert_same(body: bytes) -> WireValues:
    ours, theirs = read_response(ua, Buffer(body)), _by_asyncua(body)
    np.testing.assert_array_equal(ours.status, theirs.status)
    np.testing.assert_array_equal(ours.source_ns, theirs.source_ns)
    np.testing.assert_array_equal(ours.server_ns, theirs.server_ns)
    for mine, expected in zip(_cells(ours), _cells(theirs), strict=True):
        if isinstance(expected, np.ndarray):
            np.testing.assert_array_equal(mine, expected)
        else:
            assert type(mine) is type(expected)
            assert mine == expected or (np.isnan(mine) and np.isnan(expected))
    return ours


def _dv(value: Any, vtype: Any, **fields: Any) -> Any:
    return ua.DataValue(ua.Variant(value, vtype), **fields)


SCALARS = [
    (True, ua.VariantType.Boolean),
    (-5, ua.VariantType.SByte),
    (200, ua.VariantType.Byte),
    (-30000, ua.VariantType.Int16),
    (65535, ua.VariantType.UInt16),
    (-(2**31), ua.VariantType.Int32),
    (2**32 - 1, ua.VariantType.UInt32),
    (-(2**63), ua.VariantType.Int64),
    (2**64 - 1, ua.VariantType.UInt64),
    (1.5, ua.VariantType.Float),
    (float("nan"), ua.VariantType.Double),
]


DTYPES = dict(
    zip(
        [v for _, v in SCALARS],
        [
            np.bool_,
            np.int8,
            np.uint8,
            np.int16,
            np.uint16,
            np.int32,
            np.uint32,
            np.int64,
            np.uint64,
            np.float32,
            np.float64,
        ],
        strict=True,
    )
)


@pytest.mark.parametrize(("value", "vtype"), SCALARS)
def test_one_layout_for_all_values_decodes_as_asyncua(value: Any, vtype: Any) -> None:
    values = [_dv(value, vtype, SourceTimestamp=NOW, ServerTimestamp=NOW) for _ in range(50)]
    ours = _assert_same(_response(values))
    assert len(ours.columns) == 1
    assert ours.columns[0][1].dtype == DTYPES[vtype]


def test_mixed_values_decode_as_asyncua() -> None:
    later = NOW + timedelta(seconds=1)
    values = [
        _dv(3, ua.VariantType.UInt16, SourceTimestamp=NOW, ServerTimestamp=later),
        _dv(2.25, ua.VariantType.Double, ServerTimestamp=later),  # no source time
        _dv("pump 1", ua.VariantType.String, SourceTimestamp=NOW),
        _dv([1.0, 2.0, 3.0], ua.VariantType.Double, SourceTimestamp=NOW),
        _dv(False, ua.VariantType.Boolean),
        ua.DataValue(StatusCode=ua.StatusCode(ua.StatusCodes.BadNodeIdUnknown)),
        _dv(7, ua.VariantType.Int32, StatusCode=ua.StatusCode(0x40000000)),  # uncertain
        _dv(None, ua.VariantType.Null, SourceTimestamp=NOW),
        _dv(9, ua.VariantType.Int64, SourceTimestamp=NOW, SourcePicoseconds=5),
        _dv(ua.LocalizedText("on"), ua.VariantType.LocalizedText, ServerTimestamp=NOW),
        _dv(NOW, ua.VariantType.DateTime, SourceTimestamp=NOW),
        # DateTime 0 ("none"; asyncua reads it as 1601) and 9999: no usable timestamp.
        _dv(1, ua.VariantType.Byte, SourceTimestamp=datetime(1601, 1, 1, tzinfo=UTC)),
        _dv(1, ua.VariantType.Byte, SourceTimestamp=datetime(9999, 12, 31, 23, 59, 59)),
    ]
    ours = _assert_same(_response(values))
    assert ours.status[5] == ua.StatusCodes.BadNodeIdUnknown
    assert ours.source_ns[0] == int(NOW.timestamp()) * 10**9 + 123456000
    assert ours.source_ns[1] == np.iinfo(np.int64).min
    assert ours.source_ns[11] == ours.source_ns[12] == np.iinfo(np.int64).min


def test_one_odd_value_in_a_uniform_reply_is_walked() -> None:
    values = [_dv(k, ua.VariantType.UInt16, SourceTimestamp=NOW) for k in range(20)]
    values[13] = _dv(13, ua.VariantType.UInt16, StatusCode=ua.StatusCode(0x80890000))
    ours = _assert_same(_response(values))
    assert ours.status[13] == 0x80890000
    assert _cells(ours)[13] == 13


def test_diagnostic_infos_after_the_values_are_read_past() -> None:
    info = ua.DiagnosticInfo(SymbolicId=3, AdditionalInfo="why")
    values = [_dv(k, ua.VariantType.UInt16) for k in range(4)]
    _assert_same(_response(values, [info] * 4))


def test_empty_reply() -> None:
    assert len(_assert_same(_response([]))) == 0


@pytest.mark.parametrize(
    "damage",
    [
        lambda body: body[:-3],  # cut inside the last DataValue or after it
        lambda body: body + b"\x00",  # a byte too many
        lambda body: body[:-4] + (-1).to_bytes(4, "little", signed=True) + b"\x01",
    ],
)
def test_bytes_that_do_not_add_up_are_refused(damage: Callable[[bytes], bytes]) -> None:
    for values in (
        [_dv(k, ua.VariantType.UInt16, SourceTimestamp=NOW) for k in range(10)],
        [_dv("x", ua.VariantType.String), _dv(1, ua.VariantType.Int32)],
    ):
        with pytest.raises(WireError):
            read_response(ua, Buffer(damage(_response(values))))


def test_a_count_beyond_the_body_is_refused() -> None:
    body = bytearray(_response([_dv(k, ua.VariantType.UInt16) for k in range(10)]))
    start = len(_response([])) - 8  # the Results count: after the header, before 2 arrays
    assert int.from_bytes(body[start : start + 4], "little") == 10
    for count in (11, 2**31 - 1):  # the latter: refused before anything is allocated
        body[start : start + 4] = count.to_bytes(4, "little")
        with pytest.raises(WireError):
            read_response(ua, Buffer(bytes(body)))


def test_a_failed_service_result_raises_as_asyncua_does() -> None:
    response = ua.ReadResponse()
    response.ResponseHeader.ServiceResult = ua.StatusCode(ua.StatusCodes.BadTooManyOperations)
    with pytest.raises(ua.UaStatusCodeError):
        read_response(ua, Buffer(struct_to_binary(response)))


# -- against the plant's server -----------------------------------------------------------
@pytest.fixture(scope="module")
def plant() -> Iterator[Plant]:
    with Plant(seed=3, realtime=False) as plant:
        plant.serve(opcua=0)
        plant.step(5)
        yield plant


@pytest.fixture
def altered(plant: Plant) -> Iterator[list[Callable[[list[Any]], list[Any]]]]:
    """Functions applied in turn to the server's Read results (none: unaltered)."""
    binding: Any = plant._bindings["opcua"]
    service = binding._server.iserver.attribute_service
    read = service.read
    changes: list[Callable[[list[Any]], list[Any]]] = []

    def altered_read(params: Any) -> Any:
        results = read(params)
        for change in changes:
            results = change(results)
        return results

    service.read = altered_read
    try:
        yield changes
    finally:
        service.read = read


NAMES = ["tank.level", "reactor.temperature", "pump.speed", "plant.heartbeat"]


def test_a_reply_short_of_a_value_is_an_error(plant: Plant, altered: list[Any]) -> None:
    with plant.connect("opcua") as plc:
        assert len(plc.read(NAMES)) == len(NAMES)
        altered.append(lambda results: results[:-1])
        with pytest.raises(bf.ProtocolError, match="3 values to a Read of 4 nodes"):
            plc.read(NAMES, errors="quality")
        altered[-1] = lambda results: [*results, results[0]]
        with pytest.raises(bf.ProtocolError, match="5 values to a Read of 4 nodes"):
            plc.read(NAMES, errors="quality")
        altered.clear()
        assert (plc.read(NAMES)["quality"] == "good").all()


def test_bad_and_uncertain_values_are_never_good(plant: Plant, altered: list[Any]) -> None:
    def flag(results: list[Any]) -> list[Any]:
        bad, uncertain = (ua.DataValue(r.Value, ua.StatusCode(0)) for r in results[:2])
        bad.StatusCode = ua.StatusCode(ua.StatusCodes.BadSensorFailure)
        uncertain.StatusCode = ua.StatusCode(ua.StatusCodes.UncertainLastUsableValue)
        for dv, source in ((bad, results[0]), (uncertain, results[1])):
            dv.SourceTimestamp, dv.ServerTimestamp = source.SourceTimestamp, NOW
        return [bad, uncertain, *results[2:]]

    with plant.connect("opcua") as plc:
        good = plc.read(NAMES)
        altered.append(flag)
        with pytest.raises(bf.ProtocolError, match="BadSensorFailure") as info:
            plc.read(NAMES)
        assert list(info.value.tags) == ["tank.level"]
        frame = plc.read(NAMES, errors="quality")
    assert list(frame["quality"]) == ["bad", "uncertain", "good", "good"]
    values: dict[Any, Any] = frame["value"].to_dict()
    assert pd.isna(values["tank.level"])
    assert values["reactor.temperature"] == good["value"].to_dict()["reactor.temperature"]


class _WithoutRawRequests:
    """An asyncua UaClient as another asyncua version may have it: no ``_send_request``."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.asked: list[str] = []

    def __getattr__(self, name: str) -> Any:
        self.asked.append(name)
        if name == "_send_request":
            raise AttributeError(name)
        return getattr(self._inner, name)


def test_without_raw_requests_asyncua_decodes_the_same(plant: Plant) -> None:
    tags = list(plant.tags("opcua"))

    proxy: list[_WithoutRawRequests] = []

    async def main() -> tuple[bf.ReadResult, bf.ReadResult]:
        driver = OpcUaDriver(OpcUaOptions.from_url(plant.urls["opcua"], security="None"))
        plan = driver.compile_read(tags)
        try:
            ours = await driver.execute_read(plan)
            client = driver._client
            proxy.append(_WithoutRawRequests(client.uaclient))
            client.uaclient = proxy[0]
            theirs = await driver.execute_read(plan)
        finally:
            await driver.close()
        return ours, theirs

    ours, theirs = asyncio.run(main())
    assert "read" in proxy[0].asked
    assert not ours.errors
    assert not theirs.errors
    np.testing.assert_array_equal(ours.quality, theirs.quality)
    np.testing.assert_array_equal(ours.timestamp_ns, theirs.timestamp_ns)
    for mine, expected in zip(ours.values(), theirs.values(), strict=True):
        if isinstance(expected, np.ndarray):
            np.testing.assert_array_equal(mine, expected)
        else:
            assert type(mine) is type(expected)
            assert mine == expected


def test_another_response_type_is_refused() -> None:
    response = ua.WriteResponse()
    response.Results = [ua.StatusCode(0)]
    with pytest.raises(WireError, match="not a ReadResponse"):
        read_response(ua, Buffer(struct_to_binary(response)))
