from __future__ import annotations

from fastapi import APIRouter

from modelyard.api.deps import Actor, Readable, StoreDep
from modelyard.authz import (
    Level,
    allow,
    run_path,
    version_path,
)
from modelyard.schemas import ModelPublic, ModelVersionCreate, ModelVersionPublic, Version
from modelyard.services import models

router = APIRouter(tags=["models"])


@router.post("/runs/{run_id}/model-versions", status_code=201)
@allow(Level.WRITE, on=run_path())
def register_version(
    run_id: str, body: ModelVersionCreate, store: StoreDep, actor: Actor
) -> ModelVersionPublic:
    """Register the run's model as the next version of ``model`` (created on first use)."""
    return models.register_version(store, run_id=run_id, body=body, actor=actor)


@router.get("/models")
@allow(Level.SIGNED_IN)
def list_models(store: StoreDep, readable: Readable) -> list[ModelPublic]:
    return models.list_models(store, readable=readable)


@router.get("/models/{model:path}/versions/{version}")
@allow(Level.READ, on=version_path())
def get_version(model: str, version: Version, store: StoreDep) -> ModelVersionPublic:
    return models.get_version(store, model=model, version=version)


@router.get("/models/{model:path}/versions")
@allow(Level.SIGNED_IN)
def list_versions(model: str, store: StoreDep, readable: Readable) -> list[ModelVersionPublic]:
    return models.list_versions(store, model=model, readable=readable)
