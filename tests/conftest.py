"""Fixtures: a fresh database per test (SQLite by default, PostgreSQL when
MODELYARD_TEST_DATABASE_URL names a server), the app, an API client and SDK clients over
both transports."""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from moto.server import ThreadedMotoServer
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from modelyard.app import create_app
from modelyard.metadata.engine import make_engine, upgrade
from modelyard.sdk.client import Client
from modelyard.sdk.transport import InProcessTransport
from modelyard.settings import Settings

if TYPE_CHECKING:
    from tests.team import Team

PG_URL = os.environ.get("MODELYARD_TEST_DATABASE_URL")


def _admin_url(url: str) -> str:
    return make_url(url).set(database="postgres").render_as_string(hide_password=False)


@pytest.fixture(autouse=True)
def spool_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """SDK runs keep what they cannot send under the test's folder, never in ~/.modelyard."""
    spool = tmp_path / "spool"
    monkeypatch.setenv("MODELYARD_SPOOL_DIR", str(spool))
    return spool


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str | None]:
    """A migrated template database; each test copies it (PostgreSQL runs only)."""
    if not PG_URL:
        yield None
        return
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    # Unique per session: two test sessions on one server must not drop each other's template.
    name = f"{make_url(PG_URL).database}_tpl_{worker}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(_admin_url(PG_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine = make_engine(make_url(PG_URL).set(database=name).render_as_string(False))
    upgrade(engine)
    engine.dispose()
    yield name
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@contextmanager
def scratch_postgres(prefix: str, template: str | None) -> Iterator[str]:
    """A PostgreSQL database made for one test (copied from ``template`` if given), dropped
    afterwards."""
    assert PG_URL is not None
    name = f"{make_url(PG_URL).database}_{prefix}{uuid.uuid4().hex[:12]}"
    admin = create_engine(_admin_url(PG_URL), isolation_level="AUTOCOMMIT")
    copy = f' TEMPLATE "{template}"' if template else ""
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"{copy}'))
    try:
        yield make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def database_url(tmp_path: Path, pg_template: str | None) -> Iterator[str]:
    """A fresh, migrated database for one test."""
    if pg_template is None:
        yield f"sqlite:///{tmp_path / 'modelyard.db'}"
        return
    with scratch_postgres("", pg_template) as url:
        yield url


@pytest.fixture
def empty_database_url(tmp_path: Path, pg_template: str | None) -> Iterator[str]:
    """A fresh database with no schema at all (for migration tests)."""
    if pg_template is None:
        yield f"sqlite:///{tmp_path / 'empty' / 'modelyard.db'}"
        return
    with scratch_postgres("empty_", None) as url:
        yield url


# --- artifact stores: the local folder, and S3 over HTTP on a moto server
STORES = ("local", "s3")
S3_BUCKET = "modelyard-test"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Tests marked ``stores("local", "s3")`` (or their module) run once per store."""
    marker = metafunc.definition.get_closest_marker("stores")
    if marker is not None and "store_kind" in metafunc.fixturenames:
        metafunc.parametrize("store_kind", marker.args, indirect=True)


@pytest.fixture
def store_kind(request: pytest.FixtureRequest) -> str:
    """Which artifact store the test's apps use: the local folder unless parametrised."""
    kind: str = getattr(request, "param", "local")
    return kind


@dataclass(frozen=True)
class MotoServer:
    """moto's S3 server on a loopback port, with a bucket made for the tests."""

    endpoint: str
    bucket: str

    def client(self) -> Any:
        return boto3.session.Session().client("s3", endpoint_url=self.endpoint)


AWS_TEST_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@pytest.fixture(scope="session")
def s3_server() -> Iterator[MotoServer]:
    """One moto server per test process; the AWS_* variables point boto3 at it."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    env = {**AWS_TEST_ENV, "AWS_ENDPOINT_URL": endpoint}
    saved = {k: os.environ.get(k) for k in [*env, "AWS_PROFILE", "AWS_SESSION_TOKEN"]}
    os.environ.update(env)
    os.environ.pop("AWS_PROFILE", None)
    os.environ.pop("AWS_SESSION_TOKEN", None)
    moto = MotoServer(endpoint, S3_BUCKET)
    moto.client().create_bucket(Bucket=S3_BUCKET)
    yield moto
    server.stop()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture
def artifact_root(store_kind: str, request: pytest.FixtureRequest) -> str | None:
    """MODELYARD_ARTIFACT_ROOT for the test's apps: None (the data folder) or a prefix of
    its own in the test bucket."""
    if store_kind == "local":
        return None
    moto: MotoServer = request.getfixturevalue("s3_server")
    return f"s3://{moto.bucket}/t-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def settings(tmp_path: Path, database_url: str, artifact_root: str | None) -> Settings:
    return Settings(
        data_dir=tmp_path / "data", database_url=database_url, artifact_root=artifact_root
    )


@pytest.fixture
def app(settings: Settings) -> Iterator[FastAPI]:
    application = create_app(settings)
    yield application
    application.state.store.engine.dispose()


@pytest.fixture
def api(app: FastAPI) -> Iterator[httpx.Client]:
    """An HTTP client talking to the app in-process."""
    with in_process_client(app) as client:
        yield client


@pytest.fixture
def team(app: FastAPI) -> Iterator[Team]:
    """A team workspace on the test's app: users of every role, tokens of every kind."""
    from tests.team import build_team

    built = build_team(app)
    yield built
    for client in built.clients:
        client.close()


def in_process_client(app: FastAPI) -> httpx.Client:
    return httpx.Client(transport=InProcessTransport(app), base_url="http://localhost")


@pytest.fixture
def app_with(
    tmp_path: Path, database_url: str, artifact_root: str | None
) -> Iterator[Callable[..., FastAPI]]:
    """Builds apps on the test's database with some settings changed (e.g. smaller limits)."""
    made: list[FastAPI] = []

    def make(**changes: Any) -> FastAPI:
        folder = tmp_path / f"app-{len(made)}"
        changes.setdefault("artifact_root", artifact_root)
        made.append(create_app(Settings(data_dir=folder, database_url=database_url, **changes)))
        return made[-1]

    yield make
    for application in made:
        application.state.store.engine.dispose()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerThread:
    """A real uvicorn server on a loopback port, in a thread of the test process."""

    def __init__(self, app: FastAPI) -> None:
        self.port = free_port()
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("test server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)


@pytest.fixture
def server(app: FastAPI) -> Iterator[ServerThread]:
    with ServerThread(app) as running:
        yield running


@pytest.fixture(params=["local", "remote"])
def client(
    request: pytest.FixtureRequest, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Client]:
    """The SDK client over each transport: in-process on a data folder, and HTTP to a server."""
    if request.param == "local":
        # Local mode builds its own app from the environment's settings.
        monkeypatch.setenv("MODELYARD_DATABASE_URL", settings.resolved_database_url)
        if settings.artifact_root:
            monkeypatch.setenv("MODELYARD_ARTIFACT_ROOT", settings.artifact_root)
        sdk = Client(str(settings.data_dir))
        yield sdk
        sdk.close()
        return
    application = create_app(settings)
    with ServerThread(application) as running:
        sdk = Client(running.url)
        yield sdk
        sdk.close()
    application.state.store.engine.dispose()
