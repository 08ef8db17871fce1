"""The gateway's detector: one :class:`SeriesDetector` per sensor and per DMA.

Implements the edge :class:`~leaksense.edge.detector.Detector` Protocol, so the
gateway, ``leaksense detect`` and the evaluation run exactly the same code.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from leaksense.core.messages import Alert, AlertKind, Reading
from leaksense.edge.detection.artifact import DetectionParams, ModelArtifact
from leaksense.edge.detection.clock import LocalClock
from leaksense.edge.detection.dma import DmaAggregator
from leaksense.edge.detection.eventfile import events_path
from leaksense.edge.detection.history import FileHistory, history_path, prune_stale
from leaksense.edge.detection.modelfile import model_path
from leaksense.edge.detection.series import SeriesDetector


@dataclass(frozen=True, slots=True)
class DmaMeters:
    dma_id: str
    inlets: tuple[str, ...]
    outlets: tuple[str, ...] = ()


def whole_inflow_meters(dmas: Iterable[DmaMeters]) -> dict[str, str]:
    """Meter → the DMA whose whole net inflow it is (one inlet, nothing subtracted).

    The two are the same water: the DMA's series alerts for both, under the DMA's
    name, so that one leak makes one alert. The meter's faults are still its own.
    """
    return {d.inlets[0]: d.dma_id for d in dmas if len(d.inlets) == 1 and not d.outlets}


@dataclass(frozen=True, slots=True)
class EngineSettings:
    """What detection needs to know about the network and the calendar."""

    timezone: str = "Europe/Paris"
    holidays: tuple[date, ...] = ()
    warmup_days: float = 14.0
    interval_s: float = 300.0
    customer_meters: frozenset[str] = frozenset()
    dmas: tuple[DmaMeters, ...] = ()
    params: DetectionParams = field(default_factory=DetectionParams)
    history_dir: Path | None = None
    """Where each series keeps its refit history in a file (the gateway); None keeps
    it in RAM (``leaksense detect``, the evaluation)."""
    clock_tolerance_s: float = 300.0
    """A sensor clock further than this from the gateway's (beyond ``interval_s`` when
    late) is a sensor fault (skew.py)."""


class DetectionEngine:
    """Routes readings to their series (and to their DMA's series)."""

    def __init__(self, gateway_id: str, settings: EngineSettings) -> None:
        self.gateway_id = gateway_id
        self.settings = settings
        self.clock = LocalClock(settings.timezone, settings.holidays)
        self.series: dict[str, SeriesDetector] = {}
        self.dma_series: dict[str, SeriesDetector] = {}
        self._member_of: dict[str, list[DmaAggregator]] = {}
        self._multipliers: dict[str, float] = {}
        self._dma_alias = whole_inflow_meters(settings.dmas)
        if settings.history_dir is not None:
            prune_stale(settings.history_dir, time.time())
        for dma in settings.dmas:
            aggregator = DmaAggregator(dma.dma_id, dma.inlets, dma.outlets, settings.interval_s)
            self.dma_series[dma.dma_id] = self._new_series(dma.dma_id, is_dma=True)
            for sensor_id in (*dma.inlets, *dma.outlets):
                self._member_of.setdefault(sensor_id, []).append(aggregator)

    def observe(self, reading: Reading) -> list[Alert]:
        return self.observe_values(
            reading.sensor_id, reading.time.timestamp(), reading.flow_m3h, reading.index_m3
        )

    def observe_values(
        self,
        sensor_id: str,
        epoch_s: float,
        flow_m3h: float,
        index_m3: float | None = None,
        received_s: float | None = None,
    ) -> list[Alert]:
        """The hot path, without building a Reading (used by ``leaksense detect``)."""
        series = self.series.get(sensor_id)
        if series is None:
            series = self.series[sensor_id] = self._new_series(sensor_id)
        alerts = series.observe(epoch_s, flow_m3h, index_m3, received_s)
        if sensor_id in self._dma_alias:  # its DMA's series alerts for it
            alerts = [a for a in alerts if a.kind is AlertKind.SENSOR_FAULT]
        for aggregator in self._member_of.get(sensor_id, ()):
            dma = self.dma_series[aggregator.dma_id]
            dma.member_state(sensor_id, epoch_s, series)
            for bucket_s, net in aggregator.add(sensor_id, epoch_s, flow_m3h):
                alerts += dma.observe(bucket_s, net)
        return alerts

    def install(self, artifacts: Iterable[ModelArtifact]) -> int:
        """Use verified artifacts for the series they name; returns how many were used."""
        used = 0
        for artifact in artifacts:
            pool = self.dma_series if artifact.kind == "dma" else self.series
            series = pool.get(artifact.series_id)
            if series is None and artifact.kind == "sensor":
                series = self.series[artifact.series_id] = self._new_series(artifact.series_id)
            if series is not None:
                series.install(artifact)
                used += 1
        return used

    def set_sensitivity(self, multipliers: Mapping[str, float]) -> int:
        """False-alarm feedback: per-series threshold multipliers (1.0–2.0, see
        ``leaksense.edge.sensitivity``), kept for series not seen yet; returns how
        many existing series changed."""
        self._multipliers.update(multipliers)
        changed = 0
        for series_id, multiplier in multipliers.items():
            for pool in (self.series, self.dma_series):
                if series_id in pool:
                    pool[series_id].set_threshold_multiplier(multiplier)
                    changed += 1
        return changed

    def dismiss(self, alert_id: str, flow_m3h: float, resolution: str) -> Alert | None:
        """People judged the open leak alert ``alert_id`` not a leak: its series closes
        it and expects ``flow_m3h`` from now on (accepted.py). Returns the closing
        alert, or None when no series has it open (already closed, not ours)."""
        for pool in (self.series, self.dma_series):
            for series in pool.values():
                closed = series.dismiss(alert_id, flow_m3h, resolution)
                if closed is not None:
                    return closed
        return None

    def close(self) -> None:
        """Write the buffered refit history and what each series keeps across a
        restart (a clean shutdown)."""
        for pool in (self.series, self.dma_series):
            for series in pool.values():
                series.close()

    def warming_up(self) -> Sequence[str]:
        """Series still learning their normal behaviour."""
        every = {**self.series, **self.dma_series}
        return sorted(k for k, s in every.items() if s.artifact is None)

    def _new_series(self, series_id: str, *, is_dma: bool = False) -> SeriesDetector:
        s = self.settings
        directory = s.history_dir
        file = None if directory is None else history_path(directory, series_id, is_dma=is_dma)
        series = SeriesDetector(
            series_id,
            gateway_id=self.gateway_id,
            clock=self.clock,
            is_dma=is_dma,
            customer=series_id in s.customer_meters,
            warmup_s=s.warmup_days * 86_400,
            clock_tolerance_s=s.clock_tolerance_s,
            interval_s=s.interval_s,
            params=s.params,
            history=None if file is None else FileHistory(file),
            events_file=None if file is None else events_path(file),
            model_file=None if file is None else model_path(file),
        )
        multiplier = self._multipliers.get(series_id)
        if multiplier is not None:
            series.set_threshold_multiplier(multiplier)
        return series
