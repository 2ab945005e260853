from __future__ import annotations

from fastapi import APIRouter

from modelyard.api.deps import Actor, Readable, StoreDep
from modelyard.authz import (
    Level,
    allow,
    project_path,
)
from modelyard.schemas import ProjectCreate, ProjectPublic, ProjectUpdate
from modelyard.services import projects

router = APIRouter(prefix="/projects", tags=["projects"])


@router.get("")
@allow(Level.SIGNED_IN)
def list_projects(store: StoreDep, readable: Readable) -> list[ProjectPublic]:
    return projects.list_projects(store, readable=readable)


@router.post("", status_code=201)
@allow(Level.CREATE)
def create_project(body: ProjectCreate, store: StoreDep, actor: Actor) -> ProjectPublic:
    return projects.create_project(store, body=body, actor=actor)


@router.get("/{ref}")
@allow(Level.READ, on=project_path())
def get_project(ref: str, store: StoreDep) -> ProjectPublic:
    """A project by name or numeric id."""
    return projects.get_project(store, ref=ref)


@router.patch("/{ref}")
@allow(Level.OWN, on=project_path())
def update_project(ref: str, body: ProjectUpdate, store: StoreDep, actor: Actor) -> ProjectPublic:
    return projects.update_project(store, ref=ref, body=body, actor=actor)
