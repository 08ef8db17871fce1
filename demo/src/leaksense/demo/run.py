"""The demo's steps: broker, server, provisioning, gateway, simulated sensors, yield.

Every figure printed at the end is computed by the server from readings that went
through MQTT, the gateway and the ingest API, not from the scenario's constants.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from leaksense.core.errors import ServiceUnavailable
from leaksense.core.messages import Reading
from leaksense.demo.broker import start_broker
from leaksense.demo.server_thread import ServerThread
from leaksense.edge.config import GatewayConfig, parse_config
from leaksense.edge.runner import GatewayRunner
from leaksense.server.app import create_app
from leaksense.server.runtime import Runtime, build_runtime
from leaksense.server.services import billing, entities
from leaksense.server.settings import ServerSettings, load_settings
from leaksense.simulator.generate import Simulation, simulate
from leaksense.simulator.publish import Broker, esphome_mapping, esphome_nodes, publish_readings
from leaksense.simulator.scenario import saint_savin, saint_savin_periods

log = logging.getLogger(__name__)
MARKER = ".leaksense-demo"
GATEWAY_ID = "gw-demo"


@dataclass(frozen=True, slots=True)
class DemoResult:
    """What the demo measured, for the summary and for tests."""

    broker: str
    server_url: str
    workdir: Path
    published: int
    received: int
    rejected: int
    stored_inlet: int
    yields: dict[str, dict[str, Any]]
    elapsed_s: float


def prepare_workdir(workdir: Path) -> None:
    """Create ``workdir``, wiping it only if an earlier demo made it."""
    if workdir.exists():
        if not (workdir / MARKER).exists() and any(workdir.iterdir()):
            raise ServiceUnavailable(
                f"{workdir} exists and was not made by the demo: not touching it"
            )
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    (workdir / MARKER).write_text("made by `leaksense demo`; safe to delete\n")


def provision(runtime: Runtime, sim: Simulation) -> tuple[str, str]:
    """Load the network and billing, return ``(gateway token, reader token)``."""
    scenario = sim.scenario
    network = entities.NetworkDescription(
        sites=[entities.SiteSpec(site_id=scenario.site, name="Saint-Savin (Isère)")],
        dmas=[entities.DmaSpec(dma_id=scenario.dma_id, site_id=scenario.site, name="Réseau")],
        sensors=[
            entities.SensorSpec(
                sensor_id=s.sensor_id, site_id=scenario.site, dma_id=scenario.dma_id, role=s.role
            )
            for s in scenario.sensors
        ],
    )
    rows = [
        billing.BillingRow(
            dma_id=b.dma_id,
            period_start=b.period_start,
            period_end=b.period_end,
            volume_m3=b.volume_m3,
        )
        for b in sim.billing
    ]
    with runtime.sessions() as session:
        entities.load_network(session, network)
        billing.import_billing(session, rows)
        gateway_token = entities.add_gateway(session, GATEWAY_ID, scenario.site)
        reader_token = entities.add_reader_token(session, "demo")
    return gateway_token, reader_token


def gateway_config(
    sim: Simulation, broker_port: int, server_url: str, workdir: Path
) -> GatewayConfig:
    return parse_config(
        {
            "gateway_id": GATEWAY_ID,
            "site": sim.scenario.site,
            "mqtt": {"host": "127.0.0.1", "port": broker_port},
            "uplink": {"url": server_url, "flush_interval_s": 0.5, "batch_max_readings": 2000},
            "esphome": esphome_mapping(sim.scenario),
            "dead_letter_dir": str(workdir / "gateway" / "rejected"),
            "outbox": {"path": str(workdir / "gateway" / "outbox.db")},
            "metrics": {"port": 0},
        },
        "demo gateway config",
    )


def demo_readings(sim: Simulation) -> list[Reading]:
    """All inlet readings, plus the last hour of the ESPHome customer meters.

    ESPHome nodes carry no timestamp (the gateway stamps them on receipt), so only a
    short "live" stretch of them is replayed.
    """
    nodes = esphome_nodes(sim.scenario)
    last_hour = sim.scenario.end - timedelta(hours=1)
    return [r for r in sim.readings if r.sensor_id not in nodes or r.time >= last_hour]


def wait_until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise ServiceUnavailable(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.05)


def fetch_yields(server_url: str, token: str, sim: Simulation) -> dict[str, dict[str, Any]]:
    """Ask the server's yield endpoint for the before, after and whole periods."""
    before_start, before_end, after_start, after_end = saint_savin_periods(sim.scenario)
    periods = {
        "before": (before_start, before_end),
        "after": (after_start, after_end),
        "whole": (sim.scenario.start, sim.scenario.end),
    }
    out = {}
    with httpx.Client(base_url=server_url, headers={"Authorization": f"Bearer {token}"}) as http:
        for name, (start, end) in periods.items():
            response = http.get(
                f"/api/v1/dmas/{sim.scenario.dma_id}/yield",
                params={"start": start.isoformat(), "end": end.isoformat()},
            )
            response.raise_for_status()
            out[name] = response.json()
    return out


