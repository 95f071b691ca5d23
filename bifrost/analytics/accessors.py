"""The ``.bifrost`` accessor on pandas and xarray objects.

Registered the xarray way (``register_*_accessor``): the accessor object is created on
first access and cached per object, and every method is the function of
:mod:`bifrost.analytics` of the same name applied to that object::

    df.bifrost.rolling_mean(window=100)
    ds.bifrost.butter_filter(fs=1000.0, cutoff=50.0)
"""

from __future__ import annotations

import warnings
import weakref
from collections.abc import Sequence
from typing import Any, Generic, TypeVar

import pandas as pd
import xarray as xr

from bifrost.analytics import (
    _cycles,
    _downsample,
    _features,
    _filters,
    _resample,
    _rolling,
    _spc,
    _spectral,
)

__all__ = ["BifrostAccessor"]

Obj = TypeVar("Obj")


class BifrostAccessor(Generic[Obj]):
    """Analytics of :mod:`bifrost.analytics` as methods of a pandas or xarray object.

    Parameters
    ----------
    obj : pandas.Series, pandas.DataFrame, xarray.DataArray or xarray.Dataset
        The object the accessor belongs to.
    """

    def __init__(self, obj: Obj) -> None:
        self._obj = obj

    def rolling_mean(self, window: int) -> Obj:
        """Rolling mean (see :func:`bifrost.analytics.rolling_mean`)."""
        return _rolling.rolling_mean(self._obj, window)  # type: ignore[type-var]

    def rolling_std(self, window: int) -> Obj:
        """Rolling standard deviation (see :func:`bifrost.analytics.rolling_std`)."""
        return _rolling.rolling_std(self._obj, window)  # type: ignore[type-var]

    def rolling_min(self, window: int) -> Obj:
        """Rolling minimum (see :func:`bifrost.analytics.rolling_min`)."""
        return _rolling.rolling_min(self._obj, window)  # type: ignore[type-var]

    def rolling_max(self, window: int) -> Obj:
        """Rolling maximum (see :func:`bifrost.analytics.rolling_max`)."""
        return _rolling.rolling_max(self._obj, window)  # type: ignore[type-var]

    def ewma(self, alpha: float | None = None, span: float | None = None) -> Obj:
        """Exponentially weighted mean (see :func:`bifrost.analytics.ewma`)."""
        return _rolling.ewma(self._obj, alpha=alpha, span=span)  # type: ignore[type-var]

    def resample(self, rule: Any, how: str | Sequence[str] = "mean", **kwargs: Any) -> Any:
        """Regular bins, statistics in one pass (see :func:`bifrost.analytics.resample`)."""
        return _resample.resample(self._obj, rule, how, **kwargs)

    def downsample(self, n_out: int = 2000, method: str = "minmaxlttb", **kwargs: Any) -> Any:
        """Samples for plotting (see :func:`bifrost.analytics.downsample`)."""
        return _downsample.downsample(self._obj, None, n_out, method, **kwargs)

    def sos_filter(self, sos: Any, **kwargs: Any) -> Obj:
        """SOS filtering (see :func:`bifrost.analytics.sos_filter`)."""
        result: Obj = _filters.sos_filter(self._obj, sos, **kwargs)
        return result

    def butter_filter(self, fs: float, cutoff: float | Sequence[float], **kwargs: Any) -> Obj:
        """Butterworth filtering (see :func:`bifrost.analytics.butter_filter`)."""
        result: Obj = _filters.butter_filter(self._obj, fs, cutoff, **kwargs)
        return result

    def welch(self, fs: float, nperseg: int = 4096, noverlap: int | None = None) -> Any:
        """Welch power spectral density (see :func:`bifrost.analytics.welch`)."""
        return _spectral.welch(self._obj, fs, nperseg, noverlap)

    def window_features(self, window: int) -> Any:
        """RMS, peak, crest, kurtosis (see :func:`bifrost.analytics.window_features`)."""
        return _features.window_features(self._obj, window)

    def control_chart(self, **kwargs: Any) -> _spc.ControlChart:
        """Shewhart chart and rules (see :func:`bifrost.analytics.control_chart`)."""
        return _spc.control_chart(self._obj, **kwargs)

    def capability(self, lsl: float | None = None, usl: float | None = None) -> _spc.Capability:
        """Cp/Cpk (see :func:`bifrost.analytics.capability`)."""
        return _spc.capability(self._obj, lsl, usl)

    def cusum(self, **kwargs: Any) -> Any:
        """CUSUM (see :func:`bifrost.analytics.cusum`)."""
        return _spc.cusum(self._obj, **kwargs)

    def cycles(self, trigger: Any, threshold: float = 0.5, length: int | None = None) -> Any:
        """Cycles split on a trigger (see :func:`bifrost.analytics.cycles`)."""
        return _cycles.cycles(self._obj, trigger, threshold, length)


class _CachedPerObject:
    """Descriptor creating the accessor on first access and caching it per object.

    pandas' own accessor descriptor builds a new accessor on every access; xarray's
    caches one per object, which is what this does for pandas objects (they are not
    hashable, hence a map keyed by ``id`` whose entries die with their object).
    """

    def __init__(self, accessor: type[BifrostAccessor[Any]]) -> None:
        self._accessor = accessor
        self._cache: dict[int, BifrostAccessor[Any]] = {}

    def __get__(self, obj: object, cls: type | None = None) -> Any:
        if obj is None:
            return self._accessor
        key = id(obj)
        accessor = self._cache.get(key)
        if accessor is None or accessor._obj is not obj:
            accessor = self._accessor(obj)
            self._cache[key] = accessor
            weakref.finalize(obj, self._cache.pop, key, None)
        return accessor


def _register() -> None:
    """Register the accessor once per process (re-imports must not re-register)."""
    registrations = [
        (pd.Series, pd.api.extensions.register_series_accessor),
        (pd.DataFrame, pd.api.extensions.register_dataframe_accessor),
        (xr.DataArray, xr.register_dataarray_accessor),
        (xr.Dataset, xr.register_dataset_accessor),
    ]
    for cls, register in registrations:
        existing = cls.__dict__.get("bifrost")
        if existing is not None and getattr(existing, "_accessor", existing) is not None:
            # Already registered (by this module, possibly an earlier import of it).
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            register("bifrost")(BifrostAccessor)
        if cls in (pd.Series, pd.DataFrame):
            cls.bifrost = _CachedPerObject(BifrostAccessor)  # type: ignore[union-attr]


_register()
