"""Publishing flowcharts (administrators) and the public power catalogue as JSON."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel

from api.deps import CurrentActor, Service
from engine import publication

router = APIRouter(prefix="/api", tags=["publication"])


class PublishedItemPublic(BaseModel):
    process_id: str
    version: int
    name: str
    kind: str | None
    power_item: dict[str, Any]
    published_at: datetime
    published_by: str


def _public(item: publication.PublishedItem) -> PublishedItemPublic:
    return PublishedItemPublic(process_id=item.process_id, version=item.version, name=item.name, kind=item.kind,
                               power_item=item.power_item, published_at=item.published_at,
                               published_by=item.published_by)


@router.post("/definitions/{process_id}/versions/{version}/publish", response_model=PublishedItemPublic)
def publish(process_id: str, version: int, service: Service, actor: CurrentActor) -> PublishedItemPublic:
    """Publish this version (administrators); it replaces the version published before."""
    return _public(publication.publish(service, process_id, version, actor))


@router.delete("/definitions/{process_id}/publication", status_code=204)
def withdraw(process_id: str, service: Service, actor: CurrentActor) -> None:
    """Take the process off the public pages (administrators)."""
    publication.withdraw(service, process_id, actor)


@router.get("/catalogue", response_model=list[PublishedItemPublic])
def catalogue(service: Service) -> list[PublishedItemPublic]:
    """List the public power catalogue: published external power items. No sign-in needed."""
    return [_public(item) for item in publication.published_items(service, kind="external")]
