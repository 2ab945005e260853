"""Run search: the filter grammar compiled to SQL, ordering on any field, keyset pages.

Filters become ``run.pk IN (subquery)`` conditions that the database answers from the
(key, value) indexes; each ordered field is one outer join. A page token holds the sort
values of the last row returned, so a deep page costs what the first one does.

SQLite and PostgreSQL answer alike: strings compare and sort by code point (``COLLATE "C"``
on PostgreSQL, SQLite's default BINARY), ``like`` is case-sensitive (GLOB on SQLite, whose
LIKE ignores case) and ``ilike`` ignores the case of ASCII letters on both.
"""

from __future__ import annotations

import base64
import difflib
import hashlib
import math
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import (
    Case,
    ColumnElement,
    Connection,
    FromClause,
    Select,
    String,
    and_,
    case,
    false,
    func,
    literal,
    not_,
    null,
    or_,
    select,
    true,
)

from modelyard.errors import InvalidInput
from modelyard.metadata import tables as t
from modelyard.metadata.store import Store
from modelyard.schemas import RunPage, RunSearch
from modelyard.services.projects import project_row
from modelyard.services.runs import load_runs
from modelyard.services.search_grammar import (
    ATTRIBUTES,
    NULLABLE_ATTRIBUTES,
    ORDERING_OPS,
    BoolOp,
    Compare,
    Node,
    Not,
    OrderTerm,
    is_numeric,
    parse_filter,
    parse_order_by,
)

MAX_ORDER_TERMS = 10
KIND_NAMES = {"metric": "a metric", "param": "a param", "tag": "a tag"}
_UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_ASCII_LOWER = str.maketrans(_UPPER, _UPPER.lower())


