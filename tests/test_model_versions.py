"""Model versions: numbered per model, made by a run, evaluated like runs, with their pages."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote

import httpx
import numpy as np
import pytest
from sklearn import metrics as skm

from modelyard.sdk.client import Client
from tests.helpers import API, assert_error, new_run

HOSTILE = "<script>alert(1)</script>"


def test_versions_are_numbered_per_model_and_evaluated(client: Client) -> None:
    rng = np.random.default_rng(2)
    y = (rng.random(2000) < 0.3).astype(int)
    s = np.round(np.clip(0.3 * y + rng.random(2000) * 0.7, 0, 1), 2)
    with client.start_run(project="registry", name="gbm-1") as first:
        v1 = first.register_model("churn-gbm", "first cut")
    with client.start_run(project="registry", name="gbm-2") as second:
        pass
    v2 = second.register_model("churn-gbm")  # after the run finished
    other = second.register_model("churn-lr")
    assert (v1.version, v2.version, other.version) == (1, 2, 1)
    assert v1.public.run_id == first.id
    ev = client.get_model_version("churn-gbm", 2).evaluate(y, s, dataset="holdout")
    assert ev.public.model == "churn-gbm"
    assert ev.public.model_version == 2
    assert ev.public.run_id == second.id
    assert ev.metrics["binary"]["roc_auc"] == pytest.approx(skm.roc_auc_score(y, s), abs=1e-9)
    assert [e.id for e in v2.evaluations()] == [ev.id]
    assert v1.evaluations() == []
    # lineage: run -> version -> evaluation, and the dataset -> evaluation
    graph = client.lineage(ev.public.urn, upstream=2, downstream=0)
    edges = {(e.upstream, e.type, e.downstream) for e in graph.edges}
    assert (v2.public.urn, "DerivedFrom", ev.public.urn) in edges
    assert (second.urn, "TrainedBy", v2.public.urn) in edges


def test_concurrent_registrations_get_distinct_versions(api: httpx.Client) -> None:
    run_id = new_run(api, "registry")

    def register(_: int) -> int:
        resp = api.post(f"{API}/runs/{run_id}/model-versions", json={"model": "m"})
        assert resp.status_code == 201, resp.text
        return int(resp.json()["version"])

    with ThreadPoolExecutor(4) as pool:
        versions = sorted(pool.map(register, range(12)))
    assert versions == list(range(1, 13))


def test_unknown_models_and_versions(api: httpx.Client) -> None:
    assert_error(api.get(f"{API}/models/nope/versions/1"), 404)
    assert_error(api.get(f"{API}/models/nope/versions"), 404)
    body = {"y_true": [0, 1], "y_score": [0.2, 0.9]}
    assert_error(api.post(f"{API}/models/nope/versions/1/evaluations", json=body), 404)
    assert_error(api.post(f"{API}/runs/{'0' * 32}/model-versions", json={"model": "m"}), 404)
    page = api.get("/models/nope/versions/3")
    assert page.status_code == 404
    assert "has no version 3" in page.text


def test_model_pages_list_versions_and_their_evaluations(api: httpx.Client) -> None:
    run_id = new_run(api, "registry", name=HOSTILE)
    for _ in range(2):
        assert (
            api.post(f"{API}/runs/{run_id}/model-versions", json={"model": HOSTILE}).status_code
            == 201
        )
    body = {"y_true": [0, 1, 1, 0], "y_score": [0.1, 0.7, 0.8, 0.4], "dataset": HOSTILE}
    name = quote(HOSTILE, safe="")
    ev = api.post(f"{API}/models/{name}/versions/2/evaluations", json=body)
    assert ev.status_code == 201, ev.text
    models = api.get("/models").text
    assert f'href="/models/{name}"' in models
    listing = api.get(f"/models/{name}").text
    assert re.findall(r'data-version="(\d+)"', listing) == ["2", "1"]
    version = api.get(f"/models/{name}/versions/2").text
    assert f'href="/evaluations/{ev.json()["id"]}"' in version
    evaluation = api.get(f"/evaluations/{ev.json()['id']}").text
    assert f'href="/models/{name}/versions/2"' in evaluation
    for doc in (models, listing, version, evaluation):
        assert HOSTILE not in doc
        assert "&lt;script&gt;" in doc


def test_a_model_without_versions_has_a_page_saying_so(api: httpx.Client) -> None:
    run_id = new_run(api, "registry")
    resp = api.post(f"{API}/runs/{run_id}/outputs", json={"models": [{"name": "sketch"}]})
    assert resp.status_code == 200
    page = api.get("/models/sketch")
    assert page.status_code == 200
    assert "No versions of this model are registered yet" in page.text
    assert api.get("/models/never-made").status_code == 404


def test_a_version_beyond_what_is_stored_is_refused_not_a_server_error(api: httpx.Client) -> None:
    # Versions are 32-bit integers in the database (PostgreSQL raised on a larger one).
    big = 2**31
    for resp in (
        api.get(f"{API}/models/m/versions/{big}"),
        api.get(f"{API}/models/m/versions/{big}/evaluations"),
        api.post(f"{API}/models/m/versions/{big}/evaluations", json={"y_true": [], "y_score": []}),
    ):
        assert "version" in assert_error(resp, 422)
    assert_error(api.get(f"{API}/models/m/versions/{big - 1}"), 404)
