"""POST /api/v1/runs/search checked against an independent model of the data.

A seeded population of runs is written through the API; the test keeps its own record of
what it wrote (latest metric values worked out from the points it logged, tags after their
overwrites and deletions, statuses, renames) and evaluates every filter and ordering on that
record in plain Python. The server's answer must equal the model's, run for run and in order.

Semantics the model encodes (README, "Searching runs"):
* a comparison with a field the run lacks is false, so ``not`` of it is true;
* NaN equals only NaN: ``!= 1`` and ``not in (1)`` match it, ``< >`` never do, and it sorts
  with the missing values, last in either direction;
* strings compare and sort by code point; ``like`` is case-sensitive, ``ilike`` ignores the case
  of ASCII letters; in patterns ``%`` is any run, ``_`` any one character, ``\\`` escapes;
* ties are broken by creation order, in the direction of the last order_by term.

Set MODELYARD_SEARCH_SEED to explore other populations.
"""

from __future__ import annotations

import base64
import functools
import json
import math
import os
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

SEED = int(os.environ.get("MODELYARD_SEARCH_SEED", "1729"))
BASE = 1_767_225_600_000  # 2026-01-01, ms
SEARCH = "/api/v1/runs/search"
NAN, INF = math.nan, math.inf


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()

# --- the population's vocabulary: case variants, unicode, wildcard characters, quotes
NAMES = [
    "baseline",
    "Baseline",
    "BASELINE",
    "gbm-tuned",
    "gbm_tuned",
    "gbmXtuned",
    "résumé",
    "Résumé",
    "zebra",
    "Zebra",
    "50% off",
    "50 percent",
    "it's",
    "αβγ",
    "ß-run",
    "emoji 🚀",
    "a\\b",
    "_under",
]
PARAMS: dict[str, list[str]] = {
    "model": ["gbm", "GBM", "Gbm", "xgb", "lr", "rf", "g_m", "g%m", "gbm2", "gbm\\x"],
    "lr": ["0.1", "0.01", "0.001", "1e-3", "10", "9"],
    "depth": ["2", "10", "3", "007"],
    "val.split": ["0.2", "0.25"],
    "batch size": ["32", "64", "128"],
    "optimizer": ["adam", "Adam", "ADAM", "sgd", "adamw", "ädam", "Ädam"],
    "empty": ["", "x"],
    "layers.0.units": ["64", "128"],
}
TAGS: dict[str, list[str]] = {
    "team": ["growth", "Growth", "ml-core", "ml_ops", "ML-Infra", "mlxops"],
    "mlflow.user": ["alice", "bob", "Carol", "dave"],
    "note": [
        "it's fine",
        'say "hi"',
        "50% done",
        "a_b",
        "back\\slash",
        "ünïcode",
        "Ünïcode",
        "",
        "zz",
    ],
    "priority": ["1", "2", "10"],
}
DURATIONS = [0, 0, 1000, 60_000, 60_000, 123_456, 3_600_000]


def _auc(rng: random.Random) -> float:
    return NAN if rng.random() < 0.08 else round(rng.uniform(0.5, 1.0), 2)


def _acc(rng: random.Random) -> float:
    return rng.choice([0.0, -0.0, 0.5, 1.0, INF, -INF, NAN, round(rng.uniform(0, 1), 3)])


def _loss(rng: random.Random) -> float:
    return 1e300 if rng.random() < 0.05 else float(rng.randint(0, 5))


# key -> (probability a run has it, value generator)
METRICS: dict[str, tuple[float, Callable[[random.Random], float]]] = {
    "auc": (0.85, _auc),
    "val.loss": (0.7, lambda rng: round(rng.uniform(-0.1, 1.5), 3)),
    "val loss": (0.6, lambda rng: round(rng.uniform(0, 1), 1)),
    "acc": (0.6, _acc),
    "loss": (0.7, _loss),
    "acc.top.5": (0.5, lambda rng: round(rng.uniform(0, 1), 2)),
    "AUC": (0.07, lambda rng: round(rng.uniform(0, 1), 2)),
}


@dataclass
class Run:
    """What the test wrote: the model the server's answers are checked against."""

    index: int  # creation order
    run_id: str
    project: str
    name: str
    start_time: int
    status: str = "running"
    end_time: int | None = None
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)

    def value(self, kind: str, key: str) -> Any:
        if kind == "metric":
            return self.metrics.get(key, MISSING)
        if kind == "param":
            return self.params.get(key, MISSING)
        if kind == "tag":
            return self.tags.get(key, MISSING)
        if key == "duration":
            return MISSING if self.end_time is None else self.end_time - self.start_time
        if key == "end_time":
            return MISSING if self.end_time is None else self.end_time
        return {
            "run_id": self.run_id,
            "name": self.name,
            "status": self.status,
            "start_time": self.start_time,
            "created_by": "local",
        }[key]

    # shorthands for hand-written expectations
    def m(self, key: str) -> Any:
        return self.value("metric", key)

    def p(self, key: str) -> Any:
        return self.value("param", key)

    def t(self, key: str) -> Any:
        return self.value("tag", key)

    def a(self, key: str) -> Any:
        return self.value("attribute", key)


def _json_number(v: float) -> float | str:
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "Infinity" if v > 0 else "-Infinity"
    return v


def add_run(
    api: httpx.Client,
    rng: random.Random,
    runs: list[Run],
    project: str,
    *,
    start_time: int | None = None,
    metrics: dict[str, float] | None = None,
    finish: bool = True,
) -> Run:
    """Create one random run through the API, spreading its data over several calls."""
    run = Run(
        index=len(runs),
        run_id=f"{rng.getrandbits(128):032x}",
        project=project,
        name=rng.choice(NAMES),
        start_time=BASE + rng.randrange(60) * 1000 if start_time is None else start_time,
    )
    params = {k: rng.choice(vs) for k, vs in PARAMS.items() if rng.random() < 0.8}
    # Most params come with the create, some with a later batch.
    later_params = {k: v for k, v in params.items() if rng.random() < 0.15}
    tags = {k: rng.choice(vs) for k, vs in TAGS.items() if rng.random() < 0.75}
    removed = rng.random() < 0.3
    if removed:
        tags["removed"] = "soon"
    resp = api.post(
        "/api/v1/runs",
        json={
            "project": project,
            "name": run.name,
            "run_id": run.run_id,
            "start_time": run.start_time,
            "params": {k: v for k, v in params.items() if k not in later_params},
            "tags": tags,
        },
    )
    assert resp.status_code == 201, resp.text
    run.params = dict(params)
    run.tags = dict(tags)

    points: list[dict[str, Any]] = []
    if metrics is None:
        for key, (chance, gen) in METRICS.items():
            if rng.random() >= chance:
                continue
            steps = rng.sample(range(8), rng.randint(1, 3))
            history = [(s, run.start_time + 10 * s + rng.randrange(5), gen(rng)) for s in steps]
            if key == "loss" and rng.random() < 0.3:  # same step again, later: it wins
                s, ts, _ = max(history)
                history.append((s, ts + 1, gen(rng)))
            points += [
                {"key": key, "value": _json_number(v), "step": s, "timestamp": ts}
                for s, ts, v in history
            ]
            run.metrics[key] = max(history)[2]  # highest step, then latest timestamp
    else:
        for key, v in metrics.items():
            points.append({"key": key, "value": _json_number(v), "step": 0, "timestamp": BASE})
            run.metrics[key] = v
    rng.shuffle(points)
    # Some runs get their points in two batches, in no particular step order.
    cut = rng.randint(0, len(points)) if rng.random() < 0.25 else len(points)
    changed_tags = {"team": rng.choice(TAGS["team"])} if rng.random() < 0.2 else {}
    batches = [
        {"metrics": points[:cut], "params": later_params, "tags": changed_tags},
        {"metrics": points[cut:]},
    ]
    for body in batches:
        if any(body.values()):
            resp = api.post(f"/api/v1/runs/{run.run_id}/batch", json=body)
            assert resp.status_code == 204, resp.text
    run.tags.update(changed_tags)
    if removed and rng.random() < 0.5:
        resp = api.delete(f"/api/v1/runs/{run.run_id}/tags/removed")
        assert resp.status_code == 204, resp.text
        del run.tags["removed"]

    roll = rng.random()
    status = "running" if not finish or roll < 0.3 else "finished" if roll < 0.7 else "failed"
    if roll > 0.9 and finish:
        status = "killed"
    patch: dict[str, Any] = {}
    if status != "running":
        run.status = status
        run.end_time = run.start_time + rng.choice(DURATIONS)
        patch = {"status": status, "end_time": run.end_time}
    if rng.random() < 0.1:
        run.name = rng.choice(NAMES)
        patch["name"] = run.name
    if patch:
        resp = api.patch(f"/api/v1/runs/{run.run_id}", json=patch)
        assert resp.status_code == 200, resp.text
    runs.append(run)
    return run


PROJECTS = ["vision"] * 8 + ["nlp"] * 8 + ["tabular"]


def populate(api: httpx.Client, n: int = 150, seed: int = SEED) -> list[Run]:
    rng = random.Random(seed)
    runs: list[Run] = []
    for _ in range(n):
        add_run(api, rng, runs, rng.choice(PROJECTS))
    return runs


# --- the model's semantics
def _nan(v: Any) -> bool:
    return isinstance(v, float) and math.isnan(v)