@dataclass
class Compiler:
    conn: Connection
    key_ids: dict[str, int] = field(default_factory=dict)
    joins: list[tuple[FromClause, ColumnElement[bool], bool]] = field(default_factory=list)
    # The joined copy of run.pk of the leading metric: ordering by it lets the index that
    # serves the metric's values also serve the tie-break.
    lead_pk: ColumnElement[Any] | None = None

    @property
    def postgres(self) -> bool:
        return self.conn.dialect.name == "postgresql"

    def key_id(self, key: str) -> int:
        if key not in self.key_ids:
            found = self.conn.execute(
                select(t.series_key.c.id).where(t.series_key.c.name == key)
            ).scalar_one_or_none()
            self.key_ids[key] = -1 if found is None else int(found)
        return self.key_ids[key]

    def ordered(self, col: ColumnElement[Any]) -> ColumnElement[Any]:
        """A string column that sorts by code point on every database."""
        return col.collate("C") if self.postgres else col

    # --- filters
    def where(self, node: Node) -> ColumnElement[bool]:
        if isinstance(node, BoolOp):
            parts = [self.where(n) for n in node.items]
            return and_(*parts) if node.op == "and" else or_(*parts)
        if isinstance(node, Not):
            return not_(self.where(node.item))
        return self.compare(node)

    def compare(self, c: Compare) -> ColumnElement[bool]:
        if c.kind == "attribute":
            col = attribute(c.key)
            if c.op in ("is_null", "is_not_null"):
                return col.is_(None) if c.op == "is_null" else col.is_not(None)
            cond = self.apply(col, c, is_string=ATTRIBUTES[c.key][1] == "str")
            if c.key in NULLABLE_ATTRIBUTES:
                # A missing value matches no comparison, so `not end_time > x` keeps running runs,
                # just as `not metrics.x > 1` keeps runs without the metric.
                cond = and_(t.run.c.end_time.is_not(None), cond)
            return cond
        # Correlated EXISTS: each candidate run is checked through the (run, key) primary key,
        # so a page ordered by an index stops as soon as it is full.
        if c.kind == "metric":
            lm = t.series_latest
            if c.op in ("is_null", "is_not_null"):
                has = _exists(lm, lm.c.key_id == self.key_id(c.key))
                return has if c.op == "is_not_null" else not_(has)
            return _exists(lm, lm.c.key_id == self.key_id(c.key), self.metric_cond(c))
        table = t.run_param if c.kind == "param" else t.run_tag
        if c.op in ("is_null", "is_not_null"):
            has = _exists(table, table.c.key == c.key)
            return has if c.op == "is_not_null" else not_(has)
        return _exists(table, table.c.key == c.key, self.apply(table.c.value, c, is_string=True))

    def metric_cond(self, c: Compare) -> ColumnElement[bool]:
        """NaN is a value of its own: it equals NaN only and is neither above nor below any
        number, so `!= 1` and `not in (1)` match it and `= NaN` finds it."""
        lm = t.series_latest
        is_nan, number = lm.c.is_nan.is_(True), lm.c.is_nan.is_(False)
        if c.op in ORDERING_OPS:
            return and_(number, self.apply(lm.c.value, c, is_string=False))
        values = c.value if isinstance(c.value, tuple) else (c.value,)
        numbers = [v for v in values if not (isinstance(v, float) and math.isnan(v))]
        nan = len(numbers) < len(values)
        if c.op in ("=", "in"):
            hits = [and_(number, lm.c.value.in_(numbers))] if numbers else []
            return or_(*hits, is_nan) if nan else or_(*hits, false())
        # != and not in
        misses = and_(number, lm.c.value.not_in(numbers)) if numbers else number
        return misses if nan else or_(misses, is_nan)

    def apply(self, col: ColumnElement[Any], c: Compare, *, is_string: bool) -> ColumnElement[bool]:
        v = c.value
        if c.op in ("like", "ilike"):
            assert isinstance(v, str)
            return self.like(col, v, fold=c.op == "ilike")
        if c.op in ORDERING_OPS and is_string:
            col = self.ordered(col)
        ops: dict[str, Any] = {
            "=": lambda: col == v,
            "!=": lambda: col != v,
            "<": lambda: col < v,
            "<=": lambda: col <= v,
            ">": lambda: col > v,
            ">=": lambda: col >= v,
            "in": lambda: col.in_(list(v)),  # type: ignore[arg-type]
            "not_in": lambda: col.not_in(list(v)),  # type: ignore[arg-type]
        }
        result: ColumnElement[bool] = ops[c.op]()
        return result

    def like(self, col: ColumnElement[Any], pattern: str, *, fold: bool) -> ColumnElement[bool]:
        """``like``: ``%`` any run of characters, ``_`` any one, ``\\`` escapes the next
        character; case-sensitive. ``ilike`` also ignores the case of ASCII letters."""
        parts = like_parts(pattern.translate(_ASCII_LOWER) if fold else pattern)
        if self.postgres:
            text = "".join(
                {"any": "%", "one": "_"}.get(kind) or ("\\" + ch if ch in "%_\\" else ch)
                for kind, ch in parts
            )
            if fold:
                col = func.translate(col, _UPPER, _UPPER.lower(), type_=String)
            return col.like(text, escape="\\")
        # SQLite's LIKE ignores ASCII case; GLOB is case-sensitive and compares code points.
        text = "".join(
            {"any": "*", "one": "?"}.get(kind) or (f"[{ch}]" if ch in "*?[" else ch)
            for kind, ch in parts
        )
        if fold:
            col = func.lower(col, type_=String)  # ASCII-only in SQLite without ICU
        glob: ColumnElement[bool] = col.op("GLOB", is_comparison=True)(text)
        return glob

    # --- ordering
    def order_key(self, term: OrderTerm) -> Key:
        """A sort key over an outer join: runs without the field sort last."""
        if term.kind == "attribute":
            col = attribute(term.key)
            if ATTRIBUTES[term.key][1] == "str":
                col = self.ordered(col)
            return Key(col, term.descending, term.key in NULLABLE_ATTRIBUTES)
        n = len(self.joins)
        if term.kind == "metric":
            lm = t.series_latest.alias(f"o{n}")
            on = and_(_owned_by_run(lm), lm.c.key_id == self.key_id(term.key))
            self.joins.append((lm, on, True))
            expr: Case[Any] = case((lm.c.is_nan.is_(True), None), else_=lm.c.value)
            return Key(expr, term.descending, True)
        table = (t.run_param if term.kind == "param" else t.run_tag).alias(f"o{n}")
        on = and_(table.c.run_pk == t.run.c.pk, table.c.key == term.key)
        self.joins.append((table, on, True))
        return Key(self.ordered(table.c.value), term.descending, True)

    def leading_key(self, term: OrderTerm, present: bool) -> tuple[Key | None, list[Any]]:
        """The first sort key restricted to runs that have the field (``present``) or not.

        Splitting the runs this way keeps the first key free of NULLs, so a page ordered by
        a metric walks the (key, value) index and stops once full."""
        if not is_nullable(term):
            return self.order_key(term), []
        if term.kind == "attribute":
            col = attribute(term.key)
            if present:
                return Key(col, term.descending, False), [col.is_not(None)]
            return None, [col.is_(None)]
        if term.kind == "metric":
            lm = t.series_latest.alias("lead")
            on = and_(
                _owned_by_run(lm),
                lm.c.key_id == self.key_id(term.key),
                lm.c.is_nan.is_(False),
            )
            if present:
                self.joins.append((lm, on, False))
                self.lead_pk = lm.c.owner_id
                return Key(lm.c.value, term.descending, False), []
            base = t.series_latest
            return None, [
                not_(
                    _exists(base, base.c.key_id == self.key_id(term.key), base.c.is_nan.is_(False))
                )
            ]
        table = (t.run_param if term.kind == "param" else t.run_tag).alias("lead")
        if present:
            self.joins.append(
                (table, and_(table.c.run_pk == t.run.c.pk, table.c.key == term.key), False)
            )
            return Key(self.ordered(table.c.value), term.descending, False), []
        base = t.run_param if term.kind == "param" else t.run_tag
        return None, [not_(_exists(base, base.c.key == term.key))]


