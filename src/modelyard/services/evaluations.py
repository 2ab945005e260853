"""Evaluations: a table of predictions in; exact results, the predictions and each
analyzer's side tables (such as the binary threshold table) stored with the run; each
analyzer's side-table queries (such as any threshold) answerable later.

Everything is checked and computed before anything is written, and the files are recorded
in the same transaction as the evaluation, so a bad table or a crash stores nothing half-done.
"""

from __future__ import annotations

import io
import re
import uuid
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from functools import partial
from pathlib import Path
from threading import Lock
from typing import Any, get_origin

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from pydantic import BaseModel, ValidationError
from sqlalchemy import bindparam, insert, select

from modelyard.analyzers.base import (
    Analyzer,
    InvalidQuery,
    PredictionTable,
    SideQuery,
    prediction_table,
)
from modelyard.artifacts.base import ArtifactStore, Staged
from modelyard.errors import Conflict, InvalidInput, NotFound
from modelyard.metadata import tables as t
from modelyard.metadata.aspects import EvaluationMetrics, EvaluationProperties
from modelyard.metadata.store import Store, Tx, entity_exists
from modelyard.metadata.urn import dataset_urn, evaluation_urn, model_version_urn
from modelyard.plugins import Plugins
from modelyard.schemas import DatasetIn, EvaluationPublic
from modelyard.services.artifacts import record_staged
from modelyard.services.entities import put_dataset
from modelyard.services.runs import locked_run, run_row

FILES = {
    "predictions": ("predictions.parquet", "application/vnd.apache.parquet", "table"),
    "result": ("result.json", "application/json", "report"),
}
# an analyzer's side table <name> is stored as <name>.arrow (Arrow IPC file), role <name>
SIDE_TABLE = ("application/vnd.apache.arrow.file", "table")
SIDE_TABLE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
EVALUATION_ID = r"^[0-9a-f]{32}$"


# --- reading uploads
def _numpy(column: pa.ChunkedArray) -> np.ndarray[Any, Any]:
    if pa.types.is_dictionary(column.type):
        column = column.cast(pa.string())
    if column.null_count:
        raise InvalidInput(f"the column has {column.null_count:,} empty value(s)")
    if pa.types.is_binary(column.type) or pa.types.is_large_binary(column.type):
        # A CSV column that is not UTF-8 arrives as bytes; so may an Arrow or Parquet one.
        raise InvalidInput("the column holds bytes that are not UTF-8 text; send numbers or text")
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


def _write_side_table(path: Path, *, data: pa.Table) -> None:
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, data.schema) as writer:
        writer.write_table(data)


def _compute(
    plugins: Plugins, table: PredictionTable
) -> tuple[dict[str, Any], dict[str, pa.Table]]:
    """Every applicable analyzer's result, and the side tables they all produce (by name)."""
    analyzers = [a for a in plugins.analyzers.values() if a.applies_to(table)]
    if not analyzers:
        raise InvalidInput(f"no installed analyzer applies to a {table.task} task")
    results: dict[str, Any] = {}
    side: dict[str, pa.Table] = {}
    for analyzer in analyzers:
        computed = analyzer.analyze(table)
        results[analyzer.name] = computed.result
        for name, data in computed.side_tables.items():
            if name in FILES or name in side or not SIDE_TABLE_NAME.match(name):
                raise RuntimeError(f"analyzer {analyzer.name!r} cannot store side table {name!r}")
            side[name] = data
    return results, side


def _headlines(plugins: Plugins, results: dict[str, Any]) -> dict[str, dict[str, float | None]]:
    return {name: plugins.analyzer(name).headline(result) for name, result in results.items()}


def _stage(
    files: ArtifactStore,
    table: PredictionTable,
    results: dict[str, Any],
    side: dict[str, pa.Table],
) -> dict[str, Staged]:
    """The evaluation's files written to the staging area, by role (side tables by name)."""
    staged: dict[str, Staged] = {
        "predictions": files.stage_written(lambda p: _write_predictions(p, table)),
        "result": files.stage_written(lambda p: _write_json(p, results)),
    }
    for name, data in side.items():
        staged[name] = files.stage_written(partial(_write_side_table, data=data))
    return staged


def _file_name(role: str) -> str:
    return FILES[role][0] if role in FILES else f"{role}.arrow"


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
    results, side = _compute(plugins, table)
    eval_id = evaluation_id or uuid.uuid4().hex
    staged = _stage(files, table, results, side)
    paths = {role: f"evaluations/{eval_id}/{_file_name(role)}" for role in staged}
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
    metrics = EvaluationMetrics(metrics=_headlines(plugins, results))

    def work(tx: Tx) -> None:
        run = locked_run(tx, run_id)
        for role, st in staged.items():
            media, kind = FILES[role][1:] if role in FILES else SIDE_TABLE
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


