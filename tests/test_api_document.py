"""The OpenAPI document states the rules code keeps: what a name, a URN, an aspect may be, and
that no text holds a NUL character. Each pattern is checked against the code that applies it.
(tests/test_schemathesis.py checks the whole API against the document.)"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelyard.metadata.aspects import ASPECTS
from modelyard.metadata.urn import ENTITY_TYPES, canonical_urn, make_urn
from modelyard.schemas._common import URN_TYPES, name_pattern, normal_name, urn_pattern
from tests.helpers import API, assert_error, new_run

QUICK = settings(max_examples=300, derandomize=True, database=None, deadline=None,
                 suppress_health_check=list(HealthCheck))  # fmt: skip


def names_accepted(text: str) -> bool:
    try:
        normal_name(text)
    except ValueError:
        return False
    return True


@QUICK
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=8))
def test_the_documented_name_pattern_accepts_what_a_name_may_be(text: str) -> None:
    assert bool(re.fullmatch(name_pattern(), text)) == names_accepted(text)


@pytest.mark.parametrize(
    "text", ["a", " a b ", "\tx\n", "", " ", "a\x00", "a\u200bb", "\u2028", "\x85x", "é"]
)
def test_the_documented_name_pattern_on_edges(text: str) -> None:
    assert bool(re.fullmatch(name_pattern(), text)) == names_accepted(text)


def test_every_entity_type_is_in_the_documented_urn_pattern() -> None:
    assert set(URN_TYPES) == ENTITY_TYPES


@QUICK
@given(st.from_regex(urn_pattern(), fullmatch=True))
def test_every_urn_the_document_allows_is_one_modelyard_writes(urn: str) -> None:
    assert str(canonical_urn(urn)) == urn


@QUICK
@given(
    st.sampled_from(sorted(ENTITY_TYPES)),
    st.lists(
        st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=5), min_size=1
    ),
)
def test_every_urn_modelyard_writes_is_allowed_by_the_document(kind: str, parts: Any) -> None:
    # No name holds a NUL, so no URN holds %00.
    urn = make_urn(kind, *parts)
    if parts != [""]:  # a single empty part makes no URN
        assert re.fullmatch(urn_pattern(), urn)


def strings(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        if node.get("type") == "string":
            yield node
        for value in node.values():
            yield from strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from strings(value)


def request_strings(doc: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    components = doc["components"]["schemas"]
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            where = f"{method.upper()} {path}"
            for param in op.get("parameters", []):
                for s in strings(param["schema"]):
                    yield f"{where} {param['name']}", s
            body = op.get("requestBody", {}).get("content", {}).get("application/json")
            if body:
                schema = body["schema"]
                ref = schema.get("$ref", "").rsplit("/", 1)[-1]
                for s in strings(components[ref] if ref else schema):
                    yield f"{where} body", s


def test_no_text_the_api_reads_may_hold_nul_says_the_document(app: FastAPI) -> None:
    unstated = [
        where
        for where, s in request_strings(app.openapi())
        if "enum" not in s and "format" not in s and re.fullmatch(s.get("pattern", ""), "a\x00")
    ]
    assert not unstated


def test_urns_in_paths_and_queries_are_documented_with_their_shape(app: FastAPI) -> None:
    doc = app.openapi()
    urns = {
        f"{method.upper()} {path}": p["schema"].get("pattern")
        for path, ops in doc["paths"].items()
        for method, op in ops.items()
        for p in op.get("parameters", [])
        if p["name"] == "urn" and not path.endswith("/changes")
    }
    assert len(urns) == 7
    assert all(urns.values())
    batch = urns["POST /api/v1/series/{urn}/batch"]
    assert not re.fullmatch(batch, "urn:modelyard:run:" + "0" * 32)
    assert re.fullmatch(batch, "urn:modelyard:dataset:a%20b")


def test_aspects_are_documented_by_name(app: FastAPI, api: httpx.Client) -> None:
    op = app.openapi()["paths"]["/api/v1/entities/{urn}/aspects/{aspect}/versions"]["get"]
    (aspect,) = [p for p in op["parameters"] if p["name"] == "aspect"]
    assert aspect["schema"]["enum"] == sorted(ASPECTS)
    urn = quote(f"urn:modelyard:run:{new_run(api)}", safe="")
    assert api.get(f"{API}/entities/{urn}/aspects/run_properties/versions").status_code == 200
    assert "unknown aspect" in assert_error(
        api.get(f"{API}/entities/{urn}/aspects/x/versions"), 400
    )


def test_a_run_consumes_only_artifacts_datasets_and_models_says_the_document(
    app: FastAPI, api: httpx.Client
) -> None:
    inputs = app.openapi()["components"]["schemas"]["RunInputs"]
    pattern = inputs["properties"]["artifacts"]["items"]["pattern"]
    assert re.fullmatch(pattern, "urn:modelyard:dataset:d")
    run = new_run(api)
    assert not re.fullmatch(pattern, f"urn:modelyard:run:{run}")
    body = {"artifacts": [f"urn:modelyard:run:{run}"]}
    assert_error(api.post(f"{API}/runs/{run}/inputs", json=body), 400)
