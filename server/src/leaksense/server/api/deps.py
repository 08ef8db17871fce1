"""Request dependencies: database session, reading store, tokens, limits, ingest body."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import ValidationError
from sqlalchemy.orm import Session

from leaksense.core.errors import AuthenticationError
from leaksense.server.api.limits import GatewayRateLimiter
from leaksense.server.db import ApiToken
from leaksense.server.metrics import ServerMetrics
from leaksense.server.runtime import Runtime
from leaksense.server.services.entities import TokenKind, authenticate
from leaksense.server.services.ingest import Ingestor
from leaksense.server.stores.base import ReadingStore
from leaksense.server.wire import DecodedBatch, decode_ingest

_bearer = HTTPBearer(auto_error=False)

# Dependencies that do no I/O are ``async``: FastAPI runs a plain ``def`` one in the
# thread pool, and each such hop costs about as much as the work of a small request.


async def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


async def get_limiter(request: Request) -> GatewayRateLimiter:
    limiter: GatewayRateLimiter = request.app.state.limiter
    return limiter


async def get_metrics(request: Request) -> ServerMetrics:
    metrics: ServerMetrics = request.app.state.metrics
    return metrics


async def get_ingestor(request: Request) -> Ingestor:
    ingestor: Ingestor = request.app.state.ingestor
    return ingestor


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
LimiterDep = Annotated[GatewayRateLimiter, Depends(get_limiter)]
MetricsDep = Annotated[ServerMetrics, Depends(get_metrics)]
IngestorDep = Annotated[Ingestor, Depends(get_ingestor)]


async def get_session(runtime: RuntimeDep) -> AsyncIterator[Session]:
    """A session for the request, closed after it.

    ``async`` so that opening and closing cost no thread hop: opening does no I/O
    (the connection is taken on first use, in the route's thread), and closing a
    session whose transaction ended only hands the connection back to the pool.
    """
    with runtime.sessions() as session:
        yield session


async def get_store(runtime: RuntimeDep) -> ReadingStore:
    return runtime.store


SessionDep = Annotated[Session, Depends(get_session)]
StoreDep = Annotated[ReadingStore, Depends(get_store)]
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def _token(session: Session, credentials: Credentials, kinds: tuple[TokenKind, ...]) -> ApiToken:
    if credentials is None:
        raise AuthenticationError("missing bearer token (Authorization: Bearer <token>)")
    return authenticate(session, credentials.credentials, kinds)


def gateway_token(session: SessionDep, credentials: Credentials, limiter: LimiterDep) -> ApiToken:
    """The gateway's token; counts the request against the gateway's request rate."""
    token = _token(session, credentials, ("gateway",))
    limiter.take_request(_gateway_id(token))
    return token


def _gateway_id(token: ApiToken) -> str:
    if token.gateway_id is None:  # pragma: no cover - gateway tokens always name one
        raise AuthenticationError(f"token {token.name!r} names no gateway")
    return token.gateway_id


def reader_token(session: SessionDep, credentials: Credentials) -> ApiToken:
    return _token(session, credentials, ("reader",))


def admin_token(session: SessionDep, credentials: Credentials) -> ApiToken:
    """An ``admin`` token: enters data (repairs) that changes what reports say."""
    return _token(session, credentials, ("admin",))


def report_token(session: SessionDep, credentials: Credentials) -> ApiToken:
    """A ``reader`` or ``admin`` token: who may read reports."""
    return _token(session, credentials, ("reader", "admin"))


def alert_reader_token(session: SessionDep, credentials: Credentials) -> ApiToken:
    """A ``reader``, ``admin`` or ``integration`` token: who may read alerts."""
    return _token(session, credentials, ("reader", "admin", "integration"))


def alert_actor_token(session: SessionDep, credentials: Credentials) -> ApiToken:
    """An ``admin`` or ``integration`` token: who may change alerts (audited as
    ``token:<name>``)."""
    return _token(session, credentials, ("admin", "integration"))


def metrics_access(runtime: RuntimeDep, session: SessionDep, credentials: Credentials) -> None:
    """A reader token, if ``metrics_require_token`` is set."""
    if runtime.settings.metrics_require_token:
        _token(session, credentials, ("reader",))


GatewayToken = Annotated[ApiToken, Depends(gateway_token)]


async def gateway_id(token: GatewayToken) -> str:
    """The id of the gateway the request's token belongs to."""
    return _gateway_id(token)


GatewayId = Annotated[str, Depends(gateway_id)]
ReaderToken = Annotated[ApiToken, Depends(reader_token)]
AdminToken = Annotated[ApiToken, Depends(admin_token)]
ReportToken = Annotated[ApiToken, Depends(report_token)]
AlertReaderToken = Annotated[ApiToken, Depends(alert_reader_token)]
AlertActorToken = Annotated[ApiToken, Depends(alert_actor_token)]
MetricsAccess = Depends(metrics_access)


async def raw_body(request: Request) -> bytes:
    """The request body as bytes, for routes that decode it themselves."""
    return await request.body()


RawBody = Annotated[bytes, Depends(raw_body)]


def decode_batch(body: bytes) -> DecodedBatch:
    """The ingest body validated in one pass (``leaksense.server.wire``); its errors
    become FastAPI's own, so that the 422 reads like any other."""
    try:
        return decode_ingest(body)
    except ValidationError as exc:
        errors = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        raise RequestValidationError(errors) from exc
