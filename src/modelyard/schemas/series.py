"""Series of any entity (a run's metrics, a deployment's telemetry): batches in, reads out."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from modelyard.schemas.metrics import PointsBatch


class SeriesBatch(PointsBatch):
    """Points of an entity's series: rows (``metrics``) or columns (``columns``), shaped as a
    run's metric batch."""


class SeriesRecorded(BaseModel):
    recorded: int


class SeriesLatest(BaseModel):
    step: int
    timestamp: int
    value: float | str


class SeriesReduced(BaseModel):
    key: str
    x_kind: Literal["step", "time"]
    x: list[int]
    y: list[float]
    total: int
    nan: int
    pos_inf: int
    neg_inf: int
    reduced: bool
