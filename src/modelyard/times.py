"""Times as people read them, from UTC milliseconds; total: any integer gives some text.

Every page prints a time through these (the templates' ``when`` macro and filters, and the
readable views of aspects and changes), so none shows a raw count of milliseconds."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

# Aspect fields that hold a time in milliseconds: start_time, end_time, created_at, timestamp.
TIME_FIELD = re.compile(r"(^|_)(time|at|timestamp)$|^last_heartbeat$")


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


def utc_iso(ms: int | None) -> str:
    """``ms`` as ISO 8601 to the second (for a <time datetime>); "" when it has no date."""
    moment = None if ms is None else utc_moment(ms)
    return "" if moment is None else moment.isoformat(timespec="seconds")


def ago(ms: int | None, now: float | None = None) -> str:
    """How long ago, in the largest unit that fits: "5 min ago"."""
    if ms is None:
        return "—"
    elapsed_ms = int(((now if now is not None else time.time()) - ms / 1000) * 1000)
    return "just now" if elapsed_ms < 60_000 else f"{span_text(elapsed_ms)} ago"


def is_time_field(name: str, value: object) -> bool:
    """Whether an aspect's field holds a time: an integer under a name like "start_time"."""
    return isinstance(value, int) and not isinstance(value, bool) and bool(TIME_FIELD.search(name))


def span_text(ms: int) -> str:
    """A stretch of time in its largest whole unit: "45 s", "7 min", "3 h", "2 d"."""
    seconds = max(0, ms) // 1000
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"
