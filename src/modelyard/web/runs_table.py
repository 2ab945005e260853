"""The runs table: which columns it shows, their cells, sort links and page links."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from modelyard.floats import column_text, reads_as_number
from modelyard.schemas import RunPublic

KIND_PREFIX = {"metric": "metrics", "param": "params", "tag": "tags"}
GROUP_LABEL = {"metric": "Metrics", "param": "Params", "tag": "Tags"}
PREFIX_KIND = {v: k for k, v in KIND_PREFIX.items()}
DEFAULT_METRICS = 6
DEFAULT_PARAMS = 4
MAX_TRAIL = 30
BARE_KEY = re.compile(r"[^\s()=!<>,'\"`]+")


@dataclass(frozen=True, slots=True)
class Column:
    kind: str  # metric, param or tag
    key: str

    @property
    def field(self) -> str:
        """The column as the filter grammar names it: metrics.auc, params.`odd key`."""
        if BARE_KEY.fullmatch(self.key):
            return f"{KIND_PREFIX[self.kind]}.{self.key}"
        if "`" not in self.key:
            return f"{KIND_PREFIX[self.kind]}.`{self.key}`"
        return f"{KIND_PREFIX[self.kind]}." + "'" + self.key.replace("'", "''") + "'"

    def value(self, run: RunPublic) -> Any:
        if self.kind == "metric":
            point = run.metrics.get(self.key)
            return None if point is None else point.value
        if self.kind == "param":
            return run.params.get(self.key)
        return run.tags.get(self.key)


def parse_column(text: str) -> Column | None:
    prefix, _, key = text.partition(".")
    kind = PREFIX_KIND.get(prefix)
    if kind is None or not key:
        return None
    if len(key) >= 2 and key[0] == key[-1] and key[0] in "`'":
        key = key[1:-1].replace("''", "'") if key[0] == "'" else key[1:-1]
    return Column(kind, key)


def choose_columns(keys: dict[str, list[str]], requested: list[str] | None) -> list[Column]:
    """The columns asked for (those the project has), or a sensible first view."""
    if requested is not None:
        known = {(k, key) for k, names in keys.items() for key in names}
        chosen = [c for c in map(parse_column, requested) if c and (c.kind, c.key) in known]
        return list(dict.fromkeys(chosen))
    return [Column("metric", k) for k in keys.get("metric", [])[:DEFAULT_METRICS]] + [
        Column("param", k) for k in keys.get("param", [])[:DEFAULT_PARAMS]
    ]


@dataclass(frozen=True, slots=True)
class Cell:
    text: str
    exact: str  # the whole value, for the cell's tooltip
    numeric: bool


@dataclass(frozen=True, slots=True)
class Group:
    label: str
    span: int


def column_groups(columns: list[Column]) -> list[Group]:
    """The header above the keys: one group per stretch of columns of one kind."""
    groups: list[Group] = []
    for c in columns:
        label = GROUP_LABEL[c.kind]
        if groups and groups[-1].label == label:
            groups[-1] = Group(label, groups[-1].span + 1)
        else:
            groups.append(Group(label, 1))
    return groups


@dataclass(frozen=True, slots=True)
class Cells:
    rows: list[list[Cell]]  # one list of cells per run
    numeric: list[bool]  # per column: right-aligned


def table_cells(columns: list[Column], runs: list[RunPublic]) -> Cells:
    """Each run's cells, row by row. A metric column shows its values with the same decimals
    (see :func:`modelyard.floats.column_text`); a param or tag column whose values are all
    numbers is right-aligned too, its values shown as they were logged."""
    by_column: list[list[Cell]] = []
    numeric: list[bool] = []
    for c in columns:
        values = [c.value(run) for run in runs]
        if c.kind == "metric":
            texts = column_text(values)
            exact = ["" if v is None else str(v) for v in values]
            by_column.append([Cell(t, e, True) for t, e in zip(texts, exact, strict=True)])
            numeric.append(True)
            continue
        shown = [v for v in values if v]
        numeric.append(bool(shown) and all(reads_as_number(v) for v in shown))
        by_column.append([Cell(v or "", v or "", numeric[-1]) for v in values])
    rows = [list(row) for row in zip(*by_column, strict=True)] if columns else [[] for _ in runs]
    return Cells(rows, numeric)


def _query(state: dict[str, Any], **changes: Any) -> str:
    merged = {**state, **changes}
    pairs = [(k, v) for k, v in merged.items() if v not in (None, "", [])]
    return "?" + urlencode(pairs, doseq=True)


def sort_link(state: dict[str, Any], field: str) -> tuple[str, str]:
    """The link that sorts by ``field`` (flipping the direction when already sorted by it),
    and the arrow to show now."""
    current = state.get("order", "").strip()
    direction = ""
    if current.rsplit(" ", 1)[0] == field:
        direction = "desc" if current.endswith(" desc") else "asc"
    numeric = field.startswith(("metrics.", "start_time", "end_time", "duration"))
    flipped = "asc" if direction == "desc" else "desc"
    nxt = flipped if direction else ("desc" if numeric else "asc")
    arrow = {"asc": "▲", "desc": "▼"}.get(direction, "")
    return _query(state, order=f"{field} {nxt}"), arrow


def pager_links(
    state: dict[str, Any], page: str | None, trail: list[str], next_token: str | None
) -> dict[str, str | int | None]:
    """Keyset pages: the next link carries the current token onto a trail, so Previous
    works without offsets."""
    trail = trail[-MAX_TRAIL:]
    number = len(trail) + (2 if page else 1)
    prev = None
    if page:
        prev = _query(state, page=trail[-1], trail=trail[:-1]) if trail else _query(state)
    nxt = None
    if next_token:
        nxt = _query(state, page=next_token, trail=[*trail, page] if page else trail)
    return {"number": number, "prev": prev, "next": nxt, "first": _query(state) if page else None}
