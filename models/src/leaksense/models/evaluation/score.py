"""Alerts matched to the truth: found leaks, delays, false alarms, faults.

Rules (docs/detection.md, "Evaluation protocol"):

- a test leak is **found** when a leak alert (burst, background leak, continuous
  flow) on one of its *right* series — its DMA's net inflow, its DMA's inlet meter,
  or the customer meter it is behind — is first raised between its start and its
  end + 1 h, and that alert's flow estimate is no more than five times the leak's
  flow (an alert that sees far more water than the leak was raised by something
  else, such as a garden-watering evening); the delay is ``detected_s − start``,
  ``detected_s`` being when the gateway had the alert (the arrival of the reading
  that raised it, events.py);
  it is found **in time** when that is no later than its deadline (48 h, 15 min, or
  before a ramp reaches 10 %);
- a leak alert raised while a leak runs on a series that carries its water (the
  right series, or an upstream DMA's inlet) is **true**;
- any other leak alert is **false**, unless it overlaps a sensor fault on that series
  (or on a meter a DMA series is made of), from its start to 2 h after its end: that
  is a *leak alert on a faulty sensor*, a failure of its own that must never happen;
- an injected fault is **reported** when a sensor-fault alert on that meter is raised
  from its start to 2 h after its end (clock drift: any time after its start).

Only alerts raised after the warm-up count; the exposure for false alarms is every
series (meters and DMA net inflows) over the test window, in months of 30.44 days.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

from leaksense.models.evaluation.build import Labelled, LabelledLeak
from leaksense.models.evaluation.events import AlertEvent
from leaksense.models.evaluation.ramps import last_night_pct
from leaksense.models.evaluation.replay import Topology
from leaksense.server.domain.same_water import AlertFacts, group_in_order
from leaksense.simulator.truth import FaultTruth

MATCH_AFTER_END_S = 3600.0
PLAUSIBLE_FACTOR = 5.0
FAULT_GUARD_S = 2 * 3600.0
DAY_S = 86_400.0
MONTH_S = 30.4375 * DAY_S


@dataclass(frozen=True, slots=True)
class LeakOutcome:
    """One test leak and how (and whether) a detector found it."""

    case: str
    kind: str
    size: float
    dma_id: str
    start_s: float
    deadline_s: float
    detected_s: float | None
    found_by: str | None
    """``<alert kind> on <series role>`` of the first matching alert."""
    snr: float | None = None
    """Bursts: flow ÷ σ of one reading of the DMA's series at that hour (snr.py)."""
    night_pct: float | None = None
    """Ramps: size on the last whole night before the deadline, % of night flow
    (ramps.py; None: no such night)."""
    estimated_start_s: float | None = None
    """The start that the alert which found the leak gave it (``started_at``)."""

    @property
    def delay_s(self) -> float | None:
        return None if self.detected_s is None else self.detected_s - self.start_s

    @property
    def start_error_s(self) -> float | None:
        """How far the alert's estimated start is from the true one (− early, + late)."""
        if self.estimated_start_s is None:
            return None
        return self.estimated_start_s - self.start_s

    @property
    def in_time(self) -> bool:
        return self.detected_s is not None and self.detected_s <= self.deadline_s


@dataclass(frozen=True, slots=True)
class Misfire:
    """A leak alert that matches no leak (false, or on a faulty sensor)."""

    case: str
    series_id: str
    role: str
    kind: str
    detected_s: float
    started_s: float
    explanation: str
    open_days: float = 0.0
    """How long it stayed open (to the end of the case if it never ended)."""


@dataclass(frozen=True, slots=True)
class FaultOutcome:
    case: str
    sensor_id: str
    kind: str
    reported: bool


@dataclass
class CaseScore:
    """Everything one detector did on one case."""

    case: str
    set: str
    event: str
    network: str
    noise: str
    season: str
    leaks: list[LeakOutcome] = field(default_factory=list)
    true_alerts: int = 0
    false_alarms: list[Misfire] = field(default_factory=list)
    on_faulty: list[Misfire] = field(default_factory=list)
    faults: list[FaultOutcome] = field(default_factory=list)
    series_months: float = 0.0
    fault_alerts: int = 0
    spurious_fault_alerts: int = 0
    """Sensor-fault alerts on a series none of whose meters had a fault then."""
    grouped_false: int = 0
    """False alarms that the server puts in an earlier alert's event (the same leak
    seen by another series: ``domain/same_water.py``): nobody is notified of them."""
    true_under_false: int = 0
    """True leak alerts that the server puts in the event of a false alarm."""
    error: str | None = None
    """The detector crashed on this case: what it raised (its leaks count as missed)."""


def _fault_end_s(fault: FaultTruth, window_end_s: float) -> float:
    if fault.kind == "counter_reset":
        return fault.start.timestamp()
    return window_end_s if fault.end is None else fault.end.timestamp()


def _fault_windows(
    labelled: Labelled, faults: tuple[FaultTruth, ...], topology: Topology
) -> dict[str, list[tuple[float, float]]]:
    """Series id → fault windows of the meters it is made of (with the guard)."""
    end_s = labelled.scenario.end.timestamp()
    by_sensor: dict[str, list[tuple[float, float]]] = {}
    for f in faults:
        window = (f.start.timestamp(), _fault_end_s(f, end_s) + FAULT_GUARD_S)
        by_sensor.setdefault(f.sensor_id, []).append(window)
    return {
        series: [w for m in members for w in by_sensor.get(m, [])]
        for series, members in topology.members.items()
    }


