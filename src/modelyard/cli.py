"""The ``modelyard`` command."""

from __future__ import annotations

import functools
import importlib
import os
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from modelyard.sdk.client import Client
    from modelyard.settings import Settings


def _require_server(command: str, *modules: str, extras: str = "server") -> None:
    """Fails at once, with the pip command to run, when the install lacks the server.
    The client alone (``pip install modelyard``) has the read commands only."""
    from modelyard.sdk.transport import is_missing_dependency, server_missing

    try:
        for name in ("modelyard.app", *modules):
            importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if not is_missing_dependency(exc):
            raise
        raise click.ClickException(str(server_missing(f"`{command}`", exc, extras))) from exc


def _settings(data_dir: Path | None, database_url: str | None, **more: Any) -> Settings:
    from modelyard.settings import Settings

    given: dict[str, Any] = {k: v for k, v in more.items() if v is not None}
    if data_dir is not None:
        given["data_dir"] = data_dir
    if database_url is not None:
        given["database_url"] = database_url
    from pydantic import ValidationError
    from pydantic_settings import SettingsError

    try:
        return Settings(**given)
    except ValidationError as exc:
        raise click.ClickException(_settings_problem(exc, set(given))) from None
    except SettingsError as exc:
        raise click.ClickException(f"invalid setting: {exc}") from None


_UNSHOWN = {"secret_key", "database_url", "artifact_root"}  # may hold credentials


def _settings_problem(exc: Any, given: set[str]) -> str:
    """One line per settings error, naming the variable (or flag) to set and what is wrong."""
    parts = []
    for error in exc.errors():
        message = str(error["msg"]).removeprefix("Value error, ")
        field = str(error["loc"][0]) if error["loc"] else ""
        if not field:
            parts.append(message)
            continue
        name = f"MODELYARD_{field.upper()}"
        if field in given:
            name = f"--{field.replace('_', '-')}"
        shown = "" if field in _UNSHOWN else f"={error.get('input')!r}"
        parts.append(f"{name}{shown} is not valid: {message}")
    return "; ".join(parts)


data_dir_option = click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Data folder (env MODELYARD_DATA_DIR).",
)
database_option = click.option(
    "--database-url", default=None, help="SQLAlchemy database URL (env MODELYARD_DATABASE_URL)."
)
uri_option = click.option(
    "--uri", default=None, help="Server URL or data folder (env MODELYARD_URI)."
)


