"""Lineage over the API: what runs consume and produce, artifacts linking runs, hop limits."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from modelyard.metadata.urn import artifact_urn, dataset_urn, model_urn, run_urn, step_urn
from tests.helpers import assert_error, new_run

API = "/api/v1"


def inputs(api: httpx.Client, run_id: str, **body: Any) -> httpx.Response:
    return api.post(f"{API}/runs/{run_id}/inputs", json=body)


def outputs(api: httpx.Client, run_id: str, **body: Any) -> httpx.Response:
    return api.post(f"{API}/runs/{run_id}/outputs", json=body)


def ok(resp: httpx.Response) -> list[str]:
    assert resp.status_code == 200, resp.text
    urns: list[str] = resp.json()
    return urns


def upload(api: httpx.Client, run_id: str, path: str, data: bytes, **params: str) -> str:
    resp = api.put(f"{API}/runs/{run_id}/artifacts/{path}", content=data, params=params)
    assert resp.status_code == 201, resp.text
    urn: str = resp.json()["urn"]
    return urn


def graph(api: httpx.Client, urn: str, **hops: int) -> dict[str, Any]:
    resp = api.get(f"{API}/lineage", params={"urn": urn, **hops})
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def nodes(g: dict[str, Any]) -> dict[str, int]:
    return {n["urn"]: n["hops"] for n in g["nodes"]}


def edges(g: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {(e["upstream"], e["type"], e["downstream"]) for e in g["edges"]}


def aspects(api: httpx.Client, urn: str) -> dict[str, Any]:
    resp = api.get(f"{API}/entities/{quote(urn, safe='')}/aspects")
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


# --- inputs and outputs


def test_datasets_consumed_by_a_run(api: httpx.Client) -> None:
    rid = new_run(api, "lineage")
    run = run_urn(rid)
    urns = ok(
        inputs(
            api,
            rid,
            datasets=[
                {"name": "raw-events", "uri": "s3://bucket/raw", "digest": "abc", "num_rows": 10},
                {"name": "labels"},
            ],
        )
    )
    raw, labels = dataset_urn("raw-events"), dataset_urn("labels")
    assert urns == [raw, labels]

    g = graph(api, run)
    assert g["root"] == run
    assert nodes(g) == {raw: -1, labels: -1, run: 0}
    assert edges(g) == {(raw, "Consumes", run), (labels, "Consumes", run)}
    assert {n["urn"]: n["type"] for n in g["nodes"]} == {
        raw: "dataset",
        labels: "dataset",
        run: "run",
    }
    assert nodes(graph(api, raw)) == {raw: 0, run: 1}

    assert aspects(api, raw)["dataset_properties"] == {
        "name": "raw-events",
        "uri": "s3://bucket/raw",
        "digest": "abc",
        "num_rows": 10,
        "description": "",
    }
    assert aspects(api, run)["run_lineage"] == {"consumes": [raw, labels], "produces": []}


def test_models_and_datasets_produced_by_a_run(api: httpx.Client) -> None:
    rid = new_run(api, "lineage")
    run = run_urn(rid)
    urns = ok(
        outputs(
            api,
            rid,
            models=[{"name": "churn-gbm", "description": "gradient boosting"}],
            datasets=[{"name": "scores"}],
        )
    )
    model, scores = model_urn("churn-gbm"), dataset_urn("scores")
    assert urns == [model, scores]
    g = graph(api, run)
    assert nodes(g) == {run: 0, model: 1, scores: 1}
    assert edges(g) == {(run, "Produces", model), (run, "Produces", scores)}
    assert nodes(graph(api, model)) == {run: -1, model: 0}
    assert aspects(api, model)["model_properties"] == {
        "name": "churn-gbm",
        "description": "gradient boosting",
    }
    assert aspects(api, run)["run_lineage"] == {"consumes": [], "produces": [model, scores]}


def test_artifacts_produced_by_a_run(api: httpx.Client) -> None:
    rid = new_run(api, "lineage")
    run = run_urn(rid)
    api.put(f"{API}/runs/{rid}/steps/train", json={"status": "running"}).raise_for_status()
    model_file = upload(api, rid, "model.bin", b"weights", step="train", kind="model")
    report = upload(api, rid, "eval/report.json", b"{}")
    assert model_file == artifact_urn(rid, "model.bin")

    g = graph(api, run)
    assert nodes(g) == {run: 0, model_file: 1, report: 1}
    assert edges(g) == {(run, "Produces", model_file), (run, "Produces", report)}
    # Structural edges (the step that made it, the run it belongs to) are not lineage.
    assert step_urn(rid, "train") not in nodes(g)
    assert nodes(graph(api, model_file)) == {run: -1, model_file: 0}
    assert nodes(graph(api, step_urn(rid, "train"))) == {step_urn(rid, "train"): 0}


def test_consuming_another_runs_artifact_links_the_two_runs(api: httpx.Client) -> None:
    producer, consumer = new_run(api, "lineage"), new_run(api, "lineage")
    feats = upload(api, producer, "features.parquet", b"features")
    assert ok(inputs(api, consumer, artifacts=[feats])) == [feats]
    p, c = run_urn(producer), run_urn(consumer)

    g = graph(api, p, downstream=2)
    assert nodes(g) == {p: 0, feats: 1, c: 2}
    assert edges(g) == {(p, "Produces", feats), (feats, "Consumes", c)}

    g = graph(api, c, upstream=2, downstream=0)
    assert nodes(g) == {p: -2, feats: -1, c: 0}
    assert edges(g) == {(p, "Produces", feats), (feats, "Consumes", c)}

    # One hop is not enough to reach the other run.
    assert nodes(graph(api, c, upstream=1)) == {feats: -1, c: 0}


def test_inputs_accept_dataset_and_model_urns(api: httpx.Client) -> None:
    first, second = new_run(api, "lineage"), new_run(api, "lineage")
    [model] = ok(outputs(api, first, models=[{"name": "base"}]))
    ok(inputs(api, first, datasets=[{"name": "d"}]))
    assert ok(inputs(api, second, artifacts=[model, dataset_urn("d")])) == [
        model,
        dataset_urn("d"),
    ]
    g = graph(api, run_urn(second), upstream=2, downstream=0)
    assert nodes(g) == {
        run_urn(second): 0,
        model: -1,
        dataset_urn("d"): -1,
        run_urn(first): -2,
    }


# --- the full chain and hop limits


@pytest.fixture
def chain(api: httpx.Client) -> dict[str, str]:
    """dataset -> run1 -> artifact -> run2 -> model."""
    r1, r2 = new_run(api, "lineage"), new_run(api, "lineage")
    ok(inputs(api, r1, datasets=[{"name": "raw"}]))
    art = upload(api, r1, "features.parquet", b"f")
    ok(inputs(api, r2, artifacts=[art]))
    ok(outputs(api, r2, models=[{"name": "churn"}]))
    return {
        "dataset": dataset_urn("raw"),
        "run1": run_urn(r1),
        "artifact": art,
        "run2": run_urn(r2),
        "model": model_urn("churn"),
    }


def test_the_chain_is_walked_end_to_end(api: httpx.Client, chain: dict[str, str]) -> None:
    d, r1, a, r2, m = (chain[k] for k in ("dataset", "run1", "artifact", "run2", "model"))
    everything = {
        (d, "Consumes", r1),
        (r1, "Produces", a),
        (a, "Consumes", r2),
        (r2, "Produces", m),
    }
    g = graph(api, d, upstream=0, downstream=4)
    assert nodes(g) == {d: 0, r1: 1, a: 2, r2: 3, m: 4}
    assert edges(g) == everything
    g = graph(api, m, upstream=4, downstream=0)
    assert nodes(g) == {m: 0, r2: -1, a: -2, r1: -3, d: -4}
    assert edges(g) == everything
    # Nodes come nearest-upstream first.
    assert [n["hops"] for n in g["nodes"]] == [-4, -3, -2, -1, 0]


@pytest.mark.parametrize(
    ("hops", "expected"),
    [
        ({"upstream": 0, "downstream": 0}, {"artifact": 0}),
        ({"upstream": 1, "downstream": 0}, {"run1": -1, "artifact": 0}),
        ({"upstream": 0, "downstream": 1}, {"artifact": 0, "run2": 1}),
        ({"upstream": 1, "downstream": 1}, {"run1": -1, "artifact": 0, "run2": 1}),
        (
            {"upstream": 2, "downstream": 2},
            {"dataset": -2, "run1": -1, "artifact": 0, "run2": 1, "model": 2},
        ),
        (
            {"upstream": 20, "downstream": 20},
            {"dataset": -2, "run1": -1, "artifact": 0, "run2": 1, "model": 2},
        ),
        # The defaults are three hops each way.
        ({}, {"dataset": -2, "run1": -1, "artifact": 0, "run2": 1, "model": 2}),
    ],
)
def test_hop_limits_are_respected(
    api: httpx.Client, chain: dict[str, str], hops: dict[str, int], expected: dict[str, int]
) -> None:
    g = graph(api, chain["artifact"], **hops)
    assert nodes(g) == {chain[k]: h for k, h in expected.items()}
    inside = set(nodes(g))
    assert all(u in inside and d in inside for u, _, d in edges(g))
    assert len(g["edges"]) == len(inside) - 1  # a chain: one edge per node beyond the root


def test_default_hops_stop_at_three(api: httpx.Client, chain: dict[str, str]) -> None:
    assert nodes(graph(api, chain["dataset"])) == {
        chain["dataset"]: 0,
        chain["run1"]: 1,
        chain["artifact"]: 2,
        chain["run2"]: 3,
    }


@pytest.mark.parametrize(
    "params",
    [
        {"upstream": -1},
        {"downstream": -1},
        {"upstream": 21},
        {"downstream": 100},
        {"upstream": "x"},
    ],
)
def test_hop_limits_out_of_range_are_a_422(
    api: httpx.Client, chain: dict[str, str], params: dict[str, Any]
) -> None:
    resp = api.get(f"{API}/lineage", params={"urn": chain["run1"], **params})
    assert_error(resp, 422, "INVALID_INPUT")


# --- errors


def test_an_unknown_urn_is_a_404(api: httpx.Client) -> None:
    for urn in (run_urn("f" * 32), dataset_urn("never-logged"), model_urn("nope")):
        assert_error(api.get(f"{API}/lineage", params={"urn": urn}), 404, "NOT_FOUND")


@pytest.mark.parametrize(
    "urn",
    [
        "not-a-urn",
        "urn:modelyard:",
        "urn:modelyard:run",
        "urn:modelyard:bogus:x",
        "urn:other:run:x",
    ],
)
def test_a_malformed_urn_is_a_400(api: httpx.Client, urn: str) -> None:
    assert_error(api.get(f"{API}/lineage", params={"urn": urn}), 400, "INVALID_INPUT")


def test_a_missing_urn_is_a_422(api: httpx.Client) -> None:
    assert api.get(f"{API}/lineage").status_code == 422


def test_consuming_an_unknown_artifact_records_nothing(api: httpx.Client) -> None:
    rid = new_run(api, "lineage")
    ghost = artifact_urn(rid, "never-uploaded.bin")
    resp = inputs(api, rid, datasets=[{"name": "side-effect"}], artifacts=[ghost])
    assert_error(resp, 404, "NOT_FOUND")
    assert ghost in resp.json()["error"]["message"]
    # Neither the dataset in the same request nor the run's lineage was written.
    assert "run_lineage" not in aspects(api, run_urn(rid))
    assert_error(
        api.get(f"{API}/lineage", params={"urn": dataset_urn("side-effect")}), 404, "NOT_FOUND"
    )
    assert nodes(graph(api, run_urn(rid))) == {run_urn(rid): 0}


@pytest.mark.parametrize("bad", ["run", "step", "malformed"])
def test_a_run_cannot_consume_what_is_not_data(api: httpx.Client, bad: str) -> None:
    rid, other = new_run(api, "lineage"), new_run(api, "lineage")
    api.put(f"{API}/runs/{other}/steps/s", json={}).raise_for_status()
    urn = {"run": run_urn(other), "step": step_urn(other, "s"), "malformed": "features.parquet"}[
        bad
    ]
    assert_error(inputs(api, rid, artifacts=[urn]), 400, "INVALID_INPUT")
    assert "run_lineage" not in aspects(api, run_urn(rid))


def test_inputs_and_outputs_of_an_unknown_run_are_404(api: httpx.Client) -> None:
    ghost = "0" * 32
    assert_error(inputs(api, ghost, datasets=[{"name": "d"}]), 404, "NOT_FOUND")
    assert_error(outputs(api, ghost, models=[{"name": "m"}]), 404, "NOT_FOUND")
    assert_error(api.get(f"{API}/lineage", params={"urn": dataset_urn("d")}), 404, "NOT_FOUND")
    assert_error(api.get(f"{API}/lineage", params={"urn": model_urn("m")}), 404, "NOT_FOUND")


@pytest.mark.parametrize("status", ["finished", "failed", "killed"])
def test_an_ended_run_takes_no_more_inputs_or_outputs(api: httpx.Client, status: str) -> None:
    rid = new_run(api, "lineage")
    ok(inputs(api, rid, datasets=[{"name": "before"}]))
    api.patch(f"{API}/runs/{rid}", json={"status": status}).raise_for_status()
    assert_error(inputs(api, rid, datasets=[{"name": "after"}]), 409, "INVALID_STATE")
    assert_error(outputs(api, rid, models=[{"name": "late"}]), 409, "INVALID_STATE")
    assert nodes(graph(api, run_urn(rid))) == {run_urn(rid): 0, dataset_urn("before"): -1}


@pytest.mark.parametrize(
    "body",
    [
        {"datasets": [{"name": ""}]},
        {"datasets": [{"name": "d", "num_rows": -1}]},
        {"datasets": [{"name": "d", "extra": 1}]},
        {"models": []},
    ],
)
def test_malformed_inputs_are_a_422(api: httpx.Client, body: dict[str, Any]) -> None:
    rid = new_run(api, "lineage")
    assert_error(api.post(f"{API}/runs/{rid}/inputs", json=body), 422, "INVALID_INPUT")
    assert "run_lineage" not in aspects(api, run_urn(rid))


# --- idempotence and history


def test_logging_the_same_inputs_again_is_a_no_op(api: httpx.Client) -> None:
    rid = new_run(api, "lineage")
    run = run_urn(rid)
    body = {"datasets": [{"name": "raw", "uri": "s3://raw"}]}
    first = ok(inputs(api, rid, **body))
    again = ok(inputs(api, rid, **body))
    assert first == again == [dataset_urn("raw")]
    versions = api.get(f"{API}/entities/{quote(run, safe='')}/aspects/run_lineage/versions").json()
    assert len(versions) == 1
    ds_versions = api.get(
        f"{API}/entities/{quote(dataset_urn('raw'), safe='')}/aspects/dataset_properties/versions"
    ).json()
    assert len(ds_versions) == 1


def test_lineage_accumulates_across_calls(api: httpx.Client) -> None:
    rid = new_run(api, "lineage")
    run = run_urn(rid)
    ok(inputs(api, rid, datasets=[{"name": "a"}]))
    ok(inputs(api, rid, datasets=[{"name": "b"}, {"name": "a"}]))
    ok(outputs(api, rid, models=[{"name": "m"}]))
    ok(outputs(api, rid, models=[{"name": "m"}]))
    assert aspects(api, run)["run_lineage"] == {
        "consumes": [dataset_urn("a"), dataset_urn("b")],
        "produces": [model_urn("m")],
    }
    versions = api.get(f"{API}/entities/{quote(run, safe='')}/aspects/run_lineage/versions").json()
    assert [len(v["value"]["consumes"]) + len(v["value"]["produces"]) for v in versions] == [
        1,
        2,
        3,
    ]
    assert nodes(graph(api, run)) == {
        dataset_urn("a"): -1,
        dataset_urn("b"): -1,
        run: 0,
        model_urn("m"): 1,
    }


def test_two_runs_sharing_a_dataset(api: httpx.Client) -> None:
    a, b = new_run(api, "lineage"), new_run(api, "lineage")
    ok(inputs(api, a, datasets=[{"name": "shared"}]))
    ok(inputs(api, b, datasets=[{"name": "shared"}]))
    shared = dataset_urn("shared")
    g = graph(api, shared)
    assert nodes(g) == {shared: 0, run_urn(a): 1, run_urn(b): 1}
    # Walking down from one run never reaches its sibling.
    assert nodes(graph(api, run_urn(a), upstream=0, downstream=5)) == {run_urn(a): 0}


def test_inputs_logged_concurrently_are_all_kept(api: httpx.Client) -> None:
    rid = new_run(api, "lineage")
    names = [f"part-{i:02d}" for i in range(24)]
    with ThreadPoolExecutor(8) as pool:
        codes = list(
            pool.map(lambda n: inputs(api, rid, datasets=[{"name": n}]).status_code, names)
        )
    assert codes == [200] * len(names)
    consumes = aspects(api, run_urn(rid))["run_lineage"]["consumes"]
    assert sorted(consumes) == [dataset_urn(n) for n in names]
    assert set(nodes(graph(api, run_urn(rid)))) == {run_urn(rid), *consumes}


def test_the_api_documents_each_resource_under_its_own_tag(api: httpx.Client) -> None:
    paths = api.get("/openapi.json").json()["paths"]
    tags = {(path, method): op["tags"] for path, ops in paths.items() for method, op in ops.items()}
    assert tags[(f"{API}/lineage", "get")] == ["lineage"]
    assert tags[(f"{API}/runs/{{run_id}}/inputs", "post")] == ["lineage"]
    assert tags[(f"{API}/runs/{{run_id}}/outputs", "post")] == ["lineage"]
    assert tags[(f"{API}/entities/{{urn}}/aspects", "get")] == ["entities"]
    assert tags[(f"{API}/entities/{{urn}}/aspects/{{aspect}}/versions", "get")] == ["entities"]
    assert tags[(f"{API}/changes", "get")] == ["changes"]
