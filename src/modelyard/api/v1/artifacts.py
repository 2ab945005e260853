from __future__ import annotations

from pathlib import PurePosixPath
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import RedirectResponse, Response, StreamingResponse

from modelyard.api.deps import Actor, ArtifactsDep, SettingsDep, StoreDep
from modelyard.authz import (
    Level,
    allow,
    run_path,
)
from modelyard.body_limits import ARTIFACTS, body_limit
from modelyard.schemas import ArtifactPublic
from modelyard.services import artifacts

router = APIRouter(prefix="/runs/{run_id}/artifacts", tags=["artifacts"])


@router.get("")
@allow(Level.READ, on=run_path())
def list_artifacts(run_id: str, store: StoreDep, prefix: str | None = None) -> list[ArtifactPublic]:
    return artifacts.list_artifacts(store, run_id=run_id, prefix=prefix)


# The body is the file, of any type: its Content-Type becomes the artifact's media type.
ANY_BODY = {
    "requestBody": {
        "required": True,
        "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}},
    }
}


@router.put("/{path:path}", status_code=201, openapi_extra=ANY_BODY)
@body_limit(ARTIFACTS)
@allow(Level.WRITE, on=run_path())
async def upload_artifact(
    run_id: str,
    path: str,
    request: Request,
    store: StoreDep,
    files: ArtifactsDep,
    settings: SettingsDep,
    actor: Actor,
    step: Annotated[str | None, Query(max_length=256)] = None,
    kind: Annotated[str | None, Query(max_length=64)] = None,
    content_type: Annotated[str | None, Header()] = None,
    content_length: Annotated[str | None, Header()] = None,
) -> ArtifactPublic:
    """Upload the request body as the artifact at ``path``, optionally made by ``step``."""
    media = None if content_type in (None, "application/x-www-form-urlencoded") else content_type
    return await artifacts.upload_artifact(
        store, files, run_id=run_id, path=path, chunks=request.stream(),
        declared_length=content_length, max_bytes=settings.max_upload_bytes, step=step,
        kind=kind, media_type=media, actor=actor,
    )  # fmt: skip


# Types a browser shows as they are, running nothing: these open in the browser; every other
# artifact (HTML, SVG, XML, PDF, ...) is sent as a file to save, so nothing uploaded is ever
# opened as a document of the portal's origin. (<img> shows an SVG either way, without script.)
INLINE_TYPES = frozenset(
    {"image/png", "image/jpeg", "image/gif", "image/webp", "image/avif", "text/plain",
     "text/csv", "application/json"}
)  # fmt: skip


def content_disposition(media_type: str, path: str) -> str:
    """``inline`` for ``INLINE_TYPES``, ``attachment`` for the rest, with the file's name."""
    kind = "inline" if media_type.split(";")[0].strip().lower() in INLINE_TYPES else "attachment"
    name = PurePosixPath(path).name
    quoted = quote(name)
    return f'{kind}; filename="{name}"' if quoted == name else f"{kind}; filename*=utf-8''{quoted}"


def _download_headers(got: artifacts.Download) -> dict[str, str]:
    meta, span = got.meta, got.span
    ranged = {"Content-Range": f"bytes */{meta.size}"} if got.status == 416 else {}
    if span is not None:
        ranged = {"Content-Range": f"bytes {span[0]}-{span[1]}/{meta.size}"}
    sent = 0 if got.status == 416 else meta.size if span is None else span[1] - span[0] + 1
    return {
        **ranged,
        "Accept-Ranges": "bytes",
        "Content-Length": str(sent),
        "ETag": f'"{meta.sha256}"',
        "X-Content-SHA256": meta.sha256,
        "Content-Disposition": content_disposition(meta.media_type, meta.path),
        # Uploaded files are served from the portal's own origin: should a browser open one
        # anyway, it must never run scripts there.
        "Content-Security-Policy": "sandbox; default-src 'none'; img-src 'self' data:; "
        "style-src 'unsafe-inline'; frame-ancestors 'none'",
        "X-Content-Type-Options": "nosniff",
    }


DOWNLOAD_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "The whole content", "content": {"*/*": {}}},
    206: {"description": "The byte range asked for (Content-Range)", "content": {"*/*": {}}},
    307: {"description": "A presigned URL of the object store (redirected downloads)"},
    416: {"description": "The range asked for lies outside the content (empty body)"},
}


@router.get("/{path:path}", response_class=StreamingResponse, responses=DOWNLOAD_RESPONSES)
@allow(Level.READ, on=run_path())
def download_artifact(
    run_id: str, path: str, store: StoreDep, files: ArtifactsDep, settings: SettingsDep,
    range: Annotated[str | None, Header(max_length=200)] = None,
) -> Response:  # fmt: skip
    """The artifact's content, streamed (one byte range of it with a ``Range`` header); or a
    redirect to the object store when MODELYARD_ARTIFACT_REDIRECT_DOWNLOADS is on and the
    store can sign a URL."""
    got = artifacts.download_artifact(
        store, files, run_id=run_id, path=path, redirect=settings.artifact_redirect_downloads,
        range_header=range,
    )  # fmt: skip
    if got.redirect is not None:
        return RedirectResponse(got.redirect, status_code=307)
    return StreamingResponse(
        got.chunks, status_code=got.status, media_type=got.meta.media_type,
        headers=_download_headers(got),
    )  # fmt: skip
