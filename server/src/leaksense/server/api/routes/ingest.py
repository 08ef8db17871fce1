"""``POST /api/v1/ingest``: gateways deliver batches of readings and alerts."""

from __future__ import annotations

from fastapi import APIRouter

from leaksense.core.messages import IngestBatch, IngestResult
from leaksense.server.api.deps import GatewayToken, SessionDep, StoreDep
from leaksense.server.services.ingest import ingest_batch

router = APIRouter(prefix="/api/v1", tags=["ingest"])


@router.post("/ingest")
def ingest(
    batch: IngestBatch, token: GatewayToken, session: SessionDep, store: StoreDep
) -> IngestResult:
    """Store a batch; answered only once the readings are durably stored."""
    return ingest_batch(session, store, token, batch)
