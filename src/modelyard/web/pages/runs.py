"""A run's page: header, pipeline DAG (polled while running), params, tags, metrics, charts
and artifacts; and each artifact's preview page."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import HTMLResponse

from modelyard.api.deps import ArtifactsDep, StoreDep
from modelyard.artifacts.base import ArtifactStore
from modelyard.authz import (
    Level,
    allow,
    run_path,
)
from modelyard.metadata.store import Store
from modelyard.schemas import LatestMetric, RunPublic, StepPublic
from modelyard.services import artifacts, models, previews, runs, series, steps
from modelyard.web.graph import Layout, layered, longest_path_layers
from modelyard.web.templating import render

router = APIRouter()

# How often the pipeline fragment is fetched again while the run has not ended (a lost run
# may come back).
POLL_EVERY = "2s"
NODE_WIDTH = 190
NODE_HEIGHT = 58
# Room for the arrow between two steps: a 6-step chain fits a 1440 px window.
GAP = 48


@dataclass(frozen=True, slots=True)
class MetricView:
    """One metric on the run page: its latest point, and whether it has a history to chart
    (logged at two or more steps) or is a value logged once."""

    key: str
    latest: LatestMetric
    anchor: str  # the id its chart or value tile carries, for the metrics table to link to
    points: int
    history: bool


def pipeline_layout(run_steps: list[StepPublic]) -> Layout:
    """The steps as a left-to-right DAG: each step one layer right of what it depends on."""
    ids = [s.name for s in run_steps]
    known = set(ids)
    edges = [(dep, s.name) for s in run_steps for dep in s.depends_on if dep in known]
    return layered(
        ids,
        edges,
        longest_path_layers(ids, edges),
        node_width=NODE_WIDTH,
        node_height=NODE_HEIGHT,
        gap_x=GAP,
    )


def pipeline_context(store: Store, run: RunPublic) -> dict[str, Any]:
    run_steps = steps.list_steps(store, run_id=run.run_id)
    return {
        "run": run,
        "steps": run_steps,
        "layout": pipeline_layout(run_steps),
        "poll": POLL_EVERY if run.status in ("running", "lost") else None,
    }


def metric_views(store: Store, run: RunPublic) -> list[MetricView]:
    """The run's metrics in key order, each told apart as a history (charted) or a value."""
    extents = series.metric_extents(store, run_ids=[run.run_id])[run.run_id]
    return [
        MetricView(
            key=key,
            latest=latest,
            anchor=f"metric-{i}",
            points=extents[key].points if key in extents else 1,
            history=series.has_history(extents.get(key)),
        )
        for i, (key, latest) in enumerate(sorted(run.metrics.items()), start=1)
    ]


def run_context(store: Store, run_id: str) -> dict[str, Any]:
    run = runs.get_run(store, run_id=run_id)
    metrics = metric_views(store, run)
    return {
        "nav": "projects",
        "charts": any(m.history for m in metrics),
        "params": sorted(run.params.items()),
        "tags": sorted(run.tags.items()),
        "metrics": metrics,
        "artifacts": artifacts.list_artifacts(store, run_id=run_id),
        "model_versions": models.versions_made_by(store, run_id=run_id),
        "oob": False,
        **pipeline_context(store, run),
    }


def artifact_context(store: Store, files: ArtifactStore, run_id: str, path: str) -> dict[str, Any]:
    run = runs.get_run(store, run_id=run_id)
    preview = previews.preview_artifact(store, files, run_id=run_id, path=path)
    return {
        "nav": "projects",
        "run": run,
        "artifact": preview.artifact,
        "preview": preview,
        "text_limit": previews.TEXT_LIMIT,
        "row_limit": previews.ROW_LIMIT,
    }


@router.get("/runs/{run_id}", response_class=HTMLResponse)
@allow(Level.READ, on=run_path())
def run_page(request: Request, run_id: str, store: StoreDep) -> HTMLResponse:
    return render(request, "run.html", run_context(store, run_id))


@router.get("/runs/{run_id}/pipeline", response_class=HTMLResponse)
@allow(Level.READ, on=run_path())
def pipeline_fragment(request: Request, run_id: str, store: StoreDep) -> HTMLResponse:
    """The pipeline alone, for htmx to swap in; it stops asking once the run has ended."""
    run = runs.get_run(store, run_id=run_id)
    context = {**pipeline_context(store, run), "oob": True}
    return render(request, "_pipeline.html", context, headers={"Cache-Control": "no-store"})


@router.get("/runs/{run_id}/artifacts/{path:path}", response_class=HTMLResponse)
@allow(Level.READ, on=run_path())
def artifact_page(
    request: Request, run_id: str, path: str, store: StoreDep, files: ArtifactsDep
) -> HTMLResponse:
    return render(request, "artifact.html", artifact_context(store, files, run_id, path))
