"""Statistical process control: Shewhart charts with run rules, capability, CUSUM."""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from bifrost.analytics._backend import kernels
from bifrost.analytics._inputs import is_dataarray, is_frame, is_series, one_d, pandas
from bifrost.exceptions import ConfigurationError

__all__ = [
    "NELSON",
    "WESTERN_ELECTRIC",
    "Capability",
    "ControlChart",
    "capability",
    "control_chart",
    "cusum",
]

NELSON = tuple(f"rule{k}" for k in range(1, 9))
WESTERN_ELECTRIC = ("we1", "we2", "we3", "we4")
# Bits of the kernel masks behind each Western Electric rule (WE1-3 are Nelson 1, 5, 6).
_WE_BITS = (0, 4, 5, 8)


@dataclass(frozen=True)
class ControlChart:
    """An individuals (Shewhart) chart and the rules each sample violates.

    Attributes
    ----------
    center, sigma : float
        Centre line and sigma (mean moving range / 1.128 unless given).
    lcl, ucl : float
        Control limits, ``center -/+ 3 sigma``.
    flags : object
        One boolean column per rule (``rule1`` ... ``rule8`` for Nelson, ``we1`` ...
        ``we4`` for Western Electric): a DataFrame for pandas input, a DataArray with a
        ``rule`` dimension for xarray, a ``(n, rules)`` array for NumPy.
    rules : tuple of str
        The rule names, in column order.
    """

    center: float
    sigma: float
    lcl: float
    ucl: float
    flags: Any
    rules: tuple[str, ...]

    @property
    def violations(self) -> Any:
        """Whether each sample violates any rule (same kind as `flags`, one column less)."""
        if is_frame(self.flags):
            return self.flags.any(axis=1)
        if is_dataarray(self.flags):
            return self.flags.any("rule")
        return np.asarray(self.flags).any(axis=1)


def control_chart(
    x: Any,
    center: float | None = None,
    sigma: float | None = None,
    rules: str = "nelson",
) -> ControlChart:
    """Shewhart individuals chart with the Nelson or Western Electric rules per sample.

    A sample is flagged by a rule when it completes the rule's pattern (e.g. the ninth
    sample in a row above the centre). NaN samples are never flagged and break runs.

    Parameters
    ----------
    x : numpy.ndarray, pandas.Series or xarray.DataArray
        One-dimensional samples.
    center, sigma : float, optional
        Known centre and sigma (e.g. from a reference period); estimated from `x`
        otherwise (mean, and mean moving range / 1.128).
    rules : {"nelson", "western_electric"}
        Nelson's eight rules or the four Western Electric rules.

    Returns
    -------
    ControlChart
        Limits and per-sample flags.

    Raises
    ------
    ValueError
        For an unknown rule set, or a sigma that is not positive (e.g. constant data).
    """
    if rules not in ("nelson", "western_electric"):
        raise ConfigurationError(f"rules must be 'nelson' or 'western_electric', got {rules!r}")
    values = one_d(x, "control_chart")
    impl = kernels()
    est_center, est_sigma = impl.individuals_limits(values)
    c = est_center if center is None else float(center)
    s = est_sigma if sigma is None else float(sigma)
    masks = impl.nelson_rules(values, c, s)
    bits = range(8) if rules == "nelson" else _WE_BITS
    names = NELSON if rules == "nelson" else WESTERN_ELECTRIC
    table = np.column_stack([(masks >> np.uint16(b)) & 1 for b in bits]).astype(bool)
    flags: Any = table
    if is_series(x):
        pd = pandas()
        flags = pd.DataFrame(table, index=x.index, columns=list(names))
    elif is_dataarray(x):
        import xarray as xr

        dim = x.dims[0]
        flags = xr.DataArray(
            table, dims=(dim, "rule"), coords={**dict(x.coords), "rule": list(names)}
        )
    return ControlChart(c, s, c - 3 * s, c + 3 * s, flags, tuple(names))


@dataclass(frozen=True)
class Capability:
    """Process capability indices.

    Attributes
    ----------
    mean : float
        Mean of the samples.
    sigma_within : float
        Short-term sigma, mean moving range / 1.128.
    sigma_overall : float
        Sample standard deviation.
    cp, cpk : float
        Capability with the short-term sigma (``cp`` NaN without both limits).
    pp, ppk : float
        Performance with the overall sigma.
    """

    mean: float
    sigma_within: float
    sigma_overall: float
    cp: float
    cpk: float
    pp: float
    ppk: float


def capability(x: Any, lsl: float | None = None, usl: float | None = None) -> Capability:
    """Cp, Cpk, Pp and Ppk against specification limits (one may be omitted).

    Parameters
    ----------
    x : numpy.ndarray, pandas.Series or xarray.DataArray
        One-dimensional samples; NaN is skipped.
    lsl, usl : float, optional
        Lower and upper specification limits.

    Returns
    -------
    Capability
        The indices.

    Raises
    ------
    ValueError
        Without any limit, or with ``lsl >= usl``.
    """
    values = one_d(x, "capability")
    low = math.nan if lsl is None else float(lsl)
    high = math.nan if usl is None else float(usl)
    return Capability(*kernels().capability(values, low, high))


def cusum(
    x: Any,
    target: float | None = None,
    sigma: float | None = None,
    k: float = 0.5,
    h: float = 5.0,
) -> Any:
    """Tabular CUSUM to detect small persistent shifts of the mean.

    ``upper[i] = max(0, upper[i-1] + x[i] - target - k sigma)`` (and ``lower`` for
    downward shifts); a shift is signalled while a sum exceeds ``h sigma``. NaN samples
    carry the sums over.

    Parameters
    ----------
    x : numpy.ndarray, pandas.Series or xarray.DataArray
        One-dimensional samples.
    target : float, optional
        In-control mean; the mean of `x` by default.
    sigma : float, optional
        In-control sigma; mean moving range / 1.128 by default.
    k, h : float
        Allowance and decision interval, in units of sigma.

    Returns
    -------
    object
        ``upper``, ``lower``, ``shift_up`` and ``shift_down`` (bool): a DataFrame for
        pandas, a Dataset for xarray, a dict for NumPy.

    Raises
    ------
    ValueError
        For negative `k` or `h`, or a sigma that is not positive.
    """
    values = one_d(x, "cusum")
    impl = kernels()
    est_center, est_sigma = impl.individuals_limits(values)
    t = est_center if target is None else float(target)
    s = est_sigma if sigma is None else float(sigma)
    if not (math.isfinite(s) and s > 0):
        raise ConfigurationError(f"sigma must be positive and finite, got {s}")
    if not (h >= 0 and k >= 0):
        raise ConfigurationError(f"k and h must be non-negative, got k={k}, h={h}")
    upper, lower = impl.cusum(values, t, k * s)
    result = {
        "upper": upper,
        "lower": lower,
        "shift_up": upper > h * s,
        "shift_down": lower > h * s,
    }
    if is_series(x):
        out = pandas().DataFrame(result, index=x.index)
        out.attrs = copy.deepcopy(x.attrs)
        return out
    if is_dataarray(x):
        import xarray as xr

        dim = x.dims[0]
        return xr.Dataset(
            {name: (dim, v) for name, v in result.items()},
            coords=x.coords,
            attrs=copy.deepcopy(x.attrs),
        )
    return result
