"""Replay a simulation through a detector, causally: one reading at a time, in time order.

The engine is the gateway's own :class:`DetectionEngine`, told about the network as a
gateway config would tell it (DMA inlet and outlet meters, which meters are customers'),
so an alert at time t used nothing after t. The MNF baseline runs on the same series,
DMA net inflows included, built by the same :class:`DmaAggregator`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from leaksense.core.messages import Alert, AlertKind
from leaksense.edge.detection.artifact import DetectionParams, ModelArtifact
from leaksense.edge.detection.clock import LocalClock
from leaksense.edge.detection.dma import DmaAggregator
from leaksense.edge.detection.engine import (
    DetectionEngine,
    DmaMeters,
    EngineSettings,
    whole_inflow_meters,
)
from leaksense.models.evaluation.baseline import mnf_events
from leaksense.models.evaluation.build import LabelledLeak
from leaksense.models.evaluation.events import AlertEvent, EventLog
from leaksense.server.domain.same_water import DmaBoundary, Subject, WaterMap
from leaksense.server.domain.sensitivity import WINDOW_DAYS, multiplier
from leaksense.simulator.faults import clock_shift_s
from leaksense.simulator.generate import Simulation, merged_order
from leaksense.simulator.scenario import Scenario

FloatArray = npt.NDArray[np.float64]
Trainer = Callable[[str, str, FloatArray, FloatArray, LocalClock], ModelArtifact]
"""``(series_id, kind, epoch_s, flow_m3h, clock) -> artifact``: a pre-trainer."""


@dataclass(frozen=True)
class Topology:
    """Which series exist and how they relate: what scoring needs to judge an alert."""

    dmas: tuple[DmaMeters, ...]
    customers: frozenset[str]
    roles: dict[str, str]
    """Series id → ``dma``, ``inlet`` or ``customer``."""
    members: dict[str, tuple[str, ...]]
    """Series id → the meters whose readings it is made of (itself for a meter)."""
    upstream_inlets: dict[str, tuple[str, ...]]
    """DMA id → inlet meters of the DMAs upstream (they carry its water too)."""
    water: WaterMap
    """Which series carry the same water, as the server sees it (its DMAs' boundary
    meters, large users among the outlets, and customer meters)."""

    @classmethod
    def of(cls, scenario: Scenario) -> Topology:
        large = large_users(scenario)
        dmas = tuple(
            DmaMeters(
                dma.dma_id,
                (dma.inlet.sensor_id,),
                tuple(d.inlet.sensor_id for d in scenario.downstream(dma.dma_id))
                + large.get(dma.dma_id, ()),
            )
            for dma in scenario.dmas
        )
        roles: dict[str, str] = {s.sensor_id: s.role for s in scenario.sensors}
        if set(roles) & {d.dma_id for d in dmas}:
            raise ValueError("a DMA and a meter share an id: alerts would be ambiguous")
        roles |= {d.dma_id: "dma" for d in dmas}
        members = {s: (s,) for s in roles} | {d.dma_id: (*d.inlets, *d.outlets) for d in dmas}
        parent = {d.dma_id: d.inlet.from_dma for d in scenario.dmas}
        upstream: dict[str, tuple[str, ...]] = {}
        for d in scenario.dmas:
            chain, p = [], parent[d.dma_id]
            while p is not None:
                chain.append(next(x.inlet.sensor_id for x in scenario.dmas if x.dma_id == p))
                p = parent[p]
            upstream[d.dma_id] = tuple(chain)
        customers = frozenset(s.sensor_id for s in scenario.sensors if s.role == "customer")
        inside = [s for s in scenario.sensors if s.role == "customer"]
        water = WaterMap.of(
            DmaBoundary(
                d.dma_id,
                d.inlets,
                d.outlets,
                tuple(
                    s.sensor_id
                    for s in inside
                    if s.dma_id == d.dma_id and s.sensor_id not in d.outlets
                ),
            )
            for d in dmas
        )
        return cls(dmas, customers, roles, members, upstream, water)

    def subject(self, series_id: str) -> Subject:
        """An alert's subject on the server: a DMA's net inflow, or a meter."""
        if self.roles[series_id] == "dma":
            return Subject(dma_id=series_id)
        return Subject(sensor_id=series_id)

    @property
    def series_ids(self) -> list[str]:
        return sorted(self.roles)

    def right_series(self, leak: LabelledLeak) -> set[str]:
        """Where the leak should be found: its DMA, its inlet, the meter it is behind."""
        dma = next(d for d in self.dmas if d.dma_id == leak.dma_id)
        out = {dma.dma_id, *dma.inlets}
        return out | ({leak.customer_meter} if leak.customer_meter else set())

    def carrying_series(self, leak: LabelledLeak) -> set[str]:
        """Every series whose flow the leak really raises (an alert there is not false)."""
        return self.right_series(leak) | set(self.upstream_inlets[leak.dma_id])


LARGE_USER_M3_PER_DAY = 5.0
"""A single metered customer using this much (a farm: 8 m³/day, irrigating on summer
nights) is declared as its DMA's large user, as a utility declares its exceptional
night users: subtracted from the DMA's net inflow (``[[dmas]] large_users``)."""


