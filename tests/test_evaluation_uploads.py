"""Uploading predictions over the size limit, through the API and through the portal: the
same use case refuses them the same way and stores nothing."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Callable, Iterator

import httpx
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi import FastAPI

from tests.conftest import in_process_client
from tests.helpers import API, assert_error, new_run, run_async

LIMIT = 2_000


@pytest.fixture
def small(app_with: Callable[..., FastAPI]) -> Iterator[httpx.Client]:
    with in_process_client(app_with(max_table_bytes=LIMIT)) as client:
        yield client


def _parquet(n: int) -> bytes:
    rng = np.random.default_rng(n)
    table = pa.table({"y_true": rng.integers(0, 2, n), "y_score": rng.random(n)})
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


def test_an_api_upload_over_the_limit_is_a_413_and_stores_nothing(small: httpx.Client) -> None:
    run_id = new_run(small, "limits")
    url = f"{API}/runs/{run_id}/evaluations"
    body = _parquet(2_000)
    assert len(body) > LIMIT
    parquet = {"content-type": "application/vnd.apache.parquet"}
    message = assert_error(small.post(url, content=body, headers=parquet), 413)
    assert f"{LIMIT}-byte limit" in message
    assert small.get(url).json() == []
    small_body = _parquet(10)
    assert len(small_body) <= LIMIT
    assert small.post(url, content=small_body, headers=parquet).status_code == 201


def test_a_model_version_upload_over_the_limit_is_refused(small: httpx.Client) -> None:
    run_id = new_run(small, "limits")
    registered = small.post(f"{API}/runs/{run_id}/model-versions", json={"model": "m"})
    assert registered.status_code == 201, registered.text
    url = f"{API}/models/m/versions/1/evaluations"
    headers = {"content-type": "application/vnd.apache.parquet"}
    assert_error(small.post(url, content=_parquet(2_000), headers=headers), 413)
    assert small.get(url).json() == []
    assert small.post(url, content=_parquet(10), headers=headers).status_code == 201
    assert_error(
        small.post(f"{API}/models/m/versions/9/evaluations", content=_parquet(10), headers=headers),
        404,
    )


def test_a_portal_upload_over_the_limit_is_explained(small: httpx.Client) -> None:
    run_id = new_run(small, "limits")
    resp = small.post(
        f"/runs/{run_id}/evaluations",
        files={"predictions": ("preds.parquet", _parquet(2_000))},
        data={"dataset": "holdout"},
    )
    assert resp.status_code == 413
    assert f"{LIMIT}-byte limit" in resp.text
    assert 'value="holdout"' in resp.text  # the form keeps what was typed
    assert small.get(f"{API}/runs/{run_id}/evaluations").json() == []


def test_a_streamed_api_upload_with_no_declared_length_is_refused_past_the_limit(
    app_with: Callable[..., FastAPI],
) -> None:
    app = app_with(max_table_bytes=LIMIT)
    body = _parquet(2_000)

    async def chunks() -> AsyncIterator[bytes]:
        for i in range(0, len(body), 500):
            yield body[i : i + 500]

    async def upload(run_id: str) -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
            req = client.build_request(
                "POST",
                f"{API}/runs/{run_id}/evaluations",
                content=chunks(),
                headers={"content-type": "application/vnd.apache.parquet"},
            )
            assert "content-length" not in req.headers
            return await client.send(req)

    with in_process_client(app) as api:
        run_id = new_run(api, "limits")
        assert_error(run_async(lambda: upload(run_id)), 413)
        assert api.get(f"{API}/runs/{run_id}/evaluations").json() == []
