"""Evaluations of a run's predictions, and the threshold table of a binary one."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, Field

from modelyard.limits import EvaluationTask
from modelyard.schemas._common import Key, Name, Strict


class EvaluationCreate(Strict):
    """Predictions as JSON columns; large tables are better sent as Arrow, Parquet or CSV."""

    y_true: list[Any] = Field(max_length=10_000_000)
    y_score: list[Any] = Field(max_length=10_000_000)
    weights: list[Any] | None = None
    groups: dict[Key, list[Any]] = Field(default_factory=dict, max_length=20)
    dataset: Name | None = None
    name: Name | None = None
    task: EvaluationTask | None = None
    classes: list[Any] | None = Field(default=None, max_length=10_000)
    threshold: Annotated[float, Field(ge=0.0, le=1.0)] = 0.5


class EvaluationPublic(BaseModel):
    id: str
    urn: str
    run_id: str
    model: str | None = None
    model_version: int | None = None
    run_name: str
    project: str
    name: str
    dataset: str | None
    task: str
    analyzers: list[str]
    rows: int
    weighted: bool
    groups: list[str]
    threshold: float
    created_at: int
    created_by: str
    metrics: dict[str, dict[str, float | None]]
    files: dict[str, str]


class ThresholdPoint(BaseModel):
    threshold: float
    tp: float
    fp: float
    tn: float
    fn: float
    precision: float | None
    recall: float | None
    fpr: float | None
    specificity: float | None
    f1: float | None
    accuracy: float | None
    predicted_positive_share: float | None
