"""JSON has no NaN or infinities: they travel as strings, as in MLflow's JSON API."""

from __future__ import annotations

import math
from collections.abc import Sequence

SPECIAL_FLOATS = {
    "NaN": math.nan,
    "nan": math.nan,
    "Infinity": math.inf,
    "inf": math.inf,
    "-Infinity": -math.inf,
    "-inf": -math.inf,
}


def reads_as_number(text: str) -> bool:
    """Whether ``text`` (a CSV cell, a param value) is a number as Python reads one."""
    try:
        float(text)
    except ValueError:
        return False
    return True


def encode_float(v: float) -> float | str:
    """A float as JSON can carry it: finite values as numbers, the rest as strings."""
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "Infinity" if v > 0 else "-Infinity"
    return v


def _special(v: float | str) -> str | None:
    """How a value that is not a finite number reads: NaN, +inf, -inf (or the string itself)."""
    if isinstance(v, str):
        return {"Infinity": "+inf", "inf": "+inf", "-Infinity": "-inf", "nan": "NaN"}.get(v, v)
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+inf" if v > 0 else "-inf"
    return None


def column_text(values: Sequence[float | str | None], digits: int = 4) -> list[str]:
    """A column of numbers as text that lines up when right-aligned: every value with the same
    number of decimals, enough for ``digits`` significant digits of the largest and two of the
    smallest; scientific notation for the whole column when its values span too many orders
    of magnitude for that. Whole numbers stay whole (with thousands separators); None is "".

    >>> column_text([0.97312, 0.5, 0.0123])
    ['0.9731', '0.5000', '0.0123']
    >>> column_text([3, 12000, None])
    ['3', '12,000', '']
    """
    finite = [float(v) for v in values if isinstance(v, int | float) and math.isfinite(v)]
    if all(v.is_integer() and abs(v) < 1e15 for v in finite):
        style = ",.0f"
    else:
        exponents = [math.floor(math.log10(abs(v))) for v in finite if v != 0]
        high, low = max(exponents), min(exponents)
        decimals = max(digits - 1 - high, 1 - low, 0)
        if high >= 9 or low < -5 or decimals > digits + 2:
            style = f".{digits - 1}e"
        else:
            style = f",.{decimals}f"
    out = []
    for v in values:
        special = None if v is None else _special(v)
        out.append("" if v is None else special if special is not None else format(v, style))
    return out
