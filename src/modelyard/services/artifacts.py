"""Artifacts of a run: upload (staged, then published with its record), list, download."""

from __future__ import annotations

import mimetypes
import re
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Row, insert, or_, select

from modelyard.artifacts.base import ArtifactStore, Staged, clean_artifact_path
from modelyard.errors import Conflict, InvalidInput, NotFound, PayloadTooLarge
from modelyard.metadata import tables as t
from modelyard.metadata.aspects import ArtifactProperties
from modelyard.metadata.store import Store, Tx
from modelyard.metadata.urn import artifact_urn
from modelyard.schemas import ArtifactPublic
from modelyard.services.runs import active_run, run_row
from modelyard.services.threads import off_loop

KINDS = frozenset({"dataset", "model", "table", "image", "text", "report", "other"})


def artifact_public(run_id: str, row: Row[Any]) -> ArtifactPublic:
    return ArtifactPublic(
        run_id=run_id,
        urn=artifact_urn(run_id, row.path),
        path=row.path,
        step=row.step,
        size=row.size,
        sha256=row.sha256,
        media_type=row.media_type,
        kind=row.kind,
        created_at=row.created_at,
    )


def _check_target(tx: Tx, run_id: str, step: str | None) -> int:
    tx.lock(t.run, t.run.c.id == run_id)  # the run may be ending concurrently
    row = active_run(tx, run_id, "add artifacts")
    if step is not None:
        exists = tx.conn.execute(
            select(t.step.c.name).where(t.step.c.run_pk == row.pk, t.step.c.name == step)
        ).first()
        if exists is None:
            raise NotFound(f"run {run_id} has no step {step!r}")
    return int(row.pk)


async def upload_artifact(
    store: Store,
    artifacts: ArtifactStore,
    *,
    run_id: str,
    path: str,
    chunks: AsyncIterator[bytes],
    max_bytes: int,
    declared_length: str | None = None,
    step: str | None,
    kind: str | None,
    media_type: str | None,
    actor: str,
) -> ArtifactPublic:
    """Stream ``chunks`` to the store as the artifact at ``path`` and record it: refused at
    once when the declared length is over ``max_bytes``, and as soon as the body passes it."""
    if declared_length is not None:
        if not declared_length.isdigit():
            raise InvalidInput("Content-Length must be a whole number")
        if int(declared_length) > max_bytes:
            raise PayloadTooLarge(
                f"artifact of {declared_length} bytes is over the {max_bytes}-byte limit"
            )
    path = clean_artifact_path(path)
    if len(artifact_urn(run_id, path)) > t.MAX_URN:
        raise InvalidInput(
            f"artifact path {path[:40]!r}... is too long once percent-encoded in its URN "
            f"(at most {t.MAX_URN} characters)"
        )
    if kind is not None and kind not in KINDS:
        raise InvalidInput(f"artifact kind must be one of {sorted(KINDS)}, got {kind!r}")
    media = media_type or mimetypes.guess_type(path)[0] or "application/octet-stream"
    if len(media) > t.MAX_NAME:
        raise InvalidInput("media type is too long")
    # Refuse early, before reading a large body, when the run cannot take artifacts.
    await off_loop(store.transact, lambda tx: _check_target(tx, run_id, step), actor=actor)
    staged = await artifacts.stage(run_id, path, chunks, max_bytes=max_bytes)
    committed = False
    try:
        await off_loop(_record, store, artifacts, staged, run_id, path, step, kind, media, actor)
        committed = True
    finally:
        # A failed transaction may have published: withdraw that, so nothing is left that
        # no row points at (and no row was left pointing at nothing, as publish came first).
        await off_loop(artifacts.discard, staged, withdraw=not committed)
    return await off_loop(get_artifact, store, run_id=run_id, path=path)


def _record(
    store: Store,
    artifacts: ArtifactStore,
    staged: Staged,
    run_id: str,
    path: str,
    step: str | None,
    kind: str | None,
    media: str,
    actor: str,
) -> None:
    def work(tx: Tx) -> None:
        run_pk = _check_target(tx, run_id, step)
        record_staged(tx, artifacts, staged, run_pk, run_id, path, step, kind, media)

    store.transact(work, actor=actor)