def _same(a: Any, b: Any) -> bool:
    if _nan(a) or _nan(b):
        return _nan(a) and _nan(b)
    return bool(a == b)


ASCII_FOLD = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def like(value: Any, pattern: str, *, fold: bool = False) -> bool:
    if value is MISSING:
        return False
    if fold:
        value, pattern = value.translate(ASCII_FOLD), pattern.translate(ASCII_FOLD)
    regex, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            regex.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        regex.append(".*" if c == "%" else "." if c == "_" else re.escape(c))
        i += 1
    return re.fullmatch("".join(regex), value, re.DOTALL) is not None


def ilike(value: Any, pattern: str) -> bool:
    return like(value, pattern, fold=True)


def check(value: Any, op: str, operand: Any) -> bool:
    if op == "is_null":
        return value is MISSING
    if op == "is_not_null":
        return value is not MISSING
    if value is MISSING:
        return False
    if op == "=":
        return _same(value, operand)
    if op == "!=":
        return not _same(value, operand)
    if op == "in":
        return any(_same(value, o) for o in operand)
    if op == "not_in":
        return not any(_same(value, o) for o in operand)
    if op == "like":
        return like(value, operand)
    if op == "ilike":
        return ilike(value, operand)
    if _nan(value):
        return False
    return bool(
        {
            "<": value < operand,
            "<=": value <= operand,
            ">": value > operand,
            ">=": value >= operand,
        }[op]
    )


def eq(v: Any, x: Any) -> bool:
    return check(v, "=", x)


def ne(v: Any, x: Any) -> bool:
    return check(v, "!=", x)


def lt(v: Any, x: Any) -> bool:
    return check(v, "<", x)


def le(v: Any, x: Any) -> bool:
    return check(v, "<=", x)


def gt(v: Any, x: Any) -> bool:
    return check(v, ">", x)


def ge(v: Any, x: Any) -> bool:
    return check(v, ">=", x)


def isin(v: Any, *xs: Any) -> bool:
    return check(v, "in", xs)


def notin(v: Any, *xs: Any) -> bool:
    return check(v, "not_in", xs)


def null(v: Any) -> bool:
    return v is MISSING


Term = tuple[str, str, bool]  # kind, key, descending
DEFAULT_ORDER: list[Term] = [("attribute", "start_time", True)]


def sort_value(run: Run, kind: str, key: str) -> Any:
    v = run.value(kind, key)
    return None if v is MISSING or _nan(v) else v


def model_order(runs: list[Run], terms: list[Term]) -> list[Run]:
    terms = terms or DEFAULT_ORDER
    last_desc = terms[-1][2]

    def cmp(a: Run, b: Run) -> int:
        for kind, key, desc in terms:
            va, vb = sort_value(a, kind, key), sort_value(b, kind, key)
            if va is None and vb is None:
                continue
            if va is None or vb is None:
                return 1 if va is None else -1  # missing last, either direction
            if va != vb:
                return (-1 if va < vb else 1) * (-1 if desc else 1)
        return (a.index - b.index) * (-1 if last_desc else 1)

    return sorted(runs, key=functools.cmp_to_key(cmp))


def expected(
    runs: list[Run], pred: Callable[[Run], bool], terms: list[Term] | None = None
) -> list[str]:
    return [r.run_id for r in model_order([r for r in runs if pred(r)], terms or [])]


# --- talking to the API
def search(api: httpx.Client, **body: Any) -> dict[str, Any]:
    resp = api.post(SEARCH, json=body)
    assert resp.status_code == 200, f"{body}: {resp.status_code} {resp.text}"
    data: dict[str, Any] = resp.json()
    return data


def all_ids(api: httpx.Client, **body: Any) -> list[str]:
    """Every match in one page."""
    data = search(api, page_size=10_000, **body)
    assert data["next_page_token"] is None
    return [r["run_id"] for r in data["runs"]]


def paged_ids(api: httpx.Client, page_size: int, **body: Any) -> list[str]:
    out: list[str] = []
    token = None
    for _ in range(10_000):
        data = search(api, page_size=page_size, page_token=token, **body)
        out += [r["run_id"] for r in data["runs"]]
        token = data["next_page_token"]
        if token is None:
            return out
        assert len(data["runs"]) == page_size, "only the last page may be short"
    raise AssertionError("paging did not end")


def describe(runs: list[Run], ids: list[str]) -> str:
    by_id = {r.run_id: r for r in runs}
    shown = []
    for i in ids[:6]:
        r = by_id.get(i)
        shown.append(
            f"#{r.index} {r.name!r} {r.status} params={r.params} tags={r.tags} metrics={r.metrics}"
            if r
            else i
        )
    return "; ".join(shown) + (" ..." if len(ids) > 6 else "")


def mismatch(runs: list[Run], what: str, got: list[str], want: list[str]) -> str | None:
    if got == want:
        return None
    extra = [i for i in got if i not in set(want)]
    missing = [i for i in want if i not in set(got)]
    dupes = len(got) - len(set(got))
    return (
        f"{what}: got {len(got)} runs, expected {len(want)}"
        + (f"; {dupes} duplicates" if dupes else "")
        + (f"; unexpected: {describe(runs, extra)}" if extra else "")
        + (f"; missing: {describe(runs, missing)}" if missing else "")
        + ("; same runs, different order" if not extra and not missing and not dupes else "")
    )


@pytest.fixture
def population(api: httpx.Client) -> list[Run]:
    return populate(api)


# --- the model is right about what was stored
def check_stored_runs(api: httpx.Client, population: list[Run]) -> None:
    """The model is right about what the server stored."""
    data = search(api, page_size=10_000)
    assert data["next_page_token"] is None
    got = {r["run_id"]: r for r in data["runs"]}
    assert set(got) == {r.run_id for r in population}
    for run in population:
        g = got[run.run_id]
        assert (g["project"], g["name"], g["status"]) == (run.project, run.name, run.status)
        assert (g["start_time"], g["end_time"]) == (run.start_time, run.end_time)
        assert g["params"] == run.params
        assert g["tags"] == run.tags
        assert set(g["metrics"]) == set(run.metrics)
        for key, v in run.metrics.items():
            assert g["metrics"][key]["value"] == _json_number(v), (run.index, key)
    # The population exercises what it is meant to.
    aucs = [r.metrics["auc"] for r in population if "auc" in r.metrics]
    assert any(math.isnan(v) for v in aucs)
    assert len(aucs) - len(set(aucs)) > 20, "ties in metric values"
    assert any("auc" not in r.metrics for r in population)
    accs = [r.metrics.get("acc") for r in population]
    assert INF in accs
    assert -INF in accs
    assert {r.status for r in population} == {"running", "finished", "failed", "killed"}
    assert {r.project for r in population} == {"vision", "nlp", "tabular"}
    assert any("removed" in r.tags for r in population)
    assert any("removed" not in r.tags and "team" in r.tags for r in population)


