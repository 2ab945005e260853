"""The regression analyzer against scikit-learn and numpy, on tied, weighted and degenerate data."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from sklearn import metrics as skm

from modelyard.analyzers.base import PredictionTable, prediction_table
from modelyard.analyzers.regression import Regression, evaluate_regression

TOL = 1e-9


def _case(name: str) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any], Any]:
    rng = np.random.default_rng(7)
    n = 3001
    y = np.round(rng.normal(10.0, 3.0, n), 1) + 20.0
    pred = np.round(y + rng.normal(0.0, 2.0, n), 1)
    weights = np.round(rng.exponential(1.0, n), 2)
    if name == "ties":
        return y, pred, None
    if name == "weighted":
        return y, pred, weights
    if name == "integer_weights_with_zeros":
        return y, pred, rng.integers(0, 4, n).astype(float)
    if name == "constant_prediction":
        return y, np.full(n, 30.0), weights
    if name == "heavy_tail":
        return np.round(rng.lognormal(0, 2, n), 1) + 0.1, np.round(rng.lognormal(0, 2, n), 1), None
    raise AssertionError(name)


CASES = ["ties", "weighted", "integer_weights_with_zeros", "constant_prediction", "heavy_tail"]


def _table(y: Any, pred: Any, weights: Any = None) -> PredictionTable:
    return prediction_table(y, pred, weights=weights, task="regression")


@pytest.mark.parametrize("case", CASES)
def test_metrics_match_scikit_learn(case: str) -> None:
    y, pred, w = _case(case)
    m = Regression().compute(_table(y, pred, w))["metrics"]
    expected = {
        "mae": skm.mean_absolute_error(y, pred, sample_weight=w),
        "mse": skm.mean_squared_error(y, pred, sample_weight=w),
        "rmse": skm.root_mean_squared_error(y, pred, sample_weight=w),
        "r2": skm.r2_score(y, pred, sample_weight=w),
        "explained_variance": skm.explained_variance_score(y, pred, sample_weight=w),
        "median_absolute_error": skm.median_absolute_error(y, pred, sample_weight=w),
        "max_error": skm.max_error(y, pred),
        "mape": skm.mean_absolute_percentage_error(y, pred, sample_weight=w),
    }
    for name, value in expected.items():
        assert m[name] == pytest.approx(value, rel=TOL, abs=TOL), name
    assert m["rows"] == len(y)
    assert m["weight"] == pytest.approx(len(y) if w is None else w.sum())


def test_perfect_fit_of_a_constant_target_follows_force_finite() -> None:
    y = np.full(50, 3.0)
    m = Regression().compute(_table(y, y))["metrics"]
    assert m["r2"] == skm.r2_score(y, y) == 1.0
    assert m["explained_variance"] == skm.explained_variance_score(y, y) == 1.0
    off = y + np.linspace(0, 1, 50)
    m = Regression().compute(_table(y, off))["metrics"]
    assert m["r2"] == skm.r2_score(y, off) == 0.0
    assert m["explained_variance"] == pytest.approx(skm.explained_variance_score(y, off))


def test_mape_is_left_out_with_a_note_when_a_true_value_is_zero() -> None:
    y = np.array([0.0, 1.0, 2.0, 3.0, 0.0])
    result = Regression().compute(_table(y, y + 0.5))
    assert result["metrics"]["mape"] is None
    assert any("MAPE" in note and "2 row(s)" in note for note in result["notes"])
    assert result["metrics"]["mae"] == pytest.approx(0.5)


def test_median_absolute_error_with_weights_differs_from_unweighted_as_scikit_learn() -> None:
    y = np.array([0.0, 0.0, 0.0, 0.0])
    pred = np.array([1.0, 2.0, 3.0, 10.0])
    w = np.array([1.0, 1.0, 1.0, 10.0])
    weighted = Regression().compute(_table(y, pred, w))["metrics"]["median_absolute_error"]
    plain = Regression().compute(_table(y, pred))["metrics"]["median_absolute_error"]
    assert weighted == skm.median_absolute_error(y, pred, sample_weight=w) == 10.0
    assert plain == skm.median_absolute_error(y, pred) == 2.5


@pytest.mark.parametrize("case", ["ties", "heavy_tail", "constant_prediction"])
def test_residual_quantiles_match_numpy(case: str) -> None:
    y, pred, _ = _case(case)
    result = Regression().compute(_table(y, pred))["residual_quantiles"]
    assert result["q"] == [0.05, 0.25, 0.5, 0.75, 0.95]
    expected = np.quantile(y - pred, result["q"], method="averaged_inverted_cdf")
    np.testing.assert_allclose(result["value"], expected, rtol=0, atol=TOL)


def test_weighted_residual_quantiles_equal_repeating_rows() -> None:
    y, pred, w = _case("integer_weights_with_zeros")
    result = Regression().compute(_table(y, pred, w))["residual_quantiles"]
    repeated = np.repeat(y - pred, w.astype(int))
    expected = np.quantile(repeated, result["q"], method="averaged_inverted_cdf")
    np.testing.assert_allclose(result["value"], expected, rtol=0, atol=TOL)


@pytest.mark.parametrize("case", ["weighted", "constant_prediction"])
def test_residual_histogram_matches_numpy(case: str) -> None:
    y, pred, w = _case(case)
    hist = Regression().compute(_table(y, pred, w))["residual_histogram"]
    counts, edges = np.histogram(y - pred, bins=50, weights=w)
    np.testing.assert_allclose(hist["edges"], edges, rtol=0, atol=TOL)
    np.testing.assert_allclose(hist["weight"], counts, rtol=0, atol=TOL)
    assert sum(hist["weight"]) == pytest.approx(w.sum())


def test_histogram_of_identical_residuals_has_one_full_bin() -> None:
    y = np.arange(10.0)
    hist = Regression().compute(_table(y, y - 1.0))["residual_histogram"]
    assert len(hist["weight"]) == 50
    assert sum(hist["weight"]) == 10
    assert max(hist["weight"]) == 10


def test_scatter_sample_is_deterministic_sorted_and_covers_the_range() -> None:
    rng = np.random.default_rng(3)
    y = rng.normal(size=10_000)
    pred = y + rng.normal(size=10_000)
    first = Regression().compute(_table(y, pred))["scatter"]
    again = Regression().compute(_table(y, pred))["scatter"]
    assert first == again
    assert first["sampled"] is True
    assert len(first["actual"]) == len(first["predicted"]) == 2000
    assert first["actual"] == sorted(first["actual"])
    assert first["actual"][0] == y.min()
    assert first["actual"][-1] == y.max()
    pairs = dict(zip(y.tolist(), pred.tolist(), strict=True))
    assert all(pairs[a] == p for a, p in zip(first["actual"], first["predicted"], strict=True))


def test_small_tables_are_shown_whole() -> None:
    y = np.array([3.0, 1.0, 2.0])
    scatter = Regression().compute(_table(y, y * 2))["scatter"]
    assert scatter == {"actual": [1.0, 2.0, 3.0], "predicted": [2.0, 4.0, 6.0], "sampled": False}


def test_result_and_panels_are_json() -> None:
    y, pred, w = _case("weighted")
    analyzer = Regression()
    table = _table(y, pred, w)
    assert analyzer.applies_to(table)
    result = analyzer.compute(table)
    assert result == evaluate_regression(table)
    assert result["weighted"] is True
    json.dumps(result, allow_nan=False)
    panels = analyzer.panels(result)
    titles = ["Predicted against actual (2,000 rows sampled)", "Residuals"]
    assert [p.title for p in panels] == titles
    for panel in panels:
        assert panel.figure is not None
        assert set(panel.figure) == {"data", "layout"}
        json.dumps(panel.figure, allow_nan=False)


def test_applies_only_to_regression() -> None:
    binary = prediction_table([0, 1, 1], [0.2, 0.4, 0.9])
    assert not Regression().applies_to(binary)


def test_constant_residuals_still_get_a_histogram() -> None:
    y = np.linspace(0.0, 10.0, 200)
    result = Regression().compute(prediction_table(y, y + 0.1, task="regression"))
    hist = result["residual_histogram"]
    assert sum(hist["weight"]) == 200
    assert hist["edges"][0] < -0.1 < hist["edges"][-1]
