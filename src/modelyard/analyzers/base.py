"""What an analyzer is, and the prediction table it reads.

An analyzer declares the tasks it applies to and the columns it needs, computes a JSON-able
result (and optionally side tables, stored as Arrow files) from a :class:`PredictionTable`,
and says everything the pages need to show and compare its results: its headline metrics and
which way each is better (:class:`MetricSpec`), the queries it answers from its side tables
(:class:`SideQuery`), its panels for one evaluation and its comparison panels for several.
The pages, services and templates use nothing else; the built-in analyzers are registered
exactly like third-party ones (subclasses of :class:`Analyzer` returned from the
``register_analyzers`` hook, which may ship templates and static files).
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import pyarrow as pa
from pydantic import BaseModel

from modelyard.errors import InvalidInput, ModelyardError

Task = Literal["binary", "multiclass", "regression"]
TASKS: tuple[Task, ...] = ("binary", "multiclass", "regression")
Floats = np.ndarray[Any, np.dtype[np.float64]]
MAX_GROUPS = 1000


@dataclass(slots=True)
class PredictionTable:
    """Validated columns: ``y_true``; ``y_score`` (1-D for binary and regression, n × classes
    for multiclass); optional ``weights`` and ``groups`` (name → labels, one per row)."""

    task: Task
    y_true: np.ndarray[Any, Any]
    y_score: np.ndarray[Any, Any]
    weights: Floats | None = None
    groups: dict[str, np.ndarray[Any, Any]] = field(default_factory=dict)
    classes: list[Any] = field(default_factory=list)
    threshold: float = 0.5  # the decision threshold (score >= it is positive) for rates

    def __len__(self) -> int:
        return len(self.y_true)

    @property
    def w(self) -> Floats:
        """Weights, ones when none were given."""
        return self.weights if self.weights is not None else np.ones(len(self), dtype=np.float64)


Direction = Literal["higher", "lower", "none"]


OTHER_GROUP = "Other"


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """A metric the pages show: its key in the result's metrics, what to call it, which way
    it is better ("none" for counts and shares), whether lists of evaluations show it
    (``summary``), whether evaluation pages put it first (``headline``) and under which named
    group they show it otherwise (``group``; the groups in the order the analyzer first
    names them, metrics without one under "Other").

    A metric with ``query`` is not stored: its value depends on the threshold chosen on the
    page, and is the field ``key`` of the analyzer's answer to that side query (see
    :meth:`Analyzer.metrics_at`); the pages update it as the threshold moves."""

    key: str
    title: str = ""
    direction: Direction = "none"
    summary: bool = False
    headline: bool = False
    group: str = ""
    query: str = ""

    @property
    def label(self) -> str:
        return self.title or self.key


class InvalidQuery(ModelyardError):
    """Parameters of a side-table query that do not fit its parameter model."""

    status = 422
    code = "INVALID_QUERY"


@dataclass(frozen=True, slots=True)
class SideQuery:
    """A question an analyzer answers from its stored side tables, asked with
    ``GET /api/v1/evaluations/{id}/{name}?...`` (one evaluation) or
    ``GET /charts/evaluations/{name}?e=...&...`` (several, for the pages). ``params`` is the
    pydantic model of the query string (list fields take repeated parameters)."""

    name: str
    params: type[BaseModel]
    tables: tuple[str, ...]


@dataclass(slots=True)
class Computed:
    """What :meth:`Analyzer.analyze` gives: the JSON-able result, and side tables (name →
    Arrow table) stored as files under the evaluation's folder for later queries."""

    result: dict[str, Any]
    side_tables: dict[str, pa.Table] = field(default_factory=dict)


@dataclass(slots=True)
class Panel:
    """One block of an evaluation page: a Plotly figure, or a template with its context.

    ``marker`` (what of a figure follows the threshold control: a trace, ``{"trace": index,
    "x": field, "y": field}``, or its first threshold line and label, ``{"line": 0}``) and
    ``block`` (a template rendered across the page, above the charts, with its own headings)
    are optional."""

    title: str
    figure: dict[str, Any] | None = None
    template: str | None = None
    context: dict[str, Any] = field(default_factory=dict)
    wide: bool = False
    marker: dict[str, Any] | None = None
    block: bool = False


