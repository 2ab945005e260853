"""Which project a request's subject belongs to: a run, an evaluation, a model version or any
entity by URN. ``None`` means the subject does not exist (the route then answers 404 itself);
``SITE`` means it belongs to no project (models and datasets are site-wide catalog entries)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Connection, select, tuple_

from modelyard.errors import InvalidInput
from modelyard.metadata import tables as t
from modelyard.metadata.store import Store
from modelyard.metadata.urn import Urn, parse_urn

SITE = -1
PEOPLE = -2  # users, groups and tokens: for site admins
PEOPLE_TYPES = frozenset({"user", "group", "token"})
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
    """The project an entity belongs to, as :func:`projects_of_urns` answers for one."""
    with store.read() as conn:
        return projects_of_urns(conn, [urn]).get(urn)


# Entities of no project that every signed-in user may see; users, groups and tokens are for
# site admins.
CATALOG = frozenset({"model", "dataset", "feature", "deployment"})


def projects_of_urns(conn: Connection, urns: Iterable[str]) -> dict[str, int | None]:
    """The project of each entity: ``SITE`` for the catalog, ``PEOPLE`` for users, groups
    and tokens, None for one that is not there or not well formed; in a few queries however
    many there are."""
    parsed: dict[str, Urn] = {}
    for urn in set(urns):
        try:
            parsed[urn] = parse_urn(urn)
        except InvalidInput:
            continue
    runs = {u: p.parts[0] for u, p in parsed.items() if p.type in RUN_OWNED}
    evaluations = {u: p.parts[0] for u, p in parsed.items() if p.type == "evaluation"}
    versions = {
        u: (p.parts[0], int(p.parts[1]))
        for u, p in parsed.items()
        if p.type == "model_version" and len(p.parts) == 2 and p.parts[1].isdigit()
        and len(p.parts[1]) < 10
    }  # fmt: skip
    of_run: dict[str, int] = {}
    ids = sorted(set(runs.values()))
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        query = select(t.run.c.id, t.run.c.project_id).where(t.run.c.id.in_(chunk))
        of_run.update({r: int(p) for r, p in conn.execute(query)})
    of_evaluation: dict[str, int] = {}
    wanted = sorted(set(evaluations.values()))
    for start in range(0, len(wanted), 500):
        query = (
            select(t.evaluation.c.id, t.run.c.project_id)
            .join(t.run, t.run.c.pk == t.evaluation.c.run_pk)
            .where(t.evaluation.c.id.in_(wanted[start : start + 500]))
        )
        of_evaluation.update({e: int(p) for e, p in conn.execute(query)})
    of_version: dict[tuple[str, int], int] = {}
    pairs = sorted(set(versions.values()))
    for start in range(0, len(pairs), 500):
        mv = t.model_version
        query = (
            select(mv.c.model, mv.c.version, t.run.c.project_id)
            .join(t.run, t.run.c.pk == mv.c.run_pk)
            .where(tuple_(mv.c.model, mv.c.version).in_(pairs[start : start + 500]))
        )
        for row in conn.execute(query):
            of_version[str(row[0]), int(row[1])] = int(row[2])
    found: dict[str, int | None] = {}
    for urn, p in parsed.items():
        if p.type == "project":
            found[urn] = int(p.parts[0]) if p.parts[0].isdigit() and len(p.parts[0]) < 10 else None
        elif urn in runs:
            found[urn] = of_run.get(runs[urn])
        elif urn in evaluations:
            found[urn] = of_evaluation.get(evaluations[urn])
        elif urn in versions:
            found[urn] = of_version.get(versions[urn])
        else:
            found[urn] = SITE if p.type in CATALOG else PEOPLE if p.type in PEOPLE_TYPES else None
    return found


def may_see(owner: int | None, readable: frozenset[int] | None) -> bool:
    """Whether a caller who may read ``readable`` (None: everything) may see an entity of
    ``owner`` (as :func:`projects_of_urns` answers)."""
    if readable is None:
        return True
    return owner is not None and (owner == SITE or owner in readable)  # PEOPLE: admins only
