"""Apply 1-D kernels along time to NumPy, pandas and (dask-backed) xarray objects.

Kept apart from the public functions so that every analytics function treats the
kinds of input the same way: the output has the input's kind, index, columns,
coordinates, name and ``attrs``.
"""

from __future__ import annotations

import copy
import sys
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from bifrost.exceptions import ConfigurationError

__all__ = ["Kernel", "RowsKernel", "apply", "as_float", "time_dim"]

Kernel = Callable[[NDArray[np.float64]], NDArray[np.float64]]
"""A 1-D kernel: float64 samples in, same-length float64 out."""

RowsKernel = Callable[[NDArray[np.float64]], NDArray[np.float64]]
"""A kernel over rows: C-contiguous ``(rows, n)`` in, same shape out."""


def as_float(values: object) -> NDArray[np.float64]:
    """Convert once to a contiguous float64 array (pandas NA becomes NaN).

    Parameters
    ----------
    values : object
        Array-like values.

    Returns
    -------
    numpy.ndarray
        C-contiguous float64 array.
    """
    pd = sys.modules.get("pandas")
    if pd is not None and isinstance(values, pd.Series | pd.Index):
        values = values.to_numpy(dtype=np.float64, na_value=np.nan)
    return np.ascontiguousarray(values, dtype=np.float64)


def time_dim(x: Any) -> Any:
    """The dimension an xarray object is processed along: ``"time"`` or the last one.

    Parameters
    ----------
    x : xarray.DataArray or xarray.Dataset
        The object.

    Returns
    -------
    hashable
        The dimension name.

    Raises
    ------
    ValueError
        If the object has no dimension.
    """
    dims = tuple(x.dims)
    if not dims:
        raise ConfigurationError("expected an object with at least one dimension, got a scalar")
    return "time" if "time" in dims else dims[-1]


def _rows(
    array: NDArray[np.float64], kernel: Kernel, rows: RowsKernel | None
) -> NDArray[np.float64]:
    """Apply along the last axis of any-dimensional `array`."""
    if array.size == 0:
        # No samples (a recording stopped at once) or no series: nothing to compute, and
        # reshape(-1, 0) cannot infer the rows.
        return np.empty(array.shape, dtype=np.float64)
    flat = np.ascontiguousarray(array.reshape(-1, array.shape[-1]))
    if rows is not None:
        out = rows(flat)
    else:
        out = np.empty_like(flat)
        for index, row in enumerate(flat):
            out[index] = kernel(row)
    return out.reshape(array.shape)


def along_axis(
    values: object, kernel: Kernel, axis: int, rows: RowsKernel | None = None
) -> NDArray[np.float64]:
    """Apply a 1-D kernel to every 1-D slice of `values` along `axis`.

    Parameters
    ----------
    values : object
        Array-like values.
    kernel : callable
        The 1-D kernel.
    axis : int
        The axis of time.
    rows : callable, optional
        A kernel over all rows at once (used instead of `kernel` for 2 or more
        dimensions, e.g. to filter channels in parallel).

    Returns
    -------
    numpy.ndarray
        float64 result of the input's shape.

    Raises
    ------
    ValueError
        For a 0-dimensional input.
    """
    array = np.asarray(values, dtype=np.float64)
    if array.ndim == 0:
        raise ConfigurationError("expected an array with at least one dimension, got a scalar")
    if array.ndim == 1:
        return kernel(np.ascontiguousarray(array))
    moved = np.moveaxis(array, axis, -1)
    return np.moveaxis(_rows(moved, kernel, rows), -1, axis)


def _last_axis(kernel: Kernel, rows: RowsKernel | None) -> Callable[[Any], Any]:
    def run(block: Any) -> Any:
        array = np.asarray(block, dtype=np.float64)
        if array.ndim == 1:
            return kernel(np.ascontiguousarray(array))
        return _rows(array, kernel, rows)

    return run


