"""Event-log exports for auditors, streamed while the database is read."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from api.deps import CurrentActor, Service
from engine.exports import MEDIA_TYPES, ExportFilter, encoded_chunks, export_chunks
from engine.users import require_role

router = APIRouter(prefix="/api", tags=["exports"])


@router.get("/exports/{export_format}", response_class=StreamingResponse)
def export_log(export_format: str, service: Service, actor: CurrentActor, process: str | None = None,
               power_item: str | None = None, version: str | None = None, since: str | None = None,
               until: str | None = None, status: str | None = None, bom: bool = False) -> StreamingResponse:
    """Download case traces as an XES, CSV or JSON event log (auditors and administrators)."""
    require_role(actor, "auditor", "admin")
    filters = ExportFilter.parse(process=process, power_item=power_item, version=version, since=since,
                                 until=until, status=status)
    chunks = export_chunks(service, export_format, filters, bom=bom)
    stamp = service.now().strftime("%Y%m%dT%H%M%SZ")
    headers = {"Content-Disposition": f'attachment; filename="liuhen-events-{stamp}.{export_format}"'}
    return StreamingResponse(encoded_chunks(chunks), media_type=MEDIA_TYPES[export_format], headers=headers)
