"""Metric points in (rows or columns, with params and tags) and a metric's history out."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StrictFloat, StrictInt

from modelyard.schemas._common import Key, ParamValue, Strict, TagValue


class MetricPointIn(Strict):
    # Strict like the columnar form: true is no step, 2.0 no step, "1.5" and true no value.
    key: Key
    value: StrictFloat | Literal["NaN", "Infinity", "-Infinity", "nan", "inf", "-inf"]
    step: StrictInt = 0
    timestamp: Annotated[StrictInt, Field(ge=0, le=2**53)] | None = None


class PointsBatch(Strict):
    """Points of a series: rows (``metrics``) or columns (``columns``)."""

    metrics: list[MetricPointIn] = Field(default_factory=list)
    columns: dict[str, list[Any] | str] | None = Field(
        default=None,
        description="Columnar points: key (list or one string), value, step, timestamp.",
    )


class BatchLog(PointsBatch):
    """Rows (``metrics``) or columns (``columns``) of metric points, plus params and tags."""

    params: dict[Key, ParamValue] = Field(default_factory=dict)
    tags: dict[Key, TagValue] = Field(default_factory=dict)


class MetricHistory(BaseModel):
    key: str
    steps: list[int]
    timestamps: list[int]
    values: list[float | str]
