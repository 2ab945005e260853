"""One place decides who may do what.

Every route declares the permission it needs with :func:`allow` (a level, and where the
request names its project); one app-wide dependency, :func:`authorize`, resolves who is
calling (a session cookie, a Bearer token, a trusted proxy's identity header, or the implicit
local user) and checks the declaration before the route runs. A route that declares nothing
is for site admins only, and the test suite fails for it.

- Local mode (bound to loopback and no user created yet): everyone is the implicit local user.
- Team mode (a user exists, or the server binds beyond loopback): every route but the public
  ones needs a principal. Anonymous callers get 401 (pages send them to the sign-in page); a
  principal who may not read a project gets 404 for its things, as if they were not there; one
  who may read but not do gets 403.
- Browser writes signed in by cookie carry a CSRF token (a header or a form field) bound to
  the session; the Origin check of :mod:`modelyard.guards` comes first.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from collections.abc import Awaitable, Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass
from enum import IntEnum
from functools import partial
from typing import Any, TypeVar

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from modelyard.errors import Forbidden, InvalidInput, NotFound, Unauthenticated
from modelyard.metadata.store import Store
from modelyard.services.access import scopes
from modelyard.services.access.accounts import split_token
from modelyard.services.access.principals import LOCAL_USER, Access, Principal, session_digest
from modelyard.settings import Settings, web_origin

SESSION_COOKIE = "modelyard_session"
CSRF_COOKIE = "modelyard_csrf"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
MAX_IDENTITY = 200  # an identity header's value, as the change log records it
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")


class Level(IntEnum):
    """What a route needs, from least to most."""

    PUBLIC = 0  # anyone, signed in or not: the sign-in page, static files, health
    SIGNED_IN = 1  # any principal; lists show only what they may read
    CREATE = 2  # any principal that may write (not a read-only token): a new project
    READ = 3  # viewer of the project
    WRITE = 4  # editor: runs, artifacts, evaluations, model versions
    REVIEW = 5  # reviewer: approves model versions
    OWN = 6  # owner: members, settings, deletion
    ADMIN = 7  # site admin


ROLE_LEVEL = {"viewer": Level.READ, "editor": Level.WRITE, "reviewer": Level.REVIEW}
ROLE_LEVEL["owner"] = Level.OWN
LEVEL_ROLE = {level: role for role, level in ROLE_LEVEL.items()}
# What a read-only token may do.
READ_ONLY_LEVELS = frozenset({Level.PUBLIC, Level.SIGNED_IN, Level.READ})
# A level on a site-wide subject (a model, a dataset): what it takes instead.
SITE_LEVEL = {Level.READ: Level.SIGNED_IN, Level.WRITE: Level.CREATE}


# --- where a request names its project -----------------------------------------------------

Resolve = Callable[[Request, Store, Access], Awaitable[list[int | None]]]


@dataclass(frozen=True)
class Scope:
    """How a route's request names the project(s) it acts on: ``resolve`` answers their ids
    (``None`` for a subject that does not exist, ``scopes.SITE`` for a site-wide one)."""

    describe: str
    resolve: Resolve
    # A subject that is not there is one a write makes (a project named in a body).
    creates: bool = False


def _path(request: Request, name: str) -> str:
    return str(request.path_params.get(name, ""))


def _cached(
    find: Callable[..., int | None], kind: str, *, lasting: bool = True
) -> Callable[..., Awaitable[int | None]]:
    """``find`` answered from the access cache when it can, in a worker thread when it must
    read the database; only what is found is kept (a run may yet be created)."""

    async def call(store: Store, access: Access, *args: Any) -> int | None:
        key = (kind, args)
        if access.warm(key):
            return access.lookup(key, lambda: None, lasting=lasting)

        def load() -> int | None:
            found = find(store, *args)
            if found is not None:
                access.lookup(key, lambda: found, lasting=lasting)
            return found

        return await run_in_threadpool(load)

    return call


_project = _cached(scopes.project_by_ref, "project-ref", lasting=False)
_run = _cached(scopes.project_of_run, "run")
_evaluation = _cached(scopes.project_of_evaluation, "evaluation")
_urn = _cached(scopes.project_of_urn, "urn")
_version = _cached(scopes.project_of_version, "version")


async def _hop(access: Access, key: tuple[str, object], fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` right here when the access cache answers it, else in a worker thread."""
    if access.warm(key):
        return fn(*args)
    return await run_in_threadpool(fn, *args)


