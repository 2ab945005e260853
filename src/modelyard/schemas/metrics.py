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
    """A page of a history: point i is (steps[i], timestamps[i], values[i])."""

    key: str
    steps: list[int]
    timestamps: list[int]
    values: list[float | str] = Field(
        description='Numbers; NaN and infinities as the strings "NaN", "Infinity", "-Infinity".'
    )
    next_page_token: str | None = Field(
        default=None,
        description=(
            "Null on the last page. Otherwise more points remain: pass it back as page_token "
            "(with the same key, range and format) for the next page. A JSON page holds at "
            "most 100,000 points, an Arrow page 1,000,000."
        ),
    )
