"""Domain errors mapped to HTTP once, for every route, and counted by status.

The entity database has no adapter of its own (services use SQLAlchemy sessions),
so its "cannot reach the database" errors are translated here, to
:class:`StoreUnavailable` (503 + ``Retry-After``), like the reading store's.
The body size limit (413) answers from its middleware (``limits.py``).
"""

from __future__ import annotations

import logging
import math

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from leaksense.core.errors import (
    AuthenticationError,
    Conflict,
    InvalidInput,
    LeaksenseError,
    NotFoundError,
    RateLimited,
    ServiceUnavailable,
    StoreUnavailable,
)
from leaksense.server.metrics import ServerMetrics

log = logging.getLogger(__name__)

_STATUS: tuple[tuple[type[LeaksenseError], int], ...] = (
    (InvalidInput, 422),
    (AuthenticationError, 401),
    (NotFoundError, 404),
    (Conflict, 409),
    (RateLimited, 429),
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
        headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after_s)))
    _metrics(request).rejected(status)
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
    _metrics(request).rejected(422)
    log.warning("%s %s -> 422: %s%s", request.method, request.url.path, shown, more)
    return JSONResponse({"detail": f"invalid request: {shown}{more}", "errors": errors}, 422)


async def _entity_db_error(request: Request, exc: Exception) -> JSONResponse:
    unavailable = StoreUnavailable(f"the entity database is unavailable: {exc}".splitlines()[0])
    return await _domain_error(request, unavailable)


def _metrics(request: Request) -> ServerMetrics:
    metrics: ServerMetrics = request.app.state.metrics
    return metrics


def install(app: FastAPI) -> None:
    """Register the handlers (``app.state.metrics`` counts what they refuse)."""
    app.add_exception_handler(LeaksenseError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(OperationalError, _entity_db_error)
    app.add_exception_handler(PoolTimeout, _entity_db_error)
