"""The ``modelyard`` command."""

from __future__ import annotations

import functools
import importlib
import os
import shutil
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from modelyard.metadata.store import Store
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
_uri = click.option("--uri", default=None, help="Server URL or data folder (env MODELYARD_URI).")
_token = click.option(
    "--token",
    default=None,
    help="API token for a server in team mode (env MODELYARD_TOKEN; safer than this flag, "
    "which other users may see in the process list).",
)


def uri_option(command: Callable[..., Any]) -> Callable[..., Any]:
    """Where the read commands read: --uri, and the token a server may want."""
    return _uri(_token(command))


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
    try:
        _refuse_unguarded(app.state.store, settings)
    finally:
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


def _refuse_unguarded(store: Any, settings: Settings) -> None:
    """Beyond loopback the server needs a site admin who can sign in; say so before serving
    (the app's start refuses too, with a traceback around the same message)."""
    from modelyard.app import NO_ADMIN
    from modelyard.services.access.accounts import count_users

    if not settings.local_mode and count_users(store)[1] == 0:
        raise click.ClickException(NO_ADMIN.format(host=settings.host))


@main.command()
@click.option(
    "--no-users", is_flag=True, help="Add no demo users: the portal stays open without sign-in."
)
@data_dir_option
@database_option
def demo(no_users: bool, data_dir: Path | None, database_url: str | None) -> None:
    """Build the demo workspace (real scikit-learn runs; nothing is downloaded) and its users,
    whose passwords it prints. Idempotent."""
    _require_server("modelyard demo", "modelyard.demo", extras="server,demo")
    from modelyard.demo import DEMO_GROUP, DEMO_USERS, add_demo_users, build_demo
    from modelyard.sdk.client import Client

    settings = _settings(data_dir, database_url)
    if settings.database_url:
        os.environ["MODELYARD_DATABASE_URL"] = settings.database_url
    with Client(str(settings.data_dir)) as client:
        built = build_demo(client)
    click.echo("demo workspace built" if built else "demo workspace already present")
    if no_users:
        return
    with _store(data_dir, database_url, "modelyard demo") as store:
        add_demo_users(store, actor=_cli_actor())
    click.echo("sign in to the portal as (user, password: role):")
    for user in DEMO_USERS:
        click.echo(f"  {user.name:<7} {user.password:<12} {user.describe()}")
    group, names, role, project = DEMO_GROUP
    click.echo(f"  and the group {group} ({', '.join(names)}): {role} of {project}")
    click.echo("(demo passwords: serve this workspace on this machine only)")


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
def _client(uri: str | None, token: str | None = None) -> Iterator[Client]:
    """A client for the read commands; what goes wrong becomes a one-line error."""
    import httpx
    from pydantic import ValidationError

    from modelyard.sdk.client import Client
    from modelyard.sdk.transport import ModelyardAPIError

    try:
        client = Client(uri, retries=2, token=token)
    except ValidationError as exc:  # a local folder, opened with a wrong MODELYARD_* value
        raise click.ClickException(_settings_problem(exc, set())) from None
    except ValueError as exc:  # a token that cannot be one (the message does not repeat it)
        raise click.ClickException(str(exc)) from None
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
def projects(uri: str | None, token: str | None) -> None:
    """List projects."""
    with _client(uri, token) as client:
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
    token: str | None,
) -> None:
    """List a project's runs."""
    with _client(uri, token) as client:
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


# --- users, tokens and roles ----------------------------------------------------------------
# These act on the database directly, not through a server, so the first site admin can be
# made before anyone can sign in; whoever runs them has the database anyway.


def _database_options(command: Callable[..., Any]) -> Callable[..., Any]:
    return data_dir_option(database_option(command))


def _cli_actor() -> str:
    """The change log's actor for what these commands do: the operating-system user."""
    import getpass

    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no user name for this uid (some containers)
        return "cli"


@contextmanager
def _store(data_dir: Path | None, database_url: str | None, command: str) -> Iterator[Store]:
    """The data folder's (or database URL's) store, migrated on first use as the server does;
    a refused change becomes a one-line error and exit code 1."""
    _require_server(command)
    from modelyard.errors import ModelyardError
    from modelyard.metadata.engine import SchemaError, ensure_schema, make_engine
    from modelyard.metadata.store import Store

    settings = _settings(data_dir, database_url)
    engine = make_engine(settings.resolved_database_url)
    try:
        ensure_schema(engine)
        yield Store(engine)
    except (SchemaError, ModelyardError) as exc:
        message = exc.message if isinstance(exc, ModelyardError) else str(exc)
        raise click.ClickException(message) from None
    finally:
        engine.dispose()


def _read_password(from_stdin: bool) -> str:
    """One line of standard input, or typed twice at a hidden prompt."""
    if not from_stdin:
        return str(click.prompt("Password", hide_input=True, confirmation_prompt=True))
    line = sys.stdin.readline().rstrip("\r\n")
    if not line:
        raise click.ClickException("--password-stdin read no password (an empty line)")
    return line


