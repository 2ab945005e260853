"""Evaluating predictions uploaded from the browser as a Parquet, CSV or Arrow file."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Request, UploadFile
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from modelyard.api.deps import Actor, ArtifactsDep, PluginsDep, SettingsDep, StoreDep
from modelyard.errors import InvalidInput, PayloadTooLarge
from modelyard.services import evaluations, runs
from modelyard.web.pages.evaluations import KEY_METRICS
from modelyard.web.templating import render

router = APIRouter()
KINDS = {
    "parquet": "application/vnd.apache.parquet",
    "csv": "text/csv",
    "arrow": "application/vnd.apache.arrow.file",
    "arrows": "application/vnd.apache.arrow.stream",
}


def _names(text: str) -> list[str] | None:
    names = [n.strip() for n in text.split(",") if n.strip()]
    return names or None


@router.post("/runs/{run_id}/evaluations")
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
        suffix = (predictions.filename or "").rsplit(".", 1)[-1].lower()
        kind = KINDS.get(suffix, predictions.content_type or "")
        raw = await predictions.read(settings.max_upload_bytes + 1)
        if len(raw) > settings.max_upload_bytes:
            raise PayloadTooLarge(
                f"the file is larger than the {settings.max_upload_bytes}-byte limit"
            )

        def work() -> str:
            table = evaluations.table_from_arrow(
                evaluations.read_upload(raw, kind), y_true=y_true.strip(),
                y_score=_names(y_score), weights=weights.strip() or None, groups=_names(groups),
            )  # fmt: skip
            ev = evaluations.evaluate(
                store, files, plugins, run_id=run_id, table=table,
                dataset=dataset.strip() or None, name=None, actor=actor,
            )  # fmt: skip
            return ev.id

        evaluation_id = await run_in_threadpool(work)
    except (InvalidInput, PayloadTooLarge) as exc:
        context = {
            "nav": "projects",
            "run": runs.get_run(store, run_id=run_id),
            "evaluations": evaluations.list_evaluations(store, run_id=run_id),
            "key_metrics": KEY_METRICS,
            "upload_error": exc.message,
            "form": form,
        }
        return render(request, "_evaluation_run_page.html", context, status=exc.status)
    return RedirectResponse(f"/evaluations/{evaluation_id}", status_code=303)
