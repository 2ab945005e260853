"""Lineage and entities: the graph around any entity, and an entity's current aspects."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from starlette.responses import HTMLResponse

from modelyard.api.deps import StoreDep
from modelyard.metadata.store import Store
from modelyard.metadata.urn import parse_urn
from modelyard.schemas import LineagePublic
from modelyard.services import changes, entities, lineage
from modelyard.web.diff import pretty
from modelyard.web.graph import layered
from modelyard.web.templating import render
from modelyard.web.urls import entity_page

router = APIRouter()

DEFAULT_HOPS = 3
LABEL_CHARS = 26  # what fits on one line of a node box
RECENT_CHANGES = 10


@dataclass(frozen=True, slots=True)
class NodeView:
    urn: str
    type: str
    label: str
    hops: int
    href: str
    centre_href: str
    x: float
    y: float

    @property
    def root(self) -> bool:
        return self.hops == 0

    @property
    def short_label(self) -> str:
        if len(self.label) <= LABEL_CHARS:
            return self.label
        return self.label[: LABEL_CHARS - 1] + "…"

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


def lineage_url(urn: str, up: int, down: int) -> str:
    return "/lineage?" + urlencode({"urn": urn, "up": up, "down": down})


def graph_view(graph: LineagePublic, labels: dict[str, str], up: int, down: int) -> dict[str, Any]:
    """Nodes placed in columns by signed hops (upstream left of the root, downstream right),
    and each edge's curve."""
    ids = [n.urn for n in graph.nodes]
    pairs = [(e.upstream, e.downstream) for e in graph.edges]
    layout = layered(ids, pairs, {n.urn: n.hops for n in graph.nodes})
    nodes = [
        NodeView(
            urn=n.urn,
            type=n.type,
            label=labels.get(n.urn, n.urn),
            hops=n.hops,
            href=entity_page(n.urn),
            centre_href=lineage_url(n.urn, up, down),
            x=layout.nodes[n.urn].x,
            y=layout.nodes[n.urn].y,
        )
        for n in graph.nodes
    ]
    paths = {(src, dst): d for src, dst, d in layout.edges}
    edges = [
        EdgeView(e.upstream, e.type, e.downstream, paths[(e.upstream, e.downstream)])
        for e in graph.edges
    ]
    return {
        "nodes": nodes,
        "edges": edges,
        "width": layout.width,
        "height": layout.height,
        "node_width": layout.node_width,
        "node_height": layout.node_height,
    }


def lineage_context(store: Store, urn: str, up: int, down: int) -> dict[str, Any]:
    graph = lineage.get_lineage(store, urn=urn, upstream=up, downstream=down)
    labels = entities.entity_labels(store, urns=[n.urn for n in graph.nodes])
    return {
        "root": graph.root,
        "root_label": labels[graph.root],
        "root_type": parse_urn(graph.root).type,
        "up": up,
        "down": down,
        "max_hops": lineage.MAX_HOPS,
        "labels": labels,
        **graph_view(graph, labels, up, down),
    }


def entity_context(store: Store, urn: str) -> dict[str, Any]:
    aspects = entities.list_aspects(store, urn=urn)
    recent = changes.labelled_changes(store, urn=urn, limit=RECENT_CHANGES)
    labels = {**recent.labels, **entities.entity_labels(store, urns=[urn])}
    page = entity_page(urn)
    return {
        "urn": urn,
        "type": parse_urn(urn).type,
        "label": labels[urn],
        "aspects": [(name, pretty(value)) for name, value in sorted(aspects.items())],
        "richer_page": None if page.startswith("/entities/") else page,
        "lineage_href": lineage_url(urn, DEFAULT_HOPS, DEFAULT_HOPS),
        "changes": recent.changes,
        "labels": labels,
        "more_changes": len(recent.changes) == RECENT_CHANGES,
    }


@router.get("/lineage", response_class=HTMLResponse)
def lineage_page(
    request: Request,
    store: StoreDep,
    urn: Annotated[str, Query(max_length=4096)],
    up: int = DEFAULT_HOPS,
    down: int = DEFAULT_HOPS,
) -> HTMLResponse:
    """The lineage graph around ``urn``, ``up`` hops upstream and ``down`` downstream."""
    return render(request, "lineage.html", lineage_context(store, urn, up, down))


@router.get("/entities/{urn:path}", response_class=HTMLResponse)
def entity(request: Request, store: StoreDep, urn: str) -> HTMLResponse:
    """An entity's current aspects, each with its history, and where to look further."""
    return render(request, "entity.html", entity_context(store, urn))