def project_path(param: str = "ref") -> Scope:
    async def resolve(request: Request, store: Store, access: Access) -> list[int | None]:
        return [await _project(store, access, _path(request, param))]

    return Scope(f"project {{{param}}}", resolve)


def run_path(param: str = "run_id") -> Scope:
    async def resolve(request: Request, store: Store, access: Access) -> list[int | None]:
        return [await _run(store, access, _path(request, param))]

    return Scope(f"run {{{param}}}", resolve)


def evaluation_path(param: str = "evaluation_id") -> Scope:
    async def resolve(request: Request, store: Store, access: Access) -> list[int | None]:
        return [await _evaluation(store, access, _path(request, param))]

    return Scope(f"evaluation {{{param}}}", resolve)


def urn_path(param: str = "urn") -> Scope:
    async def resolve(request: Request, store: Store, access: Access) -> list[int | None]:
        return [await _urn(store, access, _path(request, param))]

    return Scope(f"entity {{{param}}}", resolve)


def version_path(model: str = "model", version: str = "version") -> Scope:
    async def resolve(request: Request, store: Store, access: Access) -> list[int | None]:
        number = _path(request, version)
        if not number.isdigit() or len(number) > 10:
            return [None]
        return [await _version(store, access, _path(request, model), int(number))]

    return Scope(f"model version {{{model}}}/{{{version}}}", resolve)


MAX_NAMED = 1000  # things one request may name in a repeated query parameter


def _query_values(request: Request, name: str) -> list[str]:
    """Every value of a repeated query parameter. More than ``MAX_NAMED`` is refused, not
    cut short: the routes read them all, so one left unchecked would be read unchecked."""
    values = request.query_params.getlist(name)
    if len(values) > MAX_NAMED:
        raise InvalidInput(f"a request may name at most {MAX_NAMED} things with ?{name}=")
    return values


def urn_query(param: str = "urn") -> Scope:
    """Every value of the parameter, not the first only: a route reading one value reads the
    last of them, so checking the first let ``?urn=<mine>&urn=<theirs>`` through."""

    async def resolve(request: Request, store: Store, access: Access) -> list[int | None]:
        return [await _urn(store, access, value) for value in _query_values(request, param)]

    return Scope(f"entity ?{param}=", resolve)


def runs_query(param: str) -> Scope:
    """Every run named by a repeated query parameter (a comparison)."""

    async def resolve(request: Request, store: Store, access: Access) -> list[int | None]:
        return [await _run(store, access, value) for value in _query_values(request, param)]

    return Scope(f"runs ?{param}=", resolve)


def evaluations_query(param: str) -> Scope:
    async def resolve(request: Request, store: Store, access: Access) -> list[int | None]:
        return [await _evaluation(store, access, v) for v in _query_values(request, param)]

    return Scope(f"evaluations ?{param}=", resolve)


async def _json_field(request: Request, name: str) -> Any:
    try:
        body = await request.json()
    except ValueError:
        return None
    return body.get(name) if isinstance(body, dict) else None


def project_body(field: str = "project", many: str | None = None) -> Scope:
    """The project(s) a JSON body names; a body naming none is site-wide (a search over what
    the caller may read). A project that does not exist yet is created by the write: CREATE."""

    async def resolve(request: Request, store: Store, access: Access) -> list[int | None]:
        names = [await _json_field(request, field)]
        if many is not None:
            more = await _json_field(request, many)
            names += more if isinstance(more, list) else []
        found = [await _project(store, access, n) for n in names if isinstance(n, str)]
        return found or [scopes.SITE]

    return Scope(f"project in the body's {field!r}", resolve, creates=True)


# --- declarations -----------------------------------------------------------------------


@dataclass(frozen=True)
class Permission:
    level: Level
    scope: Scope | None = None

    def describe(self) -> str:
        what = self.level.name.lower().replace("_", "-")
        return what if self.scope is None else f"{what} on {self.scope.describe}"


def allow(level: Level, on: Scope | None = None) -> Callable[[F], F]:
    """Declare what a route needs: ``@allow(Level.READ, on=run_path())`` under its
    ``@router.get``. Project levels (READ to OWN) need ``on``; site levels do not."""
    if (Level.READ <= level <= Level.OWN) != (on is not None):
        raise ValueError(f"{level.name} needs a scope exactly when it is a project level")

    def mark(endpoint: F) -> F:
        endpoint.permission = Permission(level, on)  # type: ignore[attr-defined]
        return endpoint

    return mark


def permission_of(route: Any) -> Permission | None:
    found = getattr(getattr(route, "endpoint", None), "permission", None)
    return found if isinstance(found, Permission) else None


