"""The series store: every numeric series (run metrics, entity telemetry) as packed blocks,
keyed by owner and key, with the same reads for every owner (full history, a page of a step or
time range, the latest values) and one way to serialise a history (JSON or Arrow).

A history is read in pages of at most ``MAX_PAGE`` points: each page is found by walking the
blocks in step order and keeping only the points it needs, so a read holds about one page in
memory however long the history, and an Arrow page is written out batch by batch."""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import orjson
import pyarrow as pa
from sqlalchemy import Connection, and_, bindparam, func, insert, or_, select

from modelyard.errors import InvalidInput, NotFound
from modelyard.floats import encode_float
from modelyard.metadata import tables as t
from modelyard.metadata.store import Store, Tx, dialect_insert

Floats = np.ndarray[Any, np.dtype[np.float64]]
Ints = np.ndarray[Any, np.dtype[np.int64]]
Axis = Literal["step", "time"]
Format = Literal["json", "arrow"]
ARROW = "application/vnd.apache.arrow.stream"
# The most points one history response carries: an Arrow page is about 24 MB of columns, a
# JSON page about 5 MB of text. A longer history comes in pages, each naming the next.
MAX_PAGE: dict[Format, int] = {"arrow": 1_000_000, "json": 100_000}


@dataclass(frozen=True, slots=True)
class Owner:
    """Whose series: a run (kind SERIES_RUN, id run.pk) or another entity (SERIES_ENTITY,
    id series_owner.id)."""

    kind: int
    id: int


def run_owner(run_pk: int) -> Owner:
    return Owner(t.SERIES_RUN, run_pk)


@dataclass(frozen=True)
class Points:
    """A validated batch of points as columns, any number of keys."""

    keys: list[str]  # one per point
    values: Floats
    steps: Ints
    timestamps: Ints

    def __len__(self) -> int:
        return len(self.keys)


@dataclass(frozen=True)
class History:
    key: str
    steps: Ints
    timestamps: Ints
    values: Floats


@dataclass(frozen=True)
class Latest:
    step: int
    timestamp: int
    value: float


def key_ids(tx: Tx, store: Store, names: set[str]) -> dict[str, int]:
    """Intern key names; the mapping never changes once committed, so it is cached."""
    ids = {k: store.metric_keys[k] for k in names if k in store.metric_keys}
    missing = sorted(names - ids.keys())
    if missing:
        ins = dialect_insert(tx.conn, t.series_key).on_conflict_do_nothing()
        tx.conn.execute(ins, [{"name": k} for k in missing])
        found = tx.conn.execute(
            select(t.series_key.c.name, t.series_key.c.id).where(t.series_key.c.name.in_(missing))
        ).all()
        fresh = {name: int(key_id) for name, key_id in found}
        tx.new_metric_keys.update(fresh)
        ids.update(fresh)
    return ids


_SL = t.series_latest
_SB = t.series_block
_LATEST: dict[str, Any] = {}
_BLOCK_INSERT = insert(_SB)


def _latest_upsert(tx: Tx) -> Any:
    """Move a latest value forward only for a higher step, or the same step and a later time."""
    name = tx.conn.dialect.name
    if name not in _LATEST:
        ins = dialect_insert(tx.conn, _SL)
        newer = or_(
            ins.excluded.step > _SL.c.step,
            and_(ins.excluded.step == _SL.c.step, ins.excluded.timestamp >= _SL.c.timestamp),
        )
        _LATEST[name] = ins.on_conflict_do_update(
            index_elements=[_SL.c.owner_kind, _SL.c.owner_id, _SL.c.key_id],
            set_={c: ins.excluded[c] for c in ("step", "timestamp", "value", "is_nan")},
            where=newer,
        )
    return _LATEST[name]


def _block(owner: Owner, key_id: int, steps: Ints, stamps: Ints, values: Floats) -> dict[str, Any]:
    return {
        "owner_kind": owner.kind,
        "owner_id": owner.id,
        "key_id": key_id,
        "count": len(steps),
        "min_step": int(steps[0]),
        "max_step": int(steps[-1]),
        "min_time": int(stamps.min()),
        "max_time": int(stamps.max()),
        "step_data": steps.astype("<i8").tobytes(),
        "timestamp_data": stamps.astype("<i8").tobytes(),
        "value_data": values.astype("<f8").tobytes(),
    }


