"""Page routers, aggregated in one place."""

from fastapi import APIRouter

from modelyard.web.pages import activity, charts, home, lineage, projects, runs, search

router = APIRouter(include_in_schema=False)
for module in (home, projects, runs, charts, lineage, activity, search):
    router.include_router(module.router)
