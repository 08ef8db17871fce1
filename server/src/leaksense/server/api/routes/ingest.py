"""``POST /api/v1/ingest``: gateways deliver batches of readings and alerts."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import State

from leaksense.core.errors import AuthenticationError
from leaksense.core.messages import IngestBatch, IngestColumns, IngestResult
from leaksense.server.api.deps import Credentials, decode_batch
from leaksense.server.api.limits import GatewayRateLimiter
from leaksense.server.metrics import ServerMetrics
from leaksense.server.runtime import Runtime
from leaksense.server.services.entities import authenticate
from leaksense.server.services.ingest import Ingestor

router = APIRouter(prefix="/api/v1", tags=["ingest"])


def _inlined(schema: Any, defs: dict[str, Any]) -> Any:
    """``schema`` with its ``#/$defs/...`` references replaced by their (non-recursive)
    definitions: OpenAPI resolves ``#/`` against its own document, not the schema."""
    if isinstance(schema, list):
        return [_inlined(item, defs) for item in schema]
    if not isinstance(schema, dict):
        return schema
    if "$ref" in schema:
        return _inlined(defs[schema["$ref"].rsplit("/", 1)[1]], defs)
    return {k: _inlined(v, defs) for k, v in schema.items() if k != "$defs"}


def _schema(model: type[IngestBatch | IngestColumns]) -> Any:
    schema = model.model_json_schema()
    return _inlined(schema, schema.get("$defs", {}))


_BODY = {
    "required": True,
    "content": {
        "application/json": {"schema": {"oneOf": [_schema(IngestColumns), _schema(IngestBatch)]}}
    },
}


@router.post("/ingest", openapi_extra={"requestBody": _BODY}, response_model=IngestResult)
async def ingest(request: Request, credentials: Credentials) -> Response:
    """Store a batch, ``IngestColumns`` (schema 2, what gateways send) or
    ``IngestBatch`` (schema 1); answered only once it is durably stored.

    A replay of a stored batch gets the same answer and writes nothing; 503 with
    ``Retry-After`` when a store is down, 429 over the gateway's rate. The body is
    decoded here rather than by FastAPI: one pass from bytes, without an object per
    reading (see ``leaksense.server.wire``). The request's work after reading the
    body runs in one worker thread: each dependency FastAPI runs in the thread pool
    would cost a hop of its own, about as long as decoding 1 000 readings.
    """
    body = await request.body()
    token = credentials.credentials if credentials is not None else None
    result = await run_in_threadpool(_ingest, request.app.state, token, body)
    return Response(result.model_dump_json(), media_type="application/json")


def _ingest(state: State, token: str | None, body: bytes) -> IngestResult:
    """In the order of the checks of every gateway route: the token (401), the request
    rate (429), then the body (422) and the readings rate (429)."""
    runtime: Runtime = state.runtime
    ingestor: Ingestor = state.ingestor
    limiter: GatewayRateLimiter = state.limiter
    metrics: ServerMetrics = state.metrics
    with runtime.sessions() as session:
        gateway_id = _gateway_id(session, token)
        limiter.take_request(gateway_id)
        batch = decode_batch(body)
        limiter.take_readings(gateway_id, len(batch.readings))
        outcome = ingestor.ingest(session, gateway_id, batch)
    metrics.ingested(gateway_id, outcome)
    return outcome.result


def _gateway_id(session: Session, token: str | None) -> str:
    """The gateway a live gateway token belongs to (as ``deps.gateway_id``)."""
    if token is None:
        raise AuthenticationError("missing bearer token (Authorization: Bearer <token>)")
    record = authenticate(session, token, ("gateway",))
    if record.gateway_id is None:  # pragma: no cover - gateway tokens always name one
        raise AuthenticationError(f"token {record.name!r} names no gateway")
    return record.gateway_id
