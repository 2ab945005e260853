"""The fairness analyzer against Fairlearn and scikit-learn, and its permutation test against a
slow reference loop."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from fairlearn import metrics as flm
from sklearn import metrics as skm

from modelyard.analyzers.base import PredictionTable, prediction_table
from modelyard.analyzers.fairness import Fairness, fairness_report
from modelyard.errors import InvalidInput

TOL = 1e-9
Arrays = tuple[Any, Any, Any, Any]
SIZES = {2: [0.8, 0.2], 5: [0.45, 0.25, 0.15, 0.1, 0.05]}


def _case(name: str, groups: int, seed: int = 5) -> Arrays:
    """y, scores (tenths: heavy ties), group labels of unequal sizes, weights."""
    rng = np.random.default_rng(seed)
    n = 20_000 if name == "imbalanced" else 4000
    g = rng.choice([f"g{i}" for i in range(groups)], n, p=SIZES[groups])
    shift = np.char.lstrip(g, "g").astype(int) * 0.05
    prevalence = 0.001 if name == "imbalanced" else 0.3
    y = (rng.random(n) < prevalence).astype(int)
    s = np.round(np.clip(0.5 * rng.random(n) + 0.35 * y + shift, 0, 1), 1)
    w = np.round(rng.exponential(1.0, n), 2) if name != "unweighted" else None
    if name == "constant":
        s = np.full(n, 0.7)
    if name == "imbalanced" and groups == 5:
        y[g == "g4"] = 0  # a small group without a single positive
    return y, s, g, w


CASES = ["unweighted", "weighted", "imbalanced", "constant"]


def _table(y: Any, s: Any, g: Any, w: Any = None) -> PredictionTable:
    return prediction_table(y, s, weights=w, groups={"group": g}, task="binary")


def _close(got: float | None, expected: float) -> None:
    if np.isnan(expected):
        assert got is None
    else:
        assert got == pytest.approx(expected, rel=TOL, abs=TOL)


def _fairlearn_by_group(y: Any, pred: Any, g: Any, w: Any) -> Any:
    metrics = {
        "selection_rate": flm.selection_rate,
        "tpr": flm.true_positive_rate,
        "fpr": flm.false_positive_rate,
    }
    return flm.MetricFrame(
        metrics=metrics,
        y_true=y,
        y_pred=pred,
        sensitive_features=g,
        sample_params={name: {"sample_weight": w} for name in metrics},
    )


def _gap(values: Any) -> tuple[float, float]:
    values = np.asarray(values, dtype=float)
    values = values[~np.isnan(values)]
    return values.max() - values.min(), values.min() / values.max() if values.max() else np.nan


@pytest.mark.parametrize("groups", [2, 5])
@pytest.mark.parametrize("case", CASES)
def test_group_rates_match_fairlearn_and_scikit_learn(case: str, groups: int) -> None:
    y, s, g, w = _case(case, groups)
    column = fairness_report(_table(y, s, g, w), permutations=10)["columns"][0]
    pred = (s >= 0.5).astype(int)
    by_group = _fairlearn_by_group(y, pred, g, w).by_group
    weights = np.ones(len(y)) if w is None else w
    assert [row["group"] for row in column["groups"]] == sorted(set(g))
    for row in column["groups"]:
        m = g == row["group"]
        assert row["rows"] == m.sum()
        _close(row["weight"], weights[m].sum())
        _close(row["positives"], weights[m & (y == 1)].sum())
        _close(row["selection_rate"], by_group.loc[row["group"], "selection_rate"])
        has_pos, has_neg = weights[m & (y == 1)].sum() > 0, weights[m & (y == 0)].sum() > 0
        _close(row["tpr"], by_group.loc[row["group"], "tpr"] if has_pos else np.nan)
        _close(row["fpr"], by_group.loc[row["group"], "fpr"] if has_neg else np.nan)
        precision = skm.precision_score(
            y[m], pred[m], sample_weight=weights[m], zero_division=np.nan
        )
        _close(row["precision"], precision)
        auc = skm.roc_auc_score(y[m], s[m], sample_weight=weights[m]) if has_pos else np.nan
        _close(row["auc"], auc)
    overall = column["overall"]
    assert overall["rows"] == len(y)
    _close(overall["selection_rate"], flm.selection_rate(y, pred, sample_weight=w))
    _close(overall["tpr"], flm.true_positive_rate(y, pred, sample_weight=w))
    _close(overall["fpr"], flm.false_positive_rate(y, pred, sample_weight=w))
    _close(overall["auc"], skm.roc_auc_score(y, s, sample_weight=w))


@pytest.mark.parametrize("groups", [2, 5])
@pytest.mark.parametrize("case", ["unweighted", "weighted", "constant"])
def test_gaps_match_fairlearn(case: str, groups: int) -> None:
    y, s, g, w = _case(case, groups)
    column = fairness_report(_table(y, s, g, w), permutations=10)["columns"][0]
    pred = (s >= 0.5).astype(int)
    args: dict[str, Any] = {"sensitive_features": g, "sample_weight": w}
    dp, eo, eop = (
        column["demographic_parity"],
        column["equalized_odds"],
        column["equal_opportunity"],
    )
    _close(dp["difference"], flm.demographic_parity_difference(y, pred, **args))
    _close(dp["ratio"], flm.demographic_parity_ratio(y, pred, **args))
    _close(eo["difference"], flm.equalized_odds_difference(y, pred, **args))
    _close(eo["ratio"], flm.equalized_odds_ratio(y, pred, **args))
    _close(eop["difference"], flm.equal_opportunity_difference(y, pred, **args))
    _close(eop["ratio"], flm.equal_opportunity_ratio(y, pred, **args))


@pytest.mark.parametrize("groups", [2, 5])
def test_gaps_leave_out_groups_without_positives_where_fairlearn_counts_zero(groups: int) -> None:
    y, s, g, w = _case("imbalanced", groups)
    column = fairness_report(_table(y, s, g, w), permutations=10)["columns"][0]
    pred = (s >= 0.5).astype(int)
    by_group = _fairlearn_by_group(y, pred, g, w).by_group
    no_positives = [name for name in by_group.index if not y[g == name].any()]
    assert (len(no_positives) > 0) == (groups == 5)
    for name in no_positives:
        assert by_group.loc[name, "tpr"] == 0.0  # Fairlearn's convention
        assert next(r for r in column["groups"] if r["group"] == name)["tpr"] is None
    if no_positives:
        assert any("undefined TPR" in note for note in column["notes"])
    tpr = by_group["tpr"].where(~by_group.index.isin(no_positives))
    tpr_gap, tpr_ratio = _gap(tpr)
    fpr_gap, fpr_ratio = _gap(by_group["fpr"])
    _close(column["equal_opportunity"]["difference"], tpr_gap)
    _close(column["equal_opportunity"]["ratio"], tpr_ratio)
    _close(column["equalized_odds"]["difference"], max(tpr_gap, fpr_gap))
    _close(column["equalized_odds"]["ratio"], min(tpr_ratio, fpr_ratio))
    args: dict[str, Any] = {"sensitive_features": g, "sample_weight": w}
    _close(
        column["demographic_parity"]["difference"],
        flm.demographic_parity_difference(y, pred, **args),
    )


def test_constant_scores_have_no_gap_and_p_value_one() -> None:
    y, _, g, w = _case("weighted", 5)
    for score, ratio in ((0.7, 1.0), (0.3, None)):
        result = fairness_report(_table(y, np.full(len(y), score), g, w), permutations=50)
        column = result["columns"][0]
        assert column["demographic_parity"]["difference"] == 0.0
        assert column["demographic_parity"]["ratio"] == ratio
        assert column["demographic_parity"]["p_value"] == 1.0
        assert column["four_fifths"]["flagged"] is False
        assert all(row["auc"] == 0.5 for row in column["groups"])
        assert len(result["notes"]) == 1
    assert "no row is selected" in result["notes"][0]


def test_four_fifths_rule_names_the_lowest_and_highest_groups() -> None:
    y, s, g, w = _case("weighted", 5)
    four_fifths = fairness_report(_table(y, s, g, w), permutations=10)["columns"][0]["four_fifths"]
    pred = (s >= 0.5).astype(int)
    rates = _fairlearn_by_group(y, pred, g, w).by_group["selection_rate"]
    ratio = rates.min() / rates.max()
    assert ratio < 0.8
    assert four_fifths["flagged"] is True
    _close(four_fifths["ratio"], ratio)
    assert four_fifths["lowest"] == rates.idxmin()
    assert four_fifths["highest"] == rates.idxmax()
    fair = np.zeros(len(y))
    for name in set(g):
        fair[np.flatnonzero(g == name)[::2]] = 1.0  # half of every group selected
    four_fifths = fairness_report(_table(y, fair, g), permutations=10)["columns"][0]["four_fifths"]
    assert four_fifths["ratio"] > 0.8
    assert four_fifths["flagged"] is False


def _reference_p_values(
    y: Any, pred: Any, g: Any, w: Any, permutations: int, seed: int
) -> tuple[float, float]:
    """One permutation at a time, one group at a time, with plain masks."""
    labels, index = np.unique(g, return_inverse=True)

    def gaps(groups: Any) -> tuple[float, float]:
        sel, tpr, fpr = [], [], []
        for i in range(len(labels)):
            m = groups == i
            sel.append(np.sum(w[m] * pred[m]) / np.sum(w[m]))
            pos, neg = m & (y == 1), m & (y == 0)
            tpr.append(np.sum(w[pos] * pred[pos]) / w[pos].sum() if w[pos].sum() else np.nan)
            fpr.append(np.sum(w[neg] * pred[neg]) / w[neg].sum() if w[neg].sum() else np.nan)
        return _gap(sel)[0], max(_gap(tpr)[0], _gap(fpr)[0])

    dp, eo = gaps(index)
    rng = np.random.default_rng(seed)
    hits = np.zeros(2)
    for _ in range(permutations):
        shuffled = gaps(rng.permutation(index))
        hits += [shuffled[0] >= dp - 1e-12, shuffled[1] >= eo - 1e-12]
    return (1 + hits[0]) / (1 + permutations), (1 + hits[1]) / (1 + permutations)


@pytest.mark.parametrize(
    ("groups", "case"), [(2, "weighted"), (5, "unweighted"), (5, "imbalanced")]
)
def test_permutation_p_values_match_a_slow_reference(groups: int, case: str) -> None:
    y, s, g, w = _case(case, groups)
    keep = np.arange(len(y)) < 1500
    y, s, g = y[keep], s[keep], g[keep]
    w = np.ones(keep.sum()) if w is None else w[keep]
    column = fairness_report(_table(y, s, g, w), permutations=200, seed=3)["columns"][0]
    pred = (s >= 0.5).astype(int)
    dp, eo = _reference_p_values(y, pred, g, w, permutations=200, seed=3)
    assert column["demographic_parity"]["p_value"] == dp
    assert column["equalized_odds"]["p_value"] == eo


def test_permutation_p_values_tell_a_real_gap_from_chance() -> None:
    rng = np.random.default_rng(21)
    n = 2000
    g = rng.choice(["a", "b"], n)
    y = (rng.random(n) < 0.4).astype(int)
    biased = np.round(rng.random(n) * 0.6 + 0.3 * (g == "a"), 1)
    column = fairness_report(_table(y, biased, g))["columns"][0]
    assert column["demographic_parity"]["p_value"] < 0.01
    assert column["equalized_odds"]["p_value"] < 0.01
    same = np.round(rng.random(n), 1)
    column = fairness_report(_table(y, same, g))["columns"][0]
    assert column["demographic_parity"]["p_value"] > 0.05
    assert column["equalized_odds"]["p_value"] > 0.05


def test_permutation_results_repeat_with_the_seed() -> None:
    y, s, g, w = _case("weighted", 5)
    table = _table(y, s, g, w)
    first = fairness_report(table, permutations=100, seed=1)
    assert first == fairness_report(table, permutations=100, seed=1)
    assert first["seed"] == 1
    assert first["permutations"] == 100
    skipped = fairness_report(table, permutations=0)["columns"][0]
    assert skipped["demographic_parity"]["p_value"] is None
    assert skipped["equalized_odds"]["p_value"] is None


def test_a_group_column_with_one_group_is_refused_clearly() -> None:
    with pytest.raises(InvalidInput) as caught:
        prediction_table([0, 1, 1], [0.1, 0.8, 0.6], groups={"region": ["eu", "eu", "eu"]})
    assert "group column 'region' has a single group (eu)" in caught.value.message
    assert "at least two groups" in caught.value.message


def test_a_group_with_one_class_has_no_auc_and_a_note() -> None:
    y = np.array([0, 1, 0, 1, 1, 1, 1])
    s = np.array([0.2, 0.9, 0.4, 0.6, 0.7, 0.3, 0.8])
    g = np.array(["a", "a", "a", "a", "b", "b", "b"])
    column = fairness_report(_table(y, s, g), permutations=20)["columns"][0]
    a, b = column["groups"]
    assert a["auc"] == skm.roc_auc_score(y[:4], s[:4])
    assert b["auc"] is None
    assert b["fpr"] is None
    assert b["tpr"] == pytest.approx(2 / 3)
    notes = " | ".join(column["notes"])
    assert "group: undefined ROC AUC (one class only) in group(s) 'b'" in notes
    assert "undefined FPR" in notes
    assert column["equalized_odds"]["difference"] == pytest.approx(abs(2 / 3 - 1.0))


def test_every_group_column_gets_a_report_and_a_chart() -> None:
    y, s, g, w = _case("weighted", 5)
    halves = np.where(np.arange(len(y)) % 3 == 0, "young", "old")
    table = prediction_table(y, s, weights=w, groups={"region": g, "age": halves})
    analyzer = Fairness()
    assert analyzer.applies_to(table)
    assert not analyzer.applies_to(prediction_table(y, s))
    result = analyzer.compute(table)
    assert result["threshold"] == 0.5
    assert result["permutations"] == 1000
    assert result["weighted"] is True
    assert [c["column"] for c in result["columns"]] == ["region", "age"]
    json.dumps(result, allow_nan=False)
    panels = analyzer.panels(result)
    assert [p.title for p in panels] == ["Rates by region", "Rates by age"]
    figure = panels[1].figure
    assert figure is not None
    assert [trace["name"] for trace in figure["data"]] == [
        "selection rate",
        "TPR",
        "FPR",
        "precision",
    ]
    assert figure["data"][0]["x"] == ["old", "young"]
    json.dumps(figure, allow_nan=False)


def test_threshold_moves_the_selection() -> None:
    y, s, g, w = _case("weighted", 2)
    table = _table(y, s, g, w)
    for threshold in (0.3, 0.8):
        column = fairness_report(table, threshold=threshold, permutations=10)["columns"][0]
        pred = (s >= threshold).astype(int)
        expected = flm.demographic_parity_difference(y, pred, sensitive_features=g, sample_weight=w)
        _close(column["demographic_parity"]["difference"], expected)
