"""Signed checkpoints over the whole trace, verification against a kept one, and inclusion proofs.

Every route here is for auditors and administrators.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from api.deps import CurrentActor, Service
from api.errors import request_locale
from engine import audit
from engine.audit_verify import AuditReport, verify_checkpoint
from engine.users import Actor, require_role

router = APIRouter(prefix="/api/audit", tags=["audit"])


def _auditor(actor: CurrentActor) -> Actor:
    require_role(actor, "auditor", "admin")
    return actor


Auditor = Annotated[Actor, Depends(_auditor)]


class CheckpointIn(BaseModel):
    """A checkpoint file exactly as `liuhen checkpoint create` or POST /api/audit/checkpoints issued it."""

    model_config = ConfigDict(strict=True)

    format: str
    version: int
    size: int
    root: str
    created_at: str
    key_id: str
    signature: str
    public_key: str


class CheckpointPublic(BaseModel):
    """A checkpoint as issued; public_key is null in listings of checkpoints signed with an earlier key."""

    format: str
    version: int
    size: int
    root: str
    created_at: str
    key_id: str
    signature: str
    public_key: str | None


class IssuedCheckpoint(CheckpointPublic):
    id: int


class AuditProblemPublic(BaseModel):
    kind: str
    message: str
    event_id: int | None = None
    stream: str | None = None
    seq: int | None = None
    position: int | None = None


class SigningKeyTrustPublic(BaseModel):
    key_id: str
    status: str = Field(description="active: the instance's signing key; retired: a key that a rotation replaced, "
                                    "trusted through the retired keys file beside the key file.")


class AuditVerifyResponse(BaseModel):
    ok: bool
    checkpoint: CheckpointPublic
    signing_key: SigningKeyTrustPublic | None = Field(
        description="The trusted key the signature verified with; null if it verified with none.")
    log_size: int
    log_root: str
    consistency_proof: list[str]
    pending: int
    streams: int
    problems: list[AuditProblemPublic]


class ProvenEvent(BaseModel):
    id: int
    stream: str
    seq: int
    body: str
    body_encoding: str


class InclusionProofPublic(BaseModel):
    format: str
    version: int
    event: ProvenEvent
    position: int
    leaf_hash: str
    audit_path: list[str]
    checkpoint: CheckpointPublic


@router.get("/checkpoints", response_model=list[IssuedCheckpoint])
def list_checkpoints(service: Service, actor: Auditor) -> list[dict[str, Any]]:
    """Every checkpoint issued, newest first; public_key is null for checkpoints of an earlier key."""
    return audit.list_checkpoints(service)


@router.post("/checkpoints", response_model=CheckpointPublic, status_code=201)
def create_checkpoint(service: Service, actor: Auditor) -> dict[str, Any]:
    """Seal new trace events and sign the Merkle root over the whole log; keep the result outside the system."""
    return audit.create_checkpoint(service)


@router.post("/verify", response_model=AuditVerifyResponse)
def verify(body: CheckpointIn, request: Request, service: Service, actor: Auditor) -> AuditVerifyResponse:
    """Verify the signature of a kept checkpoint and that the trace still contains, unchanged, all it covers."""
    report = verify_checkpoint(service, body.model_dump())
    return _report(report, request_locale(request))


@router.get("/events/{event_id}/proof", response_model=InclusionProofPublic)
def event_proof(event_id: int, service: Service, actor: Auditor) -> dict[str, Any]:
    """Proof, checkable offline, that one trace event is in a signed checkpoint.

    Creates a checkpoint first if the newest one does not cover the event yet.
    """
    return audit.prove(service, event_id)


def _report(report: AuditReport, locale: str) -> AuditVerifyResponse:
    problems = [
        AuditProblemPublic(kind=problem.kind, message=problem.message.render(locale), event_id=problem.event_id,
                           stream=problem.stream, seq=problem.seq, position=problem.position)
        for problem in report.problems
    ]
    signing_key = None
    if report.signing_key is not None:
        signing_key = SigningKeyTrustPublic(key_id=report.signing_key.key_id, status=report.signing_key.status)
    return AuditVerifyResponse(
        ok=report.ok, checkpoint=CheckpointPublic(**report.checkpoint.to_json()), signing_key=signing_key,
        log_size=report.log_size,
        log_root=report.log_root, consistency_proof=report.consistency_proof, pending=report.pending,
        streams=report.streams, problems=problems,
    )