class PluginGroup(click.Group):
    """The command group, with the subcommands plugins add through ``register_commands``
    (loaded when a command is looked up, not at import)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *_plugin_commands()})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return super().get_command(ctx, cmd_name) or _plugin_commands().get(cmd_name)


def _plugin_commands() -> dict[str, click.Command]:
    try:
        from modelyard.settings import plugin_modules
    except ImportError:  # the client alone, without the server's settings or plugins
        return {}
    return _commands_of(tuple(plugin_modules(os.environ.get("MODELYARD_PLUGINS", ""))))


@functools.cache
def _commands_of(modules: tuple[str, ...]) -> dict[str, click.Command]:
    try:
        from modelyard.plugins import PluginError, make_manager
    except ImportError:  # the client alone, without the server's plugin machinery
        return {}
    added = click.Group()
    try:
        manager = make_manager(modules=modules, builtins=False)
    except PluginError as exc:
        raise click.ClickException(str(exc)) from exc
    manager.hook.register_commands(cli=added)
    return dict(added.commands)


@click.group(cls=PluginGroup)
@click.version_option(package_name="modelyard")
def main() -> None:
    """modelyard: track, evaluate, publish, deploy and watch ML models."""


@main.command()
@click.option("--host", default=None, help="Address to bind (default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (default 5170).")
@click.option("--workers", type=int, default=1, show_default=True, help="Server processes.")
@data_dir_option
@database_option
def serve(
    host: str | None,
    port: int | None,
    workers: int,
    data_dir: Path | None,
    database_url: str | None,
) -> None:
    """Run the portal and API server."""
    _require_server("modelyard serve", "uvicorn")
    import uvicorn

    settings = _settings(data_dir, database_url, host=host, port=port)
    # Worker processes rebuild the app from the environment, so hand the settings on there.
    os.environ["MODELYARD_DATA_DIR"] = str(settings.data_dir)
    # The address too: the host names the server answers follow from it.
    os.environ["MODELYARD_HOST"] = settings.host
    os.environ["MODELYARD_PORT"] = str(settings.port)
    if settings.database_url:
        os.environ["MODELYARD_DATABASE_URL"] = settings.database_url
    from modelyard.app import create_app
    from modelyard.metadata.engine import SchemaError
    from modelyard.plugins import PluginError

    try:
        app = create_app(settings)  # migrates an empty database once, before workers start
    except (SchemaError, PluginError) as exc:
        raise click.ClickException(str(exc)) from exc
    app.state.store.engine.dispose()
    click.echo(
        f"modelyard serving on http://{settings.host}:{settings.port} "
        f"(data: {settings.data_dir.resolve()})"
    )
    uvicorn.run(
        "modelyard.app:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=workers,
        log_level="warning",
        access_log=False,
    )


@main.command()
@data_dir_option
@database_option
def demo(data_dir: Path | None, database_url: str | None) -> None:
    """Build the demo workspace (real scikit-learn runs; nothing is downloaded). Idempotent."""
    _require_server("modelyard demo", "modelyard.demo", extras="server,demo")
    from modelyard.demo import build_demo
    from modelyard.sdk.client import Client

    settings = _settings(data_dir, database_url)
    if settings.database_url:
        os.environ["MODELYARD_DATABASE_URL"] = settings.database_url
    with Client(str(settings.data_dir)) as client:
        built = build_demo(client)
    click.echo("demo workspace built" if built else "demo workspace already present")


@main.group()
def db() -> None:
    """Database maintenance."""


@db.command()
@data_dir_option
@database_option
def upgrade(data_dir: Path | None, database_url: str | None) -> None:
    """Apply schema migrations."""
    _require_server("modelyard db upgrade")
    from alembic.util import CommandError

    from modelyard.metadata.engine import make_engine
    from modelyard.metadata.engine import upgrade as run_upgrade

    settings = _settings(data_dir, database_url)
    engine = make_engine(settings.resolved_database_url)
    try:
        run_upgrade(engine)
    except CommandError as exc:  # e.g. a revision this modelyard does not know
        raise click.ClickException(f"cannot upgrade the database: {exc}") from exc
    finally:
        engine.dispose()
    click.echo("database is up to date")


def _table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    width = shutil.get_terminal_size((120, 20)).columns
    widths = [min(max(len(r[i]) for r in cells), 48) for i in range(len(headers))]
    lines = []
    for n, r in enumerate(cells):
        line = "  ".join(c[:w].ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
        lines.append(line[:width])
        if n == 0:
            lines.append("  ".join("-" * w for w in widths)[:width])
    return "\n".join(lines)


def _when(ms: int | None) -> str:
    from modelyard.times import utc_text

    return "" if ms is None else utc_text(ms, "%Y-%m-%d %H:%M:%S")


@contextmanager
def _client(uri: str | None) -> Iterator[Client]:
    """A client for the read commands; what goes wrong becomes a one-line error."""
    import httpx
    from pydantic import ValidationError

    from modelyard.sdk.client import Client
    from modelyard.sdk.transport import ModelyardAPIError

    try:
        client = Client(uri, retries=2)
    except ValidationError as exc:  # a local folder, opened with a wrong MODELYARD_* value
        raise click.ClickException(_settings_problem(exc, set())) from None
    except _opening_errors() as exc:  # evaluated only when opening failed
        raise click.ClickException(str(exc)) from exc
    try:
        with client:
            yield client
    except ModelyardAPIError as exc:
        raise click.ClickException(exc.message) from exc
    except httpx.TransportError as exc:
        raise click.ClickException(f"cannot reach {client.uri}: {exc}") from exc


def _opening_errors() -> tuple[type[Exception], ...]:
    """Why a client could not open: no server extra for a local folder, or a local data folder
    this modelyard cannot use (the second only exists where the server is installed)."""
    from modelyard.sdk.transport import ServerExtraMissing

    try:
        from modelyard.metadata.engine import SchemaError
    except ModuleNotFoundError:
        return (ServerExtraMissing,)
    return (ServerExtraMissing, SchemaError)


@main.command()
@uri_option
def projects(uri: str | None) -> None:
    """List projects."""
    with _client(uri) as client:
        rows = [
            (p.id, p.name, p.run_count, _when(p.created_at), p.description)
            for p in client.list_projects()
        ]
    click.echo(_table(["id", "name", "runs", "created (UTC)", "description"], rows))


@main.command()
@click.argument("project")
@click.option("--filter", "filter_", default="", help='e.g. "metrics.auc > 0.9"')
@click.option("--order-by", multiple=True, help='e.g. "metrics.auc desc" (repeatable)')
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
@click.option("--metric", "metrics", multiple=True, help="Metric columns to show (repeatable).")
@uri_option
def runs(
    project: str,
    filter_: str,
    order_by: tuple[str, ...],
    limit: int,
    metrics: tuple[str, ...],
    uri: str | None,
) -> None:
    """List a project's runs."""
    with _client(uri) as client:
        page = client.search_runs(project, filter_, list(order_by), page_size=limit)
    keys = list(metrics) or sorted({k for r in page.runs for k in r.metrics})[:4]
    rows = [
        [
            r.run_id[:12],
            r.name,
            r.status,
            _when(r.start_time),
            *[r.metrics[k].value if k in r.metrics else "" for k in keys],
        ]
        for r in page.runs
    ]
    click.echo(_table(["run", "name", "status", "started (UTC)", *keys], rows))
    if page.next_page_token:
        click.echo(f"(more runs; showing the first {limit})")


