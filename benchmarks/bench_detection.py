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
3. Memory: a fresh Python process with what a gateway imports (``leaksense.edge.runner``)
   and bytecode compiled (as a pip-installed gateway has it) runs the engine with 200
   sensors (the same 4 DMAs) fed by a cheap synthetic generator that holds no data,
   with the refit history in files as ``leaksense gateway run`` keeps it: every 5 min
   for 14 days of warm-up and one more, and every minute until the history window
   (1.1 × 14 days) is full and has moved (22 days; 16 with ``--quick``). It reads its
   own ``VmRSS``, ``RssAnon`` and ``VmHWM`` from ``/proc/self/status`` before the
   engine exists and after the run, and times ``observe_values`` (fits included).
   Without ``--quick`` the same two runs with the history in RAM are shown for
   comparison. ``--memory-only`` runs only this part.
4. ``leaksense detect``: a year of 5-minute readings of 5 sensors (one DMA inlet and
   four customer meters, 525 600 rows) written as a readings CSV; timed in-process
   (CSV parsing, then detection) and as the real command in a subprocess.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

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


MEMORY_CHILD = """
import gc, json, random, sys, tempfile, time
from pathlib import Path

def status_kib(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0

import math
import leaksense.edge.runner  # everything a gateway imports, and nothing else
from leaksense.edge.detection.engine import DetectionEngine, DmaMeters, EngineSettings

days, interval_s, history, warmup_days, t0 = json.loads(sys.argv[1])
rng = random.Random(0)  # not numpy.random: the gateway does not import it
gc.collect()
before = (status_kib("VmRSS"), status_kib("RssAnon"))
dmas = tuple(DmaMeters(f"d{k}", (f"d{k}-in",)) for k in range(4))
customers = frozenset(f"d{k}-c{j:03d}" for k in range(4) for j in range(1, 50))
tmp = tempfile.TemporaryDirectory()
engine = DetectionEngine("bench", EngineSettings(
    warmup_days=warmup_days, interval_s=interval_s, customer_meters=customers, dmas=dmas,
    history_dir=Path(tmp.name) if history == "file" else None))
ids = [f"d{k}-in" for k in range(4)] + sorted(customers)
base = [6.0 if sensor_id.endswith("-in") else 0.0125 for sensor_id in ids]
gamma = rng.gammavariate
observe = engine.observe_values
spent_s = 0.0
for step in range(int(days * 86_400 / interval_s)):
    t = t0 + step * interval_s
    shape = 1 + 0.8 * math.sin(2 * math.pi * ((t % 86_400) / 3600 - 9) / 24)
    flows = [round(b * shape * gamma(20, 1 / 20), 4) for b in base]
    began = time.perf_counter()
    for sensor_id, flow in zip(ids, flows):
        observe(sensor_id, t, flow)
    spent_s += time.perf_counter() - began
readings = (step + 1) * len(ids)
gc.collect()
after = (status_kib("VmRSS"), status_kib("RssAnon"))
series = [*engine.series.values(), *engine.dma_series.values()]
engine.close()
disk = sum(p.stat().st_size for p in Path(tmp.name).iterdir())
print(json.dumps({"before_kib": before, "after_kib": after, "hwm_kib": status_kib("VmHWM"),
    "warm": sum(s.artifact is not None for s in series), "series": len(series),
    "history_readings": max(len(s.history) for s in series), "readings": readings,
    "us_per_reading": spent_s / readings * 1e6, "disk_bytes": disk}))
"""


def child_env() -> dict[str, str]:
    """Bytecode on, as in a pip-installed gateway: an interpreter that compiles every
    module from source at each start (``PYTHONDONTWRITEBYTECODE`` and uv's default
    install, as in this repo's venv) holds ~2–3 MiB more."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(Path(tempfile.gettempdir()) / "leaksense-bench-pyc")
    return env


def memory(days: float, interval_s: float, history: str, warmup_days: float) -> dict[str, Any]:
    """A fresh process with the gateway's imports runs 200 sensors; its RSS and rate."""
    job = [days, interval_s, history, warmup_days, START.timestamp()]
    output = subprocess.run(
        [sys.executable, "-c", MEMORY_CHILD, json.dumps(job)],
        check=True,
        capture_output=True,
        text=True,
        env=child_env(),
    ).stdout
    result: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    result.update(days=days, interval_s=interval_s, history=history, warmup_days=warmup_days)
    return result


def memory_row(mem: dict[str, Any]) -> str:
    (rss0, anon0), (rss1, anon1) = mem["before_kib"], mem["after_kib"]
    every = f"{mem['interval_s'] / 60:.0f}-min"
    return (
        f"| gateway RSS, 200 sensors at {every} readings, history in {mem['history']}, "
        f"after {mem['days']:g} days ({mem['warm']}/{mem['series']} warm, "
        f"{mem['history_readings']:,} readings a series in its window) | "
        f"**{rss1 / 1024:.1f} MiB** (engine +{(anon1 - anon0) / 1024:.1f} MiB anonymous; "
        f"{rss0 / 1024:.1f} MiB before it; peak {mem['hwm_kib'] / 1024:.1f}; "
        f"{mem['us_per_reading']:.2f} µs/reading over {mem['readings']:,}, fits included; "
        f"{mem['disk_bytes'] / 2**20:.1f} MiB of history files) |"
    )


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
    parser.add_argument(
        "--memory-only", action="store_true", help="only the memory runs (5-min and 1-min)"
    )
    args = parser.parse_args()
    began = time.perf_counter()
    # Steady state: the history window (1.1 × warm-up) is full and has moved on.
    one_min_days = WARMUP_DAYS + 2 if args.quick else WARMUP_DAYS + 8
    memory(4, 300.0, "file", 3)  # compiles the bytecode of everything a gateway runs
    mems = [
        memory(WARMUP_DAYS + 1, 300.0, "file", WARMUP_DAYS),
        memory(one_min_days, 60.0, "file", WARMUP_DAYS),
    ]
    if not args.quick:  # the RAM history, for comparison (what `leaksense detect` uses)
        mems += [
            memory(WARMUP_DAYS + 1, 300.0, "memory", WARMUP_DAYS),
            memory(one_min_days, 60.0, "memory", WARMUP_DAYS),
        ]
    if args.memory_only:
        print("\n".join(memory_row(m) for m in mems))
        return
    infer, engine = inference(1 if args.quick else 4)
    sizes = artifact_sizes(engine)
    del engine
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
    for mem in mems:
        print(memory_row(mem))
    print(
        f"| `leaksense detect`, {year['rows']:,} rows (5 sensors × 5 min): parse + detect "
        f"in-process | {year['parse_s']:.1f} s + {year['detect_s']:.1f} s "
        f"= {year['us_per_row']:.1f} µs/row |"
    )
    print(f"| `leaksense detect` as a command (wall time) | **{year['command_s']:.1f} s** |")
    print(f"\n(benchmark ran in {time.perf_counter() - began:.0f} s)")


if __name__ == "__main__":
    main()
