"""Models, their versions, and each version's evaluations."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import HTMLResponse

from modelyard.api.deps import StoreDep
from modelyard.services import evaluations, models
from modelyard.web.pages.evaluations import KEY_METRICS
from modelyard.web.templating import render

router = APIRouter()


@router.get("/models", response_class=HTMLResponse)
def model_list(request: Request, store: StoreDep) -> HTMLResponse:
    return render(request, "models.html", {"nav": "models", "models": models.list_models(store)})


@router.get("/models/{model:path}/versions/{version}", response_class=HTMLResponse)
def version_page(request: Request, model: str, version: int, store: StoreDep) -> HTMLResponse:
    context = {
        "nav": "models",
        "model_version": models.get_version(store, model=model, version=version),
        "evaluations": evaluations.list_version_evaluations(store, model=model, version=version),
        "key_metrics": KEY_METRICS,
    }
    return render(request, "model_version.html", context)


@router.get("/models/{model:path}", response_class=HTMLResponse)
def model_page(request: Request, model: str, store: StoreDep) -> HTMLResponse:
    context = {
        "nav": "models",
        "model": model,
        "versions": models.list_versions(store, model=model),
    }
    return render(request, "model.html", context)
