"""A model version's life: every move the lifecycle allows works, every other is a 409 that
changes nothing, and each move is a versioned write with actor, time and comment."""

from __future__ import annotations

import threading
from collections import deque

import httpx
import pytest
from fastapi import FastAPI

from modelyard.errors import InvalidInput, InvalidState, NotFound
from modelyard.metadata.store import Store
from modelyard.services.registry import lifecycle
from tests.helpers import API, new_run

# The lifecycle as the issue states it, written out apart from the code's table:
# draft → in_review → publishable → deployed → deprecated → retired; rejected back to draft;
# a deployed version de-ramped to zero is publishable again.
SPEC = {
    ("draft", "request_review"): "in_review",
    ("in_review", "withdraw"): "draft",
    ("in_review", "reject"): "rejected",
    ("rejected", "revise"): "draft",
    ("in_review", "publish"): "publishable",
    ("publishable", "deploy"): "deployed",
    ("deployed", "undeploy"): "publishable",
    ("publishable", "deprecate"): "deprecated",
    ("deployed", "deprecate"): "deprecated",
    ("deprecated", "retire"): "retired",
}
STATES = ("draft", "in_review", "rejected", "publishable", "deployed", "deprecated", "retired")
ACTIONS = sorted({action for _, action in SPEC})
REASON = {"reject": "recall below the bar", "deprecate": "superseded"}


def path_to(state: str) -> list[str]:
    """The shortest run of moves from draft to ``state`` in SPEC."""
    seen = {"draft": []}
    queue = deque(["draft"])
    while queue:
        here = queue.popleft()
        for (source, action), target in SPEC.items():
            if source == here and target not in seen:
                seen[target] = [*seen[here], action]
                queue.append(target)
    return seen[state]


def register(api: httpx.Client, model: str = "churn") -> int:
    run_id = new_run(api, "registry")
    made = api.post(f"{API}/runs/{run_id}/model-versions", json={"model": model})
    assert made.status_code == 201, made.text
    return int(made.json()["version"])


def drive(store: Store, version: int, actions: list[str], model: str = "churn") -> None:
    for action in actions:
        lifecycle.move(
            store, model=model, version=version, action=action,  # type: ignore[arg-type]
            actor="ada", comment=REASON.get(action, ""),
        )  # fmt: skip


def test_every_state_allows_exactly_the_moves_of_the_lifecycle(
    api: httpx.Client, app: FastAPI
) -> None:
    store: Store = app.state.store
    for state in STATES:
        for action in ACTIONS:
            version = register(api)
            drive(store, version, path_to(state))
            assert lifecycle.state_of(store, model="churn", version=version) == state
            before = lifecycle.history(store, model="churn", version=version)
            if (state, action) in SPEC:
                drive(store, version, [action])
                after = lifecycle.history(store, model="churn", version=version)
                assert after[-1].state == SPEC[state, action], (state, action)
                assert (after[-1].action, after[-1].by) == (action, "ada")
                assert len(after) == len(before) + 1
            else:
                with pytest.raises(InvalidState) as refused:
                    drive(store, version, [action])
                assert refused.value.status == 409
                assert state.replace("_", " ") in refused.value.message
                assert lifecycle.history(store, model="churn", version=version) == before


def test_the_history_is_the_transition_log(api: httpx.Client, app: FastAPI) -> None:
    store: Store = app.state.store
    version = register(api)
    drive(store, version, ["request_review", "reject", "revise", "request_review", "publish"])
    moves = lifecycle.history(store, model="churn", version=version)
    assert [m.state for m in moves] == [
        "in_review", "rejected", "draft", "in_review", "publishable"
    ]  # fmt: skip
    assert [m.number for m in moves] == [1, 2, 3, 4, 5]
    assert moves[1].comment == "recall below the bar"
    assert all(m.at > 0 for m in moves)
    # The change log (the activity feed) has each move with its actor.
    changes = api.get(
        f"{API}/changes", params={"urn": f"urn:modelyard:model_version:churn:{version}"}
    )
    lifecycle_changes = [c for c in changes.json() if c["aspect"] == "model_version_lifecycle"]
    assert [c["actor"] for c in lifecycle_changes] == ["ada"] * 5


def test_moves_that_must_say_why_or_name_a_successor_are_checked(
    api: httpx.Client, app: FastAPI
) -> None:
    store: Store = app.state.store
    old, new = register(api), register(api)
    drive(store, old, ["request_review"])
    with pytest.raises(InvalidInput, match="say why"):
        lifecycle.move(store, model="churn", version=old, action="reject", actor="ada")
    drive(store, old, ["publish"])
    with pytest.raises(InvalidInput, match="successor"):
        lifecycle.move(
            store, model="churn", version=old, action="deploy", actor="ada", successor=new
        )
    with pytest.raises(NotFound):
        lifecycle.move(
            store, model="churn", version=old, action="deprecate", actor="ada",
            comment="replaced", successor=99,
        )  # fmt: skip
    assert lifecycle.state_of(store, model="churn", version=old) == "publishable"
    lifecycle.move(
        store, model="churn", version=old, action="deprecate", actor="ada",
        comment="replaced", successor=new,
    )  # fmt: skip
    assert lifecycle.history(store, model="churn", version=old)[-1].successor == new
    with pytest.raises(NotFound):
        lifecycle.move(store, model="churn", version=99, action="request_review", actor="ada")


def test_two_people_making_the_same_move_at_once_make_it_once(
    api: httpx.Client, app: FastAPI
) -> None:
    store: Store = app.state.store
    version = register(api)
    results: list[str] = []
    start = threading.Barrier(4)

    def request() -> None:
        start.wait()
        try:
            lifecycle.move(
                store, model="churn", version=version, action="request_review", actor="ada"
            )
            results.append("moved")
        except InvalidState:
            results.append("refused")

    threads = [threading.Thread(target=request) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == ["moved", "refused", "refused", "refused"]
    assert len(lifecycle.history(store, model="churn", version=version)) == 1
