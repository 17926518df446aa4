"""JSON endpoints behind the administrator pages: the organisation overview, publications and signing keys."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from api.deps import CurrentActor, Service
from api.routes.publication import PublishedItemPublic
from engine import organisation, publication, signing_keys
from engine.users import require_role

router = APIRouter(prefix="/api/admin", tags=["administration"])


class PersonPublic(BaseModel):
    username: str
    display_name: str
    roles: list[str]
    posts: list[str]
    department: str | None
    active: bool


class DepartmentPublic(BaseModel):
    name: str | None = Field(description="null groups the users without a department.")
    users: list[PersonPublic]


class RolePublic(BaseModel):
    role: str
    users: list[PersonPublic]


class LaneNeedPublic(BaseModel):
    process_id: str
    process_name: str
    versions: list[int] = Field(description="Deployed versions that have human steps in this lane.")
    steps: list[str]
    running_cases: int


class PostPublic(BaseModel):
    name: str
    holders: list[PersonPublic] = Field(description="Every user holding the post, deactivated ones included.")
    active_holders: int = Field(description="Active business staff holding the post: the users who can take its tasks.")
    needed_by: list[LaneNeedPublic]
    open_tasks: int = Field(description="Ready or claimed tasks of running cases in this lane.")
    unheld: bool = Field(description="A deployed flowchart needs the post, but no active staff holds it.")


class OrganisationPublic(BaseModel):
    departments: list[DepartmentPublic]
    roles: list[RolePublic]
    posts: list[PostPublic]
    unheld_posts: list[str]


class SigningKeyPublic(BaseModel):
    """A checkpoint signing key; the private key is never part of any response."""

    key_id: str = Field(description="The first 16 hex digits of the fingerprint, as checkpoints name the key.")
    algorithm: str
    fingerprint: str | None = Field(description="SHA-256 of the raw public key in hex; null if the key is "
                                                "known only from the checkpoints it signed.")
    public_key: str | None = Field(description="PEM public key; null if the key is known only from checkpoints.")
    status: str = Field(description="active or retired")
    created_at: datetime | None
    created_by: str | None = Field(description="The administrator whose rotation created the key; null for "
                                                "the first key, which the system generated on first use.")
    retired_at: datetime | None
    retired_by: str | None
    checkpoints: int
    generated_on_first_use: bool = Field(description="True for the first key, which the system generated when it "
                                                     "first needed one: for a checkpoint or a public key export.")


@router.get("/organisation", response_model=OrganisationPublic)
def organisation_overview(service: Service, actor: CurrentActor) -> dict[str, Any]:
    """Return departments, roles and posts with their users, and flag needed posts no active staff holds.

    For administrators and auditors.
    """
    return organisation.organisation_overview(service, actor)


@router.get("/publications", response_model=list[PublishedItemPublic])
def current_publications(service: Service, actor: CurrentActor) -> list[dict[str, Any]]:
    """List every process published now, external and internal, with its published version (administrators)."""
    require_role(actor, "admin")
    return [{"process_id": item.process_id, "version": item.version, "name": item.name, "kind": item.kind,
             "power_item": item.power_item, "published_at": item.published_at, "published_by": item.published_by}
            for item in publication.published_items(service)]


@router.get("/keys", response_model=list[SigningKeyPublic])
def list_signing_keys(service: Service, actor: CurrentActor) -> list[dict[str, Any]]:
    """List every checkpoint signing key, active first, with its public key and fingerprint (administrators)."""
    return signing_keys.list_keys(service, actor)


@router.post("/keys/rotate", response_model=SigningKeyPublic, status_code=201)
def rotate_signing_key(service: Service, actor: CurrentActor) -> dict[str, Any]:
    """Replace the signing key with a new one and record it in the system trace (administrators).

    Later checkpoints are signed with the new key. Checkpoints of the retired key stay verifiable with
    its public key, which GET /api/admin/keys keeps listing.
    """
    return signing_keys.rotate_key(service, actor)
