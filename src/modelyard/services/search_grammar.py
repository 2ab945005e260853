"""The run filter grammar: a parser from text to a small syntax tree.

    expr    := term ("or" term)*
    term    := factor ("and" factor)*
    factor  := "not" factor | "(" expr ")" | compare
    compare := field op value | field "is" ["not"] "null" | field ["not"] "in" "(" values ")"
    field   := [metrics|params|tags|attributes "."] name     (name may be quoted or `backquoted`)
    op      := = | == | != | <> | < | <= | > | >= | like | ilike

Keywords are case-insensitive. Bare names are attributes (status, name, start_time, ...).
"""

from __future__ import annotations

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
    "created_by": ("created_by", "str"),
    "user_id": ("created_by", "str"),
    "user": ("created_by", "str"),
}

TOKEN = re.compile(
    r"""\s*(?:
      (?P<num>-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)(?![\w.])
    | (?P<str>'(?:[^'\\]|\\.|'')*'|"(?:[^"\\]|\\.)*")
    | (?P<bq>`[^`]*`)
    | (?P<op>==|!=|<>|<=|>=|=|<|>)
    | (?P<punct>[(),.])
    | (?P<word>[A-Za-z_][\w\-:/]*)
    )""",
    re.VERBOSE,
)


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


def tokenize(text: str) -> list[Token]:
    tokens, pos = [], 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise InvalidInput(
                f"filter: unexpected character {text[pos:].lstrip()[:1]!r} at "
                f"position {len(text) - len(text[pos:].lstrip())}"
            )
        kind = m.lastgroup or ""
        start = m.start(kind)
        tokens.append(Token(kind, m.group(kind), start))
        pos = m.end()
    return tokens


def _unquote(tok: Token) -> str:
    body = tok.text[1:-1]
    if tok.text[0] == "'":
        body = body.replace("''", "'")
    return re.sub(r"\\(.)", r"\1", body) if tok.type == "str" else body


class Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0

    def error(self, message: str) -> InvalidInput:
        where = self.tokens[self.i].pos if self.i < len(self.tokens) else len(self.text)
        return InvalidInput(
            f"filter: {message} at position {where}",
            details={"position": where, "filter": self.text},
        )

    def peek(self) -> Token | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

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
        node = self.expr()
        if self.peek() is not None:
            raise self.error(f"unexpected {self.peek().text!r}")  # type: ignore[union-attr]
        return node

    def expr(self) -> Node:
        items = [self.term()]
        while self.word("or"):
            items.append(self.term())
        return items[0] if len(items) == 1 else BoolOp("or", tuple(items))

    def term(self) -> Node:
        items = [self.factor()]
        while self.word("and"):
            items.append(self.factor())
        return items[0] if len(items) == 1 else BoolOp("and", tuple(items))

    def factor(self) -> Node:
        if self.word("not"):
            return Not(self.factor())
        if self.punct("("):
            node = self.expr()
            if not self.punct(")"):
                raise self.error("expected ')'")
            return node
        return self.compare()

    def field(self) -> tuple[Kind, str]:
        tok = self.peek()
        if tok is None:
            raise self.error("expected a field such as metrics.auc, params.model or status")
        if tok.type in ("bq", "str"):
            self.i += 1
            return self._attribute(_unquote(tok))
        if tok.type != "word":
            raise self.error(f"expected a field, found {tok.text!r}")
        self.i += 1
        prefix = PREFIXES.get(tok.text.lower())
        if prefix is None or not self.punct("."):
            return self._attribute(tok.text)
        return prefix, self._key(prefix)

    def _key(self, kind: Kind) -> str:
        """Everything up to the operator is the key: metrics.val.loss is the key 'val.loss'."""
        tok = self.peek()
        if tok is not None and tok.type in ("bq", "str"):
            self.i += 1
            key = _unquote(tok)
        else:
            # A key runs over adjacent tokens (val.loss, f1-score); whitespace ends it.
            parts: list[str] = []
            end = -1
            while (tok := self.peek()) is not None and (
                tok.type in ("word", "num") or (tok.type == "punct" and tok.text == ".")
            ):
                if parts and tok.pos != end:
                    break
                parts.append(tok.text)
                end = tok.pos + len(tok.text)
                self.i += 1
            key = "".join(parts)
        if not key:
            raise self.error(f"expected a {kind} name after '.'")
        if kind == "attribute":
            return self._attribute(key)[1]
        return key

    def _attribute(self, name: str) -> tuple[Kind, str]:
        found = ATTRIBUTES.get(name.lower())
        if found is None:
            known = ", ".join(sorted({v[0] for v in ATTRIBUTES.values()}))
            raise self.error(
                f"unknown field {name!r}: use metrics.<key>, params.<key>, tags.<key> "
                f"or one of {known}"
            )
        return "attribute", found[0]

    def value(self) -> str | int | float:
        tok = self.peek()
        if tok is None:
            raise self.error("expected a value")
        self.i += 1
        if tok.type == "str":
            return _unquote(tok)
        if tok.type == "num":
            return float(tok.text) if any(c in tok.text for c in ".eE") else int(tok.text)
        if tok.type == "word" and tok.text.lower() in ("nan", "infinity", "inf"):
            return float(tok.text)
        if tok.type == "word" and tok.text.lower() in ("-infinity", "-inf"):
            return float(tok.text)
        self.i -= 1
        raise self.error(f"expected a quoted string or a number, found {tok.text!r}")

    def compare(self) -> Compare:
        kind, key = self.field()
        if self.word("is"):
            negate = self.word("not")
            if not self.word("null"):
                raise self.error("expected 'null' after 'is'")
            return self._check(Compare(kind, key, "is_not_null" if negate else "is_null", None))
        negate = self.word("not")
        if self.word("in"):
            if not self.punct("("):
                raise self.error("expected '(' after 'in'")
            values = [self.value()]
            while self.punct(","):
                values.append(self.value())
            if not self.punct(")"):
                raise self.error("expected ')' to close the list")
            return self._check(Compare(kind, key, "not_in" if negate else "in", tuple(values)))
        if negate:
            raise self.error("expected 'in' after 'not'")
        tok = self.peek()
        if self.word("like", "ilike"):
            op = tok.text.lower()  # type: ignore[union-attr]
        elif tok is not None and tok.type == "op":
            self.i += 1
            op = {"==": "=", "<>": "!="}.get(tok.text, tok.text)
        else:
            raise self.error("expected a comparison (=, !=, <, <=, >, >=, like, ilike, in, is)")
        return self._check(Compare(kind, key, op, self.value()))

    def _check(self, c: Compare) -> Compare:
        numeric = c.kind == "metric" or (c.kind == "attribute" and ATTRIBUTES[c.key][1] == "num")
        values = c.value if isinstance(c.value, tuple) else (c.value,)
        if c.op in ("is_null", "is_not_null"):
            return c
        if numeric:
            if c.op in ("like", "ilike"):
                raise self.error(f"{c.op} compares strings; {_label(c)} is a number")
            if any(isinstance(v, str) for v in values):
                raise self.error(f"{_label(c)} is a number; compare it with a number")
        elif any(not isinstance(v, str) for v in values):
            raise self.error(f"{_label(c)} is a string; quote the value, e.g. '{values[0]}'")
        return c


def _label(c: Compare) -> str:
    return c.key if c.kind == "attribute" else f"{c.kind}s.{c.key}"


def parse_filter(text: str) -> Node | None:
    return Parser(text).parse()


@dataclass(frozen=True)
class OrderTerm:
    kind: Kind
    key: str
    descending: bool


def parse_order_by(term: str) -> OrderTerm:
    p = Parser(term)
    if not p.tokens:
        raise InvalidInput("order_by: empty term")
    kind, key = p.field()
    descending = False
    if p.word("desc", "descending"):
        descending = True
    else:
        p.word("asc", "ascending")
    if p.peek() is not None:
        raise InvalidInput(
            f"order_by: unexpected {p.peek().text!r} in {term!r}; "  # type: ignore[union-attr]
            "use '<field> [asc|desc]'"
        )
    return OrderTerm(kind, key, descending)
