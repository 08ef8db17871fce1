"""The whole path on real services: simulated Saint-Savin sensors → mosquitto →
gateway → HTTP ingest → InfluxDB → yield endpoint; and the zero-install demo."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from leaksense.demo.run import run_demo, run_path
from leaksense.server.settings import load_settings
from leaksense.server.stores.influx import InfluxReadingStore
from leaksense.simulator.generate import simulate
from leaksense.simulator.publish import Broker
from leaksense.simulator.scenario import saint_savin
from services import InfluxDatabase, MosquittoServer

START = datetime(2026, 3, 2, tzinfo=UTC)


def publish_garbage(broker: Broker) -> int:
    """Messages a broken node could send; the gateway must reject them and go on."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="garbage-node")
    client.connect(broker.host, broker.port)
    client.loop_start()
    garbage = [
        ("leaksense/saint-savin/ss-inlet/flow", b"{not json"),
        ("leaksense/saint-savin/ss-inlet/flow", json.dumps({"flow_m3h": 3}).encode()),
        ("ss-school/sensor/flow/state", b"unavailable"),
    ]
    for topic, payload in garbage:
        client.publish(topic, payload, qos=1).wait_for_publish(5)
    client.disconnect()
    client.loop_stop()
    return len(garbage)


@pytest.mark.mqtt
@pytest.mark.influx
@pytest.mark.slow
def test_saint_savin_through_mosquitto_and_influxdb(
    mosquitto: MosquittoServer, influx_db: InfluxDatabase, tmp_path: Path
) -> None:
    sim = simulate(saint_savin(START, days=14), seed=7)
    settings = load_settings(
        data_dir=tmp_path,
        reading_store="influxdb",
        influx_url=influx_db.url,
        influx_database=influx_db.name,
    )
    result = run_path(sim, settings, mosquitto.port, tmp_path, before_publish=publish_garbage)

    inlet_readings = [r for r in sim.readings if r.sensor_id == "ss-inlet"]
    assert result.stored_inlet == len(inlet_readings) == 14 * 288
    assert result.rejected == 3
    assert result.received == result.published + 3
    # Stored values are exactly the published ones, read back from InfluxDB itself.
    influx = InfluxReadingStore(influx_db.url, influx_db.name)
    stored = influx.readings("ss-inlet", START, START + timedelta(days=14))
    influx.close()
    assert [(r.time, r.flow_m3h) for r in stored] == [(r.time, r.flow_m3h) for r in inlet_readings]

    before, after = result.yields["before"], result.yields["after"]
    assert before["yield_pct"] == pytest.approx(75.0, abs=0.5)
    assert after["yield_pct"] == pytest.approx(92.31, abs=0.5)
    assert before["completeness_pct"] == pytest.approx(100.0)
    saved_m3_per_day = before["losses_m3_per_day"] - after["losses_m3_per_day"]
    assert saved_m3_per_day == pytest.approx(150.0, rel=0.02)


@pytest.mark.slow
def test_demo_runs_on_embedded_amqtt_and_sqlite(tmp_path: Path) -> None:
    started = time.monotonic()
    result = run_demo(tmp_path / "demo", days=13, broker="amqtt")
    assert result.broker.startswith("amqtt")
    assert result.stored_inlet == 13 * 288
    assert result.rejected == 0
    assert result.yields["before"]["yield_pct"] == pytest.approx(75.0, abs=0.5)
    assert result.yields["after"]["yield_pct"] == pytest.approx(92.31, abs=0.5)
    assert (tmp_path / "demo" / "server" / "readings.db").exists()
    assert time.monotonic() - started < 120


def test_demo_refuses_to_wipe_a_folder_it_did_not_make(tmp_path: Path) -> None:
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.txt").write_text("do not delete")
    with pytest.raises(Exception, match="not made by the demo"):
        run_demo(precious)
    assert (precious / "thesis.txt").read_text() == "do not delete"
