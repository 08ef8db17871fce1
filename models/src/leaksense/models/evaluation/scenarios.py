"""The evaluation's grid of labelled cases, as data first and code that walks it second.

A case is one network (size and layout), one noise level, one season and one event:
nothing at all, a background leak, an incipient (growing) leak, a burst, a leak
behind a customer's meter, or sensor faults. Each event row has several variants
that rotate network, noise and season, so that every event meets every condition.
The first half of a row's variants forms the **tuning** set (parameters are chosen
on it), the second half the **held-out** set (results are reported on it); the two
halves have their own seeds and, for a given row, different (network, season) pairs.

Every window is ``days`` long and opens with ``warmup_days`` of normal life from
which the gateway learns; leaks and faults start after it (see :mod:`.build`).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import date
from typing import Literal

SetName = Literal["tuning", "heldout"]
Which = Literal["tuning", "heldout", "all"]
EventKind = Literal["none", "background", "incipient", "burst", "customer", "faults"]
FaultKind = Literal["dropout", "flatline", "spikes", "counter_reset", "clock_drift"]


@dataclass(frozen=True, slots=True)
class DmaLayout:
    """One DMA: ``connections`` service connections, most of them unmetered households."""

    dma_id: str
    connections: int
    mains_km: float
    pressure_m: float
    from_dma: str | None = None
    """Fed through the outlet of this DMA (a cascade)."""
    farms: int = 0
    """Farms among the unmetered consumers (they irrigate on summer nights)."""
    business_meter: bool = False
    farm_meter: bool = False
    """A farm with a smart meter: legitimate continuous use, day and night."""


NETWORKS: dict[str, tuple[DmaLayout, ...]] = {
    "rural-150": (DmaLayout("s", 150, 6.0, 45.0, farms=2, farm_meter=True),),
    "town-600": (DmaLayout("m", 600, 10.0, 50.0, business_meter=True),),
    "city-2000": (DmaLayout("l", 2000, 25.0, 55.0, business_meter=True),),
    "cascade-3x": (
        DmaLayout("a", 600, 9.0, 55.0, business_meter=True),
        DmaLayout("b", 300, 14.0, 48.0, from_dma="a"),
        DmaLayout("c", 150, 12.0, 60.0, from_dma="b"),
    ),
}
"""Single-DMA networks of 150, 600 and 2 000 connections, and three DMAs in cascade."""


@dataclass(frozen=True, slots=True)
class Noise:
    """How noisy the inlet meter and the consumers are."""

    name: str
    inlet_meter: str
    consumer_noise: float
    """Coefficient of variation of one household's flow per step (built-in: 1.0)."""
    daily_noise: float
    """Day-to-day variation shared by a group (built-in: 0.04)."""


NOISES: tuple[Noise, ...] = (
    Noise("clean", "bulk-em", 1.0, 0.04),
    Noise("noisy", "noisy-em", 2.0, 0.08),
    Noise("pulse", "bulk-pulse", 1.0, 0.04),
)
"""``noisy-em`` is a bulk meter with 3 % noise; ``bulk-pulse`` counts 100 L pulses."""


@dataclass(frozen=True, slots=True)
class Season:
    """A window opening at local midnight on ``start`` (a Monday)."""

    name: str
    start: date
    what: str
    school_holidays: tuple[tuple[date, date], ...] = ()


SEASONS: tuple[Season, ...] = (
    Season("winter", date(2026, 1, 12), "January–February, no holiday"),
    Season(
        "dst",
        date(2026, 3, 9),
        "DST change on 29 March (day 20), Easter Monday 6 April",
        ((date(2026, 4, 4), date(2026, 4, 19)),),
    ),
    Season(
        "holidays",
        date(2026, 4, 27),
        "1, 8, 14 (Ascension) and 25 May, a school 'pont', spring drift, gardens from May",
        ((date(2026, 5, 14), date(2026, 5, 17)),),
    ),
    Season(
        "summer",
        date(2026, 6, 22),
        "gardens every evening, farms irrigating at night, 14 July, school holidays",
        ((date(2026, 7, 4), date(2026, 8, 31)),),
    ),
)


