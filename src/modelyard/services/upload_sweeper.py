"""Removes what uploads cut short left in the artifact store, at start and periodically."""

from __future__ import annotations

import logging
import threading

from modelyard.artifacts.base import ArtifactStore

log = logging.getLogger("modelyard.artifacts")

SWEEP_INTERVAL_S = 600.0


class UploadSweeper:
    """A daemon thread calling ``store.sweep_incomplete(grace_s)`` now and every
    ``interval_s`` seconds until stopped; a failing sweep is logged and tried again later."""

    def __init__(
        self, store: ArtifactStore, grace_s: float, interval_s: float = SWEEP_INTERVAL_S
    ) -> None:
        self.store, self.grace_s, self.interval_s = store, grace_s, interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="modelyard-sweeper", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    def sweep(self) -> int:
        try:
            removed = self.store.sweep_incomplete(self.grace_s)
        except Exception:
            log.exception("could not remove unfinished uploads from %s", self.store.description)
            return 0
        if removed:
            log.info("removed %d unfinished upload(s) from %s", removed, self.store.description)
        return removed

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.sweep()
            self._stop.wait(self.interval_s)
