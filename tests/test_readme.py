"""README.md's Python works as written: every statement of its ```python blocks, in order.

The blocks run in one namespace, in a temporary directory (they write files), against
the simulated plant: the README starts its own; a placeholder device URL in the code
(``modbus://host:502``) is replaced by the URL of a plant serving that protocol. A
failing statement fails the test with its line of the README.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import bifrost as bf

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)
PLACEHOLDER = re.compile(r"(?P<scheme>modbus|s7|opc\.tcp)://host[^\"'\s]*")
SCHEMES = {"modbus": "modbus", "s7": "s7", "opc.tcp": "opcua"}

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


def statements() -> list[tuple[int, str]]:
    """``(README line, source)`` of every top-level statement of the Python blocks."""
    text = README.read_text(encoding="utf-8")
    found = []
    for block in BLOCK.finditer(text):
        first_line = text.count("\n", 0, block.start(1)) + 1
        code = block.group(1)
        for node in ast.parse(code).body:
            source = ast.get_source_segment(code, node)
            assert source is not None
            found.append((first_line + node.lineno - 1, source))
    return found


def test_the_readme_has_python_to_run():
    found = statements()
    assert len(found) >= 5
    # The line of issue 14: analytics on a recording of every tag, a text tag among them.
    assert any("df.bifrost.rolling_mean" in source for _, source in found)


class _Plants:
    """A plant per protocol that the README's placeholders need, started on demand."""

    def __init__(self) -> None:
        self.plant: Any = None

    def url(self, namespace: dict[str, Any], scheme: str) -> str:
        protocol = SCHEMES[scheme]
        readmes = namespace.get("plant")
        if isinstance(readmes, bf.sim.Plant) and protocol in readmes.urls:
            return str(readmes.urls[protocol])
        if self.plant is None:
            self.plant = bf.sim.Plant(seed=1)
        if protocol not in self.plant.urls:
            self.plant.serve(**{protocol: 0})
        return str(self.plant.urls[protocol])


@pytest.fixture
def namespace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    monkeypatch.chdir(tmp_path)
    ns: dict[str, Any] = {"__name__": "readme"}
    try:
        yield ns
    finally:
        # Whatever the README left open: recordings first, then connections and plants.
        for value in list(ns.values()):
            if isinstance(value, bf.Recording) and value.running:
                value.stop()
                value.wait(30)
        for value in list(ns.values()):
            if isinstance(value, bf.Connection):
                value.close()
        for value in list(ns.values()):
            if isinstance(value, bf.sim.Plant):
                value.close()


def test_every_python_statement_of_the_readme_runs(namespace):
    plants = _Plants()
    try:
        for line, source in statements():
            code = PLACEHOLDER.sub(lambda m: plants.url(namespace, m.group("scheme")), source)
            try:
                exec(compile(code, f"README.md:{line}", "exec"), namespace)
            except Exception as exc:
                pytest.fail(f"README.md line {line}: {source!r} raised {exc!r}")
    finally:
        if plants.plant is not None:
            plants.plant.close()
    # What the analytics line promised: numbers, the text tag left out.
    df = namespace["df"]
    smooth = df.bifrost.rolling_mean(window=20)
    assert "line.recipe" in df.columns
    assert "line.recipe" not in smooth.columns
    assert "tank.level" in smooth.columns


def test_accessors_work_on_numbers_and_booleans_and_leave_text_out():
    pd = pytest.importorskip("pandas")
    np = pytest.importorskip("numpy")
    pytest.importorskip("bifrost.analytics")
    index = pd.date_range("2026-11-29", periods=6, freq="100ms", tz="UTC")
    df = pd.DataFrame(
        {
            "level": np.arange(6.0),
            "count": pd.array([1, 2, None, 4, 5, 6], dtype="Int64"),
            "alarm": pd.array([True, False, None, True, True, False], dtype="boolean"),
            "recipe": ["PART-4711"] * 6,
        },
        index=index,
    )
    df.attrs["units"] = {"level": "m"}
    out = df.bifrost.rolling_mean(window=2)
    assert list(out.columns) == ["level", "count", "alarm"]
    assert out["alarm"].iloc[1] == pytest.approx(0.5)  # True, False as 1, 0
    assert np.isnan(out["alarm"].iloc[2])  # NA stays missing
    assert out.attrs["units"] == {"level": "m"}
    with pytest.raises(bf.ArgumentTypeError, match=r"rolling_mean\(\).*'recipe' \(str"):
        df[["recipe"]].bifrost.rolling_mean(window=2)
