"""Sparkplug B from MqttSink, decoded by an independent reader of the schema."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
import spb_wire
from brokers import Mosquitto, free_port
from waiting import wait_for

import bifrost as bf
from bifrost.cloud import MqttSink

pytest.importorskip("google.protobuf")

NS = "spBv1.0/G"


def _decoded(subscriber: Any) -> list[tuple[str, spb_wire.Payload]]:
    with subscriber.lock:
        return [(t, spb_wire.decode(p)) for t, p in subscriber.messages]


def _kinds(messages: list[tuple[str, spb_wire.Payload]]) -> list[str]:
    return [t.split("/")[2] for t, _ in messages]


def _sink(broker: Mosquitto, spool: Path, **kwargs: Any) -> MqttSink:
    return MqttSink(broker.url, payload="sparkplug", group="G", node="N", spool=spool, **kwargs)


def test_births_before_data_aliases_resolve_types_and_quality(
    tmp_path: Path, broker: Mosquitto, subscriber_factory: Any
) -> None:
    subscriber = subscriber_factory(broker.port, "spBv1.0/#")
    with _sink(broker, tmp_path / "spool") as sink:
        sink.send({"temp": 21.5, "count": -7, "on": True, "recipe": "A-1"}, device="press")
        assert sink.flush(10)  # one row per DDATA here (a burst would share one)
        sink.send({"temp": 22.0, "count": -8, "on": False, "recipe": "A-2"}, device="press")
        assert sink.flush(10)
        sink.put(
            bf.cloud.payloads.Row(
                "press",
                time.time_ns(),
                ("temp", "count"),
                ("float64", "int64"),
                [None, 5],
                [int(bf.Quality.BAD_COMM_LOST), int(bf.Quality.UNCERTAIN)],
            )
        )
        assert sink.flush(10)
        assert wait_for(lambda: len(subscriber.messages) >= 5, 10)
    messages = _decoded(subscriber)
    kinds = _kinds(messages)
    assert kinds[:2] == ["NBIRTH", "DBIRTH"]
    assert kinds.count("DDATA") == 3
    assert messages[0][0] == f"{NS}/NBIRTH/N"
    assert messages[1][0] == f"{NS}/DBIRTH/N/press"
    nbirth = messages[0][1]
    assert nbirth.seq == 0
    names = {m.name: m for m in nbirth.metrics}
    assert names["Node Control/Rebirth"].value is False
    assert names["bdSeq"].datatype == spb_wire.TYPES["UInt64"]
    birth = {m.alias: m for m in messages[1][1].metrics}
    by_name = {m.name: m for m in birth.values()}
    assert by_name["temp"].datatype == spb_wire.TYPES["Double"]
    assert by_name["count"].datatype == spb_wire.TYPES["Int64"]
    assert by_name["on"].datatype == spb_wire.TYPES["Boolean"]
    assert by_name["recipe"].datatype == spb_wire.TYPES["String"]
    assert len(birth) == 4  # aliases unique
    data = [p for t, p in messages if "/DDATA/" in t]
    for payload in data:
        assert all(m.name is None and m.alias in birth for m in payload.metrics)
    first = {birth[m.alias].name: m.value for m in data[0].metrics}
    assert first == {"temp": 21.5, "count": -7, "on": True, "recipe": "A-1"}
    second = {birth[m.alias].name: m.value for m in data[1].metrics}
    assert second == {"temp": 22.0, "count": -8, "on": False, "recipe": "A-2"}
    bad, uncertain = data[2].metrics
    assert bad.is_null
    assert bad.properties == {"Quality": 0}
    assert uncertain.value == 5
    assert uncertain.properties == {"Quality": 64}
    assert kinds[-1] == "NDEATH"  # a clean close says so; NDEATH has no seq
    assert [p.seq for _, p in messages[:-1]] == list(range(len(messages) - 1))


def test_seq_wraps_at_256(tmp_path: Path, broker: Mosquitto, subscriber_factory: Any) -> None:
    subscriber = subscriber_factory(broker.port, "spBv1.0/#")
    with _sink(broker, tmp_path / "spool") as sink:
        assert wait_for(lambda: sink.connected, 10)
        for i in range(300):
            sink.send({"x": float(i)}, device="d")
            assert sink.flush(10)
        assert wait_for(lambda: len(subscriber.messages) >= 302, 10)
    seqs = [p.seq for t, p in _decoded(subscriber) if "NDEATH" not in t]
    assert seqs == [i % 256 for i in range(302)]


def test_historical_replay_is_flagged_and_batched(tmp_path: Path, subscriber_factory: Any) -> None:
    port = free_port()
    spool = tmp_path / "spool"
    base = time.time_ns() - 60_000_000_000
    offline = MqttSink(
        f"mqtt://127.0.0.1:{port}", payload="sparkplug", group="G", node="N", spool=spool
    )
    with offline:
        for i in range(200):
            offline.send({"x": float(i)}, device="d", time_ns=base + i * 1_000_000)
        assert wait_for(lambda: offline.spool.pending == 200, 10)
    with Mosquitto(tmp_path / "broker", port=port) as broker:
        subscriber = subscriber_factory(port, "spBv1.0/#")
        with _sink(broker, spool) as sink:
            assert sink.flush(20)
            assert wait_for(
                lambda: sum(len(p.metrics) for t, p in _decoded(subscriber) if "DDATA" in t) >= 200,
                10,
            )
    messages = _decoded(subscriber)
    data = [p for t, p in messages if "/DDATA/" in t]
    metrics = [m for p in data for m in p.metrics]
    assert [m.value for m in metrics] == [float(i) for i in range(200)]
    assert all(m.is_historical for m in metrics)
    assert [m.timestamp for m in metrics] == [
        (base + i * 1_000_000) // 1_000_000 for i in range(200)
    ]
    # Batched, not one message per row (the first few small while the sink learns from
    # PUBACKs how much of the backlog drains within max_live_delay).
    assert len(data) < 20
    assert _kinds(messages).index("DBIRTH") < _kinds(messages).index("DDATA")


def test_rebirth_on_ncmd(tmp_path: Path, broker: Mosquitto, subscriber_factory: Any) -> None:
    subscriber = subscriber_factory(broker.port, "spBv1.0/#")
    with _sink(broker, tmp_path / "spool") as sink:
        sink.send({"x": 1.0}, device="d")
        assert sink.flush(10)
        assert wait_for(lambda: len(subscriber.messages) >= 3, 10)
        subscriber.client.publish(
            f"{NS}/NCMD/N", spb_wire.rebirth_command(time.time_ns() // 10**6), qos=1
        )
        assert wait_for(lambda: _kinds(_decoded(subscriber)).count("NBIRTH") == 2, 10)
        assert wait_for(lambda: _kinds(_decoded(subscriber)).count("DBIRTH") == 2, 10)
        sink.send({"x": 2.0}, device="d")
        assert sink.flush(10)
        assert wait_for(lambda: _kinds(_decoded(subscriber)).count("DDATA") == 2, 10)
    messages = [(t, p) for t, p in _decoded(subscriber) if "NCMD" not in t]
    assert _kinds(messages) == ["NBIRTH", "DBIRTH", "DDATA", "NBIRTH", "DBIRTH", "DDATA", "NDEATH"]
    assert [p.seq for _, p in messages[:-1]] == [0, 1, 2, 0, 1, 2]
    reborn = {m.name: m.value for m in messages[4][1].metrics}
    assert reborn == {"x": 1.0}  # the last value known
    bdseqs = {m.value for _, p in messages for m in p.metrics if m.name == "bdSeq"}
    assert len(bdseqs) == 1  # same session: same bdSeq


_CHILD = textwrap.dedent(
    """
    import sys, time
    from bifrost.cloud import MqttSink
    sink = MqttSink(sys.argv[1], payload="sparkplug", group="G", node="N", spool=sys.argv[2])
    sink.send({"x": 1.0}, device="d")
    assert sink.flush(10)
    print("ready", flush=True)
    time.sleep(60)
    """
)


def test_ndeath_will_carries_the_births_bdseq_and_bdseq_persists(
    tmp_path: Path, broker: Mosquitto, subscriber_factory: Any
) -> None:
    subscriber = subscriber_factory(broker.port, "spBv1.0/#")
    spool = tmp_path / "spool"
    for run in range(2):
        child = subprocess.Popen(
            [sys.executable, "-c", _CHILD, broker.url, str(spool)],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert child.stdout is not None
            assert child.stdout.readline().strip() == "ready"
        finally:
            os.kill(child.pid, signal.SIGKILL)
            child.wait(10)
            child.stdout.close()  # type: ignore[union-attr]
        # keepalive 30 s, but a killed process' socket closes at once: the will follows.
        assert wait_for(lambda run=run: _kinds(_decoded(subscriber)).count("NDEATH") > run, 10)
    messages = _decoded(subscriber)
    births = [p for t, p in messages if "/NBIRTH/" in t]
    deaths = [p for t, p in messages if "/NDEATH/" in t]
    birth_seqs = [next(m.value for m in p.metrics if m.name == "bdSeq") for p in births]
    death_seqs = [next(m.value for m in p.metrics if m.name == "bdSeq") for p in deaths]
    assert birth_seqs == death_seqs == [0, 1]  # the will matches its birth; a restart counts on
    kinds = _kinds(messages)
    assert kinds.index("NBIRTH") < kinds.index("DBIRTH") < kinds.index("DDATA")


def test_descriptor_module_matches_the_proto() -> None:
    pytest.importorskip("grpc_tools")
    result = subprocess.run(
        [sys.executable, "-m", "bifrost.cloud.sparkplug_codec", "--regenerate", "--check"],
        capture_output=True,
        check=False,
    )
    assert result.returncode == 0, "run python -m bifrost.cloud.sparkplug_codec --regenerate"


def _unreachable_row(device: str, names: tuple[str, ...]) -> bf.cloud.payloads.Row:
    return bf.cloud.payloads.Row(
        device,
        time.time_ns(),
        names,
        ("float64",) * len(names),
        [None] * len(names),
        [int(bf.Quality.BAD_COMM_LOST)] * len(names),
    )


def test_unreachable_device_dies_once_and_is_born_again(
    tmp_path: Path, broker: Mosquitto, subscriber_factory: Any
) -> None:
    subscriber = subscriber_factory(broker.port, f"{NS}/#")
    with _sink(broker, tmp_path / "spool") as sink:
        sink.send({"x": 1.0, "y": 2.0}, device="d")
        assert sink.flush(10)
        for _ in range(3):  # one death stands for all three rows
            sink.put(_unreachable_row("d", ("x", "y")))
            assert sink.flush(10)
        sink.send({"x": 3.0, "y": 4.0}, device="d")
        assert sink.flush(10)
        assert wait_for(lambda: len(subscriber.messages) >= 6, 10)
        assert sink.stats.acknowledged == 5  # the rows the death stood for are done too
    messages = _decoded(subscriber)
    assert _kinds(messages) == ["NBIRTH", "DBIRTH", "DDATA", "DDEATH", "DBIRTH", "DDATA", "NDEATH"]
    assert messages[3][0] == f"{NS}/DDEATH/N/d"
    assert [p.seq for _, p in messages[:-1]] == [0, 1, 2, 3, 4, 5]
    reborn = {m.name: m.value for m in messages[4][1].metrics}
    assert reborn == {"x": 3.0, "y": 4.0}  # born with the values it came back with


def _state(subscriber: Any, online: bool, stamp: int) -> None:
    body = json.dumps({"online": online, "timestamp": stamp}).encode()
    subscriber.client.publish("spBv1.0/STATE/scada", body, qos=1, retain=True).wait_for_publish(5)


def test_births_wait_for_the_primary_host_and_follow_its_state(
    tmp_path: Path, broker: Mosquitto, subscriber_factory: Any
) -> None:
    subscriber = subscriber_factory(broker.port, f"{NS}/#")
    host = subscriber_factory(broker.port, "nothing/here", client_id="scada")
    with _sink(broker, tmp_path / "spool", primary_host="scada") as sink:
        sink.send({"x": 1.0}, device="d")
        assert wait_for(lambda: "primary host 'scada'" in sink.stats.last_error, 10)
        time.sleep(0.5)
        assert subscriber.messages == []  # connected, but not a single birth or value
        _state(host, True, 1000)
        assert wait_for(lambda: sink.stats.acknowledged == 1, 10)
        assert wait_for(lambda: len(subscriber.messages) >= 3, 10)
        first = _decoded(subscriber)
        assert _kinds(first) == ["NBIRTH", "DBIRTH", "DDATA"]
        assert all(m.is_historical for m in first[2][1].metrics)  # it waited: history
        _state(host, False, 2000)  # the host goes away: the node dies and waits
        assert wait_for(lambda: _kinds(_decoded(subscriber))[-1:] == ["NDEATH"], 10)
        _state(host, True, 1500)  # older than the last STATE: ignored
        sink.send({"x": 2.0}, device="d")
        time.sleep(1.0)
        assert _kinds(_decoded(subscriber)) == ["NBIRTH", "DBIRTH", "DDATA", "NDEATH"]
        _state(host, True, 3000)
        assert wait_for(lambda: sink.stats.acknowledged == 2, 10)
        assert wait_for(lambda: _kinds(_decoded(subscriber)).count("DDATA") == 2, 10)
    messages = _decoded(subscriber)
    assert _kinds(messages)[:7] == [
        "NBIRTH", "DBIRTH", "DDATA", "NDEATH", "NBIRTH", "DBIRTH", "DDATA"
    ]  # fmt: skip
    bdseqs = [m.value for _, p in messages for m in p.metrics if m.name == "bdSeq"]
    assert bdseqs[0] == bdseqs[1] != bdseqs[2]  # the first session's birth and death; a new one
    second = {m.value for m in messages[6][1].metrics}
    assert second == {2.0}
