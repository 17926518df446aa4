"""Request body size limits, enforced while the body arrives and before an endpoint parses it.

Endpoints whose OpenAPI request body is a file (BPMN XML, CSV, multipart) accept
``max_upload_bytes`` plus room for multipart framing. Every other endpoint, JSON and form endpoints
alike, accepts ``max_request_bytes``. A body declared larger in ``Content-Length`` is rejected at
once. A chunked body is counted as it is read and rejected as soon as it passes the limit. Both
cases return 413 with the error code ``request_too_large``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import error_body, error_page, request_locale, wants_page
from engine.i18n import translate
from engine.settings import Settings

# Room for multipart framing around the largest accepted file.
MULTIPART_OVERHEAD = 64 * 1024
_JSON_TYPES = ("application/json",)


@dataclass(frozen=True)
class BodyLimit:
    """The largest body an endpoint accepts, in bytes, and the environment variable that sets it."""

    limit: int
    setting: str


class RequestTooLarge(HTTPException):
    """A streamed body passed its limit while the endpoint read it.

    An HTTPException, because FastAPI turns any other error raised while it reads a body into a 400.
    """

    code = "request_too_large"

    def __init__(self, message: str, body_limit: BodyLimit) -> None:
        super().__init__(status_code=413, detail=message)
        self.details = {"limit": body_limit.limit, "setting": body_limit.setting}


def _too_large_message(request: Request, body_limit: BodyLimit, size: int | None) -> str:
    locale = request_locale(request)
    if size is None:
        return translate(locale, "The request body is over the limit of {limit} bytes for this endpoint; send a "
                                 "smaller body. The server setting {setting} sets the limit.",
                         limit=body_limit.limit, setting=body_limit.setting)
    return translate(locale, "The request body is {size} bytes, over the limit of {limit} bytes for this endpoint; "
                             "send a smaller body. The server setting {setting} sets the limit.",
                     size=size, limit=body_limit.limit, setting=body_limit.setting)


def _path_pattern(template: str) -> re.Pattern[str]:
    parts = re.split(r"(\{[^}]+\})", template)
    return re.compile("".join("[^/]+" if part.startswith("{") else re.escape(part) for part in parts) + "$")


def upload_operations(app: FastAPI) -> list[tuple[str, re.Pattern[str]]]:
    """Return (method, path pattern) of every operation whose documented request body is not JSON."""
    operations = []
    for template, methods in app.openapi().get("paths", {}).items():
        for method, operation in methods.items():
            content: dict[str, Any] = (operation.get("requestBody") or {}).get("content") or {}
            if content and not any(media_type in _JSON_TYPES for media_type in content):
                operations.append((method.upper(), _path_pattern(template)))
    return operations


class RequestBodyLimit:
    """ASGI middleware that returns 413 for a request body over its endpoint's limit."""

    def __init__(self, app: ASGIApp, api: FastAPI, settings: Settings) -> None:
        self.app = app
        self.api = api
        self.request_limit = BodyLimit(settings.max_request_bytes, "LIUHEN_MAX_REQUEST_BYTES")
        self.upload_limit = BodyLimit(settings.max_upload_bytes + MULTIPART_OVERHEAD, "LIUHEN_MAX_UPLOAD_BYTES")
        self._uploads: list[tuple[str, re.Pattern[str]]] | None = None

    def limit_for(self, method: str, path: str) -> BodyLimit:
        if self._uploads is None:
            # Built at the first request, once every router is included.
            self._uploads = upload_operations(self.api)
        if any(method == upload_method and pattern.match(path) for upload_method, pattern in self._uploads):
            return self.upload_limit
        return self.request_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        body_limit = self.limit_for(scope["method"], scope["path"])
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > body_limit.limit:
            request = Request(scope)
            message = _too_large_message(request, body_limit, int(declared))
            response: Response
            if wants_page(request):
                # A sign-in or other form posted from a page gets the error page, not JSON.
                response = error_page(request, message, 413)
            else:
                response = JSONResponse(status_code=413, content=error_body(
                    RequestTooLarge.code, message, {"limit": body_limit.limit, "setting": body_limit.setting}))
            await response(scope, receive, send)
            return

        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > body_limit.limit:
                    raise RequestTooLarge(_too_large_message(Request(scope), body_limit, None), body_limit)
            return message

        await self.app(scope, counting_receive, send)