def _yes(flag: bool) -> str:
    return "yes" if flag else ""


password_stdin_option = click.option(
    "--password-stdin", is_flag=True, help="Read the password from one line of standard input."
)


@main.group()
def users() -> None:
    """Users of a team workspace (the first one makes the server ask everyone to sign in)."""


@users.command("add")
@click.argument("name")
@click.option("--admin", is_flag=True, help="A site admin: manages users and every project.")
@click.option("--display-name", default="", help="The name the portal shows (default NAME).")
@click.option("--email", default=None, help="E-mail address.")
@password_stdin_option
@click.option("--service", is_flag=True, help="A service account: no password, tokens only.")
@_database_options
def users_add(
    name: str,
    admin: bool,
    display_name: str,
    email: str | None,
    password_stdin: bool,
    service: bool,
    data_dir: Path | None,
    database_url: str | None,
) -> None:
    """Add a user; asks for their password twice (or reads it with --password-stdin)."""
    if service and password_stdin:
        raise click.UsageError("a service account has no password; leave out --password-stdin")
    with _store(data_dir, database_url, "modelyard users add") as store:
        from modelyard.services.access import accounts

        accounts.check_username(name)  # before asking for a password
        password = None if service else accounts.check_password(_read_password(password_stdin))
        made = accounts.add_user(
            store,
            actor=_cli_actor(),
            name=name,
            display_name=display_name,
            email=email,
            password=password,
            admin=admin,
            service=service,
        )
    kind = "service account" if made.service else "site admin" if made.admin else "user"
    click.echo(f"added {kind} {made.name!r}")


@users.command("list")
@_database_options
def users_list(data_dir: Path | None, database_url: str | None) -> None:
    """List users."""
    with _store(data_dir, database_url, "modelyard users list") as store:
        from modelyard.services.access import accounts

        found = accounts.list_users(store)
    rows = [
        (
            u.name,
            u.display_name,
            u.email,
            _yes(u.admin),
            _yes(u.disabled),
            "service" if u.service else "",
            _when(u.created_at),
        )
        for u in found
    ]
    headers = ["name", "display name", "e-mail", "admin", "disabled", "kind", "created (UTC)"]
    click.echo(_table(headers, rows))


def _set_disabled(name: str, disabled: bool, data_dir: Path | None, url: str | None) -> None:
    verb = "disable" if disabled else "enable"
    with _store(data_dir, url, f"modelyard users {verb}") as store:
        from modelyard.services.access import accounts

        accounts.update_user(store, name=name, disabled=disabled, actor=_cli_actor())
    effect = ": their sessions and tokens stop working" if disabled else ""
    click.echo(f"{verb}d {name!r}{effect}")


@users.command("disable")
@click.argument("name")
@_database_options
def users_disable(name: str, data_dir: Path | None, database_url: str | None) -> None:
    """Disable a user: they cannot sign in, and their sessions and tokens stop working."""
    _set_disabled(name, True, data_dir, database_url)


@users.command("enable")
@click.argument("name")
@_database_options
def users_enable(name: str, data_dir: Path | None, database_url: str | None) -> None:
    """Enable a disabled user again."""
    _set_disabled(name, False, data_dir, database_url)


@users.command("set-password")
@click.argument("name")
@password_stdin_option
@_database_options
def users_set_password(
    name: str, password_stdin: bool, data_dir: Path | None, database_url: str | None
) -> None:
    """Set a user's password; their browser sessions end."""
    with _store(data_dir, database_url, "modelyard users set-password") as store:
        from modelyard.services.access import accounts

        accounts.get_user(store, name=name)  # before asking for a password
        password = accounts.check_password(_read_password(password_stdin))
        accounts.set_password(store, name=name, password=password, actor=_cli_actor())
    click.echo(f"password of {name!r} set; their sessions ended")


@main.group()
def tokens() -> None:
    """API tokens, for the SDK and scripts (MODELYARD_TOKEN)."""


@tokens.command("create")
@click.option("--user", "user", required=True, help="Whose token it is.")
@click.option("--name", default="cli", show_default=True, help="What the token is for.")
@click.option(
    "--expires-in", type=click.FloatRange(min=0, min_open=True), help="Days (default: never)."
)
@click.option("--read-only", is_flag=True, help="May read, never change anything.")
@_database_options
def tokens_create(
    user: str,
    name: str,
    expires_in: float | None,
    read_only: bool,
    data_dir: Path | None,
    database_url: str | None,
) -> None:
    """Create a token and print it (only it, on standard output): it is shown this once."""
    with _store(data_dir, database_url, "modelyard tokens create") as store:
        from modelyard.services.access import accounts

        made = accounts.create_token(
            store,
            user=user,
            name=name,
            actor=_cli_actor(),
            expires_in_days=expires_in,
            read_only=read_only,
        )
    click.echo(made.secret)
    click.echo(
        f"token #{made.info.id} for {user!r}: copy it now, it is not shown again "
        "(use it as MODELYARD_TOKEN, or 'Authorization: Bearer <token>')",
        err=True,
    )


