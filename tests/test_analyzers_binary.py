"""The binary analyzer against scikit-learn: every metric, curve point and threshold."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sklearn import metrics as skm
from sklearn.calibration import calibration_curve

from modelyard.analyzers.base import prediction_table
from modelyard.analyzers.binary import ThresholdTable, evaluate_binary, threshold_table
from modelyard.errors import InvalidInput

TOL = 1e-9


def cases() -> list[tuple[str, np.ndarray[Any, Any], np.ndarray[Any, Any], Any]]:
    rng = np.random.default_rng(42)
    n = 20_000
    y = (rng.random(n) < 0.3).astype(int)
    noisy = np.clip(0.25 * y + rng.random(n) * 0.75, 0, 1)
    rare = np.zeros(n, dtype=int)
    rare[rng.choice(n, 20, replace=False)] = 1  # 0.1 % positives
    return [
        ("continuous", y, noisy, None),
        ("heavy ties", y, np.round(noisy, 1), None),
        ("weights", y, noisy, rng.exponential(size=n)),
        ("ties and weights", y, np.round(noisy, 2), rng.integers(0, 5, n).astype(float)),
        ("0.1 % positives", rare, np.round(rng.random(n) * 0.5 + rare * 0.3, 3), None),
        ("constant scores", y, np.full(n, 0.42), rng.exponential(size=n)),
        ("not probabilities", y, noisy * 7 - 3, None),
    ]


CASES = cases()


@pytest.mark.parametrize(("name", "y", "s", "w"), CASES, ids=[c[0] for c in CASES])
def test_metrics_match_scikit_learn(name: str, y: Any, s: Any, w: Any) -> None:
    result, _ = evaluate_binary(prediction_table(y, s, weights=w))
    m = result["metrics"]
    assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(y, s, sample_weight=w), abs=TOL)
    ap = skm.average_precision_score(y, s, sample_weight=w)
    assert m["average_precision"] == pytest.approx(ap, abs=TOL)
    if s.min() >= 0 and s.max() <= 1:
        assert m["log_loss"] == pytest.approx(skm.log_loss(y, s, sample_weight=w), abs=TOL)
        assert m["brier"] == pytest.approx(skm.brier_score_loss(y, s, sample_weight=w), abs=TOL)
    else:
        assert m["log_loss"] is None
        assert m["brier"] is None
        assert any("not probabilities" in note for note in result["notes"])
    weights = np.ones(len(y)) if w is None else w
    assert m["positives"] == pytest.approx(weights[y == 1].sum(), abs=TOL)
    assert m["distinct_scores"] == len(np.unique(s))


@pytest.mark.parametrize(("name", "y", "s", "w"), CASES, ids=[c[0] for c in CASES])
def test_every_threshold_matches_the_confusion_matrix(name: str, y: Any, s: Any, w: Any) -> None:
    table = threshold_table(y, s, w)
    rng = np.random.default_rng(1)
    probes = [*rng.choice(np.unique(s), 20), 0.5, -1e9, 1e9, float(s.min()), float(s.max())]
    probes += [float(np.nextafter(p, np.inf)) for p in probes[:5]]  # just above a score
    for t in probes:
        tn, fp, fn, tp = skm.confusion_matrix(y, s >= t, sample_weight=w, labels=[0, 1]).ravel()
        got = table.at(t)
        assert [got["tn"], got["fp"], got["fn"], got["tp"]] == pytest.approx(
            [tn, fp, fn, tp], abs=1e-6
        ), t
        pred = (s >= t).astype(int)
        if tp + fp > 0:
            expected = skm.precision_score(y, pred, sample_weight=w, zero_division=0)
            assert got["precision"] == pytest.approx(expected, abs=TOL)
        if tp + fn > 0:
            assert got["recall"] == pytest.approx(
                skm.recall_score(y, pred, sample_weight=w), abs=TOL
            )


@pytest.mark.parametrize(("name", "y", "s", "w"), CASES[:5], ids=[c[0] for c in CASES[:5]])
def test_curves_are_points_of_scikit_learns_curves(name: str, y: Any, s: Any, w: Any) -> None:
    result, table = evaluate_binary(prediction_table(y, s, weights=w))
    fpr, tpr, thr = skm.roc_curve(y, s, sample_weight=w, drop_intermediate=False)
    ours = result["curves"]["roc"]
    assert len(ours["fpr"]) <= 1100
    lookup = dict(zip(thr[1:].tolist(), zip(fpr[1:], tpr[1:], strict=True), strict=True))
    for f, t_, th in zip(ours["fpr"][1:], ours["tpr"][1:], ours["threshold"][1:], strict=True):
        assert (f, t_) == pytest.approx(lookup[th], abs=TOL)
    assert (ours["fpr"][-1], ours["tpr"][-1]) == (1.0, 1.0)
    precision, recall, pthr = skm.precision_recall_curve(y, s, sample_weight=w)
    plookup = dict(zip(pthr.tolist(), zip(precision[:-1], recall[:-1], strict=True), strict=True))
    pr = result["curves"]["pr"]
    for p, r, th in zip(pr["precision"], pr["recall"], pr["threshold"], strict=True):
        assert (p, r) == pytest.approx(plookup[th], abs=TOL)
    # the operating points are on the curves exactly
    best = result["f1_optimal_threshold"]
    assert best in ours["threshold"]
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.nan_to_num(2 * precision * recall / (precision + recall))
    assert result["at_f1_optimal"]["f1"] == pytest.approx(f1.max(), abs=TOL)
    assert isinstance(table, ThresholdTable)


def test_calibration_matches_scikit_learn() -> None:
    _, y, s, _ = CASES[0]
    result, _ = evaluate_binary(prediction_table(y, s))
    prob_true, prob_pred = calibration_curve(y, s, n_bins=10, strategy="uniform")
    assert result["calibration"]["prob_true"] == pytest.approx(prob_true.tolist(), abs=TOL)
    assert result["calibration"]["prob_pred"] == pytest.approx(prob_pred.tolist(), abs=TOL)


def test_score_histogram_matches_numpy() -> None:
    _, y, s, w = CASES[2]
    result, _ = evaluate_binary(prediction_table(y, s, weights=w))
    h = result["score_histogram"]
    edges = np.array(h["edges"])
    pos, _ = np.histogram(s[y == 1], bins=edges, weights=w[y == 1])
    neg, _ = np.histogram(s[y == 0], bins=edges, weights=w[y == 0])
    assert h["positives"] == pytest.approx(pos.tolist(), abs=1e-6)
    assert h["negatives"] == pytest.approx(neg.tolist(), abs=1e-6)


def test_gain_and_lift_are_consistent() -> None:
    _, y, s, _ = CASES[0]
    result, _ = evaluate_binary(prediction_table(y, s))
    gain = result["curves"]["gain"]
    order = np.argsort(-s, kind="stable")
    for share, captured in list(zip(gain["population"], gain["gain"], strict=True))[1::97]:
        k = round(share * len(y))
        assert captured == pytest.approx(y[order][:k].sum() / y.sum(), abs=1e-3)


def test_one_class_only_reports_what_is_defined() -> None:
    y = np.ones(100, dtype=int)
    s = np.linspace(0, 1, 100)
    result, table = evaluate_binary(prediction_table(y, s))
    assert result["metrics"]["roc_auc"] is None
    assert "roc" not in result["curves"]
    assert any("ROC AUC" in note for note in result["notes"])
    assert result["metrics"]["average_precision"] == pytest.approx(1.0)
    assert result["metrics"]["log_loss"] == pytest.approx(skm.log_loss(y, s, labels=[0, 1]))
    assert table.at(0.5)["tp"] == 50


@pytest.mark.parametrize(
    ("y", "s", "kw", "message"),
    [
        ([0, 1, 2], [0.1, 0.2, 0.3], {"task": "binary"}, "must be 0 or 1"),
        ([0, 2, 2], [0.1, 0.2, 0.3], {}, "must be 0 or 1"),
        ([0, 1], [0.1, float("nan")], {}, "NaN or infinite"),
        ([0, 1], [0.1, float("inf")], {}, "NaN or infinite"),
        ([0, 1, 1], [0.1, 0.2], {}, "3 rows but y_score has 2"),
        ([], [], {}, "empty"),
        ([0, 1], [0.1, 0.2], {"weights": [1.0]}, "weights has 1 rows"),
        ([0, 1], [0.1, 0.2], {"weights": [1.0, -1.0]}, "not negative"),
        ([0, 1], [0.1, 0.2], {"groups": {"g": ["a", "a"]}}, "single group"),
    ],
)
def test_bad_tables_are_refused_with_the_reason(
    y: Any, s: Any, kw: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        prediction_table(y, s, **kw)
