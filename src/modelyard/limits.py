"""Limits and enums that the client and the server share.

A leaf module: it imports nothing of modelyard and nothing beyond the standard library, so the
SDK, the API schemas, the tables and the aspects can all rely on it without pulling the server in.
Anything longer than a limit is refused with a clear message, never truncated.
"""

from __future__ import annotations

from typing import Literal

MAX_NAME = 256
MAX_KEY = 250
MAX_PARAM_VALUE = 6000
MAX_TAG_VALUE = 8000
MAX_ARTIFACT_PATH = 500
MAX_URN = 2048
MAX_DESCRIPTION = 10_000
MAX_MESSAGE = 10_000
MAX_ERROR = 20_000
MAX_URI = 4000
# Whole numbers the database keeps (steps, times, ids, versions) are signed 64-bit.
INT64_MAX = 2**63 - 1
# The last millisecond of the year 9999 (UTC): the latest time a run may carry, so every date
# the portal and the CLI write is one the calendar can show.
MAX_MILLIS = 253_402_300_799_999
# A file system's limit on one name: each part of an artifact path, in UTF-8 bytes.
MAX_PATH_PART_BYTES = 255

# "lost": the server has had no sign of life from the run's client for a while; not an end, the
# run comes back to "running" when its client is heard from again.
RunStatus = Literal["running", "lost", "finished", "failed", "killed"]
# What a client may set a run's status to ("lost" is the server's finding, never set by hand).
RunStatusUpdate = Literal["running", "finished", "failed", "killed"]
StepStatus = Literal["pending", "running", "finished", "failed", "skipped"]
TERMINAL_STATUSES = frozenset({"finished", "failed", "killed", "skipped"})
EvaluationTask = Literal["binary", "multiclass", "regression"]
