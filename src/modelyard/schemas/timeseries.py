"""Time-series events of any entity."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from modelyard.schemas._common import Key, Millis, Strict, Urn


class TimeseriesEventIn(Strict):
    urn: Urn
    name: Key
    timestamp: Millis
    value: float | None = None
    attributes: dict[str, Any] | None = None


class TimeseriesBatch(Strict):
    events: list[TimeseriesEventIn] = Field(max_length=100_000)
