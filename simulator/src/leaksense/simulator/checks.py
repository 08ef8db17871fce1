"""Checks that span fields of a scenario file: references, unique ids, intervals.

Each problem is a ``(location, message)`` pair, the location being a path into the
file like pydantic's, so the loader names the line of the offending field.
"""

from __future__ import annotations

from collections.abc import Iterator
from math import gcd

from leaksense.simulator.demand import CONSUMER_TYPES
from leaksense.simulator.meters import METER_MODELS, meter_models
from leaksense.simulator.spec import (
    SECONDS_PER_DAY,
    ConsumerGroupSpec,
    CustomerMeterSpec,
    Loc,
    ScenarioSpec,
    iter_sensors,
)

Problem = tuple[Loc, str]
MIN_GRID_S = 60
MAX_GRID_S = 900  # demand changes within the hour; DST offsets are on quarter hours


def reference_errors(spec: ScenarioSpec) -> list[Problem]:
    """Every cross-field problem of ``spec`` (empty when the file is consistent)."""
    return [
        *_names(spec),
        *_ids(spec),
        *_intervals(spec),
        *_topology(spec),
        *_leaks(spec),
        *_faults(spec),
    ]


def _names(spec: ScenarioSpec) -> Iterator[Problem]:
    types = set(CONSUMER_TYPES) | set(spec.consumer_types)
    models = set(METER_MODELS) | set(spec.meter_models)
    if spec.start is not None and spec.start.absolute is None:
        yield ("start",), "the scenario's start must be a date or datetime, not an offset"
    for name, ctype in spec.consumer_types.items():
        if ctype.base is not None and ctype.base not in CONSUMER_TYPES:
            yield ("consumer_types", name, "base"), f"unknown built-in type {ctype.base!r}"
    for name, model in spec.meter_models.items():
        if model.base is not None and model.base not in METER_MODELS:
            yield ("meter_models", name, "base"), f"unknown built-in meter model {model.base!r}"
    yield from _group_names(spec, types, models)


def _group_names(spec: ScenarioSpec, types: set[str], models: set[str]) -> Iterator[Problem]:
    for d, dma in enumerate(spec.dmas):
        groups: list[tuple[str, int, ConsumerGroupSpec | CustomerMeterSpec]] = [
            *(("consumers", g, group) for g, group in enumerate(dma.consumers)),
            *(("customer_meters", g, group) for g, group in enumerate(dma.customer_meters)),
        ]
        for kind, g, group in groups:
            if group.type not in types:
                yield ("dmas", d, kind, g, "type"), f"unknown consumer type {group.type!r}"
            if group.meter not in models:
                yield ("dmas", d, kind, g, "meter"), f"unknown meter model {group.meter!r}"
        if dma.inlet.meter not in models:
            yield ("dmas", d, "inlet", "meter"), f"unknown meter model {dma.inlet.meter!r}"


def _duplicates(items: list[tuple[str, Loc]], what: str) -> Iterator[Problem]:
    seen: set[str] = set()
    for value, loc in items:
        if value in seen:
            yield loc, f"duplicate {what} {value!r}"
        seen.add(value)


def _ids(spec: ScenarioSpec) -> Iterator[Problem]:
    yield from _duplicates(
        [(dma.dma_id, ("dmas", d, "dma_id")) for d, dma in enumerate(spec.dmas)], "dma_id"
    )
    yield from _duplicates([(s, loc) for s, loc, _, _ in iter_sensors(spec)], "sensor_id")
    yield from _duplicates(
        [(leak.leak_id, ("leaks", i, "leak_id")) for i, leak in enumerate(spec.leaks)], "leak_id"
    )
    events: list[tuple[str, Loc]] = [
        (event.event_id, ("dmas", d, "unbilled", e, "event_id"))
        for d, dma in enumerate(spec.dmas)
        for e, event in enumerate(dma.unbilled)
    ]
    yield from _duplicates(events, "event_id")


def grid_step_s(spec: ScenarioSpec) -> int:
    """Simulation step: the largest divisor of every meter interval up to 15 min."""
    step = 0
    for _, _, _, interval_s in iter_sensors(spec):
        step = gcd(step, interval_s or spec.interval_s)
    return next(d for d in range(min(step, MAX_GRID_S), 0, -1) if step % d == 0)


def _intervals(spec: ScenarioSpec) -> list[Problem]:
    problems: list[Problem] = []
    if SECONDS_PER_DAY % spec.interval_s:
        problems.append((("interval_s",), "must divide a day (86400 s)"))
    for _, loc, _, interval_s in iter_sensors(spec):
        if interval_s is not None and SECONDS_PER_DAY % interval_s:
            problems.append(((*loc[:-1], "interval_s"), "must divide a day (86400 s)"))
    if not problems and grid_step_s(spec) < MIN_GRID_S:
        problems.append((("interval_s",), f"meter intervals share a step below {MIN_GRID_S} s"))
    return problems


def _topology(spec: ScenarioSpec) -> Iterator[Problem]:
    """Every ``from_dma`` names another DMA and the cascade has no loop."""
    upstream = {dma.dma_id: dma.inlet.from_dma for dma in spec.dmas}
    for d, dma in enumerate(spec.dmas):
        source = dma.inlet.from_dma
        loc: Loc = ("dmas", d, "inlet", "from_dma")
        if source is not None and (source not in upstream or source == dma.dma_id):
            yield loc, f"unknown or own DMA {source!r}"
            continue
        seen, current = {dma.dma_id}, source
        while current is not None and current in upstream:
            if current in seen:
                yield loc, f"DMA {dma.dma_id!r} feeds itself through a loop"
                break
            seen.add(current)
            current = upstream[current]


def _leaks(spec: ScenarioSpec) -> Iterator[Problem]:
    dmas = {dma.dma_id: dma for dma in spec.dmas}
    for i, leak in enumerate(spec.leaks):
        dma = dmas.get(leak.dma)
        if dma is None:
            yield ("leaks", i, "dma"), f"unknown DMA {leak.dma!r}"
            continue
        meters = {s for group in dma.customer_meters for s in group.sensor_ids()}
        if leak.customer_meter is not None and leak.customer_meter not in meters:
            yield (
                ("leaks", i, "customer_meter"),
                f"no customer meter {leak.customer_meter!r} in DMA {leak.dma!r}",
            )


def _faults(spec: ScenarioSpec) -> Iterator[Problem]:
    sensors = {s: m for s, _, m, _ in iter_sensors(spec)}
    models = meter_models(spec)
    for i, fault in enumerate(spec.faults):
        if fault.sensor_id not in sensors:
            yield ("faults", i, "sensor_id"), f"unknown sensor {fault.sensor_id!r}"
        elif fault.kind == "counter_reset":
            model = models.get(sensors[fault.sensor_id])
            if model is not None and not model.reports_index:
                yield ("faults", i, "kind"), f"the meter of {fault.sensor_id!r} reports no index"
