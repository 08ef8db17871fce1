"""Scenarios: a validated scenario file placed in time, and the built-in ones.

A scenario file (:mod:`~leaksense.simulator.spec`, documented in
``docs/scenario-format.md``) says *what* the network is and what happens to it; a
:class:`Scenario` is that file with a start and a length, so that relative times
(``+7d10h``) and local times become UTC instants. Built-in scenarios are YAML files
shipped in ``leaksense/simulator/scenarios/``: they are also the format's examples.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cached_property, partial
from importlib import resources
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from leaksense.core.errors import ConfigError
from leaksense.simulator.builtin import BUILTIN_NAMES
from leaksense.simulator.demand import ConsumerType, consumer_types
from leaksense.simulator.meters import MeterModel, meter_models
from leaksense.simulator.spec import DmaSpec, ScenarioSpec, When
from leaksense.simulator.timegrid import french_public_holidays
from leaksense.simulator.yamlfile import parse_scenario

SensorRole = Literal["inlet", "outlet", "customer"]
DEFAULT_START = datetime(2026, 1, 5, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class SensorSpec:
    """One meter that reports readings: a DMA inlet or a customer meter.

    A DMA fed by another DMA (``outlet_of``) has as inlet the meter that is also the
    upstream DMA's outlet: one physical meter, one series of readings.
    """

    sensor_id: str
    role: SensorRole
    dma_id: str
    meter: MeterModel
    interval_s: int
    initial_index_m3: float = 0.0
    esphome_node: str | None = None
    outlet_of: str | None = None


@dataclass(frozen=True)
class Scenario:
    """A scenario file from ``start`` (UTC) for ``days`` days."""

    spec: ScenarioSpec
    start: datetime
    days: int

    @classmethod
    def from_spec(
        cls, spec: ScenarioSpec, start: datetime | None = None, days: int | None = None
    ) -> Scenario:
        """Place ``spec`` in time: ``start``/``days`` override the file's own."""
        if start is None:
            start = DEFAULT_START if spec.start is None else _absolute(spec, spec.start)
        if start.tzinfo is None or start.utcoffset() is None:
            raise ConfigError(f"scenario start {start.isoformat()} must be timezone-aware")
        days = spec.days if days is None else days
        if days < 1:
            raise ConfigError("days must be >= 1")
        return cls(spec, start.astimezone(UTC), days)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def site(self) -> str:
        return self.spec.site

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.spec.timezone)

    @property
    def end(self) -> datetime:
        """End of the window (exclusive)."""
        return self.start + timedelta(days=self.days)

    @property
    def interval_s(self) -> int:
        """Default reporting interval of the scenario's meters."""
        return self.spec.interval_s

    @property
    def dmas(self) -> tuple[DmaSpec, ...]:
        return self.spec.dmas

    @property
    def dma_id(self) -> str:
        """The first DMA (the only one of single-DMA scenarios such as Saint-Savin)."""
        return self.spec.dmas[0].dma_id

    @property
    def inlet(self) -> SensorSpec:
        """Inlet meter of the first DMA."""
        return next(s for s in self.sensors if s.role == "inlet")

    @cached_property
    def consumer_types(self) -> dict[str, ConsumerType]:
        return consumer_types(self.spec)

    @cached_property
    def meter_models(self) -> dict[str, MeterModel]:
        return meter_models(self.spec)

    @cached_property
    def sensors(self) -> tuple[SensorSpec, ...]:
        """Every reporting meter, DMA by DMA: inlet first, then customer meters."""
        out = []
        for dma in self.dmas:
            inlet = dma.inlet
            out.append(
                SensorSpec(
                    inlet.sensor_id,
                    "inlet",
                    dma.dma_id,
                    self.meter_models[inlet.meter],
                    inlet.interval_s or self.interval_s,
                    inlet.initial_index_m3,
                    inlet.esphome_node,
                    inlet.from_dma,
                )
            )
            for group in dma.customer_meters:
                model = self.meter_models[group.meter]
                interval_s = group.interval_s or self.interval_s
                out += [
                    SensorSpec(
                        sensor_id,
                        "customer",
                        dma.dma_id,
                        model,
                        interval_s,
                        group.initial_index_m3,
                        group.esphome_node,
                    )
                    for sensor_id in group.sensor_ids()
                ]
        return tuple(out)

    def network_roles(self) -> list[tuple[str, str, SensorRole]]:
        """``(sensor_id, dma_id, role)``: link meters appear as inlet and as outlet."""
        roles: list[tuple[str, str, SensorRole]] = [
            (s.sensor_id, s.dma_id, s.role) for s in self.sensors
        ]
        roles += [(s.sensor_id, s.outlet_of, "outlet") for s in self.sensors if s.outlet_of]
        return roles

    def downstream(self, dma_id: str) -> list[DmaSpec]:
        """DMAs fed through an outlet of ``dma_id``."""
        return [dma for dma in self.dmas if dma.inlet.from_dma == dma_id]

    def at(self, when: When) -> datetime:
        """A moment of the file as a UTC instant."""
        if when.offset_s is not None:
            return self.start + timedelta(seconds=when.offset_s)
        return _absolute(self.spec, when)

    def holidays(self) -> set[date]:
        """Public holidays (local dates) around the window, plus the file's own."""
        years = range(self.start.year - 1, self.end.year + 2)
        public = french_public_holidays(years) if self.spec.public_holidays == "FR" else set()
        return public | set(self.spec.holidays)