@main.command()
@click.argument("folder", type=click.Path(path_type=Path), required=False)
@click.option(
    "--uri", default=None, help="Send to this server (default: the one each run was logged to)."
)
def sync(folder: Path | None, uri: str | None) -> None:
    """Send what runs kept in a spool folder while the server was away.

    FOLDER is one run's folder or a spool folder of several (default: MODELYARD_SPOOL_DIR,
    else ~/.modelyard/spool). Metric batches (with params and tags), step updates and
    artifacts are sent in the order they were logged; each batch under the Idempotency-Key
    it was first sent with, so one the server already has is not stored twice. Sent items
    are deleted, then the run's end is recorded if it was kept too."""
    from modelyard.sdk.spool import default_spool_dir, run_folders, sync_folder

    where = folder or default_spool_dir()
    runs = run_folders(where)
    if not runs:
        state = "does not exist" if not where.exists() else "holds no spooled runs"
        click.echo(f"nothing to send: {where} {state}")
        return
    failed = False
    for run_folder in runs:
        try:
            report = sync_folder(run_folder, uri=uri)
        except (OSError, ValueError) as exc:  # an unreadable folder or manifest
            click.echo(f"{run_folder}: cannot read it: {exc}", err=True)
            failed = True
            continue
        line = f"run {report.run_id}: sent {report.sent} to {report.uri}"
        if report.ended:
            line += f", ended as {report.ended}"
        if report.left:
            line += f"; {report.left} left to send"
        click.echo(line)
        for refused in report.refused:
            click.echo(f"  refused, kept as {refused}", err=True)
        if report.problem:
            click.echo(f"  stopped: {report.problem}; run this command again later", err=True)
        failed = failed or not report.done
    if failed:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
