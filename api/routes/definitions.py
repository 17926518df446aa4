from __future__ import annotations

from fastapi import APIRouter, Query, Request, Response

from api.deps import CurrentActor, Service
from api.errors import request_locale
from api.schemas import (
    DefinitionDetail,
    DefinitionPublic,
    DeployedProcessPublic,
    DeployResponse,
    FindingPublic,
    ValidateResponse,
)
from engine.errors import InvalidInput
from engine.i18n import msg, translate
from engine.users import require_role

router = APIRouter(prefix="/api/definitions", tags=["definitions"])

_UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/xml": {"schema": {"type": "string", "format": "binary"}},
            "multipart/form-data": {
                "schema": {"type": "object", "properties": {"file": {"type": "string", "format": "binary"}},
                           "required": ["file"]},
            },
        },
    }
}


async def _uploaded_file(request: Request, limit: int) -> tuple[bytes, str]:
    """Read a BPMN file sent as multipart form field ``file`` or as the raw request body."""
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        form = await request.form()
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise InvalidInput(msg("The upload has no file field; send the BPMN file as form field 'file'."))
        content = await upload.read(limit + 1)
        filename = upload.filename or "upload.bpmn"
    else:
        content = await request.body()
        filename = request.query_params.get("filename") or "upload.bpmn"
    if len(content) > limit:
        raise InvalidInput(msg("The uploaded file is over the limit of {limit} bytes.", limit=limit))
    return content, filename


@router.post("", response_model=DeployResponse, openapi_extra=_UPLOAD_BODY)
async def deploy(request: Request, service: Service, actor: CurrentActor) -> DeployResponse:
    """Deploy a BPMN file: each startable process becomes a new numbered version, unless identical."""
    content, filename = await _uploaded_file(request, service.settings.max_upload_bytes)
    deployment = service.deploy_file(content, filename, actor)
    results = deployment.processes
    locale = request_locale(request)
    warnings = [FindingPublic(**finding.to_json(locale)) for finding in deployment.warnings]
    return DeployResponse(filename=filename, findings=warnings, processes=[
        DeployedProcessPublic(
            definition_id=r.definition_id, process_id=r.process_id, version=r.version, content_hash=r.content_hash,
            created=r.created,
            message=translate(locale, "Deployed {process_id} as version {version}." if r.created else
                              "{process_id} is already deployed as version {version} with identical content; "
                              "nothing changed.", process_id=r.process_id, version=r.version),
        )
        for r in results
    ])


@router.post("/validate", response_model=ValidateResponse, openapi_extra=_UPLOAD_BODY)
async def validate(request: Request, service: Service, actor: CurrentActor,
                   report: bool = Query(False, description="Return a file with errors as a 200 response with "
                                                           "valid=false instead of a 422.")) -> ValidateResponse:
    """Check a BPMN file without deploying it and list every finding with its element, line and fix hint.

    For designers and administrators.

    A file with an error comes back as a 422 naming the first error, with every finding in
    ``error.details.findings``, unless ``report=true`` requests the findings in a 200 response.
    """
    require_role(actor, "designer", "admin")
    content, filename = await _uploaded_file(request, service.settings.max_upload_bytes)
    validation = service.validation_report(content, filename)
    locale = request_locale(request)
    findings = [FindingPublic(**finding.to_json(locale)) for finding in validation.findings]
    if not validation.valid and report:
        return ValidateResponse(filename=filename, valid=False, content_hash=validation.content_hash, processes=[],
                                findings=findings)
    parsed = validation.deployable()
    return ValidateResponse(filename=filename, valid=True, content_hash=parsed.content_hash,
                            processes=[p.process_id for p in parsed.processes], findings=findings)


@router.get("", response_model=list[DefinitionPublic])
def list_definitions(service: Service, actor: CurrentActor, process_id: str | None = None) -> list[dict]:
    """List all deployed versions, oldest first per process."""
    return service.list_definitions(process_id)


@router.get("/{process_id}", response_model=list[DefinitionPublic])
def list_versions(process_id: str, service: Service, actor: CurrentActor) -> list[dict]:
    """Every version of one process."""
    versions = service.list_definitions(process_id)
    if not versions:
        service.get_definition(process_id)  # raises NotFound with the usual message
    return versions


@router.get("/{process_id}/versions/{version}", response_model=DefinitionDetail)
def get_version(process_id: str, version: int, service: Service, actor: CurrentActor) -> dict:
    """One version with its flow nodes, lanes, risk checkpoints and form fields."""
    definition = service.get_definition(process_id, version)
    return {**definition, "nodes": service.definition_nodes(definition["id"])}


@router.get("/{process_id}/versions/{version}/bpmn", response_class=Response,
            responses={200: {"content": {"application/xml": {}}}})
def download(process_id: str, version: int, service: Service, actor: CurrentActor) -> Response:
    """The exact BPMN bytes deployed as this version."""
    filename, content = service.definition_content(process_id, version)
    return Response(content=content, media_type="application/xml",
                    headers={"Content-Disposition": f'attachment; filename="{process_id}-v{version}.bpmn"'})
