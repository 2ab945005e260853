"""Models, their versions, and each version's evaluations."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import HTMLResponse

from modelyard.api.deps import StoreDep
from modelyard.metadata.store import Store
from modelyard.schemas import Serial
from modelyard.services import evaluations, headlines, models
from modelyard.web.pages.evaluations import KEY_METRICS
from modelyard.web.templating import render

router = APIRouter()


@router.get("/models", response_class=HTMLResponse)
def model_list(request: Request, store: StoreDep) -> HTMLResponse:
    context = {
        "nav": "models",
        "models": models.list_models(store),
        "headline_how": "Over the runs that made each model's versions. " + headlines.EXPLANATION,
    }
    return render(request, "models.html", context)


def version_context(store: Store, model: str, version: int) -> dict[str, Any]:
    return {
        "nav": "models",
        "model_version": models.get_version(store, model=model, version=version),
        "evaluations": evaluations.list_version_evaluations(store, model=model, version=version),
        "key_metrics": KEY_METRICS,
    }


@router.get("/models/{model:path}/versions/{version}", response_class=HTMLResponse)
def version_page(request: Request, model: str, version: Serial, store: StoreDep) -> HTMLResponse:
    """A model version: the run that made it and its evaluations."""
    return render(request, "model_version.html", version_context(store, model, version))


@router.get("/models/{model:path}", response_class=HTMLResponse)
def model_page(request: Request, model: str, store: StoreDep) -> HTMLResponse:
    versions = models.list_versions(store, model=model)
    context = {"nav": "models", "model": model, "versions": versions}
    return render(request, "model.html", context)
