"""The JSON API answers as its OpenAPI document says, checked by schemathesis in-process.

Every operation of ``/openapi.json`` gets examples, coverage cases (boundary values, missing
and wrong-typed fields, unexpected methods) and fuzzed requests, then sequences of calls that
follow the links schemathesis infers (create a run, then log to it, ...). A case fails on a
server error, an undocumented status, a body or content type the document does not describe,
a request that breaks the document yet is accepted, or one that keeps to it yet is refused.
Runs on SQLite and, with MODELYARD_TEST_DATABASE_URL, on PostgreSQL. Seeded: a failure comes
back on every run, printed with the operation, the check and a curl command to reproduce it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, settings
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.schemas import OpenApiSchema

from modelyard.services.series_store import MAX_PAGE

pytestmark = pytest.mark.slow

EXAMPLES = 5  # per operation and phase; the coverage phase adds its own fixed cases
STEPS = 20  # stateful scenarios

CONFIG = {
    "seed": 20261201,
    # Print every value as sent (schemathesis masks parameters named like ``key``).
    "output": {"sanitization": {"enabled": False}},
    "generation": {"max-examples": EXAMPLES, "deterministic": True, "database": "none"},
    "phases": {
        "examples": {"enabled": True},
        "coverage": {"enabled": True, "unexpected-methods": ["OPTIONS", "TRACE"]},
        "fuzzing": {"enabled": True},
        "stateful": {"enabled": True},
    },
    "checks": {
        "not_a_server_error": {"enabled": True},
        "status_code_conformance": {"enabled": True},
        "content_type_conformance": {"enabled": True},
        "response_schema_conformance": {"enabled": True},
        "response_headers_conformance": {"enabled": True},
        "negative_data_rejection": {"enabled": True},
        "positive_data_acceptance": {"enabled": True},
        "unsupported_method": {"enabled": True},
        "allow_header_conformance": {"enabled": True},
        # A 404 after a create names what the body refers to (an artifact logged as an
        # input that does not exist), not the run just created.
        "ensure_resource_availability": {"enabled": False},
    },
    # Where a valid request can still be refused for what JSON Schema cannot say, all else is
    # checked: a table's columns of one length and a known analyzer's needs (evaluations), the
    # grammar of a search filter, metric columns of one length, an artifact path's rules
    # ("..", its URN's length once percent-encoded).
    "operations": [
        {
            "include-path-regex": regex,
            "include-method": method,
            "checks": {"positive_data_acceptance": {"enabled": False}},
        }
        for method, regex in [
            ("POST", "/evaluations$"),
            ("POST", "^/api/v1/runs/search$"),
            ("POST", "/batch$"),
            ("PUT", "/artifacts/"),
        ]
    ],
}


def _numbers(node: object) -> list[object]:
    if isinstance(node, dict):
        return [n for v in node.values() for n in _numbers(v)]
    if isinstance(node, list):
        return [n for v in node for n in _numbers(v)]
    return [node] if isinstance(node, int | float) and not isinstance(node, bool) else []


def json_reading_differs(case: schemathesis.Case) -> bool:
    """Whether the body holds a number JSON Schema reads otherwise than the API: ``1.0``,
    which JSON Schema counts as the integer 1 and the API refuses where it wants an integer
    written as one (its rule: false, 1.0 and "5" are not whole numbers); or a whole number
    near 2**63, which validators reading numbers as doubles round into range."""
    return any(
        (isinstance(n, float) and n.is_integer()) or (isinstance(n, int) and abs(n) > 2**62)
        for n in _numbers(case.body)
    )


def empty_range(case: schemathesis.Case) -> bool:
    """A series range whose start lies after its end (refused; JSON Schema cannot compare
    two parameters)."""
    query = case.query or {}
    try:
        return int(query["start"]) > int(query["end"])
    except (KeyError, TypeError, ValueError):
        return False


def json_page_over_its_maximum(case: schemathesis.Case) -> bool:
    """A history page asked as JSON with a limit only Arrow pages reach (refused; the largest
    page depends on the format, which JSON Schema cannot tie to the limit)."""
    query = case.query or {}
    try:
        return query.get("format", "json") == "json" and int(query["limit"]) > MAX_PAGE["json"]
    except (KeyError, TypeError, ValueError):
        return False


def foreign_page_token(case: schemathesis.Case) -> bool:
    """A page token the server did not hand out (refused; a token is the server's own)."""
    return "page_token" in (case.query or {})


def urn_escapes_lost(response: Any) -> bool:
    """Whether a URN's percent-escapes were lost on the way: schemathesis sends a "%" of a
    path parameter as it is (an escape already made), so ``%7F`` in a URN arrives as a
    control character and the API answers how to percent-encode the URN."""
    return "is not a URN as modelyard writes it" in response.text


def keep(ctx: object, failure: object, case: schemathesis.Case, response: Any) -> bool:
    """Every failure but a valid request refused for what JSON Schema cannot say, or for
    what schemathesis did not send as generated."""
    refused = type(failure).__name__ == "RejectedPositiveData"
    return not (
        refused
        and (
            json_reading_differs(case)
            or empty_range(case)
            or json_page_over_its_maximum(case)
            or foreign_page_token(case)
            or urn_escapes_lost(response)
        )
    )


def load(app: FastAPI) -> OpenApiSchema:
    config = SchemathesisConfig.from_dict(CONFIG)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=config)
    schema.hook("filter_failure")(keep)
    return schema.include(path_regex="^/api/")


@pytest.fixture
def app(app_with: Callable[..., FastAPI]) -> FastAPI:
    # schemathesis calls the app in-process under the host name "testserver": listed, as
    # any name a server answers to is.
    return app_with(allowed_hosts=["testserver", "localhost"])


@pytest.fixture
def api_schema(app: FastAPI, request: pytest.FixtureRequest) -> OpenApiSchema:
    # schemathesis (4.32) names each operation's subtest through ``node._nodeid``, which
    # pytest 9.2 no longer has.
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid
    return load(app)


lazy = schemathesis.pytest.from_fixture("api_schema")


@lazy.parametrize()
@settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_answers_as_documented(case: schemathesis.Case) -> None:
    case.call_and_validate()


def test_call_sequences_answer_as_documented(api_schema: OpenApiSchema) -> None:
    api_schema.as_state_machine().run(
        settings=settings(
            max_examples=STEPS,
            stateful_step_count=6,
            derandomize=True,
            database=None,
            deadline=None,
            phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
            suppress_health_check=list(HealthCheck),
        )
    )
