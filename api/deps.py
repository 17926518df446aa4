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


# The web pages' sign-in cookie. Their scripts call the JSON API with it instead of a bearer header.
SESSION_COOKIE = "liuhen_token"
# A header that a cross-site form cannot send, so a cookie-signed request that changes data came from our pages.
SCRIPT_HEADER = "x-requested-with"
_SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def bearer_token(request: Request) -> str:
    """Return the login token of the request: its Authorization header, else the pages' sign-in cookie."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    cookie = request.cookies.get(SESSION_COOKIE, "").strip()
    if cookie and (request.method in _SAFE_METHODS or request.headers.get(SCRIPT_HEADER)):
        return cookie
    if cookie:
        raise Unauthorized(msg("A {method} request signed in with the page cookie needs the header "
                               "X-Requested-With; send it, or send a bearer token instead.", method=request.method))
    raise Unauthorized(msg(
        "Sign in first: send the header Authorization: Bearer <token> from POST /api/auth/login."))


def client_address(request: Request) -> str:
    """Return the address the request came from, as the server sees it (the proxy's, behind a reverse proxy)."""
    return request.client.host if request.client else "unknown"


def current_actor(request: Request, service: Annotated[Liuhen, Depends(get_service)]) -> Actor:
    token = bearer_token(request)
    with service.db.read() as conn:
        return actor_for_token(conn, token, service.now())


Service = Annotated[Liuhen, Depends(get_service)]
CurrentActor = Annotated[Actor, Depends(current_actor)]
