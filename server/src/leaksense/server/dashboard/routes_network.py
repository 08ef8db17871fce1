"""Sensors, DMAs and gateways: when each was last heard of, gateway health, flow charts.

A sensor or gateway is ``ok`` if heard of within 15 minutes, ``late`` within 2 hours,
``silent`` beyond (or never). Charts show the hourly mean flow of the 7 days up to
the last reading (a sensor that went silent still shows its last week).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from sqlalchemy import select

from leaksense.core.errors import NotFoundError
from leaksense.server.api.deps import SessionDep, StoreDep
from leaksense.server.dashboard import catalogue as cat
from leaksense.server.dashboard.auth import NetworkViewer
from leaksense.server.dashboard.charts import dma_meters, hourly_chart
from leaksense.server.dashboard.routes_alerts import alerts_in
from leaksense.server.dashboard.web import PREFIX, DashboardRoute, lang_of, render, zone_of
from leaksense.server.db import Dma, Sensor
from leaksense.server.services import entities
from leaksense.server.services.gateways import list_gateways
from leaksense.server.workflow import service as workflow

router = APIRouter(prefix=PREFIX, route_class=DashboardRoute, include_in_schema=False)

LATE_AFTER = timedelta(minutes=15)
SILENT_AFTER = timedelta(hours=2)
Days = Annotated[int, Query(ge=1, le=31)]


def status(last_seen_at: datetime | None, now: datetime) -> str:
    """``ok``, ``late`` or ``silent`` (see the module docstring)."""
    if last_seen_at is None or now - last_seen_at > SILENT_AFTER:
        return "silent"
    return "late" if now - last_seen_at > LATE_AFTER else "ok"


@dataclass(frozen=True, slots=True)
class SensorRow:
    sensor_id: str
    dma_id: str | None
    role: str
    last_seen_at: datetime | None
    status: str


def _sensor_rows(session: SessionDep, now: datetime) -> list[SensorRow]:
    sensors = session.scalars(select(Sensor).order_by(Sensor.sensor_id)).all()
    return [
        SensorRow(s.sensor_id, s.dma_id, s.role, s.last_seen_at, status(s.last_seen_at, now))
        for s in sensors
    ]


@router.get("/network")
def network(request: Request, user: NetworkViewer, session: SessionDep) -> Response:
    """Every DMA (open alerts), sensor (last seen) and gateway (health)."""
    now = datetime.now(UTC)
    dmas = session.scalars(select(Dma).order_by(Dma.dma_id)).all()
    open_alerts = Counter(
        a.dma_id for a in workflow.list_alerts(session, state="open", limit=1000) if a.dma_id
    )
    gateways = [(g, status(g.last_seen_at, now)) for g in list_gateways(session)]
    return render(
        request, "network.html", user, dmas=dmas, open_alerts=open_alerts,
        sensors=_sensor_rows(session, now), gateways=gateways,
    )  # fmt: skip


@router.get("/sensors/{sensor_id}")
def sensor_page(
    *, request: Request, sensor_id: str, user: NetworkViewer, session: SessionDep, store: StoreDep,
    days: Days = 7,
) -> Response:  # fmt: skip
    sensor = session.get(Sensor, sensor_id)
    if sensor is None:
        raise NotFoundError(f"sensor {sensor_id!r} does not exist")
    lang = lang_of(request)
    now = datetime.now(UTC)
    chart = hourly_chart(
        store, [(sensor_id, 1)], end=sensor.last_seen_at or now, days=days,
        title=cat.t("hourly_chart", lang), name=sensor_id, lang=lang, zone=zone_of(request),
    )  # fmt: skip
    row = SensorRow(
        sensor.sensor_id, sensor.dma_id, sensor.role, sensor.last_seen_at,
        status(sensor.last_seen_at, now),
    )  # fmt: skip
    return render(request, "sensor.html", user, sensor=row, chart=chart, days=days)


@router.get("/dmas/{dma_id}")
def dma_page(
    *, request: Request, dma_id: str, user: NetworkViewer, session: SessionDep, store: StoreDep,
    days: Days = 7,
) -> Response:  # fmt: skip
    dma = entities.get_dma(session, dma_id)
    meters = dma_meters(session, dma_id)
    lang = lang_of(request)
    last = [s.last_seen_at for s in _sensor_rows(session, datetime.now(UTC))
            if s.last_seen_at and s.sensor_id in {m for m, _ in meters}]  # fmt: skip
    chart = hourly_chart(
        store, meters, end=max(last, default=datetime.now(UTC)), days=days,
        title=cat.t("dma_chart", lang), name=dma_id, lang=lang, zone=zone_of(request),
    )  # fmt: skip
    alerts = alerts_in(session, dma_id)[:50]
    return render(
        request, "dma.html", user, dma=dma, meters=meters, chart=chart, alerts=alerts, days=days
    )
