"""Domain errors mapped to HTTP once, for every route."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from leaksense.core.errors import (
    AuthenticationError,
    InvalidInput,
    LeaksenseError,
    NotFoundError,
    ServiceUnavailable,
)

log = logging.getLogger(__name__)

_STATUS: tuple[tuple[type[LeaksenseError], int], ...] = (
    (InvalidInput, 422),
    (AuthenticationError, 401),
    (NotFoundError, 404),
    (ServiceUnavailable, 503),
)


def _status(exc: LeaksenseError) -> int:
    return next((code for kind, code in _STATUS if isinstance(exc, kind)), 500)


async def _domain_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, LeaksenseError)
    status = _status(exc)
    headers: dict[str, str] = {}
    if isinstance(exc, AuthenticationError):
        headers["WWW-Authenticate"] = "Bearer"
    if isinstance(exc, ServiceUnavailable):
        headers["Retry-After"] = str(max(1, round(exc.retry_after_s)))
    request.app.state.rejected_requests += 1
    log.warning("%s %s -> %d: %s", request.method, request.url.path, status, exc)
    return JSONResponse({"detail": str(exc)}, status_code=status, headers=headers)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"loc": [str(p) for p in e["loc"]], "msg": e["msg"], "type": e["type"]}
        for e in exc.errors()
    ]
    shown = "; ".join(f"{'.'.join(e['loc'])}: {e['msg']}" for e in errors[:5])
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    request.app.state.rejected_requests += 1
    log.warning("%s %s -> 422: %s%s", request.method, request.url.path, shown, more)
    return JSONResponse({"detail": f"invalid request: {shown}{more}", "errors": errors}, 422)


def install(app: FastAPI) -> None:
    """Register the handlers and the rejected-request counter."""
    app.state.rejected_requests = 0
    app.add_exception_handler(LeaksenseError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
