"""End to end in a real browser: JupyterLab + Debian's chromium driven by Playwright.

Starts JupyterLab on a free loopback port (token, temporary notebook and settings dirs),
opens tutorial 01, runs all cells, ticks a tag in the TagBrowser, clicks "Record
selected" and checks that a recording runs, that its live trend's time axis reads the
wall-clock time, and that the recording ends with samples; then runs tutorial 02 and
looks at its DecodeProbe. Screenshots go to ``test-artifacts/``: the page
(``jupyterlab-tagbrowser.png``) and each widget (``tagbrowser.png``, ``livetrend.png``,
``decodeprobe.png``). Every wait is bounded; JupyterLab and its kernels are shut down at
the end, whatever happened.
"""

from __future__ import annotations

import contextlib
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
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts"
TUTORIAL = ROOT / "tutorials" / "01_quickstart.ipynb"
PROBE_TUTORIAL = ROOT / "tutorials" / "02_tags_and_addresses.ipynb"

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


@pytest.fixture(scope="module")
def jupyterlab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """JupyterLab serving copies of the tutorials; yields tutorial 01's URL."""
    tmp_path = tmp_path_factory.mktemp("jupyterlab")
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    for tutorial in (TUTORIAL, PROBE_TUTORIAL):
        shutil.copy(tutorial, notebooks / tutorial.name)
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


def run_all(page: Any, url: str) -> None:
    page.goto(url)
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=90_000)
    # A second notebook in the same JupyterLab asks which kernel to start.
    select = page.locator(".jp-Dialog").get_by_role("button", name="Select")
    with contextlib.suppress(playwright_sync.TimeoutError):
        select.click(timeout=5_000)
    # Run All before the kernel is connected would queue the cells and lose them.
    wait_for_idle_kernel(url)
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()


def tick_times(title: str) -> list[datetime]:
    """The trend's tick labels from its title ("time (UTC): 10:49:01  10:49:02 ..."),
    each as today's (or a given date's) wall-clock time; raises if one is no time."""
    match = re.fullmatch(r"time \((?P<zone>[^)]+)\): (?P<labels>.+)", title)
    assert match is not None, title
    today = datetime.now().date()
    times = []
    for label in match.group("labels").split("  "):
        clock, _, day = label.partition(" ")
        pattern = "%H:%M:%S.%f" if "." in clock else "%H:%M:%S"
        moment = datetime.strptime(clock, pattern)
        date = datetime.strptime(day, "%Y-%m-%d").date() if day else today
        times.append(datetime.combine(date, moment.time()))
    return times


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
            run_all(page, jupyterlab)

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
            tagbrowser.screenshot(path=str(ARTIFACTS / "tagbrowser.png"))
            trend.screenshot(path=str(ARTIFACTS / "livetrend.png"))

            # The plot is a PNG; the trend's title carries the time axis' tick labels as
            # drawn. The bug: they read 0.00022 ... 0.00038 under an offset +2.0788891e4.
            title = trend.locator(".bifrost-trend-ticks").get_attribute("data-ticks") or ""
            times = tick_times(title)
            assert len(times) >= 2, title
            assert times == sorted(times), title
            # Wall-clock time of the kernel's zone (this machine's), within the last minute.
            now = datetime.now()
            assert all(now - timedelta(minutes=2) <= t <= now + timedelta(minutes=1) for t in times)

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
    for name in ("tagbrowser.png", "livetrend.png"):
        assert (ARTIFACTS / name).stat().st_size > 5_000, name


def test_decode_probe_shows_exact_and_close_matches_in_jupyterlab(jupyterlab: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / "decodeprobe.png"
    url = jupyterlab.replace(TUTORIAL.name, PROBE_TUTORIAL.name)
    with playwright_sync.sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox"], headless=True
        )
        try:
            # Tall enough for the whole probe in one screenshot.
            page = browser.new_page(viewport={"width": 1400, "height": 2400})
            page.set_default_timeout(60_000)
            run_all(page, url)
            probe = page.locator(".bifrost-decodeprobe").first
            probe.wait_for(state="visible", timeout=120_000)
            probe.scroll_into_view_if_needed()
            view = probe.locator(".bifrost-decodeprobe-view")
            view.get_by_text("Exact: addresses that give").wait_for(timeout=30_000)
            text = view.inner_text()
            assert "ir:0:float32:CDAB" in text
            assert "Within ±0.5 %" in text  # the near miss, apart from the exact one
            probe.get_by_text("live").wait_for()
            page.wait_for_timeout(300)
            probe.screenshot(path=str(screenshot))
        except BaseException:
            page.screenshot(path=str(ARTIFACTS / "jupyterlab-probe-failure.png"), full_page=False)
            raise
        finally:
            browser.close()
    assert screenshot.stat().st_size > 5_000
