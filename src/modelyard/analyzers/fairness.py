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

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from pydantic import BaseModel, ConfigDict

from modelyard.analyzers.base import (
    Analyzer,
    Computed,
    EvaluationView,
    Floats,
    MetricSpec,
    Panel,
    PredictionTable,
    SideQuery,
)
from modelyard.analyzers.binary import ThresholdQuery, ThresholdTable, roc_auc, threshold_table

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


def group_tables(
    g: Ints, y: np.ndarray[Any, Any], s: Floats, w: Floats | None, groups: int
) -> list[ThresholdTable]:
    """Each group's threshold table (its counts at every threshold), from one sort by group."""
    order = np.argsort(g, kind="stable")
    bounds = np.searchsorted(g[order], np.arange(groups + 1))
    found = []
    for i in range(groups):
        rows = order[bounds[i] : bounds[i + 1]]
        found.append(threshold_table(y[rows], s[rows], None if w is None else w[rows]))
    return found


def group_aucs(tables: list[ThresholdTable]) -> Floats:
    """ROC AUC within each group (NaN for a group with one class)."""
    aucs = [roc_auc(t) for t in tables]
    return np.array([np.nan if a is None else a for a in aucs], dtype=np.float64)


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
    table: PredictionTable,
    column: str,
    pred: Ints,
    *,
    permutations: int,
    seed: int,
    tables: list[ThresholdTable] | None = None,
) -> dict[str, Any]:
    """One group column's report; each group's threshold table is appended to ``tables``."""
    labels, g = np.unique(table.groups[column], return_inverse=True)
    names, k = [str(v) for v in labels], len(labels)
    y, w = table.y_true, table.w
    counts = cell_counts(g, y, pred, w, k)
    per_group = group_tables(g, y, table.y_score, table.weights, k)
    if tables is not None:
        tables.extend(per_group)
    aucs = group_aucs(per_group)
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
    return fairness_computed(
        table, threshold=threshold, permutations=permutations, seed=seed
    ).result


def fairness_computed(
    table: PredictionTable, *, threshold: float, permutations: int, seed: int = 0
) -> Computed:
    """The fairness result, and every group's threshold table as the side table
    "fairness_groups" (rows: column index, group index, threshold, tp, fp; each group's rows
    highest threshold first, its last row holding its weighted positives and negatives), from
    which the "fairness" query gives every rate and gap at any threshold."""
    pred = (table.y_score >= threshold).astype(np.intp)
    notes = []
    if not pred.any():
        notes.append(f"no score reaches the threshold {threshold}: no row is selected")
    elif pred.all():
        notes.append(f"every score reaches the threshold {threshold}: every row is selected")
    tables: list[list[ThresholdTable]] = [[] for _ in table.groups]
    columns = [
        column_report(table, c, pred, permutations=permutations, seed=seed, tables=found)
        for c, found in zip(table.groups, tables, strict=True)
    ]
    result = {
        "threshold": threshold,
        "permutations": permutations,
        "seed": seed,
        "weighted": table.weights is not None,
        "columns": columns,
        "notes": notes,
    }
    names = [[g["group"] for g in c["groups"]] for c in columns]
    return Computed(result, {"fairness_groups": groups_arrow(tables, names)})


def groups_arrow(tables: list[list[ThresholdTable]], names: list[list[str]]) -> pa.Table:
    """Every group's threshold table, one after another (column by column, group by group),
    the groups' names in the schema's metadata."""
    parts = [(c, g, t) for c, groups in enumerate(tables) for g, t in enumerate(groups)]
    sizes = [len(t.thresholds) for _, _, t in parts]
    empty = np.empty(0)
    data = pa.table({
        "column": np.repeat([c for c, _, _ in parts], sizes).astype(np.int32),
        "group": np.repeat([g for _, g, _ in parts], sizes).astype(np.int32),
        "threshold": np.concatenate([empty, *(t.thresholds for _, _, t in parts)]),
        "tp": np.concatenate([empty, *(t.tp for _, _, t in parts)]),
        "fp": np.concatenate([empty, *(t.fp for _, _, t in parts)]),
    })  # fmt: skip
    return data.replace_schema_metadata({"groups": json.dumps(names)})


def group_names(data: pa.Table) -> list[list[str]]:
    names: list[list[str]] = json.loads((data.schema.metadata or {})[b"groups"])
    return names


def counts_at(data: pa.Table, threshold: float) -> list[Floats]:
    """Per group column, the weighted counts [group, true label, prediction] when scores >=
    ``threshold`` are selected, read from the "fairness_groups" side table."""
    column = data.column("column").to_numpy()
    group = data.column("group").to_numpy()
    thresholds = data.column("threshold").to_numpy()
    tp, fp = data.column("tp").to_numpy(), data.column("fp").to_numpy()
    change = (column[1:] != column[:-1]) | (group[1:] != group[:-1])
    start = np.flatnonzero(np.r_[True, change])
    end = np.r_[start[1:], len(column)] - 1
    selected = np.add.reduceat((thresholds >= threshold).astype(np.intp), start)
    at = np.maximum(start + selected - 1, 0)
    tp_at = np.where(selected > 0, tp[at], 0.0)
    fp_at = np.where(selected > 0, fp[at], 0.0)
    pos, neg = tp[end], fp[end]
    counts = np.stack([np.stack([neg - fp_at, fp_at], -1), np.stack([pos - tp_at, tp_at], -1)], 1)
    return [counts[column[start] == c] for c in range(int(column[-1]) + 1 if len(column) else 0)]