def _absolute(spec: ScenarioSpec, when: When) -> datetime:
    if when.absolute is None:
        raise ConfigError("start: a scenario's own start must be a date or datetime")
    moment = when.absolute
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(spec.timezone))
    return moment.astimezone(UTC)


def load_scenario(path: Path, start: datetime | None = None, days: int | None = None) -> Scenario:
    """Read, validate and place a scenario file (errors name the file, line and field)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read scenario file {path}: {exc}") from exc
    return Scenario.from_spec(parse_scenario(text, str(path)), start, days)


def builtin_scenario(name: str, start: datetime | None = None, days: int | None = None) -> Scenario:
    """A built-in scenario (``saint-savin``, ``rural-3dma``, ``stress``)."""
    if name not in BUILTIN_NAMES:
        raise ConfigError(f"unknown scenario {name!r}; built in: {', '.join(BUILTIN_NAMES)}")
    text = (
        resources.files("leaksense.simulator")
        .joinpath(f"scenarios/{name}.yaml")
        .read_text(encoding="utf-8")
    )
    return Scenario.from_spec(parse_scenario(text, f"{name}.yaml"), start, days)


def _builtin(name: str, start: datetime, days: int = 14) -> Scenario:
    return builtin_scenario(name, start, days)


BUILTIN: dict[str, Callable[[datetime, int], Scenario]] = {
    name: partial(_builtin, name) for name in BUILTIN_NAMES
}
"""Built-in scenarios by name, each a function of ``(start, days)``."""


def saint_savin(start: datetime, days: int = 14) -> Scenario:
    """The seed report's commune: five leaks repaired one a day on days 7–11 at 10:00 UTC.

    ``start`` should be a UTC midnight so that "day N" is a calendar day.
    """
    return builtin_scenario("saint-savin", start, days)


def saint_savin_periods(scenario: Scenario) -> tuple[datetime, datetime, datetime, datetime]:
    """``(before_start, before_end, after_start, after_end)``: whole days without repairs.

    Before ends on the day of the first repair; after starts the day following the
    last repair. Works for any scenario whose leaks are repaired inside the window.
    """
    repairs = sorted(
        scenario.at(leak.repaired_at) for leak in scenario.spec.leaks if leak.repaired_at
    )
    if not repairs:
        raise ConfigError(f"scenario {scenario.name} repairs no leak: no before/after periods")
    day = timedelta(days=1)
    before_end = scenario.start + (repairs[0] - scenario.start) // day * day
    after_start = scenario.start + ((repairs[-1] - scenario.start) // day + 1) * day
    if after_start >= scenario.end:
        raise ConfigError(
            f"{scenario.name} needs more than {(after_start - scenario.start).days} days "
            "for an after period"
        )
    return scenario.start, before_end, after_start, scenario.end
