"""Differences between two versions of an aspect: a line diff of the pretty-printed JSON and
a short summary of the keys that changed."""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from typing import Any, Literal

from modelyard.times import is_time_field, utc_text

LineKind = Literal["add", "del", "hunk", "same"]
ChangeKind = Literal["added", "removed", "changed"]


@dataclass(frozen=True, slots=True)
class DiffLine:
    kind: LineKind
    text: str


@dataclass(frozen=True, slots=True)
class KeyChange:
    kind: ChangeKind
    path: str
    old: str
    new: str

    def __str__(self) -> str:
        if self.kind == "added":
            return f"{self.path}: added {self.new}"
        if self.kind == "removed":
            return f"{self.path}: removed (was {self.old})"
        return f"{self.path}: {self.old} → {self.new}"


def pretty(value: Any) -> str:
    """The canonical text of a value: JSON with sorted keys, indented by 2."""
    return json.dumps(value, sort_keys=True, indent=2, ensure_ascii=False)


def readable(value: Any, key: str = "") -> Any:
    """A value with its time fields (start_time, created_at, …) as UTC text to the second, for
    people to read, and a list of named objects as a mapping by name (see ``by_name``);
    everything else as it is."""
    if isinstance(value, dict):
        return {k: readable(v, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        named = by_name(value)
        if named is not None:
            return readable(named, key)
        return [readable(v) for v in value]
    if is_time_field(key, value):
        return utc_text(value, "%Y-%m-%d %H:%M:%S UTC")
    return value


def by_name(items: list[Any]) -> dict[str, Any] | None:
    """A list of objects that each carry a distinct ``name`` (and maybe a ``kind``) read as a
    mapping from "kind name" to the rest (one field: its value), so a change to one of them
    reads as that one changing ("members.user alan: editor → reviewer"), not as a new list.
    None for any other list."""
    if not items or not all(isinstance(i, dict) and isinstance(i.get("name"), str) for i in items):
        return None
    found: dict[str, Any] = {}
    for item in items:
        label = (
            f"{item['kind']} {item['name']}" if isinstance(item.get("kind"), str) else item["name"]
        )
        rest = {k: v for k, v in item.items() if k not in ("kind", "name")}
        found[label] = next(iter(rest.values())) if len(rest) == 1 else rest
    return found if len(found) == len(items) else None


def line_diff(old: Any, new: Any, *, context: int = 3) -> list[DiffLine]:
    """A unified line diff from ``old`` to ``new`` (``None``: nothing before, every line is
    added), without the file header lines."""
    before = pretty(old).splitlines() if old is not None else []
    after = pretty(new).splitlines()
    lines: list[DiffLine] = []
    for text in difflib.unified_diff(before, after, n=context, lineterm=""):
        if text.startswith(("---", "+++")) and not lines:
            continue  # the two header lines come first, before any hunk
        if text.startswith("@@"):
            lines.append(DiffLine("hunk", text))
        elif text.startswith("+"):
            lines.append(DiffLine("add", text))
        elif text.startswith("-"):
            lines.append(DiffLine("del", text))
        else:
            lines.append(DiffLine("same", text))
    return lines


def show(value: Any) -> str:
    """A value as a summary shows it: plain strings bare, anything else (and strings that
    would read ambiguously bare, like "" or " x") as JSON."""
    if isinstance(value, str) and value and value.strip() == value:
        return value
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def changed_keys(old: Any, new: Any, path: str = "") -> list[KeyChange]:
    """Which keys were added, removed or changed, by dotted path ("params.lr"); dicts are
    compared key by key, anything else (lists, scalars) as a whole."""
    if isinstance(old, dict) and isinstance(new, dict):
        changes: list[KeyChange] = []
        for key in sorted(old.keys() | new.keys(), key=str):
            sub = f"{path}.{key}" if path else str(key)
            if key not in new:
                changes.append(KeyChange("removed", sub, show(old[key]), ""))
            elif key not in old:
                changes.append(KeyChange("added", sub, "", show(new[key])))
            else:
                changes += changed_keys(old[key], new[key], sub)
        return changes
    if old == new and type(old) is type(new):
        return []
    return [KeyChange("changed", path or "(value)", show(old), show(new))]
