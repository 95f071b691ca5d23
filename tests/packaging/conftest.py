"""Every distribution built once per session, and fresh venvs that install only the wheels.

The venvs are made without pip (the outer pip installs into them with ``--python``), run
with ``-I`` from a folder outside the repository: nothing of the source tree is on their
``sys.path``. Third-party wheels come from PyPI through pip's cache.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "packaging"
DISTRIBUTIONS = [
    "bifrost-core",
    "bifrost-iot",
    "bifrost-opcua",
    "bifrost-analytics",
    "bifrost-cloud",
    "bifrost-cli",
    "bifrost-all",
]
# `make test` runs the two profiles that matter most (bifrost-core alone, the edge
# profile); `make test-packaging` sets this for the rest of the matrix.
MATRIX = os.environ.get("BIFROST_PACKAGING_MATRIX") == "1"


@pytest.fixture
def matrix_only() -> None:
    """Skip unless the full profile matrix runs (make test-packaging)."""
    if not MATRIX:
        pytest.skip("the full profile matrix: make test-packaging")


def run(*args: str | Path, timeout: float = 900, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(a) for a in args], check=False, capture_output=True, text=True, timeout=timeout,
        **kwargs,
    )  # fmt: skip


@dataclass
class Built:
    wheels: dict[str, Path]
    sdists: dict[str, Path]
    folder: Path

    def files(self, distribution: str) -> set[str]:
        with zipfile.ZipFile(self.wheels[distribution]) as wheel:
            return {n for n in wheel.namelist() if ".dist-info/" not in n}


@pytest.fixture(scope="session")
def built() -> Built:
    """Each distribution's sdist, and its wheel built from that sdist (python -m build)."""
    folder = ARTIFACTS / "dist"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    env = dict(os.environ, MATURIN_NO_INSTALL_RUST="1")
    env.setdefault("CARGO_TARGET_DIR", str(ROOT / "rust" / "target"))
    for name in DISTRIBUTIONS:
        done = run(
            sys.executable, "-m", "build", "--no-isolation", "--outdir", folder,
            ROOT / "packages" / name, env=env,
        )  # fmt: skip
        assert done.returncode == 0, f"{name}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    wheels, sdists = {}, {}
    for name in DISTRIBUTIONS:
        stem = name.replace("-", "_")
        (wheels[name],) = folder.glob(f"{stem}-*.whl")
        (sdists[name],) = folder.glob(f"{stem}-*.tar.gz")
    return Built(wheels, sdists, folder)


@dataclass
class Venv:
    name: str
    path: Path
    install_seconds: float
    record: dict = field(default_factory=dict)

    @property
    def python(self) -> Path:
        return self.path / "bin" / "python"

    @property
    def site_packages(self) -> Path:
        (found,) = (self.path / "lib").glob("python3*/site-packages")
        return found

    def size_mb(self) -> float:
        total = sum(f.stat().st_size for f in self.site_packages.rglob("*") if f.is_file())
        return total / 1e6

    def py(self, code: str, **env: str) -> subprocess.CompletedProcess:
        """Run ``code`` isolated (-I: no cwd, no PYTHONPATH) from outside the repository."""
        return run(
            self.python, "-I", "-c", code, cwd=self.path, env={**_clean_env(), **env}, timeout=300
        )

    def pip(self, *args: str) -> subprocess.CompletedProcess:
        return run(sys.executable, "-m", "pip", "--python", self.python, *args)

    def script(self, name: str, *args: str) -> subprocess.CompletedProcess:
        return run(self.path / "bin" / name, *args, cwd=self.path, env=_clean_env(), timeout=300)


def _clean_env() -> dict[str, str]:
    drop = {"PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME"}
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env["PATH"] = os.pathsep.join(
        p for p in env.get("PATH", "").split(os.pathsep) if ".venv" not in p
    )
    return env


@pytest.fixture(scope="session")
def venvs(built: Built):
    """``venvs(name, *requirements)``: a fresh venv with only these (and their dependencies)."""
    made: dict[str, Venv] = {}
    report = ARTIFACTS / "profiles.json"

    def make(name: str, *requirements: str) -> Venv:
        if name in made:
            return made[name]
        path = ARTIFACTS / "venvs" / name
        shutil.rmtree(path, ignore_errors=True)
        done = run(sys.executable, "-m", "venv", "--without-pip", path)
        assert done.returncode == 0, done.stderr
        started = time.perf_counter()
        done = run(
            sys.executable, "-m", "pip", "--python", path / "bin" / "python", "install",
            "--quiet", "--disable-pip-version-check", "--find-links", built.folder,
            "--only-binary", "bifrost-analytics", *requirements,
        )  # fmt: skip
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        venv = Venv(name, path, time.perf_counter() - started)
        venv.record = {"requirements": list(requirements), "install_s": venv.install_seconds}
        made[name] = venv
        return venv

    yield make
    # Sizes and times of this run, for the README's table and the issue note.
    previous = json.loads(report.read_text()) if report.exists() else {}
    previous.update({v.name: v.record for v in made.values()})
    report.write_text(json.dumps(previous, indent=2, sort_keys=True))
