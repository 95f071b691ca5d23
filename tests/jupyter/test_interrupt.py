"""Interrupting a blocking recording in a real kernel: SIGINT through jupyter_client.

The kernel is the venv's ipykernel, started the way JupyterLab starts it. Each test
queues a blocking ``record(..., duration="30s")`` and the cell after it, interrupts the
kernel once the recording runs, and then asks the kernel what it has: the partial
recording in the cell's variable, and the queued cell never run.
"""

from __future__ import annotations

import queue
import re
import time
from collections.abc import Iterator
from typing import Any

import pytest

jupyter_client = pytest.importorskip("jupyter_client")
pytest.importorskip("ipykernel")

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

ANSI = re.compile(r"\x1b\[[0-9;]*m")


class Kernel:
    """A kernel and its client; ``run`` executes a cell and collects what it printed."""

    def __init__(self) -> None:
        self.manager, self.client = jupyter_client.manager.start_new_kernel(
            kernel_name="python3", startup_timeout=60
        )

    def send(self, code: str) -> str:
        return str(self.client.execute(code, stop_on_error=True))

    def reply(self, msg_id: str, timeout: float = 60.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            msg = self.client.get_shell_msg(timeout=max(0.1, deadline - time.monotonic()))
            if msg["parent_header"].get("msg_id") == msg_id:
                content: dict[str, Any] = msg["content"]
                return content

    def outputs(self, msg_id: str, timeout: float = 60.0) -> list[dict[str, Any]]:
        """The iopub messages of one request, until the kernel is idle after it."""
        found = []
        deadline = time.monotonic() + timeout
        while True:
            try:
                msg = self.client.get_iopub_msg(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                pytest.fail(f"no idle status for {msg_id} within {timeout:g} s")
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            found.append(msg)
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                return found

    def run(self, code: str) -> tuple[dict[str, Any], str]:
        msg_id = self.send(code)
        text = "".join(
            m["content"].get("text", "")
            + m["content"].get("data", {}).get("text/plain", "")
            + "\n".join(m["content"].get("traceback", []))
            for m in self.outputs(msg_id)
        )
        return self.reply(msg_id), ANSI.sub("", text)

    def close(self) -> None:
        self.client.stop_channels()
        self.manager.shutdown_kernel(now=True)


@pytest.fixture(scope="module")
def kernel() -> Iterator[Kernel]:
    k = Kernel()
    try:
        reply, text = k.run(
            "import bifrost as bf\n"
            "import bifrost.jupyter\n"
            "bifrost.jupyter.register_ipython_hooks()\n"
            "plant = bf.sim.Plant(seed=1)\n"
            "plant.serve(modbus=0)\n"
            "plc = plant.connect('modbus')\n"
            "url, plant_tags = plant.urls['modbus'], plant.tags('modbus')\n"
            "%load_ext bifrost\n"
            "%bifrost connect m $url --tags plant_tags\n"
        )
        assert reply["status"] == "ok", text
        yield k
    finally:
        k.run("plc.close(); plant.close()")
        k.close()


def _interrupt_during(kernel: Kernel, cell: str) -> tuple[dict[str, Any], str, dict[str, Any]]:
    """Run ``cell``, queue ``after = 1`` behind it, interrupt once it records."""
    kernel.run("after = 0")
    recording = kernel.send(cell)
    queued = kernel.send("after = 1")
    # The kernel's own SIGINT, as the notebook's stop button sends it, after the
    # recording has collected a few samples (the record call returns at once otherwise).
    time.sleep(1.5)
    kernel.manager.interrupt_kernel()
    messages = kernel.outputs(recording)
    reply = kernel.reply(recording)
    text = ANSI.sub("", "".join("\n".join(m["content"].get("traceback", [])) for m in messages))
    return reply, text, kernel.reply(queued)


def test_interrupting_plc_record_keeps_the_partial_recording_and_stops_run_all(kernel):
    reply, text, queued = _interrupt_during(
        kernel, 'rec = plc.record(["tank.level"], interval="50ms", duration="30s")'
    )
    assert reply["status"] == "error"
    assert reply["ename"] == "RecordingInterrupted"
    assert queued["status"] == "aborted"  # the next cell did not run
    shown = text.strip().splitlines()
    assert len(shown) == 1, text
    assert re.fullmatch(
        r"KeyboardInterrupt: recording interrupted after \d+\.\d s — [\d,]+ samples kept in rec",
        shown[0],
    ), shown[0]
    _, answer = kernel.run("print(type(rec).__name__, len(rec) > 5, rec.interrupted, after)")
    assert answer.split() == ["Recording", "True", "True", "0"]
    _, summary = kernel.run(
        "print(repr(rec)); print('interrupted by the user' in rec._repr_html_())"
    )
    assert summary.startswith("<Recording interrupted: 1 tag, ")
    assert summary.split()[-1] == "True"


def test_an_unassigned_interrupted_recording_lands_in_underscore(kernel):
    reply, text, queued = _interrupt_during(
        kernel, 'plc.record(["tank.level"], interval="50ms", duration="30s", progress=False)'
    )
    assert reply["ename"] == "RecordingInterrupted"
    assert queued["status"] == "aborted"
    assert text.strip().endswith("samples kept in _")
    _, answer = kernel.run("print(type(_).__name__, _.interrupted)")
    assert answer.split() == ["Recording", "True"]


@pytest.mark.parametrize(
    ("cell", "var"),
    [
        ("%bifrost record m tank.level -i 50ms -d 30s --out mrec", "mrec"),
        ("arec = %bifrost record m tank.level -i 50ms -d 30s", "arec"),
    ],
)
def test_interrupting_the_record_magic_keeps_the_partial_recording(kernel, cell, var):
    reply, text, queued = _interrupt_during(kernel, cell)
    assert reply["ename"] == "RecordingInterrupted"
    assert queued["status"] == "aborted"
    assert text.strip().endswith(f"samples kept in {var}")
    _, answer = kernel.run(f"print(type({var}).__name__, {var}.interrupted, len({var}) > 5)")
    assert answer.split() == ["Recording", "True", "True"]
