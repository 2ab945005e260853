"""The change log as people read it: each change with the fields it changed (old → new, times
as dates), and a run's bursts of step-state changes folded into one line."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from modelyard.metadata.urn import parse_urn, run_urn
from modelyard.schemas import ChangePublic
from modelyard.web.diff import KeyChange, changed_keys, readable, show

FIELDS_SHOWN = 4  # per change; the diff link shows the rest
STEPS_SHOWN = 4  # per folded line's summary
EMPTY = frozenset({"null", "[]", "{}", '""'})


@dataclass(frozen=True, slots=True)
class ChangeRow:
    change: ChangePublic
    fields: list[KeyChange]  # the first few fields it changed
    more: int  # how many more it changed

    @property
    def created(self) -> bool:
        return self.change.previous_version is None


@dataclass(frozen=True, slots=True)
class FoldedRows:
    """Consecutive changes to one run's steps (mostly their states), as one line that opens."""

    run_urn: str
    rows: list[ChangeRow]
    summary: str

    @property
    def newest(self) -> ChangePublic:
        return self.rows[0].change


def change_row(change: ChangePublic, values: dict[tuple[str, str, int], Any]) -> ChangeRow:
    new = values.get((change.urn, change.aspect, change.version))
    old = None
    if change.previous_version is not None:
        old = values.get((change.urn, change.aspect, change.previous_version))
    if old is None:  # a new aspect: what it was set to, field by field, not empty defaults
        fields = [f for f in set_fields(readable(new)) if f.new not in EMPTY]
    else:
        fields = changed_keys(readable(old), readable(new))
    return ChangeRow(change, fields[:FIELDS_SHOWN], max(0, len(fields) - FIELDS_SHOWN))


def set_fields(value: Any, path: str = "") -> list[KeyChange]:
    """Every leaf of a new value as an added field, by dotted path ("metrics.binary.auc")."""
    if isinstance(value, dict) and value:
        return [
            f
            for key in sorted(value, key=str)
            for f in set_fields(value[key], f"{path}.{key}" if path else str(key))
        ]
    return [KeyChange("added", path or "(value)", "", show(value))]


def _run_of_step(change: ChangePublic) -> str | None:
    """The run a change to one of its steps belongs to (a step's properties come with its
    first state, so both fold)."""
    urn = parse_urn(change.urn)
    return run_urn(urn.parts[0]) if urn.type == "step" else None


def _summary(rows: list[ChangeRow], values: dict[tuple[str, str, int], Any]) -> str:
    """ "7 step state changes: ingest running → finished, train running → failed" (oldest
    first), each step's statuses in the order they came."""
    chains: dict[str, list[str]] = {}
    for row in reversed(rows):
        c = row.change
        if c.aspect != "step_state":
            continue
        step = parse_urn(c.urn).parts[-1]
        chain = chains.setdefault(step, [])
        if not chain and c.previous_version is not None:
            before = values.get((c.urn, c.aspect, c.previous_version)) or {}
            chain.append(str(before.get("status", "?")))
        status = str((values.get((c.urn, c.aspect, c.version)) or {}).get("status", "?"))
        if not chain or chain[-1] != status:
            chain.append(status)
    parts = [f"{step} {' → '.join(chain)}" for step, chain in list(chains.items())[:STEPS_SHOWN]]
    more = ", …" if len(chains) > STEPS_SHOWN else ""
    only_states = all(row.change.aspect == "step_state" for row in rows)
    what = "step state changes" if only_states else "step changes"
    return f"{len(rows)} {what}: {', '.join(parts)}{more}"


def change_rows(
    changes: list[ChangePublic], values: dict[tuple[str, str, int], Any]
) -> list[ChangeRow | FoldedRows]:
    """The changes newest first, runs of two or more changes to one run's steps folded."""
    out: list[ChangeRow | FoldedRows] = []
    group: list[ChangeRow] = []
    group_run: str | None = None

    def flush() -> None:
        if len(group) > 1 and group_run is not None:
            out.append(FoldedRows(group_run, list(group), _summary(group, values)))
        else:
            out.extend(group)
        group.clear()

    for change in changes:
        run = _run_of_step(change)
        if run is None or run != group_run:
            flush()
        group_run = run
        row = change_row(change, values)
        if run is None:
            out.append(row)
        else:
            group.append(row)
    flush()
    return out
