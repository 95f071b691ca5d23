"""Each distribution built (sdist, then the wheel from it) and installed alone.

Profiles: bifrost-core alone and the edge profile (bifrost-iot) always; OPC UA,
analytics, the CLI alone, cloud and bifrost-all in ``make test-packaging``.
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
Built = Venv = Any

VERSION = "0.2.0"
ALL = [
    "bifrost-core",
    "bifrost-iot",
    "bifrost-opcua",
    "bifrost-analytics",
    "bifrost-cloud",
    "bifrost-cli",
    "bifrost-all",
]
BUDGETS_MB = {"core": 30, "edge": 175}


def check_profile(venv: Venv) -> None:
    """Checks every profile passes: pip check, the wheels' bifrost, size and import time."""
    done = venv.pip("check")
    assert done.returncode == 0, done.stdout + done.stderr
    located = venv.py("import bifrost; print(bifrost.__file__, bifrost.__version__)")
    assert located.returncode == 0, located.stderr
    where, version = located.stdout.split()
    assert where.startswith(str(venv.site_packages)), where
    assert version == VERSION
    timing = venv.py(
        "import time; t = time.perf_counter(); import bifrost; print(time.perf_counter() - t)"
    )
    venv.record["import_bifrost_s"] = float(timing.stdout)
    venv.record["site_packages_mb"] = round(venv.size_mb(), 1)
    budget = BUDGETS_MB.get(venv.name)
    if budget is not None:
        assert venv.record["site_packages_mb"] < budget, venv.record


