"""The change log as people read it: each change with the fields it changed (old → new, times
as dates), and a run's bursts of step-state changes folded into one line."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from modelyard.metadata.urn import parse_urn, run_urn
from modelyard.schemas import ChangePublic
from modelyard.web.diff import KeyChange, changed_keys, readable

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
    """Consecutive step-state changes of one run, shown as one line that opens."""

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
    fields = changed_keys(readable(old) if old is not None else {}, readable(new))
    if old is None:  # a new aspect: what it was set to, not every empty default
        fields = [f for f in fields if f.new not in EMPTY]
    return ChangeRow(change, fields[:FIELDS_SHOWN], max(0, len(fields) - FIELDS_SHOWN))


def _run_of_step(change: ChangePublic) -> str | None:
    if change.aspect != "step_state":
        return None
    return run_urn(parse_urn(change.urn).parts[0])


def _summary(rows: list[ChangeRow], values: dict[tuple[str, str, int], Any]) -> str:
    """ "7 step state changes: ingest running → finished, train running → failed" (oldest
    first), each step's statuses in the order they came."""
    chains: dict[str, list[str]] = {}
    for row in reversed(rows):
        c = row.change
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
    return f"{len(rows)} step state changes: {', '.join(parts)}{more}"


def change_rows(
    changes: list[ChangePublic], values: dict[tuple[str, str, int], Any]
) -> list[ChangeRow | FoldedRows]:
    """The changes newest first, runs of two or more step-state changes of one run folded."""
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
