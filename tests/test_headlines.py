"""Headline metrics of the projects and models lists: which metric heads a group of runs, which
way is better, its best value, in a fixed number of queries; checked against a plain Python
reading of the API's runs."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import event

from modelyard.services.headlines import higher_is_better
from modelyard.services.models import list_models
from modelyard.services.projects import list_projects
from tests.helpers import API, get_page, new_run
from tests.test_web_pages import finish, log


@pytest.mark.parametrize(
    ("key", "higher"),
    [
        ("auc", True), ("accuracy", True), ("f1", True), ("r2", True), ("val_auc", True),
        ("loss", False), ("val_loss", False), ("log_loss", False), ("train_loss", False),
        ("rmse", False), ("test-MAE", False), ("word_error_rate", False), ("valloss", False),
        ("eval/mse", False), ("p99_latency_ms", False), ("lossless_ratio", True),
    ],
)  # fmt: skip
def test_which_way_is_better_follows_the_metric_name(key: str, higher: bool) -> None:
    assert higher_is_better(key) is higher


@contextmanager
def counted_queries(app: FastAPI) -> Iterator[list[str]]:
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    engine = app.state.store.engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", count)


def logged(api: httpx.Client, project: str, metrics: dict[str, Any], status: str) -> str:
    run_id = new_run(api, project)
    log(api, run_id, metrics=[{"key": k, "value": v} for k, v in metrics.items()])
    if status != "running":
        finish(api, run_id, status)
    return run_id


def expected_headline(runs: list[dict[str, Any]]) -> tuple[str, float, set[str]]:
    """The documented rule, read plainly off the API's runs: most logged, training metrics
    last among equals, then well-known names, then by name; best by the name's direction."""
    counts: dict[str, int] = {}
    for r in runs:
        for k in r["metrics"]:
            counts[k] = counts.get(k, 0) + 1
    known = ["auc", "accuracy", "f1", "loss"]
    key = sorted(
        counts,
        key=lambda k: (-counts[k], k.startswith("train"), known.index(k) if k in known else 9, k),
    )[0]
    values = {r["run_id"]: r["metrics"][key]["value"] for r in runs if key in r["metrics"]}
    finite = {rid: v for rid, v in values.items() if not isinstance(v, str)}
    best = (max if higher_is_better(key) else min)(finite.values())
    return key, best, {rid for rid, v in finite.items() if v == best}


def test_projects_and_models_are_headed_by_their_best_metric(
    api: httpx.Client, app: FastAPI
) -> None:
    # "cls": accuracy in every finished run, auc in fewer; a failed run's better value and a
    # running run's do not count; NaN is never best.
    a = logged(api, "cls", {"accuracy": 0.81, "auc": 0.9, "train_loss": 0.3}, "finished")
    b = logged(api, "cls", {"accuracy": 0.86, "train_loss": 0.2}, "finished")
    logged(api, "cls", {"accuracy": "NaN"}, "finished")
    logged(api, "cls", {"accuracy": 0.99}, "failed")
    logged(api, "cls", {"accuracy": 0.97}, "running")
    # "reg": a loss, so the lowest is best; ties in count go to the non-training metric.
    r1 = logged(api, "reg", {"rmse": 3.5, "train_loss": 1.0}, "finished")
    r2 = logged(api, "reg", {"rmse": 2.25, "train_loss": 2.0}, "finished")
    new_run(api, "empty")
    for model, run_id in (("m-cls", a), ("m-cls", b), ("m-reg", r1), ("m-reg", r2), ("m-reg", r2)):
        resp = api.post(f"{API}/runs/{run_id}/model-versions", json={"model": model})
        assert resp.status_code == 201, resp.text

    listed = {p["name"]: p for p in api.get(f"{API}/projects").json()}
    for project in ("cls", "reg"):
        runs = api.post(f"{API}/runs/search", json={"project": project}).json()["runs"]
        key, best, best_runs = expected_headline([r for r in runs if r["status"] == "finished"])
        headline = listed[project]["headline"]
        assert (headline["key"], headline["value"]) == (key, best)
        assert headline["run_id"] in best_runs
        assert headline["higher_is_better"] is higher_is_better(key)
    assert listed["cls"]["headline"]["key"] == "accuracy"  # three finished runs have it
    assert listed["cls"]["headline"]["runs"] == 3
    assert listed["reg"]["headline"]["key"] == "rmse"
    assert listed["reg"]["headline"]["value"] == 2.25
    assert listed["empty"]["headline"] is None

    models = {m["name"]: m for m in api.get(f"{API}/models").json()}
    for model, runs_of in (("m-cls", [a, b]), ("m-reg", [r1, r2])):
        runs = [api.get(f"{API}/runs/{r}").json() for r in runs_of]
        key, best, best_runs = expected_headline(runs)
        headline = models[model]["headline"]
        assert (headline["key"], headline["value"]) == (key, best)
        assert headline["run_id"] in best_runs
    assert models["m-reg"]["headline"]["runs"] == 2  # r2 made two versions: one run

    # The pages show the same, each best value a link to its run.
    page = get_page(api, "/projects")
    assert f'<a href="/runs/{b}" data-headline-value>0.86</a>' in page
    assert "lower is better" in page
    page = get_page(api, "/models")
    assert f'<a href="/runs/{r2}" data-headline-value>2.25</a>' in page


def test_the_lists_take_the_same_queries_for_one_project_or_many(
    api: httpx.Client, app: FastAPI
) -> None:
    def queries() -> tuple[int, int]:
        store = app.state.store
        with counted_queries(app) as projects_sql:
            list_projects(store, readable=None)
        with counted_queries(app) as models_sql:
            list_models(store, readable=None)
        return len(projects_sql), len(models_sql)

    run_id = logged(api, "p0", {"auc": 0.5}, "finished")
    api.post(f"{API}/runs/{run_id}/model-versions", json={"model": "m0"})
    few = queries()
    for i in range(1, 8):
        run_id = logged(api, f"p{i}", {"auc": i / 10, f"k{i}": 1.0}, "finished")
        api.post(f"{API}/runs/{run_id}/model-versions", json={"model": f"m{i}"})
    assert queries() == few
    assert few[0] <= 3
    assert few[1] <= 3


def test_a_project_is_headed_by_its_latest_finished_runs(
    api: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The best value is read over the project's latest RECENT_RUNS finished runs, so a list
    costs the same whatever a project's size: an older, better run no longer counts."""
    from modelyard.services import headlines

    monkeypatch.setattr(headlines, "RECENT_RUNS", 2)
    for n, auc in enumerate([0.99, 0.7, 0.8]):
        rid = new_run(api, "bounded", name=f"r{n}", start_time=1_700_000_000_000 + n)
        log(api, rid, metrics=[{"key": "auc", "value": auc, "step": 0}])
        finish(api, rid)
    listed = {p["name"]: p for p in api.get(f"{API}/projects").json()}
    assert listed["bounded"]["headline"]["value"] == 0.8
    assert listed["bounded"]["headline"]["runs"] == 2
