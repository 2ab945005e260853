"""Evaluations through the API and the SDK: stored with the run, linked in lineage, exact
at any threshold; bad tables store nothing."""

from __future__ import annotations

import io
import uuid
from typing import Any

import httpx
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn import metrics as skm

from modelyard.sdk.client import Client
from tests.helpers import API, assert_error, new_run

# Evaluations store their tables as artifacts: every test runs on both stores.
pytestmark = pytest.mark.stores("local", "s3")

TOL = 1e-9


def data(n: int = 3000, seed: int = 0) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.35).astype(int)
    s = np.round(np.clip(0.3 * y + rng.random(n) * 0.7, 0, 1), 2)
    return {
        "y": y,
        "s": s,
        "w": rng.exponential(size=n),
        "g": rng.choice(["female", "male", "other"], n, p=[0.45, 0.45, 0.1]),
    }


def test_sdk_evaluates_a_run_exactly(client: Client) -> None:
    d = data()
    with client.start_run(project="eval", name="gbm") as run:
        ev = run.evaluate(
            d["y"], d["s"], dataset="holdout", groups={"gender": d["g"]}, weights=d["w"]
        )
    assert ev.public.task == "binary"
    assert ev.public.analyzers[:2] == ["binary", "fairness"]  # then any installed plugins
    binary = ev.metrics["binary"]
    assert binary["roc_auc"] == pytest.approx(
        skm.roc_auc_score(d["y"], d["s"], sample_weight=d["w"]), abs=TOL
    )
    assert binary["average_precision"] == pytest.approx(
        skm.average_precision_score(d["y"], d["s"], sample_weight=d["w"]), abs=TOL
    )
    for point in ev.at(0.2, 0.5, 0.77):
        tn, fp, fn, tp = skm.confusion_matrix(
            d["y"], d["s"] >= point.threshold, sample_weight=d["w"]
        ).ravel()
        assert [point.tn, point.fp, point.fn, point.tp] == pytest.approx([tn, fp, fn, tp], abs=1e-6)
    result = ev.result()
    assert {"binary", "fairness"} <= set(result)
    assert len(result["binary"]["curves"]["roc"]["fpr"]) > 10
    assert [e.id for e in client.list_evaluations(run.id)] == [ev.id]
    # linked: the run and the dataset are upstream of the evaluation
    graph = client.lineage(ev.public.urn, upstream=1, downstream=0)
    edges = {(e.upstream, e.type) for e in graph.edges}
    assert (run.urn, "DerivedFrom") in edges
    assert ("urn:modelyard:dataset:holdout", "EvaluatedOn") in edges
    # the predictions are kept with the run, exactly as sent
    path = ev.public.files["predictions"]
    assert path in {a.path for a in client.list_artifacts(run.id)}


def test_a_finished_run_can_still_be_evaluated(client: Client) -> None:
    d = data(500)
    with client.start_run(project="eval") as run:
        pass
    ev = client.evaluate(run.id, d["y"], d["s"], dataset="later")
    assert ev.metrics["binary"]["roc_auc"] == pytest.approx(
        skm.roc_auc_score(d["y"], d["s"]), abs=TOL
    )


def test_multiclass_with_named_classes(client: Client) -> None:
    rng = np.random.default_rng(5)
    scores = rng.dirichlet([1, 1, 1], size=600)
    labels = np.array(["cat", "dog", "fox"])[rng.integers(0, 3, 600)]
    with client.start_run(project="eval") as run:
        ev = run.evaluate(labels, scores, classes=["cat", "dog", "fox"])
    assert ev.public.task == "multiclass"
    predicted = np.array(["cat", "dog", "fox"])[scores.argmax(axis=1)]
    accuracy = ev.metrics["multiclass"]["accuracy"]
    assert accuracy == pytest.approx(skm.accuracy_score(labels, predicted), abs=TOL)


def _parquet(**cols: Any) -> bytes:
    buf = io.BytesIO()
    pq.write_table(pa.table(cols), buf)
    return buf.getvalue()