@dataclass(slots=True)
class EvaluationView:
    """One evaluation as an analyzer's panels see it: this analyzer's result and headline
    metrics, the evaluation's label and colour on the page, and its side tables (read on
    demand; None for a table the evaluation did not store)."""

    id: str
    label: str
    color: str
    task: str
    threshold: float
    weighted: bool
    result: dict[str, Any]
    metrics: dict[str, float | None]
    side_table: Callable[[str], pa.Table | None]
    chosen: float | None = None  # the threshold the page's address asks for, if any

    @property
    def plot_label(self) -> str:
        """The label for a Plotly figure: Plotly reads a few HTML tags in labels, so they are
        escaped (user text such as an evaluation's name must never become markup)."""
        return plotly_text(self.label)


def plotly_text(text: str) -> str:
    """User text for a Plotly label, its HTML escaped."""
    return html.escape(text, quote=False)


class Analyzer:
    """Base class of analyzers; subclasses set the class attributes and implement
    :meth:`compute` (or :meth:`analyze`, to store side tables too) and :meth:`panels` (or
    :meth:`evaluation_panels`, to see the evaluation and its side tables)."""

    name: ClassVar[str]
    title: ClassVar[str]
    tasks: ClassVar[frozenset[str]]
    requires: ClassVar[frozenset[str]] = frozenset({"y_true", "y_score"})
    template_dirs: ClassVar[tuple[Path, ...]] = ()
    static_dirs: ClassVar[tuple[Path, ...]] = ()
    metrics: ClassVar[tuple[MetricSpec, ...]] = ()
    queries: ClassVar[tuple[SideQuery, ...]] = ()

    def applies_to(self, table: PredictionTable) -> bool:
        if table.task not in self.tasks:
            return False
        return "groups" not in self.requires or bool(table.groups)

    def compute(self, table: PredictionTable) -> dict[str, Any]:
        raise NotImplementedError

    def analyze(self, table: PredictionTable) -> Computed:
        """The result and side tables; by default :meth:`compute`'s result alone."""
        return Computed(self.compute(table))

    def headline(self, result: dict[str, Any]) -> dict[str, float | None]:
        """The scalar metrics stored with the evaluation for lists and comparisons: by
        default every number in ``result["metrics"]``."""
        out: dict[str, float | None] = {}
        for key, value in (result.get("metrics") or {}).items():
            if value is None or (isinstance(value, int | float) and not isinstance(value, bool)):
                out[key] = None if value is None else float(value)
        return out

    def metric(self, key: str) -> MetricSpec:
        """How to show the headline metric ``key``: its declared spec, else a plain one."""
        for spec in self.metrics:
            if spec.key == key:
                return spec
        return MetricSpec(key)

    def metrics_at(self, items: list[EvaluationView]) -> dict[str, dict[str, float | None]]:
        """Per evaluation id, the values of its metrics declared with a ``query`` (those that
        depend on the page's threshold) at the threshold the page starts with, and that
        threshold as "threshold"."""
        return {}

    def notes(self, result: dict[str, Any]) -> list[str]:
        """What a reader should know about the result (undefined metrics and the like)."""
        return [str(n) for n in result.get("notes") or []]

    def panels(self, result: dict[str, Any]) -> list[Panel]:
        return []

    def evaluation_panels(self, item: EvaluationView) -> list[Panel]:
        """The panels of one evaluation's page; by default :meth:`panels` of its result."""
        return self.panels(item.result)

    def comparison_panels(self, items: list[EvaluationView]) -> list[Panel]:
        """Panels that put several evaluations side by side (the metrics table is shown for
        every analyzer already)."""
        return []

    def query(self, name: str, tables: Mapping[str, pa.Table], params: BaseModel) -> Any:
        """The JSON-able answer to the side query ``name`` of one evaluation."""
        raise NotImplementedError

    def combine(self, name: str, answers: list[tuple[str, Any]], params: BaseModel) -> Any:
        """Several evaluations' answers (evaluation id, answer) as one JSON body."""
        return {"evaluations": [{"id": i, "answer": a} for i, a in answers]}