# --- filters: hand-written cases, each with its meaning spelled out in Python
def filter_cases(runs: list[Run]) -> list[tuple[str, Callable[[Run], bool]]]:
    some = runs[17]
    other = runs[42]
    start = sorted({r.start_time for r in runs})[len({r.start_time for r in runs}) // 2]
    ends = sorted(r.end_time for r in runs if r.end_time is not None)
    end = ends[len(ends) // 2]
    return [
        # empty filters
        ("", lambda r: True),
        ("   ", lambda r: True),
        # metrics: every operator
        ("metrics.auc = 0.85", lambda r: eq(r.m("auc"), 0.85)),
        ("metrics.auc == 0.85", lambda r: eq(r.m("auc"), 0.85)),
        ("metrics.auc != 0.85", lambda r: ne(r.m("auc"), 0.85)),
        ("metrics.auc <> 0.85", lambda r: ne(r.m("auc"), 0.85)),
        ("metrics.auc < 0.7", lambda r: lt(r.m("auc"), 0.7)),
        ("metrics.auc <= 0.7", lambda r: le(r.m("auc"), 0.7)),
        ("metrics.auc > 0.9", lambda r: gt(r.m("auc"), 0.9)),
        ("metrics.auc >= 0.9", lambda r: ge(r.m("auc"), 0.9)),
        ("metrics.auc>=0.9", lambda r: ge(r.m("auc"), 0.9)),
        ("metrics.auc > .9", lambda r: gt(r.m("auc"), 0.9)),
        ("metrics.auc > 9e-1", lambda r: gt(r.m("auc"), 0.9)),
        ("metrics.auc in (0.8, 0.85, 0.9)", lambda r: isin(r.m("auc"), 0.8, 0.85, 0.9)),
        ("metrics.auc not in (0.8, 0.85)", lambda r: notin(r.m("auc"), 0.8, 0.85)),
        ("metrics.auc is null", lambda r: null(r.m("auc"))),
        ("metrics.auc is not null", lambda r: not null(r.m("auc"))),
        ("metric.auc > 0.9", lambda r: gt(r.m("auc"), 0.9)),
        ("METRICS.auc > 0.9", lambda r: gt(r.m("auc"), 0.9)),
        # NaN: equal only to NaN, unordered
        ("metrics.auc = NaN", lambda r: _nan(r.m("auc"))),
        ("metrics.auc != nan", lambda r: ne(r.m("auc"), NAN)),
        ("metrics.auc in (nan, 0.9)", lambda r: isin(r.m("auc"), NAN, 0.9)),
        ("metrics.auc not in (NaN, 0.9)", lambda r: notin(r.m("auc"), NAN, 0.9)),
        ("metrics.auc >= 0", lambda r: ge(r.m("auc"), 0)),
        ("not metrics.auc >= 0", lambda r: not ge(r.m("auc"), 0)),
        # infinities, signed zero, huge values
        ("metrics.acc = inf", lambda r: eq(r.m("acc"), INF)),
        ("metrics.acc = Infinity", lambda r: eq(r.m("acc"), INF)),
        ("metrics.acc = -inf", lambda r: eq(r.m("acc"), -INF)),
        ("metrics.acc <= -Infinity", lambda r: le(r.m("acc"), -INF)),
        ("metrics.acc > -inf", lambda r: gt(r.m("acc"), -INF)),
        ("metrics.acc < inf", lambda r: lt(r.m("acc"), INF)),
        ("metrics.acc != inf", lambda r: ne(r.m("acc"), INF)),
        ("metrics.acc > 1e308", lambda r: gt(r.m("acc"), 1e308)),
        ("metrics.acc = 0", lambda r: eq(r.m("acc"), 0)),
        ("metrics.acc = -0.0", lambda r: eq(r.m("acc"), 0)),
        ("metrics.loss = 2", lambda r: eq(r.m("loss"), 2)),
        ("metrics.loss >= 2.0", lambda r: ge(r.m("loss"), 2)),
        ("metrics.loss < 1e1", lambda r: lt(r.m("loss"), 10)),
        ("metrics.loss > 99999999999999999999", lambda r: gt(r.m("loss"), 1e20)),
        ("metrics.loss in (1e300, 0)", lambda r: isin(r.m("loss"), 1e300, 0)),
        # keys with dots, spaces, digits; quoting styles; case-sensitive keys
        ("metrics.val.loss < 0.3", lambda r: lt(r.m("val.loss"), 0.3)),
        ("metrics.`val.loss` < 0.3", lambda r: lt(r.m("val.loss"), 0.3)),
        ("metrics.'val.loss' < 0", lambda r: lt(r.m("val.loss"), 0)),
        ('metrics."val.loss" >= 1', lambda r: ge(r.m("val.loss"), 1)),
        ("metrics.`val loss` > 0.5", lambda r: gt(r.m("val loss"), 0.5)),
        ("metrics.'val loss' = 0.5", lambda r: eq(r.m("val loss"), 0.5)),
        ("metrics.`val loss` is null", lambda r: null(r.m("val loss"))),
        ("metrics.acc.top.5 > 0.5", lambda r: gt(r.m("acc.top.5"), 0.5)),
        ("metrics.AUC > 0", lambda r: gt(r.m("AUC"), 0)),
        ("metrics.AUC is not null", lambda r: not null(r.m("AUC"))),
        ("metrics.never_logged > 0", lambda r: False),
        ("metrics.never_logged is null", lambda r: True),
        ("not metrics.never_logged = 1", lambda r: True),
        # params: every operator, string (not numeric) comparisons
        ("params.model = 'gbm'", lambda r: eq(r.p("model"), "gbm")),
        ('params.model = "gbm"', lambda r: eq(r.p("model"), "gbm")),
        ("params.model != 'gbm'", lambda r: ne(r.p("model"), "gbm")),
        ("params.model < 'h'", lambda r: lt(r.p("model"), "h")),
        ("params.model <= 'gbm'", lambda r: le(r.p("model"), "gbm")),
        ("params.model > 'G'", lambda r: gt(r.p("model"), "G")),
        ("params.model >= 'g'", lambda r: ge(r.p("model"), "g")),
        ("params.lr > '0.01'", lambda r: gt(r.p("lr"), "0.01")),
        ("params.depth < '3'", lambda r: lt(r.p("depth"), "3")),
        ("params.model in ('gbm', 'xgb')", lambda r: isin(r.p("model"), "gbm", "xgb")),
        ("params.model not in ('gbm', 'GBM')", lambda r: notin(r.p("model"), "gbm", "GBM")),
        ("params.model is null", lambda r: null(r.p("model"))),
        ("params.model is not null", lambda r: not null(r.p("model"))),
        ("param.model = 'gbm'", lambda r: eq(r.p("model"), "gbm")),
        ("parameters.model='gbm'", lambda r: eq(r.p("model"), "gbm")),
        ("params.Model = 'gbm'", lambda r: False),
        ("params.empty = ''", lambda r: eq(r.p("empty"), "")),
        ("params.empty is not null", lambda r: not null(r.p("empty"))),
        ("params.empty < 'a'", lambda r: lt(r.p("empty"), "a")),
        ("params.`batch size` = '32'", lambda r: eq(r.p("batch size"), "32")),
        ("params.'batch size' in ('32', '64')", lambda r: isin(r.p("batch size"), "32", "64")),
        ("params.val.split = '0.2'", lambda r: eq(r.p("val.split"), "0.2")),
        ("params.layers.0.units = '64'", lambda r: eq(r.p("layers.0.units"), "64")),
        ("params.optimizer > 'a'", lambda r: gt(r.p("optimizer"), "a")),
        ("params.optimizer >= 'ä'", lambda r: ge(r.p("optimizer"), "ä")),
        # like / ilike: wildcards, escapes, case
        ("params.model like 'gb%'", lambda r: like(r.p("model"), "gb%")),
        ("params.model like 'g_m'", lambda r: like(r.p("model"), "g_m")),
        (r"params.model like 'g\_m'", lambda r: eq(r.p("model"), "g_m")),
        (r"params.model like 'g\%m'", lambda r: eq(r.p("model"), "g%m")),
        (r"params.model like '%\\\\%'", lambda r: like(r.p("model"), "%\\\\%")),
        (
            r"params.model like '%\\%'",
            lambda r: r.p("model") is not MISSING and r.p("model").endswith("%"),
        ),
        ("params.model like '%'", lambda r: not null(r.p("model"))),
        ("params.model like 'GBM'", lambda r: eq(r.p("model"), "GBM")),
        ("params.model ilike 'GB%'", lambda r: ilike(r.p("model"), "gb%")),
        ("params.model ilike 'g_M'", lambda r: ilike(r.p("model"), "g_m")),
        ("params.optimizer ilike 'ADAM'", lambda r: ilike(r.p("optimizer"), "adam")),
        ("params.optimizer ilike 'ädam'", lambda r: eq(r.p("optimizer"), "ädam")),
        ("params.optimizer like '_dam'", lambda r: like(r.p("optimizer"), "_dam")),
        ("params.empty like ''", lambda r: eq(r.p("empty"), "")),
        # tags
        ("tags.team = 'growth'", lambda r: eq(r.t("team"), "growth")),
        ("tags.team != 'growth'", lambda r: ne(r.t("team"), "growth")),
        ("tags.team like 'ml-%'", lambda r: like(r.t("team"), "ml-%")),
        ("tags.team like 'ml_%'", lambda r: like(r.t("team"), "ml_%")),
        (r"tags.team like 'ml\_%'", lambda r: eq(r.t("team"), "ml_ops")),
        ("tags.team ilike 'ml-%'", lambda r: ilike(r.t("team"), "ml-%")),
        ("tags.team ilike 'GROWTH'", lambda r: ilike(r.t("team"), "growth")),
        ("tags.team < 'a'", lambda r: lt(r.t("team"), "a")),
        ("tags.mlflow.user = 'alice'", lambda r: eq(r.t("mlflow.user"), "alice")),
        (
            "tags.`mlflow.user` in ('alice', 'Carol')",
            lambda r: isin(r.t("mlflow.user"), "alice", "Carol"),
        ),
        ("tags.note = 'it''s fine'", lambda r: eq(r.t("note"), "it's fine")),
        (r"tags.note = 'it\'s fine'", lambda r: eq(r.t("note"), "it's fine")),
        ('tags.note = "it\'s fine"', lambda r: eq(r.t("note"), "it's fine")),
        ("tags.note = 'say \"hi\"'", lambda r: eq(r.t("note"), 'say "hi"')),
        (r'tags.note = "say \"hi\""', lambda r: eq(r.t("note"), 'say "hi"')),
        (r"tags.note = 'back\slash'", lambda r: eq(r.t("note"), "back\\slash")),
        (r"tags.note = 'back\\slash'", lambda r: eq(r.t("note"), "back\\slash")),
        (r"tags.note like '50\% %'", lambda r: eq(r.t("note"), "50% done")),
        ("tags.note like '%\\_%'", lambda r: eq(r.t("note"), "a_b")),
        ("tags.note > 'z'", lambda r: gt(r.t("note"), "z")),
        ("tags.note < 'Z'", lambda r: lt(r.t("note"), "Z")),
        ("tags.note = ''", lambda r: eq(r.t("note"), "")),
        ("tags.note ilike 'ÜNÏCODE'", lambda r: False),
        ("tags.note ilike 'üNïCODE'", lambda r: eq(r.t("note"), "ünïcode")),
        ("tags.priority < '2'", lambda r: lt(r.t("priority"), "2")),
        ("tags.removed is null", lambda r: null(r.t("removed"))),
        ("tags.removed = 'soon'", lambda r: eq(r.t("removed"), "soon")),
        ("tag.team = 'ml-core'", lambda r: eq(r.t("team"), "ml-core")),
        # attributes, bare and prefixed
        ("status = 'finished'", lambda r: r.status == "finished"),
        ("attributes.status != 'running'", lambda r: r.status != "running"),
        ("attribute.status in ('failed', 'killed')", lambda r: r.status in ("failed", "killed")),
        ("run.status not in ('running')", lambda r: r.status != "running"),
        ("status like 'f%'", lambda r: r.status.startswith("f")),
        ("status ilike 'FIN%'", lambda r: r.status == "finished"),
        ("status like 'FIN%'", lambda r: False),
        ("status > 'g'", lambda r: r.status > "g"),
        ("status is null", lambda r: False),
        ("status is not null", lambda r: True),
        ("name = 'baseline'", lambda r: r.name == "baseline"),
        ("run_name like 'gbm%'", lambda r: like(r.name, "gbm%")),
        ("name like 'gbm_tuned'", lambda r: r.name in ("gbm-tuned", "gbm_tuned", "gbmXtuned")),
        ("name ilike 'résumé'", lambda r: r.name in ("résumé", "Résumé")),
        ("name ilike 'baseline'", lambda r: r.name.lower() == "baseline"),
        ("name < 'a'", lambda r: r.name < "a"),
        ("name >= 'z'", lambda r: r.name >= "z"),
        ("name = '50% off'", lambda r: r.name == "50% off"),
        (r"name like '50\%%'", lambda r: r.name == "50% off"),
        ("name like '50%'", lambda r: r.name.startswith("50")),
        ("name = 'it''s'", lambda r: r.name == "it's"),
        (r"name = 'a\\b'", lambda r: r.name == "a\\b"),
        ("name = 'emoji 🚀'", lambda r: r.name == "emoji 🚀"),
        ("name like '%🚀'", lambda r: r.name == "emoji 🚀"),
        ("name like '_____ _'", lambda r: r.name == "emoji 🚀"),
        ("name > 'ω'", lambda r: r.name > "ω"),
        (f"run_id = '{some.run_id}'", lambda r: r is some),
        (f"id = '{some.run_id}'", lambda r: r is some),
        (
            f"run_id in ('{some.run_id}', '{other.run_id}', 'nope')",
            lambda r: r in (some, other),
        ),
        (f"attributes.run_id != '{some.run_id}'", lambda r: r is not some),
        (f"run_id like '{some.run_id[:2]}%'", lambda r: r.run_id.startswith(some.run_id[:2])),
        (f"run_id < '{some.run_id}'", lambda r: r.run_id < some.run_id),
        (f"start_time = {start}", lambda r: r.start_time == start),
        (f"start_time >= {start}", lambda r: r.start_time >= start),
        (f"created < {start}", lambda r: r.start_time < start),
        (f"start_time != {start}", lambda r: r.start_time != start),
        (
            f"start_time in ({start}, {start + 1000})",
            lambda r: r.start_time in (start, start + 1000),
        ),
        ("end_time is null", lambda r: r.end_time is None),
        ("end_time is not null", lambda r: r.end_time is not None),
        (f"end_time > {end}", lambda r: gt(r.a("end_time"), end)),
        (f"not end_time > {end}", lambda r: not gt(r.a("end_time"), end)),
        (f"end_time != {end}", lambda r: ne(r.a("end_time"), end)),
        (f"not end_time = {end}", lambda r: not eq(r.a("end_time"), end)),
        (f"end_time not in ({end})", lambda r: notin(r.a("end_time"), end)),
        ("duration = 0", lambda r: eq(r.a("duration"), 0)),
        ("duration > 60000", lambda r: gt(r.a("duration"), 60000)),
        ("duration <= 1000", lambda r: le(r.a("duration"), 1000)),
        ("not duration > 1000", lambda r: not gt(r.a("duration"), 1000)),
        ("duration is null", lambda r: r.end_time is None),
        ("duration in (0, 60000)", lambda r: isin(r.a("duration"), 0, 60000)),
        ("created_by = 'local'", lambda r: True),
        ("user_id != 'local'", lambda r: False),
        ("user like 'loc%'", lambda r: True),
        ("attributes.created_by is not null", lambda r: True),
        ("start_time > 99999999999999999999", lambda r: False),
        # keyword case
        (
            "STATUS = 'finished' AND Metrics.auc > 0.8 oR NOT Params.model IS NULL",
            lambda r: (r.status == "finished" and gt(r.m("auc"), 0.8)) or not null(r.p("model")),
        ),
        (
            "status IN ('failed') And metrics.auc Is Not Null",
            lambda r: r.status == "failed" and not null(r.m("auc")),
        ),
        ("params.model NOT IN ('gbm')", lambda r: notin(r.p("model"), "gbm")),
        ("params.model LIKE 'g%'", lambda r: like(r.p("model"), "g%")),
        ("params.model ILike 'G%'", lambda r: ilike(r.p("model"), "g%")),
        ("Start_Time > 0 and NAME = 'zebra'", lambda r: r.name == "zebra"),
        # and binds tighter than or; parentheses; not
        (
            "metrics.auc > 0.9 or metrics.auc < 0.6 and params.model = 'gbm'",
            lambda r: gt(r.m("auc"), 0.9) or (lt(r.m("auc"), 0.6) and eq(r.p("model"), "gbm")),
        ),
        (
            "metrics.auc < 0.6 and params.model = 'gbm' or metrics.auc > 0.9",
            lambda r: (lt(r.m("auc"), 0.6) and eq(r.p("model"), "gbm")) or gt(r.m("auc"), 0.9),
        ),
        (
            "(metrics.auc > 0.9 or metrics.auc < 0.6) and params.model = 'gbm'",
            lambda r: (gt(r.m("auc"), 0.9) or lt(r.m("auc"), 0.6)) and eq(r.p("model"), "gbm"),
        ),
        (
            "status = 'failed' or status = 'killed' and tags.team = 'growth' or duration = 0",
            lambda r: (
                r.status == "failed"
                or (r.status == "killed" and eq(r.t("team"), "growth"))
                or eq(r.a("duration"), 0)
            ),
        ),
        (
            "(status = 'failed' or status = 'killed') and (tags.team = 'growth' or duration = 0)",
            lambda r: (
                r.status in ("failed", "killed")
                and (eq(r.t("team"), "growth") or eq(r.a("duration"), 0))
            ),
        ),
        ("not metrics.auc > 0.8", lambda r: not gt(r.m("auc"), 0.8)),
        ("not params.model = 'gbm'", lambda r: not eq(r.p("model"), "gbm")),
        ("not tags.team like 'ml%'", lambda r: not like(r.t("team"), "ml%")),
        (
            "not (params.model = 'gbm' or params.model = 'xgb')",
            lambda r: not isin(r.p("model"), "gbm", "xgb"),
        ),
        ("not not status = 'running'", lambda r: r.status == "running"),
        (
            "not status = 'running' and metrics.auc > 0.8",
            lambda r: r.status != "running" and gt(r.m("auc"), 0.8),
        ),
        (
            "not (status = 'running' and metrics.auc > 0.8)",
            lambda r: not (r.status == "running" and gt(r.m("auc"), 0.8)),
        ),
        (
            "status = 'finished' and (tags.team = 'growth' or "
            "(params.lr in ('0.1') and not metrics.acc is null))",
            lambda r: (
                r.status == "finished"
                and (eq(r.t("team"), "growth") or (eq(r.p("lr"), "0.1") and not null(r.m("acc"))))
            ),
        ),
        ("((((status = 'failed'))))", lambda r: r.status == "failed"),
        (
            "params.model = 'gbm' and not (metrics.auc <= 0.7 or metrics.auc is null)",
            lambda r: eq(r.p("model"), "gbm") and not (le(r.m("auc"), 0.7) or null(r.m("auc"))),
        ),
        (
            "(status='failed')or(status='killed')and(params.model='gbm')",
            lambda r: r.status == "failed" or (r.status == "killed" and eq(r.p("model"), "gbm")),
        ),
        (
            "params.model='gbm'and status='finished'",
            lambda r: eq(r.p("model"), "gbm") and r.status == "finished",
        ),
        (
            "status = 'failed'\n\tor\n  status = 'killed'",
            lambda r: r.status in ("failed", "killed"),
        ),
        (
            "metrics.auc > 0.6 and metrics.auc < 0.8 and params.model != 'lr' "
            "and tags.team is not null and status != 'running'",
            lambda r: (
                gt(r.m("auc"), 0.6)
                and lt(r.m("auc"), 0.8)
                and ne(r.p("model"), "lr")
                and not null(r.t("team"))
                and r.status != "running"
            ),
        ),
        # a long in-list
        (
            "run_id in (" + ", ".join(f"'{r.run_id}'" for r in runs[::2]) + ")",
            lambda r: r.index % 2 == 0,
        ),
        (
            "run_id not in (" + ", ".join(f"'{r.run_id}'" for r in runs[::3]) + ")",
            lambda r: r.index % 3 != 0,
        ),
    ]


def filter_problems(api: httpx.Client, population: list[Run]) -> list[str]:
    problems = []
    cases = filter_cases(population)
    for text_, pred in cases:
        want = expected(population, pred)
        resp = api.post(SEARCH, json={"filter": text_, "page_size": 10_000})
        if resp.status_code != 200:
            problems.append(f"{text_!r}: {resp.status_code} {resp.text}")
            continue
        got = [r["run_id"] for r in resp.json()["runs"]]
        if (problem := mismatch(population, repr(text_), got, want)) is not None:
            problems.append(problem)
    # The cases discriminate: most match some runs but not all of them.
    sizes = [len(expected(population, pred)) for _, pred in cases]
    assert sum(0 < n < len(population) for n in sizes) > len(cases) * 0.7
    return problems


def project_problems(api: httpx.Client, population: list[Run]) -> list[str]:
    problems = []
    cases = [
        ("metrics.auc > 0.8", lambda r: gt(r.m("auc"), 0.8)),
        ("params.model like 'g%' or status = 'failed'", lambda r: True),
        ("", lambda r: True),
    ]
    cases[1] = (cases[1][0], lambda r: like(r.p("model"), "g%") or r.status == "failed")
    scopes: list[tuple[dict[str, Any], set[str]]] = [
        ({"project": "vision"}, {"vision"}),
        ({"projects": ["nlp"]}, {"nlp"}),
        ({"projects": ["vision", "tabular"]}, {"vision", "tabular"}),
        ({"project": "nlp", "projects": ["tabular"]}, {"nlp", "tabular"}),
        ({"projects": ["nlp", "nlp"]}, {"nlp"}),
        ({}, {"vision", "nlp", "tabular"}),
        ({"projects": []}, {"vision", "nlp", "tabular"}),
    ]
    for scope, names in scopes:
        for text_, pred in cases:
            want = expected(population, lambda r, p=pred, n=names: r.project in n and p(r))  # type: ignore[misc]
            got = all_ids(api, filter=text_, **scope)
            if (p := mismatch(population, f"{scope} {text_!r}", got, want)) is not None:
                problems.append(p)
    return problems


def test_unknown_project_is_404(api: httpx.Client) -> None:
    api.post("/api/v1/runs", json={"project": "known"})
    for body in ({"project": "nope"}, {"projects": ["known", "nope"]}):
        resp = api.post(SEARCH, json=body)
        assert resp.status_code == 404, resp.text
        err = resp.json()["error"]
        assert err["code"] == "NOT_FOUND"
        assert "nope" in err["message"]


def test_project_names_that_look_like_ids(api: httpx.Client) -> None:
    """A project called "1" is found by its name, not mistaken for project id 1."""
    first = api.post("/api/v1/runs", json={"project": "first"}).json()["run_id"]
    one = api.post("/api/v1/runs", json={"project": "1"}).json()["run_id"]
    assert all_ids(api, project="first") == [first]
    assert all_ids(api, project="1") == [one]


# --- random filters: generated, rendered with varied syntax, evaluated by the model
@dataclass(frozen=True)
class Cmp:
    kind: str
    key: str
    op: str
    value: Any


@dataclass(frozen=True)
class Bool:
    op: str
    items: tuple[Any, ...]


@dataclass(frozen=True)
class Neg:
    item: Any


def evaluate(node: Any, run: Run) -> bool:
    if isinstance(node, Bool):
        results = (evaluate(n, run) for n in node.items)
        return all(results) if node.op == "and" else any(results)
    if isinstance(node, Neg):
        return not evaluate(node.item, run)
    return check(run.value(node.kind, node.key), node.op, node.value)


STRING_ATTRS = ["status", "name", "run_id", "created_by"]
NUMBER_ATTRS = ["start_time", "end_time", "duration"]
ATTR_ALIASES = {
    "status": ["status"],
    "name": ["name", "run_name"],
    "run_id": ["run_id", "id"],
    "created_by": ["created_by", "user_id", "user"],
    "start_time": ["start_time", "created"],
    "end_time": ["end_time"],
    "duration": ["duration"],
}
PREFIX_ALIASES = {
    "metric": ["metrics", "metric", "METRICS"],
    "param": ["params", "param", "parameters", "Params"],
    "tag": ["tags", "tag", "TAGS"],
    "attribute": ["attributes", "attribute", "attr", "run"],
}


class Generator:
    def __init__(self, rng: random.Random, runs: list[Run]) -> None:
        self.rng = rng
        self.values: dict[tuple[str, str], list[Any]] = {}
        for r in runs:
            for kind, data in (("metric", r.metrics), ("param", r.params), ("tag", r.tags)):
                for k, v in data.items():
                    self.values.setdefault((kind, k), []).append(v)
            for key in STRING_ATTRS + NUMBER_ATTRS:
                v = r.value("attribute", key)
                if v is not MISSING:
                    self.values.setdefault(("attribute", key), []).append(v)
        self.fields = [k for k in self.values if k[0] != "attribute"] + [
            ("attribute", a) for a in STRING_ATTRS + NUMBER_ATTRS
        ]
        self.fields += [("metric", "never_logged"), ("param", "never_set")]

    def numeric(self, kind: str, key: str) -> bool:
        return kind == "metric" or key in NUMBER_ATTRS

    def a_value(self, kind: str, key: str, *, ordered: bool = False) -> Any:
        rng = self.rng
        pool = self.values.get((kind, key), [])
        if self.numeric(kind, key):
            pool = [v for v in pool if not (ordered and _nan(v))]
            if not pool or rng.random() < 0.2:
                v: Any = rng.choice([0, 0.5, -1, 1e9, BASE + 30_000, INF, -INF])
                return rng.choice([v, NAN]) if not ordered and kind == "metric" else v
            v = rng.choice(pool)
            return v + rng.choice([0, 0, 0.01, -1000]) if rng.random() < 0.3 and v == v else v
        if not pool or rng.random() < 0.15:
            return rng.choice(["", "zz", "GBM", "a%b", "it's", 'q"q', "x\\y"])
        return rng.choice(pool)

    def pattern(self, kind: str, key: str) -> str:
        rng = self.rng
        base = self.a_value(kind, key)
        out = []
        for c in base:
            roll = rng.random()
            if roll < 0.15:
                out.append("_")
            elif roll < 0.25:
                out.append("%")
            elif c in "%_\\":
                out.append("\\" + c)
            elif rng.random() < 0.2:
                out.append(c.swapcase())
            else:
                out.append(c)
        if rng.random() < 0.3:
            out = [*out[: rng.randrange(len(out) + 1)], "%"]
        return "".join(out)

    def compare(self) -> Cmp:
        rng = self.rng
        kind, key = rng.choice(self.fields)
        numeric = self.numeric(kind, key)
        ops = ["=", "!=", "<", "<=", ">", ">=", "in", "not_in", "is_null", "is_not_null"]
        if not numeric:
            ops += ["like", "ilike", "like"]
        op = rng.choice(ops)
        value: Any
        if op in ("is_null", "is_not_null"):
            value = None
        elif op in ("in", "not_in"):
            value = tuple(self.a_value(kind, key) for _ in range(rng.randint(1, 4)))
        elif op in ("like", "ilike"):
            value = self.pattern(kind, key)
        else:
            value = self.a_value(kind, key, ordered=op in ("<", "<=", ">", ">="))
        return Cmp(kind, key, op, value)

    def node(self, depth: int = 0) -> Any:
        rng = self.rng
        roll = rng.random()
        if depth >= 3 or roll < 0.4:
            return self.compare()
        if roll < 0.55:
            return Neg(self.node(depth + 1))
        return Bool(
            rng.choice(["and", "or"]),
            tuple(self.node(depth + 1) for _ in range(rng.randint(2, 3))),
        )

    # rendering
    def kw(self, word: str) -> str:
        return self.rng.choice([word, word.upper(), word.capitalize()])

    def string(self, s: str) -> str:
        if self.rng.random() < 0.5:
            body = s.replace("\\", "\\\\").replace("'", self.rng.choice(["''", "\\'"]))
            return f"'{body}'"
        return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'

    def number(self, v: Any) -> str:
        if _nan(v):
            return self.rng.choice(["nan", "NaN"])
        if v in (INF, -INF):
            return ("-" if v < 0 else "") + self.rng.choice(["inf", "Infinity", "INF"])
        return repr(v)

    def field(self, kind: str, key: str) -> str:
        rng = self.rng
        if kind == "attribute":
            name = rng.choice(ATTR_ALIASES[key])
            name = name.upper() if rng.random() < 0.2 else name
            return (
                f"{rng.choice(PREFIX_ALIASES['attribute'])}.{name}" if rng.random() < 0.3 else name
            )
        prefix = rng.choice(PREFIX_ALIASES[kind])
        if " " in key or rng.random() < 0.3:
            return f"{prefix}.`{key}`"
        return f"{prefix}.{key}"

    def render(self, node: Any, parent: str = "") -> str:
        rng = self.rng
        if isinstance(node, Cmp):
            f = self.field(node.kind, node.key)
            fmt = self.string if not self.numeric(node.kind, node.key) else self.number
            if node.op == "is_null":
                out = f"{f} {self.kw('is')} {self.kw('null')}"
            elif node.op == "is_not_null":
                out = f"{f} {self.kw('is')} {self.kw('not')} {self.kw('null')}"
            elif node.op in ("in", "not_in"):
                neg = self.kw("not") + " " if node.op == "not_in" else ""
                out = f"{f} {neg}{self.kw('in')} ({', '.join(fmt(v) for v in node.value)})"
            elif node.op in ("like", "ilike"):
                out = f"{f} {self.kw(node.op)} {self.string(node.value)}"
            else:
                op = {"=": rng.choice(["=", "=="]), "!=": rng.choice(["!=", "<>"])}.get(
                    node.op, node.op
                )
                space = rng.choice(["", " ", "  "])
                out = f"{f}{space}{op}{space}{fmt(node.value)}"
            return f"({out})" if rng.random() < 0.1 else out
        if isinstance(node, Neg):
            inner = self.render(node.item, "not")
            if isinstance(node.item, Bool) and not inner.startswith("("):
                inner = f"({inner})"
            return f"{self.kw('not')} {inner}"
        joined = f" {self.kw(node.op)} ".join(self.render(n, node.op) for n in node.items)
        needs = parent == "not" or (parent == "and" and node.op == "or")
        return f"({joined})" if needs or rng.random() < 0.2 else joined


def random_filter_problems(api: httpx.Client, population: list[Run]) -> list[str]:
    gen = Generator(random.Random(SEED + 1), population)
    problems = []
    nonempty = 0
    for _ in range(120):
        node = gen.node()
        text_ = gen.render(node)
        want = expected(population, lambda r, n=node: evaluate(n, r))  # type: ignore[misc]
        nonempty += bool(want)
        resp = api.post(SEARCH, json={"filter": text_, "page_size": 10_000})
        if resp.status_code != 200:
            problems.append(f"{text_!r}: {resp.status_code} {resp.text}")
            continue
        got = [r["run_id"] for r in resp.json()["runs"]]
        if (problem := mismatch(population, f"{text_!r} ({node})", got, want)) is not None:
            problems.append(problem)
    assert nonempty > 50
    return problems


def test_filters_match_the_model(api: httpx.Client, population: list[Run]) -> None:
    """Every operator on every kind of field, and/or/not and parentheses, quoting, keyword
    case, project scopes, then random filters: all as the model evaluates them."""
    check_stored_runs(api, population)
    problems = (
        filter_problems(api, population)
        + project_problems(api, population)
        + random_filter_problems(api, population)
    )
    assert not problems, f"{len(problems)} searches wrong:\n" + "\n".join(problems[:30])


# --- ordering
ORDER_CASES: list[tuple[list[str], list[Term]]] = [
    ([], DEFAULT_ORDER),
    (["metrics.auc desc"], [("metric", "auc", True)]),
    (["metrics.auc"], [("metric", "auc", False)]),
    (["metrics.auc ASC"], [("metric", "auc", False)]),
    (["METRICS.auc DESC"], [("metric", "auc", True)]),
    (["metrics.auc descending"], [("metric", "auc", True)]),
    (["metrics.acc desc"], [("metric", "acc", True)]),
    (["metrics.acc asc"], [("metric", "acc", False)]),
    (["metrics.`val loss` asc"], [("metric", "val loss", False)]),
    (["metrics.val.loss desc"], [("metric", "val.loss", True)]),
    (["metrics.loss desc"], [("metric", "loss", True)]),
    (["metrics.never_logged desc"], [("metric", "never_logged", True)]),
    (["params.model"], [("param", "model", False)]),
    (["params.model desc"], [("param", "model", True)]),
    (["params.lr desc"], [("param", "lr", True)]),
    (["params.optimizer"], [("param", "optimizer", False)]),
    (["params.`batch size` desc"], [("param", "batch size", True)]),
    (["params.empty"], [("param", "empty", False)]),
    (["tags.team asc"], [("tag", "team", False)]),
    (["tags.note desc"], [("tag", "note", True)]),
    (["tags.mlflow.user"], [("tag", "mlflow.user", False)]),
    (["name"], [("attribute", "name", False)]),
    (["name desc"], [("attribute", "name", True)]),
    (["attributes.run_id"], [("attribute", "run_id", False)]),
    (["run_id desc"], [("attribute", "run_id", True)]),
    (["status", "start_time desc"], [("attribute", "status", False), DEFAULT_ORDER[0]]),
    (["end_time desc"], [("attribute", "end_time", True)]),
    (["end_time"], [("attribute", "end_time", False)]),
    (["duration"], [("attribute", "duration", False)]),
    (["duration desc"], [("attribute", "duration", True)]),
    (["start_time asc"], [("attribute", "start_time", False)]),
    (["created_by"], [("attribute", "created_by", False)]),
    (
        ["params.model asc", "metrics.auc desc"],
        [("param", "model", False), ("metric", "auc", True)],
    ),
    (
        ["status desc", "metrics.loss asc", "name"],
        [("attribute", "status", True), ("metric", "loss", False), ("attribute", "name", False)],
    ),
    (
        ["tags.team", "params.model desc", "metrics.auc"],
        [("tag", "team", False), ("param", "model", True), ("metric", "auc", False)],
    ),
    (
        ["metrics.auc desc", "metrics.auc asc"],
        [("metric", "auc", True), ("metric", "auc", False)],
    ),
    (
        ["metrics.`val loss` desc", "duration asc", "tags.note desc"],
        [("metric", "val loss", True), ("attribute", "duration", False), ("tag", "note", True)],
    ),
]


def ordering_problems(api: httpx.Client, population: list[Run]) -> list[str]:
    problems = []
    filters: list[tuple[str, Callable[[Run], bool]]] = [
        ("", lambda r: True),
        (
            "metrics.auc is not null and status != 'killed'",
            lambda r: "auc" in r.metrics and r.status != "killed",
        ),
    ]
    for i, (order_by, terms) in enumerate(ORDER_CASES):
        for text_, pred in filters[: 1 + i % 2]:
            want = expected(population, pred, terms)
            got = all_ids(api, filter=text_, order_by=order_by)
            if (p := mismatch(population, f"{order_by} / {text_!r}", got, want)) is not None:
                problems.append(p)
    # random multi-key orders
    rng = random.Random(SEED + 2)
    keys: list[tuple[str, str]] = (
        [("metric", k) for k in METRICS]
        + [("param", k) for k in PARAMS]
        + [("tag", k) for k in TAGS]
        + [("attribute", a) for a in STRING_ATTRS + NUMBER_ATTRS]
    )
    for _ in range(20):
        chosen = [(*rng.choice(keys), rng.random() < 0.5) for _ in range(rng.randint(1, 4))]
        order_by = []
        for kind, key, desc in chosen:
            name = f"{kind}s.`{key}`" if kind != "attribute" else key
            order_by.append(
                f"{name} {rng.choice(['desc', 'DESC'])}"
                if desc
                else rng.choice([name, f"{name} asc"])
            )
        want = expected(population, lambda r: True, chosen)
        got = all_ids(api, order_by=order_by)
        if (p := mismatch(population, str(order_by), got, want)) is not None:
            problems.append(p)
    # The orders are not vacuous: NaN, missing values and ties all occur in metrics.auc.
    desc = model_order(population, [("metric", "auc", True)])
    tail = [r for r in desc if sort_value(r, "metric", "auc") is None]
    assert tail
    assert any(_nan(r.m("auc")) for r in tail)
    assert any(null(r.m("auc")) for r in tail)
    assert desc[-len(tail) :] == tail
    return problems


def test_nan_and_missing_sort_last_in_both_directions(api: httpx.Client) -> None:
    """A small, fully spelled-out case next to the model-based ones."""
    made = {}
    for name, value in [
        ("a", 0.5),
        ("nan", NAN),
        ("b", 0.9),
        ("none", None),
        ("c", 0.5),
        ("inf", INF),
        ("ninf", -INF),
    ]:
        run_id = api.post("/api/v1/runs", json={"project": "p", "name": name}).json()["run_id"]
        if value is not None:
            api.post(
                f"/api/v1/runs/{run_id}/batch",
                json={"metrics": [{"key": "m", "value": _json_number(value)}]},
            )
        made[run_id] = name

    def names(order: str) -> list[str]:
        return [made[i] for i in all_ids(api, order_by=[order])]

    # ties (a, c) in creation order for asc, reversed for desc; NaN and missing last, newest first
    assert names("metrics.m asc") == ["ninf", "a", "c", "b", "inf", "nan", "none"]
    assert names("metrics.m desc") == ["inf", "b", "c", "a", "ninf", "none", "nan"]


# --- keyset pagination
PAGING_CASES: list[tuple[dict[str, Any], Callable[[Run], bool], list[Term], tuple[int, ...]]] = [
    ({}, lambda r: True, [], (7, 100)),
    (
        {
            "filter": "metrics.auc is not null or params.model like 'g%'",
            "order_by": ["metrics.auc desc"],
        },
        lambda r: not null(r.m("auc")) or like(r.p("model"), "g%"),
        [("metric", "auc", True)],
        (1, 7, 100),
    ),
    (
        {"filter": "metrics.acc is not null", "order_by": ["metrics.acc asc", "params.model desc"]},
        lambda r: not null(r.m("acc")),
        [("metric", "acc", False), ("param", "model", True)],
        (1, 7),
    ),
    (
        {"project": "vision", "order_by": ["tags.note desc", "name", "duration desc"]},
        lambda r: r.project == "vision",
        [("tag", "note", True), ("attribute", "name", False), ("attribute", "duration", True)],
        (1, 7, 100),
    ),
    (
        {"projects": ["nlp", "tabular"], "order_by": ["status", "end_time", "metrics.loss desc"]},
        lambda r: r.project in ("nlp", "tabular"),
        [
            ("attribute", "status", False),
            ("attribute", "end_time", False),
            ("metric", "loss", True),
        ],
        (7, 100),
    ),
]


def paging_problems(api: httpx.Client, population: list[Run]) -> list[str]:
    problems = []
    for body, pred, terms, sizes in PAGING_CASES:
        want = expected(population, pred, terms)
        big = all_ids(api, **body)
        if (p := mismatch(population, f"{body} one big page", big, want)) is not None:
            problems.append(p)
        for size in sizes:
            got = paged_ids(api, size, **body)
            if (p := mismatch(population, f"{body} pages of {size}", got, want)) is not None:
                problems.append(p)
    # page_size may change from one page to the next: the token fixes only the position
    body, pred, terms, _ = PAGING_CASES[1]
    want = expected(population, pred, terms)
    got: list[str] = []
    token = None
    sizes = iter([3, 1, 50, 2, 1000])
    while True:
        data = search(api, page_size=next(sizes), page_token=token, **body)
        got += [r["run_id"] for r in data["runs"]]
        token = data["next_page_token"]
        if token is None:
            break
    if (p := mismatch(population, "pages of changing sizes", got, want)) is not None:
        problems.append(p)
    return problems


def test_ordering_and_keyset_pages_match_the_model(
    api: httpx.Client, population: list[Run]
) -> None:
    """Ordering on every kind of field (NaN and missing last, ties by creation order), multi-key
    orders, and keyset pages of 1, 7 and 100 runs that add up to exactly the one big page."""
    problems = ordering_problems(api, population) + paging_problems(api, population)
    assert not problems, f"{len(problems)} searches wrong:\n" + "\n".join(problems[:30])


@pytest.mark.parametrize(
    ("order_by", "terms"),
    [
        ([], DEFAULT_ORDER),
        (["metrics.auc desc", "name"], [("metric", "auc", True), ("attribute", "name", False)]),
    ],
)
def test_pages_stay_consistent_while_runs_are_inserted(
    api: httpx.Client, order_by: list[str], terms: list[Term]
) -> None:
    """New runs land before or after the cursor. Every old run comes exactly once, in order;
    a new run comes (once) exactly when it sorts after the cursor at the moment it was made."""
    rng = random.Random(SEED + 3)
    runs: list[Run] = []
    for _ in range(45):
        add_run(api, rng, runs, "vision")
    old = {r.run_id for r in runs}
    body = {"project": "vision", "filter": "status != 'killed'", "order_by": order_by}

    def pred(r: Run) -> bool:
        return r.project == "vision" and r.status != "killed"

    cursor_at_insert: dict[str, str | None] = {}
    got: list[str] = []
    token = None
    while True:
        data = search(api, page_size=7, page_token=token, **body)
        got += [r["run_id"] for r in data["runs"]]
        token = data["next_page_token"]
        if token is None:
            break
        for _ in range(2):
            auc = rng.choice([0.5, 0.7, 0.75, 0.9, 0.99, NAN])
            new = add_run(
                api,
                rng,
                runs,
                rng.choice(["vision", "nlp"]),
                start_time=BASE + rng.randrange(60) * 1000,
                metrics={} if rng.random() < 0.2 else {"auc": auc},
            )
            cursor_at_insert[new.run_id] = got[-1]
    final = expected(runs, pred, terms)
    position = {run_id: i for i, run_id in enumerate(final)}
    want = [
        i
        for i in final
        if i in old or (i in cursor_at_insert and position[i] > position[cursor_at_insert[i]])  # type: ignore[index]
    ]
    assert len(got) == len(set(got)), "a run came twice"
    assert got == want, mismatch(runs, f"{order_by} with inserts", got, want)
    assert any(i not in old for i in got), "some new runs sorted after the cursor"
    assert any(i in position and i not in got for i in cursor_at_insert), "and some before it"


def _token(api: httpx.Client, **body: Any) -> str:
    data = search(api, page_size=2, **body)
    token = data["next_page_token"]
    assert isinstance(token, str)
    return token


def _bad_token(api: httpx.Client, token: str, **body: Any) -> str:
    resp = api.post(SEARCH, json={"page_size": 2, "page_token": token, **body})
    assert resp.status_code == 400, (token, resp.status_code, resp.text)
    err = resp.json()["error"]
    assert err["code"] == "INVALID_INPUT"
    assert "page_token" in err["message"]
    return str(err["message"])


def test_page_tokens_belong_to_one_search(api: httpx.Client) -> None:
    for i in range(6):
        run_id = api.post("/api/v1/runs", json={"project": "p" if i % 2 else "q"}).json()["run_id"]
        api.post(f"/api/v1/runs/{run_id}/batch", json={"metrics": [{"key": "m", "value": i}]})
    body = {"filter": "metrics.m >= 0", "order_by": ["metrics.m desc"]}
    token = _token(api, **body)
    # the same search continues
    assert len(search(api, page_size=100, page_token=token, **body)["runs"]) == 4
    # any other search refuses it
    _bad_token(api, token, filter="metrics.m >= 1", order_by=["metrics.m desc"])
    _bad_token(api, token, filter="metrics.m >= 0")
    _bad_token(api, token, filter="metrics.m >= 0", order_by=["metrics.m asc"])
    _bad_token(api, token, project="p", **body)
    _bad_token(api, token, projects=["p", "q"], **body)


def test_damaged_page_tokens_are_400(api: httpx.Client) -> None:
    for i in range(4):
        run_id = api.post("/api/v1/runs", json={"project": "p"}).json()["run_id"]
        api.post(f"/api/v1/runs/{run_id}/batch", json={"metrics": [{"key": "m", "value": i}]})
    body = {"order_by": ["metrics.m desc", "name"]}
    token = _token(api, **body)
    raw = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))

    def forge(values: Any) -> str:
        data = json.dumps({**raw, "v": values}).encode()
        return base64.urlsafe_b64encode(data).decode().rstrip("=")

    garbage = [
        "garbage!",
        "abc",
        "ü",
        "=====",
        token[:-3],
        token + "xyz",
        base64.urlsafe_b64encode(b"[1, 2]").decode(),
        base64.urlsafe_b64encode(b"not json").decode(),
        base64.urlsafe_b64encode(b'{"s": "x"}').decode(),
        base64.urlsafe_b64encode(b'"a string"').decode(),
        forge(raw["v"][:-1]),  # too few values
        forge([*raw["v"], 1]),  # too many
        forge(["high", *raw["v"][1:]]),  # a string where a number belongs
        forge([raw["v"][0], 5, raw["v"][2]]),  # a number where a string belongs
        forge([raw["v"][0], raw["v"][1], "pk"]),  # the tiebreak must be an integer
        forge([raw["v"][0], raw["v"][1], None]),
        forge([True, raw["v"][1], raw["v"][2]]),
        forge([{"a": 1}, raw["v"][1], raw["v"][2]]),
        forge([[1], raw["v"][1], raw["v"][2]]),
        forge("not a list"),
    ]
    for bad in garbage:
        _bad_token(api, bad, **body)
    # the untouched token still works
    assert search(api, page_token=forge(raw["v"]), **body)["runs"]


