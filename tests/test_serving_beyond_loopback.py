"""A server reachable beyond this machine will not start with no one able to sign in and
manage it: its start-up says how to create a site admin, and it starts once one exists."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from modelyard.app import create_app
from modelyard.services.access import accounts
from modelyard.settings import Settings
from tests.helpers import run_async
from tests.team import PASSWORD


def serve(app: FastAPI) -> list[int]:
    """Start the app as a server does (its lifespan) and, once started, ask it for its health
    and for the projects, as someone not signed in; the statuses of the two answers."""

    async def main() -> list[int]:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://modelyard.example.com"
            ) as client:
                return [
                    (await client.get("/healthz")).status_code,
                    (await client.get("/api/v1/projects")).status_code,
                ]

    return run_async(main)


def test_a_server_beyond_loopback_starts_only_once_a_site_admin_exists(
    tmp_path: Path, database_url: str
) -> None:
    settings = Settings(
        host="10.1.2.3",
        secret_key="x" * 40,
        allowed_hosts=["modelyard.example.com"],
        data_dir=tmp_path / "data",
        database_url=database_url,
        event_dispatcher=False,
    )
    app = create_app(settings)
    try:
        with pytest.raises(RuntimeError, match="without a site admin") as refused:
            serve(app)
        assert "modelyard users add NAME --admin" in str(refused.value)
        assert "10.1.2.3" in str(refused.value)
        # A user who is no admin is not enough: no one could manage the others.
        accounts.add_user(app.state.store, actor="t", name="someone", password=PASSWORD)
        with pytest.raises(RuntimeError, match="without a site admin"):
            serve(app)
        accounts.add_user(app.state.store, actor="t", name="root", password=PASSWORD, admin=True)
        # Served, and in team mode: nothing but public routes without signing in.
        assert serve(app) == [200, 401]
    finally:
        app.state.store.engine.dispose()
