"""The runs table's pieces in-process: one decimals rule per column, group headers, the
filter's notes (syntax error alone; keys no run has, with suggestions) and the possibly-stale
flag (MODELYARD_RUN_STALE_AFTER_SECONDS)."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from urllib.parse import quote

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import update

from modelyard.floats import column_text
from modelyard.metadata import tables as t
from modelyard.schemas import RunPublic
from modelyard.services.liveness import silent_for
from modelyard.services.search import look_alike, unknown_keys
from modelyard.times import span_text
from modelyard.web.runs_table import Column, column_groups
from tests.conftest import in_process_client
from tests.helpers import get_page, new_run
from tests.test_web_pages import log, text_of

MINUTE_MS = 60_000


@pytest.mark.parametrize(
    ("values", "shown"),
    [
        ([0.97312, 0.5, 0.0123], ["0.9731", "0.5000", "0.0123"]),
        ([0.25, None, 0.3], ["0.2500", "", "0.3000"]),
        ([1234.5, 0.5], ["1,234.50", "0.50"]),
        ([12.0, 3, 12000], ["12", "3", "12,000"]),
        ([9.9e-08, 0.083], ["9.900e-08", "8.300e-02"]),
        ([2.5e10, 3.5], ["2.500e+10", "3.500e+00"]),
        ([0.5, "NaN", "Infinity", math.inf, -math.inf], ["0.5000", "NaN", "+inf", "+inf", "-inf"]),
        ([None, None], ["", ""]),
        ([-0.25, 0.125], ["-0.2500", "0.1250"]),
    ],
)
def test_a_metric_column_shows_one_number_of_decimals(
    values: list[float | str | None], shown: list[str]
) -> None:
    assert column_text(values) == shown
    numbers = [v for v in values if isinstance(v, float | int) and math.isfinite(v)]
    texts = [s for v, s in zip(values, shown, strict=True) if v in numbers]
    for v, s in zip(numbers, texts, strict=True):  # each reads back as its value, rounded
        assert float(s.replace(",", "")) == pytest.approx(v, rel=5e-3)


def test_group_headers_cover_stretches_of_one_kind() -> None:
    cols = [Column("metric", "a"), Column("metric", "b"), Column("param", "c"), Column("tag", "d")]
    assert [(g.label, g.span) for g in column_groups(cols)] == [
        ("Metrics", 2),
        ("Params", 1),
        ("Tags", 1),
    ]
    assert column_groups([]) == []


def test_suggestions_for_a_key_no_run_has() -> None:
    keys = {"metric": ["accuracy", "auc", "log_loss"], "param": ["lr", "model"], "tag": ["team"]}
    assert look_alike("acc", keys["metric"]) == ["accuracy", "auc"]
    assert look_alike("LOSS", keys["metric"]) == ["log_loss"]
    found = unknown_keys("metrics.acc > 1 or (tags.tem = 'a' and not metrics.lr > 1)", keys)
    assert [u.message for u in found] == [
        "No run in this project has a metric named 'acc'; did you mean 'accuracy' or 'auc'?",
        "No run in this project has a tag named 'tem'; did you mean 'team'?",
        "No run in this project has a metric named 'lr'; did you mean params.lr?",
    ]
    assert unknown_keys("metrics.zzz > 1", keys)[0].message == (
        "No run in this project has a metric named 'zzz'."
    )
    assert unknown_keys("metrics.auc > 1 and status = 'running'", keys) == []
    assert unknown_keys("metrics.acc >", keys) == []  # a syntax error is its own message


def run_with(**fields: object) -> RunPublic:
    base: dict[str, object] = {
        "run_id": "0" * 32, "urn": "urn:x", "project": "p", "project_id": 1, "name": "r",
        "status": "running", "start_time": 0, "end_time": None, "last_heartbeat": 0,
        "created_by": "me", "params": {}, "tags": {}, "metrics": {},
    }  # fmt: skip
    return RunPublic.model_validate({**base, **fields})


def test_a_running_run_is_possibly_stale_after_the_setting() -> None:
    run = run_with(last_heartbeat=1_000_000)
    assert silent_for(run, stale_after_ms=120_000, now=1_000_000 + 120_000) is None
    assert silent_for(run, stale_after_ms=120_000, now=1_000_000 + 420_000) == 420_000
    assert silent_for(run, stale_after_ms=0, now=10**12) is None  # 0 never flags
    for status in ("lost", "finished", "failed", "killed"):
        assert silent_for(run_with(status=status), stale_after_ms=1, now=10**9) is None
    assert silent_for(run_with(last_heartbeat=None, start_time=5), stale_after_ms=1, now=10) == 5
    assert [span_text(ms) for ms in (45_000, 420_000, 3 * 3600_000, 2 * 86400_000)] == [
        "45 s",
        "7 min",
        "3 h",
        "2 d",
    ]


def test_the_runs_table_flags_a_silent_running_run(api: httpx.Client, app: FastAPI) -> None:
    silent, alive = new_run(api, "live", name="silent"), new_run(api, "live", name="alive")
    with app.state.store.engine.begin() as conn:
        conn.execute(
            update(t.run)
            .where(t.run.c.id == silent)
            .values(last_heartbeat=t.run.c.last_heartbeat - 7 * MINUTE_MS)
        )
    doc = get_page(api, "/projects/live")
    rows = dict(re.findall(r'<tr data-run-id="(\w+)">(.*?)</tr>', doc, re.S))
    assert "possibly stale — no update for 7 min" in text_of(rows[silent])
    assert "possibly stale" not in rows[alive]
    assert "possibly stale — no update for 7 min" in text_of(get_page(api, f"/runs/{silent}"))
    assert "possibly stale" not in get_page(api, f"/runs/{alive}")


def test_the_flag_waits_for_the_setting(app_with: Callable[..., FastAPI]) -> None:
    patient = app_with(run_stale_after_seconds=3600)
    with in_process_client(patient) as client:
        run_id = new_run(client, "live")
        with patient.state.store.engine.begin() as conn:
            conn.execute(
                update(t.run)
                .where(t.run.c.id == run_id)
                .values(last_heartbeat=t.run.c.last_heartbeat - 7 * MINUTE_MS)
            )
        assert "possibly stale" not in get_page(client, "/projects/live")


def test_filter_notes_on_the_project_page(api: httpx.Client) -> None:
    run_id = new_run(api, "notes", params={"learning_rate": "0.1"})
    log(api, run_id, metrics=[{"key": "accuracy", "value": 0.9}])
    # A syntax error: its message alone, no table and no "No run matches".
    doc = get_page(api, "/projects/notes?filter=" + quote("metrics.accuracy >"), status=400)
    assert "That filter did not work" in doc
    assert "No run matches" not in doc
    assert 'id="runs-table"' not in doc
    # A key no run has: said so, with what the user may have meant.
    doc = get_page(api, "/projects/notes?filter=" + quote("metrics.acc > 0.5"))
    assert (
        "No run in this project has a metric named &#39;acc&#39;; did you mean "
        "&#39;accuracy&#39;?" in doc
    )
    assert "No run matches this filter." in doc
    # Hostile key names are escaped.
    doc = get_page(api, "/projects/notes?filter=" + quote("tags.`<b>x</b>` = 'y'"))
    assert "<b>x</b>" not in doc
    assert "&lt;b&gt;x&lt;/b&gt;" in doc
