"""Pipeline steps of a run: a DAG of named steps with status and progress."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import Connection, Row, func, insert, select, update

from modelyard.errors import InvalidInput, InvalidState, NotFound
from modelyard.metadata import tables as t
from modelyard.metadata.aspects import TERMINAL_STATUSES, StepProperties, StepState
from modelyard.metadata.store import Store, Tx
from modelyard.metadata.urn import step_urn
from modelyard.schemas import ArtifactPublic, RunPublic, RunSearch, StepPublic, StepUpsert
from modelyard.services import search
from modelyard.services.artifacts import artifact_public
from modelyard.services.runs import active_run, run_row

# Statuses in which a step has not started (a skipped step never runs).
NOT_STARTED = frozenset({"pending", "skipped"})

# Which statuses a step may move to from each status.
TRANSITIONS: dict[str, frozenset[str]] = {
    "pending": frozenset({"running", "finished", "failed", "skipped"}),
    "running": frozenset({"finished", "failed"}),
}


def upsert_step(
    store: Store, *, run_id: str, name: str, body: StepUpsert, actor: str
) -> StepPublic:
    """Create a step, or move an existing one forward (status, progress, message)."""
    if not 1 <= len(name) <= t.MAX_NAME:
        raise InvalidInput(f"step names have 1 to {t.MAX_NAME} characters")
    if len(step_urn(run_id, name)) > t.MAX_URN:
        raise InvalidInput(
            f"step name {name[:40]!r}... is too long once percent-encoded in its URN "
            f"(at most {t.MAX_URN} characters)"
        )

    def work(tx: Tx) -> None:
        # One writer per run at a time: positions are counted, and the run may be ending.
        tx.lock(t.run, t.run.c.id == run_id)
        row = active_run(tx, run_id, "change its steps")
        current = tx.conn.execute(
            select(t.step).where(t.step.c.run_pk == row.pk, t.step.c.name == name)
        ).first()
        if current is None:
            _create(tx, row.pk, run_id, name, body)
        else:
            _advance(tx, row.pk, run_id, current, body)

    store.transact(work, actor=actor)
    return get_step(store, run_id=run_id, name=name)


def _create(tx: Tx, run_pk: int, run_id: str, name: str, body: StepUpsert) -> None:
    deps = list(dict.fromkeys(body.depends_on or []))
    known = set(tx.conn.execute(select(t.step.c.name).where(t.step.c.run_pk == run_pk)).scalars())
    unknown = [d for d in deps if d not in known]
    if unknown:  # the request is well formed; the run is not there yet
        raise InvalidState(
            f"step {name!r} depends on {unknown[0]!r}, which is not a step of this run yet; "
            "create the steps it depends on first"
        )
    status = body.status or "pending"
    state = StepState(
        status=status,
        progress=1.0 if status == "finished" else body.progress,
        message=body.message,
        error=body.error,
        start_time=None if status in NOT_STARTED else tx.now,
        end_time=tx.now if status in TERMINAL_STATUSES else None,
    )
    position = tx.conn.execute(
        select(func.count()).select_from(t.step).where(t.step.c.run_pk == run_pk)
    ).scalar_one()
    tx.conn.execute(
        insert(t.step).values(
            run_pk=run_pk,
            name=name,
            position=position,
            depends_on=orjson.dumps(deps).decode(),
            **state.model_dump(),
        )
    )
    urn = step_urn(run_id, name)
    tx.ensure_entity(urn)
    tx.put_aspect(urn, StepProperties(run_id=run_id, name=name, depends_on=deps))
    tx.put_aspect(urn, state)


def _advance(tx: Tx, run_pk: int, run_id: str, current: Row[Any], body: StepUpsert) -> None:
    cur = StepState.model_validate(current, from_attributes=True)
    name: str = current.name
    deps = orjson.loads(current.depends_on)
    if body.depends_on is not None and list(dict.fromkeys(body.depends_on)) != deps:
        raise InvalidState(f"step {name!r} already depends on {deps}; dependencies cannot change")
    status = body.status or cur.status
    if status != cur.status and status not in TRANSITIONS.get(cur.status, frozenset()):
        raise InvalidState(f"step {name!r} is {cur.status}; it cannot become {status}")
    changes_progress = (body.progress is not None and body.progress != cur.progress) or (
        body.message is not None and body.message != cur.message
    )
    if cur.status in TERMINAL_STATUSES and changes_progress:
        raise InvalidState(f"step {name!r} is {cur.status}; its progress is final")
    progress = body.progress if body.progress is not None else cur.progress
    state = StepState(
        status=status,
        progress=1.0 if status == "finished" else progress,
        message=body.message if body.message is not None else cur.message,
        error=body.error if body.error is not None else cur.error,
        start_time=cur.start_time or (None if status in NOT_STARTED else tx.now),
        end_time=cur.end_time or (tx.now if status in TERMINAL_STATUSES else None),
    )
    if state == cur:
        return
    tx.conn.execute(
        update(t.step)
        .where(t.step.c.run_pk == run_pk, t.step.c.name == name)
        .values(**state.model_dump())
    )
    tx.put_aspect(step_urn(run_id, name), state)


def _steps(conn: Connection, run_pk: int, run_id: str, name: str | None = None) -> list[StepPublic]:
    q = select(t.step).where(t.step.c.run_pk == run_pk).order_by(t.step.c.position)
    if name is not None:
        q = q.where(t.step.c.name == name)
    rows = conn.execute(q).all()
    aq = select(t.artifact).where(t.artifact.c.run_pk == run_pk, t.artifact.c.step.is_not(None))
    by_step: dict[str, list[ArtifactPublic]] = defaultdict(list)
    for a in conn.execute(aq.order_by(t.artifact.c.path)):
        by_step[a.step].append(artifact_public(run_id, a))
    return [_public(run_id, r, by_step.get(r.name, [])) for r in rows]


def _public(run_id: str, r: Row[Any], artifacts: list[ArtifactPublic]) -> StepPublic:
    return StepPublic(
        run_id=run_id,
        urn=step_urn(run_id, r.name),
        name=r.name,
        position=r.position,
        depends_on=orjson.loads(r.depends_on),
        status=r.status,
        progress=r.progress,
        message=r.message,
        start_time=r.start_time,
        end_time=r.end_time,
        error=r.error,
        artifacts=artifacts,
    )


def list_steps(store: Store, *, run_id: str) -> list[StepPublic]:
    with store.read() as conn:
        return _steps(conn, run_row(conn, run_id).pk, run_id)


def get_step(store: Store, *, run_id: str, name: str) -> StepPublic:
    with store.read() as conn:
        found = _steps(conn, run_row(conn, run_id).pk, run_id, name)
    if not found:
        raise NotFound(f"run {run_id} has no step {name!r}")
    return found[0]


def steps_of_runs(store: Store, *, run_ids: Sequence[str]) -> dict[str, list[StepPublic]]:
    """The steps (without their artifacts) of several runs, in one query: for lists of runs."""
    q = (
        select(t.step, t.run.c.id.label("run_id"))
        .join(t.run, t.run.c.pk == t.step.c.run_pk)
        .where(t.run.c.id.in_(list(run_ids)))
        .order_by(t.step.c.run_pk, t.step.c.position)
    )
    out: dict[str, list[StepPublic]] = {run_id: [] for run_id in run_ids}
    with store.read() as conn:
        for r in conn.execute(q):
            out[r.run_id].append(_public(r.run_id, r, []))
    return out


def running_pipelines(
    store: Store, *, limit: int, readable: frozenset[int] | None
) -> list[tuple[RunPublic, list[StepPublic]]]:
    """The runs running now (in ``readable`` projects), newest first, each with its steps."""
    req = RunSearch(filter="attributes.status = 'running'", page_size=limit)
    found = search.search_runs(store, req=req, readable=readable).runs
    by_run = steps_of_runs(store, run_ids=[run.run_id for run in found])
    return [(run, by_run[run.run_id]) for run in found]
