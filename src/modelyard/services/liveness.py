"""Whether a run's client is still alive: heartbeats, and the sweep that marks runs lost.

A client heartbeats from a background thread; any write to the run by its client counts as
well (see :func:`modelyard.services.runs.sign_of_life`). A running run not heard from for
``lost_after_ms`` becomes ``lost`` (its client was killed, or cannot reach the server); it is
running again as soon as its client is heard from.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy import select, update

from modelyard.errors import InvalidState
from modelyard.metadata import tables as t
from modelyard.metadata.aspects import RunState
from modelyard.metadata.store import Store, Tx, now_ms
from modelyard.metadata.urn import run_urn
from modelyard.schemas import RunPublic
from modelyard.services.periodic import Periodic
from modelyard.services.runs import TERMINAL, get_run, locked_run, sign_of_life

log = logging.getLogger("modelyard.runs")

# Who the change log names for a run marked lost.
SWEEP_ACTOR = "modelyard-liveness"
# Runs marked lost per transaction (a sweep after a long outage may find many).
SWEEP_BATCH = 500
# The sweep looks at least this often, and at least four times per lost-after period.
SWEEP_EVERY_S = 60.0


def heartbeat(store: Store, *, run_id: str, actor: str) -> RunPublic:
    """The run's client is alive: its last heartbeat is now, and a lost run is running again.
    A run that has ended is left as it is, with a 409 saying so."""

    def work(tx: Tx) -> None:
        row = locked_run(tx, run_id)
        if row.status in TERMINAL:
            raise InvalidState(
                f"run {run_id} has ended ({row.status}); it takes no more heartbeats"
            )
        sign_of_life(tx, row, refresh_ms=0)

    store.transact(work, actor=actor)
    return get_run(store, run_id=run_id)


def sweep_lost_runs(store: Store, *, lost_after_ms: int, now: int | None = None) -> int:
    """Mark lost every running run not heard from for ``lost_after_ms`` (as of ``now``), each
    with a new run_state version (a change and an event); returns how many. Up to
    ``SWEEP_BATCH`` runs per transaction."""
    cutoff = (now if now is not None else now_ms()) - lost_after_ms
    total = 0
    while True:
        marked = store.transact(lambda tx: _mark_lost(tx, cutoff), actor=SWEEP_ACTOR)
        total += marked
        if marked < SWEEP_BATCH:
            return total


def _mark_lost(tx: Tx, cutoff: int) -> int:
    r = t.run
    query = (
        select(r.c.pk, r.c.id, r.c.start_time)
        .where(r.c.status == "running", r.c.last_heartbeat < cutoff)
        .order_by(r.c.last_heartbeat)
        .limit(SWEEP_BATCH)
    )
    if tx.is_postgres:
        # A run locked by a write is being heard from: pass it by rather than wait.
        query = query.with_for_update(skip_locked=True)
    rows = tx.conn.execute(query).all()
    if not rows:
        return 0
    tx.conn.execute(update(r).where(r.c.pk.in_([row.pk for row in rows])).values(status="lost"))
    for row in rows:
        tx.put_aspect(run_urn(row.id), RunState(status="lost", start_time=row.start_time))
    return len(rows)


def silent_for(run: RunPublic, *, stale_after_ms: int, now: int | None = None) -> int | None:
    """How long (ms) a running run has gone without a sign of life from its client, when that
    is longer than ``stale_after_ms``: the run is possibly stale, though not yet lost. None for
    a run heard from since, one that is not running, or when ``stale_after_ms`` is 0."""
    if run.status != "running" or stale_after_ms <= 0:
        return None
    heard = run.last_heartbeat if run.last_heartbeat is not None else run.start_time
    silence = (now if now is not None else now_ms()) - heard
    return silence if silence > stale_after_ms else None


def sweep_interval(lost_after_s: float) -> float:
    return min(SWEEP_EVERY_S, lost_after_s / 4)


class LostRunSweeper(Periodic):
    """Marks silent runs lost at start and every ``min(60 s, lost_after / 4)``; nothing at
    all when ``lost_after_s`` is 0."""

    name = "modelyard-liveness"
    failure = "could not look for runs whose client stopped answering"

    def __init__(
        self, store: Store, lost_after_s: float, clock: Callable[[], int] = now_ms
    ) -> None:
        super().__init__(sweep_interval(lost_after_s) if lost_after_s > 0 else SWEEP_EVERY_S)
        self.store, self.lost_after_s, self.clock = store, lost_after_s, clock

    def enabled(self) -> bool:
        return self.lost_after_s > 0

    def work(self) -> int:
        lost = sweep_lost_runs(
            self.store, lost_after_ms=int(self.lost_after_s * 1000), now=self.clock()
        )
        if lost:
            log.info("%d run(s) not heard from for %g s are now lost", lost, self.lost_after_s)
        return lost
