"""Users, groups, project members and API tokens: every change is a versioned aspect write
(the audit trail) and an update of the access tables the requests are checked against, in one
transaction."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Connection, delete, func, select, update

from modelyard.errors import Conflict, InvalidInput, NotFound
from modelyard.metadata import tables as t
from modelyard.metadata.aspects import (
    GroupMembers,
    Member,
    TokenProperties,
    UserPassword,
    UserProperties,
)
from modelyard.metadata.store import Store, Tx
from modelyard.metadata.urn import make_urn, user_urn
from modelyard.services.access.membership import is_internal, members, record_access
from modelyard.services.access.passwords import hash_password, verify_password
from modelyard.services.projects import project_row

Role = Literal["viewer", "editor", "reviewer", "owner"]
ROLES: tuple[Role, ...] = ("viewer", "editor", "reviewer", "owner")
USERNAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]{1,255}")
TOKEN_PREFIX = "myd_"
MIN_PASSWORD = 8
MAX_PASSWORD = 1024
MAX_TOKEN_DAYS = 3650


def check_username(name: str, what: str = "user name") -> str:
    if not USERNAME.fullmatch(name):
        raise InvalidInput(
            f"{name[:80]!r} is not a valid {what}: use 1 to 64 lower-case letters, digits, "
            "'.', '_' or '-', starting with a letter or digit"
        )
    return name


def check_password(password: str) -> str:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise InvalidInput(
            f"a password needs {MIN_PASSWORD} to {MAX_PASSWORD} characters "
            f"(this one has {len(password)})"
        )
    return password


def check_role(role: str) -> Role:
    for known in ROLES:
        if role == known:
            return known
    raise InvalidInput(f"{role[:40]!r} is not a role; roles are {', '.join(ROLES)}")


@dataclass(frozen=True, slots=True)
class UserInfo:
    id: int
    name: str
    display_name: str
    email: str | None
    admin: bool
    service: bool
    disabled: bool
    created_at: int
    can_sign_in: bool  # has a password


def _user_info(row: Any) -> UserInfo:
    return UserInfo(
        id=row.id,
        name=row.name,
        display_name=row.display_name,
        email=row.email,
        admin=row.is_admin,
        service=row.is_service,
        disabled=row.disabled,
        created_at=row.created_at,
        can_sign_in=row.password_hash is not None,
    )


def account_row(conn: Connection, name: str) -> Any:
    row = conn.execute(select(t.account).where(t.account.c.name == name)).first()
    if row is None:
        raise NotFound(f"there is no user {name[:80]!r}")
    return row


def _put_user(tx: Tx, row: Any, **changes: Any) -> None:
    merged = {**row._mapping, **changes}
    tx.conn.execute(update(t.account).where(t.account.c.id == row.id).values(**changes))
    tx.ensure_entity(user_urn(row.name))
    tx.put_aspect(
        user_urn(row.name),
        UserProperties(
            display_name=merged["display_name"],
            email=merged["email"],
            admin=merged["is_admin"],
            service=merged["is_service"],
            disabled=merged["disabled"],
        ),
    )


def add_user_tx(
    tx: Tx,
    *,
    name: str,
    display_name: str = "",
    email: str | None = None,
    password: str | None = None,
    admin: bool = False,
    service: bool = False,
) -> int:
    check_username(name)
    if email is not None and not EMAIL.fullmatch(email):
        raise InvalidInput(f"{email[:80]!r} is not an e-mail address")
    if service and password is not None:
        raise InvalidInput("a service account acts through tokens only; give it no password")
    exists = tx.conn.execute(select(t.account.c.id).where(t.account.c.name == name)).first()
    if exists is not None:
        raise Conflict(f"there is already a user {name!r}")
    digest = hash_password(check_password(password)) if password is not None else None
    row = {
        "name": name,
        "display_name": display_name or name,
        "email": email,
        "password_hash": digest,
        "is_admin": admin,
        "is_service": service,
        "disabled": False,
        "created_at": tx.now,
        "created_by": tx.actor,
        "sessions_valid_after": 0,
    }
    account_id = int(
        tx.conn.execute(t.account.insert().values(**row).returning(t.account.c.id)).scalar_one()
    )
    tx.ensure_entity(user_urn(name))
    tx.put_aspect(
        user_urn(name),
        UserProperties(display_name=row["display_name"], email=email, admin=admin, service=service),
    )
    if digest is not None:
        tx.put_aspect(user_urn(name), UserPassword(changed_at=tx.now))
    return account_id


def add_user(store: Store, *, actor: str, **fields: Any) -> UserInfo:
    def work(tx: Tx) -> UserInfo:
        add_user_tx(tx, **fields)
        return _user_info(account_row(tx.conn, fields["name"]))

    return store.transact(work, actor=actor)


def update_user(
    store: Store,
    *,
    name: str,
    actor: str,
    display_name: str | None = None,
    email: str | None = None,
    admin: bool | None = None,
    disabled: bool | None = None,
) -> UserInfo:
    """Change a user's profile or flags; disabling one also ends their sessions."""

    def work(tx: Tx) -> UserInfo:
        row = account_row(tx.conn, name)
        changes: dict[str, Any] = {}
        if display_name is not None:
            changes["display_name"] = display_name or name
        if email is not None:
            if email and not EMAIL.fullmatch(email):
                raise InvalidInput(f"{email[:80]!r} is not an e-mail address")
            changes["email"] = email or None
        if admin is not None:
            changes["is_admin"] = admin
        if disabled is not None:
            changes["disabled"] = disabled
            if disabled:
                changes["sessions_valid_after"] = tx.now
        if row.is_admin and not row.disabled and (admin is False or disabled is True):
            _refuse_last_admin(tx, row)
        if changes:
            _put_user(tx, row, **changes)
        return _user_info(account_row(tx.conn, name))

    return store.transact(work, actor=actor)


