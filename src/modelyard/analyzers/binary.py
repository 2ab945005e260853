"""Binary classification, computed exactly from one sort and cumulative sums.

Scores are sorted once, descending; each distinct score is a threshold ("positive when
score >= threshold"), and the cumulative weighted count of positives and negatives at the
end of each run of equal scores gives TP and FP there. Every metric and curve comes from that
table, with ties and sample weights treated exactly as scikit-learn treats them: ROC AUC is the
trapezoid under all distinct thresholds, AU-PR is average precision (the step sum, never the
trapezoid), log loss clips probabilities to [eps, 1 - eps] per class. The table itself is
stored as the side table "thresholds" so that the "thresholds" query answers any threshold
exactly later.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

from modelyard.analyzers.base import (
    Analyzer,
    Computed,
    Direction,
    EvaluationView,
    Floats,
    MetricSpec,
    Panel,
    PredictionTable,
    SideQuery,
)

DISPLAY_POINTS = 1000
HISTOGRAM_BINS = 50
CALIBRATION_BINS = 10
DEFAULT_THRESHOLD = 0.5


@dataclass(slots=True)
class ThresholdTable:
    """One row per distinct score, highest first: predicting positive for scores >= threshold
    gives ``tp`` and ``fp`` (weighted); ``pos`` and ``neg`` are the weighted totals."""

    thresholds: Floats
    tp: Floats
    fp: Floats
    pos: float
    neg: float

    def at(self, threshold: float) -> dict[str, float]:
        """The confusion matrix and rates when scores >= ``threshold`` are called positive."""
        k = int(np.searchsorted(-self.thresholds, -threshold, side="right"))
        tp = float(self.tp[k - 1]) if k else 0.0
        fp = float(self.fp[k - 1]) if k else 0.0
        return confusion(tp, fp, self.pos, self.neg) | {"threshold": threshold}


def threshold_arrow(tt: ThresholdTable) -> pa.Table:
    """The threshold table as the side table stored with the evaluation."""
    data = pa.table({"threshold": tt.thresholds, "tp": tt.tp, "fp": tt.fp})
    return data.replace_schema_metadata({"pos": repr(tt.pos), "neg": repr(tt.neg)})


def threshold_from_arrow(data: pa.Table) -> ThresholdTable:
    meta = data.schema.metadata or {}
    return ThresholdTable(
        data.column("threshold").to_numpy(),
        data.column("tp").to_numpy(),
        data.column("fp").to_numpy(),
        float(meta[b"pos"]),
        float(meta[b"neg"]),
    )


def _ratio(a: float, b: float) -> float | None:
    return a / b if b > 0 else None


def confusion(tp: float, fp: float, pos: float, neg: float) -> dict[str, Any]:
    fn, tn = pos - tp, neg - fp
    precision = _ratio(tp, tp + fp)
    recall = _ratio(tp, pos)
    f1 = _ratio(2 * tp, 2 * tp + fp + fn)
    return {
        "tp": tp,
        "fp": fp,
        "tn": tn,
        "fn": fn,
        "precision": precision,
        "recall": recall,
        "fpr": _ratio(fp, neg),
        "specificity": _ratio(tn, neg),
        "f1": f1,
        "accuracy": _ratio(tp + tn, pos + neg),
        "predicted_positive_share": _ratio(tp + fp, pos + neg),
    }


def _sorted_unweighted(y: np.ndarray[Any, Any], score: Floats) -> tuple[Floats, Any]:
    """Scores ascending and whether each is a positive's, without a full argsort: the
    positives' and negatives' scores are sorted apart (plain sorts are several times faster
    than an argsort) and then merged, which a stable sort of two sorted runs does in one
    linear pass."""
    pos = y == 1
    both = np.concatenate([np.sort(score[pos]), np.sort(score[~pos])])
    order = np.argsort(both, kind="stable")
    return both[order], order < int(pos.sum())


def threshold_table(y: np.ndarray[Any, Any], score: Floats, w: Floats | None) -> ThresholdTable:
    if w is None:
        asc, is_pos = _sorted_unweighted(y, score)
        s, ys = asc[::-1], is_pos[::-1]
        last = np.r_[np.flatnonzero(s[1:] != s[:-1]), len(s) - 1]
        tp = np.cumsum(ys, dtype=np.int64)[last].astype(np.float64)
        fp = (last + 1) - tp
    else:
        order = np.argsort(score)[::-1]
        s = score[order]
        ys = y[order].astype(np.float64)
        ws = w[order]
        last = np.r_[np.flatnonzero(s[1:] != s[:-1]), len(s) - 1]
        tp = np.cumsum(ys * ws)[last]
        fp = np.cumsum((1.0 - ys) * ws)[last]
    return ThresholdTable(s[last], tp, fp, float(tp[-1]), float(fp[-1]))


def roc_auc(t: ThresholdTable) -> float | None:
    if t.pos <= 0 or t.neg <= 0:
        return None
    fpr = np.r_[0.0, t.fp / t.neg]
    tpr = np.r_[0.0, t.tp / t.pos]
    return float(np.trapezoid(tpr, fpr))


def precision_curve(t: ThresholdTable) -> Floats:
    ps = t.tp + t.fp
    out = np.zeros_like(t.tp)
    np.divide(t.tp, ps, out=out, where=ps != 0)
    return out


def average_precision(t: ThresholdTable) -> float | None:
    if t.pos <= 0:
        return None
    recall = t.tp / t.pos
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision_curve(t)))


def log_loss(y: np.ndarray[Any, Any], p: Floats, w: Floats) -> float:
    eps = np.finfo(np.float64).eps
    # the probability given to the actual label, clipped as scikit-learn clips each class's
    p_actual = np.clip(np.where(y == 1, p, 1 - p), eps, 1 - eps)
    return float(np.average(-np.log(p_actual), weights=w))


def brier(y: np.ndarray[Any, Any], p: Floats, w: Floats) -> float:
    return float(np.average((y - p) ** 2, weights=w))


def calibration(y: np.ndarray[Any, Any], p: Floats, w: Floats) -> dict[str, list[float]]:
    """Mean predicted probability against the observed positive rate, in equal-width bins
    (bin edges as scikit-learn's ``calibration_curve`` places them); empty bins left out."""
    edges = np.linspace(0.0, 1.0, CALIBRATION_BINS + 1)
    ids = np.searchsorted(edges[1:-1], p)
    total = np.bincount(ids, weights=w, minlength=CALIBRATION_BINS)
    true = np.bincount(ids, weights=w * y, minlength=CALIBRATION_BINS)
    pred = np.bincount(ids, weights=w * p, minlength=CALIBRATION_BINS)
    keep = total > 0
    return {
        "prob_pred": (pred[keep] / total[keep]).tolist(),
        "prob_true": (true[keep] / total[keep]).tolist(),
        "weight": total[keep].tolist(),
    }


def _at_or_above(t: ThresholdTable, edges: Floats, strictly: bool) -> tuple[Floats, Floats]:
    """Weighted positives and negatives scoring >= each edge (> with ``strictly``)."""
    k = np.searchsorted(-t.thresholds, -edges, side="left" if strictly else "right")
    tp = np.where(k > 0, t.tp[np.maximum(k - 1, 0)], 0.0)
    fp = np.where(k > 0, t.fp[np.maximum(k - 1, 0)], 0.0)
    return tp, fp


def histograms(t: ThresholdTable, edges: Floats) -> dict[str, list[float]]:
    """Weighted counts of positives and negatives per score bin [edges[i], edges[i+1]) (the
    last bin closed), read exactly from the threshold table."""
    tp, fp = _at_or_above(t, edges, strictly=False)
    tp_top, fp_top = _at_or_above(t, edges[-1:], strictly=True)
    tp[-1], fp[-1] = tp_top[0], fp_top[0]
    return {
        "edges": edges.tolist(),
        "positives": (tp[:-1] - tp[1:]).tolist(),
        "negatives": (fp[:-1] - fp[1:]).tolist(),
    }


def display_indices(
    x: Floats, y: Floats, keep: list[int], points: int = DISPLAY_POINTS
) -> np.ndarray[Any, Any]:
    """About ``points`` indices spread evenly along the curve's length, plus both ends and
    the rows in ``keep`` (operating points): for drawing only."""
    n = len(x)
    if n <= points:
        return np.arange(n)
    step = np.abs(np.diff(x)) + np.abs(np.diff(y))
    length = np.r_[0.0, np.cumsum(step)]
    targets = np.linspace(0.0, length[-1], points)
    idx = np.searchsorted(length, targets).clip(0, n - 1)
    return np.unique(np.r_[0, idx, n - 1, keep])


def f1_optimal(t: ThresholdTable) -> float | None:
    if t.pos <= 0:
        return None
    f1 = 2 * t.tp / (t.tp + t.fp + t.pos)
    return float(t.thresholds[int(np.argmax(f1))])


def curves(t: ThresholdTable, operating: list[float]) -> dict[str, Any]:
    """ROC, PR and gain curves reduced for display, with the operating points kept."""
    keep = [max(0, int(np.searchsorted(-t.thresholds, -th, side="right")) - 1) for th in operating]
    out: dict[str, Any] = {}
    if t.pos > 0 and t.neg > 0:
        fpr, tpr = t.fp / t.neg, t.tp / t.pos
        i = display_indices(fpr, tpr, keep)
        out["roc"] = {"fpr": [0.0, *fpr[i].tolist()], "tpr": [0.0, *tpr[i].tolist()],
                      "threshold": [None, *t.thresholds[i].tolist()]}  # fmt: skip
    if t.pos > 0:
        recall, precision = t.tp / t.pos, precision_curve(t)
        i = display_indices(recall, precision, keep)
        out["pr"] = {"recall": recall[i].tolist(), "precision": precision[i].tolist(),
                     "threshold": t.thresholds[i].tolist()}  # fmt: skip
        share = (t.tp + t.fp) / (t.pos + t.neg)
        i = display_indices(share, recall, keep)
        gain = recall[i]
        out["gain"] = {"population": [0.0, *share[i].tolist()], "gain": [0.0, *gain.tolist()],
                       "lift": [None, *(gain / share[i]).tolist()]}  # fmt: skip
    return out


def is_probability(score: Floats) -> bool:
    return bool(score.min() >= 0.0 and score.max() <= 1.0)


def evaluate_binary(table: PredictionTable) -> tuple[dict[str, Any], ThresholdTable]:
    y, s, w = table.y_true, table.y_score, table.weights
    t = threshold_table(y, s, w)
    weights = table.w
    probs = is_probability(s)
    notes = []
    if t.pos <= 0 or t.neg <= 0:
        only = "positive" if t.neg <= 0 else "negative"
        notes.append(f"every row is {only}: ROC AUC and the ROC curve are undefined")
    if not probs:
        notes.append(
            "scores are not probabilities in [0, 1]: no log loss, Brier score or calibration"
        )
    best = f1_optimal(t)
    operating = [DEFAULT_THRESHOLD] + ([best] if best is not None else [])
    metrics: dict[str, float | None] = {
        "roc_auc": roc_auc(t),
        "average_precision": average_precision(t),
        "log_loss": log_loss(y, s, weights) if probs else None,
        "brier": brier(y, s, weights) if probs else None,
        "positives": t.pos,
        "negatives": t.neg,
        "prevalence": t.pos / (t.pos + t.neg),
        "rows": float(len(y)),
        "distinct_scores": float(len(t.thresholds)),
    }
    lo, hi = (0.0, 1.0) if probs else (float(s.min()), float(s.max()))
    edges = np.linspace(lo, hi if hi > lo else lo + 1.0, HISTOGRAM_BINS + 1)
    result = {
        "metrics": metrics,
        "default_threshold": DEFAULT_THRESHOLD,
        "f1_optimal_threshold": best,
        "at_default": t.at(DEFAULT_THRESHOLD),
        "at_f1_optimal": t.at(best) if best is not None else None,
        "curves": curves(t, operating),
        "score_histogram": histograms(t, edges),
        "calibration": calibration(y, s, weights) if probs else None,
        "probabilities": probs,
        "weighted": w is not None,
        "notes": notes,
    }
    return result, t


def finite_or_none(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else value


FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]


class ThresholdQuery(BaseModel):
    """``t``: one or more thresholds (a score >= t is called positive)."""

    model_config = ConfigDict(extra="forbid")
    t: Annotated[list[FiniteFloat], Field(min_length=1, max_length=1000)]


AT_THRESHOLD = "At the chosen threshold"
# Rates at the page's threshold (fields of a threshold point): key, title, better, headline.
LIVE_METRICS: tuple[tuple[str, str, Direction, bool], ...] = (
    ("precision", "precision", "higher", True),
    ("recall", "recall (TPR)", "higher", True),
    ("f1", "F1", "higher", True),
    ("fpr", "false positive rate", "lower", False),
    ("specificity", "specificity (TNR)", "higher", False),
    ("accuracy", "accuracy", "higher", False),
    ("predicted_positive_share", "predicted positive", "none", False),
)


class BinaryClassification(Analyzer):
    name = "binary"
    title = "Binary classification"
    tasks = frozenset({"binary"})
    template_dirs = (Path(__file__).parent / "templates",)
    metrics = (
        MetricSpec("roc_auc", "ROC AUC", "higher", summary=True, headline=True, group="Ranking"),
        MetricSpec("average_precision", "PR AUC (average precision)", "higher", summary=True,
                   headline=True, group="Ranking"),
        MetricSpec("log_loss", "log loss", "lower", summary=True, headline=True,
                   group="Calibration"),
        MetricSpec("brier", "Brier score", "lower", headline=True, group="Calibration"),
        *(MetricSpec(key, title, way, headline=first, group=AT_THRESHOLD, query="thresholds")
          for key, title, way, first in LIVE_METRICS),
        MetricSpec("rows", "rows", group="Data"),
        MetricSpec("positives", "positives", group="Data"),
        MetricSpec("negatives", "negatives", group="Data"),
        MetricSpec("prevalence", "prevalence", group="Data"),
        MetricSpec("distinct_scores", "distinct scores", group="Data"),
    )  # fmt: skip
    queries = (SideQuery("thresholds", ThresholdQuery, ("thresholds",)),)

    def compute(self, table: PredictionTable) -> dict[str, Any]:
        return self.analyze(table).result

    def analyze(self, table: PredictionTable) -> Computed:
        result, thresholds = evaluate_binary(table)
        return Computed(result, {"thresholds": threshold_arrow(thresholds)})

    def panels(self, result: dict[str, Any]) -> list[Panel]:
        from modelyard.analyzers import binary_panels

        return binary_panels.panels(result)

    def evaluation_panels(self, item: EvaluationView) -> list[Panel]:
        from modelyard.analyzers import binary_compare

        return binary_compare.evaluation_panels(item, self.panels(item.result))

    def comparison_panels(self, items: list[EvaluationView]) -> list[Panel]:
        from modelyard.analyzers import binary_compare

        return binary_compare.comparison_panels(items)

    def metrics_at(self, items: list[EvaluationView]) -> dict[str, dict[str, float | None]]:
        from modelyard.analyzers import binary_compare

        return binary_compare.metrics_at(items, [key for key, *_ in LIVE_METRICS] + ["threshold"])

    def query(self, name: str, tables: Mapping[str, pa.Table], params: BaseModel) -> Any:
        assert isinstance(params, ThresholdQuery)
        table = threshold_from_arrow(tables["thresholds"])
        return [table.at(t) for t in params.t]

    def combine(self, name: str, answers: list[tuple[str, Any]], params: BaseModel) -> Any:
        """The threshold slider's body: every model's point at the (first) threshold."""
        assert isinstance(params, ThresholdQuery)
        return {
            "threshold": params.t[0],
            "evaluations": [{"id": i, **points[0]} for i, points in answers],
        }
