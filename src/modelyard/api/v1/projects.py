from __future__ import annotations

from fastapi import APIRouter

from modelyard.api.deps import Actor, StoreDep
from modelyard.schemas import ProjectCreate, ProjectPublic, ProjectUpdate
from modelyard.services import projects

router = APIRouter(prefix="/projects", tags=["projects"])


@router.get("")
def list_projects(store: StoreDep) -> list[ProjectPublic]:
    return projects.list_projects(store)


@router.post("", status_code=201)
def create_project(body: ProjectCreate, store: StoreDep, actor: Actor) -> ProjectPublic:
    return projects.create_project(store, body=body, actor=actor)


@router.get("/{ref}")
def get_project(ref: str, store: StoreDep) -> ProjectPublic:
    """A project by name or numeric id."""
    return projects.get_project(store, ref=ref)


@router.patch("/{ref}")
def update_project(ref: str, body: ProjectUpdate, store: StoreDep, actor: Actor) -> ProjectPublic:
    return projects.update_project(store, ref=ref, body=body, actor=actor)
