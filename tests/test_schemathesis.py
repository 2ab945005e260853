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

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, settings
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.schemas import OpenApiSchema

pytestmark = pytest.mark.slow

EXAMPLES = 6  # per operation and phase; the coverage phase adds its own fixed cases
STEPS = 30  # stateful scenarios

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
    },
}


def load(app: FastAPI) -> OpenApiSchema:
    config = SchemathesisConfig.from_dict(CONFIG)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=config)
    return schema.include(path_regex="^/api/")


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
    machine = api_schema.as_state_machine()
    machine.run(
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
