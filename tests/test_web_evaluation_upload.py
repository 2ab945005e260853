"""Evaluating a file of predictions uploaded in the portal."""

from __future__ import annotations

import io

import httpx
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn import metrics as skm

from tests.helpers import API, new_run

# Evaluations store their tables as artifacts: every test runs on both stores.
pytestmark = pytest.mark.stores("local", "s3")


def _parquet(**cols: object) -> bytes:
    buf = io.BytesIO()
    pq.write_table(pa.table(cols), buf)
    return buf.getvalue()


def test_an_uploaded_parquet_file_is_evaluated(api: httpx.Client) -> None:
    rng = np.random.default_rng(4)
    y = (rng.random(1500) < 0.3).astype(int)
    s = np.round(np.clip(0.3 * y + rng.random(1500) * 0.7, 0, 1), 2)
    g = rng.choice(["a", "b"], 1500)
    run_id = new_run(api, "upload")
    page = api.get(f"/runs/{run_id}/evaluations")
    assert 'enctype="multipart/form-data"' in page.text
    resp = api.post(
        f"/runs/{run_id}/evaluations",
        files={"predictions": ("preds.parquet", _parquet(label=y, p=s, grp=g))},
        data={"dataset": "holdout", "y_true": "label", "y_score": "p", "groups": "grp"},
    )
    assert resp.status_code == 303, resp.text[:500]
    evaluation_id = resp.headers["location"].rsplit("/", 1)[1]
    ev = api.get(f"{API}/evaluations/{evaluation_id}").json()
    assert ev["dataset"] == "holdout"
    assert ev["groups"] == ["grp"]
    assert ev["metrics"]["binary"]["roc_auc"] == pytest.approx(skm.roc_auc_score(y, s), abs=1e-9)
    assert api.get(resp.headers["location"]).status_code == 200


def test_a_bad_file_is_explained_and_stores_nothing(api: httpx.Client) -> None:
    run_id = new_run(api, "upload")
    csv = b"y_true,y_score\n0,0.1\n1,nan\n"
    resp = api.post(
        f"/runs/{run_id}/evaluations",
        files={"predictions": ("preds.csv", csv)},
        data={"dataset": "holdout"},
    )
    assert resp.status_code == 400
    assert "Nothing was stored" in resp.text
    assert "column &#39;y_score&#39;: the column has 1 empty value(s)" in resp.text
    assert 'value="holdout"' in resp.text  # the form keeps what was typed
    missing = api.post(
        f"/runs/{run_id}/evaluations",
        files={"predictions": ("preds.csv", b"a,b\n0,0.1\n")},
        data={"y_true": "label"},
    )
    assert missing.status_code == 400
    assert "no column" in missing.text
    assert api.get(f"{API}/runs/{run_id}/evaluations").json() == []
    assert api.get(f"{API}/runs/{run_id}/artifacts").json() == []