@dataclass(frozen=True)
class Key:
    expr: ColumnElement[Any]
    desc: bool
    nullable: bool


def is_nullable(term: OrderTerm) -> bool:
    return term.kind != "attribute" or term.key in NULLABLE_ATTRIBUTES


def _owned_by_run(table: Any) -> ColumnElement[bool]:
    """The rows of ``table`` (a run index, or the latest series values) of the candidate run."""
    if "owner_id" in table.c:
        return and_(table.c.owner_kind == t.SERIES_RUN, table.c.owner_id == t.run.c.pk)
    result: ColumnElement[bool] = table.c.run_pk == t.run.c.pk
    return result


def _exists(table: Any, *conds: ColumnElement[bool]) -> ColumnElement[bool]:
    return select(literal(1)).where(_owned_by_run(table), *conds).exists()


def like_parts(pattern: str) -> list[tuple[str, str]]:
    """A like pattern as ("any", ""), ("one", "") and ("char", c) parts. A backslash makes the
    next character literal; a trailing backslash is itself literal."""
    parts: list[tuple[str, str]] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            parts.append(("char", pattern[i + 1]))
            i += 2
            continue
        parts.append(("any", "") if ch == "%" else ("one", "") if ch == "_" else ("char", ch))
        i += 1
    return parts


def attribute(name: str) -> ColumnElement[Any]:
    if name == "run_id":
        return t.run.c.id
    if name == "duration":
        return t.run.c.end_time - t.run.c.start_time
    return t.run.c[name]


# --- page tokens
def _signature(req: RunSearch) -> str:
    raw = orjson.dumps([req.project, req.projects, req.filter, req.order_by])
    return hashlib.sha256(raw).hexdigest()[:16]


def _encode_token(sig: str, values: list[Any]) -> str:
    # JSON has no infinities (orjson would write null): they travel as {"f": "inf"}.
    plain = [
        {"f": "inf" if v > 0 else "-inf"} if isinstance(v, float) and math.isinf(v) else v
        for v in values
    ]
    return base64.urlsafe_b64encode(orjson.dumps({"s": sig, "v": plain})).decode().rstrip("=")


