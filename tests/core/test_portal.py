"""The background loop: cancellation on timeout, no leaked threads, any host environment."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import bifrost as bf
from bifrost._portal import Portal

ROOT = Path(__file__).resolve().parents[2]


def test_a_timed_out_call_is_cancelled_not_left_running(no_thread_leak):
    portal = Portal(name="test-portal")
    portal.acquire()
    events: list[str] = []

    async def slow() -> None:
        try:
            await asyncio.sleep(10)
            events.append("finished")
        except asyncio.CancelledError:
            events.append("cancelled")
            raise

    try:
        started = time.monotonic()
        with pytest.raises(bf.TimeoutError, match="cancelled"):
            portal.call(slow(), timeout=0.2)
        assert time.monotonic() - started < 2
        # The coroutine has already unwound when call() returns.
        assert events == ["cancelled"]
    finally:
        portal.release()
    assert not portal.running


def test_errors_raised_inside_are_passed_through_unchanged():
    portal = Portal(name="test-portal")
    portal.acquire()

    async def fails() -> None:
        raise bf.TimeoutError("device at 10.0.0.1:502 did not answer")

    try:
        with pytest.raises(bf.TimeoutError, match=r"10\.0\.0\.1:502"):
            portal.call(fails(), timeout=5)
    finally:
        portal.release()


def test_the_loop_thread_stops_with_the_last_connection(modbus_server, no_thread_leak):
    first = bf.connect(modbus_server.url)
    second = bf.connect(modbus_server.url)
    names = [t.name for t in threading.enumerate()]
    assert names.count("bifrost-loop") == 1
    first.close()
    assert "bifrost-loop" in [t.name for t in threading.enumerate()]
    second.close()
    second.close()  # idempotent


def test_closed_connection_says_so(modbus_server):
    plc = bf.connect(modbus_server.url)
    plc.close()
    with pytest.raises(bf.ConnectionError, match="closed"):
        plc.read(["hr:0"])


def test_sync_api_inside_a_running_event_loop(modbus_server):
    # What a Jupyter kernel does: the main thread runs a loop while user code calls us.
    modbus_server.set("hr", 0, [77])

    async def notebook_cell() -> int:
        with bf.connect(modbus_server.url) as plc:
            return int(plc.read_value("hr:0"))

    assert asyncio.run(notebook_cell()) == 77


def test_sync_api_in_ipython(modbus_server):
    from IPython.core.interactiveshell import InteractiveShell

    modbus_server.set("hr", 0, [78])
    shell = InteractiveShell.instance()
    try:
        result = shell.run_cell(
            "import bifrost as bf\n"
            f"with bf.connect('{modbus_server.url}') as plc:\n"
            "    value = plc.read_value('hr:0')\n"
            "value"
        )
        result.raise_error()
        assert result.result == 78
    finally:
        InteractiveShell.clear_instance()


def test_sync_api_in_a_real_jupyter_kernel(modbus_server):
    modbus_server.set("hr", 0, [79])
    script = f"""
import sys
from jupyter_client.manager import start_new_kernel
km, kc = start_new_kernel(kernel_name="python3")
try:
    code = (
        "import asyncio, bifrost as bf\\n"
        "assert asyncio.get_event_loop().is_running()\\n"
        "plc = bf.connect('{modbus_server.url}')\\n"
        "print('VALUE', plc.read_value('hr:0'))\\n"
        "plc.close()\\n"
    )
    reply = kc.execute_interactive(code, timeout=60, output_hook=lambda m: (
        print(m['content'].get('text', ''), end='') if m['msg_type'] == 'stream' else None))
    sys.exit(0 if reply['content']['status'] == 'ok' else 1)
finally:
    kc.stop_channels()
    km.shutdown_kernel(now=True)
"""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "VALUE 79" in done.stdout
