"""Layered layout for the graphs the portal draws as SVG: a run's pipeline and lineage.

Nodes sit in columns (their layer, left to right); within a column they are ordered by the
mean position of their neighbours (a few barycentre sweeps), which keeps edges short and
mostly uncrossed for the small graphs a page shows.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field


@dataclass(slots=True)
class Placed:
    id: str
    x: float
    y: float


@dataclass(slots=True)
class Layout:
    nodes: dict[str, Placed]
    edges: list[tuple[str, str, str]]  # source, target, SVG path
    width: float
    height: float
    node_width: float
    node_height: float
    columns: dict[int, list[str]] = field(default_factory=dict)


def longest_path_layers(ids: list[str], edges: list[tuple[str, str]]) -> dict[str, int]:
    """Each node's layer: the length of the longest chain of edges leading to it."""
    parents: dict[str, list[str]] = defaultdict(list)
    for src, dst in edges:
        parents[dst].append(src)
    layer: dict[str, int] = {}

    def depth(node: str, seen: frozenset[str]) -> int:
        if node not in layer:
            ps = [p for p in parents[node] if p in set(ids) and p not in seen]
            layer[node] = 1 + max((depth(p, seen | {node}) for p in ps), default=-1)
        return layer[node]

    for node in ids:
        depth(node, frozenset())
    return layer


def layered(
    ids: list[str],
    edges: list[tuple[str, str]],
    layer: dict[str, int],
    *,
    node_width: float = 190,
    node_height: float = 58,
    gap_x: float = 70,
    gap_y: float = 18,
    sweeps: int = 4,
) -> Layout:
    """Positions for ``ids`` in columns by ``layer``, and a curved path for each edge."""
    columns: dict[int, list[str]] = defaultdict(list)
    for node in ids:
        columns[layer[node]].append(node)
    neighbours: dict[str, list[str]] = defaultdict(list)
    for src, dst in edges:
        neighbours[src].append(dst)
        neighbours[dst].append(src)
    order = sorted(columns)
    rank = {n: i for col in columns.values() for i, n in enumerate(col)}
    for sweep in range(sweeps):
        for c in order if sweep % 2 == 0 else reversed(order):
            col = columns[c]

            def centre(n: str, col: list[str] = col) -> float:
                near = [rank[m] for m in neighbours[n] if m in rank and layer[m] != layer[n]]
                return sum(near) / len(near) if near else rank[n]

            col.sort(key=centre)
            rank.update({n: i for i, n in enumerate(col)})
    tallest = max((len(col) for col in columns.values()), default=0)
    height = max(1, tallest) * (node_height + gap_y) + gap_y
    placed: dict[str, Placed] = {}
    for i, c in enumerate(order):
        col = columns[c]
        top = (height - len(col) * (node_height + gap_y) + gap_y) / 2
        for j, n in enumerate(col):
            placed[n] = Placed(n, 10 + i * (node_width + gap_x), top + j * (node_height + gap_y))
    paths = []
    for src, dst in edges:
        if src in placed and dst in placed:
            a, b = placed[src], placed[dst]
            x1, y1 = a.x + node_width, a.y + node_height / 2
            x2, y2 = b.x, b.y + node_height / 2
            bend = max(30.0, (x2 - x1) / 2)
            paths.append(
                (
                    src,
                    dst,
                    f"M{x1:.1f},{y1:.1f} C{x1 + bend:.1f},{y1:.1f} "
                    f"{x2 - bend:.1f},{y2:.1f} {x2:.1f},{y2:.1f}",
                )
            )
    width = 20 + len(order) * (node_width + gap_x) - gap_x
    return Layout(placed, paths, width, height, node_width, node_height, dict(columns))
