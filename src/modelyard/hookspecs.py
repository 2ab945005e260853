"""Every extension point of modelyard, as pluggy hooks. Built-in features register through
the same hooks as third-party plugins (entry point group ``modelyard``, or a module named in
``MODELYARD_PLUGINS``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    import click

    from modelyard.analyzers.base import Analyzer
    from modelyard.events import DomainEvent
    from modelyard.routing import Routes

hookspec = pluggy.HookspecMarker("modelyard")
hookimpl = pluggy.HookimplMarker("modelyard")


@hookspec
def register_analyzers() -> list[Analyzer]:  # type: ignore[empty-body]
    """Evaluation analyzers this plugin provides."""


@hookspec
def register_routes() -> list[Routes]:  # type: ignore[empty-body]
    """Routers this plugin serves (JSON API routes or portal pages), with their templates."""


@hookspec
def register_commands(cli: click.Group) -> None:
    """Add subcommands to the ``modelyard`` command line with ``cli.add_command``."""


@hookspec
def on_event(event: DomainEvent) -> None:
    """React to a committed change; called at least once per event, in order per entity."""