# --- who is calling ---------------------------------------------------------------------


def team_mode(settings: Settings, access: Access) -> bool:
    return not settings.local_mode or access.users_exist()


def acts_locally(request: Request) -> bool:
    """An app an SDK client runs in-process on a data folder: no socket reaches it, and
    whoever opens the folder holds the whole database, so it acts for the local user."""
    return bool(getattr(request.app.state, "folder", False))


def _address(request: Request) -> str | None:
    return request.client.host if request.client else None


def _from_proxy(address: str | None, proxies: Sequence[str]) -> bool:
    if address is None:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(p, strict=False) for p in proxies)


async def identify(request: Request) -> Principal | None:
    """The principal of this request, or None when it names none. Credentials that are sent
    but not valid are a 401, never an anonymous request."""
    app = request.app
    settings: Settings = app.state.settings
    access: Access = app.state.access
    if acts_locally(request) or not await _hop(
        access, ("users", None), team_mode, settings, access
    ):
        return LOCAL_USER
    header = settings.proxy_user_header
    if header and header in request.headers:
        if not _from_proxy(_address(request), settings.trusted_proxies):
            raise Forbidden(
                f"the {header} header is only taken from the proxies in "
                "MODELYARD_TRUSTED_PROXIES; this request came from elsewhere"
            )
        identity = request.headers[header].strip()
        if not identity or len(identity) > MAX_IDENTITY or not identity.isprintable():
            raise Unauthenticated(
                f"the proxy's {header} header must name a user in 1 to {MAX_IDENTITY} "
                "printable characters"
            )
        return await run_in_threadpool(
            access.proxy_user, identity, default_group=settings.proxy_default_group
        )
    auth = request.headers.get("authorization")
    if auth is not None:
        kind, _, credential = auth.partition(" ")
        if kind.lower() != "bearer" or not credential.strip():
            raise Unauthenticated("send an API token as 'Authorization: Bearer <token>'")
        parts = split_token(credential.strip())
        key = ("token", parts[0] if parts else None)
        return await _hop(access, key, access.token, credential.strip())
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        secret = unsign(settings, cookie)
        if secret is None:
            raise Unauthenticated("your session cookie is not valid here; sign in again")
        return await _hop(access, ("session", session_digest(secret)), access.session, secret)
    return None


def sign(settings: Settings, value: str) -> str:
    mac = hmac.new(settings.secret_key.encode(), value.encode(), hashlib.sha256).hexdigest()
    return f"{value}.{mac}"


def unsign(settings: Settings, signed: str) -> str | None:
    value, _, mac = signed.rpartition(".")
    good = hmac.new(settings.secret_key.encode(), value.encode(), hashlib.sha256).hexdigest()
    return value if value and hmac.compare_digest(mac, good) else None


def _csrf_binding(request: Request) -> str | None:
    principal: Principal | None = getattr(request.state, "principal", None)
    if principal is not None and principal.session is not None:
        return principal.session
    cookie = request.cookies.get(CSRF_COOKIE) or getattr(request.state, "csrf_cookie", None)
    return str(cookie) if cookie else None


def csrf_token(settings: Settings, request: Request) -> str:
    """The token a page puts in its forms and htmx requests: bound to the session, or (when
    no one signs in) to the browser's CSRF cookie; empty when there is neither."""
    binding = _csrf_binding(request)
    if binding is None:
        return ""
    mac = hmac.new(settings.secret_key.encode(), f"csrf:{binding}".encode(), hashlib.sha256)
    return mac.hexdigest()


BROWSER_HEADERS = ("origin", "sec-fetch-site", "sec-fetch-mode")


def _listed_origin(request: Request, settings: Settings) -> bool:
    """A page of an origin listed in MODELYARD_ALLOWED_ORIGINS (a notebook server, say) has
    no page of ours to take a token from; the browser's Origin header, checked first by
    :func:`modelyard.guards.refuse_cross_site`, is what vouches for it."""
    origin = request.headers.get("origin")
    try:
        return origin is not None and web_origin(origin) in settings.allowed_origins
    except ValueError:
        return False


async def _refuse_forged(request: Request, settings: Settings, principal: Principal) -> None:
    """A write from a browser, or signed in by a session cookie, must carry the page's CSRF
    token (header or form field). A Bearer token is no credential a browser sends by itself,
    so requests signed in by one need none."""
    if request.method not in WRITES or principal.token_id is not None:
        return
    browser = principal.session is not None or any(h in request.headers for h in BROWSER_HEADERS)
    if not browser or _listed_origin(request, settings):
        return
    sent = request.headers.get(CSRF_HEADER)
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if sent is None and kind in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.form()
        value = form.get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    expected = csrf_token(settings, request)
    if not sent or not expected or not hmac.compare_digest(sent, expected):
        raise Forbidden(
            f"{request.method} {request.url.path} came without this page's CSRF token; "
            "reload the page and try again"
        )


