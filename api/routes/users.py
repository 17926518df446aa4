"""User administration over HTTP, for administrators. No response contains a password or its hash."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from api.deps import CurrentActor, Service
from engine import user_admin

router = APIRouter(prefix="/api/users", tags=["users"])


class UserAccount(BaseModel):
    username: str
    display_name: str
    roles: list[str]
    posts: list[str]
    department: str | None
    active: bool
    created_at: datetime


class UserCreate(BaseModel):
    username: str
    display_name: str
    password: str = Field(description="At least 8 characters; stored only as an argon2 hash.")
    roles: list[str] = Field(description="One or more of staff, auditor, designer, admin.")
    posts: list[str] = Field(default_factory=list, description="Lane names of the user's posts.")
    department: str | None = None


class UserChange(BaseModel):
    display_name: str | None = None
    roles: list[str] | None = Field(default=None, description="Replaces every role of the user.")
    posts: list[str] | None = Field(default=None, description="Replaces every post; [] removes them all.")
    department: str | None = Field(default=None, description="The new department; null or \"\" removes it.")


class PasswordSet(BaseModel):
    password: str = Field(description="At least 8 characters; the user's earlier logins are signed out.")


@router.get("", response_model=list[UserAccount])
def list_users(service: Service, actor: CurrentActor) -> list[dict[str, Any]]:
    """List every user, deactivated ones included (administrators)."""
    return user_admin.list_users(service, actor)


@router.post("", response_model=UserAccount, status_code=201)
def create_user(body: UserCreate, service: Service, actor: CurrentActor) -> dict[str, Any]:
    """Create an active user (administrators)."""
    return user_admin.add_user(service, actor, username=body.username, display_name=body.display_name,
                               password=body.password, roles=body.roles, posts=body.posts, department=body.department)


@router.get("/{username}", response_model=UserAccount)
def get_user(username: str, service: Service, actor: CurrentActor) -> dict[str, Any]:
    """Return one user (administrators)."""
    return user_admin.get_user(service, actor, username)


@router.patch("/{username}", response_model=UserAccount)
def change_user(username: str, body: UserChange, service: Service, actor: CurrentActor) -> dict[str, Any]:
    """Change the display name, roles, posts or department of a user; fields left out stay as they are."""
    # An explicit null removes the department, but a department left out stays as it is.
    department = body.department
    if "department" in body.model_fields_set and department is None:
        department = ""
    changes = user_admin.UserChanges(display_name=body.display_name, roles=body.roles, posts=body.posts,
                                     department=department)
    user, _changed = user_admin.change_user(service, actor, username, changes)
    return user


@router.post("/{username}/password", status_code=204)
def set_password(username: str, body: PasswordSet, service: Service, actor: CurrentActor) -> None:
    """Set a new password for a user and revoke their login tokens (administrators)."""
    user_admin.set_user_password(service, actor, username, body.password)


@router.post("/{username}/deactivate", response_model=UserAccount)
def deactivate(username: str, service: Service, actor: CurrentActor) -> dict[str, Any]:
    """Deactivate a user: their logins and tokens are rejected from now on (administrators)."""
    return user_admin.deactivate_user(service, actor, username)


@router.post("/{username}/reactivate", response_model=UserAccount)
def reactivate(username: str, service: Service, actor: CurrentActor) -> dict[str, Any]:
    """Let a deactivated user sign in again (administrators)."""
    return user_admin.reactivate_user(service, actor, username)
