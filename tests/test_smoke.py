from __future__ import annotations

import httpx

from modelyard.sdk.client import Client


def test_run_round_trip_over_api(api: httpx.Client) -> None:
    created = api.post("/api/v1/runs", json={"project": "p", "name": "r", "params": {"a": "1"}})
    assert created.status_code == 201, created.text
    run_id = created.json()["run_id"]
    got = api.get(f"/api/v1/runs/{run_id}").json()
    assert got["params"] == {"a": "1"}
    assert got["status"] == "running"


def test_sdk_flow(client: Client) -> None:
    with client.start_run(project="churn", name="gbm") as run:
        run.log_metrics({"loss": 0.5}, step=1)
    assert client.get_run(run.id).metrics["loss"].value == 0.5
