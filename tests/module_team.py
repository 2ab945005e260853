"""A team workspace built once per test module, for tests that make many requests and change
little: a database of the module's own (SQLite under a temporary folder, or a PostgreSQL
database copied from the session's template when MODELYARD_TEST_DATABASE_URL is set, the same
switch as the ``database_url`` fixture), the app on it, and ``tests.team.build_team``'s users
and tokens, plus an evaluation and a model version in project alpha.

Building the team hashes a password per user, which takes seconds; the ``team`` fixture
does it for every test.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from modelyard.app import create_app
from modelyard.services.access import accounts
from modelyard.settings import Settings
from tests.conftest import scratch_postgres
from tests.team import Team, build_team

API = "/api/v1"
MODEL = "matrix-model"


@dataclass
class Workspace:
    """The team, and the things in project alpha the requests name."""

    team: Team
    evaluation_id: str
    model: str
    version: int
    spare_token_id: int  # a token of the viewer's, for routes that name one (and may revoke it)

    @property
    def run_urn(self) -> str:
        return f"urn:modelyard:run:{self.team.run_id}"


@contextmanager
def module_workspace(folder: Path, pg_template: str | None) -> Iterator[Workspace]:
    with ExitStack() as stack:
        if pg_template is None:
            url = f"sqlite:///{folder / 'modelyard.db'}"
        else:
            url = stack.enter_context(scratch_postgres("mod_", pg_template))
        app = create_app(Settings(data_dir=folder / "data", database_url=url))
        stack.callback(app.state.store.engine.dispose)
        team = build_team(app)
        admin = team.api("admin")
        body = {"y_true": [0, 1, 1, 0], "y_score": [0.1, 0.7, 0.8, 0.4], "dataset": "holdout"}
        evaluation = admin.post(f"{API}/runs/{team.run_id}/evaluations", json=body)
        assert evaluation.status_code == 201, evaluation.text
        version = admin.post(f"{API}/runs/{team.run_id}/model-versions", json={"model": MODEL})
        assert version.status_code == 201, version.text
        spare = accounts.create_token(team.store, user="viewer", name="spare", actor="t")
        made = Workspace(
            team, evaluation.json()["id"], MODEL, int(version.json()["version"]), spare.info.id
        )
        try:
            yield made
        finally:
            for client in team.clients:
                client.close()