def _refuse_last_admin(tx: Tx, row: Any) -> None:
    """Someone must stay able to manage the site: the last enabled site admin is neither
    demoted nor disabled (admins are locked first, so two doing it at once cannot both)."""
    acting = (t.account.c.is_admin.is_(True), t.account.c.disabled.is_(False))
    tx.lock(t.account, *acting)
    others = tx.conn.execute(
        select(func.count()).select_from(t.account).where(*acting, t.account.c.id != row.id)
    ).scalar_one()
    if not others:
        raise Conflict(
            f"{row.name!r} is the last site admin; make another user a site admin first, "
            "so that someone can still manage users"
        )


def set_password(store: Store, *, name: str, password: str, actor: str) -> None:
    """A new password; every session of the user signed in before it ends."""
    digest = hash_password(check_password(password))

    def work(tx: Tx) -> None:
        row = account_row(tx.conn, name)
        if row.is_service:
            raise InvalidInput("a service account acts through tokens only; it has no password")
        tx.conn.execute(
            update(t.account)
            .where(t.account.c.id == row.id)
            .values(password_hash=digest, sessions_valid_after=tx.now)
        )
        tx.conn.execute(
            update(t.web_session)
            .where(t.web_session.c.account_id == row.id, t.web_session.c.revoked_at.is_(None))
            .values(revoked_at=tx.now)
        )
        tx.put_aspect(user_urn(name), UserPassword(changed_at=tx.now))

    store.transact(work, actor=actor)


def list_users(store: Store) -> list[UserInfo]:
    with store.read() as conn:
        rows = conn.execute(select(t.account).order_by(t.account.c.name)).all()
    return [_user_info(r) for r in rows]


def get_user(store: Store, *, name: str) -> UserInfo:
    with store.read() as conn:
        return _user_info(account_row(conn, name))


def count_users(store: Store) -> tuple[int, int]:
    """How many users there are, and how many enabled site admins."""
    with store.read() as conn:
        users = conn.execute(select(func.count()).select_from(t.account)).scalar_one()
        admins = conn.execute(
            select(func.count())
            .select_from(t.account)
            .where(t.account.c.is_admin, t.account.c.disabled.is_(False))
        ).scalar_one()
    return int(users), int(admins)


# --- groups -------------------------------------------------------------------------------


def group_row(conn: Connection, name: str) -> Any:
    row = conn.execute(select(t.account_group).where(t.account_group.c.name == name)).first()
    if row is None:
        raise NotFound(f"there is no group {name[:80]!r}")
    return row


def set_group(store: Store, *, name: str, users: list[str], actor: str) -> list[str]:
    """Create the group if new and make ``users`` its members (the whole list)."""
    check_username(name, "group name")

    def work(tx: Tx) -> list[str]:
        found = tx.conn.execute(
            select(t.account_group.c.id).where(t.account_group.c.name == name)
        ).scalar()
        if found is None:
            found = tx.conn.execute(
                t.account_group.insert()
                .values(name=name, created_at=tx.now)
                .returning(t.account_group.c.id)
            ).scalar_one()
        ids = [account_row(tx.conn, user).id for user in users]
        tx.conn.execute(delete(t.group_member).where(t.group_member.c.group_id == found))
        if ids:
            tx.conn.execute(
                t.group_member.insert(),
                [{"group_id": found, "account_id": i} for i in sorted(set(ids))],
            )
        urn = make_urn("group", name)
        tx.ensure_entity(urn)
        tx.put_aspect(urn, GroupMembers(users=sorted(set(users))))
        return sorted(set(users))

    return store.transact(work, actor=actor)