def _token_value(v: Any, kind: str) -> tuple[bool, Any]:
    """Whether ``v`` is a valid sort value of ``kind`` (num, str or pk), and the value."""
    if v is None:
        return kind != "pk", None
    if kind == "str":
        return isinstance(v, str), v
    if kind == "pk":
        return isinstance(v, int) and not isinstance(v, bool), v
    if v in ({"f": "inf"}, {"f": "-inf"}):
        return True, math.inf if v["f"] == "inf" else -math.inf
    return isinstance(v, int | float) and not isinstance(v, bool), v


def _decode_token(token: str, sig: str, kinds: list[str]) -> list[Any]:
    values: list[Any] = []
    try:
        data = orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        raw = data["v"]
        ok = data["s"] == sig and isinstance(raw, list) and len(raw) == len(kinds)
        for v, kind in zip(raw, kinds, strict=ok):
            valid, value = _token_value(v, kind)
            ok = ok and valid
            values.append(value)
    except (ValueError, KeyError, TypeError):
        ok = False
    if not ok:
        raise InvalidInput(
            "page_token is not valid for this search (it belongs to another filter, order or "
            "project, or is damaged); start again without it"
        )
    return values


def _after(keys: list[Key], values: list[Any]) -> ColumnElement[bool]:
    """Rows strictly after ``values`` in the order of ``keys``, NULLs last in every key."""
    clauses = []
    equal_so_far: list[ColumnElement[bool]] = []
    for key, v in zip(keys, values, strict=True):
        expr = key.expr
        if v is None:
            after: ColumnElement[bool] = false()
            equal = expr.is_(None)
        else:
            beyond = expr < v if key.desc else expr > v
            after = or_(expr.is_(None), beyond) if key.nullable else beyond
            equal = expr == v
        clauses.append(and_(*equal_so_far, after) if equal_so_far else after)
        equal_so_far.append(equal)
    first, v = keys[0], values[0]
    if first.nullable or v is None:
        return or_(*clauses)
    # Also bound the first key on its own, so the database can seek its index to the cursor.
    bound = first.expr <= v if first.desc else first.expr >= v
    return and_(bound, or_(*clauses))


def _project_ids(conn: Connection, req: RunSearch) -> list[int] | None:
    names = ([req.project] if req.project else []) + (req.projects or [])
    ids = []
    for name in names:
        # By name first: a project may well be called "2024".
        found = conn.execute(select(t.project.c.id).where(t.project.c.name == name)).scalar()
        ids.append(int(found) if found is not None else int(project_row(conn, name).id))
    return ids if names else None


def search_runs(store: Store, *, req: RunSearch, readable: frozenset[int] | None) -> RunPage:
    """A page of runs; ``readable`` (the projects the caller may read, None for all) bounds a
    search that names no project."""
    node = parse_filter(req.filter)
    if len(req.order_by) > MAX_ORDER_TERMS:
        raise InvalidInput(f"at most {MAX_ORDER_TERMS} order_by terms")
    terms = [parse_order_by(o) for o in req.order_by] or [
        OrderTerm("attribute", "start_time", True)
    ]
    sig = _signature(req)
    cursor = None
    if req.page_token:
        kinds = ["num" if is_numeric(o.kind, o.key) else "str" for o in terms] + ["pk"]
        cursor = _decode_token(req.page_token, sig, kinds)
    # Runs that have the first sort field come first, then those that lack it.
    segments = [True, False] if is_nullable(terms[0]) else [True]
    if cursor is not None and cursor[0] is None and len(segments) == 2:
        segments = [False]
    with store.read() as conn:
        ids = _project_ids(conn, req)
        if ids is None and readable is not None:
            ids = sorted(readable)
        rows: list[Any] = []
        for n, present in enumerate(segments):
            query = _segment_query(conn, terms, node, ids, present, cursor if n == 0 else None)
            rows += conn.execute(query.limit(req.page_size + 1 - len(rows))).all()
            if len(rows) > req.page_size:
                break
        page = rows[: req.page_size]
        token = _encode_token(sig, list(page[-1])) if len(rows) > req.page_size else None
        return RunPage(runs=load_runs(conn, [r[-1] for r in page]), next_page_token=token)