# --- errors: 400 with {"error": {"code", "message"}} saying what is wrong and where
def _error(api: httpx.Client, status: int = 400, **body: Any) -> str:
    resp = api.post(SEARCH, json=body)
    assert resp.status_code == status, (body, resp.status_code, resp.text)
    payload = resp.json()
    assert set(payload) == {"error"}, payload
    assert {"code", "message"} <= set(payload["error"]), payload
    assert payload["error"]["code"] == "INVALID_INPUT"
    return str(payload["error"]["message"])


END = object()
BAD_FILTERS: list[tuple[str, list[str], object]] = [
    # filter, fragments the message must contain, where: the offending part, or END
    ("auc > 0.9", ["unknown field 'auc'", "metrics.<key>"], "auc"),
    ("metrics.auc > 0.9 and attributes.colour = 'red'", ["unknown field 'colour'"], "attributes"),
    ("params.model = gbm", ["params.model is a string", "quote", "'gbm'"], "gbm"),
    ("params.lr > 0.1", ["params.lr is a string", "'0.1'"], "0.1"),
    ("tags.team in ('a', b)", ["tags.team is a string", "'b'"], "b)"),
    ("status = running", ["status is a string", "'running'"], "running"),
    ("params.model = `gbm`", ["params.model is a string", "quote"], "`gbm`"),
    ("metrics.auc > 'high'", ["metrics.auc is a number", "'high'"], "'high'"),
    ("metrics.auc in (0.5, '0.6')", ["metrics.auc is a number"], "'0.6'"),
    ("start_time >= 'yesterday'", ["start_time is a number"], "'yesterday'"),
    ("metrics.auc like '0.9%'", ["like", "metrics.auc is a number"], "like"),
    ("duration ilike '1%'", ["ilike", "duration is a number"], "ilike"),
    ("(metrics.auc > 0.9 or status = 'failed'", ["'(' at position 0", "found nothing"], END),
    ("((metrics.auc > 0.9) and status = 'x'", ["expected ')'", "'(' at position 0"], END),
    ("(status = 'x' status = 'y')", ["expected ')'", "found 'status'"], "status = 'y'"),
    ("metrics.auc > 0.9)", ["unbalanced ')'"], ")"),
    ("status = 'x') or (status = 'y'", ["unbalanced ')'"], ")"),
    ("metrics.auc > 0.9 status = 'failed'", ["unexpected 'status'", "and"], "status"),
    ("metrics.auc > 0.9 0.8", ["unexpected '0.8'"], "0.8"),
    ("metrics.auc > 0.9 and", ["expected a field"], END),
    ("not", ["expected a field"], END),
    ("()", ["expected a field", "')'"], ")"),
    ("params.model in ()", ["empty list after 'in'"], ")"),
    ("params.model not in ( )", ["empty list after 'in'"], ")"),
    ("params.model in ('a',)", ["expected a value"], ")"),
    ("params.model in ('a' 'b')", ["expected ',' or ')'"], "'b'"),
    ("params.model in 'a'", ["expected '(' after 'in'"], "'a'"),
    ("metrics.auc >", ["expected a value to compare metrics.auc"], END),
    ("metrics.auc 0.9", ["expected a comparison after metrics.auc", "'0.9'"], "0.9"),
    ("metrics.auc", ["expected a comparison", "found nothing"], END),
    ("metrics. > 1", ["expected a metric name right after 'metrics.'"], "."),
    ("params.model is 'gbm'", ["expected 'null' or 'not null' after 'is'"], "'gbm'"),
    ("params.model is not", ["expected 'null'"], END),
    ("params.model not like 'g%'", ["expected 'in' after 'not'"], "like"),
    ("params.model = 'gbm", ["unterminated", "string"], "'gbm"),
    ("tags.`my key = 'x'", ["unterminated"], "`my"),
    ("metrics.auc > 0.9 && status = 'x'", ["unexpected character '&'"], "&"),
    ("metrics.auc ~ 0.9", ["unexpected character '~'"], "~"),
    ("metrics.auc < nan", ["NaN is not ordered"], "nan"),
    ("start_time = nan", ["start_time is never NaN"], "nan"),
    ("params.x = '1' or (", ["expected a field"], END),
]


def test_bad_filters_say_what_and_where(api: httpx.Client) -> None:
    problems = []
    for filter_, fragments, where in BAD_FILTERS:
        resp = api.post(SEARCH, json={"filter": filter_})
        if resp.status_code != 400:
            problems.append(f"{filter_!r}: {resp.status_code} {resp.text}")
            continue
        err = resp.json()["error"]
        pos = len(filter_) if where is END else filter_.index(str(where))
        message = err["message"]
        wanted = [*fragments, f"position {pos}"]
        if err["code"] != "INVALID_INPUT" or not message.startswith("filter: "):
            problems.append(f"{filter_!r}: {err}")
        elif missing := [f for f in wanted if f not in message]:
            problems.append(f"{filter_!r}: {message!r} lacks {missing}")
    assert not problems, "\n".join(problems)


def test_limits_are_clear_errors_not_crashes(api: httpx.Client) -> None:
    api.post("/api/v1/runs", json={"project": "p"})
    deep = "(" * 100 + "status = 'x'" + ")" * 100
    assert "nest more than" in _error(api, filter=deep)
    assert "nest more than" in _error(api, filter="not " * 200 + "status = 'x'")
    # nesting within the limit is fine
    assert search(api, filter="(" * 30 + "status = 'running'" + ")" * 30)["runs"]
    assert search(api, filter="not " * 31 + "status = 'x'")["runs"]
    many = "or ".join(["id=''"] * 1249)  # just under the 10,000 character limit
    message = _error(api, filter=many)
    assert "more than 500 conditions" in message
    assert "in (" in message
    assert search(api, filter=" or ".join(["id=''"] * 400))["runs"] == []


