"""Fairness of a binary classifier across the groups of each group column.

A row is selected (predicted positive) when its score is >= the threshold. For every group
column the rows are counted once per group × true label × prediction (weighted, with
``np.bincount``); every rate comes from those counts, so they equal Fairlearn's
``selection_rate``, ``true_positive_rate`` and ``false_positive_rate`` under a ``MetricFrame``
with the sample weights, and the gaps equal Fairlearn's ``demographic_parity_difference`` /
``_ratio``, ``equalized_odds_difference`` / ``_ratio`` (worst case of TPR and FPR) and
``equal_opportunity_difference`` / ``_ratio`` (between groups).

One deliberate difference: a rate whose denominator is zero (TPR in a group with no positives,
FPR in a group with no negatives, precision in a group with no one selected) is undefined
(None) and left out of the gaps, with a note; Fairlearn counts it as 0, which invents a gap.
A ratio is None when every group's rate is 0 (nothing to compare). The four-fifths rule flags
a demographic parity ratio below 0.8.

The permutation test asks how often a gap as large as the observed one arises when group
membership is unrelated to the scores: group labels are shuffled ``permutations`` times with
``numpy.random.default_rng(seed).permutation`` (one call per permutation, in order), the gap
is recomputed each time, and p = (1 + #(gap >= observed)) / (1 + permutations), ties within
1e-12 counting as ">=".

Result (JSON)::

    {
      "threshold": float, "permutations": int, "seed": int, "weighted": bool,
      "columns": [
        {
          "column": str,
          "groups": [{"group": str, "rows": int, "weight": float, "positives": float,
                      "selection_rate", "tpr", "fpr", "precision", "auc"}, ...],  # float | None
          "overall": {the same keys but "group"},
          "demographic_parity": {"difference", "ratio", "p_value"},
          "equalized_odds": {"difference", "ratio", "p_value"},
          "equal_opportunity": {"difference", "ratio"},
          "four_fifths": {"flagged": bool, "ratio": float | None,
                          "lowest": str | None, "highest": str | None},
          "notes": [str, ...]
        }, ...
      ],
      "notes": [str, ...]
    }
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from modelyard.analyzers.base import (
    Analyzer,
    EvaluationView,
    Floats,
    MetricSpec,
    Panel,
    PredictionTable,
)
from modelyard.analyzers.binary import roc_auc, threshold_table

Ints = np.ndarray[Any, np.dtype[np.intp]]
DEFAULT_THRESHOLD = 0.5
FOUR_FIFTHS = 0.8
TIE_TOLERANCE = 1e-12
# cells of one permutation batch (permutations × rows) held in memory at once
BATCH_CELLS = 4_000_000
RATES = ("selection_rate", "tpr", "fpr", "precision")


def cell_counts(g: Ints, y: np.ndarray[Any, Any], pred: Ints, w: Floats, groups: int) -> Floats:
    """Weighted counts indexed [..., group, true label, prediction]; ``g`` may hold several
    permutations of the group index, one per row of a 2-D array."""
    codes = g * 4 + (y * 2 + pred)
    batch = codes.shape[0] if codes.ndim == 2 else 1
    offsets = (np.arange(batch) * groups * 4).reshape((batch, 1) if codes.ndim == 2 else (1,))
    weights = np.broadcast_to(w, codes.shape).ravel()
    flat = np.bincount((codes + offsets).ravel(), weights=weights, minlength=batch * groups * 4)
    return flat.reshape((*codes.shape[:-1], groups, 2, 2))


def _divide(a: Floats, b: Floats) -> Floats:
    out = np.full(np.shape(a), np.nan)
    np.divide(a, b, out=out, where=b > 0)
    return out


def rates(counts: Floats) -> dict[str, Floats]:
    """Selection rate, TPR, FPR and precision per group (NaN where undefined)."""
    selected = counts[..., 1].sum(axis=-1)
    positives = counts[..., 1, :].sum(axis=-1)
    negatives = counts[..., 0, :].sum(axis=-1)
    return {
        "selection_rate": _divide(selected, counts.sum(axis=(-1, -2))),
        "tpr": _divide(counts[..., 1, 1], positives),
        "fpr": _divide(counts[..., 0, 1], negatives),
        "precision": _divide(counts[..., 1, 1], selected),
    }


def difference(values: Floats) -> Floats:
    """Largest minus smallest defined value along the last axis (NaN when none is defined)."""
    out: Floats = np.fmax.reduce(values, axis=-1) - np.fmin.reduce(values, axis=-1)
    return out


def ratio(values: Floats) -> Floats:
    """Smallest over largest defined value (NaN when none is defined or all are 0)."""
    return _divide(np.fmin.reduce(values, axis=-1), np.fmax.reduce(values, axis=-1))


def gaps(r: dict[str, Floats]) -> dict[str, Floats]:
    tpr_gap, fpr_gap = difference(r["tpr"]), difference(r["fpr"])
    return {
        "demographic_parity_difference": difference(r["selection_rate"]),
        "demographic_parity_ratio": ratio(r["selection_rate"]),
        "equalized_odds_difference": np.fmax(tpr_gap, fpr_gap),
        "equalized_odds_ratio": np.fmin(ratio(r["tpr"]), ratio(r["fpr"])),
        "equal_opportunity_difference": tpr_gap,
        "equal_opportunity_ratio": ratio(r["tpr"]),
    }


def permutation_gaps(
    g: Ints,
    y: np.ndarray[Any, Any],
    pred: Ints,
    w: Floats,
    groups: int,
    *,
    permutations: int,
    seed: int,
) -> dict[str, Floats]:
    """The demographic parity and equalized odds differences under ``permutations`` shuffles
    of the group labels, counted in batches of permutations at a time."""
    rng = np.random.default_rng(seed)
    batch = max(1, BATCH_CELLS // len(g))
    dp: list[Floats] = []
    eo: list[Floats] = []
    for start in range(0, permutations, batch):
        shuffled = np.stack([rng.permutation(g) for _ in range(min(batch, permutations - start))])
        found = gaps(rates(cell_counts(shuffled, y, pred, w, groups)))
        dp.append(found["demographic_parity_difference"])
        eo.append(found["equalized_odds_difference"])
    empty = np.empty(0)
    return {
        "demographic_parity": np.concatenate([empty, *dp]),
        "equalized_odds": np.concatenate([empty, *eo]),
    }


def p_value(observed: float, permuted: Floats) -> float | None:
    if np.isnan(observed) or not len(permuted):
        return None
    at_least = int(np.count_nonzero(permuted >= observed - TIE_TOLERANCE))
    return (1 + at_least) / (1 + len(permuted))


def group_aucs(
    g: Ints, y: np.ndarray[Any, Any], s: Floats, w: Floats | None, groups: int
) -> Floats:
    """ROC AUC within each group (NaN for a group with one class), from one sort by group."""
    order = np.argsort(g, kind="stable")
    bounds = np.searchsorted(g[order], np.arange(groups + 1))
    aucs = np.full(groups, np.nan)
    for i in range(groups):
        rows = order[bounds[i] : bounds[i + 1]]
        auc = roc_auc(threshold_table(y[rows], s[rows], None if w is None else w[rows]))
        aucs[i] = np.nan if auc is None else auc
    return aucs


def _value(x: Any) -> float | None:
    return None if np.isnan(x) else float(x)


def _summaries(counts: Floats, rows: Ints, aucs: Floats) -> list[dict[str, Any]]:
    r = rates(counts)
    weight, positives = counts.sum(axis=(-1, -2)), counts[..., 1, :].sum(axis=-1)
    return [
        {"rows": int(rows[i]), "weight": float(weight[i]), "positives": float(positives[i])}
        | {name: _value(r[name][i]) for name in RATES}
        | {"auc": _value(aucs[i])}
        for i in range(len(rows))
    ]


def four_fifths(names: list[str], selection: Floats, dp_ratio: float | None) -> dict[str, Any]:
    defined = ~np.isnan(selection)
    if not defined.any():
        return {"flagged": False, "ratio": dp_ratio, "lowest": None, "highest": None}
    lowest = names[int(np.argmin(np.where(defined, selection, np.inf)))]
    highest = names[int(np.argmax(np.where(defined, selection, -np.inf)))]
    flagged = dp_ratio is not None and dp_ratio < FOUR_FIFTHS
    return {"flagged": flagged, "ratio": dp_ratio, "lowest": lowest, "highest": highest}


UNDEFINED = {
    "auc": "ROC AUC (one class only)",
    "tpr": "TPR (no positives; left out of equal opportunity and equalized odds)",
    "fpr": "FPR (no negatives; left out of equalized odds)",
    "precision": "precision (no row selected)",
}


def column_notes(column: str, groups: list[dict[str, Any]]) -> list[str]:
    notes = []
    for key, label in UNDEFINED.items():
        missing = [repr(r["group"]) for r in groups if r[key] is None]
        if missing:
            shown = ", ".join(missing[:10]) + (" …" if len(missing) > 10 else "")
            notes.append(f"{column}: undefined {label} in group(s) {shown}")
    return notes


def gap_sections(found: dict[str, Floats], permuted: dict[str, Floats]) -> dict[str, Any]:
    """The gaps as the result reports them, with the permutation p-values."""
    sections: dict[str, Any] = {}
    for name in ("demographic_parity", "equalized_odds", "equal_opportunity"):
        diff = found[f"{name}_difference"]
        sections[name] = {"difference": _value(diff), "ratio": _value(found[f"{name}_ratio"])}
        if name in permuted:
            sections[name]["p_value"] = p_value(float(diff), permuted[name])
    return sections


def column_report(
    table: PredictionTable, column: str, pred: Ints, *, permutations: int, seed: int
) -> dict[str, Any]:
    labels, g = np.unique(table.groups[column], return_inverse=True)
    names, k = [str(v) for v in labels], len(labels)
    y, w = table.y_true, table.w
    counts = cell_counts(g, y, pred, w, k)
    aucs = group_aucs(g, y, table.y_score, table.weights, k)
    summaries = _summaries(counts, np.bincount(g, minlength=k), aucs)
    groups = [{"group": n} | s for n, s in zip(names, summaries, strict=True)]
    total = roc_auc(threshold_table(y, table.y_score, table.weights))
    overall_auc = np.array([np.nan if total is None else total])
    overall = _summaries(counts.sum(axis=0, keepdims=True), np.array([len(y)]), overall_auc)[0]
    permuted = permutation_gaps(g, y, pred, w, k, permutations=permutations, seed=seed)
    group_rates = rates(counts)
    sections = gap_sections(gaps(group_rates), permuted)
    selection = group_rates["selection_rate"]
    return {
        "column": column,
        "groups": groups,
        "overall": overall,
        **sections,
        "four_fifths": four_fifths(names, selection, sections["demographic_parity"]["ratio"]),
        "notes": column_notes(column, groups),
    }


def fairness_report(
    table: PredictionTable,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    permutations: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """The fairness result for every group column of a binary table (shape in the module
    docstring)."""
    pred = (table.y_score >= threshold).astype(np.intp)
    notes = []
    if not pred.any():
        notes.append(f"no score reaches the threshold {threshold}: no row is selected")
    elif pred.all():
        notes.append(f"every score reaches the threshold {threshold}: every row is selected")
    return {
        "threshold": threshold,
        "permutations": permutations,
        "seed": seed,
        "weighted": table.weights is not None,
        "columns": [
            column_report(table, column, pred, permutations=permutations, seed=seed)
            for column in table.groups
        ],
        "notes": notes,
    }


def rates_figure(report: dict[str, Any]) -> dict[str, Any]:
    names = [g["group"] for g in report["groups"]]
    labels = {
        "selection_rate": "selection rate",
        "tpr": "TPR",
        "fpr": "FPR",
        "precision": "precision",
    }
    return {
        "data": [
            {
                "type": "bar",
                "name": labels[key],
                "x": names,
                "y": [g[key] for g in report["groups"]],
            }
            for key in RATES
        ],
        "layout": {
            "barmode": "group",
            "xaxis": {"title": {"text": report["column"]}, "type": "category"},
            "yaxis": {"range": [0, 1]},
        },
    }


GAPS = {
    "demographic_parity": "demographic parity",
    "equalized_odds": "equalized odds",
    "equal_opportunity": "equal opportunity",
}


class Gap(BaseModel):
    difference: float | None = None
    ratio: float | None = None


class ColumnReport(BaseModel):
    """What the pages read of one group column's report (the rest goes to the templates)."""

    model_config = ConfigDict(extra="allow")
    column: str
    demographic_parity: Gap
    equalized_odds: Gap
    equal_opportunity: Gap
    notes: list[str] = []


