"""Pages for people and access: site admins manage users, groups and every API token; each
user manages their own password and tokens on /me; a project's owners manage its members.

Each write is one form POST carrying the page's CSRF token and one service call: when it
works the browser is sent back to the page (303, so a reload does not post again); when the
service refuses it, the same page shows the service's message with its 4xx status and
nothing has changed. A new token's secret is the exception: it is shown once, on the answer
to the POST that made it, and never again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from modelyard.api.deps import Actor, CurrentUser, StoreDep
from modelyard.authz import Level, allow, may, project_path
from modelyard.errors import InvalidInput, ModelyardError
from modelyard.metadata.store import Store, now_ms
from modelyard.services.access import accounts, scopes
from modelyard.services.access.accounts import NewToken
from modelyard.services.access.principals import Principal
from modelyard.web.templating import render

router = APIRouter()

Text = Annotated[str, Form(max_length=1024)]
Flag = Annotated[bool, Form()]
# A new secret must not linger in a shared cache or the browser's back-forward cache.
NO_STORE = {"Cache-Control": "no-store"}

# The page's CSRF token, read by authz before the route runs; declared so that a form with
# no other field is still a form body this route takes.
CsrfField = Annotated[str, Form(max_length=200)]

Page = Callable[[str | None, int], HTMLResponse]


def done_or(page: Page, back: str, work: Callable[[], object]) -> Response:
    """Run one service call: back to ``back`` (303) when it worked, else ``page`` again with
    the service's message and status."""
    try:
        work()
    except ModelyardError as exc:
        return page(exc.message, exc.status)
    return RedirectResponse(back, status_code=303)


def expiry_days(text: str) -> float | None:
    """The expiry box: empty for a token that never expires, else a number of days."""
    if not text.strip():
        return None
    try:
        return float(text)
    except ValueError:
        raise InvalidInput(f"{text[:40]!r} is not a number of days") from None


def member_names(text: str) -> list[str]:
    """A group's members as typed: names separated by commas, spaces or new lines."""
    return [name for name in text.replace(",", " ").split() if name]


# --- /admin/users -------------------------------------------------------------------------


def admin_page(
    request: Request,
    tab: str,
    listed: dict[str, Any],
    error: str | None,
    status: int,
    headers: dict[str, str] | None = None,
    **form: Any,
) -> HTMLResponse:
    """One of the site admin's tabs (its template is admin_<tab>.html): what it lists, and
    what went wrong with the form sent, filled in again."""
    context = {"nav": "admin", "tab": tab, **listed, "error": error, "form": form}
    return render(request, f"admin_{tab}.html", context, status=status, headers=headers)


def users_page(
    request: Request, store: Store, error: str | None = None, status: int = 200, **form: Any
) -> HTMLResponse:
    listed = {"users": accounts.list_users(store)}
    return admin_page(request, "users", listed, error, status, **form)


@router.get("/admin/users", response_class=HTMLResponse)
@allow(Level.ADMIN)
def admin_users(request: Request, store: StoreDep) -> HTMLResponse:
    """Every user and service account, with what a site admin may change about each."""
    return users_page(request, store)


@router.post("/admin/users", response_class=HTMLResponse)
@allow(Level.ADMIN)
def add_user(
    request: Request,
    store: StoreDep,
    actor: Actor,
    name: Text = "",
    display_name: Text = "",
    email: Text = "",
    password: Text = "",
    admin: Flag = False,
    service: Flag = False,
) -> Response:
    """A new user who signs in with a password, or a service account that acts through
    tokens only."""
    fields: dict[str, Any] = {"name": name.strip(), "display_name": display_name.strip()}
    fields |= {"email": email.strip() or None, "admin": admin, "service": service}
    return done_or(
        # The form comes back filled in (but for the password) when the user was refused.
        lambda error, status: users_page(request, store, error, status, **fields),
        "/admin/users",
        lambda: accounts.add_user(
            store, actor=actor, password=None if service else password, **fields
        ),
    )


@router.post("/admin/users/{name}", response_class=HTMLResponse)
@allow(Level.ADMIN)
def update_user(
    request: Request,
    store: StoreDep,
    actor: Actor,
    name: str,
    admin: Annotated[bool | None, Form()] = None,
    disabled: Annotated[bool | None, Form()] = None,
) -> Response:
    """Make a user a site admin or not, disable or enable them (disabling ends their
    sessions and stops their tokens)."""
    return done_or(
        lambda error, status: users_page(request, store, error, status),
        "/admin/users",
        lambda: accounts.update_user(store, name=name, actor=actor, admin=admin, disabled=disabled),
    )


