"""Lineage and entities: the graph around any entity, and an entity's current aspects."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from starlette.responses import HTMLResponse

from modelyard.api.deps import Readable, StoreDep
from modelyard.authz import (
    Level,
    allow,
    urn_path,
    urn_query,
)
from modelyard.metadata.store import Store
from modelyard.metadata.urn import parse_urn
from modelyard.schemas import LineagePublic
from modelyard.services import changes, entities, lineage
from modelyard.services.entities import EntityName
from modelyard.web.aspect_fields import aspect_fields, urns_in
from modelyard.web.change_rows import change_rows
from modelyard.web.diff import pretty
from modelyard.web.graph import Layout, layered
from modelyard.web.templating import render
from modelyard.web.urls import entity_page

router = APIRouter()

DEFAULT_HOPS = 3
LABEL_CHARS = 28  # what fits on one line of a node box at its narrowest
NODE_WIDTH = 220
NODE_HEIGHT = 66
GAP_X = 110  # room for an edge's words between two columns
RECENT_CHANGES = 10
# A relationship read from upstream to downstream: "gbm-3 produced model.pkl".
RELATIONSHIP_WORDS = {
    "Produces": "produced",
    "Consumes": "consumed by",
    "TrainedBy": "registered as",
    "DerivedFrom": "evaluated in",
    "EvaluatedOn": "test data for",
    "UsesFeature": "used by",
    "DeployedTo": "deployed to",
    "ChildOf": "part of",
}


def relationship_words(kind: str) -> str:
    """A relationship type as words; a type not listed reads as its split CamelCase."""
    return RELATIONSHIP_WORDS.get(kind) or re.sub(r"(?<!^)(?=[A-Z])", " ", kind).lower()


def middle_cut(text: str, limit: int = LABEL_CHARS) -> str:
    """``text`` cut to ``limit`` characters in the middle, so a file's extension and a
    version's number stay in view."""
    if len(text) <= limit:
        return text
    head = (limit - 1) // 2
    return text[:head] + "…" + text[len(text) - (limit - 1 - head) :]


