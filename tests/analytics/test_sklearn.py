"""bifrost.analytics.sklearn.FeatureExtractor: scikit-learn's own checks and the features."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import scipy.stats

pytest.importorskip("sklearn")

from sklearn.ensemble import IsolationForest
from sklearn.pipeline import make_pipeline
from sklearn.utils.estimator_checks import check_estimator

import bifrost.analytics as bfa
from bifrost.analytics.sklearn import FeatureExtractor
from bifrost.exceptions import ConfigurationError


@pytest.mark.parametrize(
    "estimator",
    [FeatureExtractor(), FeatureExtractor(features=["rms", "kurtosis", "bands"], fs=1000.0)],
    ids=["defaults", "with-bands"],
)
def test_passes_check_estimator(estimator: FeatureExtractor) -> None:
    results = check_estimator(estimator, on_skip=None)
    skipped = {r["check_name"] for r in results if r["status"] == "skipped"}
    # The array API check needs SCIPY_ARRAY_API set; the kernels take NumPy arrays only.
    assert skipped <= {"check_array_api_input"}
    assert sum(r["status"] == "passed" for r in results) > 40


def test_features_of_windows_match_the_references() -> None:
    rng = np.random.default_rng(1)
    windows = rng.normal(size=(20, 640, 2))
    windows[:, :, 1] = np.sin(2 * np.pi * 1000 * np.arange(640) / 6400)  # bin-centred
    extractor = FeatureExtractor(
        features=["rms", "kurtosis", "skewness", "bands"], fs=6400, channels=["a", "b"]
    )
    out = extractor.fit_transform(windows)
    names = list(extractor.get_feature_names_out())
    assert names[:3] == ["a.rms", "a.skewness", "a.kurtosis"]
    assert "b.band_800_1600Hz" in names
    assert out.shape == (20, len(names))
    b = windows[:, :, 1]
    np.testing.assert_allclose(out[:, names.index("b.rms")], np.sqrt((b**2).mean(axis=1)))
    np.testing.assert_allclose(
        out[:, names.index("a.kurtosis")], scipy.stats.kurtosis(windows[:, :, 0], axis=1)
    )
    # The sine's power (0.5) lands in the band that holds 1000 Hz, and only there.
    np.testing.assert_allclose(out[:, names.index("b.band_800_1600Hz")], 0.5, rtol=1e-9)
    assert np.all(out[:, names.index("b.band_0_200Hz")] < 1e-12)


def test_set_output_pandas_and_a_pipeline() -> None:
    rng = np.random.default_rng(2)
    healthy = rng.normal(size=(60, 256))
    faulty = healthy.copy()
    faulty[:, ::32] += 8.0  # impulses: kurtosis and crest rise
    extractor = FeatureExtractor(features=["rms", "crest", "kurtosis"]).set_output(
        transform="pandas"
    )
    frame = extractor.fit_transform(pd.DataFrame(healthy))
    assert isinstance(frame, pd.DataFrame)
    assert list(frame.columns) == ["rms", "crest", "kurtosis"]
    model = make_pipeline(FeatureExtractor(), IsolationForest(random_state=0)).fit(healthy)
    assert (model.predict(faulty) == -1).mean() > 0.9
    assert (model.predict(rng.normal(size=(60, 256))) == -1).mean() < 0.3


def test_a_recording_frame_with_a_window() -> None:
    index = pd.date_range("2026-01-01", periods=500, freq="10ms", tz="UTC")
    rng = np.random.default_rng(3)
    df = pd.DataFrame(
        {"v": [rng.normal(size=64) for _ in range(500)], "p": rng.normal(size=500)}, index=index
    )
    extractor = FeatureExtractor(window="1s", fs={"v": 6400}, features=["mean", "bands"])
    table = extractor.fit_transform(df)
    expected = bfa.features(df, "1s", fs={"v": 6400}, features=["mean", "bands"])
    pd.testing.assert_frame_equal(table, expected[list(table.columns)])
    assert list(extractor.get_feature_names_out()) == list(table.columns)
    assert list(extractor.feature_names_in_) == ["v", "p"]
    with pytest.raises(ConfigurationError, match="lacks the features"):
        extractor.transform(df.rename(columns={"p": "q"}))


def test_wrong_shapes_and_options() -> None:
    extractor = FeatureExtractor().fit(np.zeros((3, 10, 2)))
    with pytest.raises(ValueError, match="channels"):
        extractor.transform(np.zeros((3, 10, 1)))
    with pytest.raises(ConfigurationError, match="one rate"):
        FeatureExtractor(fs={"a": 1.0}).fit(np.zeros((3, 10)))
    with pytest.raises(ConfigurationError, match="channels names 1"):
        FeatureExtractor(channels=["a"]).fit(np.zeros((3, 10, 2)))
    with pytest.raises(ConfigurationError, match="unknown feature"):
        FeatureExtractor(features=["energy"]).fit(np.zeros((3, 10)))


def test_without_scikit_learn_the_error_names_the_extra() -> None:
    code = (
        "import sys; sys.modules['sklearn'] = None\n"
        "try:\n"
        "    import bifrost.analytics.sklearn\n"
        "except Exception as exc:\n"
        "    print(type(exc).__name__, exc)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    assert out.startswith("MissingDependency")
    assert 'pip install "bifrost-analytics[ml]"' in out