def append(tx: Tx, store: Store, owner: Owner, cols: Points) -> None:
    """Store a batch as one block per key, in history order, and move latest values forward.
    The caller holds the owner's lock (a run's row), so no writer races the compaction."""
    if not len(cols):
        return
    ids = key_ids(tx, store, set(cols.keys))
    keys = np.fromiter((ids[k] for k in cols.keys), np.int64, len(cols))
    order = np.lexsort((cols.timestamps, cols.steps, keys))
    sorted_keys = keys[order]
    starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
    ends = np.r_[starts[1:], len(order)]
    blocks, latest = [], []
    for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
        idx = order[a:b]
        steps, stamps, values = cols.steps[idx], cols.timestamps[idx], cols.values[idx]
        key_id = int(sorted_keys[a])
        blocks.append(_block(owner, key_id, steps, stamps, values))
        last = float(values[-1])
        latest.append(
            {
                "owner_kind": owner.kind,
                "owner_id": owner.id,
                "key_id": key_id,
                "step": int(steps[-1]),
                "timestamp": int(stamps[-1]),
                "value": 0.0 if math.isnan(last) else last,
                "is_nan": math.isnan(last),
            }
        )
    tx.conn.execute(_BLOCK_INSERT, blocks)
    tx.conn.execute(_latest_upsert(tx), latest)
    due = _due_for_compaction(store, owner, blocks)
    if due:
        compact(tx, owner, due)


# Many tiny batches (a loop logging a few points at a time) would leave a history as thousands
# of tiny blocks. Every COMPACT_AFTER small blocks a process writes for a key, it looks: when
# the key's latest blocks hold COMPACT_AFTER small ones in a row, they are merged into one, in
# the same transaction.
SMALL_BLOCK = 256
COMPACT_AFTER = 32


def _due_for_compaction(store: Store, owner: Owner, blocks: list[dict[str, Any]]) -> list[int]:
    due = []
    for b in blocks:
        if b["count"] < SMALL_BLOCK:
            counter = (owner.kind, owner.id, b["key_id"])
            seen = store.small_blocks.get(counter, 0) + 1
            store.small_blocks[counter] = seen % COMPACT_AFTER
            if seen >= COMPACT_AFTER:
                due.append(b["key_id"])
    if len(store.small_blocks) > 100_000:
        store.small_blocks.clear()
    return due


def _owned(owner: Owner) -> Any:
    return and_(_SB.c.owner_kind == owner.kind, _SB.c.owner_id == owner.id)


def compact(tx: Tx, owner: Owner, keys: list[int]) -> None:
    """Merge each key's trailing run of small blocks (those after its last large block) into
    one block; merging only a trailing run keeps points with equal step and timestamp in the
    order they arrived."""
    large = _SB.alias("large")
    last_large = (
        select(func.coalesce(func.max(large.c.id), 0))
        .where(
            large.c.owner_kind == _SB.c.owner_kind,
            large.c.owner_id == _SB.c.owner_id,
            large.c.key_id == _SB.c.key_id,
            large.c.count >= SMALL_BLOCK,
        )
        .scalar_subquery()
    )
    trailing = and_(_owned(owner), _SB.c.id > last_large)
    counts = tx.conn.execute(
        select(_SB.c.key_id, func.count())
        .where(trailing, _SB.c.key_id.in_(keys))
        .group_by(_SB.c.key_id)
    ).all()
    for key_id, count in counts:
        if count >= COMPACT_AFTER:
            rows = tx.conn.execute(
                select(_SB.c.id, _SB.c.step_data, _SB.c.timestamp_data, _SB.c.value_data)
                .where(trailing, _SB.c.key_id == key_id)
                .order_by(_SB.c.id)
            ).all()
            steps, stamps, values = _decode(rows, 1)
            order = np.lexsort((stamps, steps))  # stable: ties keep their arrival order
            tx.conn.execute(_SB.delete().where(_SB.c.id.in_([r.id for r in rows])))
            block = _block(owner, key_id, steps[order], stamps[order], values[order])
            tx.conn.execute(_BLOCK_INSERT, [block])


