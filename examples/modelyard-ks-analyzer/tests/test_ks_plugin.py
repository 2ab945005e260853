"""The example plugin end to end: installed as a package, found through its entry point,
run on every binary evaluation, its numbers checked against scipy, its panel served."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import numpy as np
import pytest
from scipy.stats import ks_2samp

from modelyard.app import create_app
from modelyard.plugins import make_plugins
from modelyard.sdk.transport import InProcessTransport
from modelyard.settings import Settings


def test_the_entry_point_registers_the_analyzer() -> None:
    plugins = make_plugins()
    assert "ks" in plugins.analyzers
    assert {"binary", "fairness", "multiclass", "regression"} <= set(plugins.analyzers)
    assert "ks" not in make_plugins(load_entry_points=False).analyzers


@pytest.fixture
def api(tmp_path: Path) -> httpx.Client:
    app = create_app(Settings(data_dir=tmp_path / "data"))
    return httpx.Client(transport=InProcessTransport(app), base_url="http://localhost")


def test_every_binary_evaluation_gets_the_ks_statistic(api: httpx.Client) -> None:
    rng = np.random.default_rng(3)
    y = (rng.random(4000) < 0.4).astype(int)
    s = np.round(np.clip(0.2 * y + rng.random(4000) * 0.8, 0, 1), 2)  # with ties
    run_id = api.post("/api/v1/runs", json={"project": "ks"}).json()["run_id"]
    resp = api.post(
        f"/api/v1/runs/{run_id}/evaluations", json={"y_true": y.tolist(), "y_score": s.tolist()}
    )
    assert resp.status_code == 201, resp.text
    ev = resp.json()
    assert "ks" in ev["analyzers"]
    expected = ks_2samp(s[y == 1], s[y == 0]).statistic
    assert ev["metrics"]["ks"]["ks"] == pytest.approx(expected, abs=1e-12)
    # its panel is drawn from the plugin's own template, with the plugin's own style sheet
    page = api.get(f"/evaluations/{ev['id']}")
    assert page.status_code == 200
    assert f'data-ks="{ev["metrics"]["ks"]["ks"]}"' in page.text
    css = re.search(r'href="(/static/[0-9a-f]{12}/ks/ks\.css)"', page.text)
    assert css
    assert ".ks-panel" in api.get(css.group(1)).text
    # its headline metric says higher is better, and the run's list shows it
    row = re.search(r'<tr data-metric="ks" data-direction="higher">.*?</tr>', page.text, re.S)
    assert row
    assert "KS statistic" in row.group(0)
    assert "↑" in row.group(0)
    assert "KS statistic" in api.get(f"/runs/{run_id}/evaluations").text


def test_the_comparison_marks_the_best_ks_and_draws_its_panel(api: httpx.Client) -> None:
    rng = np.random.default_rng(5)
    ids, stats = [], []
    for shift in (0.1, 0.3):
        y = (rng.random(500) < 0.5).astype(int)
        s = np.clip(shift * y + rng.random(500) * 0.7, 0, 1)
        run_id = api.post("/api/v1/runs", json={"project": "ks"}).json()["run_id"]
        body = {"y_true": y.tolist(), "y_score": s.tolist()}
        ids.append(api.post(f"/api/v1/runs/{run_id}/evaluations", json=body).json()["id"])
        stats.append(ks_2samp(s[y == 1], s[y == 0]).statistic)
    page = api.get(f"/evaluations/compare?e={ids[0]}&e={ids[1]}").text
    row = re.search(r'<tr data-metric="ks.ks" data-direction="higher">(.*?)</tr>', page, re.S)
    assert row
    cells = re.findall(r"<td class=\"num( better)?\"", row.group(1))
    best = int(np.argmax(stats))
    assert [bool(c) for c in cells] == [i == best for i in range(2)]
    assert "KS statistic by evaluation" in page


def test_regression_evaluations_are_left_alone(api: httpx.Client) -> None:
    run_id = api.post("/api/v1/runs", json={"project": "ks"}).json()["run_id"]
    body = {"y_true": [1.5, 2.5, 9.0], "y_score": [1.0, 2.0, 3.0]}
    ev = api.post(f"/api/v1/runs/{run_id}/evaluations", json=body).json()
    assert ev["analyzers"] == ["regression"]