def list_groups(store: Store) -> dict[str, list[str]]:
    with store.read() as conn:
        rows = conn.execute(
            select(t.account_group.c.name, t.account.c.name.label("user"))
            .select_from(t.account_group)
            .outerjoin(t.group_member, t.group_member.c.group_id == t.account_group.c.id)
            .outerjoin(t.account, t.account.c.id == t.group_member.c.account_id)
            .order_by(t.account_group.c.name, t.account.c.name)
        ).all()
    groups: dict[str, list[str]] = {}
    for group, user in rows:
        groups.setdefault(group, [])
        if user is not None:
            groups[group].append(user)
    return groups


# --- project members ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProjectMembers:
    project: str
    internal: bool
    members: list[Member]


def _principal_id(conn: Connection, kind: str, name: str) -> int:
    if kind == "user":
        return int(account_row(conn, name).id)
    if kind == "group":
        return int(group_row(conn, name).id)
    raise InvalidInput(f"{kind[:20]!r} is not a kind of member; members are users or groups")


def set_member(
    store: Store, *, project: str, kind: str, name: str, role: str | None, actor: str
) -> ProjectMembers:
    """Give a user or group a role in a project, change it, or (``role=None``) remove it."""

    def work(tx: Tx) -> ProjectMembers:
        row = project_row(tx.conn, project)
        principal = _principal_id(tx.conn, kind, name)
        key = (
            t.project_member.c.project_id == row.id,
            t.project_member.c.kind == kind,
            t.project_member.c.principal_id == principal,
        )
        tx.conn.execute(delete(t.project_member).where(*key))
        if role is not None:
            tx.conn.execute(
                t.project_member.insert().values(
                    project_id=row.id, kind=kind, principal_id=principal, role=check_role(role)
                )
            )
        record_access(tx, row.id)
        return ProjectMembers(row.name, is_internal(tx.conn, row.id), members(tx.conn, row.id))

    return store.transact(work, actor=actor)


def set_internal(store: Store, *, project: str, internal: bool, actor: str) -> ProjectMembers:
    """An internal project may be read by every signed-in user."""

    def work(tx: Tx) -> ProjectMembers:
        row = project_row(tx.conn, project)
        table = t.internal_project
        tx.conn.execute(delete(table).where(table.c.project_id == row.id))
        if internal:
            tx.conn.execute(table.insert().values(project_id=row.id))
        record_access(tx, row.id)
        return ProjectMembers(row.name, internal, members(tx.conn, row.id))

    return store.transact(work, actor=actor)


def project_members(store: Store, *, project: str) -> ProjectMembers:
    with store.read() as conn:
        row = project_row(conn, project)
        return ProjectMembers(row.name, is_internal(conn, row.id), members(conn, row.id))


# --- API tokens ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TokenInfo:
    id: int
    user: str
    name: str
    read_only: bool
    expires_at: int | None
    created_at: int
    created_by: str
    last_used_at: int | None
    revoked_at: int | None


@dataclass(frozen=True, slots=True)
class NewToken:
    info: TokenInfo
    secret: str  # shown once: only its salted digest is kept


def token_digest(salt: str, secret: str) -> str:
    return hashlib.sha256((salt + secret).encode()).hexdigest()


