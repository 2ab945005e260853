"""URNs name every entity: ``urn:modelyard:<type>:<id>``."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, unquote

from modelyard.errors import InvalidInput

PREFIX = "urn:modelyard:"
ENTITY_TYPES = frozenset(
    {
        "project",
        "run",
        "step",
        "artifact",
        "dataset",
        "feature",
        "model",
        "model_version",
        "evaluation",
        "deployment",
        "user",
        "group",
        "token",
    }
)


@dataclass(frozen=True, slots=True)
class Urn:
    type: str
    id: str

    def __str__(self) -> str:
        return f"{PREFIX}{self.type}:{self.id}"

    @property
    def parts(self) -> list[str]:
        """The id split on ':' with each part unquoted (e.g. run id and step name)."""
        return [unquote(p) for p in self.id.split(":")]


def make_urn(entity_type: str, *parts: str | int) -> str:
    """Build a URN; each part is percent-quoted so names may hold any character."""
    if entity_type not in ENTITY_TYPES:
        raise InvalidInput(f"unknown entity type {entity_type!r}")
    return PREFIX + entity_type + ":" + ":".join(quote(str(p), safe="") for p in parts)


def parse_urn(text: str) -> Urn:
    if not text.startswith(PREFIX):
        raise InvalidInput(f"not a modelyard URN: {text!r} (expected {PREFIX}<type>:<id>)")
    entity_type, sep, ident = text[len(PREFIX) :].partition(":")
    if not sep or not ident or entity_type not in ENTITY_TYPES:
        raise InvalidInput(f"not a modelyard URN: {text!r}")
    return Urn(entity_type, ident)


def canonical_urn(text: str) -> Urn:
    """A URN exactly as :func:`make_urn` writes it. A URN put in a URL path unquoted loses its
    escapes on the way (``a%2Fb`` arrives as ``a/b``): refused with how to send it."""
    urn = parse_urn(text)
    made = make_urn(urn.type, *urn.parts)
    if made != text:
        raise InvalidInput(
            f"{text!r} is not a URN as modelyard writes it (that would be {made!r}); in a URL "
            f"path, percent-encode the URN itself: {quote(made, safe=':')}"
        )
    return urn


def project_urn(project_id: int) -> str:
    return make_urn("project", project_id)


def run_urn(run_id: str) -> str:
    return make_urn("run", run_id)


def step_urn(run_id: str, name: str) -> str:
    return make_urn("step", run_id, name)


def artifact_urn(run_id: str, path: str) -> str:
    return make_urn("artifact", run_id, path)


def dataset_urn(name: str) -> str:
    return make_urn("dataset", name)


def model_urn(name: str) -> str:
    return make_urn("model", name)


def evaluation_urn(evaluation_id: str) -> str:
    return make_urn("evaluation", evaluation_id)


def model_version_urn(model: str, version: int) -> str:
    return make_urn("model_version", model, version)


def user_urn(name: str) -> str:
    return make_urn("user", name)
