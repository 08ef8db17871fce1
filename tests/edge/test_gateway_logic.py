"""Gateway logic without MQTT: rejection counting, alerts, batching and retries.

The uplink here is an in-memory fake at the Uplink seam (the real HTTP uplink is
exercised against the real server in tests/test_end_to_end.py); the outbox is the
real SQLite one, in the test's temp dir.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from leaksense.core.errors import InvalidInput, UplinkUnavailable
from leaksense.core.messages import Alert, AlertKind, FaultKind, IngestBatch, IngestResult
from leaksense.edge.config import GatewayConfig
from leaksense.edge.detection.engine import DetectionEngine, EngineSettings
from leaksense.edge.gateway import Gateway
from leaksense.edge.outbox_sqlite import SqliteOutbox

T0 = datetime(2026, 1, 5, tzinfo=UTC)


class FakeUplink:
    """Records batches; fails the next ``fail`` sends with ``error``."""

    def __init__(self) -> None:
        self.batches: list[IngestBatch] = []
        self.fail = 0
        self.error: Exception = UplinkUnavailable("down")

    def send(self, batch: IngestBatch) -> IngestResult:
        if self.fail:
            self.fail -= 1
            raise self.error
        self.batches.append(batch)
        return IngestResult.whole(batch)


class CeilingDetector:
    """A stand-in at the Detector seam: one alert each time flow crosses 50 m³/h."""

    def __init__(self) -> None:
        self.above = False

    def observe_values(
        self,
        sensor_id: str,
        epoch_s: float,
        flow_m3h: float,
        index_m3: float | None = None,
        received_s: float | None = None,
    ) -> list[Alert]:
        above, self.above = self.above, flow_m3h > 50.0
        if above or not self.above:
            return []
        time = datetime.fromtimestamp(epoch_s, UTC)
        return [
            Alert(
                alert_id=f"gw-1:{sensor_id}:{int(epoch_s)}",
                sensor_id=sensor_id,
                kind=AlertKind.BURST,
                started_at=time,
                detected_at=time,
                flow_m3h=flow_m3h - 50.0,
                explanation_en="above 50 m³/h",
                explanation_fr="au-dessus de 50 m³/h",
            )
        ]


def make_gateway(tmp_path: Path, batch_max: int = 3) -> tuple[Gateway, FakeUplink]:
    config = GatewayConfig.model_validate(
        {
            "gateway_id": "gw-1",
            "site": "saint-savin",
            "uplink": {"batch_max_readings": batch_max},
            "dead_letter_dir": str(tmp_path / "rejected"),
        }
    )
    uplink = FakeUplink()
    gateway = Gateway(config, CeilingDetector(), SqliteOutbox(tmp_path / "outbox.db"), uplink)
    return gateway, uplink


def message(minute: int, flow_m3h: float) -> tuple[str, bytes]:
    time = (T0 + timedelta(minutes=minute)).isoformat()
    payload = json.dumps({"time": time, "flow_m3h": flow_m3h})
    return "leaksense/saint-savin/ss-inlet/flow", payload.encode()


def test_bad_payloads_are_counted_and_the_gateway_goes_on(tmp_path: Path) -> None:
    gateway, uplink = make_gateway(tmp_path)
    gateway.handle_message("leaksense/saint-savin/ss-inlet/flow", b"{broken")
    gateway.handle_message("leaksense/x", b"1")
    gateway.handle_message(*message(0, 10.0))
    assert gateway.group.commit() == 3
    assert gateway.stats.messages_received == 3
    assert gateway.stats.messages_rejected == 2
    assert gateway.flush_once()
    assert [r.flow_m3h for b in uplink.batches for r in b.readings] == [10.0]


def test_retry_resends_the_same_batch_and_alerts_go_first(tmp_path: Path) -> None:
    gateway, uplink = make_gateway(tmp_path, batch_max=3)
    for minute, flow in enumerate([10.0, 11.0, 60.0, 12.0, 13.0]):
        gateway.handle_message(*message(minute, flow))
    gateway.group.commit()
    uplink.fail = 1
    with pytest.raises(UplinkUnavailable):
        gateway.flush_once()
    assert gateway.flush_once()
    first = uplink.batches[0]
    assert first.batch_seq == 0
    assert len(first.alerts) == 1
    assert [r.flow_m3h for r in first.readings] == [10.0, 11.0, 60.0]
    assert gateway.flush_once()
    assert not gateway.flush_once()
    assert [b.batch_seq for b in uplink.batches] == [0, 1]
    assert gateway.stats.readings_sent == 5


def test_an_alert_raised_outside_a_reading_is_committed_and_sent(tmp_path: Path) -> None:
    """A dismissal closes an alert between readings: its end goes up like any alert."""
    gateway, uplink = make_gateway(tmp_path)
    gateway.handle_message(*message(0, 60.0))
    gateway.group.commit()
    assert gateway.flush_once()
    opened = uplink.batches[0].alerts[0]
    ended = opened.model_copy(update={"ended_at": T0 + timedelta(hours=1)})
    gateway.emit([ended])
    gateway.emit([])  # nothing to commit
    assert gateway.group.commit() == 1
    assert gateway.flush_once()
    assert uplink.batches[1].alerts == [ended] and uplink.batches[1].readings == []
    assert gateway.stats.alerts_raised == 2


def test_refused_batch_is_kept_on_disk_not_lost(tmp_path: Path) -> None:
    gateway, uplink = make_gateway(tmp_path)
    gateway.handle_message(*message(0, 10.0))
    gateway.group.commit()
    uplink.fail, uplink.error = 1, InvalidInput("bad batch")
    assert not gateway.flush_once()
    saved = list((tmp_path / "rejected").glob("*.json"))
    assert len(saved) == 1
    content = json.loads(saved[0].read_text())
    assert content["error"] == "bad batch"
    assert content["batch"]["readings"][0]["flow_m3h"] == 10.0
    assert gateway.stats.batches_dead_lettered == 1


def test_backoff_grows_and_is_capped(tmp_path: Path) -> None:
    gateway, _ = make_gateway(tmp_path)
    error = UplinkUnavailable("down", retry_after_s=1.0)
    delays = [gateway._backoff_s(n, error) for n in range(1, 12)]
    assert 1.0 <= delays[0] <= 2.0
    assert 8.0 <= delays[4] <= 32.0
    assert max(delays) <= gateway.config.uplink.retry_max_s


def test_the_gateway_checks_json_readings_against_its_own_clock(tmp_path: Path) -> None:
    config = GatewayConfig.model_validate({"gateway_id": "gw-1", "site": "saint-savin"})
    engine = DetectionEngine("gw-1", EngineSettings())
    now = (T0 + timedelta(hours=2)).timestamp()
    uplink = FakeUplink()
    gateway = Gateway(
        config, engine, SqliteOutbox(tmp_path / "o.db"), uplink, wall_clock=lambda: now
    )
    payload = {"time": (T0 + timedelta(hours=3)).isoformat(), "flow_m3h": 4.0}
    gateway.handle_message("leaksense/saint-savin/m1/flow", json.dumps(payload).encode())
    gateway.group.commit()
    assert gateway.stats.alerts_raised == 1
    assert gateway.flush_once()
    batch = uplink.batches[0]
    assert [(a.sensor_id, a.fault) for a in batch.alerts] == [("m1", FaultKind.CLOCK)]
    assert [r.flow_m3h for r in batch.readings] == [4.0]  # the reading is kept


def test_a_gateway_whose_own_clock_is_wrong_blames_no_sensor(tmp_path: Path) -> None:
    config = GatewayConfig.model_validate({"gateway_id": "gw-1", "site": "saint-savin"})
    engine = DetectionEngine("gw-1", EngineSettings())
    booted_in_1970 = 3600.0  # no RTC, no network time yet
    gateway = Gateway(
        config,
        engine,
        SqliteOutbox(tmp_path / "o.db"),
        FakeUplink(),
        wall_clock=lambda: booted_in_1970,
    )
    for minute in range(0, 120, 5):
        gateway.handle_message(*message(minute, 4.0))
    assert gateway.group.commit() == 24
    assert gateway.stats.alerts_raised == 0
