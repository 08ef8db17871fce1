"""Training histories read from the reading store: a sensor's flow, a DMA's net inflow.

Every store query is bounded in time (the store refuses more than 400 days) and in
rows; history is read a week at a time, and a week that hits the row limit is
continued from its last reading, so a fast meter never loads in one query.

A DMA's net inflow is built with the gateway's own :class:`DmaAggregator`, on the
same time buckets, so the server learns exactly the series the gateway will watch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

import numpy as np
import numpy.typing as npt

from leaksense.edge.detection.dma import DmaAggregator
from leaksense.server.stores.base import ReadingStore

FloatArray = npt.NDArray[np.float64]
SeriesKind = Literal["sensor", "dma"]
PAGE = timedelta(days=7)
PAGE_ROWS = 50_000
DEFAULT_INTERVAL_S = 300.0
"""The gateway's default ``detection.interval_s``, used when the meters' cannot be seen."""
_ONE_US = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class History:
    """One series' readings in time order (epoch seconds, m³/h)."""

    series_id: str
    kind: SeriesKind
    epoch_s: FloatArray
    flow_m3h: FloatArray

    @property
    def days(self) -> float:
        """Span of the history in days (0 with fewer than two readings)."""
        if self.epoch_s.size < 2:
            return 0.0
        return float(self.epoch_s[-1] - self.epoch_s[0]) / 86_400


def sensor_history(store: ReadingStore, sensor_id: str, start: datetime, end: datetime) -> History:
    """Every reading of a sensor in ``[start, end)``."""
    times: list[float] = []
    flows: list[float] = []
    page_start = start
    while page_start < end:
        page_end = min(page_start + PAGE, end)
        rows = store.readings(sensor_id, page_start, page_end, limit=PAGE_ROWS)
        times.extend(r.time.timestamp() for r in rows)
        flows.extend(r.flow_m3h for r in rows)
        full = len(rows) >= PAGE_ROWS
        page_start = rows[-1].time + _ONE_US if full else page_end
    return History(sensor_id, "sensor", np.asarray(times), np.asarray(flows))


def reporting_interval_s(histories: Sequence[History]) -> float:
    """The coarsest median spacing of the members' readings (whole seconds)."""
    spacings = [float(np.median(np.diff(h.epoch_s))) for h in histories if h.epoch_s.size > 1]
    return float(max(1, round(max(spacings)))) if spacings else DEFAULT_INTERVAL_S


def dma_history(  # noqa: PLR0917 - the DMA, its members, the period
    store: ReadingStore,
    dma_id: str,
    inlets: Sequence[str],
    outlets: Sequence[str],
    start: datetime,
    end: datetime,
    interval_s: float | None = None,
) -> History:
    """Net inflow Σ inlets − Σ outlets, one value per bucket where every member reported."""
    members = [sensor_history(store, s, start, end) for s in (*inlets, *outlets)]
    net_t: list[float] = []
    net_y: list[float] = []
    if inlets:
        bucket_s = interval_s or reporting_interval_s(members)
        aggregator = DmaAggregator(dma_id, inlets, outlets, bucket_s)
        times = np.concatenate([m.epoch_s for m in members])
        flows = np.concatenate([m.flow_m3h for m in members])
        owner = np.concatenate([np.full(m.epoch_s.size, i) for i, m in enumerate(members)])
        for i in np.argsort(times, kind="stable"):
            sensor_id = members[int(owner[i])].series_id
            for t_s, net in aggregator.add(sensor_id, float(times[i]), float(flows[i])):
                net_t.append(t_s)
                net_y.append(net)
    return History(dma_id, "dma", np.asarray(net_t), np.asarray(net_y))
