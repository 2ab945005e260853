"""Lineage: what runs consumed and produced, and the graph around any entity."""

from __future__ import annotations

from modelyard.errors import InvalidInput, NotFound
from modelyard.metadata import tables as t
from modelyard.metadata.aspects import RunLineage
from modelyard.metadata.store import Store, Tx, entity_exists, get_aspect, lineage
from modelyard.metadata.urn import parse_urn, run_urn
from modelyard.schemas import LineageEdge, LineageNode, LineagePublic, RunInputs, RunOutputs
from modelyard.services.access.scopes import may_see, projects_of_urns
from modelyard.services.entities import put_dataset, put_model
from modelyard.services.runs import active_run

MAX_HOPS = 20


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


def get_lineage(
    store: Store, *, urn: str, upstream: int, downstream: int, readable: frozenset[int] | None
) -> LineagePublic:
    """The lineage around ``urn``, up to the hops asked each way, showing only entities in
    ``readable`` projects (None: all) and the catalog."""
    parse_urn(urn)
    for hops in (upstream, downstream):
        if not 0 <= hops <= MAX_HOPS:
            raise InvalidInput(f"hops must be between 0 and {MAX_HOPS}")
    with store.read() as conn:
        if not entity_exists(conn, [urn]):
            raise NotFound(f"{urn} does not exist")
        graph = lineage(conn, urn, upstream=upstream, downstream=downstream)
        owners = projects_of_urns(conn, list(graph.nodes))
    hidden = {u for u in graph.nodes if u != urn and not may_see(owners.get(u), readable)}
    nodes = {u: h for u, h in graph.nodes.items() if u not in hidden}
    edges = [e for e in graph.edges if e[0] not in hidden and e[2] not in hidden]
    return LineagePublic(
        root=urn,
        nodes=[
            LineageNode(urn=u, type=parse_urn(u).type, hops=h)
            for u, h in sorted(nodes.items(), key=lambda kv: (kv[1], kv[0]))
        ],
        edges=[LineageEdge(upstream=a, type=k, downstream=b) for a, k, b in edges],
    )
