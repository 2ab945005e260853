"""Uploading predictions and evaluating them: the one use case behind the API's evaluation
routes and the upload form on a run's evaluations page.

A table arrives as JSON columns, or as Arrow IPC, Parquet or CSV with the names of its
columns given alongside; it is read, checked and evaluated off the event loop.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from modelyard.analyzers.base import PredictionTable, prediction_table
from modelyard.artifacts.base import ArtifactStore
from modelyard.errors import PayloadTooLarge
from modelyard.metadata.store import Store
from modelyard.plugins import Plugins
from modelyard.schemas import EvaluationCreate, EvaluationPublic
from modelyard.services import evaluations, models
from modelyard.services.bodies import parse_body
from modelyard.services.threads import off_loop

# What a file's name says it holds, when the browser sends no useful content type.
KINDS = {
    "parquet": "application/vnd.apache.parquet",
    "csv": "text/csv",
    "arrow": "application/vnd.apache.arrow.file",
    "arrows": "application/vnd.apache.arrow.stream",
}


@dataclass(frozen=True, slots=True)
class Upload:
    """An uploaded table of predictions and where its columns are. For a JSON body the
    columns are in the body, which may also name the dataset and the evaluation."""

    raw: bytes
    content_type: str
    y_true: str = "y_true"
    y_score: list[str] | None = None
    weights: str | None = None
    groups: list[str] | None = None
    task: str | None = None
    threshold: float = 0.5
    classes: list[str] | None = None
    dataset: str | None = None
    name: str | None = None
    evaluation_id: str | None = None


def content_type_of(filename: str | None, declared: str | None) -> str:
    """The type of an uploaded file: from its name's suffix if known, else as declared."""
    suffix = (filename or "").rsplit(".", 1)[-1].lower()
    return KINDS.get(suffix, declared or "")


def too_large(max_bytes: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"the upload is larger than the {max_bytes}-byte limit")


async def read_limited(
    chunks: AsyncIterator[bytes], *, max_bytes: int, declared_length: str | None = None
) -> bytes:
    """A request body read whole, refused once it passes ``max_bytes`` (at once when its
    declared length already does)."""
    declared = declared_length or ""
    if declared.isdigit() and int(declared) > max_bytes:
        raise too_large(max_bytes)
    parts: list[bytes] = []
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > max_bytes:
            raise too_large(max_bytes)
        parts.append(chunk)
    return b"".join(parts)


def _table(upload: Upload) -> tuple[PredictionTable, str | None, str | None]:
    """The prediction table, and the dataset and name a JSON body gives."""
    if upload.content_type.startswith("application/json"):
        body = parse_body(upload.raw, EvaluationCreate)
        table = prediction_table(
            body.y_true, body.y_score, weights=body.weights, groups=body.groups,
            task=body.task, classes=body.classes,
            threshold=body.threshold if body.threshold != 0.5 else upload.threshold,
        )  # fmt: skip
        return table, body.dataset, body.name
    table = evaluations.table_from_arrow(
        evaluations.read_upload(upload.raw, upload.content_type), y_true=upload.y_true,
        y_score=upload.y_score, weights=upload.weights, groups=upload.groups, task=upload.task,
        threshold=upload.threshold, classes=upload.classes,
    )  # fmt: skip
    return table, None, None


def _evaluate(
    store: Store,
    files: ArtifactStore,
    plugins: Plugins,
    *,
    upload: Upload,
    run_id: str | None,
    model_version: tuple[str, int] | None,
    actor: str,
) -> EvaluationPublic:
    if model_version is not None:
        model, version = model_version
        run_id = models.get_version(store, model=model, version=version).run_id
    if run_id is None:
        raise ValueError("an evaluation is of a run or of a model version")
    table, dataset, name = _table(upload)
    return evaluations.evaluate(
        store, files, plugins, run_id=run_id, table=table, dataset=upload.dataset or dataset,
        name=upload.name or name, actor=actor, evaluation_id=upload.evaluation_id,
        model_version=model_version,
    )  # fmt: skip


async def evaluate_upload(
    store: Store,
    files: ArtifactStore,
    plugins: Plugins,
    *,
    upload: Upload,
    max_bytes: int,
    actor: str,
    run_id: str | None = None,
    model_version: tuple[str, int] | None = None,
) -> EvaluationPublic:
    """Read an uploaded table and evaluate it with every analyzer that applies, as an
    evaluation of the run ``run_id`` or of ``model_version`` (model, version), linked to the
    run that made it. Nothing is stored unless the whole table is valid; a client-chosen
    ``evaluation_id`` makes a retried upload a no-op."""
    if len(upload.raw) > max_bytes:
        raise too_large(max_bytes)
    return await off_loop(
        _evaluate, store, files, plugins, upload=upload, run_id=run_id,
        model_version=model_version, actor=actor,
    )  # fmt: skip