def split_token(token: str) -> tuple[int, str] | None:
    """``myd_<id>_<secret>`` -> (id, secret); None when it is not of that shape."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    ident, sep, secret = token[len(TOKEN_PREFIX) :].partition("_")
    if not sep or not ident.isdigit() or len(ident) > 12 or not 20 <= len(secret) <= 100:
        return None
    return int(ident), secret


def digest_matches(row: Any, secret: str) -> bool:
    return hmac.compare_digest(row.digest, token_digest(row.salt, secret))


def _token_info(row: Any, user: str) -> TokenInfo:
    return TokenInfo(
        id=row.id,
        user=user,
        name=row.name,
        read_only=row.read_only,
        expires_at=row.expires_at,
        created_at=row.created_at,
        created_by=row.created_by,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
    )


def create_token(
    store: Store,
    *,
    user: str,
    name: str,
    actor: str,
    expires_in_days: float | None = None,
    read_only: bool = False,
) -> NewToken:
    """A token for ``user``: its secret is returned here and never again."""
    if not name.strip() or len(name) > 100 or not name.isprintable():
        raise InvalidInput("a token needs a name of 1 to 100 printable characters")
    if expires_in_days is not None and not 0 < expires_in_days <= MAX_TOKEN_DAYS:
        raise InvalidInput(f"a token expires after more than 0 and at most {MAX_TOKEN_DAYS} days")
    salt = secrets.token_hex(16)
    secret = secrets.token_urlsafe(32)

    def work(tx: Tx) -> NewToken:
        row = account_row(tx.conn, user)
        expires = None if expires_in_days is None else tx.now + int(expires_in_days * 86_400_000)
        token_id = int(
            tx.conn.execute(
                t.api_token.insert()
                .values(
                    account_id=row.id,
                    name=name,
                    salt=salt,
                    digest=token_digest(salt, secret),
                    read_only=read_only,
                    expires_at=expires,
                    created_at=tx.now,
                    created_by=tx.actor,
                )
                .returning(t.api_token.c.id)
            ).scalar_one()
        )
        urn = make_urn("token", token_id)
        tx.ensure_entity(urn)
        tx.put_aspect(
            urn, TokenProperties(user=user, name=name, read_only=read_only, expires_at=expires)
        )
        made = tx.conn.execute(select(t.api_token).where(t.api_token.c.id == token_id)).one()
        return NewToken(_token_info(made, user), f"{TOKEN_PREFIX}{token_id}_{secret}")

    return store.transact(work, actor=actor)


def token_owner(store: Store, *, token_id: int) -> str:
    with store.read() as conn:
        found = conn.execute(
            select(t.account.c.name)
            .join(t.api_token, t.api_token.c.account_id == t.account.c.id)
            .where(t.api_token.c.id == token_id)
        ).scalar()
    if found is None:
        raise NotFound(f"there is no token #{token_id}")
    return str(found)


def revoke_token(store: Store, *, token_id: int, actor: str) -> TokenInfo:
    def work(tx: Tx) -> TokenInfo:
        row = tx.conn.execute(
            select(t.api_token, t.account.c.name.label("user"))
            .join(t.account, t.account.c.id == t.api_token.c.account_id)
            .where(t.api_token.c.id == token_id)
        ).first()
        if row is None:
            raise NotFound(f"there is no token #{token_id}")
        if row.revoked_at is None:
            tx.conn.execute(
                update(t.api_token).where(t.api_token.c.id == token_id).values(revoked_at=tx.now)
            )
            tx.put_aspect(
                make_urn("token", token_id),
                TokenProperties(
                    user=row.user,
                    name=row.name,
                    read_only=row.read_only,
                    expires_at=row.expires_at,
                    revoked=True,
                ),
            )
        made = tx.conn.execute(select(t.api_token).where(t.api_token.c.id == token_id)).one()
        return _token_info(made, row.user)

    return store.transact(work, actor=actor)


def list_tokens(store: Store, *, user: str | None = None) -> list[TokenInfo]:
    query = (
        select(t.api_token, t.account.c.name.label("user"))
        .join(t.account, t.account.c.id == t.api_token.c.account_id)
        .order_by(t.api_token.c.id)
    )
    if user is not None:
        query = query.where(t.account.c.name == user)
    with store.read() as conn:
        return [_token_info(r, r.user) for r in conn.execute(query).all()]


# --- a user's own account (the /me page) ----------------------------------------------------


def change_own_password(
    store: Store, *, name: str, current: str, new: str, keep_session: str | None, actor: str
) -> None:
    """A user's new password, given their current one: every other session of theirs ends
    (a stolen cookie stops working), the one they changed it from goes on."""
    digest = hash_password(check_password(new))

    def work(tx: Tx) -> None:
        row = account_row(tx.conn, name)
        if row.is_service:
            raise InvalidInput("a service account acts through tokens only; it has no password")
        if not verify_password(row.password_hash, current):
            raise InvalidInput("that is not your current password; nothing was changed")
        tx.conn.execute(
            update(t.account).where(t.account.c.id == row.id).values(password_hash=digest)
        )
        ending = [t.web_session.c.account_id == row.id, t.web_session.c.revoked_at.is_(None)]
        if keep_session:
            ending.append(t.web_session.c.digest != keep_session)
        tx.conn.execute(update(t.web_session).where(*ending).values(revoked_at=tx.now))
        tx.put_aspect(user_urn(name), UserPassword(changed_at=tx.now))

    store.transact(work, actor=actor)


def revoke_own_token(store: Store, *, user: str, token_id: int, actor: str) -> TokenInfo:
    """Revoke one of ``user``'s own tokens; someone else's token is not there for them."""
    if token_owner(store, token_id=token_id) != user:
        raise NotFound(f"you have no token #{token_id}")
    return revoke_token(store, token_id=token_id, actor=actor)
