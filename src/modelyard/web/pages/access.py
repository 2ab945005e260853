"""Signing in and out of the portal."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from modelyard.api.deps import CurrentUser, SettingsDep
from modelyard.authz import SESSION_COOKIE, Level, allow, sign, team_mode
from modelyard.errors import TooManyAttempts, Unauthenticated
from modelyard.services.access.principals import Access
from modelyard.settings import Settings
from modelyard.web.templating import render

router = APIRouter()


def local_target(value: str | None) -> str:
    """Where to go after signing in: a path on this server only, never another site
    (``//evil.example``, ``/\\evil.example`` and absolute URLs go home instead)."""
    if not value or not value.startswith("/") or value.startswith(("//", "/\\")):
        return "/"
    if any(c in value for c in "\r\n\t\\") or not value.isprintable():
        return "/"
    return value


@router.get("/sign-in", response_class=HTMLResponse)
@allow(Level.PUBLIC)
def sign_in_page(request: Request, next: Annotated[str, Query(max_length=4000)] = "/") -> Response:
    access: Access = request.app.state.access
    if not team_mode(request.app.state.settings, access):
        return RedirectResponse(local_target(next), status_code=303)
    context = {"next": local_target(next), "error": None, "username": ""}
    return render(request, "sign_in.html", context)


@router.post("/sign-in", response_class=HTMLResponse)
@allow(Level.PUBLIC)
def sign_in(
    request: Request,
    settings: SettingsDep,
    username: Annotated[str, Form(max_length=200)],
    password: Annotated[str, Form(max_length=1024)],
    next: Annotated[str, Form(max_length=4000)] = "/",
) -> Response:
    access: Access = request.app.state.access
    address = request.client.host if request.client else None
    try:
        secret = access.sign_in(username.strip(), password, address=address)
    except (Unauthenticated, TooManyAttempts) as exc:
        context = {"next": local_target(next), "error": exc.message, "username": username}
        return render(request, "sign_in.html", context, status=exc.status)
    return with_session(RedirectResponse(local_target(next), 303), request, settings, secret)


def with_session(response: Response, request: Request, settings: Settings, secret: str) -> Response:
    """The session cookie: signed, out of reach of scripts, not sent by other sites' links
    that write, and only over HTTPS when the request came that way."""
    response.set_cookie(
        SESSION_COOKIE,
        sign(settings, secret),
        max_age=int(settings.session_max_hours * 3600),
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )
    return response


@router.post("/sign-out")
@allow(Level.SIGNED_IN)
def sign_out(
    request: Request,
    user: CurrentUser,
    csrf_token: Annotated[str, Form(max_length=200)] = "",  # checked by the access check
) -> Response:
    """End this session (on the server, so every tab of it is signed out)."""
    access: Access = request.app.state.access
    access.sign_out(user)
    response = RedirectResponse("/sign-in", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