def large_users(scenario: Scenario) -> dict[str, tuple[str, ...]]:
    """DMA id → its large metered users' meters."""
    return {
        dma.dma_id: tuple(
            meter.sensor_id
            for meter in dma.customer_meters
            if meter.count == 1 and meter.m3_per_day >= LARGE_USER_M3_PER_DAY
        )
        for dma in scenario.spec.dmas
    }


def engine_settings(
    scenario: Scenario, topology: Topology, params: DetectionParams, warmup_days: float
) -> EngineSettings:
    return EngineSettings(
        timezone=scenario.spec.timezone,
        holidays=tuple(sorted(scenario.holidays())),
        warmup_days=warmup_days,
        interval_s=float(scenario.interval_s),
        customer_meters=topology.customers,
        dmas=topology.dmas,
        params=params,
    )


Row = tuple[str, float, float, float | None, float]
"""``(sensor_id, epoch_s, flow_m3h, index_m3, received_s)``."""


def received_times(sim: Simulation) -> dict[str, FloatArray]:
    """When a gateway receives each reading: at the end of its interval of real time.

    A meter's reading is stamped with its interval's start, by its own clock; a
    ``clock_drift`` fault moves that stamp away from real time, not the arrival.
    """
    interval_s = float(sim.scenario.interval_s)
    out = {}
    for series in sim.series:
        stamped = series.times_s.astype(np.float64)
        received = stamped + interval_s
        for fault in sim.truth.faults:
            if fault.sensor_id != series.sensor_id or fault.kind != "clock_drift":
                continue
            end_s = None if fault.end is None else fault.end.timestamp()
            drift = fault.parameters["drift_s_per_day"]
            received -= clock_shift_s(stamped, fault.start.timestamp(), end_s, drift)
        out[series.sensor_id] = received
    return out


def _readings(sim: Simulation) -> Iterator[Row]:
    times, sensor, position = merged_order(sim.series)
    arrivals = received_times(sim)
    columns = [
        (
            s.sensor_id,
            s.flow_m3h.tolist(),
            None if s.index_m3 is None else s.index_m3.tolist(),
            arrivals[s.sensor_id].tolist(),
        )
        for s in sim.series
    ]
    for t, i, k in zip(times.tolist(), sensor.tolist(), position.tolist(), strict=True):
        sensor_id, flow, index, received = columns[i]
        yield sensor_id, float(t), flow[k], None if index is None else index[k], received[k]


@dataclass(frozen=True, slots=True)
class Verdicts:
    """Technicians who judge each burst and night-flow alert ``after_s`` after it is
    raised: one that ``is_true`` says no leak explains, still open, is dismissed as
    a false alarm. As the server and the gateway would, its series takes its flow as
    normal (accepted.py) and gets the threshold multiplier of its false alarms of
    the last 90 days (``server/domain/sensitivity.py``)."""

    after_s: float
    is_true: Callable[[AlertEvent], bool]


DISMISSIBLE = frozenset({AlertKind.BURST, AlertKind.BACKGROUND_LEAK})


