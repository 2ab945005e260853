"""JSON has no NaN or infinities: they travel as strings, as in MLflow's JSON API."""

from __future__ import annotations

import math

SPECIAL_FLOATS = {
    "NaN": math.nan,
    "nan": math.nan,
    "Infinity": math.inf,
    "inf": math.inf,
    "-Infinity": -math.inf,
    "-inf": -math.inf,
}


def encode_float(v: float) -> float | str:
    """A float as JSON can carry it: finite values as numbers, the rest as strings."""
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "Infinity" if v > 0 else "-Infinity"
    return v