def test_no_file_is_owned_twice_and_every_file_is_shipped(built: Built):
    owners: dict[str, str] = {}
    for name in built.wheels:
        for path in built.files(name):
            assert path not in owners, f"{path}: {owners[path]} and {name}"
            owners[path] = name
    tracked = subprocess.run(
        ["git", "ls-files", "bifrost"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    assert tracked
    missing = sorted(set(tracked) - set(owners))
    assert not missing, f"in no distribution (add them to a packages/*/pyproject.toml): {missing}"
    assert {p for p in owners if p.startswith("bifrost/_core.")} == {
        "bifrost/_core.abi3.so",
        "bifrost/_core.pyi",
    }
    assert owners["bifrost/__init__.py"] == owners["bifrost/protocols/__init__.py"]
    assert owners["bifrost/__init__.py"] == "bifrost-core"
    assert owners["bifrost/_core.abi3.so"] == "bifrost-analytics"


def test_a_wheel_built_from_the_repository_equals_the_one_built_from_the_sdist(
    built: Built, tmp_path
):
    # What `pip install packages/<distribution>` does: no sdist in between.
    for name in built.wheels:
        if name == "bifrost-analytics":
            continue  # maturin: its own include list, checked through the sdist build
        done = subprocess.run(
            [sys.executable, "-m", "build", "--no-isolation", "--wheel", "--outdir",
             str(tmp_path), str(ROOT / "packages" / name)],
            capture_output=True, text=True, check=False, timeout=300,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-2000:]
        (direct,) = tmp_path.glob(f"{name.replace('-', '_')}-*.whl")
        with zipfile.ZipFile(direct) as wheel:
            files = {n for n in wheel.namelist() if ".dist-info/" not in n}
        assert files == built.files(name), name
        direct.unlink()


def test_wheels_are_pure_python_but_one_abi3_and_carry_no_tests_or_docs(built: Built):
    for name, wheel in built.wheels.items():
        tag = wheel.name.removesuffix(".whl").split("-", 2)[2]
        if name == "bifrost-analytics":
            assert tag.startswith("cp311-abi3-"), wheel.name
        else:
            assert tag == "py3-none-any", wheel.name
        for path in built.files(name):
            assert path.startswith("bifrost/"), (name, path)
            assert not path.startswith(("bifrost/tests", "tests/", "docs/", "tutorials/"))


def test_sdists_include_tests_and_the_license(built: Built):
    for name, sdist in built.sdists.items():
        with tarfile.open(sdist) as archive:
            names = archive.getnames()
            assert not [m.name for m in archive.getmembers() if m.issym() or m.islnk()], name
        top = names[0].split("/")[0]
        assert f"{top}/LICENSE" in names, name
        if name != "bifrost-all":
            assert any("/tests/" in n and n.endswith(".py") for n in names), name
    with tarfile.open(built.sdists["bifrost-analytics"]) as archive:
        names = archive.getnames()
    assert any(n.endswith("rust/bifrost-dsp/Cargo.toml") for n in names)


def test_the_analytics_sdist_without_cargo_fails_at_once_saying_so(built: Built, tmp_path):
    # MATURIN_NO_INSTALL_RUST: no silent download of a ~700 MB toolchain.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python").symlink_to(sys.executable)
    env = {"PATH": str(bin_dir), "MATURIN_NO_INSTALL_RUST": "1", "HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "--wheel-dir", str(tmp_path), str(built.sdists["bifrost-analytics"])],
        capture_output=True, text=True, timeout=300, env=env, check=False,
    )  # fmt: skip
    assert done.returncode != 0
    assert "cargo" in (done.stdout + done.stderr).lower()


def test_core_alone_imports_without_numpy(venvs):
    venv = venvs("core", f"bifrost-core=={VERSION}")
    check_profile(venv)
    done = venv.py(
        "import sys, bifrost as bf\n"
        "from bifrost.protocols.modbus.address import parse_modbus_address as modbus\n"
        "from bifrost.protocols.s7.address import parse_s7_address as s7\n"
        "from bifrost.protocols.registry import known_schemes\n"
        "t = bf.TagTable([bf.Tag('level', 'hr:0:float32', unit='m')])\n"
        "print(modbus('hr:0:float32').count, s7('DB1.DBD4:REAL').offset, "
        "t['level'].unit, known_schemes())\n"
        "assert 'numpy' not in sys.modules and 'pandas' not in sys.modules\n"
        "try:\n"
        "    import numpy\n"
        "except ImportError:\n"
        "    print('no numpy')\n"
        "try:\n"
        "    bf.connect('modbus://127.0.0.1:5020')\n"
        "except bf.MissingDependency as exc:\n"
        "    print(exc)\n"
    )
    assert done.returncode == 0, done.stderr
    assert "2 4 m []" in done.stdout
    assert "no numpy" in done.stdout
    assert "install it with: pip install bifrost-iot" in done.stdout


EDGE_SMOKE = """
import sys
import bifrost as bf
assert "pandas" not in sys.modules
plant = bf.sim.Plant(seed=1, realtime=False)
plant.serve(modbus=0)
plant.step(100)
with plant.connect("modbus") as plc:
    frame = plc.read(["tank.level", "reactor.temperature", "hr:12"])
print(frame["quality"].tolist(), round(float(frame.loc["tank.level", "value"]), 1) > 0)
plant.close()
"""


def test_edge_profile_reads_the_plant_over_modbus(venvs):
    venv = venvs("edge", f"bifrost-iot=={VERSION}")
    check_profile(venv)
    done = venv.py(EDGE_SMOKE)
    assert done.returncode == 0, done.stderr
    assert "['good', 'good', 'good'] True" in done.stdout


MISSING = {
    "opcua connect": (
        "bf.connect('opc.tcp://127.0.0.1:4840').close()",
        "pip install bifrost-opcua",
    ),
    "sim --opcua": ("bf.sim.Plant().serve(opcua=0)", "pip install bifrost-opcua"),
    "import analytics": ("import bifrost.analytics", "pip install bifrost-analytics"),
    "accessor": (
        "import pandas as pd; bf.connect; pd.Series([1.0]).bifrost.rolling_mean(1)",
        "pip install bifrost-analytics",
    ),
    "parquet": (
        "from bifrost.testing import memory_device\n"
        "d = memory_device('m', {'x': 1.0})\n"
        "bf.connect(d.url).record(['mem:x'], interval='10ms', duration='50ms', path='r.parquet')",
        'pip install "bifrost-iot[parquet]"',
    ),
    "xarray": (
        "from bifrost.testing import memory_device\n"
        "d = memory_device('m', {'x': 1.0})\n"
        "bf.connect(d.url).record(['mem:x'], interval='10ms', duration='50ms').to_xarray()",
        'pip install "bifrost-iot[xarray]"',
    ),
    "keyring": ("bf.secret('keyring:plant/opcua').reveal()", 'pip install "bifrost-core[keyring]"'),
}


@pytest.mark.parametrize("case", sorted(MISSING))
def test_a_missing_part_names_its_install_command(venvs, case: str):
    venv = venvs("edge", f"bifrost-iot=={VERSION}")
    code, command = MISSING[case]
    done = venv.py(
        "import bifrost as bf\n"
        "try:\n"
        + "".join(f"    {line}\n" for line in code.splitlines())
        + "except (ImportError, bf.BifrostError) as exc:\n"
        "    print(type(exc).__name__, exc)\n"
    )
    assert done.returncode == 0, done.stderr
    # The registry answers a URL scheme no installed protocol serves with this error.
    kind = "ConfigurationError" if case == "opcua connect" else "MissingDependency"
    assert done.stdout.startswith(kind), done.stdout
    assert command in done.stdout, done.stdout


def test_python_m_bifrost_without_the_cli_names_bifrost_cli(venvs):
    venv = venvs("edge", f"bifrost-iot=={VERSION}")
    done = venv.py("import runpy; runpy.run_module('bifrost', run_name='__main__')")
    assert done.returncode == 1
    assert "install it with: pip install bifrost-cli" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.usefixtures("matrix_only")
def test_opcua_profile_reads_the_plant_over_opcua(venvs):
    venv = venvs("opcua", f"bifrost-iot[opcua]=={VERSION}")
    check_profile(venv)
    done = venv.py(
        "import bifrost as bf\n"
        "plant = bf.sim.Plant(seed=1)\n"
        "plant.serve(opcua=0)\n"
        "with plant.connect('opcua') as plc:\n"
        "    print(plc.read(['tank.level'])['quality'].tolist())\n"
        "plant.close()\n"
    )
    assert done.returncode == 0, done.stderr
    assert "['good']" in done.stdout


@pytest.mark.usefixtures("matrix_only")
def test_analytics_profile_runs_the_compiled_kernels_and_the_accessor(venvs):
    venv = venvs("analytics", f"bifrost-analytics=={VERSION}")
    check_profile(venv)
    code = (
        "import numpy as np, pandas as pd\n"
        "import bifrost as bf, bifrost.analytics as bfa\n"
        "print(bfa.backend(), pd.Series(np.arange(4.0)).bifrost.rolling_mean(2).tolist())\n"
    )
    done = venv.py(code)
    assert done.returncode == 0, done.stderr
    assert "rust [nan, 0.5, 1.5, 2.5]" in done.stdout
    twin = venv.py(code, BIFROST_NO_RUST="1")
    assert "numpy [nan, 0.5, 1.5, 2.5]" in twin.stdout, twin.stderr


@pytest.mark.usefixtures("matrix_only")
def test_cli_alone_gives_a_working_bifrost_command(venvs, tmp_path):
    venv = venvs("cli", f"bifrost-cli=={VERSION}")
    check_profile(venv)
    helped = venv.script("bifrost", "--help")
    assert helped.returncode == 0, helped.stderr
    for command in ("read", "browse", "record", "sim", "demo"):
        assert command in helped.stdout
    demo = venv.script("bifrost", "demo", "--seconds", "1", "--out", str(tmp_path))
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert (tmp_path / "recording.parquet").stat().st_size > 0


@pytest.mark.usefixtures("matrix_only")
def test_cloud_profile_imports_its_modules(venvs):
    venv = venvs("cloud", f"bifrost-cloud=={VERSION}")
    check_profile(venv)
    done = venv.py(
        "import pkgutil, importlib, bifrost.cloud as c\n"
        "names = [m.name for m in pkgutil.iter_modules(c.__path__)]\n"
        "[importlib.import_module('bifrost.cloud.' + n) for n in names]\n"
        "print(len(names))\n"
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.usefixtures("matrix_only")
def test_all_installs_every_distribution_of_the_release(venvs):
    venv = venvs("all", f"bifrost-all=={VERSION}")
    check_profile(venv)
    done = venv.py(
        "from importlib.metadata import version\n"
        f"print(sorted({{version(d) for d in {sorted(ALL)!r}}}))\n"
        "import bifrost.analytics, bifrost.cloud, bifrost.cli, bifrost.protocols.opcua.driver\n"
        "import bifrost.jupyter\n"
    )
    assert done.returncode == 0, done.stderr
    assert f"['{VERSION}']" in done.stdout
