"""Which evaluations compare like with like: for some runs, or the versions of a model, the
newest evaluation of each on every dataset, so a page can offer the evaluation comparison for
each dataset that at least two of them were evaluated on.

A model version's evaluations are its own and those of the run that made it (the run's own,
not another version's): a version is often registered after its run evaluated the model."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, and_, or_, select

from modelyard.metadata import tables as t
from modelyard.metadata.store import Store
from modelyard.schemas import EvaluationPublic, ModelVersionPublic, RunPublic
from modelyard.services import evaluations, models


@dataclass(frozen=True, slots=True)
class EvaluationRef:
    """What picking an evaluation needs: its index row, without results."""

    id: str
    name: str
    dataset: str | None
    task: str
    created_at: int
    run_id: str
    model: str | None
    model_version: int | None


@dataclass(frozen=True, slots=True)
class Subject:
    """What is compared: a run (key: its id) or a model version (key: its number)."""

    key: str
    label: str


@dataclass(frozen=True, slots=True)
class Pick:
    subject: Subject
    evaluation: EvaluationRef


@dataclass(frozen=True, slots=True)
class DatasetComparison:
    """One evaluation per subject on ``dataset`` (a ``task``), in the subjects' order; at
    most ``limit`` of them are picked, the rest are ``left_out``."""

    dataset: str
    task: str
    picks: list[Pick]
    left_out: list[Pick] = field(default_factory=list)
    # evaluated on other datasets, not this one (those evaluated on none are not repeated)
    missing: list[Subject] = field(default_factory=list)

    @property
    def evaluation_ids(self) -> list[str]:
        return [p.evaluation.id for p in self.picks]


@dataclass(frozen=True, slots=True)
class Comparable:
    """The comparisons on offer for ``subjects``, and those with no evaluation on a named
    dataset."""

    subjects: list[Subject]
    datasets: list[DatasetComparison]
    unevaluated: list[Subject]


def by_dataset(
    subjects: Sequence[Subject],
    evaluated: Mapping[str, Sequence[EvaluationRef]],
    *,
    limit: int,
) -> Comparable:
    """Per (dataset, task) that two or more subjects were evaluated on, each one's newest
    evaluation there (one evaluation is never picked twice); datasets shared by the most
    subjects first, then by name. ``evaluated`` maps a subject's key to its evaluations."""
    newest: dict[tuple[str, str], dict[str, EvaluationRef]] = {}
    for subject in subjects:
        for ev in evaluated.get(subject.key, ()):
            if ev.dataset is None:
                continue  # an unnamed dataset is not known to be the same as another
            mine = newest.setdefault((ev.dataset, ev.task), {})
            held = mine.get(subject.key)
            if held is None or (ev.created_at, ev.id) > (held.created_at, held.id):
                mine[subject.key] = ev
    evaluated_subjects = [s for s in subjects if any(s.key in c for c in newest.values())]
    found = [_comparison(k, evaluated_subjects, chosen, limit) for k, chosen in newest.items()]
    offered = [c for c in found if len(c.picks) >= 2]
    offered.sort(key=lambda c: (-(len(c.picks) + len(c.left_out)), c.dataset, c.task))
    unevaluated = [s for s in subjects if s not in evaluated_subjects]
    return Comparable(list(subjects), offered, unevaluated)


def _comparison(
    on: tuple[str, str],
    subjects: Sequence[Subject],
    chosen: Mapping[str, EvaluationRef],
    limit: int,
) -> DatasetComparison:
    picks: list[Pick] = []
    for subject in subjects:
        ev = chosen.get(subject.key)
        if ev is not None and all(p.evaluation.id != ev.id for p in picks):
            picks.append(Pick(subject, ev))
    picked = {p.subject.key for p in picks}
    missing = [s for s in subjects if s.key not in picked]
    return DatasetComparison(*on, picks[:limit], left_out=picks[limit:], missing=missing)


