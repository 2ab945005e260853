"""Who is acting, and what they may do: tokens, sessions and single sign-on identities resolved
to a :class:`Principal`, and each principal's roles in projects.

Lookups are cached per process for at most ``TTL_MS`` (one second), so a request costs a few
dictionary reads; a token revoked, a user disabled or a role changed in any process is seen
by every process within that second. Expiry is checked on every request, to the millisecond.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import case, delete, select, update

from modelyard.errors import Forbidden, TooManyAttempts, Unauthenticated
from modelyard.metadata import tables as t
from modelyard.metadata.aspects import UserSignIn
from modelyard.metadata.store import Acting, Store, Tx, dialect_insert, now_ms
from modelyard.metadata.urn import user_urn
from modelyard.services.access.accounts import (
    ROLES,
    Role,
    account_row,
    add_user_tx,
    digest_matches,
    split_token,
)
from modelyard.services.access.passwords import verify_password

TTL_MS = 1000
LASTING_MS = 24 * 3_600_000
TOUCHED = frozenset({"token", "session"})  # looked-up keys whose last use is recorded
TOUCH_EVERY_MS = 60_000  # last-used and last-seen times are written at most this often
LOCAL_NAME = "local"
RANK: dict[str, int] = {role: rank for rank, role in enumerate(ROLES, start=1)}

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Principal:
    """A signed-in user, a token's user, or the implicit user of local mode."""

    name: str
    account_id: int | None  # None: the implicit local user
    admin: bool
    display_name: str = ""
    read_only: bool = False  # a read-only token
    via: str | None = None  # "token <name> (#id)", or "proxy <identity it sent>"
    session: str | None = None  # the session's digest, when signed in through the browser
    token_id: int | None = None

    @property
    def actor(self) -> Acting:
        return Acting(self.name, self.via)

    @property
    def implicit(self) -> bool:
        return self.account_id is None


LOCAL_USER = Principal(name=LOCAL_NAME, account_id=None, admin=True, display_name="local")


@dataclass(frozen=True, slots=True)
class Roles:
    """A user's roles by project id, and the projects every signed-in user may read."""

    by_project: dict[int, Role]
    internal: frozenset[int]

    def role(self, project_id: int) -> Role | None:
        own = self.by_project.get(project_id)
        if own is not None:
            return own
        return "viewer" if project_id in self.internal else None

    @property
    def readable(self) -> frozenset[int]:
        return frozenset(self.by_project) | self.internal


@dataclass
class _Cached:
    value: Any
    until: int


