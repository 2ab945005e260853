"""Run search: the filter grammar compiled to SQL, ordering on any field, keyset pages.

Filters become ``run.pk IN (subquery)`` conditions that the database answers from the
(key, value) indexes; each ordered field is one outer join. A page token holds the sort
values of the last row returned, so a deep page costs what the first one does.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import (
    Case,
    ColumnElement,
    Connection,
    FromClause,
    Select,
    and_,
    case,
    false,
    func,
    not_,
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
    BoolOp,
    Compare,
    Node,
    Not,
    OrderTerm,
    parse_filter,
    parse_order_by,
)

MAX_ORDER_TERMS = 10


@dataclass
class Compiler:
    conn: Connection
    key_ids: dict[str, int] = field(default_factory=dict)
    joins: list[tuple[FromClause, ColumnElement[bool]]] = field(default_factory=list)

    def key_id(self, key: str) -> int:
        if key not in self.key_ids:
            found = self.conn.execute(
                select(t.metric_key.c.id).where(t.metric_key.c.name == key)
            ).scalar_one_or_none()
            self.key_ids[key] = -1 if found is None else int(found)
        return self.key_ids[key]

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
            return _apply(attribute(c.key), c)
        if c.kind == "metric":
            lm = t.latest_metric
            present = select(lm.c.run_pk).where(lm.c.key_id == self.key_id(c.key))
            if c.op in ("is_null", "is_not_null"):
                has = t.run.c.pk.in_(present)
                return has if c.op == "is_not_null" else not_(has)
            nan_ok = c.op == "!=" or (c.op == "not_in")
            cond = _apply(lm.c.value, c)
            cond = (
                or_(lm.c.is_nan.is_(True), cond) if nan_ok else and_(lm.c.is_nan.is_(False), cond)
            )
            return t.run.c.pk.in_(present.where(cond))
        table = t.run_param if c.kind == "param" else t.run_tag
        present = select(table.c.run_pk).where(table.c.key == c.key)
        if c.op in ("is_null", "is_not_null"):
            has = t.run.c.pk.in_(present)
            return has if c.op == "is_not_null" else not_(has)
        cond = _apply(table.c.value, c)
        if c.op in ("=", "in"):
            # Lets the database use the (key, value-prefix) index.
            values = c.value if isinstance(c.value, tuple) else (c.value,)
            prefix = func.substr(table.c.value, 1, t.VALUE_INDEX_PREFIX)
            cond = and_(prefix.in_([str(v)[: t.VALUE_INDEX_PREFIX] for v in values]), cond)
        return t.run.c.pk.in_(present.where(cond))

    # --- ordering
    def order_expr(self, term: OrderTerm) -> ColumnElement[Any]:
        if term.kind == "attribute":
            return attribute(term.key)
        n = len(self.joins)
        if term.kind == "metric":
            lm = t.latest_metric.alias(f"o{n}")
            on = and_(lm.c.run_pk == t.run.c.pk, lm.c.key_id == self.key_id(term.key))
            self.joins.append((lm, on))
            expr: Case[Any] = case((lm.c.is_nan.is_(True), None), else_=lm.c.value)
            return expr
        table = (t.run_param if term.kind == "param" else t.run_tag).alias(f"o{n}")
        self.joins.append((table, and_(table.c.run_pk == t.run.c.pk, table.c.key == term.key)))
        return table.c.value


def attribute(name: str) -> ColumnElement[Any]:
    if name == "run_id":
        return t.run.c.id
    if name == "duration":
        return t.run.c.end_time - t.run.c.start_time
    return t.run.c[name]


def _apply(col: ColumnElement[Any], c: Compare) -> ColumnElement[bool]:
    v = c.value
    ops: dict[str, Any] = {
        "=": lambda: col == v,
        "!=": lambda: col != v,
        "<": lambda: col < v,
        "<=": lambda: col <= v,
        ">": lambda: col > v,
        ">=": lambda: col >= v,
        "like": lambda: col.like(v),
        "ilike": lambda: func.lower(col).like(func.lower(v)),
        "in": lambda: col.in_(list(v)),  # type: ignore[arg-type]
        "not_in": lambda: col.not_in(list(v)),  # type: ignore[arg-type]
        "is_null": lambda: col.is_(None),
        "is_not_null": lambda: col.is_not(None),
    }
    result: ColumnElement[bool] = ops[c.op]()
    return result


# --- page tokens
def _signature(req: RunSearch) -> str:
    raw = orjson.dumps([req.project, req.projects, req.filter, req.order_by])
    return hashlib.sha256(raw).hexdigest()[:16]


def _encode_token(sig: str, values: list[Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps({"s": sig, "v": values})).decode().rstrip("=")


def _decode_token(token: str, sig: str, n: int) -> list[Any]:
    try:
        data = orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        values = data["v"]
        ok = data["s"] == sig and isinstance(values, list) and len(values) == n
    except (ValueError, KeyError, TypeError):
        ok = False
    if not ok:
        raise InvalidInput("page_token is not valid for this search; start again without it")
    return list(values)


def _after(keys: list[tuple[ColumnElement[Any], bool]], values: list[Any]) -> ColumnElement[bool]:
    """Rows strictly after ``values`` in the order of ``keys``, NULLs last in every key."""
    clauses = []
    equal_so_far: list[ColumnElement[bool]] = []
    for (expr, desc), v in zip(keys, values, strict=True):
        if v is None:
            after: ColumnElement[bool] = false()
            equal = expr.is_(None)
        else:
            after = or_(expr.is_(None), expr < v if desc else expr > v)
            equal = expr == v
        clauses.append(and_(*equal_so_far, after) if equal_so_far else after)
        equal_so_far.append(equal)
    return or_(*clauses)


def _project_ids(conn: Connection, req: RunSearch) -> list[int] | None:
    names = ([req.project] if req.project else []) + (req.projects or [])
    return [int(project_row(conn, n).id) for n in names] if names else None


def search_runs(store: Store, *, req: RunSearch) -> RunPage:
    node = parse_filter(req.filter)
    if len(req.order_by) > MAX_ORDER_TERMS:
        raise InvalidInput(f"at most {MAX_ORDER_TERMS} order_by terms")
    terms = [parse_order_by(o) for o in req.order_by] or [
        OrderTerm("attribute", "start_time", True)
    ]
    with store.read() as conn:
        comp = Compiler(conn)
        keys = [(comp.order_expr(term), term.descending) for term in terms]
        tiebreak_desc = keys[-1][1]
        keys.append((t.run.c.pk, tiebreak_desc))
        source: FromClause = t.run
        for table, on in comp.joins:
            source = source.outerjoin(table, on)
        query: Select[Any] = select(*[k for k, _ in keys]).select_from(source)
        ids = _project_ids(conn, req)
        conds: list[ColumnElement[bool]] = []
        if ids is not None:
            conds.append(t.run.c.project_id.in_(ids))
        if node is not None:
            conds.append(comp.where(node))
        sig = _signature(req)
        if req.page_token:
            conds.append(_after(keys, _decode_token(req.page_token, sig, len(keys))))
        query = query.where(and_(true(), *conds))
        for expr, desc in keys:
            query = query.order_by(expr.is_(None), expr.desc() if desc else expr.asc())
        rows = conn.execute(query.limit(req.page_size + 1)).all()
        page = rows[: req.page_size]
        token = _encode_token(sig, list(page[-1])) if len(rows) > req.page_size else None
        return RunPage(runs=load_runs(conn, [r[-1] for r in page]), next_page_token=token)
