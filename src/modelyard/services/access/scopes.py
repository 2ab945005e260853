"""Which project a request's subject belongs to: a run, an evaluation, a model version or any
entity by URN. ``None`` means the subject does not exist (the route then answers 404 itself);
``SITE`` means it belongs to no project (models and datasets are site-wide catalog entries)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select

from modelyard.errors import InvalidInput
from modelyard.metadata import tables as t
from modelyard.metadata.store import Store
from modelyard.metadata.urn import parse_urn

SITE = -1
RUN_OWNED = frozenset({"run", "step", "artifact"})


def _one(store: Store, query: object) -> int | None:
    with store.read() as conn:
        found = conn.execute(query).scalar()  # type: ignore[call-overload]
    return None if found is None else int(found)


def project_by_ref(store: Store, ref: str) -> int | None:
    """A project by name, or by id when no project has that name."""
    found = _one(store, select(t.project.c.id).where(t.project.c.name == ref))
    if found is None and ref.isdigit() and len(ref) < 10:
        found = _one(store, select(t.project.c.id).where(t.project.c.id == int(ref)))
    return found


def projects_by_name(store: Store, names: Iterable[str]) -> list[int | None]:
    return [project_by_ref(store, name) for name in names]


def project_of_run(store: Store, run_id: str) -> int | None:
    return _one(store, select(t.run.c.project_id).where(t.run.c.id == run_id))


def project_of_evaluation(store: Store, evaluation_id: str) -> int | None:
    return _one(
        store,
        select(t.run.c.project_id)
        .join(t.evaluation, t.evaluation.c.run_pk == t.run.c.pk)
        .where(t.evaluation.c.id == evaluation_id),
    )


def project_of_version(store: Store, model: str, version: int) -> int | None:
    return _one(
        store,
        select(t.run.c.project_id)
        .join(t.model_version, t.model_version.c.run_pk == t.run.c.pk)
        .where(t.model_version.c.model == model, t.model_version.c.version == version),
    )


def project_of_urn(store: Store, urn: str) -> int | None:
    """The project an entity belongs to, ``SITE`` for site-wide ones (models, datasets,
    users...), ``None`` for a URN that is not well formed."""
    try:
        parsed = parse_urn(urn)
    except InvalidInput:
        return None
    parts = parsed.parts
    if parsed.type == "project":
        return int(parts[0]) if parts[0].isdigit() and len(parts[0]) < 10 else None
    if parsed.type in RUN_OWNED:
        return project_of_run(store, parts[0])
    if parsed.type == "evaluation":
        return project_of_evaluation(store, parts[0])
    if parsed.type == "model_version" and len(parts) == 2 and parts[1].isdigit():
        return project_of_version(store, parts[0], int(parts[1][:10]))
    return SITE
