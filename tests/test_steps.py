"""Pipeline steps of a run over the API: the DAG, status transitions, progress, and how
ending a run closes its steps."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from modelyard.metadata.urn import step_urn
from tests.helpers import assert_error, new_run

API = "/api/v1"


def step_path(run_id: str, name: str) -> str:
    return f"{API}/runs/{run_id}/steps/{quote(name, safe='')}"


def put(api: httpx.Client, run_id: str, name: str, **body: Any) -> httpx.Response:
    return api.put(step_path(run_id, name), json=body)


def ok(api: httpx.Client, run_id: str, name: str, **body: Any) -> dict[str, Any]:
    resp = put(api, run_id, name, **body)
    assert resp.status_code == 200, resp.text
    data: dict[str, Any] = resp.json()
    return data


def steps(api: httpx.Client, run_id: str) -> list[dict[str, Any]]:
    resp = api.get(f"{API}/runs/{run_id}/steps")
    assert resp.status_code == 200, resp.text
    data: list[dict[str, Any]] = resp.json()
    return data


def get(api: httpx.Client, run_id: str, name: str) -> dict[str, Any]:
    resp = api.get(step_path(run_id, name))
    assert resp.status_code == 200, resp.text
    data: dict[str, Any] = resp.json()
    return data


def end_run(api: httpx.Client, run_id: str, status: str) -> None:
    resp = api.patch(f"{API}/runs/{run_id}", json={"status": status})
    assert resp.status_code == 200, resp.text


def state_aspect(api: httpx.Client, run_id: str, name: str) -> dict[str, Any]:
    urn = quote(step_urn(run_id, name), safe="")
    resp = api.get(f"{API}/entities/{urn}/aspects")
    assert resp.status_code == 200, resp.text
    data: dict[str, Any] = resp.json()["step_state"]
    return data


# --- the DAG


def test_steps_form_a_dag_listed_in_creation_order(api: httpx.Client) -> None:
    rid = new_run(api, "pipelines")
    ok(api, rid, "load")
    ok(api, rid, "clean", depends_on=["load"])
    ok(api, rid, "featurize", depends_on=["clean"])
    ok(api, rid, "lookup")
    ok(api, rid, "train", depends_on=["featurize", "lookup", "featurize"])
    ok(api, rid, "evaluate", depends_on=["train", "load"])

    listed = steps(api, rid)
    assert [(s["name"], s["position"], s["depends_on"]) for s in listed] == [
        ("load", 0, []),
        ("clean", 1, ["load"]),
        ("featurize", 2, ["clean"]),
        ("lookup", 3, []),
        ("train", 4, ["featurize", "lookup"]),  # duplicates dropped, order kept
        ("evaluate", 5, ["train", "load"]),
    ]
    for s in listed:
        assert s["run_id"] == rid
        assert s["urn"] == step_urn(rid, s["name"])
        assert s["status"] == "pending"
        assert s["progress"] is None
        assert s["start_time"] is None
        assert s["end_time"] is None
        assert s["artifacts"] == []
    assert get(api, rid, "train") == listed[4]


def test_steps_of_different_runs_are_separate(api: httpx.Client) -> None:
    a, b = new_run(api, "pipelines"), new_run(api, "pipelines")
    ok(api, a, "load")
    assert steps(api, b) == []
    assert_error(put(api, b, "train", depends_on=["load"]), 409, "INVALID_STATE")
    ok(api, b, "load", status="running")
    assert get(api, a, "load")["status"] == "pending"
    assert get(api, b, "load")["position"] == 0


def test_depends_on_an_unknown_step_is_refused_and_creates_nothing(api: httpx.Client) -> None:
    rid = new_run(api, "pipelines")
    ok(api, rid, "load")
    for deps in (["featurize"], ["load", "featurize"], ["train"]):
        # Well formed, but the run has no such step yet: a conflict with its state.
        resp = put(api, rid, "train", depends_on=deps, status="running")
        assert_error(resp, 409, "INVALID_STATE")
        assert "depends on" in resp.json()["error"]["message"]
    assert [s["name"] for s in steps(api, rid)] == ["load"]
    assert api.get(step_path(rid, "train")).status_code == 404
    # Nothing of the refused step reached the backbone either.
    urn = quote(step_urn(rid, "train"), safe="")
    assert api.get(f"{API}/entities/{urn}/aspects").status_code == 404
    assert api.get(f"{API}/changes", params={"urn": step_urn(rid, "train")}).json() == []
    # The next step created still takes the next position.
    assert ok(api, rid, "train", depends_on=["load"])["position"] == 1


def test_dependencies_cannot_change_once_created(api: httpx.Client) -> None:
    rid = new_run(api, "pipelines")
    ok(api, rid, "a")
    ok(api, rid, "b")
    ok(api, rid, "c", depends_on=["a"])
    assert_error(put(api, rid, "c", depends_on=["b"]), 409, "INVALID_STATE")
    assert_error(put(api, rid, "c", depends_on=[]), 409, "INVALID_STATE")
    # Repeating the same dependencies (an idempotent retry) is fine.
    assert ok(api, rid, "c", depends_on=["a", "a"], status="running")["status"] == "running"
    assert get(api, rid, "c")["depends_on"] == ["a"]


def test_step_aspects_record_the_dag(api: httpx.Client) -> None:
    rid = new_run(api, "pipelines")
    ok(api, rid, "a")
    ok(api, rid, "b", depends_on=["a"])
    urn = quote(step_urn(rid, "b"), safe="")
    aspects = api.get(f"{API}/entities/{urn}/aspects").json()
    assert aspects["step_properties"] == {"run_id": rid, "name": "b", "depends_on": ["a"]}
    assert aspects["step_state"]["status"] == "pending"


# --- status and progress


def test_a_step_runs_then_finishes(api: httpx.Client) -> None:
    rid = new_run(api, "pipelines")
    created = ok(api, rid, "train")
    assert (created["status"], created["start_time"], created["end_time"]) == (
        "pending",
        None,
        None,
    )

    running = ok(api, rid, "train", status="running")
    assert running["status"] == "running"
    assert running["start_time"] is not None
    assert running["end_time"] is None

    half = ok(api, rid, "train", progress=0.5, message="epoch 5 of 10")
    assert (half["progress"], half["message"]) == (0.5, "epoch 5 of 10")
    assert half["start_time"] == running["start_time"]

    done = ok(api, rid, "train", status="finished")
    assert done["status"] == "finished"
    assert done["progress"] == 1.0
    assert done["message"] == "epoch 5 of 10"
    assert done["start_time"] == running["start_time"]
    assert done["end_time"] is not None
    assert done["end_time"] >= done["start_time"]
    assert done["error"] is None
    assert get(api, rid, "train") == done

    state = state_aspect(api, rid, "train")
    assert (state["status"], state["progress"], state["end_time"]) == (
        "finished",
        1.0,
        done["end_time"],
    )
    urn = quote(step_urn(rid, "train"), safe="")
    history = api.get(f"{API}/entities/{urn}/aspects/step_state/versions").json()
    assert [v["value"]["status"] for v in history] == ["pending", "running", "running", "finished"]


def test_a_step_created_running_or_finished(api: httpx.Client) -> None:
    rid = new_run(api, "pipelines")
    running = ok(api, rid, "a", status="running", progress=0.25, message="go")
    assert (running["status"], running["progress"], running["message"]) == ("running", 0.25, "go")
    assert running["start_time"] is not None
    assert running["end_time"] is None

    finished = ok(api, rid, "b", status="finished")
    assert finished["status"] == "finished"
    assert finished["progress"] == 1.0
    assert finished["start_time"] is not None
    assert finished["end_time"] is not None
    assert state_aspect(api, rid, "b")["progress"] == 1.0


def test_a_step_fails_with_an_error(api: httpx.Client) -> None:
    rid = new_run(api, "pipelines")
    ok(api, rid, "train", status="running", progress=0.3)
    failed = ok(api, rid, "train", status="failed", error="CUDA out of memory")
    assert failed["status"] == "failed"
    assert failed["error"] == "CUDA out of memory"
    assert failed["progress"] == 0.3
    assert failed["end_time"] is not None
    # A pending step may fail directly too.
    ok(api, rid, "eval")
    assert ok(api, rid, "eval", status="failed")["end_time"] is not None


def test_a_pending_step_may_be_skipped(api: httpx.Client) -> None:
    rid = new_run(api, "pipelines")
    ok(api, rid, "optional")
    skipped = ok(api, rid, "optional", status="skipped")
    assert skipped["status"] == "skipped"
    assert skipped["end_time"] is not None
    # It never ran: no start time, as when a run's end skips its pending steps.
    assert skipped["start_time"] is None
    assert ok(api, rid, "never", status="skipped")["start_time"] is None


@pytest.mark.parametrize(
    ("path", "refused"),
    [
        (["running", "finished"], ["running", "pending", "failed", "skipped"]),
        (["running", "failed"], ["running", "finished", "pending", "skipped"]),
        (["skipped"], ["running", "finished", "failed", "pending"]),
        (["running"], ["pending", "skipped"]),
        (["finished"], ["running", "failed"]),
    ],
)
def test_refused_status_transitions(api: httpx.Client, path: list[str], refused: list[str]) -> None:
    rid = new_run(api, "pipelines")
    ok(api, rid, "s")
    for status in path:
        ok(api, rid, "s", status=status)
    before = get(api, rid, "s")
    for status in refused:
        resp = put(api, rid, "s", status=status)
        assert_error(resp, 409, "INVALID_STATE")
        assert before["status"] in resp.json()["error"]["message"]
    assert get(api, rid, "s") == before
    assert state_aspect(api, rid, "s")["status"] == before["status"]


def test_repeating_a_terminal_status_is_an_idempotent_no_op(api: httpx.Client) -> None:
    rid = new_run(api, "pipelines")
    ok(api, rid, "s", status="running")
    done = ok(api, rid, "s", status="finished")
    assert ok(api, rid, "s", status="finished") == done
    assert ok(api, rid, "s", status="finished", progress=1.0) == done
    urn = quote(step_urn(rid, "s"), safe="")
    versions = api.get(f"{API}/entities/{urn}/aspects/step_state/versions").json()
    assert [v["value"]["status"] for v in versions] == ["running", "finished"]


@pytest.mark.parametrize("progress", [0.0, 0.001, 0.999, 1.0])
def test_progress_bounds_are_inclusive(api: httpx.Client, progress: float) -> None:
    rid = new_run(api, "pipelines")
    ok(api, rid, "s", status="running")
    assert ok(api, rid, "s", progress=progress)["progress"] == progress


@pytest.mark.parametrize("progress", [1.5, -0.1, 1.0000001, "half", None])
def test_progress_out_of_range_is_a_422(api: httpx.Client, progress: Any) -> None:
    rid = new_run(api, "pipelines")
    ok(api, rid, "s", status="running", progress=0.2)
    body: dict[str, Any] = {"progress": progress}
    if progress is None:
        # NaN is not JSON, but Python's parser accepts it: it must still be refused.
        resp = api.put(
            step_path(rid, "s"),
            content=b'{"progress": NaN}',
            headers={"content-type": "application/json"},
        )
    else:
        resp = api.put(step_path(rid, "s"), json=body)
    assert_error(resp, 422, "INVALID_INPUT")
    assert get(api, rid, "s")["progress"] == 0.2


def test_progress_of_an_unknown_new_step_out_of_range_creates_nothing(api: httpx.Client) -> None:
    rid = new_run(api, "pipelines")
    assert put(api, rid, "s", progress=1.5).status_code == 422
    assert steps(api, rid) == []


@pytest.mark.parametrize(
    "body",
    [
        {"status": "done"},
        {"depends_on": "a"},
        {"unknown_field": 1},
        {"message": "x" * 10_001},
        {"depends_on": ["x" * 257]},
    ],
)
def test_malformed_step_bodies_are_a_422(api: httpx.Client, body: dict[str, Any]) -> None:
    rid = new_run(api, "pipelines")
    assert_error(api.put(step_path(rid, "s"), json=body), 422, "INVALID_INPUT")
    assert steps(api, rid) == []


@pytest.mark.parametrize("terminal", ["finished", "failed", "skipped"])
def test_progress_of_a_terminal_step_is_final(api: httpx.Client, terminal: str) -> None:
    rid = new_run(api, "pipelines")
    ok(api, rid, "s", status="running" if terminal != "skipped" else "pending", progress=0.4)
    ok(api, rid, "s", status=terminal, message="closing")
    before = get(api, rid, "s")
    assert_error(put(api, rid, "s", progress=0.5), 409, "INVALID_STATE")
    assert_error(put(api, rid, "s", message="more work"), 409, "INVALID_STATE")
    assert_error(put(api, rid, "s", status=terminal, progress=0.9), 409, "INVALID_STATE")
    assert get(api, rid, "s") == before
    # Restating what is already there is accepted and changes nothing.
    assert ok(api, rid, "s", progress=before["progress"], message="closing") == before


def test_message_alone_updates_a_running_step(api: httpx.Client) -> None:
    rid = new_run(api, "pipelines")
    ok(api, rid, "s", status="running", progress=0.1, message="a")
    updated = ok(api, rid, "s", message="b")
    assert (updated["progress"], updated["message"]) == (0.1, "b")


# --- the run's end closes its steps


@pytest.mark.parametrize("run_status", ["finished", "failed", "killed"])
def test_ending_a_run_closes_its_open_steps(api: httpx.Client, run_status: str) -> None:
    rid = new_run(api, "pipelines")
    ok(api, rid, "done", status="running")
    done = ok(api, rid, "done", status="finished")
    broken = ok(api, rid, "broken", status="failed", error="bad input")
    ok(api, rid, "active", status="running", progress=0.4, message="busy")
    ok(api, rid, "waiting", depends_on=["active"])

    end_run(api, rid, run_status)
    by_name = {s["name"]: s for s in steps(api, rid)}

    active = by_name["active"]
    if run_status == "finished":
        assert (active["status"], active["error"]) == ("finished", None)
    else:
        assert active["status"] == "failed"
        assert active["error"] == f"the run was {run_status}"
    assert active["end_time"] is not None
    assert active["start_time"] is not None
    assert active["message"] == "busy"

    waiting = by_name["waiting"]
    assert waiting["status"] == "skipped"
    assert waiting["start_time"] is None
    assert waiting["end_time"] is not None

    # Steps that had already ended are left as they were.
    assert by_name["done"] == done
    assert by_name["broken"] == broken

    # The backbone agrees with the index.
    for name in ("active", "waiting"):
        state = state_aspect(api, rid, name)
        assert (state["status"], state["end_time"]) == (
            by_name[name]["status"],
            by_name[name]["end_time"],
        )


def test_a_step_finished_by_the_run_reports_full_progress(api: httpx.Client) -> None:
    rid = new_run(api, "pipelines")
    ok(api, rid, "active", status="running", progress=0.4)
    end_run(api, rid, "finished")
    assert get(api, rid, "active")["progress"] == 1.0
    assert state_aspect(api, rid, "active")["progress"] == 1.0


@pytest.mark.parametrize("run_status", ["finished", "failed", "killed"])
def test_steps_of_an_ended_run_cannot_change(api: httpx.Client, run_status: str) -> None:
    rid = new_run(api, "pipelines")
    ok(api, rid, "a", status="running")
    end_run(api, rid, run_status)
    before = steps(api, rid)
    assert_error(put(api, rid, "b"), 409, "INVALID_STATE")
    assert_error(put(api, rid, "a", progress=0.9), 409, "INVALID_STATE")
    assert_error(put(api, rid, "a", status=before[0]["status"]), 409, "INVALID_STATE")
    assert steps(api, rid) == before
    assert api.get(step_path(rid, "b")).status_code == 404


# --- names and lookups


def test_step_names_have_1_to_256_characters(api: httpx.Client) -> None:
    rid = new_run(api, "pipelines")
    longest = "s" * 256
    assert ok(api, rid, longest)["name"] == longest
    assert get(api, rid, longest)["name"] == longest
    resp = put(api, rid, "s" * 257)
    assert 400 <= resp.status_code < 500, resp.text
    assert api.get(step_path(rid, "s" * 257)).status_code == 404
    assert [s["name"] for s in steps(api, rid)] == [longest]


def test_a_long_non_ascii_step_name_is_accepted_or_refused_cleanly(api: httpx.Client) -> None:
    # 256 characters, but its URN (percent-encoded UTF-8) is far longer.
    rid = new_run(api, "pipelines")
    name = "日本" * 128
    resp = put(api, rid, name)
    assert resp.status_code in (200, 400), resp.text
    if resp.status_code == 200:
        assert get(api, rid, name)["name"] == name
    else:
        assert steps(api, rid) == []


def test_step_names_may_hold_any_character(api: httpx.Client) -> None:
    rid = new_run(api, "pipelines")
    names = ["train: stage 1", "ünïcødé ✓", "50% done", "a?b#c", "x:y:z"]
    for name in names:
        created = ok(api, rid, name)
        assert created["name"] == name
        assert created["urn"] == step_urn(rid, name)
        assert get(api, rid, name)["name"] == name
    ok(api, rid, "last", depends_on=names)
    assert get(api, rid, "last")["depends_on"] == names


def test_unknown_runs_and_steps_are_404(api: httpx.Client) -> None:
    rid = new_run(api, "pipelines")
    assert_error(api.get(step_path(rid, "nope")), 404, "NOT_FOUND")
    ghost = "0" * 32
    assert_error(api.get(f"{API}/runs/{ghost}/steps"), 404, "NOT_FOUND")
    assert_error(api.get(step_path(ghost, "s")), 404, "NOT_FOUND")
    assert_error(put(api, ghost, "s"), 404, "NOT_FOUND")


# --- concurrent writers


def test_steps_created_concurrently_get_distinct_positions(api: httpx.Client) -> None:
    rid = new_run(api, "pipelines")
    names = [f"shard-{i:02d}" for i in range(24)]
    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda n: put(api, rid, n, status="running").status_code, names))
    assert codes == [200] * len(names)
    listed = steps(api, rid)
    assert sorted(s["position"] for s in listed) == list(range(len(names)))
    assert sorted(s["name"] for s in listed) == names


def test_a_run_ending_while_steps_are_created_leaves_no_open_step(api: httpx.Client) -> None:
    for _ in range(3):
        rid = new_run(api, "pipelines")
        with ThreadPoolExecutor(8) as pool:
            created = [pool.submit(put, api, rid, f"s{i}", status="running") for i in range(8)]
            ended = pool.submit(end_run, api, rid, "finished")
            created += [pool.submit(put, api, rid, f"t{i}", status="running") for i in range(8)]
            ended.result()
            codes = {f.result().status_code for f in created}
        assert codes <= {200, 409}
        assert [s["name"] for s in steps(api, rid) if s["status"] in ("pending", "running")] == []


def test_step_names_may_hold_slashes(api: httpx.Client) -> None:
    run_id = new_run(api)
    name = "etl/2024-01/partition a"
    resp = api.put(f"{API}/runs/{run_id}/steps/{quote(name, safe='')}", json={"status": "running"})
    assert resp.status_code in (200, 201), resp.text
    got = api.get(f"{API}/runs/{run_id}/steps/{quote(name, safe='')}")
    assert got.status_code == 200
    assert got.json()["name"] == name


@pytest.mark.parametrize("progress", [False, True, "0.5"])
def test_a_progress_that_is_no_json_number_is_refused(api: httpx.Client, progress: object) -> None:
    rid = new_run(api, "pipelines")
    assert "progress" in assert_error(put(api, rid, "load", progress=progress), 422)
    assert steps(api, rid) == []
