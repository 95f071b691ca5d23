"""Packaging, checked without building: the distributions' pyprojects, versions, entry
points, the conda environment, the Dockerfiles and the layout the README promises.

Building and installing every distribution in fresh venvs is tests/packaging/.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ROOT / "packages"
DISTRIBUTIONS = [
    "bifrost-core",
    "bifrost-iot",
    "bifrost-opcua",
    "bifrost-analytics",
    "bifrost-cloud",
    "bifrost-cli",
    "bifrost-all",
]
NOT_PACKAGES = {"python", "pip", "rust"}


def _name(requirement: str) -> str:
    name = re.split(r"[\s<>=!~;\[]", requirement.strip(), maxsplit=1)[0]
    return name.lower().replace("_", "-")


def _toml(path: Path) -> dict:
    return tomllib.loads(path.read_text())


def _root() -> dict:
    return _toml(ROOT / "pyproject.toml")


def _dist(name: str) -> dict:
    return _toml(PACKAGES / name / "pyproject.toml")


def _next_minor(version: str) -> str:
    major, minor = version.split(".")[:2]
    return f"{major}.{int(minor) + 1}"


def test_packages_holds_exactly_the_seven_distributions():
    found = sorted(p.parent.name for p in PACKAGES.glob("*/pyproject.toml"))
    assert found == sorted(DISTRIBUTIONS)
    for name in DISTRIBUTIONS:
        assert _dist(name)["project"]["name"] == name


def test_versions_are_lock_step_and_pins_follow_the_policy():
    # docs/versioning.md: one version for every distribution; bifrost-all and the main
    # distribution's extras pin it exactly; the others need a compatible range.
    version = _root()["project"]["version"]
    upper = _next_minor(version)
    for name in DISTRIBUTIONS:
        project = _dist(name)["project"]
        assert project["version"] == version, name
        for requirement in project.get("dependencies", []):
            if _name(requirement).startswith("bifrost-"):
                pin = requirement.split("]")[-1] if "]" in requirement else requirement
                spec = pin[len(_name(pin)) :] if "[" not in requirement else pin
                if name == "bifrost-all":
                    assert spec == f"=={version}", requirement
                else:
                    assert spec == f">={version},<{upper}", requirement
    all_requirements = {_name(r) for r in _dist("bifrost-all")["project"]["dependencies"]}
    assert all_requirements == set(DISTRIBUTIONS) - {"bifrost-all"}
    extras = _dist("bifrost-iot")["project"]["optional-dependencies"]
    for extra, distribution in [
        ("opcua", "bifrost-opcua"),
        ("analytics", "bifrost-analytics"),
        ("cloud", "bifrost-cloud"),
        ("cli", "bifrost-cli"),
        ("all", "bifrost-all"),
    ]:
        assert extras[extra] == [f"{distribution}=={version}"]
    assert "jupyter" in extras
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert f"## {version}" in changelog
    assert (ROOT / "docs" / "versioning.md").exists()


def test_the_core_needs_no_numpy_and_the_main_distribution_no_parquet_or_xarray():
    core = {_name(r) for r in _dist("bifrost-core")["project"]["dependencies"]}
    assert core == {"pydantic", "pyyaml", "typing-extensions"}
    main = {_name(r) for r in _dist("bifrost-iot")["project"]["dependencies"]}
    assert {"bifrost-core", "numpy", "pandas", "pymodbus", "python-snap7"} <= main
    assert not main & {"pyarrow", "xarray", "scipy", "asyncua", "typer", "rich"}


def test_one_distribution_owns_the_script_and_every_entry_point_is_a_distributions():
    root = _root()["project"]
    # Entry points in the workspace root would work in development and be missing from
    # every wheel: they belong in packages/<distribution>/pyproject.toml.
    assert "scripts" not in root
    assert "entry-points" not in root
    owners = [n for n in DISTRIBUTIONS if "bifrost" in _dist(n)["project"].get("scripts", {})]
    assert owners == ["bifrost-cli"]
    assert _dist("bifrost-cli")["project"]["scripts"]["bifrost"] == "bifrost.cli:main"


def test_the_protocol_registry_names_the_distributions_that_serve_each_scheme():
    from bifrost.protocols.registry import _DISTRIBUTIONS

    declared = {}
    for name in DISTRIBUTIONS:
        group = _dist(name)["project"].get("entry-points", {}).get("bifrost.protocols", {})
        for scheme, target in group.items():
            assert scheme not in declared, scheme
            declared[scheme] = name
            module = target.split(":")[0]
            assert (ROOT / Path(*module.split(".")) / "__init__.py").exists(), target
    for scheme, distribution in _DISTRIBUTIONS.items():
        assert distribution in DISTRIBUTIONS, scheme
        if scheme in declared:
            assert declared[scheme] == distribution, scheme


def _includes(name: str) -> list[str]:
    return _dist(name)["tool"]["hatch"]["build"]["include"]


def test_the_missing_part_table_agrees_with_the_distributions_files():
    from bifrost._extras import PARTS

    for part, distribution in PARTS.items():
        path = "/src/" + part.replace(".", "/")
        if distribution == "bifrost-analytics":
            assert part == "bifrost.analytics"
            continue
        assert f"{path}/" in _includes(distribution) or f"{path}.py" in _includes(distribution), (
            part
        )


def test_the_analytics_wheel_and_the_in_place_build_compile_the_same_module():
    analytics = _dist("bifrost-analytics")["tool"]["maturin"]
    development = _root()["tool"]["maturin"]
    assert analytics["module-name"] == development["module-name"] == "bifrost._core"
    assert analytics["features"] == development["features"]
    assert "pyo3/abi3-py311" in analytics["features"]
    manifest = (PACKAGES / "bifrost-analytics" / analytics["manifest-path"]).resolve()
    assert manifest == (ROOT / development["manifest-path"]).resolve()
    # maturin needs a folder holding __init__.py; the wheel leaves it out (bifrost-core's).
    assert {"path": "bifrost/__init__.py", "format": "wheel"} in analytics["exclude"]
    staged = PACKAGES / "bifrost-analytics" / "src" / "bifrost"
    assert (staged / "analytics").resolve() == ROOT / "bifrost" / "analytics"
    assert (staged / "_core.pyi").resolve() == ROOT / "bifrost" / "_core.pyi"


@pytest.mark.parametrize("name", [n for n in DISTRIBUTIONS if n != "bifrost-analytics"])
def test_pure_python_distributions_take_their_files_from_the_one_tree(name: str):
    project = PACKAGES / name
    assert _dist(name)["build-system"]["build-backend"] == "hatchling.build"
    if name != "bifrost-all":
        assert (project / "src" / "bifrost").resolve() == ROOT / "bifrost"
        wheel = _dist(name)["tool"]["hatch"]["build"]["targets"]["wheel"]
        # `packages` would make hatchling ship every file of src/bifrost.
        assert "packages" not in wheel
        assert wheel["sources"] == ["src"]
        assert "/tests/" in wheel["exclude"]


@pytest.mark.parametrize("name", DISTRIBUTIONS)
def test_every_distribution_carries_the_license(name: str):
    project = _dist(name)["project"]
    assert project["license"] == "Apache-2.0"
    assert project["license-files"] == ["LICENSE"]
    assert (PACKAGES / name / "LICENSE").read_bytes() == (ROOT / "LICENSE").read_bytes()
    assert "Apache License" in (ROOT / "LICENSE").read_text()
    assert (PACKAGES / name / "README.md").exists()


def test_environment_yml_lists_the_same_dependencies_as_the_development_install():
    wanted = {
        _name(r)
        for extra in _root()["project"]["optional-dependencies"].values()
        for r in extra
        if not _name(r).startswith("bifrost-")
    }
    for name in DISTRIBUTIONS:
        project = _dist(name)["project"]
        requirements = list(project.get("dependencies", []))
        for extra in project.get("optional-dependencies", {}).values():
            requirements += extra
        wanted |= {_name(r) for r in requirements if not _name(r).startswith("bifrost-")}
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    listed = {_name(d) for d in env["dependencies"] if isinstance(d, str)} - NOT_PACKAGES
    assert listed == wanted
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert "-e .[dev]" in pip_section
    assert all(f"-e ./packages/{n}" in " ".join(pip_section) for n in ("bifrost-core",))


def test_the_compiled_module_is_private_and_typed():
    assert (ROOT / "bifrost" / "_core.pyi").exists()
    assert (ROOT / "bifrost" / "py.typed").exists()


def test_the_readme_opens_with_the_two_commands_ci_runs():
    readme = (ROOT / "README.md").read_text()
    first_block = readme.split("```bash", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in first_block.strip().splitlines()]
    assert commands == ["make demo", "make test"]
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci
    # Every install command the README prints names a real distribution.
    for command in re.findall(r"pip install ([^\n`]+)", readme):
        for word in (w.strip("\"'") for w in command.split()):
            if word.startswith("-") or "/" in word or word.startswith("."):
                continue
            assert _name(word) in DISTRIBUTIONS, command


def _dockerfile(name: str):
    from dockerfile_parse import DockerfileParser

    with (ROOT / name).open("rb") as dockerfile:
        parser = DockerfileParser(fileobj=dockerfile)
        return parser.structure, parser.baseimage


def _installs(structure: list[dict]) -> str:
    return " ".join(i["value"] for i in structure if i["instruction"] == "RUN")


def test_the_edge_image_runs_the_gateway_of_main_and_cloud_as_a_user_from_a_mounted_config():
    structure, base = _dockerfile("Dockerfile.edge")
    assert re.fullmatch(r"python:3\.1[1-9]-slim(-\w+)?", base), base
    runs = _installs(structure)
    assert "bifrost-iot" in runs
    assert "bifrost-cloud" in runs
    users = [i["value"] for i in structure if i["instruction"] == "USER"]
    assert users
    assert users[-1].split(":")[0] not in ("root", "0")
    assert any(i["instruction"] == "VOLUME" and "/config" in i["value"] for i in structure)
    (entry,) = [json.loads(i["value"]) for i in structure if i["instruction"] == "CMD"]
    assert entry[:2] == ["python", "-m"]
    module = ROOT / Path(*entry[2].split("."))
    assert module.with_suffix(".py").exists(), entry
    assert 'if __name__ == "__main__"' in module.with_suffix(".py").read_text()
    assert entry[2].startswith("bifrost.cloud.")  # shipped by bifrost-cloud
    assert entry[3].startswith("/config/")


def test_the_dev_image_installs_everything_and_jupyterlab():
    structure, base = _dockerfile("Dockerfile.dev")
    assert base.startswith("python:3.1")
    runs = _installs(structure)
    assert "bifrost-all" in runs
    assert "jupyterlab" in runs
    entry = " ".join(i["value"] for i in structure if i["instruction"] in ("ENTRYPOINT", "CMD"))
    assert "jupyter" in entry
    assert "lab" in entry


@pytest.mark.parametrize(
    "imports",
    [
        "import pandas as pd, bifrost as bf, bifrost.analytics",
        "import pandas as pd, bifrost as bf",
        "import bifrost as bf, pandas as pd; bf.connect",
        "import bifrost as bf, bifrost.analytics, pandas as pd; bf.connect",
    ],
)
def test_the_accessor_works_whatever_was_imported_first(imports: str):
    import subprocess
    import sys

    code = (
        f"{imports}\n"
        "import numpy as np, pandas as pd\n"
        "s = pd.Series(np.arange(4.0))\n"
        "print(s.bifrost.rolling_mean(2).tolist(), s.bifrost is s.bifrost)\n"
    )
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", code],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert done.stdout.strip() == "[nan, 0.5, 1.5, 2.5] True", done.stderr


def test_import_bifrost_loads_no_numpy_pandas_xarray_or_pyarrow():
    import subprocess
    import sys

    code = (
        "import sys, bifrost\n"
        "print(sorted(m for m in ('numpy', 'pandas', 'xarray', 'pyarrow', 'scipy') "
        "if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60
    )
    assert done.stdout.strip() == "[]", done.stderr


def test_every_cli_plugin_entry_point_names_a_command_that_runs():
    import importlib

    import typer
    from typer.testing import CliRunner

    # The module (bifrost.cli's `app` attribute is the Typer app itself).
    cli = importlib.import_module("bifrost.cli.app")

    app = typer.Typer()
    app.command()(lambda: None)  # two commands: typer makes a group, as bifrost's app is
    declared = {}
    for name in DISTRIBUTIONS:
        group = _dist(name)["project"].get("entry-points", {}).get("bifrost.cli", {})
        for command, target in group.items():
            module, _, attribute = target.partition(":")
            loaded = getattr(importlib.import_module(module), attribute)
            cli._add_main(app, command, lambda loaded=loaded: loaded, f"From {name}.")
            declared[command] = name
    assert declared == {"gateway": "bifrost-cloud"}
    done = CliRunner().invoke(app, ["gateway", "--help"])
    assert done.exit_code == 0, done.output
    assert "config" in done.output  # the gateway's own (argparse) help
    assert "From bifrost-cloud." in CliRunner().invoke(app, ["--help"]).output