def _decode(rows: Sequence[Any], first: int = 0) -> tuple[Ints, Ints, Floats]:
    """The concatenated columns of block rows whose data columns start at ``first``."""
    steps = np.frombuffer(b"".join(r[first] for r in rows), dtype="<i8").astype(np.int64)
    stamps = np.frombuffer(b"".join(r[first + 1] for r in rows), dtype="<i8").astype(np.int64)
    values = np.frombuffer(b"".join(r[first + 2] for r in rows), dtype="<f8").astype(np.float64)
    return steps, stamps, values


_KEY_ID = select(t.series_key.c.id).where(t.series_key.c.name == bindparam("key"))
_BLOCKS = (
    select(_SB.c.step_data, _SB.c.timestamp_data, _SB.c.value_data)
    .where(
        _SB.c.owner_kind == bindparam("kind"),
        _SB.c.owner_id == bindparam("owner"),
        _SB.c.key_id == bindparam("key_id"),
    )
    .order_by(_SB.c.id)
)
_BOUNDS: dict[Axis, tuple[Any, Any]] = {
    "step": (_SB.c.min_step, _SB.c.max_step),
    "time": (_SB.c.min_time, _SB.c.max_time),
}


def read_history(
    conn: Connection,
    owner: Owner,
    key: str,
    *,
    axis: Axis = "step",
    lo: int | None = None,
    hi: int | None = None,
    what: str = "this run",
) -> History:
    """Every point of a series, ordered by step then timestamp (then arrival); with ``lo``
    or ``hi``, only those whose step (or time) lies in [lo, hi], read from the blocks that
    can hold them."""
    key_id = conn.execute(_KEY_ID, {"key": key}).scalar_one_or_none()
    if key_id is None:
        raise NotFound(f"metric {key!r} was never logged")
    query, bind = _BLOCKS, {"kind": owner.kind, "owner": owner.id, "key_id": key_id}
    low, high = _BOUNDS[axis]
    if lo is not None:
        query = query.where(high >= lo)
    if hi is not None:
        query = query.where(low <= hi)
    rows = conn.execute(query, bind).all()
    if not rows and (query is _BLOCKS or not conn.execute(_BLOCKS.limit(1), bind).first()):
        raise NotFound(f"metric {key!r} was not logged in {what}")
    steps, stamps, values = _decode(rows)
    if len(rows) > 1 and not _in_order(steps, stamps):
        order = np.lexsort((stamps, steps))
        steps, stamps, values = steps[order], stamps[order], values[order]
    if lo is not None or hi is not None:
        xs = steps if axis == "step" else stamps
        keep = np.ones(len(xs), dtype=bool)
        if lo is not None:
            keep &= xs >= lo
        if hi is not None:
            keep &= xs <= hi
        steps, stamps, values = steps[keep], stamps[keep], values[keep]
    return History(key, steps, stamps, values)


def _in_order(steps: Ints, stamps: Ints) -> bool:
    ds = np.diff(steps)
    return bool(np.all((ds > 0) | ((ds == 0) & (np.diff(stamps) >= 0))))


def latest(conn: Connection, owner: Owner, keys: Iterable[str] | None = None) -> dict[str, Latest]:
    """The latest point of each key of an owner (highest step, then latest time)."""
    query = (
        select(t.series_key.c.name, _SL.c.step, _SL.c.timestamp, _SL.c.value, _SL.c.is_nan)
        .join(t.series_key, t.series_key.c.id == _SL.c.key_id)
        .where(_SL.c.owner_kind == owner.kind, _SL.c.owner_id == owner.id)
        .order_by(t.series_key.c.name)
    )
    if keys is not None:
        query = query.where(t.series_key.c.name.in_(list(keys)))
    return {
        name: Latest(step, stamp, math.nan if is_nan else value)
        for name, step, stamp, value, is_nan in conn.execute(query).all()
    }


