"""Packaging: extras, the conda environment, and the layout the README promises."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
NOT_PACKAGES = {"python", "pip", "rust"}


def _name(requirement: str) -> str:
    name = re.split(r"[\s<>=!~;\[]", requirement.strip(), maxsplit=1)[0]
    return name.lower().replace("_", "-")


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_environment_yml_lists_the_same_dependencies_as_pyproject():
    project = _pyproject()["project"]
    wanted = {_name(r) for r in project["dependencies"]}
    for requirements in project["optional-dependencies"].values():
        wanted |= {_name(r) for r in requirements if not r.startswith("bifrost[")}
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    listed = {_name(d) for d in env["dependencies"] if isinstance(d, str)} - NOT_PACKAGES
    assert listed == wanted
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert "-e .[all,dev]" in pip_section


def test_extras_follow_the_hybrid_plan():
    extras = _pyproject()["project"]["optional-dependencies"]
    assert {"opcua", "cloud", "jupyter", "analytics", "cli", "all", "dev"} <= set(extras)
    assert extras["all"] == ["bifrost[opcua,cloud,jupyter,analytics,cli]"]
    core = {_name(r) for r in _pyproject()["project"]["dependencies"]}
    # Both pure-Python PLC drivers and the frame libraries are in the core.
    assert {"pymodbus", "python-snap7", "pandas", "xarray"} <= core
    assert "asyncua" not in core


def test_the_compiled_module_is_private_and_typed():
    maturin = _pyproject()["tool"]["maturin"]
    assert maturin["module-name"] == "bifrost._core"
    assert (ROOT / "bifrost" / "_core.pyi").exists()
    assert (ROOT / "bifrost" / "py.typed").exists()


def test_the_readme_opens_with_the_two_commands_ci_runs():
    readme = (ROOT / "README.md").read_text()
    first_block = readme.split("```bash", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in first_block.strip().splitlines()]
    assert commands == ["make demo", "make test"]
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci
