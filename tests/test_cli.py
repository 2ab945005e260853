"""The ``modelyard`` command: readable tables for projects and runs, clear errors, and
``db upgrade`` on an empty database."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import inspect, text

from modelyard._version import __version__
from modelyard.cli import main
from modelyard.metadata.engine import is_current, make_engine
from modelyard.metadata.tables import metadata
from modelyard.sdk.client import Client
from modelyard.sdk.transport import ModelyardAPIError
from modelyard.settings import Settings
from tests.conftest import free_port


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def table(output: str) -> list[list[str]]:
    """The rows of a printed table (header first), cells split on runs of 2+ spaces."""
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) >= 2, output
    assert set(lines[1].replace(" ", "")) == {"-"}, output  # the rule under the header
    return [re.split(r" {2,}", line.strip()) for line in lines[:1] + lines[2:]]


@pytest.fixture
def folder(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A data folder (and the test's database) with two projects and a few runs."""
    monkeypatch.setenv("MODELYARD_DATABASE_URL", settings.resolved_database_url)
    monkeypatch.delenv("MODELYARD_URI", raising=False)
    with Client(str(settings.data_dir)) as client:
        client.create_project("churn", "who leaves and why")
        for name, auc, loss in (
            ("gbm", 0.91, 0.30),
            ("forest", 0.87, 0.35),
            ("linear", 0.70, 0.52),
            ("deep", 0.95, 0.21),
        ):
            with client.start_run("churn", name=name, params={"model": name}) as run:
                run.log_metrics({"auc": auc, "loss": loss, "zz-extra": 1.0}, step=0)
        with client.start_run("churn", name="empty"):
            pass
        client.search_runs("churn")  # the folder works through the SDK
        with client.start_run("fraud", name="baseline") as run:
            run.log_metric("auc", 0.5)
    return settings.data_dir


def test_projects_prints_a_table(folder: Path) -> None:
    result = invoke("projects", "--uri", str(folder))
    assert result.exit_code == 0, result.output
    rows = table(result.output)
    assert rows[0] == ["id", "name", "runs", "created (UTC)", "description"]
    body = {r[1]: r for r in rows[1:]}
    assert list(body) == ["churn", "fraud"]
    assert body["churn"][2] == "5"
    assert body["churn"][4] == "who leaves and why"
    assert body["fraud"][2] == "1"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", body["churn"][3])


