"""Billing: customer registers read on cycles that do not follow calendar months.

Customers are read in ``rounds`` (tournées de relève): round ``r`` is read every
``cycle_days`` from ``first_read`` shifted by ``r × cycle_days / rounds`` days, so
each DMA gets several overlapping billing periods. The simulation opens every
register at the window's start and closes it at its end, so the billed periods cover
the window exactly. Billed volume is what the registers counted: under-registration
and flows below the starting flow are never billed (apparent losses). Telemetry
faults do not touch bills: readers look at the register itself.
"""

from __future__ import annotations

import zlib
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise

import numpy as np

from leaksense.simulator.scenario import Scenario
from leaksense.simulator.timegrid import SECONDS_PER_DAY, FloatArray, TimeGrid, from_unix_s, unix_s

VOLUME_DECIMALS = 3


@dataclass(frozen=True, slots=True)
class BilledPeriod:
    """Volume billed to a DMA's customers over ``[period_start, period_end)``."""

    dma_id: str
    period_start: datetime
    period_end: datetime
    volume_m3: float


@dataclass(frozen=True, slots=True)
class CustomerBill:
    """Volume billed to one account (a metered customer, or a round of a consumer group)."""

    customer_id: str
    dma_id: str
    period_start: datetime
    period_end: datetime
    volume_m3: float


@dataclass(frozen=True, slots=True)
class Account:
    """What one billing account's register counted, per grid step (m³/h)."""

    customer_id: str
    dma_id: str
    round: int
    registered_m3h: FloatArray


def round_of(customer_id: str, rounds: int) -> int:
    """Stable read round of a metered customer (the same for every seed)."""
    return zlib.crc32(customer_id.encode()) % rounds


def read_boundaries(scenario: Scenario, grid: TimeGrid, round_: int) -> list[int]:
    """Grid indices of the reads of ``round_``, window start and end included."""
    billing = scenario.spec.billing
    first = scenario.start if billing.first_read is None else scenario.at(billing.first_read)
    cycle_s = billing.cycle_days * SECONDS_PER_DAY
    shift_s = round(round_ * billing.cycle_days / billing.rounds) * SECONDS_PER_DAY
    anchor_s = unix_s(first) + shift_s
    k = -((anchor_s - grid.start_s) // cycle_s)  # first read at or after the window start
    reads, read_s = [], anchor_s + k * cycle_s
    while read_s < grid.end_s:
        reads.append(grid.index(read_s))
        read_s += cycle_s
    return sorted({0, *reads, grid.n})


def bill(
    scenario: Scenario, grid: TimeGrid, accounts: list[Account]
) -> tuple[list[BilledPeriod], list[CustomerBill]]:
    """Per-DMA periods (what ``leaksense server import-billing`` takes) and per-account bills."""
    boundaries = {
        r: read_boundaries(scenario, grid, r) for r in range(scenario.spec.billing.rounds)
    }
    per_dma: dict[tuple[str, int, int], float] = defaultdict(float)
    customers = []
    for account in accounts:
        cumulative = np.concatenate(([0.0], np.cumsum(account.registered_m3h) * grid.step_h))
        bounds = boundaries[account.round]
        for lo, hi in pairwise(bounds):
            volume_m3 = float(cumulative[hi] - cumulative[lo])
            per_dma[(account.dma_id, lo, hi)] += volume_m3
            customers.append(
                CustomerBill(
                    account.customer_id,
                    account.dma_id,
                    _time(grid, lo),
                    _time(grid, hi),
                    round(volume_m3, VOLUME_DECIMALS),
                )
            )
    periods = [
        BilledPeriod(dma_id, _time(grid, lo), _time(grid, hi), round(volume_m3, VOLUME_DECIMALS))
        for (dma_id, lo, hi), volume_m3 in sorted(per_dma.items(), key=_period_order)
    ]
    return periods, customers


def _period_order(item: tuple[tuple[str, int, int], float]) -> tuple[int, int, str]:
    (dma_id, lo, hi), _ = item
    return lo, hi, dma_id


def _time(grid: TimeGrid, index: int) -> datetime:
    return from_unix_s(grid.start_s + index * grid.step_s)
