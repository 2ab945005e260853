from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import RedirectResponse, Response, StreamingResponse

from modelyard.api.deps import Actor, ArtifactsDep, SettingsDep, StoreDep
from modelyard.schemas import ArtifactPublic
from modelyard.services import artifacts

router = APIRouter(prefix="/runs/{run_id}/artifacts", tags=["artifacts"])


@router.get("")
def list_artifacts(run_id: str, store: StoreDep, prefix: str | None = None) -> list[ArtifactPublic]:
    return artifacts.list_artifacts(store, run_id=run_id, prefix=prefix)


@router.put("/{path:path}", status_code=201)
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


def _download_headers(meta: ArtifactPublic) -> dict[str, str]:
    return {
        "Content-Length": str(meta.size),
        "ETag": f'"{meta.sha256}"',
        "X-Content-SHA256": meta.sha256,
        # Uploaded files are served from the portal's own origin: an HTML or SVG file
        # opened directly must never run scripts there.
        "Content-Security-Policy": "sandbox; default-src 'none'; img-src 'self' data:; "
        "style-src 'unsafe-inline'",
        "X-Content-Type-Options": "nosniff",
    }


@router.get("/{path:path}", response_class=StreamingResponse)
def download_artifact(
    run_id: str, path: str, store: StoreDep, files: ArtifactsDep, settings: SettingsDep
) -> Response:
    """The artifact's content, streamed; or a redirect to the object store when
    MODELYARD_ARTIFACT_REDIRECT_DOWNLOADS is on and the store can sign a URL."""
    got = artifacts.download_artifact(
        store, files, run_id=run_id, path=path, redirect=settings.artifact_redirect_downloads
    )
    if got.redirect is not None:
        return RedirectResponse(got.redirect, status_code=307)
    return StreamingResponse(
        got.chunks, media_type=got.meta.media_type, headers=_download_headers(got.meta)
    )
