"""Evaluating from the SDK: predictions travel as one Arrow table, results come back typed."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from modelyard.schemas import EvaluationPublic, ThresholdPoint

if TYPE_CHECKING:
    import pyarrow as pa

    from modelyard.sdk.client import Client

# pyarrow is imported where it is used: loading it is a sixth of `import modelyard`, which
# a script that only logs metrics does not need.

ARROW = "application/vnd.apache.arrow.stream"


def _column(values: Any) -> pa.Array:
    import pyarrow as pa

    arr = np.asarray(values)
    if arr.dtype == object:
        return pa.array(arr.astype(str))
    return pa.array(arr)


def predictions_table(
    y_true: Any,
    y_score: Any,
    *,
    weights: Any = None,
    groups: Mapping[str, Any] | None = None,
) -> tuple[pa.Table, dict[str, Any]]:
    """The predictions as an Arrow table, and the query naming its columns."""
    import pyarrow as pa

    scores = np.asarray(y_score)
    cols: dict[str, pa.Array] = {"y_true": _column(y_true)}
    query: dict[str, Any] = {"y_true": "y_true"}
    if scores.ndim == 2:
        names = [f"score_{i}" for i in range(scores.shape[1])]
        cols.update({n: pa.array(scores[:, i]) for i, n in enumerate(names)})
        query["y_score"] = names
    else:
        cols["y_score"] = _column(scores)
        query["y_score"] = ["y_score"]
    if weights is not None:
        cols["__weights"] = _column(weights)
        query["weights"] = "__weights"
    for name, values in (groups or {}).items():
        cols[name] = _column(values)
    if groups:
        query["group"] = list(groups)
    lengths = {len(c) for c in cols.values()}
    if len(lengths) > 1:
        sizes = ", ".join(f"{k}: {len(v)}" for k, v in cols.items())
        raise ValueError(f"the prediction columns differ in length ({sizes})")
    return pa.table(cols), query


def _ipc(table: pa.Table) -> bytes:
    import pyarrow as pa

    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


class Evaluation:
    """A stored evaluation: its headline metrics, full result and exact threshold queries."""

    def __init__(self, client: Client, public: EvaluationPublic) -> None:
        self.client = client
        self.public = public

    @property
    def id(self) -> str:
        return self.public.id

    @property
    def metrics(self) -> dict[str, dict[str, float | None]]:
        return self.public.metrics

    def result(self) -> dict[str, Any]:
        """Every analyzer's full result (curves, tables, notes)."""
        out: dict[str, Any] = self.client._call("GET", f"/evaluations/{self.id}/result")
        return out

    def at(self, *thresholds: float) -> list[ThresholdPoint]:
        """The exact confusion matrix and rates at each threshold (binary tasks)."""
        rows = self.client._call(
            "GET", f"/evaluations/{self.id}/thresholds", params={"t": list(thresholds)}
        )
        return [ThresholdPoint.model_validate(r) for r in rows]

    def __repr__(self) -> str:
        return f"Evaluation({self.id}, {self.public.task}, {self.public.name!r})"


def evaluate(
    client: Client,
    run_id: str,
    y_true: Any,
    y_score: Any,
    *,
    dataset: str | None = None,
    name: str | None = None,
    groups: Mapping[str, Any] | None = None,
    weights: Any = None,
    task: str | None = None,
    classes: Sequence[Any] | None = None,
    threshold: float = 0.5,
    target: str | None = None,
) -> Evaluation:
    """Send predictions to be evaluated, for the run or (``target``, an API path of a model
    version's evaluations) for a model version."""
    if classes is not None:  # labels travel as text, matched to the named classes
        y_true = np.asarray(y_true).astype(str)
    table, query = predictions_table(y_true, y_score, weights=weights, groups=groups)
    query.update(evaluation_id=uuid.uuid4().hex, threshold=threshold)
    query.update({k: v for k, v in (("dataset", dataset), ("name", name), ("task", task)) if v})
    if classes is not None:
        query["classes"] = [str(c) for c in classes]
    body = _ipc(table)
    resp = client.transport.request(
        "POST",
        target or f"/api/v1/runs/{run_id}/evaluations",
        params=query,
        headers={"Content-Type": ARROW},
        content_factory=lambda: body,
    )
    return Evaluation(client, EvaluationPublic.model_validate(resp.json()))
