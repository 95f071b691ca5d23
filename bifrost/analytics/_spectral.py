"""Power spectral density by Welch's method."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
from numpy.typing import NDArray

from bifrost.analytics._backend import kernels
from bifrost.analytics._frames import time_dim
from bifrost.analytics._inputs import is_dataarray, is_frame, is_series, pandas
from bifrost.exceptions import ConfigurationError

__all__ = ["welch"]

F64 = NDArray[np.float64]


def welch(x: Any, fs: float, nperseg: int = 4096, noverlap: int | None = None) -> Any:
    """Power spectral density by Welch's method, as ``scipy.signal.welch``'s defaults.

    Periodic Hann window, ``noverlap = nperseg // 2``, constant detrending, one-sided
    density. `nperseg` longer than the signal is shortened to it (as scipy does).
    Segments holding NaN are left out of the average (all NaN if every one does).

    Parameters
    ----------
    x : numpy.ndarray, pandas.Series, pandas.DataFrame or xarray.DataArray
        The samples, along time.
    fs : float
        Sampling frequency.
    nperseg : int
        Segment length.
    noverlap : int, optional
        Overlap of segments; ``nperseg // 2`` by default.

    Returns
    -------
    object
        NumPy: ``(frequencies, psd)`` (psd along the last axis). pandas: a Series /
        DataFrame indexed by ``frequency``. xarray: a DataArray whose time dimension is
        replaced by ``frequency``.

    Raises
    ------
    ValueError
        For an empty signal or invalid segment parameters.
    """
    impl = kernels()

    def sizes(n: int) -> tuple[int, int]:
        if n == 0:
            raise ConfigurationError("welch needs at least one sample")
        seg = min(int(nperseg), n)
        overlap = seg // 2 if noverlap is None else int(noverlap)
        return seg, overlap

    def spectrum(values: F64) -> F64:
        seg, overlap = sizes(values.size)
        return impl.welch(values, float(fs), seg, overlap)

    def frequencies(n: int) -> F64:
        seg, _ = sizes(n)
        return np.arange(seg // 2 + 1, dtype=np.float64) * np.float64(float(fs) / seg)

    pd = pandas()
    if is_series(x) or is_frame(x):
        frame = x.to_frame() if is_series(x) else x
        values = frame.to_numpy(dtype=np.float64, na_value=np.nan)
        index = pd.Index(frequencies(values.shape[0]), name="frequency")
        columns = [spectrum(np.ascontiguousarray(values[:, j])) for j in range(values.shape[1])]
        if is_series(x):
            out = pd.Series(columns[0], index=index, name=x.name)
        else:
            out = pd.DataFrame(dict(enumerate(columns)), index=index)
            out.columns = x.columns
        out.attrs = copy.deepcopy(x.attrs)
        return out
    if is_dataarray(x):
        import xarray as xr

        dim = time_dim(x)
        moved = x.transpose(..., dim)
        flat = moved.values.reshape(-1, moved.shape[-1]).astype(np.float64)
        psd = np.stack([spectrum(np.ascontiguousarray(r)) for r in flat])
        freqs = frequencies(moved.shape[-1])
        other = {k: v for k, v in moved.coords.items() if dim not in v.dims}
        dims = (*moved.dims[:-1], "frequency")
        return xr.DataArray(
            psd.reshape(*moved.shape[:-1], freqs.size),
            dims=dims,
            coords={**other, "frequency": freqs},
            name=x.name,
            attrs=copy.deepcopy(x.attrs),
        )
    array = np.asarray(x, dtype=np.float64)
    if array.ndim == 0:
        raise ConfigurationError("expected an array with at least one dimension, got a scalar")
    sizes(array.shape[-1])
    flat = array.reshape(-1, array.shape[-1])
    psd = np.stack([spectrum(np.ascontiguousarray(r)) for r in flat])
    freqs = frequencies(array.shape[-1])
    return freqs, psd.reshape(*array.shape[:-1], freqs.size)
