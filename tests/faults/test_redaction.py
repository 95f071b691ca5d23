"""A password in a device URL never shows: not in a repr, a log, an error, nor a file.

Against the plant's secured OPC UA endpoint, with the user name and password given in
the URL (``opc.tcp://user:pw@host/...`` or ``?password=``), which the parser accepts and
turns into a Secret.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import bifrost as bf
from bifrost.protocols.opcua import OpcUaOptions
from bifrost.secrets import redact_url
from bifrost.sim import Plant

LEVEL = "ns=2;s=Plant.Tank.Level"


@pytest.fixture(scope="module")
def plant() -> Iterator[Plant]:
    with Plant(seed=8, realtime=False) as plant:
        plant.serve(opcua=0, opcua_security=True)
        plant.step(3)
        yield plant


def _with_credentials(plant: Plant, where: str) -> tuple[str, dict[str, Any], str]:
    security = plant.opcua_security
    assert security is not None
    password = security.password.reveal()
    url = plant.urls["opcua"]
    if where == "userinfo":
        url = url.replace("opc.tcp://", f"opc.tcp://{security.user}:{password}@")
    else:
        url = f"{url}?user={security.user}&password={password}"
    options = {k: v for k, v in security.client_options().items() if k not in ("user", "password")}
    return url, options, password


@pytest.fixture(params=["userinfo", "query"])
def credentials(request: pytest.FixtureRequest, plant: Plant) -> tuple[str, dict[str, Any], str]:
    return _with_credentials(plant, request.param)


def test_the_url_password_becomes_a_secret(credentials: tuple[str, dict[str, Any], str]) -> None:
    url, options, password = credentials
    parsed = OpcUaOptions.from_url(url, **options)
    assert parsed.password is not None
    assert parsed.password.reveal() == password
    assert parsed.user == "operator"
    assert password not in parsed.url
    assert password not in repr(parsed)


def test_no_password_in_reprs_logs_metadata_or_files(
    plant: Plant,
    credentials: tuple[str, dict[str, Any], str],
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    url, options, password = credentials
    target = tmp_path / "level.parquet"
    asyncua = logging.getLogger("asyncua")
    old = asyncua.level
    asyncua.setLevel(logging.DEBUG)
    try:
        with caplog.at_level(logging.DEBUG), bf.connect(url, **options) as plc:
            assert plc.read_value(LEVEL) == pytest.approx(plant.snapshot()["tank.level"])
            shown = [repr(plc), plc.url, plc._repr_html_(), repr(plc.aio), plc.aio.url]
            rec = plc.record([LEVEL], interval="100ms", duration="300ms", path=target)
            shown += [
                json.dumps(rec.metadata, default=str),
                repr(rec),
                rec._repr_html_(),
                repr(rec.to_xarray().attrs),
            ]
    finally:
        asyncua.setLevel(old)
    assert caplog.records  # asyncua did log at DEBUG
    shown.append(caplog.text)
    shown += [str(r.args) for r in caplog.records]
    for text in shown:
        assert password not in text
    assert "operator" in rec.metadata["url"]  # the rest of the URL is kept
    assert password.encode() not in target.read_bytes()
    assert bf.open_recording(target).metadata["url"] == rec.metadata["url"]


def test_no_password_in_errors(plant: Plant, credentials: tuple[str, dict[str, Any], str]) -> None:
    url, options, password = credentials
    errors: list[BaseException] = []
    plc = bf.connect(url, **options)  # read-only
    with pytest.raises(bf.WriteNotAllowed) as refused:
        plc.write({LEVEL: 1.0})
    errors.append(refused.value)
    plc.close()
    with pytest.raises(bf.ConnectionError) as closed:
        plc.read_value(LEVEL)
    errors.append(closed.value)
    nowhere = url.replace(str(_port(plant)), "1")  # nothing listens on port 1
    with pytest.raises(bf.ConnectionError) as unreachable:
        bf.connect(nowhere, timeout=1.0, **options)
    errors.append(unreachable.value)
    with pytest.raises(bf.ConfigurationError) as bad:
        OpcUaOptions.from_url(url.replace("/bifrost/", ":notaport/"), **options)
    errors.append(bad.value)
    for error in errors:
        assert password not in str(error)
        assert password not in repr(error)


def _port(plant: Plant) -> int:
    return int(plant.urls["opcua"].rsplit(":", 1)[1].split("/")[0])


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("opc.tcp://op:pw@host:4840/x", "opc.tcp://op:***@host:4840/x"),
        ("opc.tcp://op:p@s:s/w@host/", "opc.tcp://op:***@host/"),  # unescaped @ : /
        ("opc.tcp://op:p%40ss@host/", "opc.tcp://op:***@host/"),
        ("opc.tcp://op@host/", "opc.tcp://op@host/"),  # no password: nothing to hide
        (
            "opc.tcp://h/?security=None&password=pw&private_key_password=k#f",
            "opc.tcp://h/?security=None&password=***&private_key_password=***#f",
        ),
        (
            "mqtts://u:pw@broker:8883?Api_Token=t&qos=1",
            "mqtts://u:***@broker:8883?Api_Token=***&qos=1",
        ),
        ("modbus+rtu:///dev/ttyUSB0?baudrate=19200", "modbus+rtu:///dev/ttyUSB0?baudrate=19200"),
        ("s7://10.0.0.1?rack=0&slot=1", "s7://10.0.0.1?rack=0&slot=1"),
        ("opc.tcp://host:4840/path?email=a@b", "opc.tcp://host:4840/path?email=a@b"),
        ("not a url ?token=t", "not a url ?token=***"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown
