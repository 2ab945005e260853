"""Headline metrics: the one metric a list of projects or models shows for each, and its best.

A group of runs (a project's finished runs; the runs that made a model's versions) is headed
by the metric most of them logged. Among metrics logged equally often, a training metric
(``train_…``) comes after the others, then well-known evaluation metrics (auc, accuracy, f1,
…) come first, then the rest by name. Lower is better for metrics named like a loss or an
error (loss, error, rmse, mae, …), higher for the rest. The best value is the best of the
runs' latest values of that metric.

One query answers every group: window functions rank each group's runs by each metric both
ways, so the best run is known whichever way the metric points.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, FromClause, func, or_, select

from modelyard.floats import encode_float
from modelyard.metadata import tables as t
from modelyard.schemas import HeadlineMetric

# Metrics named with one of these words (or ending in "loss" or "error") are better lower.
LOWER_IS_BETTER = frozenset((
    "loss", "error", "err", "rmse", "mse", "mae", "mape", "smape", "msle", "rmsle", "nll",
    "logloss", "perplexity", "ppl", "brier", "wer", "cer", "fpr", "fnr", "latency", "regret",
    "cost", "deviance", "distance",
))  # fmt: skip
# Among metrics logged equally often, these head a group first, in this order.
WELL_KNOWN = (
    "auc", "roc_auc", "auroc", "accuracy", "acc", "f1", "f1_score", "average_precision",
    "ap", "map", "ndcg", "r2", "precision", "recall", "val_loss", "loss", "log_loss", "rmse",
    "mae",
)  # fmt: skip
WORDS = re.compile(r"[a-z0-9]+")
RECENT_RUNS = 1000  # a project is headed by its latest finished runs
EXPLANATION = (
    "The metric most runs logged (training metrics last among equals, then auc, accuracy, "
    "f1 and other well-known ones first); its best latest value over the runs. Lower is "
    "better for names like loss, error, rmse or mae, higher for the rest."
)


def higher_is_better(key: str) -> bool:
    """Whether a bigger value of metric ``key`` is better, judged by its name."""
    name = key.lower()
    words = set(WORDS.findall(name.replace("_", " ")))
    return not (words & LOWER_IS_BETTER or name.endswith(("loss", "error")))


def _rank(key: str, runs: int) -> tuple[int, bool, int, str]:
    known = key.lower()
    order = WELL_KNOWN.index(known) if known in WELL_KNOWN else len(WELL_KNOWN)
    return (-runs, known.startswith("train"), order, key)


@dataclass(frozen=True, slots=True)
class _Best:
    runs: int
    high: tuple[Any, bool, str] | None = None  # value, is_nan, run id
    low: tuple[Any, bool, str] | None = None


def headlines(
    conn: Connection, runs: FromClause, group: ColumnElement[Any], run_pk: ColumnElement[Any]
) -> dict[Any, HeadlineMetric]:
    """Each group's headline metric, for the rows of ``runs`` (each a group and a run's pk,
    one row per run and group)."""
    lm, key = t.series_latest, t.series_key
    part = [group, lm.c.key_id]
    ranked = (
        select(
            group.label("grp"),
            key.c.name.label("key"),
            t.run.c.id.label("run_id"),
            lm.c.value,
            lm.c.is_nan,
            func.count().over(partition_by=part).label("n"),
            func.row_number()
            .over(partition_by=part, order_by=[lm.c.is_nan, lm.c.value.desc(), t.run.c.pk])
            .label("high"),
            func.row_number()
            .over(partition_by=part, order_by=[lm.c.is_nan, lm.c.value.asc(), t.run.c.pk])
            .label("low"),
        )
        .select_from(runs)
        .join(t.run, t.run.c.pk == run_pk)
        .join(lm, (lm.c.owner_kind == t.SERIES_RUN) & (lm.c.owner_id == t.run.c.pk))
        .join(key, key.c.id == lm.c.key_id)
        .subquery()
    )
    rows = conn.execute(select(ranked).where(or_(ranked.c.high == 1, ranked.c.low == 1))).all()
    return _choose(rows)


def _choose(rows: Sequence[Any]) -> dict[Any, HeadlineMetric]:
    best: dict[Any, dict[str, _Best]] = {}
    for r in rows:
        seen = best.setdefault(r.grp, {}).get(r.key, _Best(int(r.n)))
        found = (r.value, bool(r.is_nan), r.run_id)
        high = found if r.high == 1 else seen.high
        best[r.grp][r.key] = _Best(seen.runs, high, found if r.low == 1 else seen.low)
    out: dict[Any, HeadlineMetric] = {}
    for grp, metrics in best.items():
        name = min(metrics, key=lambda k: _rank(k, metrics[k].runs))
        up = higher_is_better(name)
        top = metrics[name].high if up else metrics[name].low
        assert top is not None  # every (group, metric) has a first row both ways
        value, is_nan, run_id = top
        out[grp] = HeadlineMetric(
            key=name,
            value="NaN" if is_nan else encode_float(float(value)),
            higher_is_better=up,
            runs=metrics[name].runs,
            run_id=run_id,
        )
    return out


def project_headlines(conn: Connection) -> dict[int, HeadlineMetric]:
    """Every project's headline metric over its latest ``RECENT_RUNS`` finished runs, by
    project id: a list page costs the same for a project of a million runs as of a thousand
    (each project's latest runs are read off the run index by project and start time)."""
    r, latest = t.run.c, t.run.alias("latest")
    newest = (
        select(latest.c.pk)
        .where((latest.c.project_id == t.project.c.id) & (latest.c.status == "finished"))
        .order_by(latest.c.start_time.desc(), latest.c.pk.desc())
        .limit(RECENT_RUNS)
        .correlate(t.project)
    )
    recent = (
        select(t.project.c.id.label("project_id"), r.pk)
        .select_from(t.project)
        .join(t.run, r.pk.in_(newest))
    )
    # Materialised first, or the planner runs the per-project LIMIT subquery once for each
    # latest value it walks (9 s on a project of 100,000 runs; 0.25 s this way).
    runs = recent.cte("recent_runs").prefix_with("MATERIALIZED")
    return headlines(conn, runs, runs.c.project_id, runs.c.pk)


def model_headlines(
    conn: Connection, readable: frozenset[int] | None = None
) -> dict[str, HeadlineMetric]:
    """Every model's headline metric over the runs that made its versions (those in
    ``readable`` projects, unless None), by model name."""
    mv = t.model_version
    made_by = select(mv.c.model, mv.c.run_pk)
    if readable is not None:
        made_by = made_by.join(t.run, t.run.c.pk == mv.c.run_pk).where(
            t.run.c.project_id.in_(sorted(readable))
        )
    made = made_by.distinct().cte("made").prefix_with("MATERIALIZED")
    return headlines(conn, made, made.c.model, made.c.run_pk)
