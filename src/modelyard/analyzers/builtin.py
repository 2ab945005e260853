"""The built-in analyzers, registered through the same hook as any plugin."""

from __future__ import annotations

from modelyard.analyzers.base import Analyzer
from modelyard.analyzers.binary import BinaryClassification
from modelyard.analyzers.fairness import Fairness
from modelyard.analyzers.multiclass import Multiclass
from modelyard.analyzers.regression import Regression
from modelyard.hookspecs import hookimpl


@hookimpl
def register_analyzers() -> list[Analyzer]:
    return [BinaryClassification(), Fairness(), Multiclass(), Regression()]
