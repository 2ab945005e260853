"""Field types and the strict base that every request schema shares."""

from __future__ import annotations

import unicodedata
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints
from pydantic import Strict as NoCoercion

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


def name_key(name: str) -> str:
    """What two names that look alike share: case-folded NFKC."""
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", name).casefold())


Name = Annotated[
    str, StringConstraints(min_length=1, max_length=MAX_NAME), AfterValidator(normal_name)
]
Key = Annotated[str, StringConstraints(min_length=1, max_length=MAX_KEY)]
ParamValue = Annotated[str, StringConstraints(max_length=MAX_PARAM_VALUE)]
TagValue = Annotated[str, StringConstraints(max_length=MAX_TAG_VALUE)]
Description = Annotated[str, StringConstraints(max_length=MAX_DESCRIPTION)]
Message = Annotated[str, StringConstraints(max_length=MAX_MESSAGE)]
ErrorText = Annotated[str, StringConstraints(max_length=MAX_ERROR)]
Urn = Annotated[str, StringConstraints(max_length=MAX_URN)]
RunId = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")]
# In request bodies a whole number is a JSON integer: true, 1.0 or "5" is refused, not read as one.
Millis = Annotated[int, NoCoercion(), Field(ge=0, le=MAX_MILLIS)]
Count = Annotated[int, NoCoercion(), Field(ge=0, le=INT64_MAX)]
# Whole numbers compared with stored ones: anything beyond 64 bits is a 422, never a 500.
Int64 = Annotated[int, Field(ge=-INT64_MAX, le=INT64_MAX)]
Natural = Annotated[int, Field(ge=0, le=INT64_MAX)]
Serial = Annotated[int, Field(ge=1, le=INT64_MAX)]


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
