"""The SDK on a server in team mode: an API token (``token=`` or MODELYARD_TOKEN) goes with
every request; without one, or with a wrong one, the error says what to do and never shows
the token."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from fastapi import FastAPI

from modelyard.cli import main
from modelyard.sdk.client import Client
from modelyard.sdk.transport import ModelyardAPIError
from modelyard.services.access import accounts
from modelyard.settings import Settings
from tests.conftest import ServerThread


@pytest.fixture
def token(app: FastAPI, monkeypatch: pytest.MonkeyPatch) -> str:
    """A user's token; the server is in team mode from the user's creation."""
    monkeypatch.delenv("MODELYARD_TOKEN", raising=False)
    monkeypatch.delenv("MODELYARD_URI", raising=False)
    store = app.state.store
    accounts.add_user(store, actor="test", name="ada", password="a long password", admin=True)
    return accounts.create_token(store, user="ada", name="sdk", actor="test").secret


def test_a_client_with_a_token_works(server: ServerThread, token: str) -> None:
    with Client(server.url, token=token, retries=0) as client:
        made = client.create_project("churn")
        assert made.created_by == "ada"
        assert [p.name for p in client.list_projects()] == ["churn"]
        assert token not in repr(client.transport.http.headers)


def test_modelyard_token_is_read_from_the_environment(
    server: ServerThread, token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELYARD_TOKEN", token)
    with Client(server.url, retries=0) as client:
        assert client.create_project("churn").created_by == "ada"
    listed = CliRunner().invoke(main, ["projects", "--uri", server.url])
    assert listed.exit_code == 0, listed.output
    assert "churn" in listed.stdout


def test_no_token_says_how_to_send_one(server: ServerThread, token: str) -> None:
    with Client(server.url, retries=0) as client, pytest.raises(ModelyardAPIError) as caught:
        client.list_projects()
    assert caught.value.status == 401
    assert "MODELYARD_TOKEN" in str(caught.value)
    assert "token=" in str(caught.value)
    refused = CliRunner().invoke(main, ["projects", "--uri", server.url])
    assert refused.exit_code == 1
    assert "MODELYARD_TOKEN" in refused.stderr


def test_a_wrong_token_is_refused_without_being_shown(server: ServerThread, token: str) -> None:
    token_id, _, secret = token.rpartition("_")
    for wrong in (f"{token_id}_{secret[::-1]}", "not-a-token-at-all-1234567890"):
        with (
            Client(server.url, token=wrong, retries=0) as client,
            pytest.raises(ModelyardAPIError) as caught,
        ):
            client.list_projects()
        assert caught.value.status == 401
        shown = [str(caught.value), repr(caught.value), caught.value.message]
        assert "MODELYARD_TOKEN" in shown[0]
        assert all(wrong not in text and secret[::-1] not in text for text in shown)
    with pytest.raises(ValueError, match="copy it again") as bad:
        Client(server.url, token="line\nbreak-secret")
    assert "break-secret" not in str(bad.value)


def test_a_data_folder_acts_as_the_local_user_even_once_users_exist(
    settings: Settings, token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELYARD_DATABASE_URL", settings.resolved_database_url)
    # Whoever opens the folder has its database anyway: no token is asked for, none is sent.
    monkeypatch.setenv("MODELYARD_TOKEN", "myd_1_" + "x" * 40)
    with Client(str(settings.data_dir)) as client:
        assert client.create_project("churn").created_by == "local"
