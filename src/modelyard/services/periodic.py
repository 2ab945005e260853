"""Periodic work of a server process (sweeps): one daemon thread per kind of work."""

from __future__ import annotations

import logging
import threading

log = logging.getLogger("modelyard")


class Periodic:
    """A daemon thread calling :meth:`sweep` at start and every ``interval_s`` seconds until
    stopped; a round that fails is logged (``failure`` says what could not be done) and tried
    again at the next. Subclasses say what one round does in :meth:`work`."""

    name = "modelyard-periodic"
    failure = "periodic work failed"

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def work(self) -> int:
        """One round; returns how many things it did."""
        raise NotImplementedError

    def enabled(self) -> bool:
        return True

    def start(self) -> None:
        if not self.enabled():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    def sweep(self) -> int:
        try:
            return self.work()
        except Exception:
            log.exception(self.failure)
            return 0

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.sweep()
            self._stop.wait(self.interval_s)
