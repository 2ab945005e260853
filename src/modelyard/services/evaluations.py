"""Evaluations: a table of predictions in; exact results, the predictions and (for binary
tasks) the full threshold table stored with the run; any threshold answerable later.

Everything is checked and computed before anything is written, and the files are recorded
in the same transaction as the evaluation, so a bad table or a crash stores nothing half-done.
"""

from __future__ import annotations

import io
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from threading import Lock
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from sqlalchemy import bindparam, insert, select

from modelyard.analyzers.base import PredictionTable, prediction_table
from modelyard.analyzers.binary import ThresholdTable, evaluate_binary
from modelyard.artifacts.base import ArtifactStore, Staged
from modelyard.errors import Conflict, InvalidInput, NotFound
from modelyard.metadata import tables as t
from modelyard.metadata.aspects import EvaluationMetrics, EvaluationProperties
from modelyard.metadata.store import Store, Tx, entity_exists
from modelyard.metadata.urn import dataset_urn, evaluation_urn, model_version_urn
from modelyard.plugins import Plugins
from modelyard.schemas import DatasetIn, EvaluationPublic, ThresholdPoint
from modelyard.services.artifacts import record_staged
from modelyard.services.catalog import put_dataset
from modelyard.services.runs import locked_run, run_row

FILES = {
    "predictions": ("predictions.parquet", "application/vnd.apache.parquet", "table"),
    "thresholds": ("thresholds.arrow", "application/vnd.apache.arrow.file", "table"),
    "result": ("result.json", "application/json", "report"),
}
EVALUATION_ID = r"^[0-9a-f]{32}$"


# --- reading uploads
def _numpy(column: pa.ChunkedArray) -> np.ndarray[Any, Any]:
    if pa.types.is_dictionary(column.type):
        column = column.cast(pa.string())
    if column.null_count:
        raise InvalidInput(f"the column has {column.null_count:,} empty value(s)")
    values: np.ndarray[Any, Any] = column.to_numpy()
    return values


def table_from_arrow(
    data: pa.Table,
    *,
    y_true: str = "y_true",
    y_score: list[str] | None = None,
    weights: str | None = None,
    groups: list[str] | None = None,
    task: Any = None,
    classes: list[Any] | None = None,
    threshold: float = 0.5,
) -> PredictionTable:
    """The prediction table held in named columns of an uploaded table."""
    score_cols = y_score or ["y_score"]
    wanted = [y_true, *score_cols, *([weights] if weights else []), *(groups or [])]
    missing = [c for c in wanted if c not in data.column_names]
    if missing:
        shown = ", ".join(data.column_names[:50])
        raise InvalidInput(f"no column {missing[0]!r} in the upload; its columns are: {shown}")

    def col(name: str) -> np.ndarray[Any, Any]:
        try:
            return _numpy(data.column(name))
        except InvalidInput as exc:
            raise InvalidInput(f"column {name!r}: {exc.message}") from None

    scores = (
        col(score_cols[0])
        if len(score_cols) == 1
        else np.column_stack([col(c) for c in score_cols])
    )
    truth = col(y_true)
    if classes:  # class names arrive as text: compare the labels as text too
        truth = truth.astype(str)
    return prediction_table(
        truth,
        scores,
        weights=col(weights) if weights else None,
        groups={g: col(g) for g in groups or []},
        task=task,
        classes=classes,
        threshold=threshold,
    )