def _explains(leak: LabelledLeak, event: AlertEvent) -> bool:
    """Raised while the leak runs, and not seeing far more water than it loses."""
    during = leak.start_s <= event.detected_s <= leak.end_s + MATCH_AFTER_END_S
    return during and event.flow_m3h <= PLAUSIBLE_FACTOR * leak.flow_at(event.detected_s)


def _found(leak: LabelledLeak, events: list[AlertEvent], topology: Topology) -> AlertEvent | None:
    right = topology.right_series(leak)
    matching = [e for e in events if e.series_id in right and _explains(leak, e)]
    return min(matching, key=lambda e: e.detected_s, default=None)


def is_true(event: AlertEvent, leaks: tuple[LabelledLeak, ...], topology: Topology) -> bool:
    return any(
        event.series_id in topology.carrying_series(leak) and _explains(leak, event)
        for leak in leaks
    )


def score_case(
    labelled: Labelled,
    faults: tuple[FaultTruth, ...],
    topology: Topology,
    events: list[AlertEvent],
    snr: Mapping[str, float] | None = None,
) -> CaseScore:
    """Match one detector's events on one case against the case's truth (``snr``:
    each burst's signal-to-noise ratio by leak id, copied into its outcome)."""
    case = labelled.case
    test_start_s, end_s = labelled.test_start_s, labelled.scenario.end.timestamp()
    events = [e for e in events if e.detected_s >= test_start_s]
    leak_events = [e for e in events if e.is_leak]
    out = CaseScore(
        case.name, case.set, case.event.kind, case.network, case.noise.name, case.season.name
    )
    out.series_months = len(topology.roles) * (end_s - test_start_s) / MONTH_S
    out.leaks = [_outcome(leak, labelled, leak_events, topology, snr) for leak in labelled.leaks]
    windows = _fault_windows(labelled, faults, topology)
    _judge_alerts(out, labelled, leak_events, topology, windows)
    _judge_faults(out, faults, [e for e in events if e.kind == "sensor_fault"], windows, end_s)
    return out


def _outcome(
    leak: LabelledLeak,
    labelled: Labelled,
    leak_events: list[AlertEvent],
    topology: Topology,
    snr: Mapping[str, float] | None,
) -> LeakOutcome:
    """When (and by what) one leak was found."""
    hit = _found(leak, leak_events, topology)
    zone, interval_s = labelled.scenario.zone, labelled.scenario.interval_s
    return LeakOutcome(
        case=labelled.case.name,
        kind=leak.kind,
        size=leak.size,
        dma_id=leak.dma_id,
        start_s=leak.start_s,
        deadline_s=leak.deadline_s,
        detected_s=None if hit is None else hit.detected_s,
        found_by=None if hit is None else f"{hit.kind} on {topology.roles[hit.series_id]}",
        snr=(snr or {}).get(leak.leak_id),
        night_pct=last_night_pct(leak, zone, interval_s) if leak.kind == "incipient" else None,
        estimated_start_s=None if hit is None else hit.started_s,
    )


def _judge_alerts(
    out: CaseScore,
    labelled: Labelled,
    leak_events: list[AlertEvent],
    topology: Topology,
    windows: Mapping[str, list[tuple[float, float]]],
) -> None:
    """Each leak alert: true, false, or raised on a faulty sensor; and which ones the
    server groups into an earlier alert's event."""
    heads = _events(leak_events, topology)
    true = {e.alert_id for e in leak_events if is_true(e, labelled.leaks, topology)}
    for e in leak_events:
        head = heads.get(e.alert_id)
        if e.alert_id in true:
            out.true_alerts += 1
            out.true_under_false += head is not None and head not in true
            continue
        out.grouped_false += head is not None
        misfire = Misfire(
            case=labelled.case.name,
            series_id=e.series_id,
            role=topology.roles[e.series_id],
            kind=e.kind,
            detected_s=e.detected_s,
            started_s=e.started_s,
            explanation=e.explanation,
            open_days=((e.ended_s or labelled.scenario.end.timestamp()) - e.detected_s) / DAY_S,
        )
        faulty = any(a <= e.detected_s and e.started_s <= b for a, b in windows[e.series_id])
        (out.on_faulty if faulty else out.false_alarms).append(misfire)


def _events(leak_events: list[AlertEvent], topology: Topology) -> dict[str, str]:
    """Alert id → the first alert of its event, as the server links them on arrival."""
    arrivals = sorted(leak_events, key=lambda e: (e.detected_s, e.alert_id))
    return group_in_order(
        topology.water,
        (
            AlertFacts(
                e.alert_id,
                topology.subject(e.series_id),
                e.kind,
                datetime.fromtimestamp(e.started_s, UTC),
                datetime.fromtimestamp(e.detected_s, UTC),
                e.flow_m3h,
            )
            for e in arrivals
        ),
    )


def _judge_faults(
    out: CaseScore,
    faults: tuple[FaultTruth, ...],
    fault_events: list[AlertEvent],
    windows: Mapping[str, list[tuple[float, float]]],
    end_s: float,
) -> None:
    """Sensor-fault alerts: which injected faults were reported, and which alerts had
    no fault behind them."""
    out.fault_alerts = len(fault_events)
    out.spurious_fault_alerts = sum(
        1
        for e in fault_events
        if not any(a <= e.detected_s and e.started_s <= b for a, b in windows[e.series_id])
    )
    for f in faults:
        start = f.start.timestamp()
        stop = end_s if f.kind == "clock_drift" else _fault_end_s(f, end_s) + FAULT_GUARD_S
        reported = any(
            e.series_id == f.sensor_id and start <= e.detected_s <= stop for e in fault_events
        )
        out.faults.append(FaultOutcome(out.case, f.sensor_id, f.kind, reported))