# --- pages of a history


_TOKEN = re.compile(r"-?\d{1,19}(\.-?\d{1,19}){3}")


@dataclass(frozen=True, slots=True)
class Cursor:
    """A point's place in a history's order: step, timestamp, then arrival (the id of the
    block that holds it and its index there). A page token names the last point sent."""

    step: int
    timestamp: int
    block: int
    index: int

    def token(self) -> str:
        return f"{self.step}.{self.timestamp}.{self.block}.{self.index}"

    @classmethod
    def parse(cls, token: str) -> Cursor:
        if not _TOKEN.fullmatch(token):
            raise InvalidInput(
                f"page_token {token!r:.80} is not one a history page returned; "
                "ask for the first page without it"
            )
        step, stamp, block, index = (int(p) for p in token.split("."))
        return cls(step, stamp, block, index)


@dataclass(frozen=True)
class Page:
    """Points of a history in order, as the parts of blocks they were read from (no copy of
    them is made when the blocks are in order), and where the next page starts (None: no
    more)."""

    key: str
    parts: list[_Cols]
    next: Cursor | None

    @property
    def history(self) -> History:
        cols = _Cols.join(self.parts) if self.parts else _empty()
        return History(self.key, cols.steps, cols.stamps, cols.values)


@dataclass(frozen=True)
class PageRequest:
    """What a history read asks for: a range on an axis, a page size and where to start."""

    limit: int
    axis: Axis = "step"
    lo: int | None = None
    hi: int | None = None
    after: Cursor | None = None


def page_request(
    fmt: Format,
    *,
    axis: Axis = "step",
    start: int | None = None,
    end: int | None = None,
    limit: int | None = None,
    page_token: str | None = None,
) -> PageRequest:
    """A history read's parameters checked: start not after end, a page size within the
    format's maximum, a page token that a page returned."""
    if start is not None and end is not None and start > end:
        raise InvalidInput(f"start ({start}) is after end ({end})")
    after = None if page_token is None else Cursor.parse(page_token)
    return PageRequest(check_limit(limit, fmt), axis, start, end, after)


def check_limit(limit: int | None, fmt: Format) -> int:
    """The page size asked for, or the most a page of ``fmt`` may hold; a larger one is
    refused, never cut down."""
    most = MAX_PAGE[fmt]
    if limit is None:
        return most
    if not 1 <= limit <= most:
        raise InvalidInput(
            f"limit must be between 1 and {most} points for format={fmt} (got {limit}; "
            f"Arrow pages hold up to {MAX_PAGE['arrow']}, JSON pages {MAX_PAGE['json']}); "
            "a longer history comes in pages: pass each page's next_page_token back"
        )
    return limit


@dataclass(slots=True)
class _Cols:
    """Points with their arrival (block id, index in the block), to order and cut a page."""

    steps: Ints
    stamps: Ints
    values: Floats
    blocks: Ints
    index: np.ndarray[Any, np.dtype[np.int32]]

    def __len__(self) -> int:
        return len(self.steps)

    def take(self, sel: Any) -> _Cols:
        return _Cols(
            self.steps[sel], self.stamps[sel], self.values[sel], self.blocks[sel], self.index[sel]
        )

    @staticmethod
    def join(parts: list[_Cols]) -> _Cols:
        if len(parts) == 1:
            return parts[0]
        return _Cols(*(np.concatenate([getattr(p, f) for p in parts]) for f in _Cols.__slots__))

    def ordered(self) -> bool:
        ds = np.diff(self.steps)
        if bool((ds < 0).any()):
            return False
        ties = np.flatnonzero(ds == 0)  # equal steps: then by time, block id, index
        a, b = ties, ties + 1
        dt = self.stamps[b] - self.stamps[a]
        db = self.blocks[b] - self.blocks[a]
        di = self.index[b] - self.index[a]
        return bool(np.all((dt > 0) | ((dt == 0) & ((db > 0) | ((db == 0) & (di > 0))))))

    def sorted(self) -> _Cols:
        if self.ordered():
            return self
        return self.take(np.lexsort((self.index, self.blocks, self.stamps, self.steps)))

    def place(self, i: int) -> tuple[int, int, int, int]:
        return (
            int(self.steps[i]), int(self.stamps[i]), int(self.blocks[i]), int(self.index[i])
        )  # fmt: skip


