"""Route handlers stay thin: every route of the app (JSON API and pages) is a short function
that hands its work to a service, and none opens a transaction or talks SQL itself.

The rule is checked on the handlers' source: a handler's body (its docstring, blank lines
and comments aside) is at most ``MAX_LINES`` lines, and neither the handler nor the module
it lives in reads or writes through the store (``.read()``, ``transact(``) or imports
SQLAlchemy; services do that.
"""

from __future__ import annotations

import ast
import inspect
import re
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from sqlalchemy import text

import modelyard
from modelyard.api.deps import StoreDep

MAX_LINES = 15
FORBIDDEN = {
    "opens a read transaction": re.compile(r"\.read\(\)"),
    "opens a write transaction": re.compile(r"\btransact\("),
    "uses SQLAlchemy": re.compile(r"\bsqlalchemy\b"),
}


def _name(endpoint: Callable[..., Any]) -> str:
    return f"{endpoint.__module__}.{endpoint.__qualname__}"


def handlers(app: FastAPI, package: str = "modelyard.") -> Iterator[tuple[str, Callable[..., Any]]]:
    """Each route's method(s) and path, and the project function that serves it (included
    routers walked down to their routes)."""
    for route in iter_route_contexts(app.routes):
        endpoint = route.endpoint
        if endpoint is None or not endpoint.__module__.startswith(package):
            continue  # mounts, and the framework's own OpenAPI routes
        yield f"{','.join(sorted(route.methods or ()))} {route.path}", endpoint


def _function(source: str) -> ast.FunctionDef | ast.AsyncFunctionDef:
    node = ast.parse(textwrap.dedent(source)).body[0]
    assert isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    return node


def body_lines(endpoint: Callable[..., Any]) -> int:
    """Lines of the handler's body, not counting its docstring, blank lines or comments."""
    source = textwrap.dedent(inspect.getsource(endpoint))
    node = _function(source)
    body = node.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]  # the docstring
    if not body:
        return 0
    lines = source.splitlines()[body[0].lineno - 1 : body[-1].end_lineno]
    return sum(1 for line in lines if line.strip() and not line.strip().startswith("#"))


def problems(app: FastAPI, package: str = "modelyard.") -> list[str]:
    """Every handler (and handler module) that breaks the rule, with why."""
    found: list[str] = []
    modules: set[str] = set()
    for route, endpoint in handlers(app, package):
        name = _name(endpoint)
        modules.add(endpoint.__module__)
        if (n := body_lines(endpoint)) > MAX_LINES:
            found.append(f"{route} ({name}) is {n} lines long; at most {MAX_LINES}")
        source = inspect.getsource(endpoint)
        found += [f"{route} ({name}) {why}" for why, p in FORBIDDEN.items() if p.search(source)]
    for module in modules:
        source = inspect.getsource(sys.modules[module])
        found += [f"module {module} {why}" for why, p in FORBIDDEN.items() if p.search(source)]
    return sorted(set(found))


def test_every_route_handler_is_thin_and_opens_no_transaction(app: FastAPI) -> None:
    routes = list(handlers(app))
    paths = {route.split(" ", 1)[1] for route, _ in routes}
    # The walk sees both halves of the app: the JSON API and the portal's pages.
    assert {"/api/v1/runs/{run_id}/batch", "/api/v1/changes", "/", "/activity"} <= paths
    assert problems(app) == []


def _long_handler(store: StoreDep) -> int:
    total = 0
    for i in range(3):
        total += i
        total += i
        total += i
        total += i
        total += i
        total += i
        total += i
        total += i
        total += i
        total += i
        total += i
        total += i
        total += i
    return total


def _handler_with_a_transaction(store: StoreDep) -> int:
    """A docstring is not counted."""
    with store.read() as conn:
        return int(conn.execute(text("select 1")).scalar_one())


def test_the_check_catches_a_long_handler_and_one_that_reads_itself() -> None:
    app = FastAPI()
    app.add_api_route("/long", _long_handler)
    app.add_api_route("/reads", _handler_with_a_transaction)
    found = problems(app, package=__name__)
    assert any("/long" in p and "16 lines long" in p for p in found)
    assert any("/reads" in p and "opens a read transaction" in p for p in found)
    assert any(p.startswith(f"module {__name__} uses SQLAlchemy") for p in found)
    assert body_lines(_handler_with_a_transaction) == 2


def test_services_and_the_backbone_know_no_web_framework() -> None:
    """The layers under the API and the pages import neither FastAPI nor Starlette, so they
    stay callable from the CLI, the SDK's local mode, workers and tests alike."""
    root = Path(modelyard.__file__).parent
    framework = re.compile(r"^\s*(from|import)\s+(fastapi|starlette)\b", re.M)
    found = [
        str(path.relative_to(root))
        for layer in ("services", "metadata")
        for path in sorted((root / layer).rglob("*.py"))
        if framework.search(path.read_text())
    ]
    assert found == []
