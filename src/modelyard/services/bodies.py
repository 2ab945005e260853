"""Request bodies that services take as raw bytes, parsed and checked in one place."""

from __future__ import annotations

from typing import TypeVar

import orjson
from pydantic import BaseModel, ValidationError

from modelyard.errors import InvalidFields, InvalidInput

M = TypeVar("M", bound=BaseModel)


def parse_body(raw: bytes, model: type[M]) -> M:
    """Parse a JSON body with orjson and validate it; errors read like the framework's own."""
    if not raw:
        raise InvalidInput("a JSON body is required")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"the body is not valid JSON: {exc}") from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidFields.from_errors(exc.errors(include_url=False)) from None
