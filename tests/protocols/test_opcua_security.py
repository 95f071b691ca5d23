"""OPC UA security against the plant's secured endpoint (Basic256Sha256, user/password)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import bifrost as bf
from bifrost.secrets import Secret
from bifrost.sim import Plant

LEVEL = "ns=2;s=Plant.Tank.Level"


@pytest.fixture(scope="module")
def plant() -> Iterator[Plant]:
    with Plant(seed=6, realtime=False) as plant:
        plant.serve(opcua=0, opcua_security=True)
        plant.step(3)
        yield plant


@pytest.fixture(scope="module")
def url(plant: Plant) -> str:
    return plant.urls["opcua"]


@pytest.fixture(scope="module")
def options(plant: Plant) -> dict[str, Any]:
    security = plant.opcua_security
    assert security is not None
    return dict(security.client_options())


@pytest.mark.parametrize("mode", ["Sign", "SignAndEncrypt"])
def test_trusted_server_works(plant: Plant, url: str, mode: str) -> None:
    security = plant.opcua_security
    with bf.connect(url, **security.client_options(mode)) as plc:
        assert plc.read_value(LEVEL) == pytest.approx(plant.snapshot()["tank.level"], rel=1e-6)
        info = plc.info()
        assert info["security_mode"] == mode
        assert info["server_certificate_sha256"].count(":") == 31


def test_untrusted_server_certificate_is_refused(url: str, options: dict[str, Any]) -> None:
    untrusted = {k: v for k, v in options.items() if k != "server_certificate"}
    with pytest.raises(bf.ConnectionError, match="not trusted") as info:
        bf.connect(url, **untrusted)
    message = str(info.value)
    assert "server_certificate=" in message
    assert "trust_server=True" in message


def test_explicit_trust_works(url: str, options: dict[str, Any]) -> None:
    untrusted = {k: v for k, v in options.items() if k != "server_certificate"}
    with bf.connect(url, trust_server=True, **untrusted) as plc:
        fingerprint = plc.info()["server_certificate_sha256"]
    with bf.connect(url, trust_server=fingerprint.lower(), **untrusted) as plc:
        assert plc.read_value(LEVEL) is not None


def test_wrong_fingerprint_is_refused(url: str, options: dict[str, Any]) -> None:
    untrusted = {k: v for k, v in options.items() if k != "server_certificate"}
    with pytest.raises(bf.ConnectionError, match="not the trusted fingerprint"):
        bf.connect(url, trust_server="AB:" * 31 + "AB", **untrusted)


def test_other_certificate_is_refused(url: str, options: dict[str, Any]) -> None:
    wrong = {**options, "server_certificate": options["certificate"]}  # the client's own
    with pytest.raises(bf.ConnectionError, match="not the trusted one"):
        bf.connect(url, **wrong)


def test_pem_server_certificate_is_accepted(
    plant: Plant, url: str, options: dict[str, Any], tmp_path: Path
) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    der = Path(options["server_certificate"]).read_bytes()
    pem = tmp_path / "server.pem"
    pem.write_bytes(x509.load_der_x509_certificate(der).public_bytes(Encoding.PEM))
    with bf.connect(url, **{**options, "server_certificate": str(pem)}) as plc:
        assert plc.read_value(LEVEL) is not None


def test_wrong_password_is_refused(url: str, options: dict[str, Any]) -> None:
    wrong = Secret("not-the-password-123", "test")
    with pytest.raises(bf.ConnectionError, match="refused user 'operator'") as info:
        bf.connect(url, **{**options, "password": wrong})
    assert "not-the-password-123" not in str(info.value)


def test_missing_user_is_refused(url: str, options: dict[str, Any]) -> None:
    anonymous = {k: v for k, v in options.items() if k not in ("user", "password")}
    with pytest.raises(bf.ConnectionError, match="anonymous"):
        bf.connect(url, **anonymous)


def test_policy_mismatch_is_refused(url: str, options: dict[str, Any]) -> None:
    with pytest.raises(bf.ConnectionError, match="offers no endpoint with security 'None'") as info:
        bf.connect(url, security="None")
    assert "Basic256Sha256,SignAndEncrypt" in str(info.value)
    other = {**options, "security": "Aes256Sha256RsaPss,SignAndEncrypt"}
    with pytest.raises(bf.ConnectionError, match="offers no endpoint"):
        bf.connect(url, **other)


def test_password_from_environment_never_shows(
    url: str, options: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    password = options["password"].reveal()
    monkeypatch.setenv("BIFROST_TEST_OPCUA_PASSWORD", password)
    secret = bf.secret("env:BIFROST_TEST_OPCUA_PASSWORD")
    with bf.connect(url, **{**options, "password": secret}) as plc:
        assert password not in repr(plc)
        assert password not in repr(plc._async._driver.options)
        assert password not in str(plc.info())
        assert plc.read_value(LEVEL) is not None


def test_missing_certificate_file(url: str, options: dict[str, Any], tmp_path: Path) -> None:
    with pytest.raises(bf.ConfigurationError, match="does not exist"):
        bf.connect(url, **{**options, "certificate": str(tmp_path / "missing.der")})
    copy = tmp_path / "server.der"
    shutil.copy(options["server_certificate"], copy)
    with pytest.raises(bf.ConfigurationError, match="not both"):
        bf.connect(url, **{**options, "server_certificate": str(copy), "trust_server": True})
