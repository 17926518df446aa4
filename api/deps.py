"""FastAPI dependencies: the service facade and the signed-in actor."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from engine.errors import Unauthorized
from engine.i18n import msg
from engine.service import Liuhen
from engine.users import Actor, actor_for_token


def get_service(request: Request) -> Liuhen:
    return request.app.state.liuhen


def bearer_token(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized(msg(
            "Sign in first: send the header Authorization: Bearer <token> from POST /api/auth/login."))
    return token.strip()


def current_actor(request: Request, service: Annotated[Liuhen, Depends(get_service)]) -> Actor:
    token = bearer_token(request)
    with service.db.read() as conn:
        return actor_for_token(conn, token, service.now())


Service = Annotated[Liuhen, Depends(get_service)]
CurrentActor = Annotated[Actor, Depends(current_actor)]
