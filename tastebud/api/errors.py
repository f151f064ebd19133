"""Machine-readable errors: every 4xx/5xx body is ``{"error": {"code", "message", ...}}``.

Handlers here turn every failure, including FastAPI's own validation errors, Starlette's
404/405 and anything unexpected, into that shape, so a client never has to parse HTML or a
traceback, and a client's mistake is never a 500.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import iter_route_contexts
from starlette.exceptions import HTTPException as StarletteHTTPException

from tastebud.gateway.ingestion import GatewayUnavailable
from tastebud.gateway.ratelimit import retry_after_header
from tastebud.observability import get_logger
from tastebud.stores import StoreDataError, StoreError

log = get_logger("tastebud.api")

RETRY_AFTER_UNAVAILABLE = 5.0


class ApiError(Exception):
    """An error with an HTTP status and a stable code clients can switch on."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        details: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.details = details


def error_body(
    code: str, message: str, request: Request | None = None, details: Any = None
) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    request_id = getattr(request.state, "request_id", None) if request is not None else None
    if request_id:
        error["request_id"] = request_id
    if details is not None:
        error["details"] = details
    return {"error": error}


def error_response(
    status: int,
    code: str,
    message: str,
    request: Request | None = None,
    *,
    headers: dict[str, str] | None = None,
    details: Any = None,
) -> JSONResponse:
    return JSONResponse(
        error_body(code, message, request, details), status_code=status, headers=headers
    )


STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "body_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "rate_limited",
}


RULE_CODES = frozenset({"invalid_id", "id_too_long", "invalid_text", "invalid_number"})


def _validation_details(error: RequestValidationError) -> list[dict[str, Any]]:
    """FastAPI's error list without the offending input (it may hold secrets or be huge)."""
    return [
        {
            "loc": [str(part) for part in detail.get("loc", ())],
            "type": str(detail.get("type", "")),
            "msg": str(detail.get("msg", "")),
        }
        for detail in error.errors()
    ]


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route answers on this path: Starlette names only the first route's,
    and a path may be served by several (POST and DELETE /v1/push/subscriptions)."""
    methods: set[str] = set()
    path = request.url.path
    for route in iter_route_contexts(request.app.routes):
        pattern = getattr(route, "path_regex", None)
        if pattern is not None and pattern.match(path):
            methods.update(getattr(route, "methods", None) or ())
    return sorted(methods)


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, error: ApiError) -> JSONResponse:
        return error_response(
            error.status,
            error.code,
            error.message,
            request,
            headers=error.headers,
            details=error.details,
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        details = _validation_details(error)
        # An id or text rule broken anywhere answers with the code a body field gets
        # (``invalid_id``, ``id_too_long``, ``invalid_text``): the same 422 on every route.
        named = [d for d in details if d["type"] in RULE_CODES]
        code = named[0]["type"] if named else "invalid_request"
        message = (
            f"{named[0]['loc'][-1]}: {named[0]['msg']}"
            if named and named[0]["loc"]
            else "the request's parameters are invalid"
        )
        return error_response(422, code, message, request, details=details)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, error: StarletteHTTPException) -> JSONResponse:
        code = getattr(error, "code", None) or STATUS_CODES.get(error.status_code, "http_error")
        message = error.detail if isinstance(error.detail, str) else code.replace("_", " ")
        headers = dict(error.headers or {})
        if error.status_code == 405:
            headers["Allow"] = ", ".join(_allowed_methods(request))
        return error_response(error.status_code, code, message, request, headers=headers)

    @app.exception_handler(StoreDataError)
    async def _refused(request: Request, error: StoreDataError) -> JSONResponse:
        # Permanent: the store refused the data itself. Not a 503 (a retry cannot help).
        log.warning("store_refused_data", error=str(error)[:300])
        return error_response(
            422, "unstorable", "a store refused the data; nothing was changed", request
        )

    @app.exception_handler(GatewayUnavailable)
    @app.exception_handler(StoreError)
    async def _unavailable(request: Request, error: Exception) -> JSONResponse:
        log.error("store_unavailable", error=str(error)[:300])
        return error_response(
            503,
            "store_unavailable",
            "a store is unavailable; nothing was acknowledged, retry later",
            request,
            headers={"Retry-After": retry_after_header(RETRY_AFTER_UNAVAILABLE)},
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, error: Exception) -> JSONResponse:
        log.exception("unhandled_error", error_type=type(error).__name__)
        return error_response(500, "internal_error", "an unexpected error occurred", request)