def test_projects_reads_modelyard_uri(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELYARD_URI", str(folder))
    result = invoke("projects")
    assert result.exit_code == 0, result.output
    assert [r[1] for r in table(result.output)[1:]] == ["churn", "fraud"]


def test_runs_filters_orders_and_shows_metrics(folder: Path) -> None:
    result = invoke(
        "runs",
        "churn",
        "--filter",
        "metrics.auc > 0.8 and params.model != 'forest'",
        "--order-by",
        "metrics.auc desc",
        "--metric",
        "auc",
        "--metric",
        "loss",
        "--uri",
        str(folder),
    )
    assert result.exit_code == 0, result.output
    rows = table(result.output)
    assert rows[0] == ["run", "name", "status", "started (UTC)", "auc", "loss"]
    assert [(r[1], r[2], r[4], r[5]) for r in rows[1:]] == [
        ("deep", "finished", "0.95", "0.21"),
        ("gbm", "finished", "0.91", "0.3"),
    ]
    assert all(re.fullmatch(r"[0-9a-f]{12}", r[0]) for r in rows[1:])
    assert "more runs" not in result.output


def test_runs_without_metric_flags_shows_some_metric_columns(folder: Path) -> None:
    result = invoke("runs", "churn", "--order-by", "name asc", "--uri", str(folder))
    assert result.exit_code == 0, result.output
    rows = table(result.output)
    assert rows[0] == ["run", "name", "status", "started (UTC)", "auc", "loss", "zz-extra"]
    assert [r[1] for r in rows[1:]] == ["deep", "empty", "forest", "gbm", "linear"]
    assert rows[2][4:] == []  # no metrics: empty cells


def test_runs_limit_says_there_are_more(folder: Path) -> None:
    result = invoke(
        "runs", "churn", "--order-by", "metrics.loss asc", "--limit", "2", "--uri", str(folder)
    )
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert lines[-1] == "(more runs; showing the first 2)"
    rows = table("\n".join(lines[:-1]))
    assert [r[1] for r in rows[1:]] == ["deep", "gbm"]


def test_runs_bad_filter_fails_with_the_message(folder: Path) -> None:
    bad = "metrics.auc >>> 0.5"
    with Client(str(folder)) as client, pytest.raises(ModelyardAPIError) as err:
        client.search_runs("churn", filter=bad)
    result = invoke("runs", "churn", "--filter", bad, "--uri", str(folder))
    assert result.exit_code != 0
    assert f"Error: {err.value.message}" in result.output
    assert "Traceback" not in result.output

    result = invoke("runs", "no-such-project", "--uri", str(folder))
    assert result.exit_code != 0
    assert "no-such-project" in result.output
    assert "does not exist" in result.output

    result = invoke("runs", "churn", "--order-by", "metrics.auc sideways", "--uri", str(folder))
    assert result.exit_code != 0
    assert "Error:" in result.output


def test_unreachable_server_is_a_clear_error() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    for args in (("projects",), ("runs", "churn")):
        result = CliRunner().invoke(main, [*args, "--uri", url])
        assert result.exit_code == 1, result.output
        assert "Error:" in result.output
        assert url in result.output
        assert isinstance(result.exception, SystemExit)  # a handled error, no traceback


def test_db_upgrade_creates_the_schema_and_is_idempotent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MODELYARD_DATABASE_URL", raising=False)
    folder = tmp_path / "fresh"
    result = invoke("db", "upgrade", "--data-dir", str(folder))
    assert result.exit_code == 0, result.output
    assert "up to date" in result.output
    engine = make_engine(f"sqlite:///{folder / 'modelyard.db'}")
    try:
        assert set(metadata.tables) <= set(inspect(engine).get_table_names())
        assert is_current(engine)
        with engine.connect() as conn:
            before = conn.execute(text("SELECT version_num FROM alembic_version")).all()
    finally:
        engine.dispose()
    again = invoke("db", "upgrade", "--data-dir", str(folder))
    assert again.exit_code == 0, again.output
    engine = make_engine(f"sqlite:///{folder / 'modelyard.db'}")
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT version_num FROM alembic_version")).all() == before
        assert is_current(engine)
    finally:
        engine.dispose()
    # The upgraded folder is usable at once.
    with Client(str(folder)) as client:
        client.create_project("after-upgrade")
        assert [p.name for p in client.list_projects()] == ["after-upgrade"]


def test_db_upgrade_with_a_database_url(empty_database_url: str, tmp_path: Path) -> None:
    args = ("db", "upgrade", "--data-dir", str(tmp_path / "unused"))
    for _ in range(2):
        result = invoke(*args, "--database-url", empty_database_url)
        assert result.exit_code == 0, result.output
    engine = make_engine(empty_database_url)
    try:
        assert is_current(engine)
        assert set(metadata.tables) <= set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_help_lists_the_commands() -> None:
    result = invoke("--help")
    assert result.exit_code == 0
    commands = result.output.split("Commands:")[1]
    names = {line.split()[0] for line in commands.splitlines() if line.strip()}
    assert {"serve", "db", "projects", "runs"} <= names
    db_help = invoke("db", "--help")
    assert "upgrade" in db_help.output
    runs_help = invoke("runs", "--help")
    for option in ("--filter", "--order-by", "--limit", "--metric", "--uri"):
        assert option in runs_help.output
    assert __version__ in invoke("--version").output
