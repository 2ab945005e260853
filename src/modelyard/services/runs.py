"""Runs: create, read, update status, params, tags and batched logging."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

import orjson
from sqlalchemy import (
    Connection,
    Row,
    bindparam,
    delete,
    insert,
    literal,
    select,
    union_all,
    update,
)

from modelyard.errors import Conflict, InvalidState, NotFound
from modelyard.metadata import tables as t
from modelyard.metadata.aspects import RunParams, RunProperties, RunState, StepState, Tags
from modelyard.metadata.store import Store, Tx, dialect_insert
from modelyard.metadata.urn import run_urn, step_urn
from modelyard.schemas import RunCreate, RunPublic, RunUpdate
from modelyard.services.idempotency import first_use
from modelyard.services.metrics import MetricColumns, encode_value, insert_points
from modelyard.services.projects import ensure_project

TERMINAL = frozenset({"finished", "failed", "killed"})
# A write to a running run moves its last heartbeat on only when that is older than this, so
# batch ingest does not rewrite the run row on every batch; far below any useful lost-after.
HEARTBEAT_REFRESH_MS = 5_000
_TOUCH = (
    update(t.run).where(t.run.c.pk == bindparam("b_pk")).values(last_heartbeat=bindparam("b_now"))
)


def run_row(conn: Connection, run_id: str) -> Row[Any]:
    row = conn.execute(select(t.run).where(t.run.c.id == run_id)).first()
    if row is None:
        raise NotFound(f"run {run_id!r} does not exist")
    return row


def locked_run(tx: Tx, run_id: str) -> Row[Any]:
    """The run, locked until commit: writers that read-modify-write its aspects queue up."""
    tx.lock(t.run, t.run.c.id == run_id)
    return run_row(tx.conn, run_id)


def active_run(tx: Tx, run_id: str, doing: str) -> Row[Any]:
    """The run (locked), which must not have ended to accept ``doing``: a write by its client,
    so a sign of life too (a lost run comes back to running)."""
    row = locked_run(tx, run_id)
    if row.status in TERMINAL:
        raise InvalidState(f"cannot {doing}: run {run_id} is {row.status}")
    sign_of_life(tx, row)
    return row


def sign_of_life(tx: Tx, row: Row[Any], *, refresh_ms: int = HEARTBEAT_REFRESH_MS) -> None:
    """The run's client was heard from now: a lost run is running again (a new run_state
    version, so a change and an event); a running one has its last heartbeat moved on, unless
    it was moved less than ``refresh_ms`` ago (so a stream of batches does not rewrite the run
    row each time). The caller holds the run's lock; an ended run is left as it is."""
    if row.status == "lost":
        tx.conn.execute(
            update(t.run)
            .where(t.run.c.pk == row.pk)
            .values(status="running", last_heartbeat=tx.now)
        )
        tx.put_aspect(run_urn(row.id), RunState(status="running", start_time=row.start_time))
    elif row.status == "running" and (
        row.last_heartbeat is None or not 0 <= tx.now - row.last_heartbeat < refresh_ms
    ):
        tx.conn.execute(_TOUCH, {"b_pk": row.pk, "b_now": tx.now})


def create_run(store: Store, *, body: RunCreate, actor: str) -> RunPublic:
    run_id = body.run_id or uuid.uuid4().hex

    def work(tx: Tx) -> None:
        existing = tx.conn.execute(select(t.run).where(t.run.c.id == run_id)).first()
        if existing is not None:
            refuse_other_values(tx, existing, body)
            return  # a retried create with the same values: nothing more to do
        project_id = ensure_project(tx, body.project)
        start = body.start_time if body.start_time is not None else tx.now
        name = body.name or f"run-{run_id[:8]}"
        run_pk = tx.conn.execute(
            insert(t.run)
            .values(
                id=run_id,
                project_id=project_id,
                name=name,
                status="running",
                start_time=start,
                end_time=None,
                last_heartbeat=tx.now,
                created_by=tx.actor,
                source=body.source,
                git_commit=body.git_commit,
            )
            .returning(t.run.c.pk)
        ).scalar_one()
        urn = run_urn(run_id)
        tx.ensure_entity(urn)
        tx.put_aspect(
            urn,
            RunProperties(
                project_id=project_id, name=name, source=body.source, git_commit=body.git_commit
            ),
        )
        tx.put_aspect(urn, RunState(status="running", start_time=start))
        write_params(tx, run_pk, run_id, body.params)
        write_tags(tx, run_pk, run_id, body.tags)
        note_keys(tx, store, project_id, param=body.params, tag=body.tags)

    store.transact(work, actor=actor)
    return get_run(store, run_id=run_id)


