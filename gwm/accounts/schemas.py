"""The shapes of /api/v1/auth, /me, /authz, /users, /groups, /roles and /role-bindings."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Name = Field(min_length=1, max_length=150, pattern=r"^[\w.@+:/-]+$")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TokenRequest(Strict):
    """Either ``username`` and ``password`` (a login), or, with a bearer token, ``user``
    (a token for yourself or, as a global admin, for another user such as a service account)."""

    username: str | None = Field(None, max_length=150)
    password: str | None = Field(None, max_length=1024)
    user: str | None = Field(None, max_length=150)
    description: str = Field("", max_length=100)
    expires_in_days: float | None = Field(None, gt=0, le=36500)
    read_only: bool = False
    clusters: list[str] = Field(default_factory=list, max_length=100)
    networks: list[str] = Field(default_factory=list, max_length=100)


class TokenOut(BaseModel):
    id: int
    user: str
    description: str
    prefix: str = Field(description="the start of the token (gwm_<prefix>...), to recognise it")
    created_at: str
    expires_at: str | None
    last_used_at: str | None
    last_used_from: str | None
    revoked_at: str | None
    read_only: bool
    clusters: list[str]
    networks: list[str]


class TokenCreated(TokenOut):
    token: str = Field(description="the token itself; shown only in this answer")


class TokenPage(BaseModel):
    items: list[TokenOut]


class BindingOut(BaseModel):
    id: int
    role: str
    user: str | None
    group: str | None
    scope: Literal["global", "cluster", "instance", "tag"]
    cluster: str | None
    instance: str | None
    tag: str | None
    created_at: str


class BindingIn(Strict):
    role: str = Field(max_length=64)
    user: str | None = Field(None, max_length=150)
    group: str | None = Field(None, max_length=150)
    scope: Literal["global", "cluster", "instance", "tag"]
    cluster: str | None = Field(None, max_length=63)
    instance: str | None = Field(None, max_length=255)
    tag: str | None = Field(None, max_length=255)


class BindingPage(BaseModel):
    items: list[BindingOut]


class MeOut(BaseModel):
    username: str
    superuser: bool
    service: bool
    source: str
    groups: list[str]
    bindings: list[BindingOut]
    token: TokenOut | None = Field(description="the token this request came with, and its scope")


class PermissionsOut(BaseModel):
    cluster: str | None
    instance: str | None
    verbs: list[str]


class CheckIn(Strict):
    user: str | None = Field(None, max_length=150, description="default: yourself (admins only)")
    verb: str = Field(max_length=32)
    cluster: str | None = Field(None, max_length=63)
    instance: str | None = Field(None, max_length=255)


class CheckOut(BaseModel):
    allowed: bool
    reason: str
    granted_by: BindingOut | None


class UserOut(BaseModel):
    username: str
    email: str
    active: bool
    superuser: bool
    service: bool
    source: str
    groups: list[str]


class UserIn(Strict):
    username: str = Name
    password: str | None = Field(None, min_length=8, max_length=1024)
    email: str = Field("", max_length=254)
    service: bool = False


class UserPatch(Strict):
    password: str | None = Field(None, min_length=8, max_length=1024)
    email: str | None = Field(None, max_length=254)
    active: bool | None = None


class UserPage(BaseModel):
    items: list[UserOut]


class UserGroupOut(BaseModel):
    name: str
    members: list[str]


class UserGroupIn(Strict):
    name: str = Name
    members: list[str] = Field(default_factory=list, max_length=10000)


class UserGroupPatch(Strict):
    members: list[str] = Field(max_length=10000)


class UserGroupPage(BaseModel):
    items: list[UserGroupOut]


class RoleOut(BaseModel):
    name: str
    description: str
    verbs: list[str]
    builtin: bool


class RoleIn(Strict):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_-]*$")
    description: str = Field("", max_length=255)
    verbs: list[str] = Field(min_length=1, max_length=50)


class RolePage(BaseModel):
    items: list[RoleOut]
    verbs: dict[str, str] = Field(description="every verb gwm knows, and what it allows")
