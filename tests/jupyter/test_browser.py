"""End to end in a real browser: JupyterLab + Debian's chromium driven by Playwright.

Starts JupyterLab on a free loopback port (token, temporary notebook and settings dirs),
opens tutorial 01, runs all cells, ticks a tag in the TagBrowser, clicks "Record
selected" and checks that a recording runs and ends with samples. The screenshot goes to
``test-artifacts/jupyterlab-tagbrowser.png``. Every wait is bounded; JupyterLab and its
kernels are shut down at the end, whatever happened.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts"
TUTORIAL = ROOT / "tutorials" / "01_quickstart.ipynb"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium (apt install)"),
    pytest.mark.timeout(300),
]
playwright_sync = pytest.importorskip("playwright.sync_api")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def settings(directory: Path) -> None:
    """User settings for a quiet, fully rendered JupyterLab."""
    notebook = directory / "@jupyterlab" / "notebook-extension"
    notebook.mkdir(parents=True)
    # Render every cell: the TagBrowser is at the end of the notebook.
    (notebook / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
    apputils = directory / "@jupyterlab" / "apputils-extension"
    apputils.mkdir(parents=True)
    (apputils / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False})
    )


def get(url: str) -> int:
    with urllib.request.urlopen(url, timeout=5) as response:
        return int(response.status)


def wait_for_idle_kernel(lab_url: str, timeout: float = 90.0) -> None:
    base, _, query = lab_url.partition("/lab/")
    token = query.rpartition("token=")[2]

    def idle() -> bool:
        with urllib.request.urlopen(f"{base}/api/sessions?token={token}", timeout=5) as r:
            sessions = json.load(r)
        return bool(sessions) and all(s["kernel"]["execution_state"] == "idle" for s in sessions)

    if not wait_for(idle, timeout=timeout, step=0.25):
        pytest.fail(f"no idle kernel within {timeout:g} s")
    time.sleep(1.0)  # the page connects its websocket after the kernel is idle


@pytest.fixture
def jupyterlab(tmp_path: Path) -> Iterator[str]:
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    shutil.copy(TUTORIAL, notebooks / TUTORIAL.name)
    settings(tmp_path / "settings")
    port, token = free_port(), secrets.token_hex(16)
    env = dict(os.environ)
    env.update(
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        JUPYTERLAB_SETTINGS_DIR=str(tmp_path / "settings"),
        JUPYTERLAB_WORKSPACES_DIR=str(tmp_path / "workspaces"),
        JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
        JUPYTER_CONFIG_DIR=str(tmp_path / "config"),
    )
    log = (tmp_path / "jupyterlab.log").open("w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--allow-root",
            "--ip=127.0.0.1",
            f"--port={port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={notebooks}",
        ],
        cwd=notebooks,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                pytest.fail(f"JupyterLab exited: {(tmp_path / 'jupyterlab.log').read_text()}")
            try:
                if get(f"{base}/api/status?token={token}") == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("JupyterLab did not answer within 60 s")
            time.sleep(0.25)
        yield f"{base}/lab/tree/{TUTORIAL.name}?token={token}"
    finally:
        # The shutdown API stops the kernels too; a signal is the fallback.
        try:
            request = urllib.request.Request(
                f"{base}/api/shutdown?token={token}", method="POST", data=b""
            )
            urllib.request.urlopen(request, timeout=5).close()
        except OSError:
            pass
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)
        log.close()


def test_tutorial_runs_in_jupyterlab_and_record_selected_records(jupyterlab: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / "jupyterlab-tagbrowser.png"
    with playwright_sync.sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox"], headless=True
        )
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(60_000)
            page.goto(jupyterlab)
            page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=90_000)
            # Run All before the kernel is connected would queue the cells and lose them.
            wait_for_idle_kernel(jupyterlab)
            page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
            page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()

            tagbrowser = page.locator(".bifrost-tagbrowser")
            tagbrowser.wait_for(state="visible", timeout=120_000)
            tagbrowser.scroll_into_view_if_needed()
            status = tagbrowser.locator(".bifrost-browser-status")
            assert "15 tags" in status.inner_text()

            rows = tagbrowser.locator("input[type=checkbox]")
            rows.nth(0).check()  # tank.level
            rows.nth(5).check()  # pump.speed
            tagbrowser.get_by_role("button", name="Record selected").click()

            recording = tagbrowser.locator(".bifrost-recording")
            recording.wait_for(state="visible", timeout=30_000)
            assert "recording 2 tags" in recording.inner_text()
            trend = tagbrowser.locator(".bifrost-livetrend")
            trend.wait_for(state="visible", timeout=30_000)
            # The live trend's title counts samples; wait for it to show a few.
            page.wait_for_function(
                """() => {
                    const t = document.querySelector('.bifrost-livetrend .widget-html-content');
                    const m = t && t.textContent.match(/([\\d,]+) samples/);
                    return m && parseInt(m[1].replace(/,/g, '')) >= 5;
                }""",
                timeout=60_000,
            )
            page.wait_for_timeout(500)  # let the last PNG frame paint for the screenshot
            page.screenshot(path=str(screenshot), full_page=False)

            tagbrowser.get_by_role("button", name="Stop").click()
            summary = tagbrowser.locator(".bifrost-recording-summary")
            summary.wait_for(state="visible", timeout=30_000)
            text = summary.inner_text()
            assert "Recording stopped: 2 tags" in text
            assert "tank.level" in text
            assert "pump.speed" in text
            samples = re.search(r"samples\s+([\d,]+)", text)
            assert samples is not None
            assert int(samples.group(1).replace(",", "")) >= 5
        except BaseException:
            page.screenshot(path=str(ARTIFACTS / "jupyterlab-failure.png"), full_page=False)
            raise
        finally:
            browser.close()
    assert screenshot.stat().st_size > 10_000