def run_engine(
    sim: Simulation,
    settings: EngineSettings,
    artifacts: list[ModelArtifact] | None = None,
    verdicts: Verdicts | None = None,
) -> list[AlertEvent]:
    """Every alert event the gateway's engine raises on the simulation's readings, each
    received at the end of its interval of real time (the sensor clocks are checked);
    an event is detected when the reading that raised it arrived."""
    engine = DetectionEngine("eval", settings)
    if artifacts:
        engine.install(artifacts)
    log = EventLog()
    judges = None if verdicts is None else _Technicians(verdicts, engine, log)
    for sensor_id, epoch_s, flow, index, received_s in _readings(sim):
        if judges is not None:
            judges.judge_due(received_s)
        for alert in engine.observe_values(sensor_id, epoch_s, flow, index, received_s):
            if judges is not None:
                judges.raised(alert, received_s)
            log.add(alert, received_s)
    return list(log.events.values())


class _Technicians:
    """Judge each burst and night-flow alert a fixed time after it is raised."""

    def __init__(self, verdicts: Verdicts, engine: DetectionEngine, log: EventLog) -> None:
        self._verdicts, self._engine, self._log = verdicts, engine, log
        self._due: deque[tuple[float, str]] = deque()  # (verdict time, alert id)
        self._flows: dict[str, float] = {}  # each event's latest flow
        self._judged: dict[str, list[float]] = {}  # series → when its false alarms were

    def raised(self, alert: Alert, now_s: float) -> None:
        new = alert.alert_id not in self._log.events
        if new and alert.kind in DISMISSIBLE and alert.ended_at is None:
            self._due.append((now_s + self._verdicts.after_s, alert.alert_id))
        self._flows[alert.alert_id] = alert.flow_m3h

    def judge_due(self, now_s: float) -> None:
        while self._due and self._due[0][0] <= now_s:
            event = self._log.events[self._due.popleft()[1]]
            if event.ended_s is not None or self._verdicts.is_true(event):
                continue
            flow_m3h = self._flows[event.alert_id]
            closed = self._engine.dismiss(event.alert_id, flow_m3h, "false_alarm")
            if closed is not None:
                self._log.add(closed, now_s)
            self._less_sensitive(event.series_id, now_s)

    def _less_sensitive(self, series_id: str, now_s: float) -> None:
        since_s = now_s - 86_400 * WINDOW_DAYS
        judged = [t for t in self._judged.get(series_id, []) if t >= since_s] + [now_s]
        self._judged[series_id] = judged
        self._engine.set_sensitivity({series_id: multiplier(len(judged))})


def series_columns(
    sim: Simulation, topology: Topology, interval_s: float
) -> dict[str, tuple[FloatArray, FloatArray]]:
    """``series id -> (epoch_s, flow_m3h)`` of every meter and every DMA's net inflow."""
    out = {s.sensor_id: (s.times_s.astype(np.float64), s.flow_m3h) for s in sim.series}
    aggregators = [DmaAggregator(d.dma_id, d.inlets, d.outlets, interval_s) for d in topology.dmas]
    nets: dict[str, list[tuple[float, float]]] = {d.dma_id: [] for d in topology.dmas}
    for sensor_id, epoch_s, flow, _, _ in _readings(sim):
        for aggregator in aggregators:
            if sensor_id in aggregator.sign:
                nets[aggregator.dma_id] += aggregator.add(sensor_id, epoch_s, flow)
    for dma_id, rows in nets.items():
        array = np.asarray(rows, dtype=np.float64).reshape(-1, 2)
        out[dma_id] = (array[:, 0], array[:, 1])
    return out


def run_mnf(
    columns: dict[str, tuple[FloatArray, FloatArray]], clock: LocalClock, topology: Topology
) -> list[AlertEvent]:
    """The MNF rule's events on every series; like the engine, not twice on the same
    water (a meter that is its DMA's whole inflow)."""
    same_water = whole_inflow_meters(topology.dmas)
    return [
        event
        for series_id, (t, y) in sorted(columns.items())
        if series_id not in same_water
        for event in mnf_events(series_id, t, y, clock)
    ]


def pretrain(
    columns: dict[str, tuple[FloatArray, FloatArray]],
    topology: Topology,
    trainer: Trainer,
    clock: LocalClock,
    until_s: float,
) -> list[ModelArtifact]:
    """Artifacts trained by ``trainer`` on each series' readings before ``until_s``."""
    out = []
    for series_id, (t, y) in sorted(columns.items()):
        keep = t < until_s
        kind = "dma" if topology.roles[series_id] == "dma" else "sensor"
        out.append(trainer(series_id, kind, t[keep], y[keep], clock))
    return out
