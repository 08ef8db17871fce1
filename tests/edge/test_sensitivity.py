"""False-alarm feedback on the gateway: the server's per-series threshold multipliers
reach the detection engine, survive a restart, and make a series less sensitive.

The server side (counting false alarms, ``GET /api/v1/sensitivity``) is tested in
``tests/workflow``; here a real server (uvicorn, SQLite) serves what the workflow
stored, and the gateway's :class:`SensitivitySync` fetches it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest

from flows import series
from leaksense.core.messages import Alert, AlertKind, IngestBatch
from leaksense.demo.server_thread import ServerThread
from leaksense.edge.config import GatewayConfig, parse_config
from leaksense.edge.detection.engine import DetectionEngine, EngineSettings
from leaksense.edge.sensitivity import Dismissal, SensitivitySync
from leaksense.edge.uplink import HttpUplink
from leaksense.server.app import create_app
from leaksense.server.db import AlertRecord
from leaksense.server.runtime import Runtime, build_runtime
from leaksense.server.services import entities
from leaksense.server.settings import load_settings
from leaksense.server.workflow import service
from leaksense.server.workflow.models import SeriesSensitivity

DAY_STEPS = 86_400 // 300


def burst_alerts(multipliers: Mapping[str, float]) -> list[Alert]:
    """A 20 % burst at midday on day 20 of a 24-day series, through the engine. With
    6 % noise it is a few σ: a clean series' burst is so large that even doubled
    thresholds see it at the same reading."""
    epoch, flow = series(24, noise=0.06)
    start = int(20.5 * DAY_STEPS)
    flow[start:] += 0.2 * flow.mean()
    engine = DetectionEngine("gw", EngineSettings())
    engine.set_sensitivity(multipliers)  # before the series exists: kept for it
    alerts: list[Alert] = []
    for t, f in zip(epoch, flow, strict=True):
        alerts += engine.observe_values("s1", float(t), float(f))
    return [a for a in alerts if a.kind is AlertKind.BURST]


def test_a_higher_multiplier_makes_a_series_slower_to_alarm() -> None:
    as_trained = burst_alerts({})
    damped = burst_alerts({"s1": 2.0})
    assert as_trained, "the burst must be found as trained"
    if damped:  # found later, never earlier
        assert damped[0].detected_at > as_trained[0].detected_at
    assert burst_alerts({"other": 2.0})[0].detected_at == as_trained[0].detected_at


def test_the_multiplier_survives_refits_without_compounding() -> None:
    epoch, flow = series(30)
    engine = DetectionEngine("gw", EngineSettings())
    for t, f in zip(epoch[: 15 * DAY_STEPS], flow[: 15 * DAY_STEPS], strict=True):
        engine.observe_values("s1", float(t), float(f))
    detector = engine.series["s1"]
    assert detector.artifact is not None
    base_h = detector.params.burst_h
    assert engine.set_sensitivity({"s1": 1.5}) == 1
    assert detector.params.burst_h == pytest.approx(1.5 * base_h)
    for t, f in zip(epoch[15 * DAY_STEPS :], flow[15 * DAY_STEPS :], strict=True):
        engine.observe_values("s1", float(t), float(f))  # crosses the 7-day refit
    assert detector.artifact.trained_to > datetime(2026, 1, 1, tzinfo=UTC)
    assert detector.params.burst_h == pytest.approx(1.5 * base_h)
    assert detector.params.night_h == pytest.approx(1.5 * detector.artifact.params.night_h)
    window_z = detector.artifact.params.burst_window_z
    assert detector.params.burst_window_z == pytest.approx(1.5 * window_z)
    step_z = detector.artifact.params.burst_step_z
    assert step_z > 0
    assert detector.params.burst_step_z == pytest.approx(1.5 * step_z)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, str, Path]]:
    runtime = build_runtime(load_settings(data_dir=tmp_path / "data"))
    with runtime.sessions() as session:
        entities.load_network(
            session,
            entities.NetworkDescription.model_validate(
                {"sites": [{"site_id": "ss", "name": "Saint-Savin"}]}
            ),
        )
        token = entities.add_gateway(session, "gw-ss", "ss")
        now = datetime.now(UTC)
        session.add_all(
            [
                SeriesSensitivity(
                    series_id="ss-in", false_alarms=3, threshold_multiplier=1.3, updated_at=now
                ),
                SeriesSensitivity(
                    series_id="ss-dma", false_alarms=0, threshold_multiplier=1.0, updated_at=now
                ),
            ]
        )
        session.commit()
    thread = ServerThread(create_app(runtime=runtime)).start()
    yield thread.url, token, tmp_path
    thread.stop()
    runtime.close()


def gateway_config(url: str, tmp_path: Path) -> GatewayConfig:
    return parse_config(
        {
            "gateway_id": "gw-ss",
            "site": "ss",
            "uplink": {"url": url},
            "models": {"dir": str(tmp_path / "models")},
            "outbox": {"path": str(tmp_path / "outbox.db")},
        }
    )


def test_fetched_from_the_server_applied_and_kept_for_a_restart_offline(
    server: tuple[str, str, Path],
) -> None:
    url, token, tmp_path = server
    applied: dict[str, float] = {}

    def tune(multipliers: Mapping[str, float]) -> int:
        applied.update(multipliers)
        return len(multipliers)

    sync = SensitivitySync(gateway_config(url, tmp_path), token, tune)
    try:
        assert sync.refresh() == 1  # ss-dma stays at 1.0: nothing to change
        assert sync.refresh() == 0  # unchanged: not applied again
    finally:
        sync.close()
    assert applied == {"ss-in": pytest.approx(1.3)}
    restarted: dict[str, float] = {}
    offline = SensitivitySync(
        gateway_config("http://127.0.0.1:9", tmp_path),
        token,
        lambda m: restarted.update(m) or len(m),
    )
    try:
        assert offline.load_saved() == 1
    finally:
        offline.close()
    assert restarted == {"ss-in": pytest.approx(1.3)}


def test_out_of_range_values_are_refused_and_counted(tmp_path: Path) -> None:
    config = gateway_config("http://127.0.0.1:9", tmp_path)
    config.models.dir.mkdir(parents=True)
    (config.models.dir / "sensitivity.json").write_text(
        '{"a": 0.5, "b": 9, "c": "x", "bad id": 1.2, "d": 1.2}', encoding="utf-8"
    )
    applied: dict[str, float] = {}
    sync = SensitivitySync(config, "t", lambda m: applied.update(m) or len(m))
    try:
        assert sync.load_saved() == 1
    finally:
        sync.close()
    assert applied == {"d": 1.2}
    assert sync.refused == 4


@pytest.fixture
def workflow_server(tmp_path: Path) -> Iterator[tuple[str, dict[str, str], Runtime]]:
    """A real server with two gateways of one site, and its runtime (to resolve)."""
    runtime = build_runtime(load_settings(data_dir=tmp_path / "data"))
    with runtime.sessions() as session:
        network = {"sites": [{"site_id": "ss", "name": "Saint-Savin"}]}
        entities.load_network(session, entities.NetworkDescription.model_validate(network))
        tokens = {gw: entities.add_gateway(session, gw, "ss") for gw in ("gw-ss", "gw-other")}
        session.commit()
    thread = ServerThread(create_app(runtime=runtime)).start()
    yield thread.url, tokens, runtime
    thread.stop()
    runtime.close()


def night_alert(engine: DetectionEngine) -> Alert:
    """Replay a series with a steady night excess from day 20 until a leak alert."""
    epoch, flow = series(24)
    flow[20 * DAY_STEPS :] += 0.1 * 20.0 * 0.35
    for t, f in zip(epoch, flow, strict=True):
        alerts = engine.observe_values("s1", float(t), float(f))
        if alerts:
            return alerts[0]
    raise AssertionError("no leak alert")


def test_a_dismissal_reaches_its_gateway_which_ends_the_alert(
    workflow_server: tuple[str, dict[str, str], Runtime], tmp_path: Path
) -> None:
    url, tokens, runtime = workflow_server
    engine = DetectionEngine("gw-ss", EngineSettings())
    judged = night_alert(engine)
    uplink = HttpUplink(url, tokens["gw-ss"])
    batches = 0

    def send(alerts: list[Alert]) -> None:
        nonlocal batches
        batches += 1
        now = datetime.now(UTC)
        uplink.send(IngestBatch(gateway_id="gw-ss", batch_seq=batches, sent_at=now, alerts=alerts))

    asked: list[list[Dismissal]] = []

    def dismiss(dismissals: Sequence[Dismissal]) -> int:
        asked.append(list(dismissals))
        closed = [engine.dismiss(d.alert_id, d.flow_m3h, d.resolution) for d in dismissals]
        send([a for a in closed if a is not None])
        return sum(a is not None for a in closed)

    send([judged])
    with runtime.sessions() as session:
        now = datetime.now(UTC)
        service.resolve(session, judged.alert_id, resolution="false_alarm", actor="t", now=now)
        session.commit()
    seen: list[Dismissal] = []

    def other_gateway(dismissals: Sequence[Dismissal]) -> int:
        seen.extend(dismissals)
        return 0

    other = SensitivitySync(
        gateway_config(url, tmp_path / "other"), tokens["gw-other"], lambda m: 0, other_gateway
    )
    sync = SensitivitySync(gateway_config(url, tmp_path), tokens["gw-ss"], lambda m: 0, dismiss)
    try:
        other.refresh()
        sync.refresh()  # closed on the gateway, the end sent up
        sync.refresh()
    finally:
        sync.close()
        other.close()
        uplink.close()
    assert seen == []  # another gateway's alert
    assert asked[0] == [Dismissal(judged.alert_id, judged.flow_m3h, "false_alarm")]
    assert asked[1] == []  # ended: no longer listed
    with runtime.sessions() as session:
        record = session.get(AlertRecord, judged.alert_id)
        assert record is not None and record.ended_at is not None
        assert record.state == "resolved"  # the verdict stands


def test_malformed_dismissals_are_refused_and_counted(tmp_path: Path) -> None:
    sync = SensitivitySync(gateway_config("http://127.0.0.1:9", tmp_path), "t", lambda m: 0)
    good = {"alert_id": "gw:s1:night:1", "flow_m3h": 0.4, "resolution": "false_alarm"}
    raw = [
        good,
        {**good, "resolution": "repaired"},
        {**good, "flow_m3h": -1},
        {**good, "flow_m3h": True},
        {**good, "alert_id": ""},
        "gw:s1:night:1",
    ]
    try:
        assert sync._valid_dismissals(raw) == [Dismissal("gw:s1:night:1", 0.4, "false_alarm")]
    finally:
        sync.close()
    assert sync.refused == 5
