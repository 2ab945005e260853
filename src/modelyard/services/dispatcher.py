"""The event dispatcher: hands each outbox event to the ``on_event`` hooks, at least once and
in order per entity, on a background thread that never holds up a write.

A handler runs on its own daemon thread and is waited for at most ``handler_timeout`` seconds,
so one that hangs costs the dispatcher that long and nothing else. A failed or timed-out event
is retried with exponential backoff (its entity's later events wait for it), and given up after
``max_attempts``; every failure is logged and counted (``/healthz``).

About once a minute the dispatcher also removes the events delivered or given up longer than
``retention_hours`` ago (the change log is the history; the outbox is only a delivery queue),
a bounded batch per transaction so it never holds the database for long.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pluggy

from modelyard.events import DomainEvent
from modelyard.metadata import outbox
from modelyard.metadata.store import Store, Tx, now_ms

log = logging.getLogger("modelyard.events")

RETRY_FIRST_MS = 1_000
RETRY_CAP_MS = 3_600_000
# A claim covers this many entities, and this many events in all.
CLAIM_ENTITIES = 50
CLAIM_EVENTS = 500
# A lease outlives the slowest handler by this margin; renewed after every delivered event.
LEASE_MARGIN_MS = 30_000
# Settled events are removed at most this often, this many per transaction, and in at most
# this many transactions per pass.
PRUNE_EVERY_MS = 60_000
PRUNE_BATCH = 1_000
PRUNE_BATCHES = 5
# Dispatchers alive in this process: a lease held under this process's id by anyone else is
# a previous process's that had the same id (a container restarted as pid 1).
_RUNNING: set[str] = set()


def backoff_ms(attempts: int) -> int:
    """Delay before attempt ``attempts + 1``: 1 s, 2 s, 4 s, … up to an hour."""
    return int(min(RETRY_FIRST_MS * 2 ** min(attempts - 1, 32), RETRY_CAP_MS))


@dataclass
class _Outcome:
    error: BaseException | None = None
    done: bool = False


class Dispatcher:
    """Delivers outbox events of ``store`` to the implementations of ``hook`` (``on_event``)."""

    def __init__(
        self,
        store: Store,
        hook: pluggy.HookCaller,
        *,
        poll_interval: float = 0.5,
        handler_timeout: float = 30.0,
        max_attempts: int = 25,
        retention_hours: float = 168,
        prune_batch: int = PRUNE_BATCH,
        prune_batches: int = PRUNE_BATCHES,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self.store = store
        self.hook = hook
        self.poll_interval = poll_interval
        self.handler_timeout = handler_timeout
        self.max_attempts = max_attempts
        # 0 keeps every event; any other retention is at least a millisecond.
        self.retention_ms = max(1, int(retention_hours * 3_600_000)) if retention_hours else 0
        self.prune_batch, self.prune_batches = prune_batch, prune_batches
        self.clock = clock
        self.host, self.pid = socket.gethostname(), os.getpid()
        self.owner = f"{self.host}/{self.pid}/{uuid.uuid4().hex[:8]}"
        self.lease_ms = int(handler_timeout * 1000) + LEASE_MARGIN_MS
        self.delivered = 0  # by this process since it started
        self.handler_errors = 0
        self.pruned = 0
        self._next_prune = 0  # clock time of the next pass
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- running in the background -------------------------------------------------------

    def start(self) -> None:
        _RUNNING.add(self.owner)
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="modelyard-events")
        self._thread.start()

    def stop(self) -> None:
        """Stop after the event in hand; give back the rest of the claim for others to take."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.handler_timeout + 5)
            self._thread = None
        _RUNNING.discard(self.owner)
        try:
            self._write(lambda tx: outbox.release(tx.conn, owner=self.owner))
        except Exception:  # the leases run out by themselves
            log.exception("event dispatcher: could not give back its claim on stopping")

    def _loop(self) -> None:
        try:
            self.release_dead_owners()
        except Exception:
            log.exception("could not release the leases of stopped dispatchers")
        while not self._stop.is_set():
            try:
                self.maybe_prune()
            except Exception:  # kept for the next pass
                log.exception("event dispatcher: could not remove old events")
            try:
                handled = self.run_once()
            except Exception:  # the database may be away for a moment; try again later
                log.exception("event dispatcher: delivery round failed")
                handled = 0
            if not handled:
                self._stop.wait(self.poll_interval)

    # -- one round -----------------------------------------------------------------------

    def run_once(self) -> int:
        """Claim due events and deliver them; returns how many were attempted."""
        with self.store.read() as conn:
            if not outbox.any_claimable(conn, self.clock()):
                return 0
        events = self._write(
            lambda tx: outbox.claim(
                tx.conn,
                owner=self.owner,
                now=self.clock(),
                lease_ms=self.lease_ms,
                entities=CLAIM_ENTITIES,
                limit=CLAIM_EVENTS,
            )
        )
        if not self.hook.get_hookimpls():  # nobody listens: settle the claim at once
            self._settle([e.id for e in events])
            return len(events)
        waiting: set[str] = set()  # entities whose earlier event failed in this round
        attempted = 0
        for event in events:
            if self._stop.is_set():
                break
            if event.urn in waiting:
                continue
            attempted += 1
            if not self.deliver(event):
                waiting.add(event.urn)
        return attempted

    def drain(self, rounds: int = 10_000) -> None:
        """Deliver until nothing is due (tests, and apps run without a lifespan)."""
        for _ in range(rounds):
            if not self.run_once():
                return

    def deliver(self, event: DomainEvent) -> bool:
        """Hand ``event`` to every handler and record the outcome; True when all succeeded."""
        error = self._call_handlers(event)
        if error is None:
            self._settle([event.id])
            return True
        self.handler_errors += 1
        failure = self._write(
            lambda tx: outbox.mark_failed(
                tx.conn,
                event,
                owner=self.owner,
                error=error,
                now=self.clock(),
                max_attempts=self.max_attempts,
                backoff=backoff_ms,
            )
        )
        what = f"event {event.id} ({event.kind} {event.aspect} of {event.urn})"
        if failure.gave_up:
            log.error("%s: gave up after %d attempts: %s", what, failure.attempts, error)
        else:
            log.warning("%s: attempt %d failed, will retry: %s", what, failure.attempts, error)
        return False

    def _settle(self, event_ids: list[int]) -> None:
        self._write(
            lambda tx: outbox.mark_delivered(
                tx.conn, event_ids, owner=self.owner, now=self.clock(), lease_ms=self.lease_ms
            )
        )
        self.delivered += len(event_ids)

    def _call_handlers(self, event: DomainEvent) -> str | None:
        errors = []
        for impl in self.hook.get_hookimpls():
            outcome = self._run_with_timeout(impl.function, impl.argnames, event)
            if not outcome.done:
                errors.append(f"{impl.plugin_name}: timed out after {self.handler_timeout:g} s")
            elif outcome.error is not None:
                exc = outcome.error
                errors.append(f"{impl.plugin_name}: {type(exc).__name__}: {exc}")
        return "; ".join(errors) or None

    def _run_with_timeout(
        self, function: Callable[..., Any], argnames: tuple[str, ...], event: DomainEvent
    ) -> _Outcome:
        outcome = _Outcome()
        kwargs = dict.fromkeys(argnames, event)

        def call() -> None:
            try:
                function(**kwargs)
            except BaseException as exc:  # recorded, never raised here
                outcome.error = exc
            outcome.done = True

        # A daemon thread, so a handler that never returns cannot keep the process alive.
        worker = threading.Thread(target=call, daemon=True, name="modelyard-event-handler")
        worker.start()
        worker.join(self.handler_timeout)
        return outcome

    # -- removing settled events -------------------------------------------------------------

    def maybe_prune(self) -> int:
        """A pass of ``prune`` if the last one was ``PRUNE_EVERY_MS`` ago or more."""
        now = self.clock()
        if not self.retention_ms or now < self._next_prune:
            return 0
        self._next_prune = now + PRUNE_EVERY_MS
        return self.prune()

    def prune(self) -> int:
        """Remove events delivered or given up more than the retention ago, in up to
        ``prune_batches`` transactions of ``prune_batch`` events; returns how many."""
        if not self.retention_ms:
            return 0
        removed = 0
        for _ in range(self.prune_batches):
            batch = self._prune_batch(self.clock() - self.retention_ms)
            removed += batch
            if batch < self.prune_batch:
                break
        self.pruned += removed
        return removed

    def _prune_batch(self, before: int) -> int:
        return int(
            self._write(
                lambda tx: outbox.prune(tx.conn, settled_before=before, limit=self.prune_batch)
            )
        )

    # -- bookkeeping ---------------------------------------------------------------------

    def release_dead_owners(self) -> None:
        """Free the leases of dispatchers on this host whose process is gone (a restart after
        a crash resumes at once instead of waiting for their leases to run out)."""

        def dead(owner: str) -> bool:
            host, _, rest = owner.partition("/")
            pid_text = rest.partition("/")[0]
            if host != self.host or not pid_text.isdigit() or owner in _RUNNING:
                return False
            return owner != self.owner and (int(pid_text) == self.pid or not _alive(int(pid_text)))

        def work(tx: Tx) -> None:
            outbox.release_owners(tx.conn, [o for o in outbox.lease_owners(tx.conn) if dead(o)])

        self._write(work)

    def health(self) -> dict[str, int]:
        with self.store.read() as conn:
            found = outbox.counts(conn)
        mine = {"delivered": self.delivered, "handler_errors": self.handler_errors}
        return {**found, **mine, "pruned": self.pruned}

    def _write(self, work: Callable[[Tx], Any]) -> Any:
        return self.store.transact(work, actor="modelyard-dispatcher")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True
