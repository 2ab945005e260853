"""The docs keep up with the code: every setting and CLI command is documented."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelyard.cli import main
from modelyard.settings import Settings

README = (Path(__file__).parents[1] / "README.md").read_text()


@pytest.mark.parametrize("field", sorted(Settings.model_fields))
def test_every_setting_is_in_the_readme(field: str) -> None:
    assert f"MODELYARD_{field.upper()}" in README


@pytest.mark.parametrize("command", sorted(main.list_commands(None)))  # type: ignore[arg-type]
def test_every_command_is_in_the_readme(command: str) -> None:
    assert f"modelyard {command}" in README


def test_every_hook_is_in_the_readme() -> None:
    import inspect

    from modelyard import hookspecs

    hooks = [
        name
        for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
        if hasattr(fn, "modelyard_spec")
    ]
    assert hooks
    for name in hooks:
        assert f"`{name}`" in README
