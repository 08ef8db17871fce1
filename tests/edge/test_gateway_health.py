"""Gateway health: clock jumps, the outbox fill warning, reports to the server and to
the local broker, and the Prometheus ``/metrics`` endpoint (scraped over HTTP)."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import httpx
import paho.mqtt.client as mqtt
import pytest
from fastapi import FastAPI, Header
from paho.mqtt.enums import CallbackAPIVersion
from prometheus_client.parser import text_string_to_metric_families

from leaksense.core.messages import GatewayHealth, Reading
from leaksense.core.topics import flow_topic, health_topic
from leaksense.demo.broker import free_port
from leaksense.demo.server_thread import ServerThread
from leaksense.edge.config import GatewayConfig, parse_config
from leaksense.edge.detection.artifact import ModelArtifact
from leaksense.edge.detection.engine import DetectionEngine
from leaksense.edge.gateway import GatewayStats
from leaksense.edge.health import ClockWatch, HealthReporter, model_versions
from leaksense.edge.metrics import GatewayCollector, MetricsServer
from leaksense.edge.outbox_sqlite import SqliteOutbox
from leaksense.edge.runner import GatewayRunner
from leaksense.edge.uplink import HttpUplink
from leaksense.server.app import create_app
from leaksense.server.runtime import build_runtime
from leaksense.server.services import entities
from leaksense.server.settings import load_settings
from services import MosquittoServer

T0 = datetime(2026, 1, 5, tzinfo=UTC)
SITE = "saint-savin"


class FakeClock:
    """Wall and monotonic clocks a test moves by hand."""

    def __init__(self) -> None:
        self.wall_s = 1_767_571_200.0
        self.mono_s = 100.0

    def advance(self, seconds: float, wall_jump_s: float = 0.0) -> None:
        self.mono_s += seconds
        self.wall_s += seconds + wall_jump_s


def config(tmp_path: Path, **sections: Any) -> GatewayConfig:
    return parse_config(
        {"gateway_id": "gw-1", "site": SITE, "outbox": {"path": str(tmp_path / "o.db")}} | sections
    )


def readings(count: int) -> list[Reading]:
    return [
        Reading(sensor_id="s-1", time=T0 + timedelta(minutes=i), flow_m3h=1.0) for i in range(count)
    ]


def test_a_clock_jump_is_detected_both_ways() -> None:
    clock = FakeClock()
    watch = ClockWatch(60.0, wall=lambda: clock.wall_s, mono=lambda: clock.mono_s)
    clock.advance(1.0, wall_jump_s=0.4)  # NTP slewing: not a jump
    assert watch.check() is None
    clock.advance(3_600.0)  # an hour of monotonic time, no jump
    assert watch.check() is None
    clock.advance(1.0, wall_jump_s=86_400.0)  # the RTC-less Pi gets NTP after a day
    assert watch.check() == pytest.approx(86_400.0)
    clock.advance(1.0, wall_jump_s=-120.0)
    assert watch.check() == pytest.approx(-120.0)
    assert watch.jumps == 2
    assert watch.last_jump_s == pytest.approx(-120.0)


@pytest.fixture
def outbox(tmp_path: Path) -> Iterator[SqliteOutbox]:
    with SqliteOutbox(tmp_path / "o.db", max_readings=1_000) as box:
        yield box


def test_a_report_carries_the_figures_and_is_published_locally(
    tmp_path: Path, outbox: SqliteOutbox, caplog: pytest.LogCaptureFixture
) -> None:
    published: list[tuple[str, str]] = []
    clock = FakeClock()
    stats = GatewayStats(messages_received=860, messages_rejected=3)
    reporter = HealthReporter(
        config(tmp_path),
        stats,
        outbox,
        lambda: {"s-1": "sklearn-huber 2026-01-04T00:00:00Z"},
        publish=lambda topic, body: published.append((topic, body)),
        clock=ClockWatch(60.0, wall=lambda: clock.wall_s, mono=lambda: clock.mono_s),
    )
    assert not reporter.tick()
    outbox.add(readings(850), [])
    clock.advance(1.0, wall_jump_s=-300.0)
    with caplog.at_level(logging.WARNING):
        assert reporter.tick()  # 85 % full and a clock jump: report now
    assert "outbox 85.0 % full" in caplog.text
    assert "clock jumped by -300 s" in caplog.text
    assert not reporter.tick()  # warned once, not every second

    health = reporter.report()
    assert published == [(health_topic(SITE, health.gateway_id), health.model_dump_json())]
    assert health.outbox_readings == 850
    assert health.outbox_capacity_pct == 85.0
    assert health.oldest_unsent_at == T0
    assert (health.messages_received, health.messages_rejected) == (860, 3)
    assert (health.clock_jumps, health.last_clock_jump_s) == (1, -300.0)
    assert health.model_versions == {"s-1": "sklearn-huber 2026-01-04T00:00:00Z"}
    assert health.software_version == "0.1.0"


def test_model_versions_name_trainer_and_training_end() -> None:
    engine = DetectionEngine("gw-1", config(Path("unused")).engine_settings())
    engine.observe(readings(1)[0])
    fields: dict[str, Any] = {"trainer": "sklearn-huber-fourier", "trained_to": T0}
    engine.series["s-1"].artifact = ModelArtifact.model_construct(**fields)
    engine.observe(Reading(sensor_id="s-2", time=T0, flow_m3h=1.0))  # still learning
    assert model_versions(engine.series, engine.dma_series) == {
        "s-1": "sklearn-huber-fourier 2026-01-05T00:00:00Z"
    }


class HealthEndpoint:
    """A server that has (or lacks) ``POST /api/v1/gateways/health``."""

    def __init__(self, *, has_endpoint: bool) -> None:
        self.reports: list[tuple[GatewayHealth, str | None]] = []
        app = FastAPI()
        if has_endpoint:

            @app.post("/api/v1/gateways/health", status_code=204)
            def receive(
                report: GatewayHealth, authorization: Annotated[str | None, Header()] = None
            ) -> None:
                self.reports.append((report, authorization))

        self.thread = ServerThread(app).start()


@pytest.mark.parametrize("has_endpoint", [True, False])
def test_reports_go_to_the_server_and_an_old_server_is_logged_once(
    tmp_path: Path, outbox: SqliteOutbox, caplog: pytest.LogCaptureFixture, has_endpoint: bool
) -> None:
    server = HealthEndpoint(has_endpoint=has_endpoint)
    uplink = HttpUplink(server.thread.url, "lks_token")
    reporter = HealthReporter(
        config(tmp_path), GatewayStats(), outbox, dict, send=uplink.send_health
    )
    try:
        with caplog.at_level(logging.WARNING):
            first, _ = reporter.report(), reporter.report()
    finally:
        uplink.close()
        server.thread.stop()
    if has_endpoint:
        assert server.reports[0] == (first, "Bearer lks_token")
        assert reporter.reports_sent == 2
    else:
        assert caplog.text.count("health reports are not sent") == 1
        assert reporter.reports_sent == 0


def scrape(port: int) -> dict[str, float]:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics").text
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if not sample.labels or sample.name == "leaksense_gateway_info"
    }


def test_metrics_show_the_health_figures(tmp_path: Path, outbox: SqliteOutbox) -> None:
    stats = GatewayStats(messages_received=12, messages_rejected=2, readings_sent=7)
    reporter = HealthReporter(config(tmp_path), stats, outbox, dict)
    outbox.add(readings(10), [])
    port = free_port()
    server = MetricsServer(
        config(tmp_path, metrics={"port": port}).metrics,
        GatewayCollector(reporter.snapshot, stats),
    )
    server.start()
    try:
        metrics = scrape(port)
        stats.messages_received += 5
        again = scrape(port)
    finally:
        server.stop()
    assert metrics["leaksense_gateway_outbox_readings"] == 10
    assert metrics["leaksense_gateway_outbox_capacity_percent"] == 1.0
    assert metrics["leaksense_gateway_messages_received_total"] == 12
    assert metrics["leaksense_gateway_messages_rejected_total"] == 2
    assert metrics["leaksense_gateway_readings_sent_total"] == 7
    assert metrics["leaksense_gateway_readings_dropped_total"] == 0
    assert metrics["leaksense_gateway_oldest_unsent_timestamp_seconds"] == T0.timestamp()
    assert metrics["leaksense_gateway_info"] == 1
    assert again["leaksense_gateway_messages_received_total"] == 17


def test_a_busy_metrics_port_does_not_stop_the_gateway(
    tmp_path: Path, outbox: SqliteOutbox, caplog: pytest.LogCaptureFixture
) -> None:
    reporter = HealthReporter(config(tmp_path), GatewayStats(), outbox, dict)
    port = free_port()
    section = config(tmp_path, metrics={"port": port}).metrics
    first = MetricsServer(section, GatewayCollector(reporter.snapshot, GatewayStats()))
    second = MetricsServer(section, GatewayCollector(reporter.snapshot, GatewayStats()))
    first.start()
    try:
        with caplog.at_level(logging.ERROR):
            second.start()
        assert second.port is None
        assert "metrics off" in caplog.text
    finally:
        first.stop()
        second.stop()


def wait_for(condition: Callable[[], bool], timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


@pytest.mark.mqtt
def test_the_running_gateway_reports_on_site_and_on_metrics(
    mosquitto: MosquittoServer, tmp_path: Path
) -> None:
    settings = load_settings(data_dir=tmp_path / "server")
    runtime = build_runtime(settings)
    with runtime.sessions() as session:
        entities.load_network(
            session,
            entities.NetworkDescription.model_validate(
                {"sites": [{"site_id": SITE, "name": "Saint-Savin"}]}
            ),
        )
        token = entities.add_gateway(session, "gw-run", SITE)
    server = ServerThread(create_app(settings, runtime)).start()
    port = free_port()
    gateway_config = parse_config(
        {
            "gateway_id": "gw-run",
            "site": SITE,
            "mqtt": {"host": mosquitto.host, "port": mosquitto.port},
            "uplink": {"url": server.url, "flush_interval_s": 0.2},
            "outbox": {"path": str(tmp_path / "outbox.db")},
            "models": {"dir": str(tmp_path / "models")},
            "metrics": {"port": port},
        }
    )
    runner = GatewayRunner(gateway_config, token=token)
    health: list[dict[str, Any]] = []
    got_health = threading.Event()

    def on_message(_client: mqtt.Client, _userdata: Any, msg: mqtt.MQTTMessage) -> None:
        health.append(json.loads(msg.payload))
        got_health.set()

    node = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="node-health")
    node.on_message = on_message
    runner.start()
    try:
        wait_for(runner.intake.connected.is_set)
        node.connect(mosquitto.host, mosquitto.port)
        node.loop_start()
        node.subscribe(health_topic(SITE, "gw-run"), qos=1)
        assert got_health.wait(10), "no retained health report on the local broker"
        for minute in range(20):
            payload = {"time": (T0 + timedelta(minutes=minute)).isoformat(), "flow_m3h": 2.0}
            node.publish(flow_topic(SITE, "s-7"), json.dumps(payload), qos=1).wait_for_publish(5)
        wait_for(lambda: len(runtime.store.readings("s-7", T0, T0 + timedelta(hours=1))) == 20)
        metrics = scrape(port)
    finally:
        node.disconnect()
        node.loop_stop()
        runner.stop(drain_timeout_s=2)
        server.stop()
        runtime.close()
    assert health[0]["gateway_id"] == "gw-run"
    assert metrics["leaksense_gateway_messages_received_total"] == 20
    assert metrics["leaksense_gateway_readings_sent_total"] == 20
    assert metrics["leaksense_gateway_outbox_readings"] == 0
