"""The ``.bifrost`` accessor on pandas and xarray objects.

Registered the xarray way (``register_*_accessor``): the accessor object is created on
first access and cached per object, and every method is the function of
:mod:`bifrost.analytics` of the same name applied to that object::

    df.bifrost.rolling_mean(window=100)
    ds.bifrost.butter_filter(fs=1000.0, cutoff=50.0)

On a DataFrame (a Dataset) the methods work on the numeric columns (variables) and on
boolean ones as 0/1; the others (text such as a recipe name, timestamps, objects) are
left out of the result, so ``rec.to_pandas().bifrost.rolling_mean(window=20)`` works on
a recording of every tag of a plant. Nothing numeric left raises
:class:`~bifrost.ArgumentTypeError` naming the columns.
"""

from __future__ import annotations

import copy
import warnings
import weakref
from collections.abc import Sequence
from typing import Any, Generic, TypeVar

import numpy as np
import pandas as pd
import xarray as xr

from bifrost.analytics import (
    _cycles,
    _downsample,
    _features,
    _filters,
    _ml,
    _resample,
    _rolling,
    _spc,
    _spectral,
)
from bifrost.exceptions import ArgumentTypeError

__all__ = ["BifrostAccessor", "numeric_columns"]

Obj = TypeVar("Obj")


def _is_boolean(dtype: Any) -> bool:
    return bool(pd.api.types.is_bool_dtype(dtype))


def _is_number(dtype: Any) -> bool:
    # Complex numbers are numeric to pandas, not to the kernels (float64 in, float64 out).
    return bool(pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_complex_dtype(dtype))


def _none_left(method: str, kinds: dict[str, str], what: str) -> ArgumentTypeError:
    listed = ", ".join(f"{name!r} ({kind})" for name, kind in kinds.items())
    return ArgumentTypeError(
        f".bifrost.{method}() works on numeric and boolean {what}, and this object has "
        f"none: {listed}"
    )


def numeric_columns(obj: Any, method: str = "method") -> Any:
    """``obj`` with only what the analytics work on: numbers, and booleans as 0/1 floats.

    A DataFrame keeps its numeric columns and gets its boolean ones (``bool`` or the
    nullable ``boolean``, NA as NaN) as float 0/1; other columns are left out. A Dataset
    does the same with its data variables. Anything else is returned as it is.

    Raises
    ------
    ArgumentTypeError
        When no column (variable) is left, naming those there are.
    """
    if isinstance(obj, pd.DataFrame):
        kept: dict[Any, Any] = {}
        for name, column in obj.items():
            if _is_boolean(column.dtype):
                kept[name] = column.to_numpy(dtype=np.float64, na_value=np.nan)
            elif _is_number(column.dtype):
                kept[name] = column
        if not kept and len(obj.columns):
            raise _none_left(method, {str(n): str(c.dtype) for n, c in obj.items()}, "columns")
        if len(kept) == len(obj.columns) and not any(_is_boolean(c.dtype) for _, c in obj.items()):
            return obj
        frame = pd.DataFrame(kept, index=obj.index)
        frame.attrs = copy.deepcopy(obj.attrs)
        return frame
    if isinstance(obj, xr.Dataset):
        dropped = {
            str(name): str(v.dtype)
            for name, v in obj.data_vars.items()
            if not (_is_number(v.dtype) or _is_boolean(v.dtype))
        }
        if dropped and len(dropped) == len(obj.data_vars):
            raise _none_left(method, dropped, "variables")
        out = obj.drop_vars(list(dropped)) if dropped else obj
        booleans = [name for name, v in out.data_vars.items() if _is_boolean(v.dtype)]
        if booleans:
            out = out.assign({name: out[name].astype(np.float64) for name in booleans})
        return out
    return obj


