"""The public surface: exports, sync/async parity, one exception tree, helpful extras."""

from __future__ import annotations

import inspect
import subprocess
import sys
import textwrap

import pytest

import bifrost as bf
from bifrost.aio import AsyncConnection
from bifrost.connection import Connection

SYNC_ONLY = {"aio"}
NO_IO = {
    "resolve",
    "explain",
}  # planning only: plain methods on both  # the sync facade exposes the async connection it wraps


def public_members(cls: type) -> dict[str, object]:
    return {name: member for name, member in vars(cls).items() if not name.startswith("_")}


def test_all_is_sorted_and_complete():
    assert bf.__all__ == sorted(bf.__all__)
    for name in bf.__all__:
        assert getattr(bf, name) is not None, name
    # Every public, non-module name defined by the package is exported.
    public = {
        name
        for name, value in vars(bf).items()
        if not name.startswith("_")
        and not inspect.ismodule(value)
        and not isinstance(value, bool)
        and getattr(value, "__module__", "bifrost").startswith("bifrost")
    }
    assert public <= set(bf.__all__)


def test_sync_and_async_connections_have_the_same_methods_and_signatures():
    sync_members = public_members(Connection)
    async_members = public_members(AsyncConnection)
    assert set(sync_members) - SYNC_ONLY == set(async_members)
    for name, member in async_members.items():
        twin = sync_members[name]
        if isinstance(member, property):
            assert isinstance(twin, property), name
            continue
        assert inspect.iscoroutinefunction(member) or name in NO_IO, name
        assert not inspect.iscoroutinefunction(twin), name
        async_params = list(inspect.signature(member).parameters.values())
        sync_params = list(inspect.signature(twin).parameters.values())
        assert sync_params == async_params, name


def test_connect_functions_share_a_signature():
    sync = inspect.signature(bf.connect)
    asynchronous = inspect.signature(bf.aio.connect)
    assert sync.parameters == asynchronous.parameters


def test_one_exception_tree():
    errors = [
        bf.AddressError,
        bf.ConfigurationError,
        bf.ConnectionError,
        bf.MissingDependency,
        bf.ProtocolError,
        bf.TagNotFound,
        bf.TimeoutError,
        bf.ValueOutOfRange,
        bf.WriteNotAllowed,
    ]
    for error in errors:
        assert issubclass(error, bf.BifrostError), error
    assert issubclass(bf.TimeoutError, bf.ConnectionError)
    assert issubclass(bf.TimeoutError, TimeoutError)
    assert issubclass(bf.AddressError, ValueError)


@pytest.mark.parametrize(
    ("module", "command", "use"),
    [
        ("typer", "pip install bifrost-cli", "from bifrost.cli import main; main()"),
        (
            "pyarrow",
            'pip install "bifrost-iot[parquet]"',
            "from bifrost._extras import require; require('pyarrow', 'Parquet')",
        ),
        (
            "asyncua",
            "pip install bifrost-opcua",
            "from bifrost._extras import require; require('asyncua', 'OPC UA')",
        ),
    ],
)
def test_a_missing_extra_names_the_pip_command(module: str, command: str, use: str):
    # Hide the package in a fresh interpreter, as if it were not installed.
    code = textwrap.dedent(
        f"""
        import sys
        sys.modules[{module!r}] = None
        try:
            {use}
        except ImportError as exc:
            print(type(exc).__name__, exc)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60
    )
    assert command in done.stdout, done.stdout + done.stderr
    assert "MissingDependency" in done.stdout


def test_import_bifrost_registers_the_accessor_without_optional_extras():
    code = (
        "import sys\n"
        "sys.modules['scipy'] = None\n"
        "sys.modules['dask'] = None\n"
        "import numpy as np, pandas as pd, bifrost\n"
        "print(pd.Series(np.arange(4.0)).bifrost.rolling_mean(2).tolist())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60
    )
    assert done.stdout.strip() == "[nan, 0.5, 1.5, 2.5]", done.stderr