def refuse_other_values(tx: Tx, existing: Row[Any], body: RunCreate) -> None:
    """A create repeated with a run id that exists must carry the same values, else a 409."""
    project = tx.conn.execute(
        select(t.project.c.name).where(t.project.c.id == existing.project_id)
    ).scalar_one()
    rp, rt = t.run_param, t.run_tag
    params = dict(
        tx.conn.execute(select(rp.c.key, rp.c.value).where(rp.c.run_pk == existing.pk)).all()
    )
    tags = dict(
        tx.conn.execute(select(rt.c.key, rt.c.value).where(rt.c.run_pk == existing.pk)).all()
    )
    differ = []
    if project != body.project:
        differ.append("project")
    if body.name is not None and body.name != existing.name:
        differ.append("name")
    differ += [f"params.{k}" for k, v in sorted(body.params.items()) if params.get(k) != v]
    differ += [f"tags.{k}" for k, v in sorted(body.tags.items()) if tags.get(k) != v]
    if differ:
        raise Conflict(
            f"run {existing.id} already exists (project {project!r}, name {existing.name!r})"
            f" with other values for: {', '.join(differ)}",
            details=differ,
        )


def note_keys(tx: Tx, store: Store, project_id: int, **keys_by_kind: Iterable[str]) -> None:
    """Remember which param, tag and metric keys a project uses (for its column chooser)."""
    new = {
        (project_id, kind, key) for kind, keys in keys_by_kind.items() for key in set(keys)
    } - store.noted_keys
    if new:
        rows = [{"project_id": p, "kind": kind, "key": key} for p, kind, key in new]
        tx.conn.execute(dialect_insert(tx.conn, t.project_key).on_conflict_do_nothing(), rows)
        tx.noted_keys |= new


def write_params(tx: Tx, run_pk: int, run_id: str, params: dict[str, str]) -> None:
    """Add params; logging a key again with the same value is a no-op, another value a 409."""
    if not params:
        return
    rp = t.run_param
    current = dict(tx.conn.execute(select(rp.c.key, rp.c.value).where(rp.c.run_pk == run_pk)).all())
    clashes = {k: (current[k], v) for k, v in params.items() if k in current and current[k] != v}
    if clashes:
        shown = "; ".join(
            f"{k}: logged {old!r}, now {new!r:.80}" for k, (old, new) in clashes.items()
        )
        raise Conflict(f"params are immutable once logged ({shown})", details=sorted(clashes))
    fresh = {k: v for k, v in params.items() if k not in current}
    if not fresh:
        return
    tx.conn.execute(
        insert(rp), [{"run_pk": run_pk, "key": k, "value": v} for k, v in fresh.items()]
    )
    tx.put_aspect(run_urn(run_id), RunParams(params={**current, **fresh}))


def write_tags(
    tx: Tx, run_pk: int, run_id: str, tags: dict[str, str], remove: Sequence[str] = ()
) -> None:
    if not tags and not remove:
        return
    rt = t.run_tag
    current = dict(tx.conn.execute(select(rt.c.key, rt.c.value).where(rt.c.run_pk == run_pk)).all())
    merged = {k: v for k, v in {**current, **tags}.items() if k not in remove}
    if merged == current:
        return
    if remove:
        tx.conn.execute(delete(rt).where(rt.c.run_pk == run_pk, rt.c.key.in_(list(remove))))
    if tags:
        ins = dialect_insert(tx.conn, rt)
        tx.conn.execute(
            ins.on_conflict_do_update(
                index_elements=[rt.c.run_pk, rt.c.key], set_={"value": ins.excluded.value}
            ),
            [{"run_pk": run_pk, "key": k, "value": v} for k, v in tags.items()],
        )
    tx.put_aspect(run_urn(run_id), Tags(tags=merged))


