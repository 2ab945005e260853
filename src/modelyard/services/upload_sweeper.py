"""Removes what uploads cut short left in the artifact store, at start and periodically."""

from __future__ import annotations

import logging

from modelyard.artifacts.base import ArtifactStore
from modelyard.services.periodic import Periodic

log = logging.getLogger("modelyard.artifacts")

SWEEP_INTERVAL_S = 600.0


class UploadSweeper(Periodic):
    """Calls ``store.sweep_incomplete(grace_s)`` at start and every ``interval_s`` seconds."""

    name = "modelyard-sweeper"

    def __init__(
        self, store: ArtifactStore, grace_s: float, interval_s: float = SWEEP_INTERVAL_S
    ) -> None:
        super().__init__(interval_s)
        self.store, self.grace_s = store, grace_s
        self.failure = f"could not remove unfinished uploads from {store.description}"

    def work(self) -> int:
        removed = self.store.sweep_incomplete(self.grace_s)
        if removed:
            log.info("removed %d unfinished upload(s) from %s", removed, self.store.description)
        return removed