@dataclass(frozen=True, slots=True)
class EventRow:
    """What happens in the test window; ``size`` is in the kind's unit (SIZE_UNITS)."""

    kind: EventKind
    size: float
    variants: int
    tuning_only: bool = False
    """Extra variants for choosing parameters (named ``…-x<n>``); never held out."""


SIZE_UNITS: dict[EventKind, str] = {
    "none": "",
    "background": "% of night flow",
    "incipient": "% of night flow per day",
    "burst": "% of mean flow",
    "customer": "L/h",
    "faults": "",
}

EVENTS: tuple[EventRow, ...] = (
    EventRow("none", 0, 12),
    EventRow("background", 2, 10),
    EventRow("background", 5, 10),
    EventRow("background", 10, 10),
    EventRow("background", 20, 10),
    EventRow("background", 50, 10),
    EventRow("incipient", 1, 8),
    EventRow("incipient", 2, 8),
    EventRow("incipient", 4, 8),
    EventRow("incipient", 8, 8),
    EventRow("burst", 10, 10),
    EventRow("burst", 20, 10),
    EventRow("burst", 50, 10),
    EventRow("burst", 100, 10),
    EventRow("customer", 10, 6),
    EventRow("customer", 30, 6),
    EventRow("customer", 100, 6),
    EventRow("faults", 0, 10),
    # Appended last so that the rows above keep their networks, seasons and seeds.
    # Bursts of 20 and 50 % are a few σ per reading on small or noisy DMAs: the
    # burst CUSUM's settings need more of them than half of ten variants to choose.
    EventRow("burst", 20, 8, tuning_only=True),
    EventRow("burst", 50, 8, tuning_only=True),
)

FAULT_KINDS: tuple[FaultKind, ...] = (
    "dropout",
    "flatline",
    "spikes",
    "counter_reset",
    "clock_drift",
)


@dataclass(frozen=True, slots=True)
class Case:
    """One labelled scenario to simulate and score."""

    name: str
    set: SetName
    event: EventRow
    network: str
    noise: Noise
    season: Season
    seed: int
    variant: int
    days: int = 42
    warmup_days: int = 14

    @property
    def faults(self) -> tuple[FaultKind, FaultKind]:
        """(fault on the inlet meter, fault on a customer meter) of a ``faults`` case."""
        return FAULT_KINDS[self.variant % 5], FAULT_KINDS[(self.variant + 2) % 5]


def _case(row: EventRow, r: int, v: int) -> Case:
    half = row.variants // 2
    s = 0 if v < half or row.tuning_only else 1
    tag = "x" if row.tuning_only else "v"
    name = (
        f"{row.kind}-{row.size:g}-{tag}{v}"
        if row.kind not in ("none", "faults")
        else (f"{row.kind}-{tag}{v}")
    )
    networks = list(NETWORKS)
    return Case(
        name=name,
        set="tuning" if s == 0 else "heldout",
        event=row,
        network=networks[(v + r) % len(networks)],
        noise=NOISES[(v + 2 * s + r) % len(NOISES)],
        season=SEASONS[(3 * v + s + r + r // 4) % len(SEASONS)],
        seed=zlib.crc32(name.encode()) % 1_000_000,
        variant=v,
    )


def grid() -> list[Case]:
    """Every case of the evaluation, tuning and held-out."""
    return [_case(row, r, v) for r, row in enumerate(EVENTS) for v in range(row.variants)]


QUICK_EVENTS: tuple[EventRow, ...] = (
    EventRow("none", 0, 1),
    EventRow("background", 50, 1),
    EventRow("burst", 100, 1),
    EventRow("faults", 0, 1),
)
"""Short cases (24 days) for tests: quiet, a big leak, a big burst, faults."""


def _quick(row: EventRow) -> Case:
    name = f"quick-{row.kind}"
    return Case(
        name=name,
        set="heldout",
        event=row,
        network="town-600",
        noise=NOISES[0],
        season=SEASONS[0],
        seed=zlib.crc32(name.encode()) % 1_000_000,
        variant=0,
        days=24,
    )


def cases(which: Which = "heldout", *, quick: bool = False) -> list[Case]:
    """The cases of one set (or all); ``quick``: four short cases for tests."""
    if quick:
        return [_quick(row) for row in QUICK_EVENTS]
    return [c for c in grid() if which in ("all", c.set)]