def _column(name: str, values: Any) -> np.ndarray[Any, Any]:
    try:
        arr = np.asarray(values)
    except ValueError:  # ragged: lists of different lengths, or lists beside single values
        raise InvalidInput(
            f"{name} must be a column of single values (or, for y_score, of lists of one length)"
        ) from None
    if arr.dtype == object:
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError):
            arr = arr.astype(str)
    if arr.ndim == 0:
        raise InvalidInput(f"{name} must be a column of values, not a single value")
    return arr


def _finite_scores(y_score: np.ndarray[Any, Any]) -> Floats:
    if not np.issubdtype(y_score.dtype, np.number) or y_score.dtype == np.bool_:
        raise InvalidInput("y_score must hold numbers")
    scores = y_score.astype(np.float64, copy=False)
    bad = ~np.isfinite(scores)
    if bad.any():
        first = int(np.flatnonzero(bad.reshape(len(scores), -1).any(axis=1))[0])
        raise InvalidInput(
            f"y_score holds {int(bad.sum()):,} NaN or infinite value(s), the first in row {first}; "
            "every score must be a finite number"
        )
    return scores


def distinct(values: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """The distinct values, sorted; small-range integers by counting rather than sorting."""
    if values.size and np.issubdtype(values.dtype, np.integer):
        lo, hi = int(values.min()), int(values.max())
        if hi - lo < 1_000_000:
            counts = np.bincount((values - lo).astype(np.intp), minlength=hi - lo + 1)
            return (np.flatnonzero(counts) + lo).astype(values.dtype)
    return np.unique(values)


def detect_task(y_true: np.ndarray[Any, Any], y_score: np.ndarray[Any, Any]) -> Task:
    """Binary when the labels are 0/1 (or booleans) and there is one score per row;
    multiclass when there is a score per class; otherwise regression."""
    if y_score.ndim == 2 and y_score.shape[1] > 1:
        return "multiclass"
    if y_true.dtype == np.bool_ or y_true.dtype.kind in "US":
        return "binary"
    labels = distinct(y_true)
    if len(labels) <= 2 and np.isin(labels, (0, 1)).all():
        return "binary"
    # Two whole-number labels scored with probabilities read as a binary task with a label
    # mistake (e.g. 1/2 instead of 0/1), which the binary checks then explain.
    whole = bool(np.all(np.mod(labels, 1) == 0)) if len(labels) else False
    if len(labels) <= 2 and whole and y_score.min() >= 0 and y_score.max() <= 1:
        return "binary"
    return "regression"


def _binary_labels(y_true: np.ndarray[Any, Any]) -> np.ndarray[Any, np.dtype[np.int8]]:
    if y_true.dtype == np.bool_:
        return y_true.astype(np.int8)
    if not np.issubdtype(y_true.dtype, np.number):
        raise InvalidInput("y_true of a binary task must be 0 or 1 (or true/false)")
    outside = ~np.isin(y_true, (0, 1))
    if outside.any():
        first = int(np.flatnonzero(outside)[0])
        shown = sorted({float(v) for v in np.unique(y_true[outside])[:5]})
        raise InvalidInput(
            f"y_true of a binary task must be 0 or 1; found {shown} (first in row {first})"
        )
    return y_true.astype(np.int8)


def _multiclass_labels(
    y_true: np.ndarray[Any, Any], scores: Floats, classes: list[Any] | None
) -> tuple[np.ndarray[Any, np.dtype[np.int64]], list[Any]]:
    """Labels as class indices 0..k-1 (columns of ``scores``), and the class names."""
    if scores.ndim != 2 or scores.shape[1] < 2:
        raise InvalidInput("a multiclass task takes one score column per class (n rows × k)")
    k = scores.shape[1]
    if not classes:
        found = np.unique(y_true)
        if np.issubdtype(y_true.dtype, np.integer) and found.min() >= 0 and found.max() < k:
            classes = list(range(k))
        elif len(found) == k:
            classes = found.tolist()
        else:
            raise InvalidInput(
                f"y_true has {len(found)} distinct labels but y_score has {k} columns; "
                "name the classes (one per column)"
            )
    if len(classes) != k:
        raise InvalidInput(f"{len(classes)} classes named but y_score has {k} columns")
    names = _column("classes", classes)
    if names.ndim != 1:
        raise InvalidInput("classes must be a list of single values")
    order = np.argsort(names, kind="stable")
    pos = np.searchsorted(names[order], y_true)
    pos = np.clip(pos, 0, k - 1)
    index = order[pos]
    unknown = names[index] != y_true
    if unknown.any():
        first = int(np.flatnonzero(unknown)[0])
        raise InvalidInput(
            f"y_true holds a label that is not a class: {y_true[first].item()!r} (row {first})"
        )
    return index.astype(np.int64), list(classes)


def _weights(weights: Any, n: int) -> Floats | None:
    if weights is None:
        return None
    w = _column("weights", weights)
    if not np.issubdtype(w.dtype, np.number):
        raise InvalidInput("weights must be numbers")
    w = w.astype(np.float64)
    if len(w) != n:
        raise InvalidInput(f"weights has {len(w):,} rows but y_true has {n:,}")
    if not np.isfinite(w).all() or (w < 0).any():
        raise InvalidInput("weights must be finite and not negative")
    if not w.sum() > 0:
        raise InvalidInput("the weights sum to zero")
    return w


def _groups(groups: dict[str, Any] | None, n: int) -> dict[str, np.ndarray[Any, Any]]:
    out = {}
    for name, values in (groups or {}).items():
        g = _column(f"group column {name!r}", values)
        if len(g) != n:
            raise InvalidInput(f"group column {name!r} has {len(g):,} rows but y_true has {n:,}")
        labels = np.unique(g.astype(str))
        if len(labels) < 2:
            raise InvalidInput(
                f"group column {name!r} has a single group ({labels[0] if len(labels) else '—'}); "
                "fairness needs at least two groups to compare"
            )
        if len(labels) > MAX_GROUPS:
            raise InvalidInput(
                f"group column {name!r} has {len(labels):,} groups; at most {MAX_GROUPS}"
            )
        out[name] = g.astype(str)
    return out


def prediction_table(
    y_true: Any,
    y_score: Any,
    *,
    weights: Any = None,
    groups: dict[str, Any] | None = None,
    task: Task | None = None,
    classes: list[Any] | None = None,
    threshold: float = 0.5,
) -> PredictionTable:
    """Check the columns and build the table; every problem is an InvalidInput naming it."""
    truth = _column("y_true", y_true)
    score = _column("y_score", y_score)
    n = len(truth)
    if n == 0:
        raise InvalidInput("the prediction table is empty")
    if len(score) != n:
        raise InvalidInput(f"y_true has {n:,} rows but y_score has {len(score):,}")
    if truth.ndim != 1:
        raise InvalidInput("y_true must be one column")
    scores = _finite_scores(score)
    task = task or detect_task(truth, scores)
    if task not in TASKS:
        raise InvalidInput(f"unknown task {task!r}; one of {', '.join(TASKS)}")
    if task == "binary":
        if scores.ndim != 1:
            raise InvalidInput("a binary task takes one score per row (the positive class's)")
        truth = _binary_labels(truth)
    elif task == "multiclass":
        truth, classes = _multiclass_labels(truth, scores, classes)
    elif task == "regression":
        if scores.ndim != 1:
            raise InvalidInput("a regression task takes one prediction per row")
        if not np.issubdtype(truth.dtype, np.number):
            raise InvalidInput("y_true of a regression task must be numbers")
        truth = _finite_scores(truth.astype(np.float64))
    return PredictionTable(
        task=task,
        y_true=truth,
        y_score=scores,
        weights=_weights(weights, n),
        groups=_groups(groups, n),
        classes=list(classes or []),
        threshold=threshold,
    )
