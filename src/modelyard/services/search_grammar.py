"""The run filter grammar: a parser from text to a small syntax tree.

    expr    := term ("or" term)*
    term    := factor ("and" factor)*
    factor  := "not" factor | "(" expr ")" | compare
    compare := field op value | field "is" ["not"] "null" | field ["not"] "in" "(" values ")"
    field   := (metrics|params|tags|attributes) "." key | attribute
    key     := bare-key | `backquoted` | 'quoted' | "quoted"
    op      := = | == | != | <> | < | <= | > | >= | like | ilike
    value   := 'string' | "string" | number | nan | inf | -inf

A bare key runs up to the first space, quote, parenthesis, comma or comparison sign, so
``metrics.val.loss`` is the key ``val.loss`` and ``params.layers.0.units`` the key
``layers.0.units``; keys with spaces are quoted (``metrics.`val loss```). Keywords, prefixes
and attribute names are case-insensitive; keys and values are not. Bare names are
attributes (status, name, start_time, ...).

In quoted values a backslash escapes the quote and itself (``'it\\'s'``, or double the quote:
``'it''s'``); any other backslash is kept, so the like pattern ``'50\\%'`` matches a literal
``50%``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal

from modelyard.errors import InvalidInput

Kind = Literal["metric", "param", "tag", "attribute"]
Value = str | int | float | None | tuple[str | int | float, ...]

PREFIXES: dict[str, Kind] = {
    "metrics": "metric",
    "metric": "metric",
    "params": "param",
    "param": "param",
    "parameters": "param",
    "tags": "tag",
    "tag": "tag",
    "attributes": "attribute",
    "attribute": "attribute",
    "attr": "attribute",
    "run": "attribute",
}
# Attribute name -> (canonical name, type)
ATTRIBUTES: dict[str, tuple[str, Literal["str", "num"]]] = {
    "status": ("status", "str"),
    "name": ("name", "str"),
    "run_name": ("name", "str"),
    "run_id": ("run_id", "str"),
    "id": ("run_id", "str"),
    "start_time": ("start_time", "num"),
    "created": ("start_time", "num"),
    "end_time": ("end_time", "num"),
    "duration": ("duration", "num"),
    "last_heartbeat": ("last_heartbeat", "num"),
    "created_by": ("created_by", "str"),
    "user_id": ("created_by", "str"),
    "user": ("created_by", "str"),
}
# Attributes that may be NULL (end_time and duration while a run is still running).
NULLABLE_ATTRIBUTES = frozenset({"end_time", "duration", "last_heartbeat"})
KIND_PREFIX: dict[Kind, str] = {
    "metric": "metrics",
    "param": "params",
    "tag": "tags",
    "attribute": "attributes",
}
# Limits that keep a hostile filter from exhausting the parser or the database.
MAX_DEPTH = 64
MAX_CONDITIONS = 500

_PREFIX = "|".join(sorted(PREFIXES, key=len, reverse=True))
_SQ = r"'(?:[^'\\]|\\.|'')*'"
_DQ = r'"(?:[^"\\]|\\.|"")*"'
_BQ = r"`[^`]*`"
TOKEN = re.compile(
    rf"""\s*(?:
      (?P<field>(?i:{_PREFIX})\.(?:{_BQ}|{_SQ}|{_DQ}|[^\s()=!<>,'"`]+))
    | (?P<num>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?(?![\w.])
        |[-+]?(?i:infinity|inf|nan)(?![\w.\-]))
    | (?P<str>{_SQ}|{_DQ})
    | (?P<bq>{_BQ})
    | (?P<op>==|!=|<>|<=|>=|=|<|>)
    | (?P<punct>[(),.])
    | (?P<word>[A-Za-z_][\w\-:/]*)
    )""",
    re.VERBOSE,
)
ORDERING_OPS = frozenset({"<", "<=", ">", ">="})
INT64 = 2**63


@dataclass(frozen=True)
class Compare:
    kind: Kind
    key: str
    op: str  # = != < <= > >= like ilike in not_in is_null is_not_null
    value: Value


@dataclass(frozen=True)
class BoolOp:
    op: Literal["and", "or"]
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    item: Node


Node = Compare | BoolOp | Not


@dataclass(frozen=True)
class Token:
    type: str
    text: str
    pos: int


def tokenize(text: str, what: str = "filter") -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            where = len(text) - len(text[pos:].lstrip())
            char = text[where]
            if char in "'\"`":
                problem = f"unterminated {char}quoted{char} string starting"
            else:
                problem = f"unexpected character {char!r}"
            raise InvalidInput(
                f"{what}: {problem} at position {where}",
                details={"position": where, what: text},
            )
        kind = m.lastgroup or ""
        tokens.append(Token(kind, m.group(kind), m.start(kind)))
        pos = m.end()
    return tokens


def _unquote(text: str) -> str:
    """The value of a quoted or backquoted token."""
    quote, body = text[0], text[1:-1]
    if quote == "`":
        return body
    return re.sub(r"\\([\\'\"])|" + quote * 2, lambda m: m.group(1) or quote, body)


def _number(text: str) -> int | float:
    if re.fullmatch(r"[-+]?\d+", text):
        n = int(text)
        # Beyond 64 bits no column can hold it; compare it as a float instead.
        return n if -INT64 < n < INT64 else float(n)
    return float(text)


def is_numeric(kind: Kind, key: str) -> bool:
    return kind == "metric" or (kind == "attribute" and ATTRIBUTES[key][1] == "num")


def label(kind: Kind, key: str) -> str:
    return key if kind == "attribute" else f"{KIND_PREFIX[kind]}.{key}"


def _is_nan(v: object) -> bool:
    return isinstance(v, float) and math.isnan(v)


class Parser:
    def __init__(self, text: str, what: str = "filter") -> None:
        self.text = text
        self.what = what
        self.tokens = tokenize(text, what)
        self.i = 0
        self.conditions = 0

    def error(self, message: str, pos: int | None = None) -> InvalidInput:
        if pos is None:
            pos = self.tokens[self.i].pos if self.i < len(self.tokens) else len(self.text)
        where = f"position {pos}" if pos < len(self.text) else f"position {pos} (the end)"
        return InvalidInput(
            f"{self.what}: {message} at {where}",
            details={"position": pos, self.what: self.text},
        )

    def peek(self) -> Token | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def found(self) -> str:
        tok = self.peek()
        return "nothing" if tok is None else repr(tok.text)

    def word(self, *words: str) -> bool:
        tok = self.peek()
        if tok is not None and tok.type == "word" and tok.text.lower() in words:
            self.i += 1
            return True
        return False

    def punct(self, p: str) -> bool:
        tok = self.peek()
        if tok is not None and tok.type == "punct" and tok.text == p:
            self.i += 1
            return True
        return False

    def parse(self) -> Node | None:
        if not self.tokens:
            return None
        node = self.expr(0)
        tok = self.peek()
        if tok is not None:
            if tok.type == "punct" and tok.text == ")":
                raise self.error("unbalanced ')': there is no '(' for it to close")
            raise self.error(
                f"unexpected {tok.text!r} after a complete condition "
                "(join conditions with 'and' or 'or')"
            )
        return node

    def expr(self, depth: int) -> Node:
        items = [self.term(depth)]
        while self.word("or"):
            items.append(self.term(depth))
        return items[0] if len(items) == 1 else BoolOp("or", tuple(items))

    def term(self, depth: int) -> Node:
        items = [self.factor(depth)]
        while self.word("and"):
            items.append(self.factor(depth))
        return items[0] if len(items) == 1 else BoolOp("and", tuple(items))

    def factor(self, depth: int) -> Node:
        if depth >= MAX_DEPTH:
            raise self.error(f"conditions nest more than {MAX_DEPTH} levels deep")
        if self.word("not"):
            return Not(self.factor(depth + 1))
        opening = self.peek()
        if self.punct("("):
            node = self.expr(depth + 1)
            if not self.punct(")"):
                assert opening is not None
                raise self.error(
                    f"expected ')' to close the '(' at position {opening.pos}, found {self.found()}"
                )
            return node
        return self.compare()

    def field(self) -> tuple[Kind, str]:
        tok = self.peek()
        if tok is None:
            raise self.error("expected a field such as metrics.auc, params.model or status")
        if tok.type == "field":
            self.i += 1
            prefix, raw = tok.text.split(".", 1)
            kind = PREFIXES[prefix.lower()]
            key = _unquote(raw) if raw[0] in "'\"`" else raw
            if not key:
                raise self.error(f"empty {kind} name", tok.pos)
            if kind == "attribute":
                return self._attribute(key, tok.pos)
            return kind, key
        if tok.type == "word" and tok.text.lower() in PREFIXES:
            nxt = self.tokens[self.i + 1] if self.i + 1 < len(self.tokens) else None
            if nxt is not None and nxt.type == "punct" and nxt.text == ".":
                raise self.error(
                    f"expected a {PREFIXES[tok.text.lower()]} name right after "
                    f"'{tok.text}.' (quote names with spaces: {tok.text}.`my key`)",
                    nxt.pos,
                )
        if tok.type in ("word", "bq", "str"):
            self.i += 1
            name = tok.text if tok.type == "word" else _unquote(tok.text)
            return self._attribute(name, tok.pos)
        raise self.error(
            f"expected a field such as metrics.auc, params.model or status, found {tok.text!r}"
        )

    def _attribute(self, name: str, pos: int) -> tuple[Kind, str]:
        found = ATTRIBUTES.get(name.lower())
        if found is None:
            known = ", ".join(sorted({v[0] for v in ATTRIBUTES.values()}))
            raise self.error(
                f"unknown field {name!r}: use metrics.<key>, params.<key>, tags.<key> "
                f"or one of {known}",
                pos,
            )
        return "attribute", found[0]

    def value(self, kind: Kind, key: str) -> str | int | float:
        tok = self.peek()
        what = label(kind, key)
        numeric = is_numeric(kind, key)
        if tok is None or (tok.type == "punct" and tok.text in "(),"):
            example = "0.5" if numeric else "'some value'"
            raise self.error(f"expected a value to compare {what} with, e.g. {example}")
        if tok.type == "num" and numeric:
            self.i += 1
            return _number(tok.text)
        if tok.type == "str" and not numeric:
            self.i += 1
            return _unquote(tok.text)
        if numeric:
            raise self.error(f"{what} is a number; compare it with a number, not {tok.text}")
        if tok.type == "bq":
            raise self.error(
                f"{what} is a string; quote values with ' or \" (backquotes are for names)"
            )
        raise self.error(f"{what} is a string; quote the value: '{tok.text}'")

    def compare(self) -> Compare:
        self.conditions += 1
        if self.conditions > MAX_CONDITIONS:
            raise self.error(
                f"more than {MAX_CONDITIONS} conditions; "
                "compare a field with many values using 'in (...)'"
            )
        kind, key = self.field()
        what = label(kind, key)
        if self.word("is"):
            negate = self.word("not")
            if not self.word("null"):
                raise self.error(f"expected 'null' or 'not null' after 'is', found {self.found()}")
            return Compare(kind, key, "is_not_null" if negate else "is_null", None)
        negate = self.word("not")
        if self.word("in"):
            if not self.punct("("):
                raise self.error(f"expected '(' after 'in', found {self.found()}")
            closing = self.peek()
            if closing is not None and closing.type == "punct" and closing.text == ")":
                example = "1, 2" if is_numeric(kind, key) else "'a', 'b'"
                raise self.error(
                    f"empty list after 'in': give at least one value, e.g. {what} in ({example})"
                )
            values = [self.value(kind, key)]
            while self.punct(","):
                values.append(self.value(kind, key))
            if not self.punct(")"):
                raise self.error(
                    f"expected ',' or ')' in the list after 'in', found {self.found()}"
                )
            if any(_is_nan(v) for v in values) and kind != "metric":
                raise self.error(f"{what} is never NaN")
            return Compare(kind, key, "not_in" if negate else "in", tuple(values))
        if negate:
            raise self.error(f"expected 'in' after 'not', found {self.found()}")
        tok = self.peek()
        if tok is not None and tok.type == "word" and tok.text.lower() in ("like", "ilike"):
            op = tok.text.lower()
            if is_numeric(kind, key):
                raise self.error(f"{op} matches strings, but {what} is a number")
            self.i += 1
        elif tok is not None and tok.type == "op":
            self.i += 1
            op = {"==": "=", "<>": "!="}.get(tok.text, tok.text)
        else:
            raise self.error(
                f"expected a comparison after {what} (=, !=, <, <=, >, >=, like, ilike, "
                f"in, not in, is null, is not null), found {self.found()}"
            )
        at = self.peek()
        value = self.value(kind, key)
        if _is_nan(value):
            if kind != "metric":
                raise self.error(f"{what} is never NaN", at.pos if at else None)
            if op in ORDERING_OPS:
                raise self.error(
                    "NaN is not ordered; compare it with = or != only", at.pos if at else None
                )
        return Compare(kind, key, op, value)


def parse_filter(text: str) -> Node | None:
    return Parser(text).parse()


@dataclass(frozen=True)
class OrderTerm:
    kind: Kind
    key: str
    descending: bool


def parse_order_by(term: str) -> OrderTerm:
    p = Parser(term, "order_by")
    if not p.tokens:
        raise InvalidInput("order_by: empty term; use '<field> [asc|desc]'")
    kind, key = p.field()
    descending = False
    if p.word("desc", "descending"):
        descending = True
    else:
        p.word("asc", "ascending")
    if p.peek() is not None:
        raise p.error(f"unexpected {p.found()} in {term!r}; use '<field> [asc|desc]'")
    return OrderTerm(kind, key, descending)


def quote_string(value: str) -> str:
    """A string literal for a filter: single-quoted, inner quotes doubled."""
    return "'" + value.replace("'", "''") + "'"
