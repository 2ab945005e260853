"""The JSON API, version 1: every router aggregated in one place."""

from fastapi import APIRouter

from modelyard.api.openapi import ERROR_RESPONSES
from modelyard.api.v1 import (
    access,
    artifacts,
    changes,
    entities,
    evaluations,
    lineage,
    models,
    projects,
    runs,
    steps,
    timeseries,
)

router = APIRouter(prefix="/api/v1", responses=ERROR_RESPONSES)
for module in (
    projects, runs, steps, artifacts, lineage, entities, changes, evaluations, models, timeseries,
    access,
):  # fmt: skip
    router.include_router(module.router)
