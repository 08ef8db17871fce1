"""Read endpoints: DMA yield, sensor readings, health."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import AwareDatetime

from leaksense.core.messages import Reading
from leaksense.server.api.deps import ReaderToken, RuntimeDep, SessionDep, StoreDep
from leaksense.server.services.network_yield import YieldReport, compute_yield

router = APIRouter(prefix="/api/v1", tags=["network"])


@router.get("/dmas/{dma_id}/yield")
def dma_yield(
    dma_id: str,
    start: AwareDatetime,
    end: AwareDatetime,
    _token: ReaderToken,
    session: SessionDep,
    store: StoreDep,
) -> YieldReport:
    """P104.3 yield of a DMA over ``[start, end)`` (whole UTC hours)."""
    return compute_yield(session, store, dma_id, start, end)


@router.get("/sensors/{sensor_id}/readings")
def sensor_readings(
    sensor_id: str,
    start: AwareDatetime,
    end: AwareDatetime,
    _token: ReaderToken,
    store: StoreDep,
    limit: int = 10_000,
) -> list[Reading]:
    """Raw readings of a sensor over a bounded period."""
    return store.readings(sensor_id, start, end, limit=min(limit, 100_000))


@router.get("/health")
def health(runtime: RuntimeDep) -> dict[str, str]:
    """Liveness and store reachability (503 when the reading store is down)."""
    runtime.store.ping()
    return {"status": "ok", "reading_store": runtime.settings.reading_store}
