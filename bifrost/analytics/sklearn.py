"""scikit-learn integration: :class:`FeatureExtractor`, the features of bifrost.analytics.

Needs scikit-learn (``pip install "bifrost-analytics[ml]"``)::

    from sklearn.ensemble import IsolationForest
    from sklearn.pipeline import make_pipeline
    from bifrost.analytics.sklearn import FeatureExtractor

    model = make_pipeline(FeatureExtractor(fs=6400), IsolationForest(random_state=0))
    model.fit(healthy_windows)                    # (n_windows, n_samples[, n_channels])
    scores = model.decision_function(new_windows)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from bifrost._extras import require
from bifrost.analytics import _ml
from bifrost.analytics._checks import MOMENT_FEATURES
from bifrost.exceptions import ConfigurationError

require("sklearn", "The scikit-learn transformers of bifrost.analytics.sklearn")

from sklearn.base import BaseEstimator, TransformerMixin  # type: ignore[import-untyped]  # noqa: E402
from sklearn.utils.validation import (  # type: ignore[import-untyped]  # noqa: E402
    check_is_fitted,
    validate_data,
)

__all__ = ["FeatureExtractor"]


class FeatureExtractor(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Vibration and process features of windows, as a scikit-learn transformer.

    Two kinds of input:

    * arrays of windows, ``(n_windows, n_samples)`` for one signal or
      ``(n_windows, n_samples, n_channels)``: one output row per window, the features
      of every channel (``"<feature>"`` or ``"<channel>.<feature>"``); NaN samples are
      skipped;
    * with `window` or `per`: a recording's wide DataFrame (or a Recording), turned
      into one row per time window or machine cycle by :func:`bifrost.analytics.features`;
      ``transform`` then returns that DataFrame, indexed by the window starts.

    The features are those of :func:`bifrost.analytics.features`: moments (kurtosis in
    excess, Fisher's), slope and band energies (when `fs` is given). Nothing is learnt
    but the input's shape and names; the transformer is there to sit in a pipeline in
    front of a model such as ``IsolationForest``.

    Parameters
    ----------
    features : sequence of str, optional
        Names from :data:`bifrost.analytics._ml.FEATURES`; all but ``count`` by default.
    fs : float or mapping, optional
        Sampling rate in Hz (arrays: of the samples of a window; frames: as for
        :func:`~bifrost.analytics.features`). Without it there are no band energies.
    bands : sequence of (float, float), optional
        Frequency bands in Hz; by default fractions of the Nyquist frequency.
    block : int, optional
        Samples per FFT block; arrays: the whole window by default; frames: 256.
    channels : sequence of str, optional
        Names of the channels of 3-D input (``"ch0"``, ``"ch1"``, ... by default).
    window, per, tags : optional
        For DataFrame input, as for :func:`~bifrost.analytics.features`.
    """

    def __init__(
        self,
        features: Sequence[str] | None = None,
        fs: float | Mapping[str, float] | None = None,
        bands: Sequence[tuple[float, float]] | None = None,
        block: int | None = None,
        channels: Sequence[str] | None = None,
        window: Any = None,
        per: str | None = None,
        tags: Sequence[str] | None = None,
    ) -> None:
        self.features = features
        self.fs = fs
        self.bands = bands
        self.block = block
        self.channels = channels
        self.window = window
        self.per = per
        self.tags = tags

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.input_tags.three_d_array = True
        return tags

    # -- fit / transform --------------------------------------------------------------------
    def fit(self, X: Any, y: Any = None) -> FeatureExtractor:  # noqa: N803 (sklearn's name)
        """Check the input and remember its shape (and names); returns self."""
        if self._tabular():
            table = self._table(X)
            columns = _frame(X).columns
            self.feature_names_in_ = np.asarray([str(c) for c in columns], dtype=object)
            self.n_features_in_ = len(columns)
            self.feature_names_out_ = np.asarray(list(table.columns), dtype=object)
            return self
        windows = self._windows(X, reset=True)
        self.n_channels_ = windows.shape[2]
        self.feature_names_out_ = np.asarray(self._array_names(), dtype=object)
        return self

    def transform(self, X: Any) -> Any:  # noqa: N803 (sklearn's name)
        """The features of every window of `X` (see the class description)."""
        check_is_fitted(self, "feature_names_out_")
        if self._tabular():
            table = self._table(X)
            missing = [c for c in self.feature_names_out_ if c not in table.columns]
            if missing:
                raise ConfigurationError(
                    f"transform() data lacks the features fitted: {', '.join(missing[:5])}"
                )
            return table[list(self.feature_names_out_)]
        windows = self._windows(X, reset=False)
        if windows.shape[2] != self.n_channels_:
            raise ValueError(
                f"X has {windows.shape[2]} channels, but FeatureExtractor was fitted "
                f"with {self.n_channels_}"
            )
        return self._array_features(windows)

    def get_feature_names_out(self, input_features: Any = None) -> NDArray[np.object_]:
        """Names of the output columns (they do not depend on the input's names)."""
        check_is_fitted(self, "feature_names_out_")
        if input_features is not None:
            given = np.asarray(input_features, dtype=object)
            known = getattr(self, "feature_names_in_", None)
            if known is not None and not np.array_equal(given, known):
                raise ValueError("input_features is not equal to feature_names_in_")
            if len(given) != self.n_features_in_:
                raise ValueError(
                    f"input_features should have length equal to the number of features "
                    f"({self.n_features_in_}), got {len(given)}"
                )
        names: NDArray[np.object_] = self.feature_names_out_.copy()
        return names

    # -- internals --------------------------------------------------------------------------
    def _tabular(self) -> bool:
        return self.window is not None or self.per is not None

    def _table(self, data: Any) -> Any:
        return _ml.features(
            data,
            self.window,
            per=self.per,
            tags=self.tags,
            features=self.features,
            bands=self.bands,
            fs=self.fs,
            block=256 if self.block is None else self.block,
        )

    def _windows(self, data: Any, reset: bool) -> NDArray[np.float64]:
        array = validate_data(
            self, data, reset=reset, dtype=np.float64, allow_nd=True, ensure_all_finite="allow-nan"
        )
        if array.ndim == 2:
            array = array[:, :, None]
        if array.ndim != 3:
            raise ValueError(
                f"FeatureExtractor takes (n_windows, n_samples[, n_channels]), got {array.shape}"
            )
        return np.ascontiguousarray(array)

    def _rate(self) -> float | None:
        if self.fs is None:
            return None
        if isinstance(self.fs, Mapping):
            raise ConfigurationError("for arrays of windows, fs is one rate in Hz, not a mapping")
        return float(self.fs)

    def _block(self, n_samples: int) -> int:
        return n_samples if self.block is None else int(self.block)

    def _channel_names(self) -> list[str]:
        if self.channels is not None:
            names = [str(c) for c in self.channels]
            if len(names) != self.n_channels_:
                raise ConfigurationError(
                    f"channels names {len(names)} channels, the data has {self.n_channels_}"
                )
            return names
        return [f"ch{i}" for i in range(self.n_channels_)]

    def _array_features(self, windows: NDArray[np.float64]) -> NDArray[np.float64]:
        n_windows, n_samples, n_channels = windows.shape
        wanted = _ml.check_features(self.features)
        fs = self._rate()
        offsets = np.arange(n_windows + 1, dtype=np.int64) * n_samples
        times = np.tile(np.arange(n_samples) / (fs or 1.0), n_windows)
        columns: list[NDArray[np.float64]] = []
        for channel in range(n_channels):
            x = np.ascontiguousarray(windows[:, :, channel].reshape(-1))
            table = _ml.moments_and_bands(
                x, times, offsets, fs, self._block(n_samples), self.bands, wanted
            )
            columns.extend(table.values())
        if not columns:
            return np.zeros((n_windows, 0))
        return np.column_stack(columns)

    def _array_names(self) -> list[str]:
        probe = np.zeros((1, self.n_features_in_, self.n_channels_))
        wanted = _ml.check_features(self.features)
        fs = self._rate()
        per_channel = [f for f in MOMENT_FEATURES if f in wanted]
        if "bands" in wanted and fs is not None:
            edges = _ml.band_edges(fs, self._block(probe.shape[1]), self.bands, "the windows")
            per_channel += [_ml.band_name(lo, hi) for lo, hi in edges]
        if self.n_channels_ == 1 and self.channels is None:
            return per_channel
        return [f"{c}.{f}" for c in self._channel_names() for f in per_channel]


def _frame(data: Any) -> Any:
    return data if hasattr(data, "columns") else data.to_pandas()
