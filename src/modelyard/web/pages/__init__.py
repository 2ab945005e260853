"""Page routers, aggregated in one place."""

from fastapi import APIRouter

from modelyard.web.pages import (
    access,
    activity,
    admin,
    charts,
    docs,
    evaluation_upload,
    evaluations,
    home,
    lineage,
    models,
    projects,
    runs,
    search,
)

router = APIRouter(include_in_schema=False)
for module in (
    access, home, projects, runs, evaluations, evaluation_upload, models, lineage, activity,
    search, docs, admin,
):  # fmt: skip
    router.include_router(module.router)

# Chart data is JSON, so its errors are the API's shape: a family of its own.
chart_router = APIRouter(include_in_schema=False)
chart_router.include_router(charts.router)
chart_router.include_router(evaluations.chart_router)