def test_bad_order_by_says_what_and_where(api: httpx.Client) -> None:
    cases = [
        (["bogus"], ["order_by: unknown field 'bogus'", "position 0"]),
        (["metrics.auc sideways"], ["order_by: unexpected 'sideways'", "asc|desc"]),
        (["metrics.auc desc asc"], ["order_by: unexpected 'asc'"]),
        ([""], ["order_by: empty term"]),
        (["params.`unterminated"], ["order_by: unterminated"]),
        (["metrics.auc", "name", "bogus desc"], ["order_by: unknown field 'bogus'"]),
        ([f"metrics.m{i}" for i in range(11)], ["at most 10 order_by terms"]),
    ]
    for order_by, fragments in cases:
        message = _error(api, order_by=order_by)
        assert all(f in message for f in fragments), (order_by, message)
    assert "filter:" not in _error(api, order_by=["bogus"])


# --- strings behave the same on SQLite and PostgreSQL
STRINGS = [
    *["a", "B", "b", "A", "ä", "Ä", "_", "%", "a_b", "a%b", "aXb", "Z", "z", "ab", "a b", ""],
    *["a*b", "a?b", "[x]", "x]", "ǅ", "😀", "\uffff"],  # GLOB's specials; beyond the BMP
]


def _run_name(s: str) -> str:
    return s or "-"  # run names cannot be empty


def _string_checks(api: httpx.Client, value_of: dict[str, str]) -> None:
    def values(**body: Any) -> list[str]:
        return [value_of[i] for i in all_ids(api, **body)]

    def names(**body: Any) -> list[str]:
        return [_run_name(v) for v in values(**body)]

    named = [_run_name(s) for s in STRINGS]
    assert names(order_by=["name"]) == sorted(named)
    assert names(order_by=["name desc"]) == sorted(named, reverse=True)
    assert values(order_by=["params.s"]) == sorted(STRINGS)
    assert values(order_by=["tags.s desc"]) == sorted(STRINGS, reverse=True)
    assert sorted(values(filter="params.s < 'a'")) == sorted(s for s in STRINGS if s < "a")
    assert sorted(names(filter="name >= 'b'")) == sorted(s for s in named if s >= "b")
    assert sorted(values(filter="tags.s > 'Z'")) == sorted(s for s in STRINGS if s > "Z")
    assert sorted(names(filter="name like 'a%'")) == sorted(
        ["a", "a b", "a%b", "aXb", "a_b", "ab", "a*b", "a?b"]
    )
    assert sorted(names(filter="name like 'A'")) == ["A"]
    assert sorted(values(filter="params.s ilike 'A'")) == ["A", "a"]
    assert sorted(values(filter="params.s ilike 'ä'")) == ["ä"]
    assert sorted(values(filter="params.s like 'a_b'")) == sorted(
        ["a b", "a%b", "aXb", "a_b", "a*b", "a?b"]
    )
    assert sorted(values(filter=r"params.s like 'a\_b'")) == ["a_b"]
    assert sorted(values(filter=r"tags.s like '\%'")) == ["%"]
    assert sorted(values(filter="tags.s ilike 'AXB'")) == ["aXb"]
    assert sorted(values(filter="params.s = 'a'")) == ["a"]
    assert sorted(values(filter="params.s in ('A', 'ä')")) == ["A", "ä"]
    assert sorted(values(filter="params.s = ''")) == [""]
    # characters SQLite's GLOB treats specially are plain characters to like
    assert sorted(values(filter="params.s like 'a*b'")) == ["a*b"]
    assert sorted(values(filter="params.s like 'a?b'")) == ["a?b"]
    assert sorted(values(filter="tags.s like '[x]'")) == ["[x]"]
    assert sorted(values(filter="tags.s like '[%'")) == ["[x]"]
    assert sorted(values(filter="tags.s like '%]'")) == sorted(["[x]", "x]"])
    assert sorted(values(filter="params.s ilike 'A*%'")) == ["a*b"]
    assert sorted(values(filter="params.s like '_'")) == sorted(s for s in STRINGS if len(s) == 1)
    assert sorted(values(filter="params.s > '\uffff'")) == ["😀"]
    # keyset pages over string keys agree with one big page
    for order in (["name"], ["params.s desc"], ["tags.s"], ["name desc", "params.s"]):
        assert paged_ids(api, 1, order_by=order) == all_ids(api, order_by=order)


