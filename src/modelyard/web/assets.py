"""Static assets served under content-hashed URLs, so browsers may cache them for good.

Files come from the package's own ``static`` folder, from installed plugins, and Plotly.js from
the ``plotly`` wheel. A URL is ``/static/<name>?v=<hash>``-free: the hash is part of the path
(``/static/<hash>/<name>``), so a new release can never be served a stale copy.
"""

from __future__ import annotations

import gzip
import hashlib
import mimetypes
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response

from modelyard.errors import NotFound

IMMUTABLE = "public, max-age=31536000, immutable"


@dataclass(slots=True)
class Asset:
    name: str
    path: Path
    digest: str
    media_type: str
    _body: bytes | None = None
    _gzipped: bytes | None = None

    @property
    def body(self) -> bytes:
        if self._body is None:
            self._body = self.path.read_bytes()
        return self._body

    @property
    def gzipped(self) -> bytes:
        if self._gzipped is None:
            self._gzipped = gzip.compress(self.body, compresslevel=6, mtime=0)
        return self._gzipped


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:12]


def plotly_js() -> Path:
    """Plotly.js as shipped inside the plotly wheel; nothing is downloaded."""
    return Path(str(files("plotly") / "package_data" / "plotly.min.js"))


@dataclass(slots=True)
class Assets:
    by_name: dict[str, Asset] = field(default_factory=dict)

    def add(self, name: str, path: Path) -> None:
        media_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        if media_type.startswith("text/") or media_type.endswith("javascript"):
            media_type += "; charset=utf-8"
        self.by_name[name] = Asset(name, path, _digest(path), media_type)

    def add_folder(self, folder: Path, prefix: str = "") -> None:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                self.add(prefix + path.relative_to(folder).as_posix(), path)

    def url(self, name: str) -> str:
        asset = self.by_name.get(name)
        if asset is None:
            raise KeyError(f"no static asset named {name!r}")
        return f"/static/{asset.digest}/{name}"

    def response(self, request: Request, digest: str, name: str) -> Response:
        asset = self.by_name.get(name)
        if asset is None:
            raise NotFound(f"there is no static file {name!r}")
        if asset.digest != digest:  # an old page asking for an old version: never cache that
            headers = {"Cache-Control": "no-cache", "Location": self.url(name)}
            return Response(status_code=307, headers=headers)
        headers = {
            "Cache-Control": IMMUTABLE,
            "ETag": f'"{asset.digest}"',
            "Vary": "Accept-Encoding",
        }
        if request.headers.get("if-none-match") == headers["ETag"]:
            return Response(status_code=304, headers=headers)
        if "gzip" in request.headers.get("accept-encoding", ""):
            headers["Content-Encoding"] = "gzip"
            return Response(asset.gzipped, media_type=asset.media_type, headers=headers)
        return Response(asset.body, media_type=asset.media_type, headers=headers)


def default_assets(extra_folders: list[tuple[Path, str]] | None = None) -> Assets:
    assets = Assets()
    assets.add_folder(Path(str(files("modelyard.web") / "static")))
    assets.add("plotly.min.js", plotly_js())
    for folder, prefix in extra_folders or []:
        assets.add_folder(folder, prefix)
    return assets