@dataclass
class Access:
    """The per-process view of who may do what, over ``store``."""

    store: Store
    idle_ms: int
    absolute_ms: int
    _cache: dict[tuple[str, object], _Cached] = field(default_factory=dict)
    _touched: dict[tuple[str, object], int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _users_exist: bool = False

    def _cached(self, key: tuple[str, object], load: Callable[[], T], ttl_ms: int = TTL_MS) -> T:
        now = now_ms()
        hit = self._cache.get(key)
        if hit is not None and hit.until > now:
            return hit.value  # type: ignore[no-any-return]
        value = load()
        with self._lock:
            if len(self._cache) > 100_000:
                self._cache.clear()
            self._cache[key] = _Cached(value, now + ttl_ms)
        return value

    def warm(self, key: tuple[str, object]) -> bool:
        """Whether answering for ``key`` needs no database now (so a request can be checked
        without a hop to a worker thread): its value is cached and no last-used time is due."""
        if key == ("users", None) and self._users_exist:
            return True
        hit = self._cache.get(key)
        if hit is None or hit.until <= now_ms():
            return False
        return key[0] not in TOUCHED or now_ms() - self._touched.get(key, 0) < TOUCH_EVERY_MS

    def lookup(self, key: tuple[str, object], load: Callable[[], T], *, lasting: bool) -> T:
        """A lookup of which project something belongs to, cached: for good when ``lasting``
        (a run never moves to another project), else for a second (a project's name)."""
        return self._cached(key, load, ttl_ms=LASTING_MS if lasting else TTL_MS)

    def forget(self) -> None:
        """Drop what this process cached (after a change it made itself)."""
        with self._lock:
            self._cache.clear()

    # --- mode ---------------------------------------------------------------------------

    def users_exist(self) -> bool:
        """Whether any user has been created: then the server is in team mode for good."""
        if not self._users_exist:
            self._users_exist = self._cached(("users", None), self._any_user)
        return self._users_exist

    def _any_user(self) -> bool:
        with self.store.read() as conn:
            return conn.execute(select(t.account.c.id).limit(1)).first() is not None

    # --- roles --------------------------------------------------------------------------

    def roles(self, principal: Principal, *, fresh: bool = False) -> Roles:
        """The principal's roles; ``fresh`` reads them again (before refusing anything, so a
        role just given is never refused from the cache)."""
        if principal.account_id is None:
            return Roles({}, frozenset())
        key = ("roles", principal.account_id)
        if fresh:
            with self._lock:
                self._cache.pop(key, None)
        return self._cached(key, lambda: self._roles(principal))

    def _roles(self, principal: Principal) -> Roles:
        m = t.project_member
        groups = select(t.group_member.c.group_id).where(
            t.group_member.c.account_id == principal.account_id
        )
        query = select(m.c.project_id, m.c.role).where(
            ((m.c.kind == "user") & (m.c.principal_id == principal.account_id))
            | ((m.c.kind == "group") & m.c.principal_id.in_(groups))
        )
        with self.store.read() as conn:
            rows = conn.execute(query).all()
            internal = frozenset(
                int(p) for p in conn.execute(select(t.internal_project.c.project_id)).scalars()
            )
        by_project: dict[int, Role] = {}
        for project_id, role in rows:
            held = by_project.get(int(project_id))
            if role in RANK and RANK[role] > (RANK[held] if held else 0):
                by_project[int(project_id)] = role
        return Roles(by_project, internal)

    # --- tokens -------------------------------------------------------------------------

    def token(self, token: str) -> Principal:
        """The principal of a Bearer token; 401 when it is not a valid, live token."""
        parts = split_token(token)
        if parts is None:
            raise Unauthenticated("that is not a modelyard API token (they start with myd_)")
        token_id, secret = parts
        row = self._cached(("token", token_id), lambda: self._token_row(token_id))
        if row is None or not digest_matches(row, secret):
            raise Unauthenticated("that API token is not known here")
        now = now_ms()
        if row.revoked_at is not None:
            raise Unauthenticated(f"the API token {row.name!r} has been revoked")
        if row.expires_at is not None and row.expires_at <= now:
            raise Unauthenticated(f"the API token {row.name!r} has expired")
        if row.disabled:
            raise Unauthenticated(f"the user {row.user!r} is disabled")
        self._touch(("token", token_id), now, t.api_token.c.id == token_id, "last_used_at")
        return Principal(
            name=row.user, account_id=row.account_id, admin=row.is_admin,
            display_name=row.display_name, read_only=row.read_only,
            via=f"token {row.name} (#{token_id})", token_id=token_id,
        )  # fmt: skip

    def _token_row(self, token_id: int) -> Any:
        query = (
            select(
                t.api_token,
                t.account.c.name.label("user"),
                t.account.c.display_name,
                t.account.c.is_admin,
                t.account.c.disabled,
            )
            .join(t.account, t.account.c.id == t.api_token.c.account_id)
            .where(t.api_token.c.id == token_id)
        )
        with self.store.read() as conn:
            return conn.execute(query).first()

    def _touch(self, key: tuple[str, object], now: int, where: Any, column: str) -> None:
        """Record when a token or session was last used, at most once a minute."""
        if now - self._touched.get(key, 0) < TOUCH_EVERY_MS:
            return
        self._touched[key] = now
        table = t.api_token if column == "last_used_at" else t.web_session
        with self.store.engine.begin() as conn:
            conn.execute(update(table).where(where).values({column: now}))

    # --- sessions -----------------------------------------------------------------------

    def session(self, secret: str) -> Principal:
        """The principal of a browser session; 401 when it has ended."""
        digest = session_digest(secret)
        row = self._cached(("session", digest), lambda: self._session_row(digest))
        now = now_ms()
        if (
            row is None
            or row.revoked_at is not None
            or row.expires_at <= now
            or row.created_at < row.sessions_valid_after
            or row.disabled
        ):
            raise Unauthenticated("your session has ended; sign in again")
        last_seen = max(row.last_seen_at, self._touched.get(("session", digest), 0))
        if now - last_seen > self.idle_ms:
            raise Unauthenticated("your session ended after a while without use; sign in again")
        self._touch(("session", digest), now, t.web_session.c.digest == digest, "last_seen_at")
        return Principal(
            name=row.name, account_id=row.account_id, admin=row.is_admin,
            display_name=row.display_name, session=digest,
        )  # fmt: skip

    def _session_row(self, digest: str) -> Any:
        query = (
            select(
                t.web_session,
                t.account.c.name,
                t.account.c.display_name,
                t.account.c.is_admin,
                t.account.c.disabled,
                t.account.c.sessions_valid_after,
            )
            .join(t.account, t.account.c.id == t.web_session.c.account_id)
            .where(t.web_session.c.digest == digest)
        )
        with self.store.read() as conn:
            return conn.execute(query).first()

    def sign_in(self, name: str, password: str, *, address: str | None) -> str:
        """Check a password and open a session: returns the session's secret (the cookie).
        Failed attempts are counted per user and per address; past the limit, 429."""
        keys = [f"user:{name[:200]}"] + ([f"address:{address}"] if address else [])
        refuse_throttled(self.store, keys)
        with self.store.read() as conn:
            row = conn.execute(select(t.account).where(t.account.c.name == name)).first()
        good = verify_password(row.password_hash if row is not None else None, password)
        if row is None or not good or row.disabled:
            record_failure(self.store, keys)
            raise Unauthenticated("that user name and password do not match an active user")
        secret = secrets.token_urlsafe(32)

        def work(tx: Tx) -> None:
            tx.conn.execute(delete(t.sign_in_failure).where(t.sign_in_failure.c.key == keys[0]))
            tx.conn.execute(
                t.web_session.insert().values(
                    digest=session_digest(secret),
                    account_id=row.id,
                    created_at=tx.now,
                    last_seen_at=tx.now,
                    expires_at=tx.now + self.absolute_ms,
                    address=address,
                )
            )
            sign_in = UserSignIn(at=tx.now, method="password", address=address)
            tx.put_aspect(user_urn(row.name), sign_in)

        self.store.transact(work, actor=row.name)
        return secret

    def sign_out(self, principal: Principal) -> None:
        if principal.session is None:
            return
        with self.store.engine.begin() as conn:
            conn.execute(
                update(t.web_session)
                .where(t.web_session.c.digest == principal.session)
                .values(revoked_at=now_ms())
            )
        with self._lock:
            self._cache.pop(("session", principal.session), None)

    # --- single sign-on -----------------------------------------------------------------

    def proxy_user(self, identity: str, *, default_group: str | None) -> Principal:
        """The user a trusted proxy names (an e-mail address or a user name), created on
        first sight."""
        found = self._cached(("proxy", identity), lambda: self._proxy_row(identity))
        if found is None:
            found = self._create_proxy_user(identity, default_group)
        if found.disabled:
            raise Forbidden(f"the user {found.name!r} is disabled")
        return Principal(
            name=found.name, account_id=found.id, admin=found.is_admin,
            display_name=found.display_name, via=f"proxy {identity}",
        )  # fmt: skip

    def _proxy_row(self, identity: str) -> Any:
        column = t.account.c.email if "@" in identity else t.account.c.name
        with self.store.read() as conn:
            return conn.execute(select(t.account).where(column == identity)).first()

    def _create_proxy_user(self, identity: str, default_group: str | None) -> Any:
        email = identity if "@" in identity else None
        base = _username_from(identity)

        def work(tx: Tx) -> Any:
            column = t.account.c.email if email else t.account.c.name
            again = tx.conn.execute(select(t.account).where(column == identity)).first()
            if again is not None:
                return again  # another request created it meanwhile
            name = base
            for n in range(2, 1000):
                if tx.conn.execute(select(t.account.c.id).where(t.account.c.name == name)).first():
                    name = f"{base[:58]}-{n}"
                    continue
                break
            account_id = add_user_tx(tx, name=name, email=email)
            tx.put_aspect(user_urn(name), UserSignIn(at=tx.now, method="proxy"))
            if default_group:
                group = tx.conn.execute(
                    select(t.account_group.c.id).where(t.account_group.c.name == default_group)
                ).scalar()
                if group is not None:
                    tx.conn.execute(
                        t.group_member.insert().values(group_id=group, account_id=account_id)
                    )
            return account_row(tx.conn, name)

        row = self.store.transact(work, actor=Acting(base, f"proxy {identity}"))
        with self._lock:
            self._cache.pop(("proxy", identity), None)
        self._users_exist = True
        return row


def _username_from(identity: str) -> str:
    local = identity.split("@", 1)[0].lower()
    name = re.sub(r"[^a-z0-9._-]+", "-", local).strip("-._")[:64]
    return name or "user"


def session_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


# --- failed sign-ins ----------------------------------------------------------------------

WINDOW_MS = 15 * 60_000
LIMITS = {"user": 5, "address": 20}


def refuse_throttled(store: Store, keys: list[str]) -> None:
    now = now_ms()
    with store.read() as conn:
        rows = conn.execute(
            select(t.sign_in_failure).where(t.sign_in_failure.c.key.in_(keys))
        ).all()
    for row in rows:
        kind = row.key.split(":", 1)[0]
        if row.first_at + WINDOW_MS > now and row.failures >= LIMITS[kind]:
            wait = (row.first_at + WINDOW_MS - now + 999) // 1000
            raise TooManyAttempts(
                f"too many failed sign-ins for this {'user' if kind == 'user' else 'address'}; "
                f"try again in {max(1, (wait + 59) // 60)} minute(s)",
                details={"retry_after": int(wait)},
            )


def record_failure(store: Store, keys: list[str]) -> None:
    now = now_ms()
    table = t.sign_in_failure
    with store.engine.begin() as conn:
        for key in keys:
            insert = dialect_insert(conn, table).values(
                key=key, failures=1, first_at=now, last_at=now
            )
            fresh = table.c.first_at + WINDOW_MS <= now
            conn.execute(
                insert.on_conflict_do_update(
                    index_elements=[table.c.key],
                    set_={
                        "failures": _case(fresh, 1, table.c.failures + 1),
                        "first_at": _case(fresh, now, table.c.first_at),
                        "last_at": now,
                    },
                )
            )


def _case(cond: Any, then: Any, otherwise: Any) -> Any:
    return case((cond, then), else_=otherwise)


def user_of(store: Store, name: str) -> Principal:
    """The principal of a user by name (for the CLI and tests acting as someone)."""
    with store.read() as conn:
        row = account_row(conn, name)
    return Principal(
        name=row.name, account_id=row.id, admin=row.is_admin, display_name=row.display_name
    )
