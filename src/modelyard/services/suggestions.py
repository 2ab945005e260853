"""Entities a person may mean by part of a name: projects, runs, datasets and models, for a
search box that suggests as they type."""

from __future__ import annotations

from dataclasses import dataclass

from modelyard.metadata.store import Store
from modelyard.metadata.urn import run_urn
from modelyard.schemas import RunSearch
from modelyard.services import entities, projects, search
from modelyard.services.search_grammar import quote_string

MAX_SUGGESTIONS = 20


@dataclass(frozen=True, slots=True)
class Suggestion:
    urn: str
    name: str
    type: str
    project: str | None = None

    @property
    def text(self) -> str:
        """What the box shows and a person picks: unique even when two runs share a name."""
        where = f" in {self.project}" if self.project else ""
        return f"{self.name} ({self.type.replace('_', ' ')}{where})"


def _like_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return quote_string(f"%{escaped}%")


def suggest_entities(
    store: Store, *, text: str, readable: frozenset[int] | None, limit: int = MAX_SUGGESTIONS
) -> list[Suggestion]:
    """Entities whose name holds ``text`` (case-insensitive): projects, then the newest runs
    (through the run search), then datasets and models."""
    needle = text.strip()
    if not needle:
        return []
    found = [
        Suggestion(p.urn, p.name, "project")
        for p in projects.list_projects(store, readable=readable, headlines=False)
        if needle.lower() in p.name.lower()
    ]
    req = RunSearch(
        filter=f"name ilike {_like_pattern(needle)}", order_by=["start_time desc"], page_size=limit
    )
    found += [
        Suggestion(run_urn(r.run_id), r.name, "run", r.project)
        for r in search.search_runs(store, req=req, readable=readable).runs
    ]
    urns = entities.find_entities(store, text=needle, limit=limit)
    labels = entities.entity_labels(store, urns=urns)
    found += [Suggestion(u, labels[u], u.split(":")[2]) for u in urns]
    return found[:limit]


def resolve_entity(
    store: Store, *, text: str, readable: frozenset[int] | None
) -> Suggestion | None:
    """The one entity ``text`` names: a suggestion's text as picked, or the only match."""
    typed = text.rsplit(" (", 1)[0] if " (" in text else text
    found = suggest_entities(store, text=typed, readable=readable)
    exact = [s for s in found if s.text == text.strip()]
    if exact:
        return exact[0]
    return found[0] if len(found) == 1 else None
