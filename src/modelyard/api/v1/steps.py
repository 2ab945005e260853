from __future__ import annotations

from fastapi import APIRouter

from modelyard.api.deps import Actor, StoreDep
from modelyard.authz import (
    Level,
    allow,
    run_path,
)
from modelyard.schemas import StepPublic, StepUpsert
from modelyard.services import steps

router = APIRouter(prefix="/runs/{run_id}/steps", tags=["steps"])


@router.get("")
@allow(Level.READ, on=run_path())
def list_steps(run_id: str, store: StoreDep) -> list[StepPublic]:
    """The run's pipeline: steps in creation order with their dependencies and artifacts."""
    return steps.list_steps(store, run_id=run_id)


@router.get("/{name:path}")
@allow(Level.READ, on=run_path())
def get_step(run_id: str, name: str, store: StoreDep) -> StepPublic:
    return steps.get_step(store, run_id=run_id, name=name)


@router.put("/{name:path}")
@allow(Level.WRITE, on=run_path())
def upsert_step(
    run_id: str, name: str, body: StepUpsert, store: StoreDep, actor: Actor
) -> StepPublic:
    """Create a step (with ``depends_on``) or move it forward: status, progress, message."""
    return steps.upsert_step(store, run_id=run_id, name=name, body=body, actor=actor)
