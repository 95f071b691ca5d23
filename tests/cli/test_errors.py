"""Exit codes per error class, errors in one or two lines, tracebacks only with --debug."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest
from cli_support import bifrost
from modbus_server import ModbusTestServer  # tests/ is on the path (tests/conftest.py)


@pytest.fixture(scope="module")
def server() -> Iterator[ModbusTestServer]:
    with ModbusTestServer(units=(1, 2)) as running:
        yield running


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def test_a_bad_address_is_2_in_a_few_lines_and_debug_shows_the_traceback(
    server: ModbusTestServer,
):
    done = bifrost("read", server.url, "hr:4x0")
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "hr:4x0" in done.stderr
    assert "position 3" in done.stderr
    assert len(_lines(done.stderr)) <= 3  # the message, the address and its caret
    assert server.requests == 0
    debug = bifrost("--debug", "read", server.url, "hr:4x0")
    assert debug.returncode == 2
    assert "Traceback" in debug.stderr
    bad_option = bifrost("read", server.url, "hr:0", "-O", "unit")
    assert bad_option.returncode == 2
    assert "KEY=VALUE" in bad_option.stderr


def test_options_reach_the_connection(server: ModbusTestServer):
    server.set("hr", 60, [321], unit=2)
    done = bifrost("read", server.url, "hr:60", "-O", "unit=2", "--json")
    assert done.returncode == 0, done.stderr
    assert '"value": 321' in done.stdout


def test_a_refused_connection_is_3(closed_port: int):
    done = bifrost("read", f"modbus://127.0.0.1:{closed_port}", "hr:0", "-O", "timeout=1")
    assert done.returncode == 3
    lines = _lines(done.stderr)
    assert 1 <= len(lines) <= 2
    assert lines[0].startswith("error: ")
    assert lines[-1].startswith("hint: ")


def test_a_device_that_does_not_answer_is_4():
    # A listener that accepts and never replies: the read times out.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def hold() -> None:
        silent.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(silent.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    try:
        port = silent.getsockname()[1]
        done = bifrost("read", f"modbus://127.0.0.1:{port}", "hr:0", "-O", "timeout=0.5")
    finally:
        stop.set()
        thread.join(5)
        for connection in accepted:
            connection.close()
        silent.close()
    assert done.returncode == 4, done.stderr
    assert "timeout" in done.stderr.lower()
    assert "Traceback" not in done.stderr


def test_a_protocol_exception_is_5(server: ModbusTestServer):
    # The test server has no holding register 2500: Modbus exception 2, illegal address.
    done = bifrost("read", server.url, "hr:2500")
    assert done.returncode == 5, done.stderr
    assert "hr:2500" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_write_without_writable_is_6_and_sends_nothing(server: ModbusTestServer):
    before = server.requests
    done = bifrost("write", server.url, "hr:70=5")
    assert done.returncode == 6
    assert "--writable" in done.stderr
    assert server.requests == before  # refused before connecting
