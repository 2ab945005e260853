"""A plugin loaded by name (``MODELYARD_PLUGINS``) adds API routes, a page with its own
template, a CLI subcommand and an event handler, through the hooks in ``hookspecs.py``."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from fastapi import FastAPI
from sqlalchemy import select

from modelyard import hookspecs
from modelyard.api.deps import get_current_user
from modelyard.app import create_app
from modelyard.cli import main
from modelyard.metadata import tables as t
from modelyard.plugins import make_plugins
from modelyard.services.access.principals import Principal
from modelyard.services.dispatcher import Dispatcher
from modelyard.settings import Settings
from tests import sample_plugin
from tests.conftest import in_process_client
from tests.helpers import API, assert_error, get_page

PLUGIN = "tests.sample_plugin"


@pytest.fixture
def plugin_app(settings: Settings) -> Iterator[FastAPI]:
    application = create_app(settings.model_copy(update={"plugins": [PLUGIN]}))
    yield application
    application.state.store.engine.dispose()


@pytest.fixture
def http(plugin_app: FastAPI) -> Iterator[httpx.Client]:
    with in_process_client(plugin_app) as client:
        yield client


def test_the_plugins_setting_takes_comma_separated_module_names(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MODELYARD_PLUGINS", f" {PLUGIN}, json ,")
    assert Settings().plugins == [PLUGIN, "json"]


def test_every_hook_is_a_documented_bare_function() -> None:
    specs = {
        name: fn
        for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
        if hasattr(fn, "modelyard_spec")
    }
    assert set(specs) == {"register_analyzers", "register_routes", "register_commands", "on_event"}
    for fn in specs.values():
        assert fn.__doc__
        assert "\n" not in fn.__doc__.strip()


def test_a_plugin_route_writes_as_the_current_user(plugin_app: FastAPI, http: httpx.Client) -> None:
    ada = Principal(name="ada", account_id=None, admin=True)
    plugin_app.dependency_overrides[get_current_user] = lambda: ada
    resp = http.post(f"{API}/sample/projects/from-plugin")
    assert resp.status_code == 201, resp.text
    # Built-in routes take their actor from the same dependency.
    http.patch(f"{API}/projects/from-plugin", json={"description": "d"}).raise_for_status()
    with plugin_app.state.store.read() as conn:
        events = conn.execute(select(t.event.c.actor)).scalars().all()
        changes = conn.execute(select(t.change_log.c.actor)).scalars().all()
    assert events == changes == ["ada", "ada"]


def test_a_plugin_page_renders_its_own_template_in_the_portal_layout(http: httpx.Client) -> None:
    http.post(f"{API}/sample/projects/one").raise_for_status()
    text = get_page(http, "/sample")
    assert "Sample plugin page" in text
    assert "Hello, local; 1 projects here." in text
    assert "<nav" in text  # the portal's base layout around it


def test_plugin_routes_answer_errors_in_their_familys_shape(http: httpx.Client) -> None:
    message = assert_error(http.get(f"{API}/sample/missing"), 404, "NOT_FOUND")
    assert message == "the sample plugin has nothing here"
    text = get_page(http, "/sample/missing", status=404)
    assert "the sample plugin has no such page" in text


def test_the_shape_follows_the_route_not_the_path(http: httpx.Client) -> None:
    text = get_page(http, f"{API}/sample/page-among-the-api", status=404)
    assert "this page has nothing to show" in text
    partial = http.get(f"{API}/sample/page-among-the-api", headers={"HX-Request": "true"})
    assert partial.status_code == 200  # htmx swaps the reason in place
    assert "this page has nothing to show" in partial.text
    assert "<html" not in partial.text


def test_an_unexpected_error_takes_its_familys_shape_without_details(
    http: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    message = assert_error(http.get(f"{API}/sample/broken"), 500, "INTERNAL_ERROR")
    assert "a bug" not in message
    text = get_page(http, "/sample/broken", status=500)
    assert "Something went wrong" in text
    assert "a bug" not in text
    assert "a bug in the plugin's page" in caplog.text  # but the log has it


def test_a_mount_can_choose_an_mlflow_like_error_shape(http: httpx.Client) -> None:
    base = "/sample-mlflow/api/2.0/mlflow"
    resp = http.get(f"{base}/experiments/get", params={"experiment_id": 7})
    assert resp.status_code == 404
    assert resp.json() == {
        "error_code": "RESOURCE_DOES_NOT_EXIST",
        "message": "no experiment with id 7",
    }
    # Bad input and unknown paths under the mount take its shape too, never the native one.
    bad = http.get(f"{base}/experiments/get", params={"experiment_id": "x"})
    assert bad.status_code == 422
    assert set(bad.json()) == {"error_code", "message"}
    assert "experiment_id" in bad.json()["message"]
    unknown = http.get(f"{base}/runs/nope")
    assert unknown.status_code == 404
    assert unknown.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    wrong = http.post(f"{base}/experiments/get")
    assert (wrong.status_code, wrong.headers["allow"]) == (405, "GET")
    assert wrong.json()["error_code"] == "ENDPOINT_NOT_FOUND"


def test_the_native_api_keeps_its_shape_beside_a_plugins(http: httpx.Client) -> None:
    assert "no endpoint GET /api/v1/nope" in assert_error(http.get(f"{API}/nope"), 404)
    assert "no page at /nope" in get_page(http, "/nope", status=404)


def test_a_plugin_subcommand_runs_from_the_command_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELYARD_PLUGINS", PLUGIN)
    result = CliRunner().invoke(main, ["sample-greet", "ada", "--shout"])
    assert result.exit_code == 0, result.output
    assert result.output == "HELLO, ADA\n"
    listed = CliRunner().invoke(main, ["--help"])
    assert "sample-greet" in listed.output
    assert "Greet someone" in listed.output


def test_without_the_plugin_the_subcommand_is_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MODELYARD_PLUGINS", raising=False)
    result = CliRunner().invoke(main, ["sample-greet", "ada"])
    assert result.exit_code == 2
    assert "No such command 'sample-greet'" in result.output


def test_the_plugins_on_event_gets_every_change_in_order(
    plugin_app: FastAPI, http: httpx.Client
) -> None:
    sample_plugin.RECEIVED.clear()
    http.post(f"{API}/projects", json={"name": "a"}).raise_for_status()
    for n in range(3):
        http.patch(f"{API}/projects/a", json={"description": f"v{n}"}).raise_for_status()
    dispatcher: Dispatcher = plugin_app.state.dispatcher
    dispatcher.drain()
    got = [(e.kind, e.version) for e in sample_plugin.RECEIVED]
    assert got == [("created", 1), ("updated", 2), ("updated", 3), ("updated", 4)]
    assert {e.urn for e in sample_plugin.RECEIVED} == {"urn:modelyard:project:1"}


def test_built_in_routes_register_through_the_same_hook() -> None:
    plugins = make_plugins(load_entry_points=False)
    paths = {r.router.prefix for r in plugins.routes}
    assert "/api/v1" in paths
    assert len(plugins.routes) == 3  # API, chart data, pages
    plugged = make_plugins(modules=[PLUGIN], load_entry_points=False)
    assert len(plugged.routes) == 6
    assert plugged.routes[:3] == plugins.routes  # the built-ins come first


def test_a_plugin_module_that_cannot_be_loaded_is_named(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("MODELYARD_PLUGINS", "tests.no_such_plugin")
    monkeypatch.setenv("MODELYARD_DATA_DIR", str(tmp_path))  # serve sets it; restored after
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 1
    assert "cannot load the plugin module 'tests.no_such_plugin'" in result.output
    served = CliRunner().invoke(main, ["serve", "--data-dir", str(tmp_path)])
    assert served.exit_code == 1
    assert "cannot load the plugin module 'tests.no_such_plugin'" in served.output
