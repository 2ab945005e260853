"""Request bodies that services take as raw bytes, parsed and checked in one place."""

from __future__ import annotations

import re
from typing import TypeVar

import orjson
from pydantic import BaseModel, ValidationError

from modelyard.errors import InvalidFields, InvalidInput

M = TypeVar("M", bound=BaseModel)

# A NUL character inside a JSON string: the \u0000 escape (raw control characters are not
# JSON), not preceded by an odd run of backslashes (``\\u0000`` is the text "\u0000").
_NUL_ESCAPE = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")
NUL_REFUSED = "text may not contain NUL characters (\\u0000)"


def refuse_nul_in_json(raw: bytes) -> None:
    """Refuse a JSON body holding a NUL character in any string: PostgreSQL cannot store one,
    and SQLite would keep text that looks like another; so neither database gets it."""
    if b"\\u0000" in raw and _NUL_ESCAPE.search(raw):
        raise InvalidInput(f"the body's {NUL_REFUSED}")


def load_json(raw: bytes) -> object:
    """A JSON body parsed with orjson (NUL refused), not yet validated."""
    if not raw:
        raise InvalidInput("a JSON body is required")
    refuse_nul_in_json(raw)
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"the body is not valid JSON: {exc}") from None


def validate(data: object, model: type[M]) -> M:
    """Validate parsed JSON; errors read like the framework's own."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidFields.from_errors(exc.errors(include_url=False)) from None


def parse_body(raw: bytes, model: type[M]) -> M:
    """Parse a JSON body with orjson and validate it."""
    return validate(load_json(raw), model)
