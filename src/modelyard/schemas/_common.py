"""Field types and the strict base that every request schema shares."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    StringConstraints,
)
from pydantic import Strict as NoCoercion
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from modelyard.limits import (
    INT64_MAX,
    MAX_DESCRIPTION,
    MAX_ERROR,
    MAX_KEY,
    MAX_MESSAGE,
    MAX_MILLIS,
    MAX_NAME,
    MAX_PARAM_VALUE,
    MAX_TAG_VALUE,
    MAX_URN,
)

# Control (Cc), format (Cf: zero-width space and joiners, word joiner, BOM, bidi marks) and
# line or paragraph separators: invisible in a name, they would make look-alikes.
INVISIBLE = frozenset({"Cc", "Cf", "Zl", "Zp"})


def normal_name(value: str) -> str:
    """A name as stored: NFC, trimmed, not empty, without control or zero-width characters."""
    name = unicodedata.normalize("NFC", value).strip()
    if not name:
        raise ValueError("a name must not be empty or only whitespace")
    bad = next((c for c in name if unicodedata.category(c) in INVISIBLE), None)
    if bad is not None:
        raise ValueError(
            f"a name must not contain control or invisible characters (U+{ord(bad):04X})"
        )
    return name


def typed_name(text: str) -> str:
    """A name as someone may type it in an address (NFD from some keyboards, stray spaces),
    in the form it is stored under, for looking it up."""
    return unicodedata.normalize("NFC", text).strip()


def _char_class(chars: list[int]) -> str:
    """A regex character class body of ``chars`` (sorted code points) as literal ranges."""
    ranges: list[list[int]] = []
    for c in chars:
        if ranges and ranges[-1][1] == c - 1:
            ranges[-1][1] = c
        else:
            ranges.append([c, c])
    return "".join(chr(a) if a == b else f"{chr(a)}-{chr(b)}" for a, b in ranges)


@cache
def name_pattern() -> str:
    """What :func:`normal_name` accepts, as a regex for the API's document: optional
    whitespace around a name of no control or invisible characters that does not start or
    end with whitespace (surrounding whitespace is trimmed; a name of whitespace only is
    refused). Made from this Python's Unicode tables, as the check is; planes 3 to 13 and 15
    to 16 hold no such characters (they are unassigned, CJK or private use)."""
    invisible, space = [], []
    for c in [*range(0x20000), *range(0xE0000, 0xE1000)]:
        if unicodedata.category(chr(c)) in INVISIBLE:
            invisible.append(c)
        if chr(c).isspace():
            space.append(c)
    inv, sp = _char_class(invisible), _char_class(space)
    both = _char_class(sorted(set(invisible) | set(space)))
    return f"^[{sp}]*[^{both}](?:[^{inv}]*[^{both}])?[{sp}]*$"


@dataclass(frozen=True)
class DocumentedPattern:
    """A regex the API's document states for a string that code checks (with a clearer
    message than a failed pattern would give); ``make`` runs when the document is built."""

    make: Callable[[], str]

    def __get_pydantic_json_schema__(
        self, core: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        schema = handler(core)
        schema["pattern"] = self.make()
        return schema


# What every URN may name (``modelyard.metadata.urn.ENTITY_TYPES``).
URN_TYPES = (
    "project", "run", "step", "artifact", "dataset", "feature", "model", "model_version",
    "evaluation", "deployment", "user", "group", "token",
)  # fmt: skip
_BYTE = "%[89AB][0-9A-F]"  # a UTF-8 continuation byte
# One character of a URN part as modelyard writes it: an unreserved character, or a
# percent-encoded one (uppercase hex; ASCII that is not unreserved, other than NUL; or a
# character's whole UTF-8 sequence).
_URN_CHAR = "|".join(
    [
        "[A-Za-z0-9_.~-]",
        "%(?:0[1-9A-F]|1[0-9A-F]|2[0-9A-C]|2F|3[A-F]|40|5[B-E]|60|7[B-D]|7F)",
        f"%(?:C[2-9A-F]|D[0-9A-F]){_BYTE}",
        f"%E0%[AB][0-9A-F]{_BYTE}|%E[1-9A-CEF]{_BYTE}{_BYTE}|%ED%[89][0-9A-F]{_BYTE}",
        f"%F0%(?:9[0-9A-F]|[AB][0-9A-F]){_BYTE}{_BYTE}|%F[1-3]{_BYTE}{_BYTE}{_BYTE}",
        f"%F4%8[0-9A-F]{_BYTE}{_BYTE}",
    ]
)


def urn_pattern(*types: str) -> str:
    """A URN as modelyard writes it (``urn:modelyard:<type>:<part>[:<part>...]``, each part
    percent-encoded), naming one of ``types`` (any type when none are given)."""
    part = f"(?:{_URN_CHAR})"
    ident = f"(?:{part}+(?::{part}*)*|(?::{part}*)+)"
    return f"^urn:modelyard:(?:{'|'.join(types or URN_TYPES)}):{ident}$"


def name_key(name: str) -> str:
    """What two names that look alike share: case-folded NFKC."""
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", name).casefold())


Name = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MAX_NAME),
    AfterValidator(normal_name),
    DocumentedPattern(name_pattern),
]
Key = Annotated[str, StringConstraints(min_length=1, max_length=MAX_KEY)]
ParamValue = Annotated[str, StringConstraints(max_length=MAX_PARAM_VALUE)]
TagValue = Annotated[str, StringConstraints(max_length=MAX_TAG_VALUE)]
Description = Annotated[str, StringConstraints(max_length=MAX_DESCRIPTION)]
Message = Annotated[str, StringConstraints(max_length=MAX_MESSAGE)]
ErrorText = Annotated[str, StringConstraints(max_length=MAX_ERROR)]
Urn = Annotated[
    str, StringConstraints(max_length=MAX_URN), DocumentedPattern(lambda: urn_pattern())
]
RunId = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")]
# In request bodies a whole number is a JSON integer: true, 1.0 or "5" is refused, not read as one.
Millis = Annotated[int, NoCoercion(), Field(ge=0, le=MAX_MILLIS)]
Count = Annotated[int, NoCoercion(), Field(ge=0, le=INT64_MAX)]
# Whole numbers compared with stored ones: anything beyond 64 bits is a 422, never a 500.
Int64 = Annotated[int, Field(ge=-INT64_MAX, le=INT64_MAX)]
Natural = Annotated[int, Field(ge=0, le=INT64_MAX)]
Serial = Annotated[int, Field(ge=1, le=INT64_MAX)]
# A model's version number, stored as a 32-bit integer.
Version = Annotated[int, Field(ge=1, le=2**31 - 1)]


class Strict(BaseModel):
    # A request body: unknown fields are refused, not ignored.
    model_config = ConfigDict(extra="forbid")


class ErrorDetail(BaseModel):
    code: str
    message: str
    details: Any = None  # left out when there are none; the fields refused, for a 422


class ErrorBody(BaseModel):
    """Every error of the JSON API: ``{"error": {"code", "message", "details"?}}``."""

    error: ErrorDetail