class _SideTableCache:
    """Memory-mapped side tables of recently read evaluations (per process)."""

    def __init__(self, size: int = 32) -> None:
        self._tables: OrderedDict[Path, pa.Table] = OrderedDict()
        self._size = size
        self._lock = Lock()

    def get(self, path: Path) -> pa.Table:
        with self._lock:
            if path in self._tables:
                self._tables.move_to_end(path)
                return self._tables[path]
        table = pa.ipc.open_file(pa.memory_map(str(path), "r")).read_all()
        with self._lock:
            self._tables[path] = table
            while len(self._tables) > self._size:
                self._tables.popitem(last=False)
        return table


SIDE_TABLES = _SideTableCache()


def _side_table_file(files: ArtifactStore, ev: EvaluationPublic, name: str) -> Path:
    """The one place a side table's file is found (a local file to memory-map)."""
    return files.local_copy(ev.run_id, ev.files[name])


def side_table(files: ArtifactStore, ev: EvaluationPublic, name: str) -> pa.Table | None:
    """The evaluation's side table ``name``; None when it stored none by that name."""
    if name in FILES or name not in ev.files:
        return None
    return SIDE_TABLES.get(_side_table_file(files, ev, name))


def _answerer(plugins: Plugins, ev: EvaluationPublic, name: str) -> tuple[Analyzer, SideQuery]:
    """The evaluation's analyzer that declares the query ``name``."""
    mine = [plugins.analyzers[a] for a in ev.analyzers if a in plugins.analyzers]
    for analyzer in mine:
        for q in analyzer.queries:
            if q.name == name:
                return analyzer, q
    answering = [
        a.name for a in plugins.analyzers.values() if any(q.name == name for q in a.queries)
    ]
    if not answering:
        raise NotFound(f"no installed analyzer answers a query named {name!r}")
    raise InvalidInput(
        f"evaluation {ev.id} is a {ev.task} task; none of its analyzers answers {name!r} "
        f"(the {', '.join(answering)} analyzer(s) do)"
    )


def query_string(
    pairs: Sequence[tuple[str, str]], drop: Sequence[str] = ()
) -> dict[str, list[str]]:
    """A query string's parameters, repeated ones as lists, without those in ``drop``."""
    out: dict[str, list[str]] = {}
    for key, value in pairs:
        if key not in drop:
            out.setdefault(key, []).append(value)
    return out


def _params(query: SideQuery, given: Mapping[str, list[str]]) -> BaseModel:
    """The query string checked against the query's parameter model (a 422 when it fails)."""
    fields = query.params.model_fields
    values = {
        k: v if k in fields and get_origin(fields[k].annotation) is list else v[-1]
        for k, v in given.items()
    }
    try:
        return query.params.model_validate(values)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'query'}: {e['msg']}" for e in exc.errors()
        )
        raise InvalidQuery(f"bad parameters for {query.name!r}: {problems}") from None


def _answer(
    files: ArtifactStore, ev: EvaluationPublic, analyzer: Analyzer, query: SideQuery,
    params: BaseModel,
) -> Any:  # fmt: skip
    tables = {}
    for name in query.tables:
        found = side_table(files, ev, name)
        if found is None:
            raise InvalidInput(f"evaluation {ev.id} has no {name!r} table to answer {query.name!r}")
        tables[name] = found
    return analyzer.query(query.name, tables, params)


def answer_query(
    store: Store, files: ArtifactStore, plugins: Plugins, *, evaluation_id: str, name: str,
    params: Mapping[str, list[str]],
) -> Any:  # fmt: skip
    """One evaluation's answer to the side-table query ``name`` (e.g. "thresholds")."""
    ev = get_evaluation(store, evaluation_id=evaluation_id)
    analyzer, query = _answerer(plugins, ev, name)
    return _answer(files, ev, analyzer, query, _params(query, params))


def answer_queries(
    store: Store, files: ArtifactStore, plugins: Plugins, *, evaluation_ids: list[str],
    name: str, params: Mapping[str, list[str]],
) -> Any:  # fmt: skip
    """Several evaluations' answers to one query, combined by the analyzer that answers it
    (what the pages' live controls ask for)."""
    evs = get_evaluations(store, evaluation_ids=list(dict.fromkeys(evaluation_ids)))
    found = [_answerer(plugins, ev, name) for ev in evs]
    analyzer, query = found[0]
    checked = _params(query, params)
    answers = [
        (ev.id, _answer(files, ev, a, q, checked)) for ev, (a, q) in zip(evs, found, strict=True)
    ]
    return analyzer.combine(name, answers, checked)