def _aligned_chunks(size: int, chunk: int, window: int) -> tuple[int, ...]:
    """Chunks along time that are multiples of `window`, none shorter than it.

    A multiple of the window keeps the blocks of the rolling kernels (which start at
    multiples of the window) aligned with the in-memory computation, so the results
    are bit-identical; a short last chunk is merged into the one before.
    """
    chunk = max(window, chunk // window * window)
    sizes = [chunk] * (size // chunk)
    rest = size - chunk * len(sizes)
    if rest:
        if sizes and rest < window:
            sizes[-1] += rest
        else:
            sizes.append(rest)
    return tuple(sizes) or (size,)


def _dask_apply(
    x: Any, dim: Any, kernel: Kernel, rows: RowsKernel | None, window: int | None
) -> Any:
    """The dask path: overlap for windowed kernels, one chunk along time for the others."""
    import xarray as xr

    run = _last_axis(kernel, rows)
    if window is None:
        # Recursive kernels (EWMA, IIR filters) need the whole history: time becomes a
        # single chunk, the other dimensions stay chunked and run in parallel.
        out = xr.apply_ufunc(
            run,
            x,
            input_core_dims=[[dim]],
            output_core_dims=[[dim]],
            dask="parallelized",
            output_dtypes=[np.float64],
            dask_gufunc_kwargs={"allow_rechunk": True},
            keep_attrs=True,
        )
        return out.transpose(*x.dims)

    def overlapped(data: Any) -> Any:
        axis = data.ndim - 1
        sizes = _aligned_chunks(data.shape[axis], data.chunksize[axis], window)
        data = data.rechunk({axis: sizes})
        # Each chunk sees the `window` samples before it; nothing after it matters for
        # a trailing window.
        return data.map_overlap(
            run,
            depth={axis: (window, 0)},
            boundary="none",
            trim=True,
            dtype=np.float64,
            meta=np.array((), dtype=np.float64),
        )

    out = xr.apply_ufunc(
        overlapped,
        x,
        input_core_dims=[[dim]],
        output_core_dims=[[dim]],
        dask="allowed",
        keep_attrs=True,
    )
    return out.transpose(*x.dims)


def apply(
    x: object,
    kernel: Kernel,
    *,
    rows: RowsKernel | None = None,
    window: int | None = None,
) -> object:
    """Apply `kernel` along time to any supported kind of input, keeping its kind.

    Parameters
    ----------
    x : numpy.ndarray, pandas.Series, pandas.DataFrame, xarray.DataArray or xarray.Dataset
        The samples (NumPy: along the last axis; DataFrame: each column; xarray: along
        ``"time"`` or the last dimension, dask-backed or not).
    kernel : callable
        The 1-D kernel.
    rows : callable, optional
        A kernel over many rows at once.
    window : int, optional
        For windowed kernels, the window: the dask path then overlaps chunks by it
        instead of merging time into one chunk.

    Returns
    -------
    object
        The result, of the kind of `x`.
    """
    pd = sys.modules.get("pandas")  # a pandas object implies pandas is imported
    if pd is not None and isinstance(x, pd.DataFrame):
        values = x.to_numpy(dtype=np.float64, na_value=np.nan)
        # copy=False: the result is fresh (columns of a C-contiguous (columns, n) array,
        # pandas' own block layout), so it is used as is.
        frame = pd.DataFrame(
            along_axis(values, kernel, 0, rows), index=x.index, columns=x.columns, copy=False
        )
        frame.attrs = copy.deepcopy(x.attrs)
        return frame
    if pd is not None and isinstance(x, pd.Series):
        # copy=False: the kernel's fresh array becomes the Series' data (pandas 3 would
        # otherwise copy it, which costs as much as a fast kernel).
        series = pd.Series(kernel(as_float(x)), index=x.index, name=x.name, copy=False)
        series.attrs = copy.deepcopy(x.attrs)
        return series
    xr = sys.modules.get("xarray")
    if xr is not None and isinstance(x, xr.Dataset):
        dim = time_dim(x)
        return x.map(
            lambda v: apply(v, kernel, rows=rows, window=window) if dim in v.dims else v,
            keep_attrs=True,
        )
    if xr is not None and isinstance(x, xr.DataArray):
        dim = time_dim(x)
        if x.chunks is not None:
            return _dask_apply(x, dim, kernel, rows, window)
        out = along_axis(x.values, kernel, x.get_axis_num(dim), rows)
        return x.copy(data=out)
    return along_axis(x, kernel, -1, rows)
