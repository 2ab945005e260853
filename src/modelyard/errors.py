"""Domain errors; the API turns each into one JSON shape with a code and a clear message."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


class ModelyardError(Exception):
    """Base of every error a user can cause; ``status`` is the HTTP status it maps to."""

    status = 400
    code = "INVALID_REQUEST"

    def __init__(self, message: str, *, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details is not None:
            body["details"] = self.details
        return {"error": body}


class InvalidInput(ModelyardError):
    status = 400
    code = "INVALID_INPUT"


class NotFound(ModelyardError):
    status = 404
    code = "NOT_FOUND"


class Conflict(ModelyardError):
    status = 409
    code = "CONFLICT"


class Forbidden(ModelyardError):
    status = 403
    code = "FORBIDDEN"


class Unauthenticated(ModelyardError):
    """No one is signed in, or the credentials sent are not valid (expired, revoked)."""

    status = 401
    code = "UNAUTHENTICATED"


class TooManyAttempts(ModelyardError):
    status = 429
    code = "TOO_MANY_ATTEMPTS"


class UnsupportedMediaType(ModelyardError):
    status = 415
    code = "UNSUPPORTED_MEDIA_TYPE"


class PayloadTooLarge(ModelyardError):
    status = 413
    code = "PAYLOAD_TOO_LARGE"


class InvalidState(ModelyardError):
    status = 409
    code = "INVALID_STATE"


class ArtifactStoreUnavailable(ModelyardError):
    """The artifact store did not answer (unreachable, timed out, overloaded); worth retrying."""

    status = 503
    code = "ARTIFACT_STORE_UNAVAILABLE"


class ArtifactStoreFailed(ModelyardError):
    """The artifact store answered with a refusal the request cannot fix (no such bucket,
    access denied, misconfiguration)."""

    status = 502
    code = "ARTIFACT_STORE_ERROR"


class InvalidFields(ModelyardError):
    """A body or query whose fields fail their schema: one message naming every field, and
    the field-by-field list in ``details``."""

    status = 422
    code = "INVALID_INPUT"

    @classmethod
    def from_errors(cls, errors: Iterable[Mapping[str, Any]]) -> InvalidFields:
        """From pydantic's (or the framework's) list of validation errors."""
        details: list[dict[str, object]] = []
        parts = []
        for err in errors:
            where = (p for p in err.get("loc", ()) if p not in ("body", "query", "path"))
            loc, msg = ".".join(str(p) for p in where), str(err.get("msg", "invalid"))
            if err.get("type") == "json_invalid":  # its loc is a character offset, not a field
                why = err.get("ctx", {}).get("error", "cannot be decoded")
                loc, msg = "", f"the body is not valid JSON: {why} at character {loc}"
            elif not loc and err.get("type") == "missing":
                msg = "a JSON body is required"
            parts.append(f"{loc}: {msg}" if loc else msg)
            details.append({"field": loc, "message": msg})
        return cls("; ".join(parts) or "invalid request", details=details)
