"""The interface of the kernels, read off the stub of ``bifrost._core``, and its checks.

``bifrost/_core.pyi`` is the one place where the kernel signatures are written, and
stubtest checks it against the compiled module. :class:`Kernels` takes each member's
signature from that stub instead of restating it, and the end of this file has mypy
check both implementations against it: a NumPy twin whose signature differs from the
stub, or a kernel without a twin, is a type error here.

A stub without a module because it is for the type checker only. That also keeps its
references to ``bifrost._core`` away from import-linter, which reads ``.py`` files only,
cannot find compiled modules and would take this one for the root package ``bifrost``.
"""

from collections.abc import Callable
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

from bifrost import _core
from bifrost.analytics import _numpy
from bifrost.analytics._numpy import (
    _cycles,
    _downsample,
    _features,
    _filters,
    _resample,
    _rolling,
    _spc,
    _spectral,
)

_P = ParamSpec("_P")
_R = TypeVar("_R")
_F = TypeVar("_F")

# Protocol members need declared types, and a decorator is the one way to declare a
# method's type as read off another function. The leading Any is the instance that
# looking a member up binds, so what remains is the kernel's own signature.
def _signature_of(
    kernel: Callable[_P, _R],
) -> Callable[[Callable[[], None]], Callable[Concatenate[Any, _P], _R]]: ...

class Kernels(Protocol):
    """The kernels that ``bifrost._core`` and the NumPy twins both provide."""

    @_signature_of(_core.rolling_mean)
    def rolling_mean() -> None: ...
    @_signature_of(_core.rolling_std)
    def rolling_std() -> None: ...
    @_signature_of(_core.rolling_min)
    def rolling_min() -> None: ...
    @_signature_of(_core.rolling_max)
    def rolling_max() -> None: ...
    @_signature_of(_core.ewma)
    def ewma() -> None: ...
    @_signature_of(_core.bin_regular)
    def bin_regular() -> None: ...
    @_signature_of(_core.downsample)
    def downsample() -> None: ...
    @_signature_of(_core.butter)
    def butter() -> None: ...
    @_signature_of(_core.sosfilt)
    def sosfilt() -> None: ...
    @_signature_of(_core.sosfiltfilt)
    def sosfiltfilt() -> None: ...
    @_signature_of(_core.welch)
    def welch() -> None: ...
    @_signature_of(_core.window_features)
    def window_features() -> None: ...
    @_signature_of(_core.segment_features)
    def segment_features() -> None: ...
    @_signature_of(_core.individuals_limits)
    def individuals_limits() -> None: ...
    @_signature_of(_core.nelson_rules)
    def nelson_rules() -> None: ...
    @_signature_of(_core.capability)
    def capability() -> None: ...
    @_signature_of(_core.cusum)
    def cusum() -> None: ...
    @_signature_of(_core.rising_edges)
    def rising_edges() -> None: ...
    @_signature_of(_core.stack_cycles)
    def stack_cycles() -> None: ...

# Checked in this file, after the class: its members' types are inferred when mypy
# checks this file, and a module that mypy happens to check earlier would see them as
# Any and let any twin pass.
_compiled: Kernels = _core
_twins: Kernels = _numpy

# `kernel`'s type is fixed by the first call, so the second checks the twin against it.
def _twin_of(kernel: _F) -> Callable[[_F], None]: ...

# Each twin again, from its topic module: unlike a protocol's members, a function's
# parameter names are compared too, and mypy's cache does not count a re-export as part
# of the package's interface, so an incremental run re-checks this file after a change
# to a twin only if it uses the twin's own module.
_twin_of(_core.rolling_mean)(_rolling.rolling_mean)
_twin_of(_core.rolling_std)(_rolling.rolling_std)
_twin_of(_core.rolling_min)(_rolling.rolling_min)
_twin_of(_core.rolling_max)(_rolling.rolling_max)
_twin_of(_core.ewma)(_rolling.ewma)
_twin_of(_core.bin_regular)(_resample.bin_regular)
_twin_of(_core.downsample)(_downsample.downsample)
_twin_of(_core.butter)(_filters.butter)
_twin_of(_core.sosfilt)(_filters.sosfilt)
_twin_of(_core.sosfiltfilt)(_filters.sosfiltfilt)
_twin_of(_core.welch)(_spectral.welch)
_twin_of(_core.window_features)(_features.window_features)
_twin_of(_core.segment_features)(_features.segment_features)
_twin_of(_core.individuals_limits)(_spc.individuals_limits)
_twin_of(_core.nelson_rules)(_spc.nelson_rules)
_twin_of(_core.capability)(_spc.capability)
_twin_of(_core.cusum)(_spc.cusum)
_twin_of(_core.rising_edges)(_cycles.rising_edges)
_twin_of(_core.stack_cycles)(_cycles.stack_cycles)
