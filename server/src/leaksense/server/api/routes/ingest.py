"""``POST /api/v1/ingest``: gateways deliver batches of readings and alerts."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from leaksense.core.messages import IngestBatch, IngestResult
from leaksense.server.api.deps import (
    GatewayId,
    IngestorDep,
    LimiterDep,
    MetricsDep,
    RawBody,
    SessionDep,
    decode_batch,
)

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


_SCHEMA = IngestBatch.model_json_schema()
_BODY = {
    "required": True,
    "content": {"application/json": {"schema": _inlined(_SCHEMA, _SCHEMA.get("$defs", {}))}},
}


@router.post("/ingest", openapi_extra={"requestBody": _BODY})
def ingest(
    *,
    gateway_id: GatewayId,
    body: RawBody,
    session: SessionDep,
    ingestor: IngestorDep,
    limiter: LimiterDep,
    metrics: MetricsDep,
) -> IngestResult:
    """Store an ``IngestBatch``; answered only once it is durably stored.

    A replay of a stored batch gets the same answer and writes nothing; 503 with
    ``Retry-After`` when a store is down, 429 over the gateway's rate. The body is
    decoded here rather than by FastAPI: one pass from bytes, without an object per
    reading (see ``leaksense.server.wire``).
    """
    batch = decode_batch(body)
    limiter.take_readings(gateway_id, len(batch.points))
    outcome = ingestor.ingest(session, gateway_id, batch)
    metrics.ingested(gateway_id, outcome)
    return outcome.result
