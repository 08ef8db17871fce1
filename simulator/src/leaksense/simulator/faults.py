"""Sensor faults, applied to what a meter reports (never to the water, never to truth).

Each fault kind is one function from a meter's readings to the readings a faulty
sensor would send, looked up in :data:`FAULTS`:

- ``dropout``: nothing is sent in ``[start, end)`` (radio, battery, gateway down);
- ``flatline``: the last value before ``start`` is repeated until ``end`` (frozen firmware);
- ``spikes``: ``count`` isolated readings in ``[start, end)`` report ``spike_flow_m3h``;
- ``counter_reset``: from ``start`` the index restarts from 0 (meter replaced, memory lost);
- ``clock_drift``: from ``start`` (to ``end``, then resynchronised) timestamps drift by
  ``drift_s_per_day``, while readings still happen every interval of real time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from leaksense.simulator.meters import MeterOutput
from leaksense.simulator.timegrid import SECONDS_PER_DAY, BoolArray, FloatArray, IntArray


@dataclass(frozen=True, slots=True)
class Fault:
    """A fault with resolved times (Unix seconds; ``end_s`` None: until the window ends)."""

    kind: str
    start_s: int
    end_s: int | None
    count: int = 3
    spike_flow_m3h: float = 9_999.0
    drift_s_per_day: float = 0.0

    def window(self, times_s: IntArray) -> BoolArray:
        inside = times_s >= self.start_s
        return inside if self.end_s is None else inside & (times_s < self.end_s)


def _dropout(out: MeterOutput, fault: Fault, _rng: np.random.Generator) -> MeterOutput:
    keep = ~fault.window(out.times_s)
    index = None if out.index_m3 is None else out.index_m3[keep]
    return MeterOutput(out.times_s[keep], out.flow_m3h[keep], index)


def _flatline(out: MeterOutput, fault: Fault, _rng: np.random.Generator) -> MeterOutput:
    stuck = fault.window(out.times_s)
    if not stuck.any():
        return out
    first = int(np.argmax(stuck))
    source = max(first - 1, 0)
    flow = np.where(stuck, out.flow_m3h[source], out.flow_m3h)
    index = None
    if out.index_m3 is not None:
        index = np.where(stuck, out.index_m3[source], out.index_m3)
    return MeterOutput(out.times_s, flow, index)


def _spikes(out: MeterOutput, fault: Fault, rng: np.random.Generator) -> MeterOutput:
    candidates = np.flatnonzero(fault.window(out.times_s))
    chosen = rng.choice(candidates, size=min(fault.count, candidates.size), replace=False)
    flow = out.flow_m3h.copy()
    flow[chosen] = fault.spike_flow_m3h
    return replace(out, flow_m3h=flow)


def _counter_reset(out: MeterOutput, fault: Fault, _rng: np.random.Generator) -> MeterOutput:
    after = out.times_s >= fault.start_s
    if out.index_m3 is None or not after.any():
        return out
    at_reset = out.index_m3[int(np.argmax(after))]
    return replace(out, index_m3=np.where(after, out.index_m3 - at_reset, out.index_m3))


def clock_shift_s(
    times_s: IntArray | FloatArray, start_s: float, end_s: float | None, drift_s_per_day: float
) -> FloatArray:
    """How far ahead of real time (s) a clock drifting from ``start_s`` to ``end_s`` is
    at each of ``times_s`` (0 outside; the evaluation replays arrivals with it too)."""
    times = np.asarray(times_s, dtype=np.float64)
    inside = (times >= start_s) & (times < (np.inf if end_s is None else end_s))
    return np.where(inside, drift_s_per_day * (times - start_s) / SECONDS_PER_DAY, 0.0)


def _clock_drift(out: MeterOutput, fault: Fault, _rng: np.random.Generator) -> MeterOutput:
    shift_s = clock_shift_s(out.times_s, fault.start_s, fault.end_s, fault.drift_s_per_day)
    return replace(out, times_s=out.times_s + np.round(shift_s).astype(np.int64))


FAULTS: dict[str, Callable[[MeterOutput, Fault, np.random.Generator], MeterOutput]] = {
    "dropout": _dropout,
    "flatline": _flatline,
    "spikes": _spikes,
    "counter_reset": _counter_reset,
    "clock_drift": _clock_drift,
}


def apply_faults(out: MeterOutput, faults: list[Fault], rng: np.random.Generator) -> MeterOutput:
    """The readings after every fault, in the scenario's order."""
    for fault in faults:
        out = FAULTS[fault.kind](out, fault, rng)
    return out