def _window(text: str, at: int, limit: int) -> str:
    """``limit`` characters of ``text`` around position ``at``, with "…" where cut."""
    start = max(0, min(at - (limit - 2) // 3, len(text) - (limit - 2)))
    end = min(len(text), start + limit - 2)
    return ("…" if start else "") + text[start:end] + ("…" if end < len(text) else "")


def _shared_prefix(a: str, b: str) -> int:
    return next(
        (i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b))
    )


def distinct_cuts(names: list[str], limit: int = LABEL_CHARS) -> dict[str, str]:
    """Each name cut to ``limit`` characters so that different names stay different: names a
    middle cut would make alike ("evaluations/churn-20…/predictions.parquet" twice) show the
    part where they differ instead, and in full if that is not enough."""
    cut = {n: middle_cut(n, limit) for n in names}
    alike: dict[str, list[str]] = {}
    for name in sorted(set(names)):
        alike.setdefault(cut[name], []).append(name)
    for group in (g for g in alike.values() if len(g) > 1):
        for name in group:
            at = max(_shared_prefix(name, other) for other in group if other != name)
            cut[name] = _window(name, at, limit)
        if len({cut[n] for n in group}) < len(group):
            cut.update({n: n for n in group})
    return cut


@dataclass(frozen=True, slots=True)
class NodeView:
    urn: str
    type: str
    name: EntityName
    hops: int
    column: int
    href: str
    centre_href: str
    x: float
    y: float
    short_label: str  # the name as it fits the box, told apart from the other boxes'

    @property
    def label(self) -> str:
        return self.name.label

    @property
    def root(self) -> bool:
        return self.hops == 0

    @property
    def kind(self) -> str:
        """The small line above the name: the type, and the run a file or step belongs to."""
        kind = self.type.replace("_", " ")
        return f"{kind} · {self.name.context}" if self.name.context else kind

    @property
    def short_kind(self) -> str:
        return middle_cut(self.kind, LABEL_CHARS + 4)  # in the smaller type

    @property
    def side(self) -> str:
        if self.hops < 0:
            return f"{-self.hops} upstream"
        return f"{self.hops} downstream" if self.hops else "root"


@dataclass(frozen=True, slots=True)
class EdgeView:
    upstream: str
    type: str
    downstream: str
    path: str
    label_x: float  # where its words go
    label_y: float

    @property
    def words(self) -> str:
        return relationship_words(self.type)


def lineage_url(urn: str, up: int, down: int) -> str:
    return "/lineage?" + urlencode({"urn": urn, "up": up, "down": down})


def label_spot(layout: Layout, upstream: str, downstream: str) -> tuple[float, float]:
    """Where an edge's words go: three quarters along its curve, towards the node it points
    to, where the edges fanning out of one node are furthest apart (lineage.js agrees)."""
    a, b = layout.nodes[upstream], layout.nodes[downstream]
    x1, x2 = a.x + layout.node_width, b.x
    y1, y2 = a.y + layout.node_height / 2, b.y + layout.node_height / 2
    return 0.297 * x1 + 0.703 * x2, 0.156 * y1 + 0.844 * y2 - 4


def graph_view(
    graph: LineagePublic, names: dict[str, EntityName], up: int, down: int
) -> dict[str, Any]:
    """Nodes placed in columns by signed hops (upstream left of the root, downstream right),
    and each edge's curve."""
    ids = [n.urn for n in graph.nodes]
    pairs = [(e.upstream, e.downstream) for e in graph.edges]
    layout = layered(
        ids,
        pairs,
        {n.urn: n.hops for n in graph.nodes},
        node_width=NODE_WIDTH,
        node_height=NODE_HEIGHT,
        gap_x=GAP_X,
    )
    columns = {urn: i for i, c in enumerate(sorted(layout.columns)) for urn in layout.columns[c]}
    named = {n.urn: names.get(n.urn, EntityName(n.urn)) for n in graph.nodes}
    short = distinct_cuts([name.name for name in named.values()])
    nodes = [
        NodeView(
            urn=n.urn,
            type=n.type,
            name=named[n.urn],
            hops=n.hops,
            column=columns[n.urn],
            href=entity_page(n.urn),
            centre_href=lineage_url(n.urn, up, down),
            x=layout.nodes[n.urn].x,
            y=layout.nodes[n.urn].y,
            short_label=short[named[n.urn].name],
        )
        for n in graph.nodes
    ]
    paths = {(src, dst): d for src, dst, d in layout.edges}
    edges = [
        EdgeView(
            e.upstream,
            e.type,
            e.downstream,
            paths[(e.upstream, e.downstream)],
            *label_spot(layout, e.upstream, e.downstream),
        )
        for e in graph.edges
    ]
    return {
        "nodes": nodes,
        "edges": edges,
        "width": layout.width,
        "height": layout.height,
        "node_width": layout.node_width,
        "node_height": layout.node_height,
        "label_chars": LABEL_CHARS,
    }


def lineage_context(
    store: Store, urn: str, up: int, down: int, readable: frozenset[int] | None
) -> dict[str, Any]:
    graph = lineage.get_lineage(store, urn=urn, upstream=up, downstream=down, readable=readable)
    names = entities.entity_names(store, urns=[n.urn for n in graph.nodes])
    labels = {urn: n.label for urn, n in names.items()}
    return {
        "root": graph.root,
        "root_label": labels[graph.root],
        "root_type": parse_urn(graph.root).type,
        "up": up,
        "down": down,
        "max_hops": lineage.MAX_HOPS,
        "labels": labels,
        **graph_view(graph, names, up, down),
    }


def entity_context(store: Store, urn: str) -> dict[str, Any]:
    aspects = entities.list_aspects(store, urn=urn)
    recent = changes.labelled_changes(
        store,
        urn=urn,
        limit=RECENT_CHANGES,
        values=True,
        readable=None,  # its urn is checked
    )
    shown = [(name, aspect_fields(value), pretty(value)) for name, value in sorted(aspects.items())]
    linked = [u for _, fields, _ in shown for u in urns_in(fields)]
    labels = {**recent.labels, **entities.entity_labels(store, urns=[urn, *linked])}
    page = entity_page(urn)
    return {
        "urn": urn,
        "type": parse_urn(urn).type,
        "label": labels[urn],
        "aspects": shown,
        "richer_page": None if page.startswith("/entities/") else page,
        "lineage_href": lineage_url(urn, DEFAULT_HOPS, DEFAULT_HOPS),
        "rows": change_rows(recent.changes, recent.values),
        "labels": labels,
        "more_changes": len(recent.changes) == RECENT_CHANGES,
    }


@router.get("/lineage", response_class=HTMLResponse)
@allow(Level.READ, on=urn_query())
def lineage_page(
    request: Request,
    store: StoreDep,
    readable: Readable,
    urn: Annotated[str, Query(max_length=4096)],
    up: int = DEFAULT_HOPS,
    down: int = DEFAULT_HOPS,
) -> HTMLResponse:
    """The lineage graph around ``urn``, ``up`` hops upstream and ``down`` downstream."""
    return render(request, "lineage.html", lineage_context(store, urn, up, down, readable))


@router.get("/entities/{urn:path}", response_class=HTMLResponse)
@allow(Level.READ, on=urn_path())
def entity(request: Request, store: StoreDep, urn: str) -> HTMLResponse:
    """An entity's current aspects, each with its history, and where to look further."""
    return render(request, "entity.html", entity_context(store, urn))
