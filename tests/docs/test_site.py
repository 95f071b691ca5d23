"""The documentation site: built once, checked offline, then opened in a real browser.

The site is built with warnings as errors into a temporary folder (or ``docs/_build/html``
is reused when it is newer than every source: ``make docs`` just ran). The offline checks
need no network: every internal link, image, script and anchor of the built HTML
resolves; every public name has its API entry; the exception tree is drawn once; the
tutorials show their stored outputs. The browser part opens the site in Debian's chromium
(Playwright, no browser download) and saves screenshots under ``test-artifacts/``.
"""

from __future__ import annotations

import functools
import http.server
import importlib
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
BUILT = DOCS / "_build" / "html"
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts"
MODULES = ["aio", "analytics", "jupyter", "sim", "cloud", "testing"]

pytest.importorskip("sphinx", reason="the docs extra is not installed (pip install -e '.[docs]')")
pytest.importorskip("myst_nb", reason="the docs extra is not installed (pip install -e '.[docs]')")

pytestmark = pytest.mark.timeout(110)


def _newest_source() -> float:
    copies = DOCS / "guides" / "tutorials"  # conf.py refreshes these from tutorials/
    docs = [p for p in DOCS.rglob("*") if "_build" not in p.parts and p.parent != copies]
    sources = [*docs, *(ROOT / "tutorials").glob("*.ipynb"), *(ROOT / "bifrost").rglob("*.py")]
    return max(path.stat().st_mtime for path in sources if path.is_file())


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    index = BUILT / "index.html"
    if index.exists() and index.stat().st_mtime > _newest_source():
        return BUILT
    out = tmp_path_factory.mktemp("docs") / "html"
    # A subprocess: pytest's filterwarnings=error must not judge Sphinx's own warnings,
    # and -W judges ours.
    command = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html"]
    done = subprocess.run(
        [*command, str(DOCS), str(out)], capture_output=True, text=True, timeout=100, check=False
    )
    assert done.returncode == 0, done.stderr[-4000:]
    return out


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.links: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        for key in ("id", "name"):
            if values.get(key) and (key == "id" or tag == "a"):
                self.ids.add(str(values[key]))
        for key in ("href", "src"):
            if values.get(key) and tag in ("a", "link", "img", "script", "iframe", "source"):
                self.links.append((tag, str(values[key])))


@functools.cache
def _parse(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


def _pages(site: Path) -> list[Path]:
    return sorted(p for p in site.rglob("*.html") if "_sources" not in p.parts)


def test_every_internal_link_and_anchor_resolves(site: Path) -> None:
    broken = []
    for page in _pages(site):
        for tag, link in _parse(page).links:
            parts = urlsplit(link)
            if parts.scheme or parts.netloc or link.startswith(("mailto:", "javascript:")):
                continue
            target = page if not parts.path else (page.parent / unquote(parts.path)).resolve()
            if target.is_dir():
                target = target / "index.html"
            where = f"{page.relative_to(site)}: <{tag}> {link}"
            if not target.is_file():
                broken.append(f"{where} (no file)")
            elif (
                parts.fragment
                and target.suffix == ".html"
                and unquote(parts.fragment) not in _parse(target).ids
            ):
                broken.append(f"{where} (no anchor)")
    assert not broken, "\n".join(broken)


def _inventory(site: Path) -> set[str]:
    from sphinx.util.inventory import InventoryFile

    with (site / "objects.inv").open("rb") as stream:
        inventory = InventoryFile.load(stream, "", lambda base, uri: uri)
    return {
        name for kind, entries in inventory.items() if kind.startswith("py:") for name in entries
    }


def test_every_public_name_has_an_api_entry(site: Path) -> None:
    import bifrost

    documented = _inventory(site)
    wanted = {f"bifrost.{name}" for name in bifrost.__all__ if name not in MODULES}
    wanted |= {f"bifrost.{module}" for module in MODULES}
    for module in MODULES:
        names = importlib.import_module(f"bifrost.{module}").__all__
        wanted |= {f"bifrost.{module}.{name}" for name in names}
    assert sorted(wanted - documented) == []


def test_the_exception_tree_is_drawn_once(site: Path) -> None:
    drawings = [
        page.relative_to(site).as_posix()
        for page in _pages(site)
        for _ in range(page.read_text(encoding="utf-8").count("├── ConfigurationError"))
    ]
    assert drawings == ["api/exceptions.html"]


def test_tutorials_show_their_stored_outputs(site: Path) -> None:
    tutorials = sorted((ROOT / "tutorials").glob("*.ipynb"))
    built = site / "guides" / "tutorials"
    assert sorted(p.stem for p in built.glob("*.html")) == [p.stem for p in tutorials]
    # The plot of tutorial 04 is an image/png output of the notebook, not re-executed.
    analytics = (built / "04_analytics.html").read_text(encoding="utf-8")
    assert "<img" in analytics
    assert "cell_output" in (built / "01_quickstart.html").read_text(encoding="utf-8")


def test_cli_reference_lists_every_command(site: Path) -> None:
    pytest.importorskip("typer", reason="the CLI extra is not installed (pip install bifrost-cli)")
    import typer.main

    from bifrost import cli

    page = (site / "api" / "cli.html").read_text(encoding="utf-8")
    commands = typer.main.get_command(cli.app).commands
    assert commands
    for name in commands:
        assert f"bifrost {name}" in page, name


# The browser --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def served(site: Path) -> Iterator[str]:
    handler = functools.partial(_QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.mark.slow
@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium (apt install chromium)")
def test_site_in_chromium(served: str) -> None:
    sync_api = pytest.importorskip("playwright.sync_api", reason="needs playwright (dev extra)")
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox"], headless=True
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            failed: list[str] = []
            page.on("requestfailed", lambda request: failed.append(request.url))
            page.set_default_timeout(15_000)

            page.goto(f"{served}/index.html")
            assert "bifrost" in page.title()
            page.screenshot(path=str(ARTIFACTS / "docs-home.png"))

            page.goto(f"{served}/guides/tutorials/04_analytics.html")
            plots = page.locator("article img")
            assert plots.count() >= 1
            plots.first.scroll_into_view_if_needed()
            loaded = plots.first.evaluate("img => img.complete && img.naturalWidth > 0")
            assert loaded, "the tutorial's plot did not load"
            page.screenshot(path=str(ARTIFACTS / "docs-tutorial-plot.png"))

            page.goto(f"{served}/api/bifrost.html")
            assert page.locator("dt#bifrost\\.connect").count() == 1
            page.screenshot(path=str(ARTIFACTS / "docs-api.png"))

            page.goto(f"{served}/search.html?q=record")
            results = page.locator("#search-results ul.search li a")
            deadline = time.monotonic() + 15
            while results.count() == 0 and time.monotonic() < deadline:
                page.wait_for_timeout(200)
            hrefs = [results.nth(i).get_attribute("href") or "" for i in range(results.count())]
            assert any("api/" in href and "record" in href for href in hrefs), hrefs
            page.screenshot(path=str(ARTIFACTS / "docs-search-record.png"))
            assert not [url for url in failed if url.startswith(served)], failed
        finally:
            browser.close()
    for name in ("home", "tutorial-plot", "api", "search-record"):
        assert (ARTIFACTS / f"docs-{name}.png").stat().st_size > 5_000


def test_no_notebook_is_executed_by_the_build() -> None:
    # conf.py is read as text: importing it would copy the tutorials as a side effect.
    text = (DOCS / "conf.py").read_text(encoding="utf-8")
    assert 'nb_execution_mode = "off"' in text