def log_batch(
    store: Store,
    *,
    run_id: str,
    params: dict[str, str],
    tags: dict[str, str],
    points: MetricColumns,
    actor: str,
    batch_key: str | None = None,
    batch_digest: str | None = None,
) -> bool:
    """Params, tags and metric points in one transaction: all land or none.

    A batch sent again with the same ``batch_key`` (an idempotency key) and ``batch_digest``
    is a no-op (returns False then); with another digest it is a 409."""

    def work(tx: Tx) -> bool:
        if params or len(points):
            row = active_run(tx, run_id, "log to it")
        else:  # tags may still change once a run has ended
            row = locked_run(tx, run_id)
            sign_of_life(tx, row)
        if batch_key is not None:
            where = {"run_pk": row.pk}
            if not first_use(tx, t.ingest_batch, where, batch_key, batch_digest):
                return False
        write_params(tx, row.pk, run_id, params)
        write_tags(tx, row.pk, run_id, tags)
        insert_points(tx, store, row.pk, points)
        note_keys(tx, store, row.project_id, param=params, tag=tags, metric=points.keys)
        return True

    return store.transact(work, actor=actor)


def set_tags(
    store: Store, *, run_id: str, tags: dict[str, str], remove: Sequence[str] = (), actor: str
) -> None:
    def work(tx: Tx) -> None:
        row = locked_run(tx, run_id)
        missing = [k for k in remove if k not in _tag_keys(tx.conn, row.pk)]
        if missing:
            raise NotFound(f"run {run_id} has no tag {missing[0]!r}")
        write_tags(tx, row.pk, run_id, tags, remove)
        note_keys(tx, store, row.project_id, tag=tags)

    store.transact(work, actor=actor)


def _tag_keys(conn: Connection, run_pk: int) -> set[str]:
    return set(conn.execute(select(t.run_tag.c.key).where(t.run_tag.c.run_pk == run_pk)).scalars())


def update_run(store: Store, *, run_id: str, body: RunUpdate, actor: str) -> RunPublic:
    def work(tx: Tx) -> None:
        row = locked_run(tx, run_id)
        urn = run_urn(run_id)
        if body.name is not None and body.name != row.name:
            props = _aspects(tx.conn, [urn])[urn].get("run_properties", {})
            tx.conn.execute(update(t.run).where(t.run.c.pk == row.pk).values(name=body.name))
            tx.put_aspect(urn, RunProperties(**{**props, "name": body.name}))
        if body.status is None or body.status == row.status:
            return
        if row.status in TERMINAL:
            raise InvalidState(
                f"run {run_id} is already {row.status}; it cannot become {body.status}"
            )
        if body.status == "running":  # a lost run's client says it is still running
            sign_of_life(tx, row)
            return
        end = body.end_time if body.end_time is not None else tx.now
        if end < row.start_time:
            raise Conflict(f"end_time {end} is before the run's start_time {row.start_time}")
        tx.conn.execute(
            update(t.run)
            .where(t.run.c.pk == row.pk)
            .values(status=body.status, end_time=end, error=body.error)
        )
        tx.put_aspect(
            urn,
            RunState(status=body.status, start_time=row.start_time, end_time=end, error=body.error),
        )
        _close_open_steps(tx, row.pk, run_id, body.status)

    store.transact(work, actor=actor)
    return get_run(store, run_id=run_id)


def _close_open_steps(tx: Tx, run_pk: int, run_id: str, run_status: str) -> None:
    """When a run ends, its running steps end with it and its pending steps are skipped."""
    open_steps = tx.conn.execute(
        select(t.step).where(t.step.c.run_pk == run_pk, t.step.c.status.in_(["pending", "running"]))
    ).all()
    for s in open_steps:
        if s.status == "pending":
            status, error = "skipped", None
        elif run_status == "finished":
            status, error = "finished", None
        else:
            status, error = "failed", f"the run was {run_status}"
        state = StepState(
            status=status,
            progress=1.0 if status == "finished" else s.progress,
            message=s.message,
            start_time=s.start_time,
            end_time=tx.now,
            error=error,
        )
        tx.conn.execute(
            update(t.step)
            .where(t.step.c.run_pk == run_pk, t.step.c.name == s.name)
            .values(status=status, end_time=tx.now, error=error, progress=state.progress)
        )
        tx.put_aspect(step_urn(run_id, s.name), state)


