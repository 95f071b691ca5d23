"""NumPy twins of the filter kernels: Butterworth design, forward and zero-phase SOS.

The IIR recursion is the one piece NumPy cannot vectorise over time: the twin hands it
to ``scipy.signal.sosfilt`` when SciPy is installed (the padding and initial conditions
of zero-phase filtering stay ours) and otherwise runs a loop over samples, vectorised
over channels.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

from bifrost.analytics._checks import check_count

__all__ = ["butter", "default_padlen", "sosfilt", "sosfiltfilt"]

F64 = NDArray[np.float64]

_BTYPES = ("lowpass", "highpass", "bandpass", "bandstop")
_MAX_ORDER = 32


def butter(order: int, cutoff: list[float], fs: float, btype: str) -> F64:
    """Digital Butterworth filter as second-order sections, shape ``(n_sections, 6)``.

    Parameters
    ----------
    order : int
        Filter order, 1 to 32.
    cutoff : list of float
        One cutoff (lowpass, highpass) or two (bandpass, bandstop), in the unit of `fs`.
    fs : float
        Sampling frequency.
    btype : {"lowpass", "highpass", "bandpass", "bandstop"}
        The kind of filter.

    Returns
    -------
    numpy.ndarray
        Sections ``[b0, b1, b2, a0, a1, a2]``.

    Raises
    ------
    ValueError
        For an invalid order, frequency or band type.
    """
    if btype not in _BTYPES:
        raise ValueError(
            f"btype must be one of 'lowpass', 'highpass', 'bandpass', 'bandstop', got {btype!r}"
        )
    if not 1 <= order <= _MAX_ORDER:
        raise ValueError("order must be between 1 and 32")
    if not (math.isfinite(fs) and fs > 0):
        raise ValueError("fs must be a positive, finite sampling frequency")
    two = btype in ("bandpass", "bandstop")
    if len(cutoff) != (2 if two else 1):
        raise ValueError("lowpass and highpass take one cutoff; bandpass and bandstop take two")
    nyquist = fs / 2.0
    if not all(0.0 < c < nyquist for c in cutoff):
        raise ValueError("cutoff frequencies must be strictly between 0 and fs / 2")
    if two and cutoff[0] >= cutoff[1]:
        raise ValueError("the low cutoff must be below the high cutoff")
    fs2 = 4.0
    warped = [fs2 * math.tan(math.pi * (c / nyquist) / 2.0) for c in cutoff]
    m = 2.0 * np.arange(order) - order + 1.0
    proto = -np.exp(1j * np.pi * m / (2.0 * order))
    zeros: NDArray[np.complex128]
    if btype == "lowpass":
        poles = proto * warped[0]
        zeros = np.zeros(0, complex)
        gain = warped[0] ** order
    elif btype == "highpass":
        poles = warped[0] / proto
        zeros = np.zeros(order, complex)
        gain = float(np.real(1.0 / np.prod(-proto)))
    else:
        bw, wo = warped[1] - warped[0], math.sqrt(warped[0] * warped[1])
        scaled = proto * (bw / 2.0) if btype == "bandpass" else (bw / 2.0) / proto
        root = np.sqrt(scaled * scaled - wo * wo)
        poles = np.column_stack([scaled + root, scaled - root]).ravel()
        if btype == "bandpass":
            zeros = np.zeros(order, complex)
            gain = bw**order
        else:
            zeros = np.tile([1j * wo, -1j * wo], order)
            gain = float(np.real(1.0 / np.prod(-proto)))
    z_d = np.concatenate([(fs2 + zeros) / (fs2 - zeros), -np.ones(poles.size - zeros.size)])
    p_d = (fs2 + poles) / (fs2 - poles)
    k = gain * float(np.real(np.prod(fs2 - zeros) / np.prod(fs2 - poles)))
    return _to_sections(z_d, p_d, k)


def _pairs(roots: NDArray[np.complex128]) -> list[tuple[complex, complex | None]]:
    tol = 1e-12
    upper = sorted((complex(r) for r in roots if r.imag > tol), key=abs)
    real = sorted(float(r.real) for r in roots if abs(r.imag) <= tol)
    out: list[tuple[complex, complex | None]] = [(r, r.conjugate()) for r in upper]
    lo, hi = 0, len(real)
    while hi > lo:
        if hi - lo >= 2:
            out.append((complex(real[lo]), complex(real[hi - 1])))
            lo, hi = lo + 1, hi - 1
        else:
            out.append((complex(real[lo]), None))
            lo += 1
    return out


def _poly(pair: tuple[complex, complex | None]) -> list[float]:
    first, second = pair
    if second is None:
        return [1.0, -first.real, 0.0]
    return [1.0, -(first + second).real, (first * second).real]


def _to_sections(zeros: NDArray[np.complex128], poles: NDArray[np.complex128], k: float) -> F64:
    pole_pairs = sorted(_pairs(poles), key=lambda p: abs(p[0]))
    zero_pairs = _pairs(zeros)
    rows = []
    for i, pp in enumerate(pole_pairs):
        b = _poly(zero_pairs[i]) if i < len(zero_pairs) else [1.0, 0.0, 0.0]
        rows.append(b + _poly(pp))
    sos = np.array(rows, dtype=np.float64)
    sos[0, :3] *= k
    return sos


def _normalise(sos: F64) -> F64:
    if sos.ndim != 2 or sos.shape[1] != 6:
        raise ValueError(f"sos must have shape (n_sections, 6), got {sos.shape}")
    if sos.shape[0] == 0:
        raise ValueError("sos must hold at least one section")
    if not np.isfinite(sos).all() or (sos[:, 3] == 0).any():
        raise ValueError("sos coefficients must be finite with a0 != 0")
    result: F64 = sos / sos[:, 3:4]
    return result


def _filter_loop(sos: F64, x: F64, hist: list[list[F64]]) -> F64:
    """Direct form I over samples, vectorised over rows; `hist` is updated in place."""
    out = np.empty_like(x)
    for i in range(x.shape[1]):
        signal = x[:, i]
        for k, (b0, b1, b2, _a0, a1, a2) in enumerate(sos):
            x1, x2 = hist[k]
            y1, y2 = hist[k + 1]
            output = (b0 * signal + b1 * x1 + b2 * x2 - a2 * y2) - a1 * y1
            hist[k] = [signal, x1]
            signal = output
        hist[-1] = [signal, hist[-1][0]]
        out[:, i] = signal
    return out


def _scipy_sosfilt() -> Any:
    try:
        from scipy.signal import sosfilt as scipy_sosfilt
    except ImportError:
        return None
    return scipy_sosfilt


def _run(sos: F64, x: F64, hist: list[list[F64]], *, use_scipy: bool = True) -> F64:
    """Filter rows of `x` from the state `hist` (direct form I histories)."""
    scipy_sosfilt = _scipy_sosfilt() if use_scipy else None
    if scipy_sosfilt is None or x.shape[1] == 0:
        return _filter_loop(sos, x, hist)
    # Direct-form-I histories to scipy's transposed-form states: z1 = b1 x1 + b2 x2 -
    # a1 y1 - a2 y2 and z2 = b2 x1 - a2 y1.
    zi = np.empty((sos.shape[0], x.shape[0], 2))
    for k, (_b0, b1, b2, _a0, a1, a2) in enumerate(sos):
        (x1, x2), (y1, y2) = hist[k], hist[k + 1]
        zi[k, :, 0] = b1 * x1 + b2 * x2 - a1 * y1 - a2 * y2
        zi[k, :, 1] = b2 * x1 - a2 * y1
    out, _ = scipy_sosfilt(sos, x, axis=1, zi=zi)
    result: F64 = np.asarray(out, dtype=np.float64)
    return result


def _zeros_hist(sections: int, rows: int) -> list[list[F64]]:
    return [[np.zeros(rows), np.zeros(rows)] for _ in range(sections + 1)]


def _steady_hist(sos: F64, level: F64) -> list[list[F64]]:
    hist = [[level, level]]
    value = level
    for b0, b1, b2, _a0, a1, a2 in sos:
        denominator = 1.0 + a1 + a2
        if denominator == 0.0:
            raise ValueError("a section has a pole at z = 1; it has no steady state")
        value = value * ((b0 + b1 + b2) / denominator)
        hist.append([value, value])
    return hist


def _not_finite(what: str) -> ValueError:
    return ValueError(
        f"{what}: the input holds NaN or infinite samples; fill or drop the gaps first"
    )


def sosfilt(sos: F64, x: F64, *, use_scipy: bool = True) -> F64:
    """Filter each row of `x` forward from rest (``scipy.signal.sosfilt``).

    Parameters
    ----------
    sos : numpy.ndarray
        Sections, shape ``(n_sections, 6)``.
    x : numpy.ndarray
        float64 rows, shape ``(rows, n)``.
    use_scipy : bool
        Let SciPy run the recursion when installed (else a loop over samples).

    Returns
    -------
    numpy.ndarray
        Filtered rows.

    Raises
    ------
    ValueError
        For invalid sections, or rows holding NaN or infinities.
    """
    coef = _normalise(sos)
    out = _run(coef, x, _zeros_hist(coef.shape[0], x.shape[0]), use_scipy=use_scipy)
    if not np.isfinite(out).all():
        raise _not_finite("sosfilt")
    return out


def default_padlen(sos: F64) -> int:
    """Default padding of ``scipy.signal.sosfiltfilt`` for `sos`.

    Parameters
    ----------
    sos : numpy.ndarray
        Sections, shape ``(n_sections, 6)``.

    Returns
    -------
    int
        ``3 * (2 * n_sections + 1 - min(#(b2 == 0), #(a2 == 0)))``.
    """
    zeros = min(int((sos[:, 2] == 0).sum()), int((sos[:, 5] == 0).sum()))
    return 3 * (2 * int(sos.shape[0]) + 1 - zeros)


def sosfiltfilt(sos: F64, x: F64, padlen: int | None = None, *, use_scipy: bool = True) -> F64:
    """Zero-phase filtering of each row of `x` (``scipy.signal.sosfiltfilt`` defaults).

    Parameters
    ----------
    sos : numpy.ndarray
        Sections, shape ``(n_sections, 6)``.
    x : numpy.ndarray
        float64 rows, shape ``(rows, n)``.
    padlen : int, optional
        Odd-extension length; scipy's default when None.
    use_scipy : bool
        Let SciPy run the recursion when installed (else a loop over samples).

    Returns
    -------
    numpy.ndarray
        Filtered rows.

    Raises
    ------
    ValueError
        For invalid sections, rows not longer than `padlen`, or NaN/inf samples.
    """
    coef = _normalise(sos)
    pad = default_padlen(sos) if padlen is None else check_count(padlen, "padlen")
    _rows, n = x.shape
    if x.size == 0:
        return x.copy()
    if n <= pad:
        raise ValueError(f"sosfiltfilt (the padding) needs more than {pad} samples, got {n}")
    if pad:
        left = 2.0 * x[:, :1] - x[:, pad:0:-1]
        right = 2.0 * x[:, -1:] - x[:, -2 : -pad - 2 : -1]
        ext = np.concatenate([left, x, right], axis=1)
    else:
        ext = x
    forward = _run(coef, ext, _steady_hist(coef, ext[:, 0].copy()), use_scipy=use_scipy)
    backward = forward[:, ::-1]
    result = _run(
        coef,
        np.ascontiguousarray(backward),
        _steady_hist(coef, backward[:, 0].copy()),
        use_scipy=use_scipy,
    )[:, ::-1]
    out: F64 = np.ascontiguousarray(result[:, pad : pad + n])
    if not np.isfinite(out[:, 0]).all():
        raise _not_finite("sosfiltfilt")
    return out
