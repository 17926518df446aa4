from __future__ import annotations

from fastapi import APIRouter, Request

from api.deps import CurrentActor, Service, bearer_token, client_address
from api.schemas import LoginRequest, LoginResponse, UserPublic
from engine.login_throttle import sign_in
from engine.users import Actor, revoke_token

router = APIRouter(prefix="/api/auth", tags=["auth"])


def user_public(actor: Actor) -> UserPublic:
    return UserPublic(username=actor.username, display_name=actor.display_name, roles=sorted(actor.roles),
                      posts=sorted(actor.posts), department=actor.department)


@router.post("/login", response_model=LoginResponse,
             responses={429: {"description": "Too many failed sign-ins; the Retry-After header gives the seconds "
                                             "to wait."}})
def login(body: LoginRequest, request: Request, service: Service) -> LoginResponse:
    """Sign in with username and password; returns a bearer token.

    Repeated failures for one username or from one address get 429 until the window passes.
    """
    actor, token, expires = sign_in(service, body.username, body.password, client_address(request))
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
