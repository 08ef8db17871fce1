"""The volumes of a simulated period give back the scenario's truth.

First from the readings themselves (metered in − out − billed − unbilled = the
truth's losses), then through the server's own yield computation: readings into the
SQLite store, network and billing into the entity database, ``compute_yield`` per DMA.

The server gives a sensor one DMA and one role, so a meter between two DMAs (outlet
of one, inlet of the next) is stored twice: under its id as the downstream inlet, and
under ``<id>.out`` as the upstream outlet.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from leaksense.server.db import make_engine, make_sessionmaker
from leaksense.server.services import billing, entities
from leaksense.server.services.network_yield import compute_yield
from leaksense.server.stores.sqlite import SqliteReadingStore
from leaksense.simulator.generate import MeterSeries, Simulation, simulate
from leaksense.simulator.scenario import builtin_scenario

SCENARIOS = ("saint-savin", "rural-3dma")


@pytest.fixture(scope="module", params=SCENARIOS)
def sim(request: pytest.FixtureRequest) -> Simulation:
    return simulate(builtin_scenario(request.param), seed=11)


def metered_m3(series: MeterSeries, sim: Simulation) -> float:
    """Mean reported flow × window, so that a dropout does not count as zero flow."""
    start_s, end_s = sim.scenario.start.timestamp(), sim.scenario.end.timestamp()
    inside = (series.times_s >= start_s) & (series.times_s < end_s)
    return float(series.flow_m3h[inside].mean()) * sim.scenario.days * 24


def test_metered_volumes_give_back_the_truths_losses(sim: Simulation) -> None:
    for dma in sim.truth.dmas:
        inlet_m3 = metered_m3(sim.series_of(dma.inlet_sensor_id), sim)
        outlet_m3 = sum(metered_m3(sim.series_of(s), sim) for s in dma.outlet_sensor_ids)
        losses_m3 = inlet_m3 - outlet_m3 - dma.billed_m3 - dma.unbilled_authorised_m3
        truth_m3 = dma.apparent_losses_m3 + dma.real_losses_m3
        assert losses_m3 == pytest.approx(truth_m3, abs=0.01 * inlet_m3), dma.dma_id
        assert inlet_m3 == pytest.approx(dma.system_input_m3, rel=0.005), dma.dma_id


def load_into_server(sim: Simulation, tmp_path: Path) -> tuple[SqliteReadingStore, object]:
    scenario = sim.scenario
    roles = scenario.network_roles()
    outlet_ids = {(s, d): f"{s}.out" for s, d, role in roles if role == "outlet"}
    network = entities.NetworkDescription(
        sites=[entities.SiteSpec(site_id=scenario.site, name=scenario.name)],
        dmas=[
            entities.DmaSpec(dma_id=d.dma_id, site_id=scenario.site, name=d.name)
            for d in scenario.dmas
        ],
        sensors=[
            entities.SensorSpec(
                sensor_id=outlet_ids.get((s, d), s), site_id=scenario.site, dma_id=d, role=role
            )
            for s, d, role in roles
        ],
    )
    store = SqliteReadingStore(tmp_path / "readings.db")
    store.write(sim.readings)
    aliases = {s: alias for (s, _), alias in outlet_ids.items()}
    store.write(
        [r.model_copy(update={"sensor_id": aliases[r.sensor_id]}) for r in sim.readings
         if r.sensor_id in aliases]
    )  # fmt: skip
    sessions = make_sessionmaker(make_engine(f"sqlite:///{tmp_path / 'entities.db'}"))
    with sessions() as session:
        entities.load_network(session, network)
        billing.import_billing(
            session,
            [
                billing.BillingRow(
                    dma_id=b.dma_id,
                    period_start=b.period_start,
                    period_end=b.period_end,
                    volume_m3=b.volume_m3,
                )
                for b in sim.billing
            ],
        )
    return store, sessions


def test_the_servers_yield_matches_the_truth(sim: Simulation, tmp_path: Path) -> None:
    store, sessions = load_into_server(sim, tmp_path)
    scenario = sim.scenario
    with sessions() as session:  # type: ignore[operator]
        for dma in sim.truth.dmas:
            report = compute_yield(session, store, dma.dma_id, scenario.start, scenario.end)
            # the server knows nothing of unbilled authorised use yet
            assert report.yield_pct == pytest.approx(dma.yield_billed_only_pct, abs=0.5)
            unbilled_pct = 100 * dma.unbilled_authorised_m3 / report.inlet_m3
            assert report.yield_pct + unbilled_pct == pytest.approx(dma.yield_pct, abs=0.5)
            assert report.billed_m3 == pytest.approx(dma.billed_m3, rel=1e-6)
            assert report.billing_coverage_pct == pytest.approx(100)
    store.close()