def test_uploads_as_parquet_and_csv(api: httpx.Client) -> None:
    d = data(800)
    run_id = new_run(api, "eval")
    body = _parquet(label=d["y"], p=d["s"], sex=d["g"])
    resp = api.post(
        f"{API}/runs/{run_id}/evaluations",
        params={"y_true": "label", "y_score": "p", "group": "sex", "dataset": "holdout"},
        content=body,
        headers={"Content-Type": "application/vnd.apache.parquet"},
    )
    assert resp.status_code == 201, resp.text
    assert resp.json()["groups"] == ["sex"]
    auc = skm.roc_auc_score(d["y"], d["s"])
    assert resp.json()["metrics"]["binary"]["roc_auc"] == pytest.approx(auc, abs=TOL)
    csv = "y_true,y_score\n" + "\n".join(f"{a},{b}" for a, b in zip(d["y"], d["s"], strict=True))
    resp = api.post(
        f"{API}/runs/{run_id}/evaluations",
        content=csv.encode(),
        headers={"Content-Type": "text/csv"},
    )
    assert resp.status_code == 201, resp.text
    assert resp.json()["metrics"]["binary"]["roc_auc"] == pytest.approx(auc, abs=TOL)


def _stored(api: httpx.Client, run_id: str) -> tuple[int, int]:
    evaluations = api.get(f"{API}/runs/{run_id}/evaluations").json()
    artifacts = api.get(f"{API}/runs/{run_id}/artifacts").json()
    return len(evaluations), len(artifacts)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"y_true": [0, 1, 2], "y_score": [0.1, 0.2, 0.3], "task": "binary"}, "must be 0 or 1"),
        ({"y_true": [0, 1], "y_score": [0.1, "NaN"]}, "y_score"),
        ({"y_true": [0, 1, 1], "y_score": [0.1, 0.2]}, "3 rows but y_score has 2"),
        ({"y_true": [], "y_score": []}, "empty"),
        ({"y_true": [0, 1], "y_score": [0.2, 0.4], "groups": {"g": ["a", "a"]}}, "single group"),
        ({"y_true": [0, 1], "y_score": [0.2, 0.4], "weights": [1]}, "weights has 1 rows"),
    ],
)
def test_bad_tables_store_nothing(api: httpx.Client, body: dict[str, Any], message: str) -> None:
    run_id = new_run(api, "eval")
    before = _stored(api, run_id)
    resp = api.post(f"{API}/runs/{run_id}/evaluations", json=body)
    assert message in assert_error(resp, (400, 422))
    assert _stored(api, run_id) == before


def test_a_missing_column_is_named(api: httpx.Client) -> None:
    run_id = new_run(api, "eval")
    body = _parquet(label=[0, 1], p=[0.2, 0.9])
    resp = api.post(
        f"{API}/runs/{run_id}/evaluations",
        params={"y_true": "label", "y_score": "score"},
        content=body,
        headers={"Content-Type": "application/vnd.apache.parquet"},
    )
    message = assert_error(resp, 400)
    assert "'score'" in message
    assert "label, p" in message
    garbage = api.post(
        f"{API}/runs/{run_id}/evaluations",
        content=b"not parquet",
        headers={"Content-Type": "application/vnd.apache.parquet"},
    )
    assert "could not be read" in assert_error(garbage, 400)
    assert _stored(api, run_id) == (0, 0)


def test_a_retried_evaluation_is_stored_once(api: httpx.Client) -> None:
    run_id = new_run(api, "eval")
    eval_id = uuid.uuid4().hex
    body = {"y_true": [0, 1, 1, 0], "y_score": [0.1, 0.8, 0.6, 0.3]}
    first = api.post(
        f"{API}/runs/{run_id}/evaluations", params={"evaluation_id": eval_id}, json=body
    )
    again = api.post(
        f"{API}/runs/{run_id}/evaluations", params={"evaluation_id": eval_id}, json=body
    )
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert _stored(api, run_id)[0] == 1


def test_unknown_things_are_404(api: httpx.Client) -> None:
    body = {"y_true": [0, 1], "y_score": [0.1, 0.8]}
    assert_error(api.post(f"{API}/runs/{'0' * 32}/evaluations", json=body), 404)
    assert_error(api.get(f"{API}/evaluations/{'0' * 32}"), 404)
    run_id = new_run(api, "eval")
    reg = api.post(
        f"{API}/runs/{run_id}/evaluations",
        json={"y_true": [1.5, 2.5, 9.0], "y_score": [1.0, 2.0, 3.0]},
    )
    assert reg.status_code == 201
    assert reg.json()["task"] == "regression"
    message = assert_error(
        api.get(f"{API}/evaluations/{reg.json()['id']}/thresholds", params={"t": 0.5}), 400
    )
    assert "binary" in message
