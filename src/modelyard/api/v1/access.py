"""Users, API tokens and project members: who may do what, managed over the API.

Site admins manage users; everyone signed in manages their own tokens; a project's owners
manage its members. Each change is one transaction of the access services (which keep the
audit trail); this process forgets what it cached at once, the others within a second.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request

from modelyard.api.deps import Actor, CurrentUser, StoreDep
from modelyard.authz import Level, allow, project_path
from modelyard.errors import Conflict, Forbidden, NotFound
from modelyard.limits import INT64_MAX
from modelyard.schemas import (
    InternalSet,
    MemberSet,
    MePublic,
    ProjectMembersPublic,
    TokenCreate,
    TokenCreated,
    TokenPublic,
    UserCreate,
    UserName,
    UserPublic,
    UserUpdate,
)
from modelyard.services.access import accounts
from modelyard.services.access.principals import Access, Principal

router = APIRouter(tags=["access"])


def _forget(request: Request) -> None:
    """This process sees its own change at once (others within the cache's second)."""
    access: Access = request.app.state.access
    access.forget()


def _user(info: accounts.UserInfo) -> UserPublic:
    return UserPublic.model_validate(info, from_attributes=True)


def _token(info: accounts.TokenInfo) -> TokenPublic:
    return TokenPublic.model_validate(info, from_attributes=True)


def _members(found: accounts.ProjectMembers) -> ProjectMembersPublic:
    return ProjectMembersPublic.model_validate(
        {
            "project": found.project,
            "internal": found.internal,
            "members": [m.model_dump() for m in found.members],
        }
    )


# --- users -------------------------------------------------------------------------------


@router.get("/users")
@allow(Level.ADMIN)
def list_users(store: StoreDep) -> list[UserPublic]:
    return [_user(u) for u in accounts.list_users(store)]


@router.post("/users", status_code=201)
@allow(Level.ADMIN)
def create_user(
    body: UserCreate, request: Request, store: StoreDep, actor: Actor, me: CurrentUser
) -> UserPublic:
    """Add a user (or a service account, which has no password and acts through tokens).
    The first user of a local-mode server puts it in team mode, so it must be a site admin
    who can sign in: else no one could manage the others."""
    first = me.implicit and accounts.count_users(store)[0] == 0
    if first and not (body.admin and body.password):
        raise Conflict(
            "the first user turns this server to team mode, where everyone signs in: make "
            "it a site admin with a password, so someone can manage the others"
        )
    made = accounts.add_user(store, actor=actor, **body.model_dump())
    _forget(request)
    return _user(made)


@router.patch("/users/{name}")
@allow(Level.ADMIN)
def update_user(
    name: str, body: UserUpdate, request: Request, store: StoreDep, actor: Actor
) -> UserPublic:
    """Change a user's display name, e-mail or flags; disabling ends their sessions and stops
    their tokens."""
    changed = accounts.update_user(store, name=name, actor=actor, **body.model_dump())
    _forget(request)
    return _user(changed)


@router.get("/me")
@allow(Level.SIGNED_IN)
def who_am_i(me: CurrentUser) -> MePublic:
    via = me.via or ("session" if me.session is not None else None)
    return MePublic(
        name=me.name,
        display_name=me.display_name or me.name,
        admin=me.admin,
        read_only=me.read_only,
        via=via,
        local=me.implicit,
    )


# --- tokens ------------------------------------------------------------------------------


def _whose(me: Principal, user: str | None, doing: str) -> str:
    """The user a token request is about: yourself, or anyone for a site admin."""
    if user is None or user == me.name:
        if me.implicit:
            raise Conflict(
                f"the implicit user of local mode has no tokens and needs none; to {doing} a "
                "user's tokens, name the user (create users with `modelyard users add`)"
            )
        return me.name
    if not me.admin:
        raise Forbidden(f"only site admins may {doing} another user's tokens")
    return user


@router.get("/tokens")
@allow(Level.SIGNED_IN)
def list_tokens(
    store: StoreDep,
    me: CurrentUser,
    user: Annotated[UserName | None, Query(description="Whose tokens (site admins)")] = None,
) -> list[TokenPublic]:
    """Your tokens (never their secrets); a site admin may name another user."""
    if me.implicit and user is None:
        return []
    whose = _whose(me, user, "list")
    accounts.get_user(store, name=whose)
    return [_token(k) for k in accounts.list_tokens(store, user=whose)]


@router.post("/tokens", status_code=201)
@allow(Level.SIGNED_IN)
def create_token(body: TokenCreate, store: StoreDep, actor: Actor, me: CurrentUser) -> TokenCreated:
    """A token for yourself (site admins: for any user, e.g. a service account). Its secret is
    in this answer only; the server keeps a salted digest."""
    whose = _whose(me, body.user, "create")
    made = accounts.create_token(
        store,
        user=whose,
        name=body.name,
        actor=actor,
        expires_in_days=body.expires_in_days,
        read_only=body.read_only,
    )
    return TokenCreated.model_validate({**_token(made.info).model_dump(), "secret": made.secret})


@router.delete("/tokens/{token_id}")
@allow(Level.SIGNED_IN)
def revoke_token(
    token_id: Annotated[int, Path(ge=1, le=INT64_MAX)],
    request: Request,
    store: StoreDep,
    actor: Actor,
    me: CurrentUser,
) -> TokenPublic:
    """Revoke one of your tokens (site admins: anyone's); every server refuses it within a
    second. Another user's token is not found, as if it were not there."""
    owner = accounts.token_owner(store, token_id=token_id)
    if owner != me.name and not me.admin:
        raise NotFound(f"there is no token #{token_id}")
    revoked = accounts.revoke_token(store, token_id=token_id, actor=actor)
    _forget(request)
    return _token(revoked)


# --- project members -----------------------------------------------------------------------


@router.get("/projects/{ref}/members")
@allow(Level.READ, on=project_path())
def list_members(ref: str, store: StoreDep) -> ProjectMembersPublic:
    return _members(accounts.project_members(store, project=ref))


@router.put("/projects/{ref}/members")
@allow(Level.OWN, on=project_path())
def set_member(
    ref: str, body: MemberSet, request: Request, store: StoreDep, actor: Actor
) -> ProjectMembersPublic:
    """Give a user or group a role in the project, or change it."""
    found = accounts.set_member(
        store, project=ref, kind=body.kind, name=body.name, role=body.role, actor=actor
    )
    _forget(request)
    return _members(found)


@router.delete("/projects/{ref}/members/{kind}/{name}")
@allow(Level.OWN, on=project_path())
def remove_member(
    ref: str,
    kind: Literal["user", "group"],
    name: str,
    request: Request,
    store: StoreDep,
    actor: Actor,
) -> ProjectMembersPublic:
    """Take a user's or group's role in the project away."""
    found = accounts.set_member(store, project=ref, kind=kind, name=name, role=None, actor=actor)
    _forget(request)
    return _members(found)


@router.put("/projects/{ref}/internal")
@allow(Level.OWN, on=project_path())
def set_internal(
    ref: str, body: InternalSet, request: Request, store: StoreDep, actor: Actor
) -> ProjectMembersPublic:
    """Make the project internal (every signed-in user may read it) or members-only."""
    found = accounts.set_internal(store, project=ref, internal=body.internal, actor=actor)
    _forget(request)
    return _members(found)
