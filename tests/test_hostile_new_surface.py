"""Hostile and careless input on the API's newer surface (series of any entity, analyzer
queries, artifact stores, the change log, model versions): every answer is a 4xx in the
shape of the route's family, never a 500, and a refused request changes nothing."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from modelyard.limits import INT64_MAX
from modelyard.schemas import ErrorBody
from tests.helpers import API, assert_error, get_page, new_run

BEYOND = [str(INT64_MAX + 1), str(-INT64_MAX - 2), str(10**30), "9" * 4000]


def integer_schemas(schema: dict[str, Any]) -> list[dict[str, Any]]:
    """The integer branches of a parameter's schema (a plain one or an anyOf with null)."""
    branches = schema.get("anyOf", [schema])
    return [b for b in branches if b.get("type") == "integer"]


def test_every_integer_parameter_of_the_api_says_its_64_bit_bounds(app: FastAPI) -> None:
    unbounded = [
        f"{method.upper()} {path} {param['name']}"
        for path, ops in app.openapi()["paths"].items()
        for method, op in ops.items()
        for param in op.get("parameters", [])
        for branch in integer_schemas(param["schema"])
        if not -INT64_MAX <= branch.get("minimum", -INT64_MAX - 1) <= INT64_MAX
        or not -INT64_MAX <= branch.get("maximum", INT64_MAX + 1) <= INT64_MAX
    ]
    assert not unbounded


@pytest.fixture
def dataset(api: httpx.Client) -> str:
    resp = api.post(f"{API}/runs/{new_run(api)}/inputs", json={"datasets": [{"name": "d"}]})
    urn: str = resp.json()[0]
    points = [{"key": "k", "value": 1.0, "step": 1, "timestamp": 5}]
    assert api.post(f"{API}/series/{urn}/batch", json={"metrics": points}).status_code == 201
    return urn


@pytest.mark.parametrize("number", BEYOND)
@pytest.mark.parametrize("bound", ["start", "end"])
@pytest.mark.parametrize("axis", ["step", "time"])
def test_a_series_range_beyond_64_bits_is_refused(
    api: httpx.Client, dataset: str, number: str, bound: str, axis: str
) -> None:
    url = f"{API}/series/{dataset}/history"
    resp = api.get(url, params={"key": "k", "axis": axis, bound: number})
    assert bound in assert_error(resp, 422)
    edge = {"start": str(-INT64_MAX), "end": str(INT64_MAX)}
    whole = api.get(url, params={"key": "k", "axis": axis, **edge})
    assert (whole.status_code, whole.json()["values"]) == (200, [1.0])


@pytest.mark.parametrize("number", BEYOND)
@pytest.mark.parametrize("param", ["since", "until", "before_id"])
def test_a_change_log_bound_beyond_64_bits_is_refused(
    api: httpx.Client, number: str, param: str
) -> None:
    new_run(api)
    assert param in assert_error(api.get(f"{API}/changes", params={param: number}), 422)


@pytest.mark.parametrize("number", BEYOND)
@pytest.mark.parametrize("tail", ["", "/evaluations"])
def test_a_model_version_beyond_64_bits_is_refused(
    api: httpx.Client, number: str, tail: str
) -> None:
    assert "version" in assert_error(api.get(f"{API}/models/m/versions/{number}{tail}"), 422)


@pytest.mark.parametrize(
    "path",
    [f"/models/m/versions/{10**30}", f"/activity?before={10**30}",
     f"/history?version={10**30}&urn=urn:modelyard:project:1&aspect=x"],
)  # fmt: skip
def test_pages_refuse_numbers_beyond_64_bits_with_a_page(api: httpx.Client, path: str) -> None:
    new_run(api)
    get_page(api, path, status=422)


@pytest.mark.parametrize(
    "body",
    [
        {"y_true": [None, []], "y_score": [0.1, 0.2]},
        {"y_true": [0, 1], "y_score": [[0.1, 0.9], [0.2]]},
        {"y_true": [0, 1], "y_score": [0.1, [0.2]]},
        {"y_true": [0, 1], "y_score": [0.1, 0.2], "weights": [1, [1, 2]]},
        {"y_true": [0, 1], "y_score": [0.1, 0.2], "groups": {"g": [["a"], "b"]}},
        {"y_true": ["a", "b"], "y_score": [[0.1, 0.9], [0.8, 0.2]], "classes": [["a"], ["b", "c"]]},
        {"y_true": ["a", "b"], "y_score": [[0.1, 0.9], [0.8, 0.2]], "classes": [["a"], ["b"]]},
    ],
)
def test_ragged_prediction_columns_are_refused_and_nothing_is_stored(
    api: httpx.Client, body: dict[str, Any]
) -> None:
    run = new_run(api)
    resp = api.post(f"{API}/runs/{run}/evaluations", json=body)
    assert_error(resp, 400)
    assert api.get(f"{API}/runs/{run}/evaluations").json() == []
    assert api.get(f"{API}/runs/{run}/artifacts").json() == []


def test_the_api_document_gives_every_operation_the_error_shape_it_answers(
    app: FastAPI, api: httpx.Client
) -> None:
    spec = app.openapi()
    error_ref = {"$ref": "#/components/schemas/ErrorBody"}
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            for status in ("4XX", "5XX"):
                content = op["responses"].get(status, {}).get("content", {})
                assert content.get("application/json", {}).get("schema") == error_ref, (
                    method, path, status,
                )  # fmt: skip
            assert "422" not in op["responses"], (method, path)
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    refused = [
        api.get(f"{API}/series/urn:modelyard:dataset:nope/history", params={"key": "k"}),
        api.get(
            f"{API}/series/urn:modelyard:dataset:nope/history", params={"key": "k", "end": "x"}
        ),
        api.get(f"{API}/runs/{'0' * 32}"),
    ]
    for resp in refused:
        assert ErrorBody.model_validate(resp.json()).error.message
    assert [r.status_code for r in refused] == [404, 422, 404]


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/x%0Ay",
        "/api/v1/nope%0A/more",
        "/api/v1/series/urn:modelyard:dataset:a%0Ab/latest",
        "/api/v1/series/urn:modelyard:dataset:a%0D%0Ab/history?key=k",
    ],
)
def test_a_path_with_a_line_break_gets_a_json_error_under_the_api(
    api: httpx.Client, path: str
) -> None:
    assert_error(api.get(path), 404, "NOT_FOUND")
    assert_error(api.post(path, json={}), (404, 405))


@pytest.mark.parametrize(
    "num_rows", [INT64_MAX + 1, 10**30, -1, True, False, 1.5, "5"]
)  # fmt: skip
def test_a_dataset_row_count_that_is_no_64_bit_count_is_refused_and_nothing_is_recorded(
    api: httpx.Client, num_rows: object
) -> None:
    run = new_run(api)
    body = {"datasets": [{"name": "rows", "num_rows": num_rows}]}
    assert "num_rows" in assert_error(api.post(f"{API}/runs/{run}/inputs", json=body), 422)
    assert_error(api.get(f"{API}/entities/urn:modelyard:dataset:rows/aspects"), 404)


@pytest.mark.parametrize("when", [False, True, 1.0, "5"])
def test_a_run_time_that_is_no_json_integer_is_refused(api: httpx.Client, when: object) -> None:
    assert "start_time" in assert_error(
        api.post(f"{API}/runs", json={"project": "p", "start_time": when}), 422
    )
    run = new_run(api)
    update = {"status": "finished", "end_time": when}
    assert "end_time" in assert_error(api.patch(f"{API}/runs/{run}", json=update), 422)
    assert api.get(f"{API}/runs/{run}").json()["status"] == "running"
