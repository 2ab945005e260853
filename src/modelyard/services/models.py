"""Models and their versions: each version is numbered within its model and made by a run."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, bindparam, func, insert, select

from modelyard.errors import NotFound
from modelyard.metadata import tables as t
from modelyard.metadata.aspects import ModelVersionProperties
from modelyard.metadata.store import Store, Tx, entity_exists
from modelyard.metadata.urn import model_urn, model_version_urn
from modelyard.schemas import (
    EvaluationPublic,
    ModelIn,
    ModelPublic,
    ModelVersionCreate,
    ModelVersionPublic,
)
from modelyard.schemas._common import typed_name
from modelyard.services import evaluations
from modelyard.services.entities import put_model
from modelyard.services.headlines import model_headlines
from modelyard.services.runs import locked_run

_VERSIONS = (
    select(t.model_version, t.run.c.id.label("run_id"), t.run.c.name.label("run_name"),
           t.project.c.name.label("project"))
    .join(t.run, t.run.c.pk == t.model_version.c.run_pk)
    .join(t.project, t.project.c.id == t.run.c.project_id)
)  # fmt: skip


_PROPERTIES = select(t.aspect.c.urn, t.aspect.c.payload).where(
    t.aspect.c.urn.in_(bindparam("urns", expanding=True)),
    t.aspect.c.aspect == "model_version_properties",
    t.aspect.c.version == 0,
)


def _public(conn: Connection, rows: Sequence[Any]) -> list[ModelVersionPublic]:
    """Versions for index rows, their properties (the source artifact) read in one query."""
    urns = [model_version_urn(r.model, r.version) for r in rows]
    found = dict(conn.execute(_PROPERTIES, {"urns": urns}).all()) if urns else {}
    return [
        ModelVersionPublic(
            model=row.model, version=row.version, urn=urn, run_id=row.run_id,
            run_name=row.run_name, project=row.project, description=row.description,
            created_at=row.created_at, created_by=row.created_by,
            source=ModelVersionProperties.model_validate_json(found[urn]).source
            if urn in found else None,
        )
        for urn, row in zip(urns, rows, strict=True)
    ]  # fmt: skip


def register_version(
    store: Store, *, run_id: str, body: ModelVersionCreate, actor: str
) -> ModelVersionPublic:
    """A new version of ``body.model`` made by the run (the model is created on first use).
    A finished run may register versions: that is when its model is known to be good."""

    def work(tx: Tx) -> int:
        run = locked_run(tx, run_id)
        if body.source is not None and not _has_artifact(tx.conn, run.pk, body.source):
            raise NotFound(
                f"run {run_id} has no artifact {body.source!r} to register as a model version; "
                "log it before registering it"
            )
        put_model(tx, ModelIn(name=body.model))
        # Writers registering versions of one model queue on the model's entity row.
        tx.lock(t.entity, t.entity.c.urn == model_urn(body.model))
        latest = tx.conn.execute(
            select(func.max(t.model_version.c.version)).where(t.model_version.c.model == body.model)
        ).scalar()
        version = int(latest or 0) + 1
        tx.conn.execute(
            insert(t.model_version).values(
                model=body.model, version=version, run_pk=run.pk, description=body.description,
                created_at=tx.now, created_by=tx.actor,
            )
        )  # fmt: skip
        urn = model_version_urn(body.model, version)
        tx.ensure_entity(urn)
        tx.put_aspect(
            urn,
            ModelVersionProperties(
                model=body.model,
                version=version,
                run_id=run_id,
                description=body.description,
                source=body.source,
            ),
        )
        return version

    version = store.transact(work, actor=actor)
    return get_version(store, model=body.model, version=version)


def _has_artifact(conn: Connection, run_pk: int, path: str) -> bool:
    a = t.artifact
    return (
        conn.execute(select(a.c.path).where(a.c.run_pk == run_pk, a.c.path == path)).first()
        is not None
    )


def get_version(store: Store, *, model: str, version: int) -> ModelVersionPublic:
    model = typed_name(model)
    with store.read() as conn:
        row = conn.execute(
            _VERSIONS.where(t.model_version.c.model == model, t.model_version.c.version == version)
        ).first()
        if row is None:
            raise NotFound(f"model {model!r} has no version {version}")
        return _public(conn, [row])[0]


def version_evaluations(store: Store, *, model: str, version: int) -> list[EvaluationPublic]:
    """A model version's evaluations, newest first; an unknown version is a NotFound."""
    found = get_version(store, model=model, version=version)
    return evaluations.list_version_evaluations(store, model=found.model, version=version)


def list_versions(
    store: Store, *, model: str, readable: frozenset[int] | None
) -> list[ModelVersionPublic]:
    """A model's versions, newest first: those made in ``readable`` projects (None: all)."""
    model = typed_name(model)
    query = _VERSIONS.where(t.model_version.c.model == model)
    if readable is not None:
        query = query.where(t.run.c.project_id.in_(sorted(readable)))
    with store.read() as conn:
        rows = conn.execute(query.order_by(t.model_version.c.version.desc())).all()
        known = bool(rows) or bool(entity_exists(conn, [model_urn(model)]))
        if not known:
            raise NotFound(f"there is no model {model!r}")
        return _public(conn, rows)


def versions_made_by(store: Store, *, run_id: str) -> list[ModelVersionPublic]:
    """The model versions a run registered, in the order it registered them."""
    with store.read() as conn:
        rows = conn.execute(
            _VERSIONS.where(t.run.c.id == run_id).order_by(
                t.model_version.c.created_at, t.model_version.c.model, t.model_version.c.version
            )
        ).all()
        return _public(conn, rows)


def list_models(store: Store, *, readable: frozenset[int] | None) -> list[ModelPublic]:
    """Models with their versions made in ``readable`` projects (None: all) counted."""
    mv = t.model_version
    query = select(
        mv.c.model,
        func.count().label("n"),
        func.max(mv.c.version).label("latest"),
        func.max(mv.c.created_at).label("latest_at"),
    )
    if readable is not None:
        query = query.join(t.run, t.run.c.pk == mv.c.run_pk).where(
            t.run.c.project_id.in_(sorted(readable))
        )
    with store.read() as conn:
        rows = conn.execute(query.group_by(mv.c.model).order_by(mv.c.model)).all()
        best = model_headlines(conn, readable)
    return [
        ModelPublic(
            name=r.model,
            urn=model_urn(r.model),
            versions=r.n,
            latest_version=r.latest,
            latest_at=r.latest_at,
            headline=best.get(r.model),
        )
        for r in rows
    ]
