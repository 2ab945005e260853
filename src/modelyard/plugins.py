"""The plugin manager: built-ins first, then every installed ``modelyard`` entry point."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pluggy

from modelyard import hookspecs
from modelyard.analyzers.base import Analyzer
from modelyard.errors import InvalidInput

BUILTINS = ("modelyard.analyzers.builtin",)


@dataclass(slots=True)
class Plugins:
    manager: pluggy.PluginManager
    analyzers: dict[str, Analyzer] = field(default_factory=dict)

    def analyzer(self, name: str) -> Analyzer:
        found = self.analyzers.get(name)
        if found is None:
            known = ", ".join(sorted(self.analyzers))
            raise InvalidInput(f"no analyzer named {name!r}; installed: {known}")
        return found

    def template_dirs(self) -> list[Path]:
        return [d for a in self.analyzers.values() for d in a.template_dirs]

    def static_dirs(self) -> list[tuple[Path, str]]:
        return [(d, f"{a.name}/") for a in self.analyzers.values() for d in a.static_dirs]


def make_plugins(*, load_entry_points: bool = True) -> Plugins:
    import importlib

    pm = pluggy.PluginManager("modelyard")
    pm.add_hookspecs(hookspecs)
    for name in BUILTINS:
        pm.register(importlib.import_module(name), name=name)
    if load_entry_points:
        pm.load_setuptools_entrypoints("modelyard")
    plugins = Plugins(pm)
    # pluggy calls the last registered first: reversed, the built-ins come first.
    for provided in reversed(pm.hook.register_analyzers()):
        for analyzer in provided:
            if analyzer.name in plugins.analyzers:
                raise RuntimeError(f"two plugins provide an analyzer named {analyzer.name!r}")
            plugins.analyzers[analyzer.name] = analyzer
    return plugins