def read_upload(raw: bytes, content_type: str) -> pa.Table:
    """An uploaded table: Arrow IPC (stream or file), Parquet or CSV."""
    if not raw:
        raise InvalidInput("the upload is empty")
    kind = content_type.split(";")[0].strip().lower()
    try:
        if kind in ("application/vnd.apache.arrow.stream", "application/vnd.apache.arrow.file"):
            reader = pa.ipc.open_stream if kind.endswith("stream") else pa.ipc.open_file
            return reader(pa.py_buffer(raw)).read_all()
        if kind in ("application/vnd.apache.parquet", "application/x-parquet"):
            return pq.read_table(io.BytesIO(raw))
        if kind in ("text/csv", "application/csv"):
            return pacsv.read_csv(io.BytesIO(raw))
    except (pa.ArrowInvalid, OSError) as exc:
        raise InvalidInput(f"the upload could not be read as {kind}: {exc}") from None
    raise InvalidInput(
        f"cannot read a {kind or 'typeless'} upload as predictions; send JSON, Arrow IPC, "
        "Parquet (application/vnd.apache.parquet) or CSV (text/csv)"
    )


# --- computing and storing
def _headline(name: str, result: dict[str, Any]) -> dict[str, float | None]:
    """The scalar metrics of a result, for lists and comparisons."""
    out: dict[str, float | None] = {}
    for key, value in (result.get("metrics") or {}).items():
        if value is None or (isinstance(value, int | float) and not isinstance(value, bool)):
            out[key] = None if value is None else float(value)
    for column in result.get("columns", []) if name == "fairness" else []:
        for gap in ("demographic_parity", "equalized_odds", "equal_opportunity"):
            for part in ("difference", "ratio"):
                value = (column.get(gap) or {}).get(part)
                out[f"{column['column']}.{gap}_{part}"] = None if value is None else float(value)
    return out


def _write_predictions(path: Path, table: PredictionTable) -> None:
    cols: dict[str, Any] = {"y_true": table.y_true}
    if table.y_score.ndim == 2:
        for i, label in enumerate(table.classes):
            cols[f"score_{label}"] = table.y_score[:, i]
    else:
        cols["y_score"] = table.y_score
    if table.weights is not None:
        cols["weight"] = table.weights
    for name, values in table.groups.items():
        cols[f"group:{name}"] = values
    pq.write_table(pa.table(cols), path, compression="zstd")


def _write_json(path: Path, value: Any) -> None:
    path.write_bytes(orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY))


def _write_thresholds(path: Path, tt: ThresholdTable) -> None:
    data = pa.table({"threshold": tt.thresholds, "tp": tt.tp, "fp": tt.fp})
    data = data.replace_schema_metadata({"pos": repr(tt.pos), "neg": repr(tt.neg)})
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, data.schema) as writer:
        writer.write_table(data)


def _compute(
    plugins: Plugins, table: PredictionTable
) -> tuple[dict[str, Any], ThresholdTable | None]:
    analyzers = [a for a in plugins.analyzers.values() if a.applies_to(table)]
    if not analyzers:
        raise InvalidInput(f"no installed analyzer applies to a {table.task} task")
    results: dict[str, Any] = {}
    thresholds = None
    for analyzer in analyzers:
        if analyzer.name == "binary":
            results["binary"], thresholds = evaluate_binary(table)
        else:
            results[analyzer.name] = analyzer.compute(table)
    return results, thresholds