@router.post("/admin/users/{name}/password", response_class=HTMLResponse)
@allow(Level.ADMIN)
def reset_password(
    request: Request, store: StoreDep, actor: Actor, name: str, password: Text = ""
) -> Response:
    """A new password for a user; every session they had ends."""
    return done_or(
        lambda error, status: users_page(request, store, error, status),
        "/admin/users",
        lambda: accounts.set_password(store, name=name, password=password, actor=actor),
    )


# --- /admin/groups ------------------------------------------------------------------------


def groups_page(
    request: Request, store: Store, error: str | None = None, status: int = 200, **form: Any
) -> HTMLResponse:
    listed = {"groups": accounts.list_groups(store)}
    return admin_page(request, "groups", listed, error, status, **form)


@router.get("/admin/groups", response_class=HTMLResponse)
@allow(Level.ADMIN)
def admin_groups(request: Request, store: StoreDep) -> HTMLResponse:
    """Every group and its members."""
    return groups_page(request, store)


@router.post("/admin/groups", response_class=HTMLResponse)
@allow(Level.ADMIN)
def set_group(
    request: Request, store: StoreDep, actor: Actor, name: Text = "", members: Text = ""
) -> Response:
    """Create a group, or replace the members of one, with the names typed."""
    return done_or(
        lambda error, status: groups_page(
            request, store, error, status, name=name, members=members
        ),
        "/admin/groups",
        lambda: accounts.set_group(
            store, name=name.strip(), users=member_names(members), actor=actor
        ),
    )


# --- /admin/tokens ------------------------------------------------------------------------


def tokens_page(
    request: Request,
    store: Store,
    error: str | None = None,
    status: int = 200,
    new_token: NewToken | None = None,
    **form: Any,
) -> HTMLResponse:
    listed = {
        "tokens": accounts.list_tokens(store),
        "users": [u for u in accounts.list_users(store) if not u.disabled],
        "new_token": new_token,
        "now": now_ms(),
    }
    return admin_page(request, "tokens", listed, error, status, headers=NO_STORE, **form)


@router.get("/admin/tokens", response_class=HTMLResponse)
@allow(Level.ADMIN)
def admin_tokens(request: Request, store: StoreDep) -> HTMLResponse:
    """Every API token of every user, newest last, with revoke buttons."""
    return tokens_page(request, store)


@router.post("/admin/tokens", response_class=HTMLResponse)
@allow(Level.ADMIN)
def create_token(
    request: Request,
    store: StoreDep,
    actor: Actor,
    user: Text = "",
    name: Text = "",
    expires_in_days: Text = "",
    read_only: Flag = False,
) -> HTMLResponse:
    """A token for any user (a service account's for CI): its secret is on this answer and
    nowhere else."""
    form: dict[str, Any] = {"user": user, "name": name, "expires_in_days": expires_in_days}
    form["read_only"] = read_only
    try:
        made = accounts.create_token(
            store, user=user, name=name.strip(), actor=actor,
            expires_in_days=expiry_days(expires_in_days), read_only=read_only,
        )  # fmt: skip
    except ModelyardError as exc:
        return tokens_page(request, store, exc.message, exc.status, **form)
    return tokens_page(request, store, new_token=made)


@router.post("/admin/tokens/{token_id}/revoke", response_class=HTMLResponse)
@allow(Level.ADMIN)
def revoke_token(
    request: Request, store: StoreDep, actor: Actor, token_id: int, csrf_token: CsrfField = ""
) -> Response:
    """Revoke a token: requests sending it are refused from now on."""
    return done_or(
        lambda error, status: tokens_page(request, store, error, status),
        "/admin/tokens",
        lambda: accounts.revoke_token(store, token_id=token_id, actor=actor),
    )


# --- /me ----------------------------------------------------------------------------------


def me_page(
    request: Request,
    store: Store,
    me: Principal,
    error: str | None = None,
    status: int = 200,
    new_token: NewToken | None = None,
) -> HTMLResponse:
    """Your profile and tokens; the implicit user of local mode has no account to show."""
    context: dict[str, Any] = {"error": error, "new_token": new_token, "now": now_ms()}
    if not me.implicit:
        context["user"] = accounts.get_user(store, name=me.name)
        context["tokens"] = accounts.list_tokens(store, user=me.name)
    return render(request, "me.html", context, status=status, headers=NO_STORE)