@tokens.command("list")
@click.option("--user", default=None, help="Only this user's tokens.")
@_database_options
def tokens_list(user: str | None, data_dir: Path | None, database_url: str | None) -> None:
    """List tokens (never their secrets)."""
    with _store(data_dir, database_url, "modelyard tokens list") as store:
        from modelyard.services.access import accounts

        if user is not None:
            accounts.get_user(store, name=user)
        found = accounts.list_tokens(store, user=user)
    rows = [
        (
            f"#{k.id}",
            k.user,
            k.name,
            _yes(k.read_only),
            _when(k.created_at),
            _when(k.expires_at),
            _when(k.last_used_at),
            _when(k.revoked_at),
        )
        for k in found
    ]
    headers = ["id", "user", "name", "read-only", "created", "expires", "last used", "revoked"]
    click.echo(_table(headers, rows))


@tokens.command("revoke")
@click.argument("token_id", metavar="ID", type=click.IntRange(min=1))
@_database_options
def tokens_revoke(token_id: int, data_dir: Path | None, database_url: str | None) -> None:
    """Revoke a token: every server refuses it within a second."""
    with _store(data_dir, database_url, "modelyard tokens revoke") as store:
        from modelyard.services.access import accounts

        accounts.revoke_token(store, token_id=token_id, actor=_cli_actor())
    click.echo(f"token #{token_id} revoked")


@main.group()
def groups() -> None:
    """Groups of users, which may be given roles in projects."""


@groups.command("set")
@click.argument("name")
@click.argument("members", nargs=-1)
@_database_options
def groups_set(
    name: str, members: tuple[str, ...], data_dir: Path | None, database_url: str | None
) -> None:
    """Make the group NAME (created if new) have exactly these members."""
    with _store(data_dir, database_url, "modelyard groups set") as store:
        from modelyard.services.access import accounts

        made = accounts.set_group(store, name=name, users=list(members), actor=_cli_actor())
    click.echo(f"group {name!r}: {', '.join(made) or 'no members'}")


@main.group()
def members() -> None:
    """Who may do what in a project: viewer, editor, reviewer or owner."""


group_option = click.option("--group", is_flag=True, help="WHO is a group, not a user.")


def _set_member(
    project: str, who: str, role: str | None, group: bool, data_dir: Path | None, url: str | None
) -> None:
    with _store(data_dir, url, "modelyard members") as store:
        from modelyard.services.access import accounts

        accounts.set_member(
            store,
            project=project,
            kind="group" if group else "user",
            name=who,
            role=role,
            actor=_cli_actor(),
        )
    kind = "group" if group else "user"
    done = f"is now {role}" if role else "is no longer a member"
    click.echo(f"{kind} {who!r} {done} in {project!r}")


@members.command("add")
@click.argument("project")
@click.argument("who", metavar="WHO")
@click.argument("role", metavar="ROLE")
@group_option
@_database_options
def members_add(
    project: str,
    who: str,
    role: str,
    group: bool,
    data_dir: Path | None,
    database_url: str | None,
) -> None:
    """Give a user (or --group) a ROLE in PROJECT: viewer, editor, reviewer or owner."""
    _set_member(project, who, role, group, data_dir, database_url)


@members.command("remove")
@click.argument("project")
@click.argument("who", metavar="WHO")
@group_option
@_database_options
def members_remove(
    project: str, who: str, group: bool, data_dir: Path | None, database_url: str | None
) -> None:
    """Take a user's (or --group's) role in PROJECT away."""
    _set_member(project, who, None, group, data_dir, database_url)


@members.command("list")
@click.argument("project")
@_database_options
def members_list(project: str, data_dir: Path | None, database_url: str | None) -> None:
    """List a project's members."""
    with _store(data_dir, database_url, "modelyard members list") as store:
        from modelyard.services.access import accounts

        found = accounts.project_members(store, project=project)
    click.echo(_table(["kind", "name", "role"], [(m.kind, m.name, m.role) for m in found.members]))
    if found.internal:
        click.echo("(internal: every signed-in user may read it)")


@members.command("internal")
@click.argument("project")
@click.option("--on/--off", "internal", required=True, help="Every signed-in user may read it.")
@_database_options
def members_internal(
    project: str, internal: bool, data_dir: Path | None, database_url: str | None
) -> None:
    """Make PROJECT internal (every signed-in user may read it) or not."""
    with _store(data_dir, database_url, "modelyard members internal") as store:
        from modelyard.services.access import accounts

        accounts.set_internal(store, project=project, internal=internal, actor=_cli_actor())
    state = "internal: every signed-in user may read it" if internal else "members only"
    click.echo(f"{project!r} is {state}")


if __name__ == "__main__":
    main()