def _first(parts: list[_Cols], n: int) -> list[_Cols]:
    """The first ``n`` points of ``parts`` (each in order) in history order: the parts cut
    as they are when they follow one another, else merged and sorted."""
    if all(a.place(-1) < b.place(0) for a, b in itertools.pairwise(parts)):
        out = []
        for part in parts:
            if n <= 0:
                break
            out.append(part if len(part) <= n else part.take(slice(0, n)))
            n -= len(part)
        return out
    return [_Cols.join(parts).sorted().take(slice(0, n))]


_META_CHUNK = 1024  # block descriptions fetched at a time
_GROUP_POINTS = 65_536  # points of blocks loaded in one query (at least one block)
_GROUP_BLOCKS = 256


def _block_list(conn: Connection, query: Any, bind: dict[str, Any]) -> Iterator[Any]:
    """(id, count, min_step) of the blocks ``query`` selects, by lowest step then id, fetched
    a chunk at a time."""
    last = None
    while True:
        q = query
        if last is not None:
            q = q.where(
                or_(
                    _SB.c.min_step > last.min_step,
                    and_(_SB.c.min_step == last.min_step, _SB.c.id > last.id),
                )
            )
        rows = conn.execute(q.limit(_META_CHUNK), bind).all()
        yield from rows
        if len(rows) < _META_CHUNK:
            return
        last = rows[-1]


def _groups(blocks: Iterator[Any]) -> Iterator[list[Any]]:
    group: list[Any] = []
    points = 0
    for b in blocks:
        group.append(b)
        points += b.count
        if points >= _GROUP_POINTS or len(group) >= _GROUP_BLOCKS:
            yield group
            group, points = [], 0
    if group:
        yield group


_DATA = select(_SB.c.id, _SB.c.step_data, _SB.c.timestamp_data, _SB.c.value_data)