@router.get("/me", response_class=HTMLResponse)
@allow(Level.SIGNED_IN)
def my_account(request: Request, store: StoreDep, me: CurrentUser) -> HTMLResponse:
    """Your profile, your password and your API tokens."""
    return me_page(request, store, me)


@router.post("/me/password", response_class=HTMLResponse)
@allow(Level.CREATE)
def change_password(
    request: Request,
    store: StoreDep,
    me: CurrentUser,
    actor: Actor,
    current_password: Text = "",
    new_password: Text = "",
) -> Response:
    """A new password, given the current one; your other sessions end, this one goes on."""
    return done_or(
        lambda error, status: me_page(request, store, me, error, status),
        "/me",
        lambda: accounts.change_own_password(
            store,
            name=me.name,
            current=current_password,
            new=new_password,
            keep_session=me.session,
            actor=actor,
        ),
    )


@router.post("/me/tokens", response_class=HTMLResponse)
@allow(Level.CREATE)
def create_my_token(
    request: Request,
    store: StoreDep,
    me: CurrentUser,
    actor: Actor,
    name: Text = "",
    expires_in_days: Text = "",
    read_only: Flag = False,
) -> HTMLResponse:
    """A token of your own (for the SDK, a notebook, CI): its secret is shown here once."""
    try:
        made = accounts.create_token(
            store, user=me.name, name=name.strip(), actor=actor,
            expires_in_days=expiry_days(expires_in_days), read_only=read_only,
        )  # fmt: skip
    except ModelyardError as exc:
        return me_page(request, store, me, exc.message, exc.status)
    return me_page(request, store, me, new_token=made)


@router.post("/me/tokens/{token_id}/revoke", response_class=HTMLResponse)
@allow(Level.CREATE)
def revoke_my_token(
    request: Request,
    store: StoreDep,
    me: CurrentUser,
    actor: Actor,
    token_id: int,
    csrf_token: CsrfField = "",
) -> Response:
    """Revoke one of your own tokens."""
    return done_or(
        lambda error, status: me_page(request, store, me, error, status),
        "/me",
        lambda: accounts.revoke_own_token(store, user=me.name, token_id=token_id, actor=actor),
    )


# --- /members/{project} -------------------------------------------------------------------
# Not under /projects/, whose {ref:path} route takes every path below it. The writes have
# their own prefixes for the same reason: a project's name may hold a slash.


def members_url(ref: str) -> str:
    return "/members/" + quote(ref, safe="/")


def members_page(
    request: Request, store: Store, ref: str, error: str | None = None, status: int = 200
) -> HTMLResponse:
    found = accounts.project_members(store, project=ref)
    project_id = scopes.project_by_ref(store, found.project)
    context = {
        "nav": "projects",
        "project": found,
        "may_own": project_id is not None and may(request, Level.OWN, project_id),
        "roles": accounts.ROLES,
        "error": error,
    }
    return render(request, "members.html", context, status=status)


@router.get("/members/{ref:path}", response_class=HTMLResponse)
@allow(Level.READ, on=project_path("ref"))
def project_members(request: Request, store: StoreDep, ref: str) -> HTMLResponse:
    """Who may do what in a project; its owners also see the forms that change it."""
    return members_page(request, store, ref)


@router.post("/members/{ref:path}", response_class=HTMLResponse)
@allow(Level.OWN, on=project_path("ref"))
def set_member(
    request: Request,
    store: StoreDep,
    actor: Actor,
    ref: str,
    kind: Text = "user",
    name: Text = "",
    role: Text = "",
) -> Response:
    """Give a user or group a role in the project, change it, or (no role) remove it."""
    return done_or(
        lambda error, status: members_page(request, store, ref, error, status),
        members_url(ref),
        lambda: accounts.set_member(
            store, project=ref, kind=kind, name=name.strip(), role=role or None, actor=actor
        ),
    )


@router.post("/project-visibility/{ref:path}", response_class=HTMLResponse)
@allow(Level.OWN, on=project_path("ref"))
def set_internal(
    request: Request, store: StoreDep, actor: Actor, ref: str, internal: Flag = False
) -> Response:
    """Make the project internal (every signed-in user may read it) or members-only."""
    return done_or(
        lambda error, status: members_page(request, store, ref, error, status),
        members_url(ref),
        lambda: accounts.set_internal(store, project=ref, internal=internal, actor=actor),
    )
