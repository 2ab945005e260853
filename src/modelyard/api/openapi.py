"""The API's OpenAPI document: error answers, bodies routes read themselves (JSON or Arrow),
URN parameters, and the rules every route keeps (no NUL in text)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import FastAPI, Path, Query
from fastapi.routing import APIRoute
from pydantic import BaseModel

from modelyard.authz import Level, permission_of
from modelyard.schemas import ErrorBody
from modelyard.schemas._common import URN_TYPES, urn_pattern
from modelyard.services.series_store import ARROW

URN_DOC = "A URN as modelyard writes it, e.g. urn:modelyard:dataset:train; percent-encode it"
# An entity's URN in a path or the query: the document states its shape (code refuses any
# other with a message saying how to send it).
UrnPath = Annotated[str, Path(description=URN_DOC, json_schema_extra={"pattern": urn_pattern()})]
UrnQuery = Annotated[str, Query(description=URN_DOC, json_schema_extra={"pattern": urn_pattern()})]
# A series is written to any entity but a run (whose metrics have a route of their own).
SeriesUrnPath = Annotated[
    str,
    Path(
        description=URN_DOC,
        json_schema_extra={"pattern": urn_pattern(*(t for t in URN_TYPES if t != "run"))},
    ),
]

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


# No text the API reads may hold a NUL character (refused with a 400 before anything else):
# the document says so for every string of a parameter or a JSON request body that no
# pattern, format or enum describes already.
NO_NUL = "^[^\\x00]*$"


def _strings(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        if node.get("type") == "string":
            yield node
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)


def _read_schemas(doc: dict[str, Any]) -> Iterator[Any]:
    """The schemas of what requests send: parameters, JSON bodies and what they refer to."""
    components = doc.get("components", {}).get("schemas", {})
    todo: list[Any] = []
    for ops in doc.get("paths", {}).values():
        for op in ops.values():
            todo += [p.get("schema") for p in op.get("parameters", [])]
            content = op.get("requestBody", {}).get("content", {})
            todo += [c.get("schema") for t, c in content.items() if t == "application/json"]
    seen: set[str] = set()
    while todo:
        node = todo.pop()
        yield node
        refs = [r for r in _refs(node) if r not in seen]
        seen.update(refs)
        todo += [components.get(r.rsplit("/", 1)[-1]) for r in refs]


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"]
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def state_no_nul(doc: dict[str, Any]) -> dict[str, Any]:
    """Add the no-NUL rule to every string requests send that nothing else constrains."""
    for schema in _read_schemas(doc):
        for string in _strings(schema):
            if not {"pattern", "format", "enum", "const"} & set(string):
                string["pattern"] = NO_NUL
    return doc


def _public_operations(app: FastAPI) -> set[tuple[str, str]]:
    """(path, method) of the routes anyone may call, signed in or not."""
    found: set[tuple[str, str]] = set()
    for route in app.routes:
        permission = permission_of(route)
        if isinstance(route, APIRoute) and permission and permission.level == Level.PUBLIC:
            found |= {(route.path_format, m.lower()) for m in route.methods or ()}
    return found


def state_sign_in(doc: dict[str, Any], public: set[tuple[str, str]]) -> dict[str, Any]:
    """Name the 401 of every operation but the public ones: a server in team mode answers it
    to a caller who sent no credentials, or ones that are not valid (expired, revoked)."""
    error = {"$ref": "#/components/schemas/ErrorBody"}
    has_error = "ErrorBody" in doc.get("components", {}).get("schemas", {})
    content = {"application/json": {"schema": error}} if has_error else {}
    for path, operations in doc.get("paths", {}).items():
        for method, op in operations.items():
            if (path, method) in public or not isinstance(op, dict) or "responses" not in op:
                continue
            op["responses"].setdefault(
                "401",
                {
                    "description": "No one is signed in (team mode): send an API token as "
                    "'Authorization: Bearer <token>', or sign in; or the credentials sent "
                    "are not valid (expired, revoked, of a disabled user)",
                    "content": content,
                },
            )
    return doc


def install_openapi(app: FastAPI) -> None:
    """Serve FastAPI's document with the rules above stated in it."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = state_sign_in(generate(), _public_operations(app))
            app.openapi_schema = state_no_nul(doc)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
