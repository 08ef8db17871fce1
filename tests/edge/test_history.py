"""The refit history kept in a file (the gateway) and in RAM (``leaksense detect``).

A gateway with 200 sensors reading every minute would hold ~35 MB of history in RAM;
in a file it holds a 2 KB buffer a series. The file must give the fits exactly what
RAM gives them, survive a restart, and never stop the gateway when it is damaged.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from leaksense.core.messages import Alert
from leaksense.edge.config import parse_config
from leaksense.edge.detection.engine import DetectionEngine, DmaMeters, EngineSettings
from leaksense.edge.detection.history import (
    HEADER,
    STALE_AFTER_S,
    FileHistory,
    HistoryStore,
    MemoryHistory,
    history_path,
)
from leaksense.simulator.generate import merged_order, simulate
from leaksense.simulator.scenario import Scenario
from leaksense.simulator.spec import ScenarioSpec

T0 = datetime(2026, 3, 2, tzinfo=UTC).timestamp()


def fill(store: HistoryStore, count: int, step_s: float = 60.0) -> list[float]:
    ages = [store.append(T0 + i * step_s, 0.5 + (i % 7) / 10) for i in range(count)]
    return ages


def same(a: HistoryStore, b: HistoryStore) -> None:
    (ta, ya), (tb, yb) = a.read(), b.read()
    assert len(a) == len(b) == ta.size
    assert ta.tobytes() == tb.tobytes()
    assert ya.tobytes() == yb.tobytes()


def test_a_file_history_reads_back_what_ram_would_hold(tmp_path: Path) -> None:
    memory, file = MemoryHistory(), FileHistory(tmp_path / "h.hist", block_readings=16)
    assert fill(memory, 1_000) == fill(file, 1_000)  # 62 blocks written, 8 buffered
    same(memory, file)
    t, y = file.read()
    assert t[0] == T0 and t[-1] == T0 + 999 * 60.0
    assert y[:3].tolist() == pytest.approx([0.5, 0.6, 0.7])


def test_dropping_the_oldest_rebases_like_ram(tmp_path: Path) -> None:
    memory, file = MemoryHistory(), FileHistory(tmp_path / "h.hist", block_readings=16)
    fill(memory, 500, step_s=3_600.0)
    fill(file, 500, step_s=3_600.0)
    for store in (memory, file):
        store.drop_oldest(50)
        assert store.age_s(T0 + 499 * 3_600.0) == 449 * 3_600.0
    same(memory, file)
    later = T0 + 500 * 3_600.0
    assert memory.append(later, 1.0) == file.append(later, 1.0)  # appends after a rewrite
    same(memory, file)


def test_a_restarted_store_keeps_its_history(tmp_path: Path) -> None:
    path = tmp_path / "h.hist"
    first, memory = FileHistory(path, block_readings=16), MemoryHistory()
    fill(first, 100)
    fill(memory, 100)
    first.close()  # flushes the 4 buffered readings
    again = FileHistory(path, block_readings=16)
    same(memory, again)
    assert again.age_s(T0 + 100 * 60.0) == memory.age_s(T0 + 100 * 60.0)
    assert again.append(T0 + 100 * 60.0, 2.0) == memory.append(T0 + 100 * 60.0, 2.0)
    same(memory, again)


def written(tmp_path: Path) -> Path:
    """A closed history file of 30 readings in blocks of 10."""
    path = tmp_path / "h.hist"
    store = FileHistory(path, block_readings=10)
    fill(store, 30)
    store.close()
    return path


def test_a_torn_tail_is_dropped_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = written(tmp_path)
    with path.open("ab") as f:
        f.write(b"\x0a\x00\x00\x00garbage")  # a block cut short by a power loss
    with caplog.at_level(logging.WARNING):
        reopened = FileHistory(path, block_readings=10)
    assert len(reopened) == 30
    assert "corrupted or truncated block" in caplog.text
    assert path.stat().st_size == HEADER.size + 8 + 30 * 8  # rewritten clean, one block


def test_a_corrupted_block_drops_it_and_what_follows(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = written(tmp_path)
    data = bytearray(path.read_bytes())
    data[HEADER.size + 88 + 20] ^= 0xFF  # a flipped byte in the second block
    path.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING):
        t, _ = FileHistory(path, block_readings=10).read()
    assert t.size == 10
    assert "dropped 176 of 288 byte(s)" in caplog.text


@pytest.mark.parametrize("content", [b"", b"LSHIST", b"NOTHIST\n" + bytes(40)])
def test_a_file_with_a_bad_header_is_dropped(
    tmp_path: Path, content: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "h.hist"
    path.write_bytes(content)
    with caplog.at_level(logging.WARNING):
        store = FileHistory(path)
    assert len(store) == 0 and not path.exists()
    assert "refit history" in caplog.text
    assert store.append(T0, 1.0) == 0.0  # and it starts again
    store.close()
    assert len(FileHistory(path)) == 1


def test_an_unwritable_history_is_logged_and_started_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "h.hist"
    path.mkdir()  # no file can be written there
    store = FileHistory(path, block_readings=4)
    with caplog.at_level(logging.WARNING):
        fill(store, 6)
    assert "cannot write it" in caplog.text
    assert len(store) == 2  # the lost block is forgotten, the series goes on


def test_file_names_are_per_series_and_safe(tmp_path: Path) -> None:
    assert history_path(tmp_path, "d1-in", is_dma=False).name == "sensor-d1-in.hist"
    assert history_path(tmp_path, "d1", is_dma=True).name == "dma-d1.hist"
    assert history_path(tmp_path, "../x", is_dma=False).parent == tmp_path


def scenario_readings() -> tuple[EngineSettings, list[tuple[str, float, float]]]:
    """One DMA (an inlet and 3 customer meters), 5-min readings, 20 days: a
    background leak and a burst after a 4-day warm-up, so the window moves and the
    series refit several times."""
    spec = ScenarioSpec.model_validate(
        {
            "format": "leaksense.scenario/1",
            "name": "history",
            "site": "history",
            "dmas": [
                {
                    "dma_id": "d0",
                    "mains_km": 10,
                    "service_connections": 500,
                    "avg_pressure_m": 50,
                    "inlet": {"sensor_id": "d0-in"},
                    "consumers": [{"type": "household", "count": 450, "m3_per_day": 0.3}],
                    "customer_meters": [
                        {"sensor_id": "d0-c", "count": 3, "type": "household", "m3_per_day": 0.3}
                    ],
                }
            ],
            "leaks": [
                {
                    "leak_id": "bg",
                    "dma": "d0",
                    "kind": "background",
                    "flow_m3h": 0.8,
                    "start": "+9d",
                    "repaired_at": "+13d",
                },
                {
                    "leak_id": "b",
                    "dma": "d0",
                    "kind": "burst",
                    "flow_m3h": 4.0,
                    "start": "+16d3h",
                    "repaired_at": "+16d20h",
                },
            ],
        }
    )
    sim = simulate(Scenario.from_spec(spec, datetime(2026, 1, 5, tzinfo=UTC), 20), 3)
    times, sensor, position = merged_order(sim.series)
    cols = [(s.sensor_id, s.flow_m3h.tolist()) for s in sim.series]
    rows = [
        (cols[i][0], float(t), cols[i][1][k])
        for t, i, k in zip(times.tolist(), sensor.tolist(), position.tolist(), strict=True)
    ]
    settings = EngineSettings(
        warmup_days=4,
        customer_meters=frozenset(
            s.sensor_id for s in sim.scenario.sensors if s.role == "customer"
        ),
        dmas=(DmaMeters("d0", ("d0-in",)),),
    )
    return settings, rows


def detect(engine: DetectionEngine, rows: list[tuple[str, float, float]]) -> list[Alert]:
    alerts: list[Alert] = []
    for sensor_id, t, flow in rows:
        alerts += engine.observe_values(sensor_id, t, flow)
    return alerts


def test_a_file_history_raises_exactly_the_alerts_of_ram(tmp_path: Path) -> None:
    settings, rows = scenario_readings()
    in_ram = DetectionEngine("gw", settings)
    expected = detect(in_ram, rows)
    on_disk = DetectionEngine("gw", replace(settings, history_dir=tmp_path))
    assert detect(on_disk, rows) == expected
    assert {a.kind for a in expected} >= {"burst", "background_leak"}
    for pool, disk_pool in (
        (in_ram.series, on_disk.series),
        (in_ram.dma_series, on_disk.dma_series),
    ):
        for series_id, series in pool.items():
            mine, theirs = series.artifact, disk_pool[series_id].artifact
            assert mine is not None and theirs is not None
            assert mine.trained_from.day > 10  # refitted as the window moved
            same_fit = mine.model_dump(exclude={"created_at"})
            assert same_fit == theirs.model_dump(exclude={"created_at"})
    on_disk.close()
    histories = [f"sensor-{s}.hist" for s in in_ram.series] + ["dma-d0.hist"]
    assert sorted(p.name for p in tmp_path.glob("*.hist")) == sorted(histories)
    # Beside them, the open events of the series that alerted (eventfile.py).
    events = {p.name.removesuffix(".events.json") for p in tmp_path.glob("*.events.json")}
    assert events and events <= {h.removesuffix(".hist") for h in histories}
    # and the model each series trained (modelfile.py)
    models = {p.name.removesuffix(".model.json") for p in tmp_path.glob("*.model.json")}
    assert models == {h.removesuffix(".hist") for h in histories}
    assert len(list(tmp_path.iterdir())) == len(histories) + len(events) + len(models)


def test_a_restarted_engine_goes_on_with_its_models_at_once(tmp_path: Path) -> None:
    settings, rows = scenario_readings()
    on_disk = replace(settings, history_dir=tmp_path)
    first = DetectionEngine("gw", on_disk)
    cut = len(rows) // 2
    detect(first, rows[:cut])
    first.close()
    again = DetectionEngine("gw", on_disk)
    assert set(again.warming_up()) == {"d0"}  # sensors appear with their first reading
    detect(again, rows[cut : cut + 10])
    assert len(again.series) == 4
    # no new warm-up, and no refit either: the models trained before the restart
    for series_id, series in again.series.items():
        assert series.artifact is not None
        assert series.artifact == first.series[series_id].artifact
    # without its model file, a series refits from its history at once
    for path in tmp_path.glob("*.model.json"):
        path.unlink()
    third = DetectionEngine("gw", on_disk)
    detect(third, rows[cut + 10 : cut + 20])
    assert all(s.artifact is not None for s in third.series.values())
    assert any(s.artifact != first.series[k].artifact for k, s in third.series.items())


def test_the_gateway_config_puts_the_history_next_to_the_outbox(tmp_path: Path) -> None:
    base = {"gateway_id": "gw", "site": "s", "outbox": {"path": str(tmp_path / "o.db")}}
    assert parse_config(base).engine_settings().history_dir == tmp_path / "history"
    memory = parse_config(base | {"detection": {"history": "memory"}})
    assert memory.engine_settings().history_dir is None
    elsewhere = parse_config(base | {"detection": {"history_dir": str(tmp_path / "h")}})
    assert elsewhere.engine_settings().history_dir == tmp_path / "h"


def test_a_starting_engine_deletes_only_histories_silent_for_two_months(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings, rows = scenario_readings()
    on_disk = replace(settings, history_dir=tmp_path)
    engine = DetectionEngine("gw", on_disk)
    detect(engine, rows[: len(rows) // 4])
    engine.close()
    live = sorted(p.name for p in tmp_path.glob("*.hist"))
    gone = history_path(tmp_path, "removed-sensor", is_dma=False)
    gone.write_bytes((tmp_path / live[0]).read_bytes())
    gone_model = gone.with_suffix(".model.json")
    gone_model.write_text("{}")
    two_months_ago_s = time.time() - STALE_AFTER_S - 3600
    for path in (gone, gone_model):
        os.utime(path, (two_months_ago_s, two_months_ago_s))
    (tmp_path / "notes.txt").write_text("not a history")
    with caplog.at_level(logging.INFO):
        DetectionEngine("gw", on_disk)
    assert sorted(p.name for p in tmp_path.glob("*.hist")) == live
    assert not gone_model.exists()
    assert (tmp_path / "notes.txt").exists()
    assert "sensor-removed-sensor.hist" in caplog.text