def live_cells(index: int, counts: Floats, names: list[str]) -> dict[str, Any]:
    """One group column's rates, gaps and four-fifths rule at a threshold, keyed as the
    fairness templates name their live cells ("<column>.<group>.<rate>", ...)."""
    r = rates(counts)
    overall = rates(counts.sum(axis=0, keepdims=True))
    found = gaps(r)
    cells: dict[str, Any] = {}
    for name in RATES:
        cells |= {f"{index}.{g}.{name}": _value(r[name][g]) for g in range(len(names))}
        cells[f"{index}.all.{name}"] = _value(overall[name][0])
    for gap in GAPS:
        cells[f"{index}.{gap}.difference"] = _value(found[f"{gap}_difference"])
        cells[f"{index}.{gap}.ratio"] = _value(found[f"{gap}_ratio"])
    rule = four_fifths(names, r["selection_rate"], _value(found["demographic_parity_ratio"]))
    cells[f"{index}.four_fifths"] = "flagged" if rule["flagged"] else "ok"
    for key in ("ratio", "lowest", "highest"):
        cells[f"{index}.four_fifths.{key}"] = rule[key]
    return cells


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
            "yaxis": {"title": {"text": "rate"}, "range": [0, 1]},
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
    queries = (SideQuery("fairness", ThresholdQuery, ("fairness_groups",)),)

    def compute(self, table: PredictionTable) -> dict[str, Any]:
        return self.analyze(table).result

    def analyze(self, table: PredictionTable) -> Computed:
        # Fewer permutations on very large tables keep an evaluation to seconds; with that
        # many rows any real gap is far beyond what chance would give anyway.
        permutations = int(min(1000, max(99, 20_000_000 // max(1, len(table)))))
        return fairness_computed(table, threshold=table.threshold, permutations=permutations)

    def query(self, name: str, tables: Mapping[str, pa.Table], params: BaseModel) -> Any:
        """Per threshold, every group column's live cells and rates chart (the rates of the
        groups, in the chart's trace order), keyed by the column's index."""
        assert isinstance(params, ThresholdQuery)
        answers = []
        for t in params.t:
            cells: dict[str, Any] = {"threshold": t}
            charts: dict[str, list[list[float | None]]] = {}
            data = tables["fairness_groups"]
            for index, (counts, names) in enumerate(
                zip(counts_at(data, t), group_names(data), strict=True)
            ):
                cells |= live_cells(index, counts, names)
                charts[str(index)] = [
                    [cells[f"{index}.{g}.{rate}"] for g in range(len(counts))] for rate in RATES
                ]
            answers.append({"cells": cells, "charts": charts})
        return answers

    def combine(self, name: str, answers: list[tuple[str, Any]], params: BaseModel) -> Any:
        """What the fairness panels follow: every evaluation's answer at the (first) threshold."""
        assert isinstance(params, ThresholdQuery)
        return {
            "threshold": params.t[0],
            "evaluations": [{"id": i, **found[0]} for i, found in answers],
        }

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
            group = f"Gaps by {column} (at the evaluation's threshold)"
            if name == f"{gap}_difference":
                return MetricSpec(key, f"{label} difference", "lower", group=group)
            if name == f"{gap}_ratio":
                return MetricSpec(key, f"{label} ratio", "higher", group=group)
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
        """The reports and rate charts of every group column, in one block that follows the
        page's threshold."""
        context = live_context(self, item)
        context["figures"] = [rates_figure(c) for c in context["r"]["columns"]]
        return [Panel("Reports", template="fairness_details.html", context=context, block=True)]

    def comparison_panels(self, items: list[EvaluationView]) -> list[Panel]:
        """Per group column found in any evaluation: each evaluation's report of it."""
        found = [live_context(self, i) | {"view": i} for i in items]
        reports = [(f, index, c) for f in found for index, c in enumerate(f["r"]["columns"])]
        names = list(dict.fromkeys(c["column"] for _, _, c in reports))
        columns = [
            {"column": name, "reports": [r for r in reports if r[2]["column"] == name]}
            for name in names
        ]
        if not columns:
            return []
        context = {"columns": columns}
        return [Panel("Fairness", template="fairness_compare.html", context=context, block=True)]


def live_context(analyzer: Fairness, item: EvaluationView) -> dict[str, Any]:
    """The result as the page first shows it: at the threshold its address asks for when the
    evaluation stored its groups' threshold tables (then it follows the slider, through the
    "fairness" query), else as computed at the evaluation's threshold."""
    data = item.side_table("fairness_groups")
    if data is None:
        return {"r": item.result, "id": item.id, "query": "", "at": item.result["threshold"]}
    at = item.threshold if item.chosen is None else item.chosen
    params = ThresholdQuery(t=[at])
    answer = analyzer.query("fairness", {"fairness_groups": data}, params)[0]
    return {"r": result_at(item.result, answer["cells"]), "id": item.id, "query": "fairness",
            "at": at}  # fmt: skip


def result_at(result: dict[str, Any], cells: dict[str, Any]) -> dict[str, Any]:
    """The result with its rates, gaps and four-fifths rule replaced by the live ``cells``
    (p-values and AUCs, which do not follow the threshold, kept)."""
    columns = []
    for index, report in enumerate(result["columns"]):
        groups = [
            g | {k: cells[f"{index}.{gi}.{k}"] for k in RATES}
            for gi, g in enumerate(report["groups"])
        ]
        overall = report["overall"] | {k: cells[f"{index}.all.{k}"] for k in RATES}
        sections = {
            gap: report[gap]
            | {key: cells[f"{index}.{gap}.{key}"] for key in ("difference", "ratio")}
            for gap in GAPS
        }
        rule = {"flagged": cells[f"{index}.four_fifths"] == "flagged"} | {
            key: cells[f"{index}.four_fifths.{key}"] for key in ("ratio", "lowest", "highest")
        }
        columns.append(
            report | sections | {"groups": groups, "overall": overall, "four_fifths": rule}
        )
    return result | {"columns": columns}
