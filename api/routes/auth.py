from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Request

from api.deps import CurrentActor, Service, bearer_token
from api.schemas import LoginRequest, LoginResponse, UserPublic
from engine.users import Actor, authenticate, issue_token, revoke_token

router = APIRouter(prefix="/api/auth", tags=["auth"])


def user_public(actor: Actor) -> UserPublic:
    return UserPublic(username=actor.username, display_name=actor.display_name, roles=sorted(actor.roles),
                      posts=sorted(actor.posts), department=actor.department)


@router.post("/login", response_model=LoginResponse)
def login(body: LoginRequest, service: Service) -> LoginResponse:
    """Sign in with username and password; returns a bearer token."""
    with service.db.write() as conn:
        actor = authenticate(conn, body.username, body.password)
        token, expires = issue_token(conn, actor.username, service.now(),
                                     timedelta(minutes=service.settings.token_ttl_minutes))
    return LoginResponse(token=token, expires_at=expires, user=user_public(actor))


@router.post("/logout", status_code=204)
def logout(request: Request, service: Service, actor: CurrentActor) -> None:
    """Revoke the token of this request."""
    with service.db.write() as conn:
        revoke_token(conn, bearer_token(request))


@router.get("/me", response_model=UserPublic)
def me(actor: CurrentActor) -> UserPublic:
    """Return the signed-in user with roles and posts."""
    return user_public(actor)