def evaluate(
    store: Store,
    files: ArtifactStore,
    plugins: Plugins,
    *,
    run_id: str,
    table: PredictionTable,
    dataset: str | None,
    name: str | None,
    actor: str,
    evaluation_id: str | None = None,
    model_version: tuple[str, int] | None = None,
) -> EvaluationPublic:
    """Run every analyzer that applies and store the evaluation with the run. A client-chosen
    ``evaluation_id`` makes a retried request a no-op. With ``model_version`` (model, version)
    the evaluation is of that version (made by ``run_id``) and linked to it."""
    with store.read() as conn:
        run_row(conn, run_id)  # an unknown run is refused before any work
        if evaluation_id is not None:
            done = conn.execute(_EVALUATIONS.where(t.evaluation.c.id == evaluation_id)).first()
            if done is not None:
                if done.run_id != run_id:
                    raise Conflict(f"evaluation {evaluation_id} belongs to another run")
                return _public(conn, [done])[0]
    results, thresholds = _compute(plugins, table)
    eval_id = evaluation_id or uuid.uuid4().hex
    staged: dict[str, Staged] = {
        "predictions": files.stage_written(lambda p: _write_predictions(p, table)),
        "result": files.stage_written(lambda p: _write_json(p, results)),
    }
    if thresholds is not None:
        staged["thresholds"] = files.stage_written(lambda p: _write_thresholds(p, thresholds))
    paths = {role: f"evaluations/{eval_id}/{FILES[role][0]}" for role in staged}
    props = EvaluationProperties(
        run_id=run_id,
        name=name or dataset or f"evaluation-{eval_id[:8]}",
        dataset=dataset,
        task=table.task,
        analyzers=list(results),
        rows=len(table),
        weighted=table.weights is not None,
        groups=list(table.groups),
        threshold=table.threshold,
        files=paths,
        model_version=model_version_urn(*model_version) if model_version else None,
    )
    metrics = EvaluationMetrics(metrics={k: _headline(k, v) for k, v in results.items()})

    def work(tx: Tx) -> None:
        run = locked_run(tx, run_id)
        for role, st in staged.items():
            _, media, kind = FILES[role]
            record_staged(tx, files, st, run.pk, run_id, paths[role], None, kind, media)
        if dataset is not None and not entity_exists(tx.conn, [dataset_urn(dataset)]):
            put_dataset(tx, DatasetIn(name=dataset))
        tx.conn.execute(
            insert(t.evaluation).values(
                id=eval_id, run_pk=run.pk, name=props.name, dataset=dataset, task=table.task,
                rows=len(table), created_at=tx.now, created_by=tx.actor,
                model=model_version[0] if model_version else None,
                model_version=model_version[1] if model_version else None,
            )
        )  # fmt: skip
        urn = evaluation_urn(eval_id)
        tx.ensure_entity(urn)
        tx.put_aspect(urn, props)
        tx.put_aspect(urn, metrics)

    committed = False
    try:
        store.transact(work, actor=actor)
        committed = True
    finally:
        for st in staged.values():
            files.discard(st, withdraw=not committed)
    return get_evaluation(store, evaluation_id=eval_id)


# --- reading back
_EVALUATIONS = (
    select(t.evaluation, t.run.c.id.label("run_id"), t.run.c.name.label("run_name"),
           t.project.c.name.label("project"))
    .join(t.run, t.run.c.pk == t.evaluation.c.run_pk)
    .join(t.project, t.project.c.id == t.run.c.project_id)
)  # fmt: skip


_ASPECTS = select(t.aspect.c.urn, t.aspect.c.aspect, t.aspect.c.payload).where(
    t.aspect.c.urn.in_(bindparam("urns", expanding=True)),
    t.aspect.c.version == 0,
    t.aspect.c.aspect.in_(["evaluation_properties", "evaluation_metrics"]),
)


def _public(conn: Any, rows: Sequence[Any]) -> list[EvaluationPublic]:
    """Evaluations for index rows, their aspects read in one query for all of them."""
    urns = [evaluation_urn(r.id) for r in rows]
    aspects: dict[tuple[str, str], bytes] = {
        (urn, name): payload for urn, name, payload in conn.execute(_ASPECTS, {"urns": urns})
    } if rows else {}  # fmt: skip
    out = []
    for urn, row in zip(urns, rows, strict=True):
        props = EvaluationProperties.model_validate_json(aspects[urn, "evaluation_properties"])
        metrics = EvaluationMetrics.model_validate_json(aspects[urn, "evaluation_metrics"])
        out.append(
            EvaluationPublic(
                id=row.id, urn=urn, run_id=row.run_id, run_name=row.run_name,
                project=row.project, model=row.model, model_version=row.model_version,
                name=row.name, dataset=row.dataset, task=row.task, analyzers=props.analyzers,
                rows=row.rows, weighted=props.weighted, groups=props.groups,
                threshold=props.threshold, created_at=row.created_at,
                created_by=row.created_by, metrics=metrics.metrics, files=props.files,
            )
        )  # fmt: skip
    return out


