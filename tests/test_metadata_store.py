"""The metadata backbone: versioned aspects, the change log, derived edges and lineage walks,
through the store itself and through the read endpoints of the API."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx
import orjson
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from modelyard.errors import InvalidInput
from modelyard.metadata import store as store_module
from modelyard.metadata import tables as t
from modelyard.metadata.aspects import (
    ArtifactProperties,
    Aspect,
    DatasetProperties,
    ModelProperties,
    RunLineage,
    StepState,
    Tags,
)
from modelyard.metadata.store import (
    Store,
    Tx,
    aspect_history,
    change_log_page,
    get_aspect,
    lineage,
)
from modelyard.metadata.urn import artifact_urn, dataset_urn, model_urn, run_urn, step_urn

API = "/api/v1"
DATASET = dataset_urn("raw-events")


@pytest.fixture
def store(app: FastAPI) -> Store:
    s: Store = app.state.store
    return s


def put(store: Store, urn: str, value: Aspect, *, actor: str = "tester", **kw: Any) -> int | None:
    """Write one aspect in its own transaction (registering the entity first)."""

    def work(tx: Tx) -> int | None:
        tx.ensure_entity(urn)
        return tx.put_aspect(urn, value, **kw)

    return store.transact(work, actor=actor)


def rows(store: Store, table: Any, *where: Any) -> list[dict[str, Any]]:
    with store.read() as conn:
        return [dict(r._mapping) for r in conn.execute(select(table).where(*where))]


def count(store: Store, table: Any, *where: Any) -> int:
    with store.read() as conn:
        return int(conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one())


def edges_of(store: Store, owner: str) -> set[tuple[str, str, str, bool]]:
    rel = t.relationship
    return {
        (r["source"], r["type"], r["destination"], bool(r["is_lineage"]))
        for r in rows(store, rel, rel.c.owner_urn == owner)
    }


def changes(store: Store, urn: str) -> list[dict[str, Any]]:
    with store.read() as conn:
        return change_log_page(conn, urn=urn, limit=1000)


def ds(description: str) -> DatasetProperties:
    return DatasetProperties(name="raw-events", description=description)


def entity_path(urn: str) -> str:
    return f"{API}/entities/{quote(urn, safe='')}"


# --- versioned writes


def test_versions_are_numbered_from_one_with_the_latest_at_version_zero(store: Store) -> None:
    assert put(store, DATASET, ds("first")) == 1
    assert put(store, DATASET, ds("second")) == 2
    assert put(store, DATASET, ds("third")) == 3

    stored = {
        r["version"]: orjson.loads(r["payload"])["description"]
        for r in rows(store, t.aspect, t.aspect.c.urn == DATASET)
    }
    # v0 holds the latest; the old latests were copied to 1..N-1 in order.
    assert stored == {0: "third", 1: "first", 2: "second"}

    with store.read() as conn:
        latest = get_aspect(conn, DATASET, DatasetProperties)
        history = aspect_history(conn, DATASET, "dataset_properties")
    assert latest == ds("third")
    assert [v["version"] for v in history] == [1, 2, 3]
    assert [orjson.loads(v["payload"])["description"] for v in history] == [
        "first",
        "second",
        "third",
    ]

    log = sorted(changes(store, DATASET), key=lambda c: c["id"])
    assert [(c["aspect"], c["version"], c["previous_version"]) for c in log] == [
        ("dataset_properties", 1, None),
        ("dataset_properties", 2, 1),
        ("dataset_properties", 3, 2),
    ]


def test_an_identical_write_is_a_no_op(store: Store) -> None:
    assert put(store, DATASET, ds("same")) == 1
    assert put(store, DATASET, ds("same")) is None
    assert put(store, DATASET, DatasetProperties(name="raw-events", description="same")) is None

    assert count(store, t.aspect, t.aspect.c.urn == DATASET) == 1
    assert len(changes(store, DATASET)) == 1
    with store.read() as conn:
        assert len(aspect_history(conn, DATASET, "dataset_properties")) == 1


def test_a_write_equal_up_to_key_order_is_a_no_op(store: Store) -> None:
    urn = model_urn("churn")
    assert put(store, urn, Tags(tags={"a": "1", "b": "2"})) == 1
    assert put(store, urn, Tags(tags={"b": "2", "a": "1"})) is None
    assert count(store, t.aspect, t.aspect.c.urn == urn) == 1
    assert len(changes(store, urn)) == 1


def test_returning_to_an_older_value_is_a_new_version(store: Store) -> None:
    assert put(store, DATASET, ds("a")) == 1
    assert put(store, DATASET, ds("b")) == 2
    assert put(store, DATASET, ds("a")) == 3
    with store.read() as conn:
        history = aspect_history(conn, DATASET, "dataset_properties")
    assert [orjson.loads(v["payload"])["description"] for v in history] == ["a", "b", "a"]


def test_history_keeps_every_old_payload_with_its_author(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = iter([1_000, 2_000, 3_000, 4_000])
    monkeypatch.setattr(store_module, "now_ms", lambda: next(clock))
    put(store, DATASET, ds("v1"), actor="alice", created_for="ingest")
    put(store, DATASET, ds("v2"), actor="bob")
    put(store, DATASET, ds("v3"), actor="carol", created_for="fix")
    put(store, DATASET, ds("v4"), actor="dave")

    with store.read() as conn:
        history = aspect_history(conn, DATASET, "dataset_properties")
    assert [
        (
            v["version"],
            orjson.loads(v["payload"])["description"],
            v["created_by"],
            v["created_for"],
            v["created_at"],
        )
        for v in history
    ] == [
        (1, "v1", "alice", "ingest", 1_000),
        (2, "v2", "bob", None, 2_000),
        (3, "v3", "carol", "fix", 3_000),
        (4, "v4", "dave", None, 4_000),
    ]
    log = sorted(changes(store, DATASET), key=lambda c: c["id"])
    assert [c["actor"] for c in log] == ["alice", "bob", "carol", "dave"]
    assert [c["created_at"] for c in log] == [1_000, 2_000, 3_000, 4_000]


def test_aspects_are_versioned_independently(store: Store) -> None:
    assert put(store, DATASET, ds("x")) == 1
    assert put(store, DATASET, Tags(tags={"team": "a"})) == 1
    assert put(store, DATASET, Tags(tags={"team": "b"})) == 2
    assert put(store, DATASET, ds("y")) == 2
    with store.read() as conn:
        assert len(aspect_history(conn, DATASET, "tags")) == 2
        assert len(aspect_history(conn, DATASET, "dataset_properties")) == 2
        assert aspect_history(conn, DATASET, "model_properties") == []
        assert get_aspect(conn, DATASET, ModelProperties) is None


def test_an_aspect_the_entity_type_cannot_carry_is_refused(store: Store) -> None:
    run = run_urn("r1")
    with pytest.raises(InvalidInput, match="cannot carry"):
        put(store, run, StepState(status="running"))
    with pytest.raises(InvalidInput, match="cannot carry"):
        put(store, DATASET, ModelProperties(name="m"))
    # Nothing of the refused transactions remains, not even the entity registered first.
    for urn in (run, DATASET):
        assert count(store, t.entity, t.entity.c.urn == urn) == 0
        assert count(store, t.aspect, t.aspect.c.urn == urn) == 0
        assert changes(store, urn) == []


def test_an_unregistered_aspect_class_is_refused(store: Store) -> None:
    class Stray(Aspect):
        x: int = 1

    with pytest.raises(TypeError):
        put(store, DATASET, Stray())


# --- atomicity


def test_a_transaction_that_raises_midway_leaves_nothing(store: Store) -> None:
    run, art = run_urn("r1"), artifact_urn("r1", "model.bin")

    def work(tx: Tx) -> None:
        tx.ensure_entity(run)
        tx.put_aspect(run, RunLineage(consumes=[DATASET], produces=[model_urn("m")]))
        tx.ensure_entity(art)
        tx.put_aspect(
            art,
            ArtifactProperties(
                run_id="r1", path="model.bin", size=1, sha256="0" * 64, media_type="x/y"
            ),
        )
        raise RuntimeError("crash midway")

    with pytest.raises(RuntimeError, match="crash midway"):
        store.transact(work, actor="tester")
    for table in (t.entity, t.aspect, t.change_log, t.relationship):
        assert count(store, table) == 0, table.name


def test_a_failed_update_keeps_the_previous_version_intact(store: Store) -> None:
    run = run_urn("r1")
    put(store, run, RunLineage(consumes=[DATASET]))
    before = (
        rows(store, t.aspect),
        rows(store, t.change_log),
        edges_of(store, run),
    )

    def work(tx: Tx) -> None:
        tx.put_aspect(run, RunLineage(consumes=[dataset_urn("other")]))
        tx.put_aspect(run, RunLineage(consumes=[dataset_urn("third")]))
        raise RuntimeError("crash")

    with pytest.raises(RuntimeError):
        store.transact(work, actor="tester")
    after = (rows(store, t.aspect), rows(store, t.change_log), edges_of(store, run))
    assert after == before
    with store.read() as conn:
        assert get_aspect(conn, run, RunLineage) == RunLineage(consumes=[DATASET])


def test_several_writes_in_one_transaction_number_their_versions(store: Store) -> None:
    def work(tx: Tx) -> list[int | None]:
        tx.ensure_entity(DATASET)
        return [tx.put_aspect(DATASET, ds(d)) for d in ("a", "b", "b", "c")]

    assert store.transact(work, actor="tester") == [1, 2, None, 3]
    with store.read() as conn:
        history = aspect_history(conn, DATASET, "dataset_properties")
    assert [orjson.loads(v["payload"])["description"] for v in history] == ["a", "b", "c"]


# --- derived edges


def test_edges_are_derived_from_aspects_with_the_lineage_flag(store: Store) -> None:
    art = artifact_urn("r1", "out/model.bin")
    put(
        store,
        art,
        ArtifactProperties(
            run_id="r1",
            path="out/model.bin",
            step="train",
            size=3,
            sha256="0" * 64,
            media_type="application/octet-stream",
        ),
    )
    assert edges_of(store, art) == {
        (art, "ChildOf", run_urn("r1"), False),
        (run_urn("r1"), "Produces", art, True),
        (step_urn("r1", "train"), "Produces", art, False),
    }
    assert {r["owner_aspect"] for r in rows(store, t.relationship)} == {"artifact_properties"}


def test_derived_edges_are_replaced_when_the_aspect_changes(store: Store) -> None:
    run = run_urn("r1")
    d1, d2, m = dataset_urn("d1"), dataset_urn("d2"), model_urn("m")
    art = artifact_urn("r1", "a.txt")
    put(store, run, RunLineage(consumes=[d1]))
    put(
        store,
        art,
        ArtifactProperties(run_id="r1", path="a.txt", size=1, sha256="0" * 64, media_type="t/p"),
    )
    assert edges_of(store, run) == {(run, "Consumes", d1, True)}

    put(store, run, RunLineage(consumes=[d2], produces=[m]))
    assert edges_of(store, run) == {(run, "Consumes", d2, True), (run, "Produces", m, True)}
    # Edges owned by another aspect are left alone.
    assert (run, "Produces", art, True) in edges_of(store, art)

    put(store, run, RunLineage())
    assert edges_of(store, run) == set()
    assert len(edges_of(store, art)) == 2

    with store.read() as conn:
        graph = lineage(conn, run, upstream=3, downstream=3)
    assert graph.nodes == {run: 0, art: 1}


def test_a_no_op_write_keeps_the_edges(store: Store) -> None:
    run = run_urn("r1")
    put(store, run, RunLineage(consumes=[DATASET]))
    assert put(store, run, RunLineage(consumes=[DATASET])) is None
    assert edges_of(store, run) == {(run, "Consumes", DATASET, True)}


# --- lineage walks

R1, R2 = run_urn("r1"), run_urn("r2")
ART = artifact_urn("r1", "features.parquet")
MODEL = model_urn("churn")


def build_chain(store: Store) -> None:
    """dataset -> r1 -> artifact -> r2 -> model."""
    put(store, R1, RunLineage(consumes=[DATASET]))
    put(
        store,
        ART,
        ArtifactProperties(
            run_id="r1",
            path="features.parquet",
            step="featurize",
            size=10,
            sha256="0" * 64,
            media_type="application/octet-stream",
        ),
    )
    put(store, R2, RunLineage(consumes=[ART], produces=[MODEL]))


def walk(store: Store, urn: str, up: int, down: int) -> tuple[dict[str, int], set[Any]]:
    with store.read() as conn:
        g = lineage(conn, urn, upstream=up, downstream=down)
    assert g.root == urn
    return g.nodes, set(g.edges)


CHAIN_EDGES = {
    (DATASET, "Consumes", R1),
    (R1, "Produces", ART),
    (ART, "Consumes", R2),
    (R2, "Produces", MODEL),
}


def test_lineage_walks_the_whole_chain(store: Store) -> None:
    build_chain(store)
    nodes, edges = walk(store, DATASET, 0, 4)
    assert nodes == {DATASET: 0, R1: 1, ART: 2, R2: 3, MODEL: 4}
    assert edges == CHAIN_EDGES

    nodes, edges = walk(store, MODEL, 4, 0)
    assert nodes == {MODEL: 0, R2: -1, ART: -2, R1: -3, DATASET: -4}
    assert edges == CHAIN_EDGES

    nodes, _ = walk(store, ART, 20, 20)
    assert nodes == {DATASET: -2, R1: -1, ART: 0, R2: 1, MODEL: 2}
    # Non-lineage edges (ChildOf, the step's Produces) are never walked.
    assert step_urn("r1", "featurize") not in nodes


@pytest.mark.parametrize(
    ("up", "down", "expected"),
    [
        (0, 0, {ART: 0}),
        (1, 0, {R1: -1, ART: 0}),
        (0, 1, {ART: 0, R2: 1}),
        (1, 1, {R1: -1, ART: 0, R2: 1}),
        (2, 1, {DATASET: -2, R1: -1, ART: 0, R2: 1}),
        (1, 2, {R1: -1, ART: 0, R2: 1, MODEL: 2}),
    ],
)
def test_lineage_respects_hop_limits(
    store: Store, up: int, down: int, expected: dict[str, int]
) -> None:
    build_chain(store)
    nodes, edges = walk(store, ART, up, down)
    assert nodes == expected
    # Every edge joins two returned nodes, and every returned node but the root has one.
    assert {e for e in CHAIN_EDGES if e[0] in nodes and e[2] in nodes} == edges
    assert {n for e in edges for n in (e[0], e[2])} | {ART} == set(nodes)


def test_lineage_distances_are_shortest_paths(store: Store) -> None:
    build_chain(store)
    # r2 also reads the raw dataset directly: it is one hop from it, not three.
    put(store, R2, RunLineage(consumes=[ART, DATASET], produces=[MODEL]))
    nodes, edges = walk(store, DATASET, 0, 1)
    assert nodes == {DATASET: 0, R1: 1, R2: 1}
    assert edges == {(DATASET, "Consumes", R1), (DATASET, "Consumes", R2)}
    nodes, _ = walk(store, DATASET, 0, 2)
    assert nodes == {DATASET: 0, R1: 1, R2: 1, ART: 2, MODEL: 2}


def test_lineage_of_an_isolated_entity_is_just_the_root(store: Store) -> None:
    put(store, DATASET, ds("alone"))
    assert walk(store, DATASET, 5, 5) == ({DATASET: 0}, set())


def test_lineage_terminates_on_a_cycle(store: Store) -> None:
    # A run that reads and rewrites the same dataset.
    put(store, R1, RunLineage(consumes=[DATASET], produces=[DATASET]))
    nodes, edges = walk(store, R1, 5, 5)
    assert nodes == {R1: 0, DATASET: -1}
    assert edges == {(DATASET, "Consumes", R1), (R1, "Produces", DATASET)}


# --- the change log


def test_change_log_page_filters_and_pages(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = iter(range(1_000, 100_000, 1_000))
    monkeypatch.setattr(store_module, "now_ms", lambda: next(clock))
    for i in range(5):
        put(store, DATASET, ds(f"d{i}"), actor="alice" if i % 2 == 0 else "bob")
    put(store, MODEL, ModelProperties(name="churn"), actor="carol")  # at 6000

    with store.read() as conn:
        everything = change_log_page(conn)
        by_urn = change_log_page(conn, urn=MODEL)
        by_actor = change_log_page(conn, actor="bob")
        since = change_log_page(conn, since=4_000)
        first = change_log_page(conn, limit=2)
        second = change_log_page(conn, limit=2, before_id=first[-1]["id"])
        rest = change_log_page(conn, limit=100, before_id=second[-1]["id"])
        nobody = change_log_page(conn, actor="nobody")

    ids = [c["id"] for c in everything]
    assert len(ids) == 6
    assert ids == sorted(ids, reverse=True)  # newest first
    assert [c["urn"] for c in by_urn] == [MODEL]
    assert [c["actor"] for c in by_actor] == ["bob", "bob"]
    assert [c["created_at"] for c in since] == [6_000, 5_000, 4_000]
    assert [c["id"] for c in first + second + rest] == ids
    assert nobody == []


# --- the HTTP read endpoints


def new_run(api: httpx.Client, **body: Any) -> dict[str, Any]:
    resp = api.post(f"{API}/runs", json={"project": "backbone", **body})
    assert resp.status_code == 201, resp.text
    data: dict[str, Any] = resp.json()
    return data


def test_entity_aspects_endpoint_returns_the_latest_of_each(api: httpx.Client) -> None:
    run = new_run(api, name="r", params={"lr": "0.1"}, tags={"team": "a"})
    resp = api.get(f"{entity_path(run['urn'])}/aspects")
    assert resp.status_code == 200, resp.text
    aspects = resp.json()
    assert set(aspects) == {"run_properties", "run_state", "run_params", "tags"}
    assert aspects["run_properties"]["name"] == "r"
    assert aspects["run_state"]["status"] == "running"
    assert aspects["run_params"] == {"params": {"lr": "0.1"}}
    assert aspects["tags"] == {"tags": {"team": "a"}}

    api.patch(f"{API}/runs/{run['run_id']}", json={"status": "finished"}).raise_for_status()
    aspects = api.get(f"{entity_path(run['urn'])}/aspects").json()
    assert aspects["run_state"]["status"] == "finished"
    assert aspects["run_state"]["end_time"] is not None


def test_entity_aspects_endpoint_errors(api: httpx.Client) -> None:
    unknown = api.get(f"{entity_path(run_urn('f' * 32))}/aspects")
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "NOT_FOUND"
    for bad in ("not-a-urn", "urn:modelyard:bogus:x", "urn:modelyard:run"):
        resp = api.get(f"{entity_path(bad)}/aspects")
        assert resp.status_code == 400, (bad, resp.text)
        assert resp.json()["error"]["code"] == "INVALID_INPUT"


def test_aspect_versions_endpoint_shows_the_audit_trail(api: httpx.Client) -> None:
    run = new_run(api)
    rid = run["run_id"]
    api.post(f"{API}/runs/{rid}/tags", json={"tags": {"a": "1"}}).raise_for_status()
    api.post(f"{API}/runs/{rid}/tags", json={"tags": {"b": "2"}}).raise_for_status()
    api.post(f"{API}/runs/{rid}/tags", json={"tags": {"b": "2"}}).raise_for_status()  # no-op
    api.delete(f"{API}/runs/{rid}/tags/a").raise_for_status()

    resp = api.get(f"{entity_path(run['urn'])}/aspects/tags/versions")
    assert resp.status_code == 200, resp.text
    versions = resp.json()
    assert [v["version"] for v in versions] == [1, 2, 3]
    assert [v["value"] for v in versions] == [
        {"tags": {"a": "1"}},
        {"tags": {"a": "1", "b": "2"}},
        {"tags": {"b": "2"}},
    ]
    assert all(v["created_by"] == "local" for v in versions)
    times = [v["created_at"] for v in versions]
    assert times == sorted(times)

    api.patch(f"{API}/runs/{rid}", json={"status": "failed", "error": "oom"}).raise_for_status()
    states = api.get(f"{entity_path(run['urn'])}/aspects/run_state/versions").json()
    assert [(s["version"], s["value"]["status"]) for s in states] == [
        (1, "running"),
        (2, "failed"),
    ]
    assert states[1]["value"]["error"] == "oom"


def test_aspect_versions_endpoint_errors(api: httpx.Client) -> None:
    run = new_run(api)
    base = entity_path(run["urn"])
    assert api.get(f"{base}/aspects/no_such_aspect/versions").status_code == 400
    # A known aspect the run has never carried.
    assert api.get(f"{base}/aspects/run_lineage/versions").status_code == 404
    assert api.get(f"{entity_path(run_urn('e' * 32))}/aspects/tags/versions").status_code == 404
    assert api.get(f"{entity_path('nope')}/aspects/tags/versions").status_code == 400


def test_changes_endpoint_filters_and_pages(
    api: httpx.Client, app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    store: Store = app.state.store
    a = new_run(api)
    b = new_run(api)
    api.post(f"{API}/runs/{a['run_id']}/tags", json={"tags": {"x": "1"}}).raise_for_status()
    api.patch(f"{API}/runs/{b['run_id']}", json={"status": "finished"}).raise_for_status()
    monkeypatch.setattr(store_module, "now_ms", lambda: 4_102_444_800_000)  # 2100-01-01
    put(store, DATASET, ds("by alice"), actor="alice")

    everything = api.get(f"{API}/changes", params={"limit": 1000}).json()
    ids = [c["id"] for c in everything]
    assert ids == sorted(ids, reverse=True)
    assert len(set(ids)) == len(ids)
    assert everything[0]["urn"] == DATASET

    for_a = api.get(f"{API}/changes", params={"urn": a["urn"]}).json()
    assert {c["aspect"] for c in for_a} == {"run_properties", "run_state", "tags"}
    assert all(c["urn"] == a["urn"] for c in for_a)
    for_b = api.get(f"{API}/changes", params={"urn": b["urn"]}).json()
    newest_b = for_b[0]
    assert (newest_b["aspect"], newest_b["version"], newest_b["previous_version"]) == (
        "run_state",
        2,
        1,
    )

    alice = api.get(f"{API}/changes", params={"actor": "alice"}).json()
    assert [(c["urn"], c["actor"]) for c in alice] == [(DATASET, "alice")]
    local = api.get(f"{API}/changes", params={"actor": "local", "limit": 1000}).json()
    assert len(local) == len(everything) - 1
    assert api.get(f"{API}/changes", params={"actor": "nobody"}).json() == []

    since = api.get(f"{API}/changes", params={"since": 4_102_444_800_000}).json()
    assert [c["urn"] for c in since] == [DATASET]
    assert api.get(f"{API}/changes", params={"since": 4_102_444_800_001}).json() == []

    paged: list[int] = []
    before: int | None = None
    while True:
        params: dict[str, Any] = {"limit": 3}
        if before is not None:
            params["before_id"] = before
        page = api.get(f"{API}/changes", params=params).json()
        assert len(page) <= 3
        if not page:
            break
        paged += [c["id"] for c in page]
        before = page[-1]["id"]
    assert paged == ids

    combined = api.get(
        f"{API}/changes", params={"urn": a["urn"], "before_id": for_a[0]["id"]}
    ).json()
    assert [c["id"] for c in combined] == [c["id"] for c in for_a[1:]]


@pytest.mark.parametrize(
    "params", [{"limit": 0}, {"limit": 1001}, {"before_id": 0}, {"since": -1}, {"limit": "x"}]
)
def test_changes_endpoint_validates_its_query(api: httpx.Client, params: dict[str, Any]) -> None:
    assert api.get(f"{API}/changes", params=params).status_code == 422
