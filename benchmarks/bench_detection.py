"""What detection costs a gateway: time per reading, artifact size, memory, and a year offline.

Run: ``uv run python benchmarks/bench_detection.py [--quick]`` (or ``make bench``).

1. Inference: a gateway of 200 sensors (4 DMAs, each an inlet meter and 49 smart
   customer meters, every 5 min, plus the 4 DMA net-inflow series) warms up on 14
   days of simulated readings and fits its models (not timed: the fits are timed
   apart, per series), then ``DetectionEngine.observe_values`` is timed with
   ``time.perf_counter`` over the next 4 days (about 230 000 readings), one day at a
   time; the figure is the median day, in µs per reading.
2. Artifact size: the JSON of the artifacts that warm-up produced (an inlet meter, a
   customer meter, a DMA), as checksummed and as signed with Ed25519.
3. Memory: a fresh Python process (so nothing else is in it) runs the engine with 200
   sensors through 14 days of warm-up and one more day, fed by a cheap synthetic
   generator that holds no data, and reads its own ``VmRSS`` (and ``RssAnon``) from
   ``/proc/self/status`` before the engine exists and after the run.
4. ``leaksense detect``: a year of 5-minute readings of 5 sensors (one DMA inlet and
   four customer meters, 525 600 rows) written as a readings CSV; timed in-process
   (CSV parsing, then detection) and as the real command in a subprocess.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from leaksense.edge.detection import offline
from leaksense.edge.detection.artifact import ModelArtifact, unsigned
from leaksense.edge.detection.engine import DetectionEngine, DmaMeters, EngineSettings
from leaksense.edge.detection.fit import fit_artifact
from leaksense.models.signing import sign, signed_json
from leaksense.simulator.files import write_series_csv
from leaksense.simulator.generate import Simulation, merged_order, simulate
from leaksense.simulator.scenario import Scenario
from leaksense.simulator.spec import ScenarioSpec

START = datetime(2026, 1, 5, tzinfo=UTC)
WARMUP_DAYS = 14
DAY_S = 86_400


def network(dmas: int, meters: int) -> ScenarioSpec:
    """``dmas`` DMAs, each an inlet and ``meters`` customer meters, every 5 minutes."""
    districts = [
        {
            "dma_id": f"d{k}",
            "mains_km": 10,
            "service_connections": 500,
            "avg_pressure_m": 50,
            "inlet": {"sensor_id": f"d{k}-in"},
            "consumers": [{"type": "household", "count": 450, "m3_per_day": 0.3}],
            "customer_meters": [
                {"sensor_id": f"d{k}-c", "count": meters, "type": "household", "m3_per_day": 0.3}
            ],
        }
        for k in range(dmas)
    ]
    leaks = [{"leak_id": f"bg{k}", "dma": f"d{k}", "kind": "background", "flow_m3h": 0.6}
             for k in range(dmas)]  # fmt: skip
    return ScenarioSpec.model_validate(
        {"format": "leaksense.scenario/1", "name": "bench", "site": "bench", "dmas": districts,
         "leaks": leaks}
    )  # fmt: skip


def settings(sim: Simulation) -> EngineSettings:
    scenario = sim.scenario
    return EngineSettings(
        holidays=tuple(sorted(scenario.holidays())),
        warmup_days=WARMUP_DAYS,
        customer_meters=frozenset(s.sensor_id for s in scenario.sensors if s.role == "customer"),
        dmas=tuple(DmaMeters(d.dma_id, (d.inlet.sensor_id,)) for d in scenario.dmas),
    )


def readings(sim: Simulation) -> list[tuple[str, float, float, float | None]]:
    times, sensor, position = merged_order(sim.series)
    cols = [(s.sensor_id, s.flow_m3h.tolist(), s.index_m3) for s in sim.series]
    out = []
    for t, i, k in zip(times.tolist(), sensor.tolist(), position.tolist(), strict=True):
        sensor_id, flow, index = cols[i]
        out.append((sensor_id, float(t), flow[k], None if index is None else float(index[k])))
    return out


def inference(test_days: int) -> tuple[dict[str, Any], DetectionEngine]:
    """µs per reading after warm-up, one day at a time."""
    sim = simulate(Scenario.from_spec(network(4, 49), START, WARMUP_DAYS + test_days), 1)
    rows = readings(sim)
    engine = DetectionEngine("bench", settings(sim))
    split = START.timestamp() + WARMUP_DAYS * DAY_S + 3600  # every series has fitted
    observe = engine.observe_values
    first = next(i for i, r in enumerate(rows) if r[1] >= split)
    for sensor_id, t, flow, index in rows[:first]:
        observe(sensor_id, t, flow, index)
    assert not engine.warming_up(), engine.warming_up()
    per_day: list[float] = []
    alerts = 0
    gc.collect()
    for day in range(test_days):
        end_s = split + (day + 1) * DAY_S
        chunk = [r for r in rows[first:] if split + day * DAY_S <= r[1] < end_s]
        if not chunk:
            continue
        began = time.perf_counter()
        for sensor_id, t, flow, index in chunk:
            alerts += len(observe(sensor_id, t, flow, index))
        per_day.append((time.perf_counter() - began) / len(chunk) * 1e6)
    timed = len(rows) - first
    inlet = sim.series_of("d0-in")
    keep = inlet.times_s < split
    began = time.perf_counter()
    fit_artifact("d0-in", inlet.times_s[keep].astype(float), inlet.flow_m3h[keep], engine.clock)
    result = {
        "fit_ms": (time.perf_counter() - began) * 1000,
        "sensors": len(sim.series),
        "series": len(engine.series) + len(engine.dma_series),
        "timed_readings": timed,
        "us_per_reading": statistics.median(per_day),
        "us_range": (min(per_day), max(per_day)),
        "alerts": alerts,
    }
    return result, engine


def artifact_sizes(engine: DetectionEngine) -> dict[str, tuple[int, int]]:
    """Bytes of an inlet, a customer and a DMA artifact: (checksummed, signed)."""
    key = Ed25519PrivateKey.generate()
    chosen: dict[str, ModelArtifact | None] = {
        "inlet meter": engine.series["d0-in"].artifact,
        "customer meter": engine.series["d0-c001"].artifact,
        "DMA net inflow": engine.dma_series["d0"].artifact,
    }
    out = {}
    for name, artifact in chosen.items():
        assert artifact is not None, f"{name} did not warm up"
        out[name] = (
            len(unsigned(artifact).model_dump_json()),
            len(signed_json(sign(artifact, key))),
        )
    return out


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def memory_child(days: int) -> None:
    """In a fresh process: 200 sensors through ``days`` days; print RSS figures as JSON."""
    rng = np.random.default_rng(0)
    before = (_status_kib("VmRSS"), _status_kib("RssAnon"))
    dmas = tuple(DmaMeters(f"d{k}", (f"d{k}-in",)) for k in range(4))
    customers = frozenset(f"d{k}-c{j:03d}" for k in range(4) for j in range(1, 50))
    engine = DetectionEngine(
        "bench", EngineSettings(warmup_days=WARMUP_DAYS, customer_meters=customers, dmas=dmas)
    )
    ids = [f"d{k}-in" for k in range(4)] + sorted(customers)
    base = np.where(np.char.endswith(np.array(ids), "-in"), 6.0, 0.0125)
    t0 = START.timestamp()
    for step in range(days * 288):
        t = t0 + step * 300
        hour = (t % DAY_S) / 3600
        shape = 1 + 0.8 * np.sin(2 * np.pi * (hour - 9) / 24)
        flows = (base * shape * rng.gamma(20, 1 / 20, base.size)).round(4).tolist()
        for sensor_id, flow in zip(ids, flows, strict=True):
            engine.observe_values(sensor_id, t, flow)
    gc.collect()
    warm = sum(1 for s in engine.series.values() if s.artifact is not None)
    print(json.dumps({"before_kib": before, "after_kib": (_status_kib("VmRSS"),
                      _status_kib("RssAnon")), "warm_series": warm}))  # fmt: skip


def memory(days: int) -> dict[str, Any]:
    output = subprocess.run(
        [sys.executable, __file__, "--memory-child", str(days)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    return result


def detect_year(days: int) -> dict[str, float]:
    """A year (``days``) of 5 sensors through ``leaksense detect``, in-process and as a command."""
    spec = network(1, 4)
    sim = simulate(Scenario.from_spec(spec, START, days), 2)
    with tempfile.TemporaryDirectory() as tmp:
        path, out = Path(tmp) / "readings.csv", Path(tmp) / "alerts.jsonl"
        rows = write_series_csv(path, sim.series)
        began = time.perf_counter()
        parsed = offline.read_csv(path)
        parse_s = time.perf_counter() - began
        engine = DetectionEngine("offline", settings(sim))
        began = time.perf_counter()
        with out.open("w") as sink:
            offline.detect(engine, parsed, sink)
        detect_s = time.perf_counter() - began
        command = ["leaksense", "detect", str(path), "--out", str(out), "--dma", "d0=d0-in"]
        command += [a for j in range(1, 5) for a in ("--customer", f"d0-c{j:03d}")]
        began = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        command_s = time.perf_counter() - began
    return {
        "rows": rows,
        "parse_s": parse_s,
        "detect_s": detect_s,
        "us_per_row": (parse_s + detect_s) / rows * 1e6,
        "command_s": command_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, a smoke test")
    parser.add_argument("--memory-child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        memory_child(args.memory_child)
        return
    began = time.perf_counter()
    infer, engine = inference(1 if args.quick else 4)
    sizes = artifact_sizes(engine)
    del engine
    mem = memory(WARMUP_DAYS + 1)
    year = detect_year(30 if args.quick else 365)
    print("| Detection figure | value |\n|---|---:|")
    print(
        f"| inference, {infer['sensors']} sensors + {infer['series'] - infer['sensors']} DMA "
        f"series, median day of {infer['timed_readings']:,} readings | "
        f"**{infer['us_per_reading']:.2f} µs/reading** "
        f"(days {infer['us_range'][0]:.2f}–{infer['us_range'][1]:.2f}) |"
    )
    print(f"| one model fit (numpy, 14 days of 5-min readings) | {infer['fit_ms']:.0f} ms |")
    for name, (plain, signed) in sizes.items():
        print(f"| artifact JSON, {name}: checksummed / signed | {plain:,} B / {signed:,} B |")
    (rss0, anon0), (rss1, anon1) = mem["before_kib"], mem["after_kib"]
    print(
        f"| gateway process RSS with 200 sensors after warm-up ({mem['warm_series']} warm) "
        f"| **{rss1 / 1024:.0f} MiB** (engine: +{(anon1 - anon0) / 1024:.0f} MiB anonymous; "
        f"{rss0 / 1024:.0f} MiB before the engine) |"
    )
    print(
        f"| `leaksense detect`, {year['rows']:,} rows (5 sensors × 5 min): parse + detect "
        f"in-process | {year['parse_s']:.1f} s + {year['detect_s']:.1f} s "
        f"= {year['us_per_row']:.1f} µs/row |"
    )
    print(f"| `leaksense detect` as a command (wall time) | **{year['command_s']:.1f} s** |")
    print(f"\n(benchmark ran in {time.perf_counter() - began:.0f} s)")


if __name__ == "__main__":
    main()
