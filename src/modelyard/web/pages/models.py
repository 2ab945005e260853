"""Models, their versions, and each version's evaluations."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import HTMLResponse

from modelyard.api.deps import Readable, StoreDep
from modelyard.authz import (
    Level,
    allow,
    version_path,
)
from modelyard.metadata.store import Store
from modelyard.schemas import Serial
from modelyard.services import comparisons, headlines, models
from modelyard.web.pages.evaluations import KEY_METRICS, MAX_COMPARED
from modelyard.web.templating import render

router = APIRouter()


@router.get("/models", response_class=HTMLResponse)
@allow(Level.SIGNED_IN)
def model_list(request: Request, store: StoreDep, readable: Readable) -> HTMLResponse:
    context = {
        "nav": "models",
        "models": models.list_models(store, readable=readable),
        "headline_how": "Over the runs that made each model's versions. " + headlines.EXPLANATION,
    }
    return render(request, "models.html", context)


def version_context(
    store: Store, model: str, version: int, readable: frozenset[int] | None
) -> dict[str, Any]:
    found = comparisons.for_version(
        store, model=model, version=version, limit=MAX_COMPARED, readable=readable
    )
    return {
        "nav": "models",
        "model_version": found.version,
        "evaluations": found.evaluations,
        "evaluation_of": found.version,
        "comparisons": found.datasets,
        "key_metrics": KEY_METRICS,
    }


@router.get("/models/{model:path}/versions/{version}", response_class=HTMLResponse)
@allow(Level.READ, on=version_path())
def version_page(
    request: Request, model: str, version: Serial, store: StoreDep, readable: Readable
) -> HTMLResponse:
    """A model version: the run that made it, its evaluations and its run's, and comparisons
    with the model's other versions."""
    return render(request, "model_version.html", version_context(store, model, version, readable))


@router.get("/models/{model:path}", response_class=HTMLResponse)
@allow(Level.SIGNED_IN)
def model_page(request: Request, model: str, store: StoreDep, readable: Readable) -> HTMLResponse:
    """A model's versions and the comparisons of their evaluations on offer."""
    versions, comparable = comparisons.for_model(
        store, model=model, limit=MAX_COMPARED, readable=readable
    )
    context = {"nav": "models", "model": model, "versions": versions, "comparable": comparable}
    return render(request, "model.html", context)