def run_demo(workdir: Path, days: int = 14, seed: int = 1, broker: str = "auto") -> DemoResult:
    """Run the whole path once on embedded defaults and return what it measured."""
    started = time.monotonic()
    prepare_workdir(workdir)
    start = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    sim = simulate(saint_savin(start - timedelta(days=days + 1), days), seed)
    settings = load_settings(
        data_dir=workdir / "server", reading_store="sqlite", mode="development"
    )
    mqtt_broker = start_broker(workdir / "broker", broker)
    try:
        result = run_path(sim, settings, mqtt_broker.port, workdir)
    finally:
        mqtt_broker.stop()
    return dataclasses.replace(
        result, broker=mqtt_broker.name, elapsed_s=time.monotonic() - started
    )


def run_path(
    sim: Simulation,
    settings: ServerSettings,
    broker_port: int,
    workdir: Path,
    before_publish: Callable[[Broker], int] | None = None,
) -> DemoResult:
    """Server, provisioning, gateway and simulated sensors on an already running broker.

    ``before_publish`` may publish extra messages on the broker and returns how many
    (tests inject bad messages that the gateway must reject).
    """
    with ExitStack() as stack:
        runtime = build_runtime(settings)
        server = ServerThread(create_app(settings, runtime)).start()
        stack.callback(server.stop)
        gateway_token, reader_token = provision(runtime, sim)
        runner = GatewayRunner(
            gateway_config(sim, broker_port, server.url, workdir), token=gateway_token
        )
        runner.start()
        stack.callback(runner.stop)
        wait_until(runner.intake.connected.is_set, 10, "the gateway to connect to the broker")
        broker = Broker(host="127.0.0.1", port=broker_port)
        extra = before_publish(broker) if before_publish is not None else 0
        result = publish_readings(
            demo_readings(sim),
            broker,
            site=sim.scenario.site,
            esphome=esphome_nodes(sim.scenario),
        )
        stats = runner.gateway.stats
        expected = result.acknowledged + extra
        wait_until(lambda: stats.messages_received >= expected, 60, "the gateway intake")
        if not runner.gateway.drain(60):
            raise ServiceUnavailable("the gateway could not deliver everything to the server")
        inlet = sim.scenario.inlet.sensor_id
        stored = len(runtime.store.readings(inlet, sim.scenario.start, sim.scenario.end))
        return DemoResult(
            broker=f"127.0.0.1:{broker_port}",
            server_url=server.url,
            workdir=workdir,
            published=result.acknowledged,
            received=stats.messages_received,
            rejected=stats.messages_rejected,
            stored_inlet=stored,
            yields=fetch_yields(server.url, reader_token, sim),
            elapsed_s=0.0,
        )
