"""Jinja2 environment of the portal: autoescaped templates, formatting filters, asset URLs."""

from __future__ import annotations

import gzip
import math
import re
import secrets
import time
from functools import partial
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, PackageLoader, StrictUndefined
from markupsafe import Markup, escape
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from modelyard._version import __version__
from modelyard.authz import CSRF_COOKIE, csrf_token, may
from modelyard.times import ago, span_text, utc_iso, utc_text
from modelyard.web.assets import Assets
from modelyard.web.colors import run_color
from modelyard.web.urls import entity_page


def when(ms: int | None) -> str:
    """A timestamp in milliseconds as UTC date and time to the minute."""
    return "—" if ms is None else utc_text(ms)


when_iso = utc_iso


def duration(start: int | None, end: int | None, now: float | None = None) -> str:
    """Elapsed time between two millisecond stamps (to now while still running): "3m 05s"."""
    if start is None:
        return "—"
    stop = end if end is not None else int((now if now is not None else time.time()) * 1000)
    total = max(0, (stop - start) // 1000)
    hours, rest = divmod(total, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {seconds:02d}s"
    if stop - start < 10_000:
        return f"{(stop - start) / 1000:.1f}s"
    return f"{seconds}s"


def run_duration(run: Any, now: float | None = None) -> str:
    """A run's duration: to its end, to its last heartbeat when lost, else to now."""
    end = run.end_time
    if end is None and run.status == "lost" and run.last_heartbeat is not None:
        end = max(run.last_heartbeat, run.start_time)
    return duration(run.start_time, end, now)


def number(value: float | int | str | None, digits: int = 4) -> str:
    """A metric value, compact but exact enough to compare: 0.9731, 1.2e-05, NaN, +inf."""
    if value is None:
        return ""
    if isinstance(value, str):  # NaN and infinities travel as strings
        return {"Infinity": "+inf", "-Infinity": "-inf"}.get(value, value)
    if isinstance(value, int) or (float(value).is_integer() and abs(value) < 1e15):
        return f"{int(value):,}"
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+inf" if value > 0 else "-inf"
    return f"{value:.{digits}g}"


def nbytes(size: int | None) -> str:
    if size is None:
        return ""
    amount = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if amount < 1024 or unit == "GB":
            return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    return f"{amount:.1f} TB"


def pct(value: float | None) -> str:
    return "" if value is None else f"{value * 100:.0f}%"


_BREAK_AFTER = re.compile(r"([._/])")


def breakable(value: object) -> Markup:
    """``value`` escaped, free to wrap after each dot, underscore and slash: a dotted param
    key or a path breaks between its parts rather than a letter a line."""
    return Markup(_BREAK_AFTER.sub(r"\1<wbr>", str(escape(str(value)))))


def path_quote(value: str) -> str:
    return quote(value, safe="/")


def make_environment(assets: Assets, extra_template_dirs: list[Path] | None = None) -> Environment:
    loaders: list[Any] = [PackageLoader("modelyard.web", "templates")]
    loaders += [FileSystemLoader(str(d)) for d in extra_template_dirs or []]
    env = Environment(
        loader=ChoiceLoader(loaders),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        when=when,
        when_iso=when_iso,
        ago=ago,
        duration=duration,
        run_duration=run_duration,
        number=number,
        nbytes=nbytes,
        pct=pct,
        breakable=breakable,
        q=lambda v: quote(str(v), safe=""),
        pathq=path_quote,
        json=safe_json,
        span=span_text,
    )
    env.globals.update(
        asset=assets.url,
        entity_page=entity_page,
        run_color=run_color,  # one colour per run on every page (web/colors.py)
        version=__version__,
        urlencode=lambda pairs: urlencode(list(pairs), doseq=True),
    )
    return env


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    env: Environment = request.app.state.templates
    principal = getattr(request.state, "principal", None)
    new_cookie = None
    if (principal is None or principal.session is None) and CSRF_COOKIE not in request.cookies:
        new_cookie = request.state.csrf_cookie = secrets.token_urlsafe(24)
    ctx = {
        "request": request,
        "nav": "",
        "me": principal,
        "csrf": csrf_token(request.app.state.settings, request),
        "may": partial(may, request),
        **(context or {}),
    }
    html = env.get_template(template).render(ctx)
    response = compressed(request, html.encode(), HTMLResponse, status=status, headers=headers)
    if new_cookie is not None:
        secure = request.url.scheme == "https"
        response.set_cookie(CSRF_COOKIE, new_cookie, httponly=True, samesite="lax", secure=secure)
    return response


R = TypeVar("R", bound=Response)


def compressed(
    request: Request,
    body: bytes,
    kind: type[R],
    *,
    status: int = 200,
    headers: dict[str, str] | None = None,
    media_type: str | None = None,
) -> R:
    """A response gzipped (quickly) when the client takes it and it is worth it: pages and
    chart data are text that shrinks four- to eightfold."""
    out = dict(headers or {})
    if len(body) > 1400 and "gzip" in request.headers.get("accept-encoding", ""):
        body = gzip.compress(body, compresslevel=5, mtime=0)
        out["Content-Encoding"] = "gzip"
        out["Vary"] = "Accept-Encoding"
    return kind(body, status_code=status, headers=out, media_type=media_type)


def safe_json(value: Any) -> Markup:
    """JSON for a <script type="application/json"> block: '<', '>' and '&' escaped so no
    user text can close the script element."""
    import orjson

    text = orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY).decode()
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return Markup(text)