# --- the check ----------------------------------------------------------------------------


def _needed(permission: Permission | None) -> Permission:
    return permission if permission is not None else Permission(Level.ADMIN)


async def authorize(request: Request) -> None:
    """The one check every route passes: resolve the principal, check the route's declared
    permission, and record both on ``request.state`` for the route."""
    app = request.app
    settings: Settings = app.state.settings
    access: Access = app.state.access
    request.state.csrf_cookie = None
    route = request.scope.get("route")
    if getattr(route, "is_fallback", False):  # 404/405/OPTIONS answers: nothing to guard
        request.state.principal = None
        return
    need = _needed(permission_of(route))
    request.state.principal = None
    if need.level == Level.PUBLIC:
        # Open to anyone: credentials that no longer hold (an ended session's cookie) must not
        # keep anyone from the sign-in page.
        with suppress(Unauthenticated):
            request.state.principal = await identify(request)
        return
    principal = await identify(request)
    request.state.principal = principal
    if principal is None:
        raise Unauthenticated(
            "sign in, or send an API token as 'Authorization: Bearer <token>'",
            details={"sign_in": "/sign-in"},
        )
    await _refuse_forged(request, settings, principal)
    if principal.read_only and need.level not in READ_ONLY_LEVELS:
        raise Forbidden(
            f"{request.method} {request.url.path} changes things; this token is read-only"
        )
    if principal.admin:
        return
    level = need.level
    if level == Level.ADMIN:
        raise Forbidden(f"{request.method} {request.url.path} is for site admins")
    if level in (Level.SIGNED_IN, Level.CREATE):
        return
    assert need.scope is not None
    roles = await _hop(access, ("roles", principal.account_id), access.roles, principal)
    for project_id in await need.scope.resolve(request, app.state.store, access):
        if project_id is None:
            if need.scope.creates and level >= Level.WRITE:
                continue  # a new project, which the write makes
            # Not there: answered like a thing the caller may not see, so that a 404 does not
            # tell them which of the two it is.
            raise NotFound(f"there is nothing at {request.url.path} that you may see")
        if project_id == scopes.PEOPLE:
            raise NotFound(f"there is nothing at {request.url.path} that you may see")
        if project_id == scopes.SITE:
            if SITE_LEVEL.get(level) is None:
                raise Forbidden(f"{request.method} {request.url.path} is for site admins")
            continue
        role = roles.role(project_id)
        if role is None or ROLE_LEVEL[role] < level:
            roles = await run_in_threadpool(partial(access.roles, principal, fresh=True))
            role = roles.role(project_id)
        if role is None:
            raise NotFound(f"there is nothing at {request.url.path} that you may see")
        if ROLE_LEVEL[role] < level:
            raise Forbidden(
                f"{request.method} {request.url.path} needs the {LEVEL_ROLE[level]} role in "
                f"this project; you are a {role}"
            )


def readable_projects(request: Request) -> frozenset[int] | None:
    """The projects the caller may read; None for every project (site admins, local mode)."""
    principal: Principal | None = getattr(request.state, "principal", None)
    if principal is None:
        return frozenset()
    if principal.admin:
        return None
    access: Access = request.app.state.access
    return access.roles(principal).readable


def role_in(request: Request, project_id: int) -> str | None:
    """The caller's role in a project ("owner" for site admins and the local user)."""
    principal: Principal | None = getattr(request.state, "principal", None)
    if principal is None:
        return None
    if principal.admin:
        return "owner"
    access: Access = request.app.state.access
    return access.roles(principal).role(project_id)


def may(request: Request, level: Level, project_id: int | None = None) -> bool:
    """Whether the caller may act at ``level`` (on ``project_id`` for project levels): for
    pages, which show only the actions the user may take."""
    principal: Principal | None = getattr(request.state, "principal", None)
    if principal is None:
        return level == Level.PUBLIC
    if principal.read_only and level not in READ_ONLY_LEVELS:
        return False
    if principal.admin or level <= Level.CREATE:
        return True
    if level == Level.ADMIN or project_id is None:
        return False
    role = role_in(request, project_id)
    return role is not None and ROLE_LEVEL[role] >= level
