"""Cloud presets and TLS against a real mosquitto with a test CA."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import pytest
from brokers import Mosquitto, free_port
from certs import LocalCA
from waiting import wait_for

import bifrost as bf
from bifrost.cloud import MqttSink, Tls, TlsWarning
from bifrost.cloud.presets import sas_token

pytest.importorskip("cryptography")


def _tls_broker(
    tmp_path: Path, *, server_dns: str | None = None, mtls: bool = True
) -> tuple[Mosquitto, LocalCA, int]:
    folder = tmp_path / "broker"
    ca = LocalCA(folder / "tls")
    if server_dns:
        cert, key = ca.issue("server", dns=server_dns)
    else:
        cert, key = ca.issue("server", ip="127.0.0.1")
    port = free_port()
    lines = [
        f"listener {port} 127.0.0.1",
        f"cafile {ca.ca}",
        f"certfile {cert}",
        f"keyfile {key}",
        f"require_certificate {'true' if mtls else 'false'}",
    ]
    broker = Mosquitto(folder, listeners=lines)
    return broker, ca, port


def test_aws_preset_mutual_tls(tmp_path: Path, subscriber_factory: Any) -> None:
    broker, ca, port = _tls_broker(tmp_path)
    cert, key = ca.issue("thing-1", client=True)
    with broker:
        subscriber = subscriber_factory(broker.port, "bifrost/#")
        sink = bf.cloud.aws_iot_core(
            "127.0.0.1",
            "thing-1",
            cert,
            key,
            ca.ca,
            port=port,
            spool=tmp_path / "spool",
            device="press",
        )
        try:
            assert sink.client_id == "thing-1"
            assert sink.tls is not None
            assert sink.tls.alpn == ()
            sink.send({"level": 1.5})
            assert sink.flush(10), sink.stats
            assert wait_for(lambda: len(subscriber.json()) == 1, 5)
            assert subscriber.messages[0][0] == "bifrost/press/level"
        finally:
            sink.close()
        # Without a client certificate the broker refuses the handshake.
        anonymous = MqttSink(f"mqtts://127.0.0.1:{port}", tls=Tls(ca=ca.ca), device="x")
        try:
            anonymous.send({"level": 2.0})
            assert wait_for(lambda: anonymous.stats.last_error != "", 10)
            assert not anonymous.connected
        finally:
            anonymous.close(timeout=0)
    assert len(subscriber.json()) == 1


def test_aws_preset_on_443_offers_alpn(tmp_path: Path) -> None:
    ca = LocalCA(tmp_path / "tls")
    cert, key = ca.issue("thing", client=True)
    sink = bf.cloud.aws_iot_core(
        "abc-ats.iot.eu-west-1.amazonaws.com", "thing", cert, key, ca.ca, port=443
    )
    try:
        assert sink.tls is not None
        assert sink.tls.alpn == ("x-amzn-mqtt-ca",)
        assert repr(sink).startswith("<MqttSink mqtts://abc-ats.iot.eu-west-1.amazonaws.com:443")
    finally:
        sink.close(timeout=0)


def test_a_certificate_for_another_host_is_refused(tmp_path: Path) -> None:
    broker, ca, port = _tls_broker(tmp_path, server_dns="wrong.example", mtls=False)
    with broker:
        sink = MqttSink(f"mqtts://127.0.0.1:{port}", tls=Tls(ca=ca.ca), device="d")
        try:
            sink.send({"x": 1})
            assert wait_for(lambda: "certificate" in sink.stats.last_error, 10)
            assert "IP address mismatch" in sink.stats.last_error or "mismatch" in (
                sink.stats.last_error
            )
            assert not sink.connected
            assert sink.stats.published == 0
        finally:
            sink.close(timeout=0)
        with pytest.warns(TlsWarning, match="verification is off"):
            insecure = MqttSink(
                f"mqtts://127.0.0.1:{port}", tls=Tls(ca=ca.ca), device="d", tls_insecure=True
            )
        try:
            insecure.send({"x": 1})
            assert insecure.flush(10)
        finally:
            insecure.close()


def test_sas_token_matches_a_fixed_vector() -> None:
    # Computed independently: printf 'myhub.azure-devices.net%2Fdevices%2Fdev1\n1700000000'
    #   | openssl dgst -sha256 -mac HMAC -macopt hexkey:<key> -binary | base64
    token = sas_token(
        "myhub.azure-devices.net/devices/dev1",
        bf.Secret("c2VjcmV0a2V5MTIzNDU2Nzg5MA=="),
        1700000000,
    )
    assert token.reveal() == (
        "SharedAccessSignature sr=myhub.azure-devices.net%2Fdevices%2Fdev1"
        "&sig=T7Q%2FJ%2FAIuIEGu7iHirbmVLwplEeUmDRK9PxaJibeBME%3D&se=1700000000"
    )
    assert "T7Q" not in repr(token)


def test_azure_preset_renews_its_token_and_keeps_every_row(
    tmp_path: Path, subscriber_factory: Any, caplog: pytest.LogCaptureFixture
) -> None:
    broker, ca, port = _tls_broker(tmp_path, mtls=False)
    key = "c2VjcmV0a2V5MTIzNDU2Nzg5MA=="
    connection_string = bf.Secret(f"HostName=127.0.0.1;DeviceId=dev1;SharedAccessKey={key}")
    caplog.set_level(logging.DEBUG)
    with broker:
        subscriber = subscriber_factory(broker.port, "devices/#")
        sink = bf.cloud.azure_iot_hub(
            connection_string, ca=ca.ca, port=port, token_ttl=2.0, spool=tmp_path / "spool"
        )
        try:
            assert sink.username == "127.0.0.1/dev1/?api-version=2021-04-12"
            assert sink.topic == "devices/dev1/messages/events/"
            assert sink.protocol == "3.1.1"
            for i in range(40):
                sink.send({"i": i})
                time.sleep(0.1)
            assert sink.flush(10)
            assert sink.stats.reconnects >= 1  # renewed before the 2 s token expired
            assert wait_for(lambda: len(subscriber.json()) >= 40, 10)
            rows = [m["values"]["i"] for m in subscriber.json()]
            assert sorted(set(rows)) == list(range(40))
            shown = repr(sink) + repr(sink.stats) + caplog.text
            assert key not in shown
            assert "SharedAccessSignature" not in shown
        finally:
            sink.close()


def test_azure_x509_and_bad_inputs(tmp_path: Path) -> None:
    ca = LocalCA(tmp_path / "tls")
    cert, key = ca.issue("dev2", client=True)
    sink = bf.cloud.azure_iot_hub(
        hostname="hub.azure-devices.net", device_id="dev2", cert=cert, key=key
    )
    try:
        assert sink.username == "hub.azure-devices.net/dev2/?api-version=2021-04-12"
        assert sink.client_id == "dev2"
    finally:
        sink.close(timeout=0)
    with pytest.raises(bf.ConfigurationError, match="Secret"):
        bf.cloud.azure_iot_hub("HostName=h;DeviceId=d;SharedAccessKey=k")  # type: ignore[arg-type]
    with pytest.raises(bf.ConfigurationError, match="DeviceId"):
        bf.cloud.azure_iot_hub(bf.Secret("HostName=h;SharedAccessKey=k"))


def test_google_iot_core_is_gone() -> None:
    with pytest.raises(bf.ConfigurationError, match="shut down on 16 August 2023") as info:
        bf.cloud.google_iot(project="p", region="europe-west1", registry="r", device="d")
    assert "MqttSink" in str(info.value)
