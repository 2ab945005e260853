"""Every extension point of modelyard, as pluggy hooks. Built-in features register through
the same hooks as third-party plugins (entry point group ``modelyard``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from modelyard.analyzers.base import Analyzer

hookspec = pluggy.HookspecMarker("modelyard")
hookimpl = pluggy.HookimplMarker("modelyard")


@hookspec
def register_analyzers() -> list[Analyzer]:  # type: ignore[empty-body]
    """Evaluation analyzers this plugin provides."""