def _wanted(
    rows: Sequence[Any], axis: Axis, lo: int | None, hi: int | None, after: Cursor | None
) -> _Cols | None:
    """The points of a group of blocks (rows ordered by id) inside [lo, hi] on ``axis`` and
    after the cursor, in history order: one vectorised pass over the whole group."""
    steps = np.frombuffer(b"".join(r.step_data for r in rows), dtype="<i8")
    stamps = np.frombuffer(b"".join(r.timestamp_data for r in rows), dtype="<i8")
    values = np.frombuffer(b"".join(r.value_data for r in rows), dtype="<f8")
    n = len(steps)
    blocks: Ints
    if len(rows) == 1:
        blocks = np.broadcast_to(np.int64(rows[0].id), (n,))
        index = np.arange(n, dtype=np.int32)
    else:
        counts = np.array([len(r.step_data) // 8 for r in rows], dtype=np.int64)
        blocks = np.repeat(np.array([r.id for r in rows], dtype=np.int64), counts)
        index = (np.arange(n) - np.repeat(np.cumsum(counts) - counts, counts)).astype(np.int32)
    if n > 1 and not _in_order(steps, stamps):
        # stable: points at one step and time stay in (block, index) order, i.e. arrival
        order = np.lexsort((stamps, steps))
        steps, stamps, values = steps[order], stamps[order], values[order]
        blocks, index = blocks[order], index[order]
    xs = steps if axis == "step" else stamps
    first, last = (steps[0], steps[-1]) if axis == "step" else (stamps.min(), stamps.max())
    inside = (lo is None or first >= lo) and (hi is None or last <= hi)
    beyond = after is None or (steps[0], stamps[0]) > (after.step, after.timestamp)
    if inside and beyond:  # the common case: the group is wanted whole, and is not copied
        return _Cols(steps, stamps, values, blocks, index)
    keep = np.ones(n, dtype=bool)
    if lo is not None:
        keep &= xs >= lo
    if hi is not None:
        keep &= xs <= hi
    if after is not None:
        later = (steps > after.step) | ((steps == after.step) & (stamps > after.timestamp))
        # points at the cursor's step and time: only those that came after its point
        tie = (steps == after.step) & (stamps == after.timestamp)
        tie &= (blocks > after.block) | ((blocks == after.block) & (index > after.index))
        keep &= later | tie
    sel = np.flatnonzero(keep)
    if not len(sel):
        return None
    return _Cols(steps[sel], stamps[sel], values[sel], blocks[sel], index[sel])


def read_page(
    conn: Connection, owner: Owner, key: str, req: PageRequest, *, what: str = "this run"
) -> Page:
    """Up to ``limit`` points of a series in history order (step, timestamp, arrival), only
    those whose step (or time) lies in [lo, hi] and that come after the cursor ``after``;
    and the cursor of the page's last point when more remain.

    Blocks are visited by lowest step; once ``limit + 1`` points are held, a block whose
    lowest step is beyond the last of them cannot hold an earlier point, so the walk stops.
    At most about ``limit`` points plus one group of blocks are held at any time."""
    limit, axis, lo, hi, after = req.limit, req.axis, req.lo, req.hi, req.after
    key_id = conn.execute(_KEY_ID, {"key": key}).scalar_one_or_none()
    if key_id is None:
        raise NotFound(f"metric {key!r} was never logged")
    bind = {"kind": owner.kind, "owner": owner.id, "key_id": key_id}
    query = (
        select(_SB.c.id, _SB.c.count, _SB.c.min_step)
        .where(
            _SB.c.owner_kind == bindparam("kind"),
            _SB.c.owner_id == bindparam("owner"),
            _SB.c.key_id == bindparam("key_id"),
        )
        .order_by(_SB.c.min_step, _SB.c.id)
    )
    low, high = _BOUNDS[axis]
    if lo is not None:
        query = query.where(high >= lo)
    if hi is not None:
        query = query.where(low <= hi)
    if after is not None:
        query = query.where(_SB.c.max_step >= after.step)
    need = limit + 1  # one more than a page: whether more remain
    held: list[_Cols] = []
    count = 0
    last_step: int | None = None  # the step of the need-th point, once that many are held
    seen = False
    for group in _groups(_block_list(conn, query, bind)):
        seen = True
        if last_step is not None and group[0].min_step > last_step:
            break
        ids = [b.id for b in group if last_step is None or b.min_step <= last_step]
        rows = conn.execute(_DATA.where(_SB.c.id.in_(ids)).order_by(_SB.c.id)).all()
        part = _wanted(rows, axis, lo, hi, after)
        del rows
        if part is not None:
            held.append(part)
            count += len(part)
        if count >= need:
            held, count = _first(held, need), need
            last_step = int(held[-1].steps[-1])
    if not seen and not conn.execute(_BLOCKS.limit(1), bind).first():
        raise NotFound(f"metric {key!r} was not logged in {what}")
    parts = _first(held, limit) if held else []
    nxt = Cursor(*parts[-1].place(-1)) if count > limit else None
    return Page(key, parts, nxt)


@dataclass(frozen=True, slots=True)
class Extent:
    """What a series' block descriptions tell without reading its points."""

    points: int
    min_step: int
    max_step: int


def extent(conn: Connection, owner: Owner, key: str, *, what: str = "this run") -> Extent:
    """How many points a series holds and its lowest and highest step, from its blocks'
    descriptions alone."""
    key_id = conn.execute(_KEY_ID, {"key": key}).scalar_one_or_none()
    if key_id is None:
        raise NotFound(f"metric {key!r} was never logged")
    points, low, high = conn.execute(
        select(func.sum(_SB.c.count), func.min(_SB.c.min_step), func.max(_SB.c.max_step)).where(
            _owned(owner), _SB.c.key_id == key_id
        )
    ).one()
    if points is None:
        raise NotFound(f"metric {key!r} was not logged in {what}")
    return Extent(int(points), int(low), int(high))


def run_extents(conn: Connection, run_ids: Sequence[str]) -> dict[str, dict[str, Extent]]:
    """Per run id, per metric key: the metric's extent, for every metric of every run named,
    in one query over the blocks' descriptions."""
    query = (
        select(
            t.run.c.id,
            t.series_key.c.name,
            func.sum(_SB.c.count),
            func.min(_SB.c.min_step),
            func.max(_SB.c.max_step),
        )
        .join(_SB, and_(_SB.c.owner_kind == t.SERIES_RUN, _SB.c.owner_id == t.run.c.pk))
        .join(t.series_key, t.series_key.c.id == _SB.c.key_id)
        .where(t.run.c.id.in_(list(run_ids)))
        .group_by(t.run.c.id, t.series_key.c.name)
    )
    out: dict[str, dict[str, Extent]] = {run_id: {} for run_id in run_ids}
    for run_id, key, points, low, high in conn.execute(query):
        out[run_id][key] = Extent(int(points), int(low), int(high))
    return out


STREAM_CHUNK = 262_144  # points held at a time by a walk through a whole history


def stream(
    conn: Connection, owner: Owner, key: str, *, chunk: int | None = None, what: str = "this run"
) -> Iterator[History]:
    """Every point of a series in history order (step, timestamp, arrival), as consecutive
    pieces: read a page of at most ``chunk`` points at a time, so about one page is held
    however long the history."""
    size = chunk or STREAM_CHUNK
    after = None
    while True:
        page = read_page(conn, owner, key, PageRequest(size, after=after), what=what)
        for part in page.parts:
            yield History(key, part.steps, part.stamps, part.values)
        if page.next is None:
            return
        after = page.next


def _empty() -> _Cols:
    none = np.empty(0, dtype=np.int64)
    return _Cols(none, none, np.empty(0), none, np.empty(0, dtype=np.int32))


ARROW_SCHEMA = pa.schema([("step", pa.int64()), ("timestamp", pa.int64()), ("value", pa.float64())])
ARROW_BATCH = 131_072  # rows per record batch of a streamed page


class _Chunks:
    """A write-only file for the Arrow writer: what it writes is taken away in pieces."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.closed = False

    def write(self, data: Any) -> int:
        self.parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True

    def take(self) -> list[bytes]:
        out, self.parts = self.parts, []
        return out


def arrow_stream(page: Page) -> Iterator[bytes]:
    """A page as an Arrow IPC stream (step, timestamp, value), written from the blocks' parts
    a record batch at a time (at most ``ARROW_BATCH`` rows; small parts are gathered into one
    batch), so no whole copy of the page is built."""
    out = _Chunks()
    writer = pa.ipc.new_stream(out, ARROW_SCHEMA)
    yield from out.take()
    pending: list[_Cols] = []
    rows = 0
    pieces = (
        part.take(slice(at, at + ARROW_BATCH))
        for part in page.parts
        for at in range(0, len(part), ARROW_BATCH)
    )
    for piece in itertools.chain(pieces, [None]):
        if pending and (piece is None or rows + len(piece) > ARROW_BATCH):
            columns = [
                getattr(pending[0], c)
                if len(pending) == 1
                else np.concatenate([getattr(p, c) for p in pending])
                for c in ("steps", "stamps", "values")
            ]
            writer.write_batch(pa.record_batch(columns, schema=ARROW_SCHEMA))
            pending, rows = [], 0
            yield from out.take()
        if piece is not None:
            pending.append(piece)
            rows += len(piece)
    writer.close()
    yield from out.take()


def page_json(page: Page) -> bytes:
    """A page as JSON: key, steps, timestamps, values (NaN and infinities as the strings
    "NaN", "Infinity", "-Infinity") and next_page_token (null on the last page)."""
    hist = page.history
    values: list[float | str] = hist.values.tolist()
    for i in np.flatnonzero(~np.isfinite(hist.values)).tolist():
        values[i] = encode_float(values[i])  # type: ignore[arg-type]
    body = {
        "key": hist.key,
        "steps": hist.steps,
        "timestamps": hist.timestamps,
        "values": values,
        "next_page_token": None if page.next is None else page.next.token(),
    }
    return orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)
