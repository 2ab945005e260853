"""OpenAPI helpers for routes that read their body themselves (JSON or Arrow)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from modelyard.schemas import ErrorBody
from modelyard.services.series_store import ARROW

# Every route of the JSON API answers its errors in one shape (400 bad input, 404, 409, 413,
# 422 naming each refused field; 502/503 when the artifact store fails).
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    "4XX": {"model": ErrorBody, "description": "The request was refused; the message says why"},
    "5XX": {"model": ErrorBody, "description": "The server or its artifact store failed"},
}


def inline_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON schema with its nested definitions written in place, as a request
    body schema given through ``openapi_extra`` must be."""
    schema = model.model_json_schema()
    defs = schema.pop("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/$defs/"):
                return walk(defs[ref.removeprefix("#/$defs/")])
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    result: dict[str, Any] = walk(schema)
    return result


def batch_body(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` for a route that takes a batch of points as JSON (``model``) or as
    an Arrow IPC stream, reading the body itself."""
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": inline_schema(model)},
                ARROW: {"schema": {"type": "string", "format": "binary"}},
            },
        }
    }
