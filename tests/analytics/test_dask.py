"""Analytics on dask-backed xarray objects, on a dask.distributed cluster."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import bifrost.analytics as bfa

distributed = pytest.importorskip("distributed")
pytest.importorskip("dask.array")


@pytest.fixture(scope="module")
def client() -> Iterator[object]:
    # Light on purpose: other test runs share the two cores.
    with (
        distributed.LocalCluster(
            n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as c,
    ):
        yield c


def chunked_array(n: int = 20_000, chunk: int = 3_000) -> xr.DataArray:
    g = np.random.default_rng(12)
    data = g.normal(size=(3, n)) * 5 + 1e3
    data[1, 4_321] = np.nan
    array = xr.DataArray(
        data,
        dims=("channel", "time"),
        coords={
            "time": pd.date_range("2024-01-01", periods=n, freq="ms"),
            "channel": ["a", "b", "c"],
        },
        name="vibration",
        attrs={"unit": "mm/s"},
    )
    return array.chunk({"time": chunk, "channel": 1})


@pytest.mark.parametrize("name", ["rolling_mean", "rolling_std", "rolling_min", "rolling_max"])
@pytest.mark.parametrize("window", [1, 7, 1000, 3500])
def test_windowed_kernel_on_cluster_matches_in_memory(
    client: object, name: str, window: int
) -> None:
    lazy = chunked_array()
    result = getattr(bfa, name)(lazy, window)
    assert result.chunks is not None, "stays lazy until computed"
    computed = result.compute()
    expected = getattr(bfa, name)(lazy.compute(), window)
    # Bit for bit: the overlap keeps every window's samples and their block alignment.
    np.testing.assert_array_equal(computed.values, expected.values)
    xr.testing.assert_identical(computed, expected)


def test_recursive_kernels_and_accessor_on_cluster(client: object) -> None:
    lazy = chunked_array().fillna(0.0)
    filtered = lazy.bifrost.butter_filter(1000.0, 50.0).compute()
    np.testing.assert_array_equal(
        filtered.values, bfa.butter_filter(lazy.compute(), 1000.0, 50.0).values
    )
    smoothed = bfa.ewma(lazy, alpha=0.1).compute()
    np.testing.assert_array_equal(smoothed.values, bfa.ewma(lazy.compute(), alpha=0.1).values)
    ds = lazy.to_dataset().bifrost.rolling_mean(window=50).compute()
    np.testing.assert_array_equal(
        ds["vibration"].values, bfa.rolling_mean(lazy.compute(), 50).values
    )