def _segment_query(
    conn: Connection,
    terms: list[OrderTerm],
    node: Node | None,
    ids: list[int] | None,
    present: bool,
    cursor: list[Any] | None,
) -> Select[Any]:
    comp = Compiler(conn)
    lead, conds = comp.leading_key(terms[0], present)
    keys = ([lead] if lead is not None else []) + [comp.order_key(term) for term in terms[1:]]
    tiebreak = comp.lead_pk if comp.lead_pk is not None and len(terms) == 1 else t.run.c.pk
    keys.append(Key(tiebreak, terms[-1].descending, False))
    source: FromClause = t.run
    for table, on, outer in comp.joins:
        source = source.outerjoin(table, on) if outer else source.join(table, on)
    columns = [k.expr for k in keys]
    if lead is None:
        columns.insert(0, null())
    query: Select[Any] = select(*columns).select_from(source)
    if ids is not None:
        conds.append(t.run.c.project_id.in_(ids))
    if node is not None:
        conds.append(comp.where(node))
    if cursor is not None:
        conds.append(_after(keys, cursor if lead is not None else cursor[1:]))
    query = query.where(and_(true(), *conds))
    for key in keys:
        if key.nullable:
            query = query.order_by(key.expr.is_(None))
        query = query.order_by(key.expr.desc() if key.desc else key.expr.asc())
    return query


# --- filters over keys no run has
@dataclass(frozen=True)
class UnknownKey:
    """A key a filter names that no run in the project has, and what the user may have meant."""

    kind: str  # metric, param or tag
    key: str
    suggestions: list[str]  # keys of the same kind that look alike
    other_kinds: list[str]  # kinds that do have a key of this name

    @property
    def message(self) -> str:
        text = f"No run in this project has {KIND_NAMES[self.kind]} named {self.key!r}"
        meant = [f"{KIND_PREFIX_NAMES[k]}.{self.key}" for k in self.other_kinds]
        meant += [repr(k) for k in self.suggestions]
        return text + ("; did you mean " + " or ".join(meant) + "?" if meant else ".")


KIND_PREFIX_NAMES = {"metric": "metrics", "param": "params", "tag": "tags"}


def _named_keys(node: Node | None) -> list[tuple[str, str]]:
    """The (kind, key) of every metric, param and tag comparison in a filter, in order."""
    if node is None:
        return []
    if isinstance(node, BoolOp):
        return [pair for item in node.items for pair in _named_keys(item)]
    if isinstance(node, Not):
        return _named_keys(node.item)
    return [] if node.kind == "attribute" else [(node.kind, node.key)]


def look_alike(key: str, keys: list[str], n: int = 3) -> list[str]:
    """Keys that ``key`` may have meant: those that start with or contain it (ignoring case),
    then the closest by difflib's similarity."""
    folded = key.casefold()
    near = [k for k in keys if k.casefold().startswith(folded)]
    near += [k for k in keys if folded in k.casefold() and k not in near]
    near += difflib.get_close_matches(key, keys, n=n, cutoff=0.5)
    return list(dict.fromkeys(near))[:n]


def unknown_keys(filter_text: str, keys: dict[str, list[str]]) -> list[UnknownKey]:
    """The keys a filter names that no run of the project has, given the project's keys by
    kind (:func:`modelyard.services.projects.project_keys`). A filter that does not parse
    has none: its syntax error is the message."""
    try:
        node = parse_filter(filter_text)
    except InvalidInput:
        return []
    found: list[UnknownKey] = []
    for kind, key in dict.fromkeys(_named_keys(node)):
        if key in keys.get(kind, []):
            continue
        others = [k for k in ("metric", "param", "tag") if k != kind and key in keys.get(k, [])]
        found.append(UnknownKey(kind, key, look_alike(key, keys.get(kind, [])), others))
    return found
