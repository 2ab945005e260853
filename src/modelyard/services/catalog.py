"""Datasets, models, run inputs and outputs, lineage, history and the change log."""

from __future__ import annotations

import orjson
from sqlalchemy import func, select

from modelyard.errors import InvalidInput, NotFound
from modelyard.metadata import tables as t
from modelyard.metadata.aspects import ASPECTS, DatasetProperties, ModelProperties, RunLineage
from modelyard.metadata.store import (
    Store,
    Tx,
    aspect_history,
    change_log_page,
    dialect_insert,
    entity_exists,
    get_aspect,
    lineage,
)
from modelyard.metadata.urn import dataset_urn, model_urn, parse_urn, run_urn
from modelyard.schemas import (
    AspectVersion,
    ChangePublic,
    DatasetIn,
    LineageEdge,
    LineageNode,
    LineagePublic,
    ModelIn,
    RunInputs,
    RunOutputs,
)
from modelyard.services.runs import active_run

MAX_HOPS = 20


def put_dataset(tx: Tx, d: DatasetIn) -> str:
    urn = dataset_urn(d.name)
    tx.ensure_entity(urn)
    tx.put_aspect(urn, DatasetProperties(**d.model_dump()))
    ins = dialect_insert(tx.conn, t.dataset)
    cols = {"uri": d.uri, "digest": d.digest, "num_rows": d.num_rows}
    tx.conn.execute(
        ins.values(name=d.name, created_at=tx.now, **cols).on_conflict_do_update(
            index_elements=[t.dataset.c.name], set_=cols
        )
    )
    return urn


def put_model(tx: Tx, m: ModelIn) -> str:
    urn = model_urn(m.name)
    if tx.ensure_entity(urn) or m.description:
        tx.put_aspect(urn, ModelProperties(name=m.name, description=m.description))
    return urn


def _extend_lineage(tx: Tx, run_id: str, consumes: list[str], produces: list[str]) -> None:
    urn = run_urn(run_id)
    current = get_aspect(tx.conn, urn, RunLineage) or RunLineage()
    tx.put_aspect(
        urn,
        RunLineage(
            consumes=list(dict.fromkeys([*current.consumes, *consumes])),
            produces=list(dict.fromkeys([*current.produces, *produces])),
        ),
    )


def log_inputs(store: Store, *, run_id: str, body: RunInputs, actor: str) -> list[str]:
    """Record what a run consumed (datasets, created or updated, and existing artifacts)."""
    for u in body.artifacts:
        if parse_urn(u).type not in ("artifact", "dataset", "model"):
            raise InvalidInput(f"a run cannot consume {u!r}")

    def work(tx: Tx) -> list[str]:
        tx.lock(t.run, t.run.c.id == run_id)  # run_lineage is read, then extended
        active_run(tx, run_id, "log inputs")
        missing = set(body.artifacts) - entity_exists(tx.conn, body.artifacts)
        if missing:
            raise NotFound(f"{sorted(missing)[0]} does not exist")
        urns = [put_dataset(tx, d) for d in body.datasets] + list(body.artifacts)
        _extend_lineage(tx, run_id, urns, [])
        return urns

    return store.transact(work, actor=actor)


def log_outputs(store: Store, *, run_id: str, body: RunOutputs, actor: str) -> list[str]:
    """Record what a run produced besides its artifacts: models and datasets."""

    def work(tx: Tx) -> list[str]:
        tx.lock(t.run, t.run.c.id == run_id)  # run_lineage is read, then extended
        active_run(tx, run_id, "log outputs")
        urns = [put_model(tx, m) for m in body.models]
        urns += [put_dataset(tx, d) for d in body.datasets]
        _extend_lineage(tx, run_id, [], urns)
        return urns

    return store.transact(work, actor=actor)


