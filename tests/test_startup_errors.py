"""A wrong setting at `modelyard serve`, `db upgrade` or `demo` is one line naming what to set."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from modelyard.cli import main

SRC = str(Path(__file__).resolve().parents[1] / "src")


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("MODELYARD_"):
            monkeypatch.delenv(name)


def one_line_error(args: list[str], env: dict[str, str] | None = None) -> str:
    result = CliRunner().invoke(main, args, env=env)
    assert result.exit_code != 0, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert "Traceback" not in result.output
    return lines[0]


@pytest.mark.parametrize(
    "command", [["serve"], ["db", "upgrade"], ["demo"]], ids=["serve", "upgrade", "demo"]
)
def test_a_bad_environment_value_names_the_variable(command: list[str], tmp_path: Path) -> None:
    line = one_line_error([*command, "--data-dir", str(tmp_path)], env={"MODELYARD_PORT": "abc"})
    assert "MODELYARD_PORT='abc'" in line
    assert "integer" in line
    assert not (tmp_path / "modelyard.db").exists()  # nothing was started or created


def test_a_bad_flag_names_the_flag(tmp_path: Path) -> None:
    line = one_line_error(["serve", "--port", "70000", "--data-dir", str(tmp_path)])
    assert "--port=70000" in line
    assert "65535" in line


def test_several_bad_values_are_all_named(tmp_path: Path) -> None:
    env = {"MODELYARD_PORT": "0", "MODELYARD_MAX_UPLOAD_BYTES": "lots"}
    line = one_line_error(["db", "upgrade", "--data-dir", str(tmp_path)], env=env)
    assert "MODELYARD_PORT" in line
    assert "MODELYARD_MAX_UPLOAD_BYTES" in line


def test_serve_on_all_addresses_without_a_secret_says_what_to_set(tmp_path: Path) -> None:
    line = one_line_error(["serve", "--host", "0.0.0.0", "--data-dir", str(tmp_path)])
    assert "MODELYARD_SECRET_KEY" in line
    assert "0.0.0.0" in line


def test_serve_without_a_secret_in_a_real_process(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELYARD_")}
    env["PYTHONPATH"] = os.pathsep.join([SRC, env.get("PYTHONPATH", "")])
    done = subprocess.run(
        [sys.executable, "-m", "modelyard.cli", "serve", "--host", "0.0.0.0"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "MODELYARD_SECRET_KEY" in lines[0]
    assert not (tmp_path / "modelyard-data").exists()


def test_a_read_command_on_a_local_folder_names_the_bad_variable(tmp_path: Path) -> None:
    line = one_line_error(
        ["projects", "--uri", str(tmp_path)], env={"MODELYARD_MAX_BATCH_POINTS": "0"}
    )
    assert "MODELYARD_MAX_BATCH_POINTS='0'" in line
