"""The change log: every committed change, newest first."""

from __future__ import annotations

from dataclasses import dataclass

from modelyard.metadata.store import Store, change_log_page
from modelyard.schemas import ChangePublic
from modelyard.services.entities import labels_of


@dataclass(frozen=True, slots=True)
class LabelledChanges:
    """A page of the change log and a short label for each entity it names."""

    changes: list[ChangePublic]
    labels: dict[str, str]


def list_changes(
    store: Store,
    *,
    urn: str | None,
    actor: str | None,
    since: int | None,
    before_id: int | None,
    limit: int,
    until: int | None = None,
) -> list[ChangePublic]:
    """The change log, newest first; ``since`` and ``until`` bound it in time (inclusive)."""
    with store.read() as conn:
        rows = change_log_page(
            conn, urn=urn, actor=actor, since=since, until=until, before_id=before_id, limit=limit
        )
    return [ChangePublic(**r) for r in rows]


def labelled_changes(
    store: Store,
    *,
    limit: int,
    urn: str | None = None,
    actor: str | None = None,
    since: int | None = None,
    until: int | None = None,
    before_id: int | None = None,
) -> LabelledChanges:
    """A page of the change log (as ``list_changes``) with its entities' labels, read at once."""
    with store.read() as conn:
        rows = change_log_page(
            conn, urn=urn, actor=actor, since=since, until=until, before_id=before_id, limit=limit
        )
        changes = [ChangePublic(**r) for r in rows]
        labels = labels_of(conn, [c.urn for c in changes])
    return LabelledChanges(changes, labels)