class BifrostAccessor(Generic[Obj]):
    """Analytics of :mod:`bifrost.analytics` as methods of a pandas or xarray object.

    On a DataFrame or Dataset every method works on the numeric columns and on the
    boolean ones as 0/1, and leaves the others (text, timestamps, objects) out of its
    result; see :func:`numeric_columns`.

    Parameters
    ----------
    obj : pandas.Series, pandas.DataFrame, xarray.DataArray or xarray.Dataset
        The object the accessor belongs to.
    """

    def __init__(self, obj: Obj) -> None:
        self._obj = obj

    def _data(self, method: str) -> Obj:
        # Of the object's kind (a DataFrame stays a DataFrame), with fewer columns.
        data: Obj = numeric_columns(self._obj, method)
        return data

    def rolling_mean(self, window: int) -> Obj:
        """Rolling mean (see :func:`bifrost.analytics.rolling_mean`)."""
        return _rolling.rolling_mean(self._data("rolling_mean"), window)  # type: ignore[type-var]

    def rolling_std(self, window: int) -> Obj:
        """Rolling standard deviation (see :func:`bifrost.analytics.rolling_std`)."""
        return _rolling.rolling_std(self._data("rolling_std"), window)  # type: ignore[type-var]

    def rolling_min(self, window: int) -> Obj:
        """Rolling minimum (see :func:`bifrost.analytics.rolling_min`)."""
        return _rolling.rolling_min(self._data("rolling_min"), window)  # type: ignore[type-var]

    def rolling_max(self, window: int) -> Obj:
        """Rolling maximum (see :func:`bifrost.analytics.rolling_max`)."""
        return _rolling.rolling_max(self._data("rolling_max"), window)  # type: ignore[type-var]

    def ewma(self, alpha: float | None = None, span: float | None = None) -> Obj:
        """Exponentially weighted mean (see :func:`bifrost.analytics.ewma`)."""
        return _rolling.ewma(self._data("ewma"), alpha=alpha, span=span)  # type: ignore[type-var]

    def resample(self, rule: Any, how: str | Sequence[str] = "mean", **kwargs: Any) -> Any:
        """Regular bins, statistics in one pass (see :func:`bifrost.analytics.resample`)."""
        return _resample.resample(self._data("resample"), rule, how, **kwargs)

    def downsample(self, n_out: int = 2000, method: str = "minmaxlttb", **kwargs: Any) -> Any:
        """Samples for plotting (see :func:`bifrost.analytics.downsample`)."""
        return _downsample.downsample(self._data("downsample"), None, n_out, method, **kwargs)

    def sos_filter(self, sos: Any, **kwargs: Any) -> Obj:
        """SOS filtering (see :func:`bifrost.analytics.sos_filter`)."""
        result: Obj = _filters.sos_filter(self._data("sos_filter"), sos, **kwargs)
        return result

    def butter_filter(self, fs: float, cutoff: float | Sequence[float], **kwargs: Any) -> Obj:
        """Butterworth filtering (see :func:`bifrost.analytics.butter_filter`)."""
        result: Obj = _filters.butter_filter(self._data("butter_filter"), fs, cutoff, **kwargs)
        return result

    def welch(self, fs: float, nperseg: int = 4096, noverlap: int | None = None) -> Any:
        """Welch power spectral density (see :func:`bifrost.analytics.welch`)."""
        return _spectral.welch(self._data("welch"), fs, nperseg, noverlap)

    def window_features(self, window: int) -> Any:
        """RMS, peak, crest, kurtosis (see :func:`bifrost.analytics.window_features`)."""
        return _features.window_features(self._data("window_features"), window)

    def features(self, window: Any = None, **kwargs: Any) -> Any:
        """Feature table per window or cycle (see :func:`bifrost.analytics.features`)."""
        return _ml.features(self._obj, window, **kwargs)

    def control_chart(self, **kwargs: Any) -> _spc.ControlChart:
        """Shewhart chart and rules (see :func:`bifrost.analytics.control_chart`)."""
        return _spc.control_chart(self._data("control_chart"), **kwargs)

    def capability(self, lsl: float | None = None, usl: float | None = None) -> _spc.Capability:
        """Cp/Cpk (see :func:`bifrost.analytics.capability`)."""
        return _spc.capability(self._data("capability"), lsl, usl)

    def cusum(self, **kwargs: Any) -> Any:
        """CUSUM (see :func:`bifrost.analytics.cusum`)."""
        return _spc.cusum(self._data("cusum"), **kwargs)

    def cycles(self, trigger: Any, threshold: float = 0.5, length: int | None = None) -> Any:
        """Cycles split on a trigger (see :func:`bifrost.analytics.cycles`)."""
        return _cycles.cycles(self._data("cycles"), trigger, threshold, length)


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
