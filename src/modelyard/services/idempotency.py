"""Idempotency keys of batches: the key is kept with a digest of what the batch holds, so the
same batch again is a no-op and another batch under the same key is a 409 naming what differs."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

import numpy as np
import orjson
from sqlalchemy import Table, select

from modelyard.errors import Conflict
from modelyard.metadata.store import Tx, dialect_insert
from modelyard.services.series_store import Points

PARTS = ("params", "tags", "metrics")
WIDTH = 16  # hex characters of each part's digest; three parts fit the 64-character column


def _hex(*chunks: bytes) -> str:
    h = hashlib.blake2b(digest_size=WIDTH // 2)
    for chunk in chunks:
        h.update(len(chunk).to_bytes(8, "little"))
        h.update(chunk)
    return h.hexdigest()


def batch_digest(params: dict[str, str], tags: dict[str, str], points: Points, now: int) -> str:
    """A digest per part of a parsed batch. Timestamps the server filled in with ``now`` are
    left out, so a retry sent later without timestamps digests the same."""
    stamps = np.where(points.timestamps == now, np.int64(-1), points.timestamps)
    metrics = _hex(
        orjson.dumps(points.keys),
        np.ascontiguousarray(points.values, dtype=np.float64).tobytes(),
        np.ascontiguousarray(points.steps, dtype=np.int64).tobytes(),
        np.ascontiguousarray(stamps, dtype=np.int64).tobytes(),
    )
    sort = orjson.OPT_SORT_KEYS
    return _hex(orjson.dumps(params, option=sort)) + _hex(orjson.dumps(tags, option=sort)) + metrics


def first_use(
    tx: Tx, table: Table, where: Mapping[str, object], batch_key: str, digest: str | None
) -> bool:
    """Record ``batch_key`` for ``where`` (the owner's columns); False when it was used before
    for the same batch, a 409 when it was used for another one."""
    row = {**where, "batch_key": batch_key, "created_at": tx.now, "digest": digest}
    if tx.conn.execute(dialect_insert(tx.conn, table).on_conflict_do_nothing(), row).rowcount:
        return True
    match = [table.c[k] == v for k, v in where.items()]
    stored = tx.conn.execute(
        select(table.c.digest).where(*match, table.c.batch_key == batch_key)
    ).one()
    if stored.digest is not None and digest is not None and stored.digest != digest:
        differ = [
            part
            for i, part in enumerate(PARTS)
            if stored.digest[i * WIDTH : (i + 1) * WIDTH] != digest[i * WIDTH : (i + 1) * WIDTH]
        ]
        raise Conflict(
            f"this Idempotency-Key was used for a different batch (its {', '.join(differ)}"
            " differ); send a new key for a new batch",
            details=differ,
        )
    return False