def get_evaluation(store: Store, *, evaluation_id: str) -> EvaluationPublic:
    with store.read() as conn:
        row = conn.execute(_EVALUATIONS.where(t.evaluation.c.id == evaluation_id)).first()
        if row is None:
            raise NotFound(f"evaluation {evaluation_id} does not exist")
        return _public(conn, [row])[0]


def get_evaluations(store: Store, *, evaluation_ids: Sequence[str]) -> list[EvaluationPublic]:
    """Several evaluations in the order asked, read together; any unknown one is a 404."""
    with store.read() as conn:
        rows = conn.execute(_EVALUATIONS.where(t.evaluation.c.id.in_(list(evaluation_ids)))).all()
        by_id = {ev.id: ev for ev in _public(conn, rows)}
    missing = [i for i in evaluation_ids if i not in by_id]
    if missing:
        raise NotFound(f"evaluation {missing[0]} does not exist")
    return [by_id[i] for i in evaluation_ids]


def list_evaluations(store: Store, *, run_id: str) -> list[EvaluationPublic]:
    with store.read() as conn:
        pk = run_row(conn, run_id).pk
        rows = conn.execute(
            _EVALUATIONS.where(t.evaluation.c.run_pk == pk).order_by(
                t.evaluation.c.created_at.desc()
            )
        ).all()
        return _public(conn, rows)


def list_version_evaluations(store: Store, *, model: str, version: int) -> list[EvaluationPublic]:
    ev = t.evaluation
    with store.read() as conn:
        rows = conn.execute(
            _EVALUATIONS.where(ev.c.model == model, ev.c.model_version == version).order_by(
                ev.c.created_at.desc()
            )
        ).all()
        return _public(conn, rows)


def evaluation_result(files: ArtifactStore, ev: EvaluationPublic) -> dict[str, Any]:
    """The analyzers' full results (curves, tables) as stored."""
    result: dict[str, Any] = orjson.loads(
        files.local_copy(ev.run_id, ev.files["result"]).read_bytes()
    )
    return result


class _ThresholdCache:
    """Memory-mapped threshold tables of recently queried evaluations (per process)."""

    def __init__(self, size: int = 32) -> None:
        self._tables: OrderedDict[Path, ThresholdTable] = OrderedDict()
        self._size = size
        self._lock = Lock()

    def get(self, path: Path) -> ThresholdTable:
        with self._lock:
            if path in self._tables:
                self._tables.move_to_end(path)
                return self._tables[path]
        data = pa.ipc.open_file(pa.memory_map(str(path), "r")).read_all()
        meta = data.schema.metadata or {}
        table = ThresholdTable(
            data.column("threshold").to_numpy(),
            data.column("tp").to_numpy(),
            data.column("fp").to_numpy(),
            float(meta[b"pos"]),
            float(meta[b"neg"]),
        )
        with self._lock:
            self._tables[path] = table
            while len(self._tables) > self._size:
                self._tables.popitem(last=False)
        return table


THRESHOLDS = _ThresholdCache()


def thresholds_of(
    files: ArtifactStore, ev: EvaluationPublic, thresholds: Sequence[float]
) -> list[ThresholdPoint]:
    """The exact confusion matrix and rates at each threshold (scores >= it are positive)."""
    if "thresholds" not in ev.files:
        raise InvalidInput(
            f"evaluation {ev.id} is a {ev.task} task; thresholds apply to binary tasks"
        )
    table = THRESHOLDS.get(files.local_copy(ev.run_id, ev.files["thresholds"]))
    return [ThresholdPoint(**table.at(th)) for th in thresholds]


def at_thresholds(
    store: Store, files: ArtifactStore, *, evaluation_id: str, thresholds: list[float]
) -> list[ThresholdPoint]:
    ev = get_evaluation(store, evaluation_id=evaluation_id)
    return thresholds_of(files, ev, thresholds)
