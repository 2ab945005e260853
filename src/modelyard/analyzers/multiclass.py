"""Multiclass classification, from one weighted confusion matrix and one-vs-rest sorts.

The predicted class is the column with the highest score (the first on ties, as
``numpy.argmax``). Precision, recall and F1 come from the weighted confusion matrix; a value
that divides by zero (a class never predicted, or absent from y_true) is None and left out of
the macro and weighted averages, as scikit-learn does with ``zero_division=np.nan``; balanced
accuracy is the mean recall of the classes present, as scikit-learn's. Log loss clips
probabilities to [eps, 1 - eps] like scikit-learn and is reported only when every row is a
probability distribution (values in [0, 1] summing to 1 within 1e-6). One-vs-rest ROC AUC uses
the exact binary threshold table per class; the macro and weighted (by weighted prevalence)
averages run over the classes that have an AUC. Top-k accuracy breaks ties among equal scores
the way scikit-learn's ``top_k_accuracy_score`` does (the later column ranks first).

Result (JSON)::

    {
      "classes": [str, ...],                                   # k names, column order
      "metrics": {"accuracy", "balanced_accuracy",
                  "precision_macro", "precision_weighted", "precision_micro",
                  "recall_macro", "recall_weighted", "recall_micro",
                  "f1_macro", "f1_weighted", "f1_micro",
                  "log_loss", "roc_auc_macro", "roc_auc_weighted",
                  "top_2_accuracy", "top_3_accuracy",           # only when k > 2, k > 3
                  "rows", "weight"},                            # float | None each
      "per_class": [{"class", "support", "predicted", "precision", "recall", "f1",
                     "roc_auc"}, ...],                          # one per class
      "confusion_matrix": [[float] * k] * k,                    # rows true, columns predicted
      "probabilities": bool,
      "weighted": bool,
      "notes": [str, ...]
    }
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from modelyard.analyzers.base import (
    Analyzer,
    EvaluationView,
    Floats,
    MetricSpec,
    Panel,
    PredictionTable,
)
from modelyard.analyzers.binary import roc_auc, threshold_table

PROBABILITY_TOLERANCE = 1e-6
TOP_K = (2, 3)


def _divide(a: Floats, b: Floats) -> Floats:
    """a / b, NaN where b is 0."""
    out = np.full(a.shape, np.nan)
    np.divide(a, b, out=out, where=b != 0)
    return out


def _mean(values: Floats, weights: Floats | None = None) -> float | None:
    """Average over the defined (not NaN) values; None when there are none."""
    keep = ~np.isnan(values)
    if weights is not None:
        keep &= weights > 0
    if not keep.any():
        return None
    return float(np.average(values[keep], weights=None if weights is None else weights[keep]))


def _listed(values: Floats) -> list[float | None]:
    return [None if np.isnan(v) else float(v) for v in values]


def confusion_matrix(
    y: np.ndarray[Any, Any], pred: np.ndarray[Any, Any], w: Floats, k: int
) -> Floats:
    cm = np.bincount(y * k + pred, weights=w, minlength=k * k).astype(np.float64)
    return cm.reshape(k, k)


def classification_metrics(cm: Floats) -> tuple[dict[str, float | None], dict[str, Floats]]:
    tp = np.diag(cm)
    support, predicted = cm.sum(axis=1), cm.sum(axis=0)
    precision = _divide(tp, predicted)
    recall = _divide(tp, support)
    f1 = _divide(2 * tp, predicted + support)
    micro = float(tp.sum() / cm.sum())
    metrics: dict[str, float | None] = {"accuracy": micro, "balanced_accuracy": _mean(recall)}
    for name, values in (("precision", precision), ("recall", recall), ("f1", f1)):
        metrics[f"{name}_macro"] = _mean(values)
        metrics[f"{name}_weighted"] = _mean(values, support)
        metrics[f"{name}_micro"] = micro
    per_class = {
        "support": support,
        "predicted": predicted,
        "precision": precision,
        "recall": recall,
        "f1": f1,
    }
    return metrics, per_class


def is_distribution(scores: Floats) -> bool:
    in_range = scores.min() >= 0.0 and scores.max() <= 1.0
    return bool(in_range and np.all(np.abs(scores.sum(axis=1) - 1.0) <= PROBABILITY_TOLERANCE))


def log_loss(y: np.ndarray[Any, Any], scores: Floats, w: Floats) -> float:
    eps = np.finfo(np.float64).eps
    p = np.clip(scores[np.arange(len(y)), y], eps, 1 - eps)
    return float(np.average(-np.log(p), weights=w))


def one_vs_rest_auc(y: np.ndarray[Any, Any], scores: Floats, weights: Floats | None) -> Floats:
    """ROC AUC of each class against the rest; NaN where the class or the rest is absent."""
    aucs = [roc_auc(threshold_table(y == c, scores[:, c], weights)) for c in range(scores.shape[1])]
    return np.array([np.nan if a is None else a for a in aucs])


def top_k_accuracy(y: np.ndarray[Any, Any], scores: Floats, w: Floats, k: int) -> float:
    """Weighted share of rows whose true class ranks among the k highest scores; among equal
    scores a later column ranks higher (scikit-learn's stable sort, reversed)."""
    true_score = scores[np.arange(len(y)), y][:, None]
    later = np.arange(scores.shape[1])[None, :] > y[:, None]
    rank = (scores > true_score).sum(axis=1) + ((scores == true_score) & later).sum(axis=1)
    return float(np.average(rank < k, weights=w))


def evaluate_multiclass(table: PredictionTable) -> dict[str, Any]:
    y, scores, w = table.y_true, table.y_score, table.w
    k = scores.shape[1]
    classes = [str(c) for c in table.classes] or [str(c) for c in range(k)]
    cm = confusion_matrix(y, np.argmax(scores, axis=1), w, k)
    metrics, per_class = classification_metrics(cm)
    support = per_class["support"]
    aucs = one_vs_rest_auc(y, scores, table.weights)
    probabilities = is_distribution(scores)
    metrics["log_loss"] = log_loss(y, scores, w) if probabilities else None
    metrics["roc_auc_macro"] = _mean(aucs)
    metrics["roc_auc_weighted"] = _mean(aucs, support)
    metrics |= {f"top_{t}_accuracy": top_k_accuracy(y, scores, w, t) for t in TOP_K if t < k}
    metrics |= {"rows": float(len(y)), "weight": float(w.sum())}
    rows = {name: _listed(values) for name, values in per_class.items()} | {
        "roc_auc": _listed(aucs)
    }
    return {
        "classes": classes,
        "metrics": metrics,
        "per_class": [
            {"class": c} | {name: rows[name][i] for name in rows} for i, c in enumerate(classes)
        ],
        "confusion_matrix": cm.tolist(),
        "probabilities": probabilities,
        "weighted": table.weights is not None,
        "notes": notes(classes, support, aucs, probabilities),
    }


def notes(classes: list[str], support: Floats, aucs: Floats, probabilities: bool) -> list[str]:
    out = []
    absent = [c for c, s in zip(classes, support, strict=True) if s <= 0]
    if absent:
        out.append(
            f"class(es) {', '.join(absent)} never occur in y_true: their recall and ROC AUC are "
            "undefined and left out of the averages"
        )
    no_auc = [c for c, s, a in zip(classes, support, aucs, strict=True) if s > 0 and np.isnan(a)]
    if no_auc:
        out.append(f"every row is class {', '.join(no_auc)}: its ROC AUC is undefined")
    if not probabilities:
        out.append("scores are not probabilities (each row in [0, 1], summing to 1): no log loss")
    return out


def confusion_figure(result: dict[str, Any]) -> dict[str, Any]:
    classes = result["classes"]
    return {
        "data": [
            {
                "type": "heatmap",
                "z": result["confusion_matrix"],
                "x": classes,
                "y": classes,
                "colorscale": "Blues",
                "hovertemplate": "true %{y}, predicted %{x}: %{z}<extra></extra>",
            }
        ],
        "layout": {
            "xaxis": {"title": {"text": "predicted"}, "type": "category"},
            "yaxis": {"title": {"text": "true"}, "type": "category", "autorange": "reversed"},
        },
    }


def per_class_figure(result: dict[str, Any]) -> dict[str, Any]:
    classes = result["classes"]
    rows = result["per_class"]
    return {
        "data": [
            {"type": "bar", "name": label, "x": classes, "y": [r[key] for r in rows]}
            for key, label in (
                ("precision", "precision"),
                ("recall", "recall"),
                ("f1", "F1"),
                ("roc_auc", "ROC AUC"),
            )
        ],
        "layout": {
            "barmode": "group",
            "xaxis": {"title": {"text": "class"}, "type": "category"},
            "yaxis": {"range": [0, 1]},
        },
    }


class Multiclass(Analyzer):
    name = "multiclass"
    title = "Multiclass classification"
    tasks = frozenset({"multiclass"})
    template_dirs = (Path(__file__).parent / "templates",)
    metrics = (
        MetricSpec("accuracy", "accuracy", "higher", summary=True, headline=True),
        MetricSpec("f1_macro", "f1 (macro)", "higher", summary=True, headline=True),
        MetricSpec("log_loss", "log loss", "lower", summary=True, headline=True),
        MetricSpec("roc_auc_macro", "ROC AUC (macro)", "higher", headline=True),
        MetricSpec("balanced_accuracy", "balanced accuracy", "higher", group="Accuracy"),
        *(
            MetricSpec(f"top_{k}_accuracy", f"top-{k} accuracy", "higher", group="Accuracy")
            for k in TOP_K
        ),
        *(
            MetricSpec(f"{m}_{avg}", f"{m} ({avg})", "higher", group="Averaged over classes")
            for m in ("precision", "recall", "f1")
            for avg in ("macro", "weighted", "micro")
            if (m, avg) != ("f1", "macro")
        ),
        MetricSpec("roc_auc_weighted", "ROC AUC (weighted)", "higher", group="Ranking"),
        MetricSpec("rows", "rows", group="Data"),
        MetricSpec("weight", "total weight", group="Data"),
    )

    def compute(self, table: PredictionTable) -> dict[str, Any]:
        return evaluate_multiclass(table)

    def panels(self, result: dict[str, Any]) -> list[Panel]:
        return [
            Panel(title="Confusion matrix", figure=confusion_figure(result)),
            Panel(title="Per class", figure=per_class_figure(result)),
        ]

    def evaluation_panels(self, item: EvaluationView) -> list[Panel]:
        details = Panel(
            "Details", template="multiclass_details.html", context={"r": item.result}, block=True
        )
        return [details, *self.panels(item.result)]
