"""The SDK stands alone: ``import modelyard`` loads nothing of the server, a client-only
install (no extras) logs to a server and reads back, and what needs the server extra says so."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from modelyard.sdk.client import Client
from tests.conftest import ServerThread

ROOT = Path(__file__).resolve().parent.parent

# Top-level packages of the [server] and [demo] extras (and their import names).
SERVER_PACKAGES = (
    "alembic",
    "fastapi",
    "jinja2",
    "markupsafe",
    "multipart",
    "plotly",
    "pluggy",
    "pydantic_settings",
    "python_multipart",
    "sklearn",
    "sqlalchemy",
    "starlette",
    "uvicorn",
)
SERVER_MODULES = ("modelyard.app", "modelyard.settings", "modelyard.metadata")

# Makes every server package unimportable, as in an install without the extras.
BLOCKER = f"""
import sys
class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in {SERVER_PACKAGES!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None
sys.meta_path.insert(0, Blocker())
"""


def run_python(
    code: str, *, python: str = sys.executable, **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [python, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env},
        check=False,
    )


LOADED = f"""
import json, sys
server = [m for m in sys.modules
          if m.partition(".")[0] in {SERVER_PACKAGES!r}
          or m.startswith({SERVER_MODULES!r})]
print(json.dumps(server))
"""


def test_import_modelyard_loads_nothing_of_the_server() -> None:
    done = run_python(
        textwrap.dedent("""
            import modelyard
            from modelyard import limits, floats, schemas
            from modelyard.schemas import RunPublic, MetricPointIn
            import modelyard.cli
            client_class = modelyard.Client
            assert client_class.__name__ == "Client"
            assert RunPublic.model_fields and MetricPointIn.model_fields
        """)
        + LOADED
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []


def test_local_mode_without_the_server_extra_names_the_extra(tmp_path: Path) -> None:
    data = tmp_path / "data"
    done = run_python(
        BLOCKER
        + f"""
import modelyard
try:
    modelyard.Client({str(data)!r})
except modelyard.ServerExtraMissing as exc:
    print(exc)
else:
    raise SystemExit("local mode opened without the server")
"""
    )
    assert done.returncode == 0, done.stderr
    assert "pip install 'modelyard[server]'" in done.stdout
    assert str(data) in done.stdout
    assert not data.exists()  # it failed before touching anything


@pytest.mark.parametrize(
    ("args", "extras"),
    [
        (["serve"], "server"),
        (["db", "upgrade"], "server"),
        (["demo"], "server,demo"),
        (["projects", "--uri", "DATA"], "server"),
        (["runs", "churn", "--uri", "DATA"], "server"),
    ],
)
def test_server_commands_without_the_extra_say_what_to_install(
    tmp_path: Path, args: list[str], extras: str
) -> None:
    data = tmp_path / "data"
    args = [str(data) if a == "DATA" else a for a in args]
    done = run_python(
        BLOCKER + f"import modelyard.cli\nmodelyard.cli.main({args!r}, prog_name='modelyard')\n",
        MODELYARD_DATA_DIR=str(data),
    )
    assert done.returncode == 1
    assert f"pip install 'modelyard[{extras}]'" in done.stderr
    assert "Traceback" not in done.stderr
    assert not data.exists()


def test_a_missing_module_of_modelyard_itself_is_not_blamed_on_the_extra(tmp_path: Path) -> None:
    done = run_python(
        "import sys\n"
        # A broken install of modelyard itself, not a missing extra.
        "sys.modules['modelyard.app'] = None\n"
        "import modelyard\n"
        f"modelyard.Client({str(tmp_path / 'data')!r})\n"
    )
    assert done.returncode == 1
    assert "ModuleNotFoundError" in done.stderr
    assert "pip install" not in done.stderr


def _client_only_venv(where: Path) -> Path:
    """A fresh virtual environment with modelyard installed from this source tree, no extras."""
    source = where / "source"
    source.mkdir()
    shutil.copy(ROOT / "pyproject.toml", source)
    shutil.copy(ROOT / "README.md", source)
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    shutil.copytree(ROOT / "src", source / "src", ignore=ignore)
    venv = where / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            str(source),
        ],
        check=True,
        timeout=300,
        capture_output=True,
    )
    return python


def _clean_env() -> dict[str, str]:
    """No PYTHONPATH: the venv must use its own installed modelyard."""
    return {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "MODELYARD_URI"}}


@pytest.mark.slow
def test_a_client_only_install_logs_to_a_server(tmp_path: Path, server: ServerThread) -> None:
    python = _client_only_venv(tmp_path)

    absent = subprocess.run(
        [
            str(python),
            "-c",
            "import importlib.util, sys\n"
            f"print([m for m in {SERVER_PACKAGES!r} if importlib.util.find_spec(m)])",
        ],
        capture_output=True,
        text=True,
        check=True,
        env=_clean_env(),
    )
    assert absent.stdout.strip() == "[]"

    (tmp_path / "model.bin").write_bytes(b"weights \x00\x01" * 100)
    script = f"""
import sys, modelyard
assert modelyard.__file__.startswith(sys.prefix), modelyard.__file__
with modelyard.Client({server.url!r}) as client:
    with client.start_run(project="standalone", name="client-only") as run:
        for step in range(500):
            run.log_metric("loss", 1.0 / (step + 1), step=step)
        run.log_artifact({str(tmp_path / "model.bin")!r}, "model/model.bin")
    print(run.id)
""" + LOADED.replace("print(json.dumps(server))", "print(json.dumps(server), file=sys.stderr)")
    logged = subprocess.run(
        [str(python), "-c", script], capture_output=True, text=True, env=_clean_env(), check=False
    )
    assert logged.returncode == 0, logged.stderr
    run_id = logged.stdout.strip()
    assert json.loads(logged.stderr.strip().splitlines()[-1]) == []

    with Client(server.url) as dev:
        run = dev.get_run(run_id)
        assert (run.project, run.name, run.status) == ("standalone", "client-only", "finished")
        history = dev.get_metric_history(run_id, "loss")
        assert history.steps.tolist() == list(range(500))
        np.testing.assert_allclose(history.values, 1.0 / np.arange(1, 501))
        got = dev.download_artifact(run_id, "model/model.bin", tmp_path / "back.bin")
        assert got.read_bytes() == (tmp_path / "model.bin").read_bytes()

    cli = python.parent / "modelyard"
    listed = subprocess.run(
        [str(cli), "runs", "standalone", "--uri", server.url],
        capture_output=True,
        text=True,
        env=_clean_env(),
        check=False,
    )
    assert listed.returncode == 0, listed.stderr
    assert "client-only" in listed.stdout
    assert "finished" in listed.stdout
    refused = subprocess.run(
        [str(cli), "serve"], capture_output=True, text=True, env=_clean_env(), check=False
    )
    assert refused.returncode == 1
    assert "pip install 'modelyard[server]'" in refused.stderr
