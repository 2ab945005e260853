"""The life of a model version, as a table of legal moves.

    draft ─request_review→ in_review ─publish→ publishable ─deploy→ deployed
      ↑                      │  │                 ↑  │                 │
      └──────withdraw────────┘  └reject→ rejected │  └deprecate→ deprecated ─retire→ retired
      └──────────revise────────────────────────┘  └──undeploy─┘ (de-ramped to zero)
                                     deployed ─deprecate→ deprecated

Every move is a versioned write of the version's ``model_version_lifecycle`` aspect (so its
history, with actor, time and comment, is the transition log); a move the table does not
allow from the current state is a 409 that changes nothing. Who may make which move, and
what must hold before ``publish`` (approvals, gates), is decided by the callers that build on
this table (the review workflow), never here.
"""

from __future__ import annotations

from dataclasses import dataclass

from modelyard.errors import InvalidInput, InvalidState, NotFound
from modelyard.metadata import tables as t
from modelyard.metadata.aspects import LifecycleAction, LifecycleState, ModelVersionLifecycle
from modelyard.metadata.store import Store, Tx, aspect_history, get_aspect
from modelyard.metadata.urn import model_version_urn

State = LifecycleState
Action = LifecycleAction
INITIAL: State = "draft"
MAX_COMMENT = 10_000

# action -> (the states it may start from, the state it leads to)
MOVES: dict[Action, tuple[frozenset[State], State]] = {
    "request_review": (frozenset({"draft"}), "in_review"),
    "withdraw": (frozenset({"in_review"}), "draft"),
    "reject": (frozenset({"in_review"}), "rejected"),
    "revise": (frozenset({"rejected"}), "draft"),
    "publish": (frozenset({"in_review"}), "publishable"),
    "deploy": (frozenset({"publishable"}), "deployed"),
    "undeploy": (frozenset({"deployed"}), "publishable"),
    "deprecate": (frozenset({"publishable", "deployed"}), "deprecated"),
    "retire": (frozenset({"deprecated"}), "retired"),
}
# Moves that must say why.
NEEDS_REASON = frozenset({"reject", "deprecate"})


@dataclass(frozen=True, slots=True)
class Transition:
    """One move in a version's life, as its aspect history records it."""

    number: int  # 1 for the first move
    state: State
    action: Action | None
    comment: str
    successor: int | None
    at: int
    by: str


def allowed(state: State) -> list[Action]:
    """The moves the table allows from ``state``, in the table's order."""
    return [action for action, (sources, _) in MOVES.items() if state in sources]


def _version_exists(tx: Tx, model: str, version: int) -> None:
    mv = t.model_version
    tx.lock(mv, mv.c.model == model, mv.c.version == version)
    found = tx.conn.execute(mv.select().where(mv.c.model == model, mv.c.version == version)).first()
    if found is None:
        raise NotFound(f"model {model!r} has no version {version}")


def move(
    store: Store,
    *,
    model: str,
    version: int,
    action: Action,
    actor: str,
    comment: str = "",
    successor: int | None = None,
) -> Transition:
    """Make ``action`` on a version, in one transaction: 409 (nothing written) when its state
    does not allow it; 400 when a reject or deprecation gives no reason, or a successor is
    named for anything but a deprecation (it must be another version of the same model)."""
    if action not in MOVES:
        raise InvalidInput(f"{action!r} is not a move; the moves are {', '.join(MOVES)}")
    if len(comment) > MAX_COMMENT:
        raise InvalidInput(f"a comment has at most {MAX_COMMENT:,} characters")
    if action in NEEDS_REASON and not comment.strip():
        raise InvalidInput(f"to {action.replace('_', ' ')} a version, say why (a comment)")
    if successor is not None and (action != "deprecate" or successor == version):
        raise InvalidInput("only a deprecation names a successor, and it is another version")
    sources, target = MOVES[action]
    urn = model_version_urn(model, version)

    def work(tx: Tx) -> Transition:
        _version_exists(tx, model, version)
        if successor is not None:
            _version_exists(tx, model, successor)
        current = get_aspect(tx.conn, urn, ModelVersionLifecycle)
        state: State = current.state if current is not None else INITIAL
        if state not in sources:
            can = ", ".join(allowed(state)) or "nothing more"
            raise InvalidState(
                f"version {version} of {model!r} is {state.replace('_', ' ')}; it cannot "
                f"{action.replace('_', ' ')} (from {state} it can: {can})"
            )
        value = ModelVersionLifecycle(
            state=target, action=action, comment=comment, successor=successor, at=tx.now
        )
        number = tx.put_aspect(urn, value)
        assert number is not None  # `at` differs from any earlier write
        return Transition(number, target, action, comment, successor, tx.now, str(tx.actor))

    return store.transact(work, actor=actor)


def state_of(store: Store, *, model: str, version: int) -> State:
    with store.read() as conn:
        found = get_aspect(conn, model_version_urn(model, version), ModelVersionLifecycle)
    return found.state if found is not None else INITIAL


def history(store: Store, *, model: str, version: int) -> list[Transition]:
    """Every move of a version, oldest first."""
    with store.read() as conn:
        rows = aspect_history(conn, model_version_urn(model, version), "model_version_lifecycle")
    moves = []
    for row in rows:
        value = ModelVersionLifecycle.model_validate_json(row["payload"])
        moves.append(
            Transition(
                number=row["version"],
                state=value.state,
                action=value.action,
                comment=value.comment,
                successor=value.successor,
                at=value.at,
                by=row["created_by"],
            )
        )
    return moves
