"""The plugin manager: built-ins first, then every installed ``modelyard`` entry point, then
the modules named in ``MODELYARD_PLUGINS``."""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pluggy

from modelyard import hookspecs
from modelyard.analyzers.base import Analyzer
from modelyard.errors import InvalidInput
from modelyard.routing import Routes

BUILTINS = ("modelyard.analyzers.builtin", "modelyard.builtin_routes")


class PluginError(RuntimeError):
    """A plugin named in the settings cannot be loaded."""


@dataclass(slots=True)
class Plugins:
    manager: pluggy.PluginManager
    analyzers: dict[str, Analyzer] = field(default_factory=dict)
    routes: list[Routes] = field(default_factory=list)

    def analyzer(self, name: str) -> Analyzer:
        found = self.analyzers.get(name)
        if found is None:
            known = ", ".join(sorted(self.analyzers))
            raise InvalidInput(f"no analyzer named {name!r}; installed: {known}")
        return found

    def template_dirs(self) -> list[Path]:
        analyzers = [d for a in self.analyzers.values() for d in a.template_dirs]
        return analyzers + [Path(d) for r in self.routes for d in r.template_dirs]

    def static_dirs(self) -> list[tuple[Path, str]]:
        return [(d, f"{a.name}/") for a in self.analyzers.values() for d in a.static_dirs]


def make_manager(
    *, modules: Sequence[str] = (), builtins: bool = True, load_entry_points: bool = True
) -> pluggy.PluginManager:
    """The hooks of the built-ins (unless ``builtins`` is false), the installed plugins and
    ``modules`` (import names), in that order."""
    pm = pluggy.PluginManager("modelyard")
    pm.add_hookspecs(hookspecs)
    for name in BUILTINS if builtins else ():
        pm.register(importlib.import_module(name), name=name)
    if load_entry_points:
        pm.load_setuptools_entrypoints("modelyard")
    for name in modules:
        if pm.get_plugin(name) is None:
            try:
                module = importlib.import_module(name)
            except ImportError as exc:
                raise PluginError(f"cannot load the plugin module {name!r}: {exc}") from exc
            pm.register(module, name=name)
    return pm


def make_plugins(*, modules: Sequence[str] = (), load_entry_points: bool = True) -> Plugins:
    pm = make_manager(modules=modules, load_entry_points=load_entry_points)
    plugins = Plugins(pm)
    # pluggy calls the last registered first: reversed, the built-ins come first.
    for provided in reversed(pm.hook.register_analyzers()):
        for analyzer in provided:
            if analyzer.name in plugins.analyzers:
                raise RuntimeError(f"two plugins provide an analyzer named {analyzer.name!r}")
            plugins.analyzers[analyzer.name] = analyzer
    for families in reversed(pm.hook.register_routes()):
        plugins.routes.extend(families)
    return plugins