def record_staged(
    tx: Tx,
    artifacts: ArtifactStore,
    staged: Staged,
    run_pk: int,
    run_id: str,
    path: str,
    step: str | None,
    kind: str | None,
    media: str,
) -> None:
    """Record a staged file as the run's artifact ``path`` and publish it, in ``tx``."""
    existing = tx.conn.execute(
        select(t.artifact).where(t.artifact.c.run_pk == run_pk, t.artifact.c.path == path)
    ).first()
    if existing is not None:
        if existing.sha256 != staged.sha256:
            raise Conflict(
                f"artifact {path!r} already exists with other content; artifacts are immutable"
            )
        return
    clash = _clashing_path(tx, run_pk, path)
    if clash is not None:
        raise Conflict(
            f"artifact path {path!r} clashes with the artifact {clash!r}: "
            "a path cannot be both a file and a folder"
        )
    props = ArtifactProperties(
        run_id=run_id,
        path=path,
        step=step,
        size=staged.size,
        sha256=staged.sha256,
        media_type=media,
        kind=kind,
    )
    row = props.model_dump(exclude={"run_id"})
    tx.conn.execute(insert(t.artifact).values(run_pk=run_pk, created_at=tx.now, **row))
    urn = artifact_urn(run_id, path)
    tx.ensure_entity(urn)
    tx.put_aspect(urn, props)
    # Published before commit: a row never points at content that was not written; the
    # caller withdraws the content when the commit fails.
    artifacts.publish(staged, run_id, path)


def _clashing_path(tx: Tx, run_pk: int, path: str) -> str | None:
    """An artifact of the run that is a folder of ``path``, or inside ``path`` as a folder."""
    parts = path.split("/")
    parents = ["/".join(parts[:i]) for i in range(1, len(parts))]
    a = t.artifact
    found: str | None = tx.conn.execute(
        select(a.c.path)
        .where(
            a.c.run_pk == run_pk,
            or_(a.c.path.in_(parents), a.c.path.startswith(path + "/", autoescape=True)),
        )
        .limit(1)
    ).scalar()
    return found


def get_artifact(store: Store, *, run_id: str, path: str) -> ArtifactPublic:
    with store.read() as conn:
        run = run_row(conn, run_id)
        row = conn.execute(
            select(t.artifact).where(
                t.artifact.c.run_pk == run.pk, t.artifact.c.path == clean_artifact_path(path)
            )
        ).first()
    if row is None:
        raise NotFound(f"run {run_id} has no artifact {path!r}")
    return artifact_public(run_id, row)


def list_artifacts(store: Store, *, run_id: str, prefix: str | None = None) -> list[ArtifactPublic]:
    with store.read() as conn:
        run = run_row(conn, run_id)
        q = select(t.artifact).where(t.artifact.c.run_pk == run.pk).order_by(t.artifact.c.path)
        if prefix:
            q = q.where(t.artifact.c.path.startswith(prefix, autoescape=True))
        return [artifact_public(run_id, r) for r in conn.execute(q)]


@dataclass(frozen=True)
class Download:
    """An artifact to send: its content streamed (all of it, or the one byte range asked
    for), or the store's URL to redirect to. ``span`` is the (first, last) byte sent when a
    range was answered; ``status`` 416 means the range asked for lies outside the content."""

    meta: ArtifactPublic
    chunks: Iterator[bytes] = field(default_factory=lambda: iter(()))
    redirect: str | None = None
    status: int = 200
    span: tuple[int, int] | None = None


class Unsatisfiable(Exception):
    """The byte range asked for lies outside the content."""


_SINGLE_RANGE = re.compile(r"bytes=[ \t]*([0-9]*)-([0-9]*)[ \t]*")


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The (first, last) byte of a single ``Range: bytes=…`` request; None to send the whole
    content (no header, another unit, several ranges, or a malformed one, which RFC 9110 lets
    a server ignore). Raises Unsatisfiable when the range cannot be satisfied. Only ASCII
    digits count: a header is Latin-1 text, where "²" is a digit to ``str.isdigit``."""
    found = _SINGLE_RANGE.fullmatch(header or "")
    if found is None or not any(found.groups()):
        return None
    first, last = found.groups()
    if not first:
        suffix = int(last)  # bytes=-N: the last N bytes
        if not suffix or not size:
            raise Unsatisfiable
        return max(size - suffix, 0), size - 1
    start, end = int(first), int(last) if last else size - 1
    if last and end < start:
        return None
    if start >= size:
        raise Unsatisfiable
    return start, min(end, size - 1)


def download_artifact(
    store: Store,
    artifacts: ArtifactStore,
    *,
    run_id: str,
    path: str,
    redirect: bool = False,
    range_header: str | None = None,
) -> Download:
    """The artifact's content, or a presigned URL when ``redirect`` and the store has one."""
    meta = get_artifact(store, run_id=run_id, path=path)
    if redirect:
        url = artifacts.presigned_url(run_id, meta.path, media_type=meta.media_type)
        if url is not None:
            return Download(meta, redirect=url)
    try:
        span = byte_range(range_header, meta.size)
    except Unsatisfiable:
        return Download(meta, status=416)
    if span is not None:
        first, last = span
        chunks = artifacts.open_stream(run_id, meta.path, start=first, length=last - first + 1)
        return Download(meta, chunks=chunks, status=206, span=span)
    return Download(meta, chunks=artifacts.open_stream(run_id, meta.path))
