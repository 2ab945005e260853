"""OpenAPI helpers for routes that read their body themselves (JSON or Arrow)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from modelyard.services.series_store import ARROW


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
