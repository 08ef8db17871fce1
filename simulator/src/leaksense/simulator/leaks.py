"""Pressure in a DMA and leak flows that follow it (FAVAD).

Pressure drops when demand rises (head loss grows with the square of the flow):
``P(t) = P_static − headloss_m × (D(t) / D_mean)²``, with ``P_static`` chosen so that
the mean of P over the window is the DMA's ``avg_pressure_m``; D is the demand
through the DMA's inlet excluding leaks (consumption, unbilled use, water passed on
downstream). So pressure, and leakage with it, peaks at night.

A leak's flow at average pressure, ``q_ref(t)``, depends on its kind — burst: a step
at ``start``; background: constant; incipient: ``flow_m3h`` at ``start`` growing
linearly (``growth_m3h_per_day``) or exponentially (``growth_per_day``) up to
``max_flow_m3h`` — and its actual flow is ``q_ref(t) × (P(t) / P_avg)^N1``
(water-loss-indicators.md §4), until ``repaired_at``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from leaksense.simulator.spec import LeakSpec
from leaksense.simulator.timegrid import SECONDS_PER_DAY, FloatArray, TimeGrid


def pressure_m(demand_m3h: FloatArray, avg_pressure_m: float, headloss_m: float) -> FloatArray:
    """Average zone pressure per step (m), mean ``avg_pressure_m`` over the window."""
    mean_m3h = float(demand_m3h.mean())
    if mean_m3h <= 0 or headloss_m == 0:
        return np.full(demand_m3h.shape, avg_pressure_m)
    loss = headloss_m * (demand_m3h / mean_m3h) ** 2
    static_m = avg_pressure_m + float(loss.mean())
    out: FloatArray = np.clip(static_m - loss, 0.0, None)
    return out


@dataclass(frozen=True, slots=True)
class ResolvedLeak:
    """A leak with its times in Unix seconds (``start_s`` None: already running)."""

    spec: LeakSpec
    start_s: float | None
    repaired_s: float | None

    def reference_m3h(self, grid: TimeGrid) -> FloatArray:
        """Flow at average pressure per step, before repair."""
        spec = self.spec
        if spec.kind != "incipient":
            return np.full(grid.n, spec.flow_m3h)
        begin_s = grid.start_s if self.start_s is None else self.start_s
        mid_s = grid.times_s() + grid.step_s / 2
        days = np.clip((mid_s - begin_s) / SECONDS_PER_DAY, 0.0, None)
        if spec.growth == "linear":
            grown = spec.flow_m3h + spec.growth_m3h_per_day * days
        else:
            grown = spec.flow_m3h * np.exp(spec.growth_per_day * days)
        cap = np.inf if spec.max_flow_m3h is None else spec.max_flow_m3h
        out: FloatArray = np.minimum(grown, cap)
        return out

    def flow_m3h(self, grid: TimeGrid, pressure: FloatArray, avg_pressure_m: float) -> FloatArray:
        """Actual mean flow per step: FAVAD on pressure, zero outside ``[start, repair)``."""
        begin_s = -np.inf if self.start_s is None else self.start_s
        end_s = np.inf if self.repaired_s is None else self.repaired_s
        active = grid.active_fraction(begin_s, end_s)
        favad = (pressure / avg_pressure_m) ** self.spec.n1_exponent
        out: FloatArray = self.reference_m3h(grid) * favad * active
        return out