def _linguistic_collation(app: FastAPI) -> str | None:
    """On PostgreSQL, switch the string columns to a linguistic (ICU) collation, as a server
    whose default locale is en_US would have; None when the server has no ICU."""
    engine = app.state.store.engine
    with engine.begin() as conn:
        found = (
            conn.execute(
                text(
                    "SELECT collname FROM pg_collation WHERE collname IN ('en-x-icu', 'und-x-icu')"
                )
            )
            .scalars()
            .all()
        )
        if not found:
            return None
        coll = sorted(found)[0]
        for table, column, type_ in [
            ("run", "name", "varchar(256)"),
            ("run", "status", "varchar(16)"),
            ("run", "id", "varchar(32)"),
            ("run", "created_by", "varchar(256)"),
            ("run_param", "value", "text"),
            ("run_tag", "value", "text"),
        ]:
            conn.execute(
                text(f'ALTER TABLE {table} ALTER COLUMN {column} TYPE {type_} COLLATE "{coll}"')
            )
        # The switch matters: plain SQL now sorts linguistically, not by code point.
        plain = conn.execute(text("SELECT value FROM run_param ORDER BY value")).scalars().all()
        assert plain != sorted(plain)
    return str(coll)


def test_string_comparison_like_and_order_are_the_same_everywhere(
    api: httpx.Client, app: FastAPI
) -> None:
    """Code-point order, case-sensitive like, ASCII-folding ilike: on SQLite, on PostgreSQL,
    and on a PostgreSQL whose string columns collate linguistically."""
    value_of: dict[str, str] = {}
    for s in STRINGS:
        resp = api.post(
            "/api/v1/runs",
            json={"project": "p", "name": _run_name(s), "params": {"s": s}, "tags": {"s": s}},
        )
        value_of[resp.json()["run_id"]] = s
    _string_checks(api, value_of)
    if app.state.store.engine.dialect.name == "postgresql":
        assert _linguistic_collation(app) is not None, "PostgreSQL without ICU collations"
        _string_checks(api, value_of)
