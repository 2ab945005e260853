"""Domain errors; the API turns each into one JSON shape with a code and a clear message."""

from __future__ import annotations

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
