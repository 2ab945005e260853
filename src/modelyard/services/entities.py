"""Entities and their aspects: datasets and models as catalog entries, an entity's current
aspects and their versions, short labels for URNs, and finding entities by name."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import orjson
from sqlalchemy import Connection, func, select

from modelyard.errors import InvalidInput, NotFound
from modelyard.metadata import tables as t
from modelyard.metadata.aspects import ASPECTS, DatasetProperties, ModelProperties
from modelyard.metadata.store import Store, Tx, aspect_history, dialect_insert, entity_exists
from modelyard.metadata.urn import Urn, dataset_urn, model_urn, parse_urn
from modelyard.schemas import AspectVersion, DatasetIn, ModelIn
from modelyard.services.projects import claim_name, refuse_look_alike
from modelyard.times import utc_text


def put_dataset(tx: Tx, d: DatasetIn) -> str:
    urn = dataset_urn(d.name)
    tx.ensure_entity(urn)
    tx.put_aspect(urn, DatasetProperties(**d.model_dump()))
    ins = dialect_insert(tx.conn, t.dataset)
    cols = {"uri": d.uri, "digest": d.digest, "num_rows": d.num_rows}
    tx.conn.execute(
        ins.values(name=d.name, created_at=tx.now, **cols).on_conflict_do_update(
            index_elements=[t.dataset.c.name], set_=cols
        )
    )
    return urn


def put_model(tx: Tx, m: ModelIn) -> str:
    urn = model_urn(m.name)
    if not entity_exists(tx.conn, [urn]):
        refuse_look_alike("model", m.name, claim_name(tx.conn, "model", m.name))
    if tx.ensure_entity(urn) or m.description:
        tx.put_aspect(urn, ModelProperties(name=m.name, description=m.description))
    return urn


ASPECT_NAMES = sorted(ASPECTS)  # what an entity's aspects may be called


def get_aspect_history(store: Store, *, urn: str, aspect: str) -> list[AspectVersion]:
    parse_urn(urn)
    if aspect not in ASPECTS:
        raise InvalidInput(f"unknown aspect {aspect!r}; known: {sorted(ASPECTS)}")
    with store.read() as conn:
        versions = aspect_history(conn, urn, aspect)
    if not versions:
        raise NotFound(f"{urn} has no aspect {aspect!r}")
    return [AspectVersion(**{**v, "value": orjson.loads(v.pop("payload"))}) for v in versions]


def list_aspects(store: Store, *, urn: str) -> dict[str, object]:
    parse_urn(urn)
    with store.read() as conn:
        rows = conn.execute(
            select(t.aspect.c.aspect, t.aspect.c.payload).where(
                t.aspect.c.urn == urn, t.aspect.c.version == 0
            )
        ).all()
    if not rows:
        raise NotFound(f"{urn} does not exist")
    return {name: orjson.loads(payload) for name, payload in rows}


@dataclass(frozen=True, slots=True)
class EntityName:
    """What a person calls an entity: its own name, and (for things that live inside a run)
    the run's name as context, so two runs' "model.pkl" read apart."""

    name: str
    context: str | None = None

    @property
    def label(self) -> str:
        return f"{self.context} › {self.name}" if self.context else self.name


def entity_labels(store: Store, *, urns: list[str]) -> dict[str, str]:
    """A short human name for each URN: a run's name, "run › step", "run › file name",
    "model v3"."""
    with store.read() as conn:
        return labels_of(conn, urns)


def entity_names(store: Store, *, urns: list[str]) -> dict[str, EntityName]:
    with store.read() as conn:
        return names_of(conn, urns)


def labels_of(conn: Connection, urns: list[str]) -> dict[str, str]:
    """``entity_labels`` inside a read that is already open."""
    return {urn: n.label for urn, n in names_of(conn, urns).items()}


def names_of(conn: Connection, urns: list[str]) -> dict[str, EntityName]:
    """Each URN's name and context, read in at most three queries."""
    parsed = {u: parse_urn(u) for u in set(urns)}
    evaluations = _evaluations(conn, parsed)
    run_ids = {p.parts[0] for p in parsed.values() if p.type in ("run", "step", "artifact")}
    run_ids |= {run_id for run_id, _, _ in evaluations.values()}
    project_ids = [int(p.id) for p in parsed.values() if p.type == "project" and p.id.isdigit()]
    run_names = dict(
        conn.execute(select(t.run.c.id, t.run.c.name).where(t.run.c.id.in_(run_ids))).all()
    )
    project_names = dict(
        conn.execute(
            select(t.project.c.id, t.project.c.name).where(t.project.c.id.in_(project_ids))
        ).all()
    )
    tails = Counter(_tail_key(p) for p in parsed.values())
    return {
        urn: _name(p, run_names, project_names, evaluations, unique=tails[_tail_key(p)] == 1)
        for urn, p in parsed.items()
    }


