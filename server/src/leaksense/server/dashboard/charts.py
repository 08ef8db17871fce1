"""Flow charts of the dashboard: readings around an alert, hourly flow of a sensor or DMA.

They reuse the reports' SVG line chart (``render/svg.py``), whose x axis is evenly
spaced: readings are put into fixed time buckets first (mean per bucket, a gap where
there is none), so the axis is time. A DMA's flow is its net inflow, Σ inlet − Σ
outlet meters, in the buckets where every meter reported.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo

from markupsafe import Markup
from sqlalchemy.orm import Session

from leaksense.core.messages import Reading
from leaksense.server.render.svg import Series, line_chart
from leaksense.server.services import entities
from leaksense.server.stores.base import ReadingStore

BUCKETS = 120
BEFORE_EVENT = timedelta(hours=6)
AFTER_EVENT = timedelta(hours=6)
MAX_EVENT_SPAN = timedelta(hours=48)
MAX_READINGS = 50_000
HOUR = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class Chart:
    svg: Markup
    points: int
    """Buckets with a value: 0 means there was nothing to draw."""


def dma_meters(session: Session, dma_id: str) -> list[tuple[str, int]]:
    """``(sensor_id, +1 inlet / −1 outlet)`` of a DMA's boundary meters."""
    inlets, outlets = entities.dma_meters(session, dma_id)
    return [(s, 1) for s in inlets] + [(s, -1) for s in outlets]


def event_window(
    started_at: datetime, detected_at: datetime, ended_at: datetime | None, now: datetime
) -> tuple[datetime, datetime]:
    """From 6 h before the start to 6 h after the end (or detection), at most 48 h, not
    past ``now``."""
    start = started_at - BEFORE_EVENT
    end = min(max(detected_at, ended_at or detected_at) + AFTER_EVENT, start + MAX_EVENT_SPAN)
    end = min(end, max(now, detected_at + timedelta(minutes=1)))
    return start, end


def _bucketed(
    readings: Sequence[Reading], start: datetime, step: timedelta, n: int
) -> list[float | None]:
    sums = [0.0] * n
    counts = [0] * n
    for r in readings:
        i = int((r.time - start) / step)
        if 0 <= i < n:
            sums[i] += r.flow_m3h
            counts[i] += 1
    return [s / c if c else None for s, c in zip(sums, counts, strict=True)]


def _step(span: timedelta, series: Sequence[Sequence[Reading]]) -> timedelta:
    """About ``BUCKETS`` buckets, but none shorter than the readings' usual interval
    (else a 10-minute series in 6-minute buckets draws as dots)."""
    gaps = sorted(b.time - a.time for rs in series for a, b in itertools.pairwise(rs))
    usual = gaps[len(gaps) // 2] if gaps else timedelta(0)
    return max(span / BUCKETS, usual, timedelta(minutes=1))


def _hourly(store: ReadingStore, sensor_id: str, start: datetime, n: int) -> list[float | None]:
    values: list[float | None] = [None] * n
    for h in store.hourly_flow(sensor_id, start, start + HOUR * n):
        i = int((h.hour_start - start) / HOUR)
        if 0 <= i < n:
            values[i] = h.mean_flow_m3h
    return values


def _net(columns: Sequence[tuple[int, list[float | None]]], n: int) -> list[float | None]:
    out: list[float | None] = []
    for i in range(n):
        values = [(sign, col[i]) for sign, col in columns]
        if not values or any(v is None for _, v in values):
            out.append(None)
        else:
            out.append(sum(sign * (v or 0.0) for sign, v in values))
    return out


def _labels(start: datetime, step: timedelta, n: int, lang: str, zone: tzinfo) -> list[str]:
    """Local times of the buckets (buckets themselves are UTC: a DST change only makes
    one label repeat or skip, as the wall clock does)."""
    fmt = "%d/%m %H:%M" if lang == "fr" else "%m-%d %H:%M"
    return [(start + step * i).astimezone(zone).strftime(fmt) for i in range(n)]


def _chart(
    title: str, name: str, values: list[float | None], labels: list[str], markers: list[int]
) -> Chart:
    svg = line_chart(
        title, labels, [Series(name, values, "#1f77b4")], left_unit="m³/h", markers=markers
    )
    return Chart(Markup(svg), sum(v is not None for v in values))  # noqa: S704 - svg.py escapes


def event_chart(
    session: Session,
    store: ReadingStore,
    *,
    sensor_id: str | None,
    dma_id: str | None,
    window: tuple[datetime, datetime],
    marks: Sequence[datetime],
    title: str,
    lang: str,
    zone: tzinfo = UTC,
) -> Chart:
    """The flow of the alert's sensor (or its DMA's net inflow) over ``window``."""
    start, end = window
    meters = [(sensor_id, 1)] if sensor_id is not None else dma_meters(session, dma_id or "")
    series = [store.readings(m, start, end, limit=MAX_READINGS) for m, _ in meters]
    step = _step(end - start, series)
    n = max(1, math.ceil((end - start) / step))
    signs = [sign for _, sign in meters]
    columns = [(g, _bucketed(rs, start, step, n)) for g, rs in zip(signs, series, strict=True)]
    values = _net(columns, n)
    name = sensor_id or dma_id or ""
    markers = [int((m - start) / step) for m in marks]
    return _chart(title, name, values, _labels(start, step, n, lang, zone), markers)


def hourly_chart(
    store: ReadingStore,
    meters: Sequence[tuple[str, int]],
    *,
    end: datetime,
    days: int,
    title: str,
    name: str,
    lang: str,
    zone: tzinfo = UTC,
) -> Chart:
    """Hourly mean flow over ``days`` days before ``end`` (one meter, or a DMA's net)."""
    last_hour = end.astimezone(UTC).replace(minute=0, second=0, microsecond=0) + HOUR
    n = 24 * days
    start = last_hour - HOUR * n
    if len(meters) == 1 and meters[0][1] == 1:
        values = _hourly(store, meters[0][0], start, n)
    else:
        values = _net([(sign, _hourly(store, m, start, n)) for m, sign in meters], n)
    return _chart(title, name, values, _labels(start, HOUR, n, lang, zone), [])