def get_lineage(store: Store, *, urn: str, upstream: int, downstream: int) -> LineagePublic:
    parse_urn(urn)
    for hops in (upstream, downstream):
        if not 0 <= hops <= MAX_HOPS:
            raise InvalidInput(f"hops must be between 0 and {MAX_HOPS}")
    with store.read() as conn:
        if not entity_exists(conn, [urn]):
            raise NotFound(f"{urn} does not exist")
        graph = lineage(conn, urn, upstream=upstream, downstream=downstream)
    return LineagePublic(
        root=urn,
        nodes=[
            LineageNode(urn=u, type=parse_urn(u).type, hops=h)
            for u, h in sorted(graph.nodes.items(), key=lambda kv: (kv[1], kv[0]))
        ],
        edges=[LineageEdge(upstream=a, type=k, downstream=b) for a, k, b in graph.edges],
    )


def get_aspect_history(store: Store, *, urn: str, aspect: str) -> list[AspectVersion]:
    parse_urn(urn)
    if aspect not in ASPECTS:
        raise InvalidInput(f"unknown aspect {aspect!r}; known: {sorted(ASPECTS)}")
    with store.read() as conn:
        versions = aspect_history(conn, urn, aspect)
    if not versions:
        raise NotFound(f"{urn} has no aspect {aspect!r}")
    return [AspectVersion(**{**v, "value": orjson.loads(v.pop("payload"))}) for v in versions]


def list_aspects(store: Store, *, urn: str) -> dict[str, object]:
    parse_urn(urn)
    with store.read() as conn:
        rows = conn.execute(
            select(t.aspect.c.aspect, t.aspect.c.payload).where(
                t.aspect.c.urn == urn, t.aspect.c.version == 0
            )
        ).all()
    if not rows:
        raise NotFound(f"{urn} does not exist")
    return {name: orjson.loads(payload) for name, payload in rows}


def list_changes(
    store: Store,
    *,
    urn: str | None,
    actor: str | None,
    since: int | None,
    before_id: int | None,
    limit: int,
    until: int | None = None,
) -> list[ChangePublic]:
    """The change log, newest first; ``since`` and ``until`` bound it in time (inclusive)."""
    with store.read() as conn:
        rows = change_log_page(
            conn, urn=urn, actor=actor, since=since, until=until, before_id=before_id, limit=limit
        )
    return [ChangePublic(**r) for r in rows]


def entity_labels(store: Store, *, urns: list[str]) -> dict[str, str]:
    """A short human name for each URN: a run's name, "run › step", an artifact's path."""
    parsed = {u: parse_urn(u) for u in set(urns)}
    run_ids = {p.parts[0] for p in parsed.values() if p.type in ("run", "step", "artifact")}
    project_ids = [int(p.id) for p in parsed.values() if p.type == "project" and p.id.isdigit()]
    with store.read() as conn:
        run_names = dict(
            conn.execute(select(t.run.c.id, t.run.c.name).where(t.run.c.id.in_(run_ids))).all()
        )
        project_names = dict(
            conn.execute(
                select(t.project.c.id, t.project.c.name).where(t.project.c.id.in_(project_ids))
            ).all()
        )
    labels = {}
    for urn, p in parsed.items():
        parts = p.parts
        if p.type == "project":
            labels[urn] = project_names.get(int(p.id), p.id) if p.id.isdigit() else p.id
        elif p.type == "run":
            labels[urn] = run_names.get(parts[0], parts[0])
        elif p.type in ("step", "artifact") and len(parts) > 1:
            labels[urn] = f"{run_names.get(parts[0], parts[0])} › {parts[1]}"
        else:
            labels[urn] = ":".join(parts)
    return labels


def find_entities(store: Store, *, text: str, limit: int = 20) -> list[str]:
    """URNs of datasets and models whose name contains ``text`` (case-insensitive)."""
    needle = text.lower()
    with store.read() as conn:
        datasets = conn.execute(
            select(t.dataset.c.name)
            .where(func.lower(t.dataset.c.name).contains(needle, autoescape=True))
            .order_by(t.dataset.c.name)
            .limit(limit)
        ).scalars()
        found = [dataset_urn(n) for n in datasets]
        models = conn.execute(
            select(t.entity.c.urn).where(t.entity.c.type == "model").order_by(t.entity.c.urn)
        ).scalars()
        for urn in models:
            if len(found) >= 2 * limit:
                break
            if needle in parse_urn(urn).parts[0].lower():
                found.append(urn)
    return found
