"""Users, API tokens and project members."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints

from modelyard.limits import MAX_NAME
from modelyard.schemas._common import Strict

# The shapes the access services check (``services.access.accounts``), stated for the document.
UserName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")]
_EMAIL = r"[^@\s\x00]{1,64}@[^@\s\x00]{1,255}"
Email = Annotated[str, StringConstraints(pattern=f"^{_EMAIL}$")]
EmailOrNone = Annotated[str, StringConstraints(pattern=f"^(?:{_EMAIL})?$")]
DisplayName = Annotated[str, StringConstraints(max_length=MAX_NAME)]
Password = Annotated[str, StringConstraints(min_length=8, max_length=1024)]
# Printable ASCII, not starting or ending with a space.
TokenName = Annotated[str, StringConstraints(max_length=100, pattern=r"^[!-~](?:[ -~]*[!-~])?$")]
RoleName = Literal["viewer", "editor", "reviewer", "owner"]


class UserCreate(Strict):
    name: UserName
    display_name: DisplayName = Field(default="", description="Shown in the portal; default name.")
    email: Email | None = None
    password: Password | None = Field(
        default=None, description="Needed to sign in to the portal; a service account has none."
    )
    admin: bool = False
    service: bool = Field(default=False, description="Acts through API tokens only.")


class UserUpdate(Strict):
    display_name: DisplayName | None = None
    email: EmailOrNone | None = Field(default=None, description='"" removes the address.')
    admin: bool | None = None
    disabled: bool | None = Field(
        default=None, description="A disabled user cannot sign in; their tokens stop working."
    )


class UserPublic(BaseModel):
    name: str
    display_name: str
    email: str | None
    admin: bool
    service: bool
    disabled: bool
    created_at: int
    can_sign_in: bool = Field(description="Whether the user has a password.")


class MePublic(BaseModel):
    """Who the caller is, and how the server knows."""

    name: str
    display_name: str
    admin: bool
    read_only: bool
    via: str | None = Field(
        description='"token <name> (#id)", "proxy", "session", or null for the implicit user '
        "of local mode (no user created yet)"
    )
    local: bool = Field(description="The implicit user of local mode: no one needs to sign in.")


class TokenCreate(Strict):
    name: TokenName = Field(description="What the token is for.")
    expires_in_days: float | None = Field(
        default=None, gt=0, le=3650, description="Days until it expires; never when left out."
    )
    read_only: bool = Field(default=False, description="May read, never change anything.")
    user: UserName | None = Field(
        default=None,
        description="Whose token (site admins only, e.g. a service account); default yourself.",
    )


class TokenPublic(BaseModel):
    id: int
    user: str
    name: str
    read_only: bool
    expires_at: int | None
    created_at: int
    created_by: str
    last_used_at: int | None
    revoked_at: int | None


class TokenCreated(TokenPublic):
    secret: str = Field(
        description="The token, for 'Authorization: Bearer <token>' or MODELYARD_TOKEN. Shown "
        "in this answer only: the server keeps a salted digest of it."
    )


class MemberPublic(BaseModel):
    kind: Literal["user", "group"]
    name: str
    role: RoleName


class MemberSet(Strict):
    kind: Literal["user", "group"] = "user"
    name: UserName
    role: RoleName


class InternalSet(Strict):
    internal: bool = Field(description="Whether every signed-in user may read the project.")


class ProjectMembersPublic(BaseModel):
    project: str
    internal: bool = Field(description="Every signed-in user may read it, as a viewer.")
    members: list[MemberPublic]
