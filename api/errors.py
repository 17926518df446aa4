"""Turn every error into JSON with a stable code and a message in the reader's language, in one place."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import DataError, SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException

from engine.db import database_unavailable
from engine.errors import InvalidInput, LiuhenError
from engine.i18n import Message, msg, normalize_locale, translate

logger = logging.getLogger(__name__)

# OpenAPI entry of every endpoint: the response while the database is out of reach.
DATABASE_UNAVAILABLE_RESPONSES: dict[int | str, dict[str, Any]] = {503: {
    "description": "database_unavailable: the database cannot be reached or the connection broke. Send the "
                   "request again after the seconds in Retry-After. A change whose response was lost may have "
                   "been saved, so send it again with the same Idempotency-Key to have it applied once.",
}}


def request_locale(request: Request) -> str:
    return normalize_locale(request.query_params.get("lang") or request.headers.get("accept-language"))


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def _jsonable(value: Any, locale: str) -> Any:
    """Convert an error's context to JSON: messages in the reader's locale, other objects as text."""
    if isinstance(value, Message):
        return value.render(locale)
    if isinstance(value, dict):
        return {str(key): _jsonable(item, locale) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(item, locale) for item in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def liuhen_error_content(error: LiuhenError, locale: str) -> dict[str, Any]:
    """Return the JSON body of an error response: its code, its message in ``locale`` and its context."""
    return error_body(error.code, error.render(locale), _jsonable(error.context, locale))


def value_out_of_range(exc: SQLAlchemyError) -> InvalidInput | None:
    """Return a 422 error for a request value the database cannot hold, such as an id beyond 64 bits, or None."""
    if isinstance(exc, DataError) or isinstance(getattr(exc, "orig", None), OverflowError):
        return InvalidInput(msg("A number or text in the request is too large for the database; numbers must lie "
                                "between {low} and {high}. Correct the request and send it again.",
                                low=-(2**63), high=2**63 - 1))
    return None


# The reasons of pydantic's common validation errors, by error type, in the reader's language. Each takes its
# values from the error's context; another type keeps pydantic's English text.
_VALIDATION_REASONS = {
    "string_too_long": msg("it is longer than {max_length} characters"),
    "string_too_short": msg("it is shorter than {min_length} characters"),
    "string_type": msg("it must be text"),
    "int_parsing": msg("it must be a whole number"),
    "int_type": msg("it must be a whole number"),
    "bool_parsing": msg("it must be true or false"),
    "bool_type": msg("it must be true or false"),
    "dict_type": msg("it must be a JSON object"),
    "list_type": msg("it must be a list"),
    "greater_than_equal": msg("it must be at least {ge}"),
    "less_than_equal": msg("it must be at most {le}"),
    "literal_error": msg("it must be one of {expected}"),
    "extra_forbidden": msg("the request does not take this field"),
}


def _validation_reason(problem: Any, locale: str) -> str:
    reason = _VALIDATION_REASONS.get(problem.get("type", ""))
    context = {key: str(value) for key, value in (problem.get("ctx") or {}).items()}
    try:
        return Message(reason.msgid, context).render(locale) if reason is not None else str(problem.get("msg", ""))
    except (KeyError, IndexError):
        # The context lacks a value the message names, so pydantic's own text describes the problem instead.
        return str(problem.get("msg", ""))


def wants_page(request: Request) -> bool:
    """Browsers reading the web pages get an HTML error page; API clients always get JSON."""
    return not request.url.path.startswith("/api/") and "text/html" in request.headers.get("accept", "")


def error_page(request: Request, message: str, status: int, headers: dict[str, str] | None = None) -> Response:
    """Render the web pages' error page with ``message`` and the HTTP ``status``."""
    from api.pages import render

    page = render("error.html", request, message=message, actor=None)
    page.status_code = status
    page.headers.update(headers or {})
    return page


def install(app: FastAPI) -> None:
    @app.exception_handler(LiuhenError)
    async def _liuhen_error(request: Request, exc: LiuhenError) -> Response:
        if exc.status >= 500:
            logger.warning("request failed: %s", exc, extra={"code": exc.code})
        if wants_page(request):
            return error_page(request, exc.render(request_locale(request)), exc.status, getattr(exc, "headers", {}))
        return JSONResponse(status_code=exc.status, content=liuhen_error_content(exc, request_locale(request)),
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(SQLAlchemyError)
    async def _database_error(request: Request, exc: SQLAlchemyError) -> Response:
        # Database.write() and read() translate these already; this catches connections opened elsewhere.
        unavailable = database_unavailable(exc)
        if unavailable is None:
            out_of_range = value_out_of_range(exc)
            if out_of_range is not None:
                return await _liuhen_error(request, out_of_range)
            return await _unexpected(request, exc)
        return await _liuhen_error(request, unavailable)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = exc.errors()
        first = problems[0] if problems else {"loc": (), "msg": ""}
        location = ".".join(str(part) for part in first.get("loc", ()) if part != "body") or "body"
        locale = request_locale(request)
        if first.get("type") == "missing":
            message = translate(locale, "Request field {field} is missing; add it and send the request again.",
                                field=location)
        elif first.get("type") == "json_invalid":
            message = translate(locale, "The request body is not valid JSON; correct it and send the request again.")
            location = "body"
        else:
            message = translate(locale,
                                "Request field {field} is invalid: {reason}. Correct it and send the request again.",
                                field=location, reason=_validation_reason(first, locale))
        return JSONResponse(status_code=422, content=error_body(
            "invalid_request", message, {"field": location, "problems": len(problems)}))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        locale = request_locale(request)
        if exc.status_code == 404:
            message = translate(locale, "No endpoint at {path}; see /docs for the API.", path=request.url.path)
            code = "not_found"
        elif exc.status_code == 405:
            message = translate(locale, "Method {method} is not allowed on {path}.", method=request.method,
                                path=request.url.path)
            code = "method_not_allowed"
        else:
            message = str(exc.detail)
            code = getattr(exc, "code", "http_error")
        if code == "request_too_large" and wants_page(request):
            return error_page(request, message, exc.status_code)
        return JSONResponse(status_code=exc.status_code,
                            content=error_body(code, message, getattr(exc, "details", None)),
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unexpected error on %s %s", request.method, request.url.path)
        message = translate(request_locale(request),
                            "An internal error occurred; nothing was saved. Try again, and report it if it repeats.")
        return JSONResponse(status_code=500, content=error_body("internal_error", message))