_REFS = select(
    t.evaluation.c.id, t.evaluation.c.name, t.evaluation.c.dataset, t.evaluation.c.task,
    t.evaluation.c.created_at, t.run.c.id.label("run_id"), t.evaluation.c.model,
    t.evaluation.c.model_version,
).join(t.run, t.run.c.pk == t.evaluation.c.run_pk)  # fmt: skip


def _refs(conn: Connection, where: Any) -> list[EvaluationRef]:
    return [EvaluationRef(*row) for row in conn.execute(_REFS.where(where))]


# --- runs
def for_runs(store: Store, *, runs: Sequence[RunPublic], limit: int) -> Comparable:
    """The evaluation comparisons on offer for these runs (in their order), in one query."""
    with store.read() as conn:
        refs = _refs(conn, t.run.c.id.in_([r.run_id for r in runs]))
    evaluated: dict[str, list[EvaluationRef]] = {}
    for ref in refs:
        evaluated.setdefault(ref.run_id, []).append(ref)
    return by_dataset([Subject(r.run_id, r.name) for r in runs], evaluated, limit=limit)


# --- model versions
def version_subject(version: ModelVersionPublic) -> Subject:
    return Subject(str(version.version), f"v{version.version}")


def _version_refs(
    conn: Connection, model: str, versions: Sequence[ModelVersionPublic]
) -> dict[str, list[EvaluationRef]]:
    """Each version's evaluations (its own and its run's), by version number, in one query."""
    ev = t.evaluation
    run_ids = sorted({v.run_id for v in versions})
    refs = _refs(
        conn, or_(ev.c.model == model, and_(ev.c.model.is_(None), t.run.c.id.in_(run_ids)))
    )
    by_run: dict[str, list[str]] = {}
    for v in versions:
        by_run.setdefault(v.run_id, []).append(str(v.version))
    evaluated: dict[str, list[EvaluationRef]] = {}
    for ref in refs:
        owners = [str(ref.model_version)] if ref.model is not None else by_run[ref.run_id]
        for key in owners:
            evaluated.setdefault(key, []).append(ref)
    return evaluated


def for_model(
    store: Store, *, model: str, limit: int, readable: frozenset[int] | None
) -> tuple[list[ModelVersionPublic], Comparable]:
    """A model's versions (newest first) and the comparisons of their evaluations on offer,
    newest versions first; an unknown model is a NotFound."""
    versions = models.list_versions(store, model=model, readable=readable)
    with store.read() as conn:
        evaluated = _version_refs(conn, versions[0].model, versions) if versions else {}
    return versions, by_dataset([version_subject(v) for v in versions], evaluated, limit=limit)


@dataclass(frozen=True, slots=True)
class VersionEvaluations:
    """A model version, the evaluations of it and of the run that made it (newest first), and
    per dataset its comparison with the other versions (this version first, then the others
    newest first) and the one it is best set against: the nearest earlier version evaluated
    there, else the nearest later one."""

    version: ModelVersionPublic
    evaluations: list[EvaluationPublic]
    datasets: list[tuple[DatasetComparison, Pick]]


def for_version(
    store: Store, *, model: str, version: int, limit: int, readable: frozenset[int] | None
) -> VersionEvaluations:
    """A model version and its evaluations, compared with the model's other versions that
    the caller may read (``readable``)."""
    found = models.get_version(store, model=model, version=version)
    versions = models.list_versions(store, model=found.model, readable=readable)
    with store.read() as conn:
        evaluated = _version_refs(conn, found.model, versions)
    this = version_subject(found)
    others = [version_subject(v) for v in versions if v.version != version]
    comparable = by_dataset([this, *others], evaluated, limit=limit)
    datasets = []
    for group in comparable.datasets:
        if group.picks[0].subject == this:
            rest = [*group.picks[1:], *group.left_out]
            earlier = [p for p in rest if int(p.subject.key) < version]
            datasets.append((group, earlier[0] if earlier else rest[-1]))
    mine = sorted(evaluated.get(this.key, []), key=lambda e: (e.created_at, e.id), reverse=True)
    listed = evaluations.get_evaluations(store, evaluation_ids=[e.id for e in mine])
    return VersionEvaluations(found, listed, datasets)
