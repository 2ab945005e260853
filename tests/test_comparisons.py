"""Which evaluations the pages offer to compare: per dataset, the newest evaluation of each run
or model version; a version's evaluations are its own and its run's. Model versions name the
artifact they are."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

import httpx
from fastapi import FastAPI
from sqlalchemy import event

from modelyard.metadata.urn import artifact_urn
from modelyard.services.comparisons import EvaluationRef, Subject, by_dataset
from tests.helpers import API, assert_error, get_page, new_run

HOSTILE = "<script>alert(1)</script>"
SCORES = {"y_true": [0, 1, 1, 0, 1, 0], "y_score": [0.1, 0.7, 0.8, 0.4, 0.3, 0.2]}


# --- the grouping, on its own
def ref(id: str, dataset: str | None, at: int, task: str = "binary") -> EvaluationRef:
    return EvaluationRef(id, f"ev-{id}", dataset, task, at, "run", None, None)


A, B, C, D = (Subject(k, f"run-{k}") for k in "abcd")


def test_each_dataset_two_subjects_share_picks_their_newest_evaluation_there() -> None:
    found = by_dataset(
        [A, B, C, D],
        {
            "a": [ref("a1", "jan", 1), ref("a2", "jan", 5), ref("a3", "feb", 2)],
            "b": [ref("b1", "jan", 3), ref("b2", "mar", 1)],
            "c": [ref("c1", "feb", 9), ref("c2", "jan", 1, task="regression")],
            "d": [ref("d1", None, 1)],  # an unnamed dataset matches nothing
        },
        limit=8,
    )
    offered = {(c.dataset, c.task): c for c in found.datasets}
    assert list(offered) == [("feb", "binary"), ("jan", "binary")]  # "mar" has one run only
    assert offered["jan", "binary"].evaluation_ids == ["a2", "b1"]  # a's newest, in run order
    assert offered["feb", "binary"].evaluation_ids == ["a3", "c1"]
    assert offered["jan", "binary"].missing == [C]  # c's jan evaluation is of another task
    assert offered["feb", "binary"].missing == [B]
    assert found.unevaluated == [D]  # said once, not under every dataset


def test_datasets_shared_by_more_subjects_come_first_and_a_link_compares_at_most_limit() -> None:
    subjects = [Subject(str(v), f"v{v}") for v in range(10, 0, -1)]
    evaluated = {s.key: [ref(f"x{s.key}", "x", 1)] for s in subjects}
    evaluated |= {s.key: [*evaluated[s.key], ref(f"y{s.key}", "y", 1)] for s in subjects[:2]}
    found = by_dataset(subjects, evaluated, limit=8)
    assert [c.dataset for c in found.datasets] == ["x", "y"]
    x = found.datasets[0]
    assert x.evaluation_ids == [f"x{v}" for v in range(10, 2, -1)]  # the first eight
    assert [p.subject.label for p in x.left_out] == ["v2", "v1"]
    assert x.missing == []
    assert found.datasets[1].missing == subjects[2:]


def test_one_evaluation_is_never_compared_with_itself() -> None:
    shared = ref("run-eval", "d", 1)  # two versions made by one run share its evaluation
    found = by_dataset([A, B], {"a": [shared], "b": [shared]}, limit=8)
    assert found.datasets == []
    assert found.unevaluated == []


# --- through the app
def evaluate(api: httpx.Client, target: str, dataset: str) -> str:
    resp = api.post(f"{API}/{target}/evaluations", json={**SCORES, "dataset": dataset})
    assert resp.status_code == 201, resp.text
    return str(resp.json()["id"])


def register(api: httpx.Client, run_id: str, model: str, **body: Any) -> int:
    resp = api.post(f"{API}/runs/{run_id}/model-versions", json={"model": model, **body})
    assert resp.status_code == 201, resp.text
    return int(resp.json()["version"])


def version_path(model: str, version: int) -> str:
    return f"models/{quote(model, safe='')}/versions/{version}"


def compare_links(page: str) -> list[list[str]]:
    """The evaluation ids of each link to the evaluation comparison, in page order."""
    hrefs = re.findall(r'href="(/evaluations/compare\?[^"]*)"', page)
    return [parse_qs(urlsplit(h.replace("&amp;", "&")).query)["e"] for h in hrefs]


def test_a_version_lists_its_own_evaluations_and_its_runs_not_another_versions(
    api: httpx.Client,
) -> None:
    run_id = new_run(api, "registry", name="trainer")
    on_run = evaluate(api, f"runs/{run_id}", "holdout")
    first, second = register(api, run_id, "m"), register(api, run_id, "m")
    own = evaluate(api, version_path("m", first), "next-month")
    of_second = evaluate(api, version_path("m", second), "next-month")
    page = get_page(api, f"/{version_path('m', first)}")
    listed = re.findall(r'<tr data-eval="(\w+)">.*?data-of="(\w+)"', page, re.S)
    assert listed == [(own, "version"), (on_run, "run")]  # newest first
    assert f'data-eval="{of_second}"' not in page  # listed: not another version's
    assert compare_links(page) == [[own, of_second]]  # compared: with v2 on next-month
    assert "its run <a" in page
    # Both versions have the run's evaluation: one evaluation is not compared with itself.
    model_page = get_page(api, "/models/m")
    assert compare_links(model_page) == [[of_second, own]]
    assert "No evaluation" not in model_page


def test_a_version_is_set_against_the_nearest_earlier_version_else_the_nearest_later(
    api: httpx.Client,
) -> None:
    ids = {}
    for n in range(1, 11):
        run_id = new_run(api, "registry", name=f"r{n}")
        version = register(api, run_id, "ten")
        ids[version] = evaluate(api, f"runs/{run_id}", "d")
    newest_first = [ids[v] for v in range(10, 0, -1)]
    model_page = get_page(api, "/models/ten")
    assert compare_links(model_page) == [newest_first[:8]]
    assert "v2, v1" in model_page  # left out of the link, and said so
    middle = get_page(api, f"/{version_path('ten', 5)}")
    assert compare_links(middle) == [
        [ids[5], ids[4]],  # with the previous version
        [ids[5], *(ids[v] for v in (10, 9, 8, 7, 6, 4, 3))],  # with the 7 newest others
    ]
    assert "with the 7 newest other versions" in middle
    oldest = get_page(api, f"/{version_path('ten', 1)}")
    assert compare_links(oldest)[0] == [ids[1], ids[2]]  # none earlier: the next one


def test_a_run_comparison_offers_each_shared_dataset(api: httpx.Client) -> None:
    runs = [new_run(api, "cmp", name=n) for n in ("base", "other", HOSTILE)]
    on_d = [evaluate(api, f"runs/{r}", HOSTILE) for r in runs[:2]]
    evaluate(api, f"runs/{runs[0]}", "only-base")
    page = get_page(api, "/compare?" + "&".join(f"run={r}" for r in runs))
    assert compare_links(page) == [on_d]
    assert "No evaluation on a named dataset" not in page
    assert f"{HOSTILE} has no evaluation" not in page  # escaped, never raw
    assert "&lt;script&gt;alert(1)&lt;/script&gt; has no evaluation on a named dataset" in page
    nothing = get_page(api, f"/compare?run={runs[2]}&run={new_run(api, 'cmp')}")
    assert compare_links(nothing) == []
    assert "None of these runs has an evaluation on a named dataset" in nothing


@contextmanager
def counting(app: FastAPI) -> Iterator[list[str]]:
    statements: list[str] = []
    engine = app.state.store.engine

    def count(*args: Any) -> None:
        statements.append(args[2])

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", count)


def page_statements(statements: list[str]) -> list[str]:
    """The statements of the page itself: not the access check's look, at most once a second,
    at whether any user exists yet (and the transaction it opens)."""
    kept: list[str] = []
    for statement in statements:
        if "FROM account" in statement:
            if kept and kept[-1].strip().upper() == "BEGIN":
                kept.pop()
            continue
        kept.append(statement)
    return kept


def test_the_pages_read_a_fixed_number_of_queries(api: httpx.Client, app: FastAPI) -> None:
    """Two versions or six, two runs or six: the same number of queries per page."""
    pages: dict[str, list[int]] = {}
    for model, n in (("small", 2), ("large", 6)):
        runs = []
        for k in range(n):
            run_id = new_run(api, model, name=f"{model}-{k}")
            api.put(f"{API}/runs/{run_id}/artifacts/model.pkl", content=b"w").raise_for_status()
            evaluate(api, f"runs/{run_id}", "d")
            for _ in range(2):  # a run may register several versions
                version = register(api, run_id, model, source="model.pkl")
                evaluate(api, version_path(model, version), "e")
            runs.append(run_id)
        for name, path in (
            ("model", f"/models/{model}"),
            ("version", f"/{version_path(model, 2)}"),
            ("run", f"/runs/{runs[0]}"),
            ("compare", "/compare?" + "&".join(f"run={r}" for r in runs)),
        ):
            with counting(app) as statements:
                get_page(api, path)
            pages.setdefault(name, []).append(len(page_statements(statements)))
    assert all(small == large for small, large in pages.values()), pages


def test_a_version_names_the_artifact_it_is(api: httpx.Client) -> None:
    run_id = new_run(api, "registry", name="exporter")
    assert_error(
        api.post(f"{API}/runs/{run_id}/model-versions", json={"model": "m", "source": "nope.pkl"}),
        404,
    )
    assert api.get(f"{API}/models/m/versions").status_code == 404  # nothing was registered
    path = f"out/{HOSTILE}.pkl"
    api.put(f"{API}/runs/{run_id}/artifacts/{quote(path)}", content=b"w").raise_for_status()
    api.put(f"{API}/runs/{run_id}/artifacts/other.bin", content=b"x").raise_for_status()
    version = api.post(f"{API}/runs/{run_id}/model-versions", json={"model": "m", "source": path})
    assert version.status_code == 201, version.text
    assert version.json()["source"] == path
    assert api.get(f"{API}/models/m/versions/1").json()["source"] == path
    urn = version.json()["urn"]
    graph = api.get(f"{API}/lineage", params={"urn": urn, "upstream": 1, "downstream": 0}).json()
    assert {(e["upstream"], e["type"], e["downstream"]) for e in graph["edges"]} >= {
        (artifact_urn(run_id, path), "DerivedFrom", urn)
    }
    run_page = get_page(api, f"/runs/{run_id}")
    rows = re.findall(r'<tr data-artifact="([^"]*)">(.*?)</tr>', run_page, re.S)
    badged = [unquote(p) for p, row in rows if "version-badge" in row]
    assert badged == ["out/&lt;script&gt;alert(1)&lt;/script&gt;.pkl"]
    assert 'href="/models/m/versions/1"' in run_page
    assert HOSTILE not in run_page