def _tail_key(p: Urn) -> tuple[str, str]:
    return (
        (p.parts[0], _tail(p.parts[1])) if p.type == "artifact" and len(p.parts) > 1 else ("", "")
    )


def _name(
    p: Urn,
    run_names: dict[str, str],
    project_names: dict[int, str],
    evaluations: dict[str, tuple[str, str, int]],
    *,
    unique: bool,
) -> EntityName:
    """One entity's name; ``unique``: no other artifact of its run in view has its file name."""
    parts = p.parts
    run = run_names.get(parts[0], parts[0])
    if p.type == "project":
        return EntityName(project_names.get(int(p.id), p.id) if p.id.isdigit() else p.id)
    if p.type == "run":
        return EntityName(run)
    if p.type == "step" and len(parts) > 1:
        return EntityName(parts[1], run)
    if p.type == "artifact" and len(parts) > 1:
        return EntityName(_tail(parts[1]) if unique else _named_path(parts[1], evaluations), run)
    if p.type == "model_version" and len(parts) > 1:
        return EntityName(f"{parts[0]} v{parts[1]}")
    if p.type == "evaluation" and p.id in evaluations:
        run_id, name, _ = evaluations[p.id]
        return EntityName(name, run_names.get(run_id, run_id))
    return EntityName(":".join(parts))


def _tail(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1]


def _named_path(path: str, evaluations: dict[str, tuple[str, str, int]]) -> str:
    """An artifact path with an evaluation's folder (its id) shown as the evaluation's name."""
    return "/".join(evaluations[s][1] if s in evaluations else s for s in path.split("/"))


def _evaluations(conn: Connection, parsed: dict[str, Urn]) -> dict[str, tuple[str, str, int]]:
    """Run id, readable name and creation time of the evaluations the URNs name, or whose
    files they are."""
    ids = {p.id for p in parsed.values() if p.type == "evaluation"}
    for p in parsed.values():
        if p.type == "artifact" and len(p.parts) > 1 and p.parts[1].startswith("evaluations/"):
            ids.add(p.parts[1].split("/")[1])
    if not ids:
        return {}
    ev = t.evaluation
    rows = conn.execute(
        select(ev.c.id, t.run.c.id, ev.c.name, ev.c.created_at)
        .join(t.run, t.run.c.pk == ev.c.run_pk)
        .where(ev.c.id.in_(ids))
    ).all()
    out = {}
    for eval_id, run_id, name, created_at in rows:
        if name == f"evaluation-{eval_id[:8]}":  # no name or dataset was given: say when
            name = f"evaluation of {utc_text(created_at)}"
        out[eval_id] = (run_id, name, created_at)
    return out


def find_entities(store: Store, *, text: str, limit: int = 20) -> list[str]:
    """URNs of datasets and models whose name contains ``text`` (case-insensitive)."""
    needle = text.lower()
    with store.read() as conn:
        datasets = conn.execute(
            select(t.dataset.c.name)
            .where(func.lower(t.dataset.c.name).contains(needle, autoescape=True))
            .order_by(t.dataset.c.name)
            .limit(limit)
        ).scalars()
        found = [dataset_urn(n) for n in datasets]
        models = conn.execute(
            select(t.entity.c.urn).where(t.entity.c.type == "model").order_by(t.entity.c.urn)
        ).scalars()
        for urn in models:
            if len(found) >= 2 * limit:
                break
            if needle in parse_urn(urn).parts[0].lower():
                found.append(urn)
    return found
