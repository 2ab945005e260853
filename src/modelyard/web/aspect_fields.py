"""An aspect as readable fields: times as dates, URNs (and run and project ids) as links to
what they name, lists and maps laid out; the page keeps the raw JSON behind a toggle."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from modelyard.errors import InvalidInput
from modelyard.metadata.urn import PREFIX, make_urn, parse_urn, run_urn
from modelyard.times import is_time_field

FieldKind = Literal["time", "urn", "text", "number", "list", "map", "empty"]
# Fields that hold another entity's id rather than its URN.
ID_FIELDS = {"run_id": lambda v: run_urn(str(v)), "project_id": lambda v: make_urn("project", v)}


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    kind: FieldKind
    value: Any = None
    items: list[Field] = field(default_factory=list)

    @property
    def title(self) -> str:
        """The field's name as words: "start_time" reads "start time"."""
        return self.name.replace("_", " ")


def _is_urn(value: Any) -> bool:
    if not isinstance(value, str) or not value.startswith(PREFIX):
        return False
    try:
        parse_urn(value)
    except InvalidInput:
        return False
    return True


def to_field(name: str, value: Any) -> Field:
    if value is None or value == "" or value == [] or value == {}:
        return Field(name, "empty")
    if isinstance(value, dict):
        return Field(name, "map", items=[to_field(str(k), v) for k, v in sorted(value.items())])
    if isinstance(value, list):
        return Field(name, "list", items=[to_field("", v) for v in value])
    if is_time_field(name, value):
        return Field(name, "time", value)
    if name in ID_FIELDS and isinstance(value, str | int) and not isinstance(value, bool):
        return Field(name, "urn", ID_FIELDS[name](value))
    if _is_urn(value):
        return Field(name, "urn", value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return Field(name, "number", value)
    return Field(name, "text", value if isinstance(value, str) else str(value).lower())


def aspect_fields(value: Any) -> list[Field]:
    """The top-level fields of an aspect's value, each made readable."""
    if isinstance(value, dict):
        return [to_field(str(k), v) for k, v in value.items()]
    return [to_field("value", value)]


def urns_in(fields: list[Field]) -> list[str]:
    """Every URN the fields link to, for one label lookup."""
    out: list[str] = []
    for f in fields:
        if f.kind == "urn":
            out.append(f.value)
        out += urns_in(f.items)
    return out