class FairnessResult(BaseModel):
    model_config = ConfigDict(extra="allow")
    columns: list[ColumnReport]
    notes: list[str] = []


class Fairness(Analyzer):
    name = "fairness"
    title = "Fairness"
    tasks = frozenset({"binary"})
    requires = frozenset({"y_true", "y_score", "groups"})
    template_dirs = (Path(__file__).parent / "templates",)

    def compute(self, table: PredictionTable) -> dict[str, Any]:
        # Fewer permutations on very large tables keep an evaluation to seconds; with that
        # many rows any real gap is far beyond what chance would give anyway.
        permutations = int(min(1000, max(99, 20_000_000 // max(1, len(table)))))
        return fairness_report(table, threshold=table.threshold, permutations=permutations)

    def headline(self, result: dict[str, Any]) -> dict[str, float | None]:
        """Each group column's gaps: ``<column>.<gap>_difference`` and ``_ratio``."""
        out: dict[str, float | None] = {}
        for column in FairnessResult.model_validate(result).columns:
            for gap in GAPS:
                found: Gap = getattr(column, gap)
                out[f"{column.column}.{gap}_difference"] = found.difference
                out[f"{column.column}.{gap}_ratio"] = found.ratio
        return out

    def metric(self, key: str) -> MetricSpec:
        """A gap's difference is better lower, its ratio higher."""
        column, _, name = key.rpartition(".")
        for gap, label in GAPS.items():
            if name == f"{gap}_difference":
                return MetricSpec(key, f"{column}: {label} difference", "lower")
            if name == f"{gap}_ratio":
                return MetricSpec(key, f"{column}: {label} ratio", "higher")
        return MetricSpec(key)

    def notes(self, result: dict[str, Any]) -> list[str]:
        parsed = FairnessResult.model_validate(result)
        return [*parsed.notes, *(n for c in parsed.columns for n in c.notes)]

    def panels(self, result: dict[str, Any]) -> list[Panel]:
        return [
            Panel(title=f"Rates by {report['column']}", figure=rates_figure(report))
            for report in result["columns"]
        ]

    def evaluation_panels(self, item: EvaluationView) -> list[Panel]:
        details = Panel(
            "Reports", template="fairness_details.html", context={"r": item.result}, block=True
        )
        return [details, *self.panels(item.result)]

    def comparison_panels(self, items: list[EvaluationView]) -> list[Panel]:
        """Per group column found in any evaluation: each evaluation's report of it."""
        reports = [(i, c) for i in items for c in i.result.get("columns", [])]
        names = list(dict.fromkeys(c["column"] for _, c in reports))
        columns = [
            {"column": name, "reports": [(i, c) for i, c in reports if c["column"] == name]}
            for name in names
        ]
        if not columns:
            return []
        context = {"columns": columns}
        return [Panel("Fairness", template="fairness_compare.html", context=context, block=True)]
