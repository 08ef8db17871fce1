"""The water itself: true flows of each DMA on the time grid, before any meter.

A DMA's inlet carries its consumers' demand, unbilled authorised use (flushing, fire
fighting), the water passed on to the DMAs downstream, and its network leaks, so
DMAs are computed downstream first. Leaks behind a customer meter
(``customer_meter``) flow through that meter: the customer is billed for them.
Every random draw comes from a generator named after its component
(:func:`component_rng`), so adding a meter or a consumer group leaves the others'
numbers unchanged.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import numpy as np

from leaksense.simulator.billing import Account, round_of
from leaksense.simulator.demand import group_flow_m3h, pattern
from leaksense.simulator.leaks import ResolvedLeak, pressure_m
from leaksense.simulator.meters import registered_m3h
from leaksense.simulator.scenario import Scenario
from leaksense.simulator.spec import DmaSpec
from leaksense.simulator.timegrid import FloatArray, TimeGrid, unix_s


def component_rng(seed: int, *names: str) -> np.random.Generator:
    """A generator for one named component of the scenario, stable across edits."""
    key = tuple(zlib.crc32(name.encode()) for name in names)
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


@dataclass
class DmaFlows:
    """True flows (m³/h per grid step) of one DMA."""

    dma: DmaSpec
    consumption_m3h: FloatArray
    unbilled_m3h: FloatArray
    exported_m3h: FloatArray
    pressure_m: FloatArray
    inlet_m3h: FloatArray
    night_use_m3h: float
    leaks_m3h: dict[str, FloatArray] = field(default_factory=dict)
    customers_m3h: dict[str, FloatArray] = field(default_factory=dict)
    accounts: list[Account] = field(default_factory=list)


def _order(scenario: Scenario) -> list[DmaSpec]:
    """DMAs downstream first, so that each inlet can add what it passes on."""
    done: list[DmaSpec] = []
    pending = list(scenario.dmas)
    while pending:
        ready = [d for d in pending if all(x in done for x in scenario.downstream(d.dma_id))]
        done += ready
        pending = [d for d in pending if d not in ready]
    return done


class _Builder:
    """Computes every DMA of a scenario for one seed."""

    def __init__(self, scenario: Scenario, grid: TimeGrid, seed: int) -> None:
        self.scenario, self.grid, self.seed = scenario, grid, seed
        self._patterns: dict[str, FloatArray] = {}

    def pattern(self, type_name: str) -> FloatArray:
        if type_name not in self._patterns:
            ctype = self.scenario.consumer_types[type_name]
            self._patterns[type_name] = pattern(ctype, self.grid)
        return self._patterns[type_name]

    def consumers(self, dma: DmaSpec, flows: DmaFlows) -> None:
        """Consumer groups (billed through their registers) and metered customers."""
        rounds = self.scenario.spec.billing.rounds
        for g, group in enumerate(dma.consumers):
            ctype = self.scenario.consumer_types[group.type]
            night_l_h = ctype.night_use_l_h if group.night_use_l_h is None else group.night_use_l_h
            rng = component_rng(self.seed, "group", dma.dma_id, str(g), group.type)
            flow = group_flow_m3h(
                ctype,
                self.pattern(group.type),
                self.grid,
                count=group.count,
                m3_per_day=group.m3_per_day,
                night_use_l_h=night_l_h,
                rng=rng,
            )
            flows.consumption_m3h += flow
            flows.night_use_m3h += group.count * night_l_h / 1000
            registered = registered_m3h(self.scenario.meter_models[group.meter], flow) / rounds
            flows.accounts += [
                Account(f"{dma.dma_id}.{group.type}.{g}.r{r}", dma.dma_id, r, registered)
                for r in range(rounds)
            ]
        for meters in dma.customer_meters:
            ctype = self.scenario.consumer_types[meters.type]
            for sensor_id in meters.sensor_ids():
                rng = component_rng(self.seed, "customer", sensor_id)
                flow = group_flow_m3h(
                    ctype,
                    self.pattern(meters.type),
                    self.grid,
                    count=1,
                    m3_per_day=meters.m3_per_day,
                    night_use_l_h=ctype.night_use_l_h,
                    rng=rng,
                )
                flows.customers_m3h[sensor_id] = flow
                flows.night_use_m3h += ctype.night_use_l_h / 1000

    def unbilled(self, dma: DmaSpec) -> FloatArray:
        out = np.zeros(self.grid.n)
        for event in dma.unbilled:
            begin_s = unix_s(self.scenario.at(event.start))
            end_s = begin_s + event.duration_h * 3600
            out += event.volume_m3 / event.duration_h * self.grid.active_fraction(begin_s, end_s)
        return out

    def leaks(self, dma: DmaSpec, flows: DmaFlows) -> FloatArray:
        """Network leak flows (returned) and customer-side ones (added to the customer)."""
        network = np.zeros(self.grid.n)
        for spec in self.scenario.spec.leaks:
            if spec.dma != dma.dma_id:
                continue
            leak = ResolvedLeak(
                spec,
                None if spec.start is None else unix_s(self.scenario.at(spec.start)),
                None if spec.repaired_at is None else unix_s(self.scenario.at(spec.repaired_at)),
            )
            flow = leak.flow_m3h(self.grid, flows.pressure_m, dma.avg_pressure_m)
            flows.leaks_m3h[spec.leak_id] = flow
            if spec.customer_meter is None:
                network += flow
            else:
                flows.customers_m3h[spec.customer_meter] = (
                    flows.customers_m3h[spec.customer_meter] + flow
                )
        return network

    def customer_accounts(self, dma: DmaSpec, flows: DmaFlows) -> None:
        """Each metered customer is its own account, billed on what its register counted."""
        rounds = self.scenario.spec.billing.rounds
        for group in dma.customer_meters:
            model = self.scenario.meter_models[group.meter]
            for sensor_id in group.sensor_ids():
                flow = flows.customers_m3h[sensor_id]
                flows.consumption_m3h += flow
                account = Account(
                    sensor_id, dma.dma_id, round_of(sensor_id, rounds), registered_m3h(model, flow)
                )
                flows.accounts.append(account)

    def dma(self, dma: DmaSpec, done: dict[str, DmaFlows]) -> DmaFlows:
        zeros = np.zeros(self.grid.n)
        exported = sum(
            (done[d.dma_id].inlet_m3h for d in self.scenario.downstream(dma.dma_id)), zeros
        )
        flows = DmaFlows(dma, zeros.copy(), self.unbilled(dma), exported, zeros, zeros, 0.0)
        self.consumers(dma, flows)
        customers = sum(flows.customers_m3h.values(), zeros)
        demand = flows.consumption_m3h + customers + flows.unbilled_m3h + exported
        flows.pressure_m = pressure_m(demand, dma.avg_pressure_m, dma.headloss_m)
        network_leaks = self.leaks(dma, flows)
        self.customer_accounts(dma, flows)
        flows.inlet_m3h = flows.consumption_m3h + flows.unbilled_m3h + exported + network_leaks
        return flows


def dma_flows(scenario: Scenario, grid: TimeGrid, seed: int) -> dict[str, DmaFlows]:
    """True flows of every DMA, keyed by DMA id, in the scenario's order."""
    builder, done = _Builder(scenario, grid, seed), dict[str, DmaFlows]()
    for dma in _order(scenario):
        done[dma.dma_id] = builder.dma(dma, done)
    return {dma.dma_id: done[dma.dma_id] for dma in scenario.dmas}