# Statements built once: SQLAlchemy then reuses their compiled form on every call.
_LM = t.series_latest
_RUNS = (
    select(t.run, t.project.c.name.label("project"))
    .join(t.project, t.project.c.id == t.run.c.project_id)
    .where(t.run.c.pk.in_(bindparam("pks", expanding=True)))
)
_PARAMS_AND_TAGS = union_all(
    select(literal(0), t.run_param.c.run_pk, t.run_param.c.key, t.run_param.c.value).where(
        t.run_param.c.run_pk.in_(bindparam("pks", expanding=True))
    ),
    select(literal(1), t.run_tag.c.run_pk, t.run_tag.c.key, t.run_tag.c.value).where(
        t.run_tag.c.run_pk.in_(bindparam("pks", expanding=True))
    ),
)
_METRICS = (
    select(
        _LM.c.owner_id, t.series_key.c.name, _LM.c.step, _LM.c.timestamp, _LM.c.value, _LM.c.is_nan
    )
    .join(t.series_key, t.series_key.c.id == _LM.c.key_id)
    .where(_LM.c.owner_kind == t.SERIES_RUN, _LM.c.owner_id.in_(bindparam("pks", expanding=True)))
)
_RUN_ASPECTS = select(t.aspect.c.urn, t.aspect.c.aspect, t.aspect.c.payload).where(
    t.aspect.c.urn.in_(bindparam("urns", expanding=True)),
    t.aspect.c.version == 0,
    t.aspect.c.aspect.in_(["run_properties", "run_state"]),
)
_RUN_PK = select(t.run.c.pk).where(t.run.c.id == bindparam("run_id"))


def _aspects(conn: Connection, urns: list[str]) -> dict[str, dict[str, dict[str, Any]]]:
    out: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    for urn, name, payload in conn.execute(_RUN_ASPECTS, {"urns": urns}).all():
        out[urn][name] = orjson.loads(payload)
    return out


def load_runs(conn: Connection, pks: Sequence[int]) -> list[RunPublic]:
    """Full runs for ``pks`` in that order, with a fixed number of queries however many."""
    if not pks:
        return []
    bind = {"pks": list(pks)}
    rows = conn.execute(_RUNS, bind).all()
    params: dict[int, dict[str, str]] = defaultdict(dict)
    tags: dict[int, dict[str, str]] = defaultdict(dict)
    for is_tag, pk, k, v in conn.execute(_PARAMS_AND_TAGS, bind).all():
        (tags if is_tag else params)[pk][k] = v
    metrics: dict[int, dict[str, dict[str, Any]]] = defaultdict(dict)
    for pk, k, step, ts, value, is_nan in conn.execute(_METRICS, bind).all():
        metrics[pk][k] = {"value": encode_value(value, is_nan), "step": step, "timestamp": ts}
    by_pk = {}
    for r in rows:
        # One validation per run (nested metrics included) is much cheaper than one per metric.
        by_pk[r.pk] = RunPublic.model_validate(
            {
                "run_id": r.id,
                "urn": run_urn(r.id),
                "project": r.project,
                "project_id": r.project_id,
                "name": r.name,
                "status": r.status,
                "start_time": r.start_time,
                "end_time": r.end_time,
                "last_heartbeat": r.last_heartbeat,
                "created_by": r.created_by,
                "error": r.error,
                "source": r.source,
                "git_commit": r.git_commit,
                "params": params[r.pk],
                "tags": tags[r.pk],
                "metrics": metrics[r.pk],
            }
        )
    return [by_pk[pk] for pk in pks if pk in by_pk]


def get_run(store: Store, *, run_id: str) -> RunPublic:
    with store.read() as conn:
        pk = conn.execute(_RUN_PK, {"run_id": run_id}).scalar_one_or_none()
        if pk is None:
            raise NotFound(f"run {run_id!r} does not exist")
        return load_runs(conn, [pk])[0]


def get_runs(store: Store, *, run_ids: Sequence[str]) -> list[RunPublic]:
    """Several runs in the order asked, read at once in a fixed number of queries."""
    with store.read() as conn:
        found = conn.execute(select(t.run.c.id, t.run.c.pk).where(t.run.c.id.in_(run_ids)))
        pks: dict[str, int] = {r.id: r.pk for r in found}
        missing = [run_id for run_id in run_ids if run_id not in pks]
        if missing:
            raise NotFound(f"run {missing[0]!r} does not exist")
        return load_runs(conn, [pks[run_id] for run_id in run_ids])
