"""The multiclass analyzer against scikit-learn, on tied, weighted, imbalanced and degenerate
data."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from sklearn import metrics as skm

from modelyard.analyzers.base import PredictionTable, prediction_table
from modelyard.analyzers.multiclass import Multiclass
from modelyard.errors import InvalidInput

TOL = 1e-9
Case = tuple[np.ndarray[Any, Any], np.ndarray[Any, Any], np.ndarray[Any, Any] | None]


def _probabilities(rng: np.random.Generator, y: np.ndarray[Any, Any], k: int) -> Any:
    """Rows of tenths summing to 1 (heavy ties), leaning towards the true class."""
    lean = np.full((len(y), k), 1.0)
    lean[np.arange(len(y)), y] += 2.0
    p = lean / lean.sum(axis=1, keepdims=True)
    return np.stack([rng.multinomial(10, row) for row in p]) / 10


def _case(name: str, k: int = 4) -> Case:
    rng = np.random.default_rng(11)
    n = 4000
    y = rng.integers(0, k, n)
    weights = np.round(rng.exponential(1.0, n), 2)
    if name == "ties":
        return y, _probabilities(rng, y, k), None
    if name == "weighted":
        return y, _probabilities(rng, y, k), weights
    if name == "imbalanced":
        # class k-1 is 0.1 % of the rows
        y = rng.integers(0, k - 1, n)
        y[rng.choice(n, n // 1000, replace=False)] = k - 1
        return y, _probabilities(rng, y, k), weights
    if name == "logits":
        return y, np.round(rng.normal(size=(n, k)) + 2.0 * np.eye(k)[y], 1), weights
    if name == "constant":
        return y, np.tile(np.full(k, 1.0 / k), (n, 1)), weights
    raise AssertionError(name)


CASES = ["ties", "weighted", "imbalanced", "logits", "constant"]


def _table(y: Any, scores: Any, w: Any = None, **kwargs: Any) -> PredictionTable:
    return prediction_table(y, scores, weights=w, **kwargs)


def _close(got: float | None, expected: float) -> None:
    if np.isnan(expected):
        assert got is None
    else:
        assert got == pytest.approx(expected, rel=TOL, abs=TOL)


@pytest.mark.parametrize("k", [3, 5])
@pytest.mark.parametrize("case", CASES)
def test_label_metrics_match_scikit_learn(case: str, k: int) -> None:
    y, scores, w = _case(case, k)
    result = Multiclass().compute(_table(y, scores, w))
    m = result["metrics"]
    labels = list(range(k))
    pred = scores.argmax(axis=1)
    _close(m["accuracy"], skm.accuracy_score(y, pred, sample_weight=w))
    _close(m["balanced_accuracy"], skm.balanced_accuracy_score(y, pred, sample_weight=w))
    for average in ("macro", "weighted", "micro"):
        p, r, f, _ = skm.precision_recall_fscore_support(
            y, pred, labels=labels, average=average, sample_weight=w, zero_division=np.nan
        )
        _close(m[f"precision_{average}"], p)
        _close(m[f"recall_{average}"], r)
        _close(m[f"f1_{average}"], f)
    p, r, f, _ = skm.precision_recall_fscore_support(
        y, pred, labels=labels, sample_weight=w, zero_division=np.nan
    )
    for i, row in enumerate(result["per_class"]):
        assert row["class"] == str(i)
        _close(row["precision"], p[i])
        _close(row["recall"], r[i])
        _close(row["f1"], f[i])
    cm = skm.confusion_matrix(y, pred, labels=labels, sample_weight=w)
    np.testing.assert_allclose(result["confusion_matrix"], cm, rtol=0, atol=TOL)
    np.testing.assert_allclose([row["support"] for row in result["per_class"]], cm.sum(axis=1))


@pytest.mark.parametrize("k", [3, 5])
@pytest.mark.parametrize("case", CASES)
def test_score_metrics_match_scikit_learn(case: str, k: int) -> None:
    y, scores, w = _case(case, k)
    result = Multiclass().compute(_table(y, scores, w))
    m = result["metrics"]
    labels = list(range(k))
    for c, row in enumerate(result["per_class"]):
        _close(row["roc_auc"], skm.roc_auc_score(y == c, scores[:, c], sample_weight=w))
    for top in (2, 3):
        if top < k:
            expected = skm.top_k_accuracy_score(y, scores, k=top, labels=labels, sample_weight=w)
            _close(m[f"top_{top}_accuracy"], expected)
        else:
            assert f"top_{top}_accuracy" not in m
    if case == "logits":
        assert m["log_loss"] is None
        assert result["probabilities"] is False
        assert any("log loss" in note for note in result["notes"])
        return
    assert result["probabilities"] is True
    _close(m["log_loss"], skm.log_loss(y, scores, labels=labels, sample_weight=w))
    for average in ("macro", "weighted"):
        expected = skm.roc_auc_score(
            y, scores, multi_class="ovr", average=average, labels=labels, sample_weight=w
        )
        _close(m[f"roc_auc_{average}"], expected)


def test_log_loss_clips_certain_mistakes_like_scikit_learn() -> None:
    y = np.array([0, 1, 2, 2])
    scores = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, 1.0], [0.2, 0.3, 0.5]])
    got = Multiclass().compute(_table(y, scores))["metrics"]["log_loss"]
    assert got == pytest.approx(skm.log_loss(y, scores), rel=TOL)


def test_rows_near_but_not_summing_to_one_within_tolerance_are_probabilities() -> None:
    y = np.array([0, 1, 2])
    scores = np.array([[0.6, 0.2, 0.2 + 5e-7], [0.1, 0.8, 0.1], [0.3, 0.3, 0.4]])
    assert Multiclass().compute(_table(y, scores))["metrics"]["log_loss"] is not None
    scores[0, 2] += 1e-5
    result = Multiclass().compute(_table(y, scores))
    assert result["metrics"]["log_loss"] is None


def test_class_absent_from_y_true_has_no_auc_and_a_note() -> None:
    y, scores, w = _case("weighted", 4)
    keep = y != 2
    y, scores, w = y[keep], scores[keep], w[keep]
    table = _table(y, scores, w, classes=[0, 1, 2, 3])
    result = Multiclass().compute(table)
    row = result["per_class"][2]
    assert row["roc_auc"] is None
    assert row["recall"] is None
    assert row["support"] == 0
    assert any("2" in note and "never occur in y_true" in note for note in result["notes"])
    present = [0, 1, 3]
    aucs = [skm.roc_auc_score(y == c, scores[:, c], sample_weight=w) for c in present]
    _close(result["metrics"]["roc_auc_macro"], float(np.mean(aucs)))
    prevalence = [w[y == c].sum() for c in present]
    _close(result["metrics"]["roc_auc_weighted"], float(np.average(aucs, weights=prevalence)))
    pred = scores.argmax(axis=1)
    assert (pred == 2).any()
    with pytest.warns(UserWarning, match="y_pred contains classes not in y_true"):
        expected = skm.balanced_accuracy_score(y, pred, sample_weight=w)
    _close(result["metrics"]["balanced_accuracy"], expected)
    json.dumps(result, allow_nan=False)


def test_constant_scores_predict_the_first_class() -> None:
    y, scores, w = _case("constant", 3)
    result = Multiclass().compute(_table(y, scores, w))
    assert [row["predicted"] for row in result["per_class"]][1:] == [0.0, 0.0]
    assert [row["precision"] for row in result["per_class"]][1:] == [None, None]
    assert [row["roc_auc"] for row in result["per_class"]] == [0.5, 0.5, 0.5]


def test_named_classes_and_unknown_labels() -> None:
    scores = np.array([[0.7, 0.2, 0.1], [0.1, 0.6, 0.3], [0.2, 0.2, 0.6]])
    table = _table(["cat", "dog", "eel"], scores, classes=["cat", "dog", "eel"])
    result = Multiclass().compute(table)
    assert result["classes"] == ["cat", "dog", "eel"]
    assert result["metrics"]["accuracy"] == 1.0
    with pytest.raises(InvalidInput, match=r"not a class: .*'fox'.* \(row 1\)"):
        _table(["cat", "fox", "eel"], scores, classes=["cat", "dog", "eel"])
    with pytest.raises(InvalidInput, match=r"not a class: .*7.* \(row 1\)"):
        _table([0, 7, 2], scores, classes=[0, 1, 2])
    with pytest.raises(InvalidInput, match="3 distinct labels but y_score has 4 columns"):
        _table([0, 7, 2], np.full((3, 4), 0.25))


def test_unknown_label_message_shows_the_plain_label() -> None:
    scores = np.full((3, 3), 1 / 3)
    with pytest.raises(InvalidInput) as caught:
        _table(["cat", "fox", "eel"], scores, classes=["cat", "dog", "eel"])
    assert caught.value.message == "y_true holds a label that is not a class: 'fox' (row 1)"


def test_result_and_panels_are_json() -> None:
    y, scores, w = _case("imbalanced", 5)
    analyzer = Multiclass()
    table = _table(y, scores, w)
    assert analyzer.applies_to(table)
    result = analyzer.compute(table)
    assert result["weighted"] is True
    assert result["metrics"]["rows"] == len(y)
    json.dumps(result, allow_nan=False)
    panels = analyzer.panels(result)
    assert [p.title for p in panels] == ["Confusion matrix", "Per class"]
    heatmap = panels[0].figure
    assert heatmap is not None
    assert heatmap["data"][0]["z"] == result["confusion_matrix"]
    for panel in panels:
        assert panel.figure is not None
        json.dumps(panel.figure, allow_nan=False)
