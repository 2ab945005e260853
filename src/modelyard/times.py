"""Times as people read them, from UTC milliseconds; total: any integer gives some text."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_moment(ms: int) -> datetime | None:
    """The moment ``ms`` milliseconds after 1970-01-01 UTC; None outside the calendar's years
    (1 to 9999), which a store written before times were checked may still hold."""
    try:
        return datetime.fromtimestamp(ms / 1000, UTC)
    except (ValueError, OverflowError, OSError):
        return None


def utc_text(ms: int, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """``ms`` formatted with ``fmt``; the raw number when no calendar date has it."""
    moment = utc_moment(ms)
    return f"{ms:,} ms" if moment is None else moment.strftime(fmt)


def span_text(ms: int) -> str:
    """A stretch of time in its largest whole unit: "45 s", "7 min", "3 h", "2 d"."""
    seconds = max(0, ms) // 1000
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"
