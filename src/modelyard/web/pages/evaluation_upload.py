"""Evaluating predictions uploaded from the browser as a Parquet, CSV or Arrow file."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Request, UploadFile
from starlette.responses import RedirectResponse, Response

from modelyard.api.deps import Actor, ArtifactsDep, PluginsDep, SettingsDep, StoreDep
from modelyard.authz import (
    Level,
    allow,
    run_path,
)
from modelyard.body_limits import TABLE_FORMS, body_limit
from modelyard.errors import InvalidInput, ModelyardError, PayloadTooLarge
from modelyard.metadata.store import Store
from modelyard.services import evaluation_upload, evaluations, runs
from modelyard.services.evaluation_upload import Upload
from modelyard.web.pages.evaluations import KEY_METRICS
from modelyard.web.templating import render

router = APIRouter()


def _names(text: str) -> list[str] | None:
    names = [n.strip() for n in text.split(",") if n.strip()]
    return names or None


async def read_form(predictions: UploadFile, form: dict[str, str], max_bytes: int) -> Upload:
    """The uploaded file (read up to one byte past the limit) and the form's column names."""
    return Upload(
        raw=await predictions.read(max_bytes + 1),
        content_type=evaluation_upload.content_type_of(
            predictions.filename, predictions.content_type
        ),
        y_true=form["y_true"].strip(),
        y_score=_names(form["y_score"]),
        weights=form["weights"].strip() or None,
        groups=_names(form["groups"]),
        dataset=form["dataset"].strip() or None,
    )


def failed_upload(
    store: Store, run_id: str, error: ModelyardError, form: dict[str, str]
) -> dict[str, Any]:
    """The run's evaluations page again, saying why the upload failed and keeping the form."""
    return {
        "nav": "projects",
        "run": runs.get_run(store, run_id=run_id),
        "evaluations": evaluations.list_evaluations(store, run_id=run_id),
        "key_metrics": KEY_METRICS,
        "upload_error": error.message,
        "form": form,
    }


@router.post("/runs/{run_id}/evaluations")
@body_limit(TABLE_FORMS)
@allow(Level.WRITE, on=run_path())
async def upload_predictions(
    request: Request,
    run_id: str,
    store: StoreDep,
    files: ArtifactsDep,
    plugins: PluginsDep,
    settings: SettingsDep,
    actor: Actor,
    predictions: Annotated[UploadFile, File()],
    dataset: Annotated[str, Form(max_length=256)] = "",
    y_true: Annotated[str, Form(max_length=250)] = "y_true",
    y_score: Annotated[str, Form(max_length=10_000)] = "y_score",
    weights: Annotated[str, Form(max_length=250)] = "",
    groups: Annotated[str, Form(max_length=5_000)] = "",
) -> Response:
    """Evaluate an uploaded table; on success go to the evaluation, otherwise say why."""
    form = {"dataset": dataset, "y_true": y_true, "y_score": y_score, "weights": weights,
            "groups": groups}  # fmt: skip
    try:
        upload = await read_form(predictions, form, settings.max_table_bytes)
        ev = await evaluation_upload.evaluate_upload(
            store, files, plugins, upload=upload, max_bytes=settings.max_table_bytes,
            actor=actor, run_id=run_id,
        )  # fmt: skip
    except (InvalidInput, PayloadTooLarge) as exc:
        context = failed_upload(store, run_id, exc, form)
        return render(request, "_evaluation_run_page.html", context, status=exc.status)
    return RedirectResponse(f"/evaluations/{ev.id}", status_code=303)
