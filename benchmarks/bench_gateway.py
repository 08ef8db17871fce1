"""The durable gateway: intake throughput, resident memory, commit cost, drain rate.

Run: ``uv run python benchmarks/bench_gateway.py [--quick]`` (or ``make bench``), or
``--drain-only [--rounds N] [--messages M]`` for the backlog drains alone, alternated.

1. Throughput. N QoS 1 messages (200 sensors, Leaksense topics and JSON) are published
   by paho in a separate process (as in ``bench_path.py``, ≤ 1 000 in flight) to a
   fresh mosquitto on a free port. Two receivers, each in its own process: a bare paho
   subscriber that only counts (auto PUBACK), and the real gateway (``GatewayRunner``: intake →
   ``DetectionEngine`` → intake group → ``SqliteOutbox`` commit with fsync → PUBACK),
   its uplink pointed at a closed port (offline: the outbox only fills). The
   gateway's rate is counted until the N messages are *committed*, not just received.
   Live (publisher and receiver together) and backlog drain (the broker queued the
   N messages for the receiver's persistent session; no publisher competes).
2. Memory. VmRSS of the gateway process after the run (200 series warmed up) and
   its peak (VmHWM), and what the imports alone cost, module by module.
3. Commit cost. One transaction of 1, 50 and 1 000 readings in the outbox's schema
   with ``synchronous`` FULL (the outbox's setting), NORMAL and OFF: the difference
   is the fsync.
4. Drain after an outage. An outbox holding R readings (200 sensors × R/200 minutes)
   is sent by ``Gateway.drain`` through ``HttpUplink`` to a real server (uvicorn in
   a thread, SQLite store), in batches of 1 000 (the default) and 5 000 readings.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
from bench_gateway_child import GATEWAY_ID, RECEIVER_IDS
from paho.mqtt.enums import CallbackAPIVersion
from sensor_publisher import BASE, SENSOR_IDS, SITE, Publisher, publish_all

from leaksense.core.messages import Reading
from leaksense.core.topics import FLOW_SUBSCRIPTION
from leaksense.demo.broker import MosquittoProcess

HERE = Path(__file__).resolve().parent
TIMEOUT_S = 120.0
CHILD = HERE / "bench_gateway_child.py"
MOSQUITTO = "/usr/sbin/mosquitto"


class BenchError(RuntimeError):
    """A stage could not run to the end."""


@dataclass(frozen=True)
class Sizes:
    messages: int
    repeats: int
    drain_readings: int
    commits: int


FULL = Sizes(messages=20_000, repeats=3, drain_readings=500_000, commits=50)
QUICK = Sizes(messages=2_000, repeats=1, drain_readings=20_000, commits=10)


def spawn(*args: str) -> subprocess.Popen[str]:
    """A child process that imports only what the gateway imports (its RSS is the gateway's)."""
    return subprocess.Popen(
        [sys.executable, str(CHILD), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=HERE,
    )


def finish(child: subprocess.Popen[str], count: int) -> dict[str, float]:
    out, _ = child.communicate(timeout=TIMEOUT_S + 30)
    result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    if result["done"] < count:
        raise BenchError(f"receiver got {result['done']} of {count} messages")
    return result


def open_session(port: int, client_id: str) -> None:
    """Create a receiver's persistent session so that the broker queues for it."""
    subscribed = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False)
    client.on_subscribe = lambda *_a: subscribed.set()
    client.connect("127.0.0.1", port)
    client.loop_start()
    client.subscribe(FLOW_SUBSCRIPTION, qos=1)
    if not subscribed.wait(10):
        raise BenchError("no SUBACK")
    client.disconnect()
    client.loop_stop()


def live(kind: str, workdir: Path, count: int) -> dict[str, float]:
    broker = MosquittoProcess(workdir).start(MOSQUITTO)
    publisher = Publisher(broker.port, count)
    try:
        child = spawn("receiver", kind, str(broker.port), str(workdir), str(count), "live")
        assert child.stdout is not None and child.stdin is not None
        if child.stdout.readline().strip() != "ready":
            raise BenchError(f"{kind} receiver did not start")
        publisher.wait_ready()
        child.stdin.write(f"{time.monotonic()}\n")
        child.stdin.flush()
        publisher.go()
        return finish(child, count)
    finally:
        publisher.close()
        broker.stop()


def drain(kind: str, workdir: Path, count: int) -> dict[str, float]:
    broker = MosquittoProcess(workdir).start(MOSQUITTO)
    try:
        open_session(broker.port, RECEIVER_IDS[kind])
        publish_all(broker.port, count)
        child = spawn("receiver", kind, str(broker.port), str(workdir), str(count), "drain")
        return finish(child, count)
    finally:
        broker.stop()


def bench_throughput(workdir: Path, sizes: Sizes) -> dict[str, list[dict[str, float]]]:
    runs: dict[str, list[dict[str, float]]] = {}
    for r in range(sizes.repeats):
        order = ("raw", "gateway") if r % 2 == 0 else ("gateway", "raw")
        for mode, fn in (("live", live), ("drain", drain)):
            for kind in order:
                result = fn(kind, workdir / f"{mode}-{kind}-{r}", sizes.messages)
                runs.setdefault(f"{mode} {kind}", []).append(result)
    return runs


IMPORT_STEPS = (
    ("interpreter", ()),
    ("pydantic + leaksense.core", ("pydantic", "leaksense.core.messages")),
    ("numpy", ("numpy",)),
    ("paho-mqtt", ("paho.mqtt.client",)),
    ("msgspec", ("msgspec",)),
    ("prometheus-client", ("prometheus_client",)),
    ("sqlite3", ("sqlite3",)),
    ("leaksense.edge (the rest)", ("leaksense.edge.runner",)),
    (
        "cryptography (only with `[models] public_key`)",
        ("cryptography.hazmat.primitives.asymmetric.ed25519",),
    ),
)
IMPORTS_CHILD = """
import importlib, json, sys
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
steps = []
for name, modules in json.loads(sys.argv[1]):
    for module in modules:
        importlib.import_module(module)
    steps.append((name, rss()))
print(json.dumps(steps))
"""


def bench_imports() -> list[tuple[str, int]]:
    """VmRSS of a fresh interpreter after each import step (cumulative)."""
    out = subprocess.run(
        [sys.executable, "-c", IMPORTS_CHILD, json.dumps(IMPORT_STEPS)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    return [(name, kib) for name, kib in json.loads(out)]


# --- commit cost ----------------------------------------------------------------------------


def commit_ms(path: Path, synchronous: str, group: int, commits: int) -> float:
    """Median ms of one transaction inserting ``group`` readings in the outbox schema."""
    from leaksense.edge.outbox_sqlite import SCHEMA  # noqa: PLC0415

    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={synchronous}")
        conn.executescript(SCHEMA)
        rows = [(1 + i % 200, i * 60_000_000, 1.5, None) for i in range(group)]
        times = []
        for _ in range(commits):
            began = time.perf_counter()
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(
                "INSERT INTO readings (sensor_key, time_us, flow_m3h, index_m3) "
                "VALUES (?, ?, ?, ?)",
                rows,
            )
            conn.execute("COMMIT")
            times.append(time.perf_counter() - began)
        return statistics.median(times) * 1000
    finally:
        conn.close()


def bench_commits(workdir: Path, sizes: Sizes) -> dict[tuple[str, int], float]:
    results = {}
    for group in (1, 50, 1_000):
        for synchronous in ("FULL", "NORMAL", "OFF"):
            path = workdir / f"commit-{synchronous}-{group}.db"
            results[synchronous, group] = commit_ms(path, synchronous, group, sizes.commits)
    return results


# --- drain after an outage ----------------------------------------------------------------


def outage_readings(count: int, start: datetime) -> list[Reading]:
    return [
        Reading(
            sensor_id=SENSOR_IDS[i % len(SENSOR_IDS)],
            time=start + timedelta(minutes=i // len(SENSOR_IDS)),
            flow_m3h=round(0.5 + (i * 7919 % 4999) / 100, 2),
        )
        for i in range(count)
    ]


@dataclass
class DrainResult:
    batch: int
    fill_rate: float
    drain_rate: float
    bytes_per_reading: float
    stored: int


def drain_once(workdir: Path, count: int, batch: int) -> DrainResult:
    from local_servers import start_server  # noqa: PLC0415 - the server only for this stage

    from leaksense.edge.config import parse_config  # noqa: PLC0415
    from leaksense.edge.detection.engine import DetectionEngine  # noqa: PLC0415
    from leaksense.edge.gateway import Gateway  # noqa: PLC0415
    from leaksense.edge.outbox_sqlite import SqliteOutbox  # noqa: PLC0415

    readings = outage_readings(count, BASE)
    outbox = SqliteOutbox(workdir / "outbox.db")
    server = start_server(workdir / "server")
    try:
        began = time.perf_counter()
        for i in range(0, count, 1_000):  # intake groups of 1 000 messages
            outbox.add(readings[i : i + 1_000], [])
        fill_s = time.perf_counter() - began
        stats = outbox.stats()
        config = parse_config(
            {
                "gateway_id": GATEWAY_ID,
                "site": SITE,
                "uplink": {"url": server.thread.url, "batch_max_readings": batch},
                "outbox": {"path": str(workdir / "outbox.db")},
            }
        )
        engine = DetectionEngine(GATEWAY_ID, config.engine_settings())
        gateway = Gateway(config, engine, outbox, server.uplink)
        began = time.perf_counter()
        if not gateway.drain(TIMEOUT_S * 5):
            raise BenchError("the outbox did not drain")
        drain_s = time.perf_counter() - began
        end = BASE + timedelta(days=30)
        stored = sum(len(server.runtime.store.readings(s, BASE, end)) for s in SENSOR_IDS)
    finally:
        outbox.close()
        server.stop()
    if stored != count:
        raise BenchError(f"server stored {stored} of {count} readings")
    return DrainResult(batch, count / fill_s, count / drain_s, stats.bytes_used / count, stored)


# --- output ---------------------------------------------------------------------------------


def median(runs: Sequence[dict[str, float]], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def spread(runs: Sequence[dict[str, float]], key: str) -> str:
    values = [r[key] for r in runs]
    return f"{min(values):,.0f}–{max(values):,.0f}"


def report(
    sizes: Sizes,
    runs: dict[str, list[dict[str, float]]],
    imports: list[tuple[str, int]],
    commits: dict[tuple[str, int], float],
    drains: list[DrainResult],
) -> str:
    mib = 1024.0
    lines = [
        "| Figure | Gateway | Raw paho | Ratio |",
        "|---|---:|---:|---:|",
    ]
    for mode, label in (("live", "live"), ("drain", "backlog drain")):
        gw, raw = median(runs[f"{mode} gateway"], "rate"), median(runs[f"{mode} raw"], "rate")
        lines.append(
            f"| QoS 1, {sizes.messages:,} msgs, {label}: intake → detection → committed "
            f"outbox vs bare paho | {gw:,.0f} msg/s | {raw:,.0f} msg/s | {gw / raw:.2f} |"
        )
    gateway_runs = runs["drain gateway"] + runs["live gateway"]
    raw_runs = runs["drain raw"] + runs["live raw"]
    lines += [
        f"| RSS after the runs, 200 sensors (VmRSS) | {median(gateway_runs, 'rss_kib') / mib:.1f}"
        f" MiB | {median(raw_runs, 'rss_kib') / mib:.1f} MiB | — |",
        f"| Peak RSS (VmHWM) | {median(gateway_runs, 'hwm_kib') / mib:.1f} MiB"
        f" | {median(raw_runs, 'hwm_kib') / mib:.1f} MiB | — |",
    ]
    for d in drains:
        lines.append(
            f"| Drain after an outage: {d.stored:,} readings, batches of {d.batch:,}, "
            f"to a real server (SQLite) | {d.drain_rate:,.0f} readings/s | — | — |"
        )
    lines += ["", "| Commit of one intake group | FULL | NORMAL | OFF |", "|---|---:|---:|---:|"]
    for group in (1, 50, 1_000):
        cells = " | ".join(f"{commits[s, group]:.2f} ms" for s in ("FULL", "NORMAL", "OFF"))
        lines.append(f"| {group:,} reading(s) | {cells} |")
    lines += ["", "| Imports (cumulative VmRSS) | MiB | + MiB |", "|---|---:|---:|"]
    previous = 0
    for name, kib in imports:
        lines.append(f"| {name} | {kib / mib:.1f} | {(kib - previous) / mib:+.1f} |")
        previous = kib
    notes = [
        f"ranges: live gateway {spread(runs['live gateway'], 'rate')}, live raw "
        f"{spread(runs['live raw'], 'rate')}, drain gateway "
        f"{spread(runs['drain gateway'], 'rate')}, drain raw {spread(runs['drain raw'], 'rate')}"
        " msg/s",
        "outbox fill (SqliteOutbox.add, groups of 1 000): "
        + ", ".join(f"{d.fill_rate:,.0f} readings/s" for d in drains),
        "outbox size: "
        + ", ".join(f"{d.bytes_per_reading:.1f} bytes/reading" for d in drains)
        + f" → {drains[0].bytes_per_reading * 8_640_000 / 2**20:,.0f} MiB for 8.64 M readings",
    ]
    return "\n".join(lines + [""] + [f"- {n}" for n in notes])


def drain_rounds(messages: int, rounds: int) -> str:
    """Backlog drains only, bare paho and gateway alternated ``rounds`` times."""
    load_before = os.getloadavg()[0]
    runs: dict[str, list[dict[str, float]]] = {"raw": [], "gateway": []}
    with tempfile.TemporaryDirectory(prefix="leaksense-bench-gw-") as tmp:
        for r in range(rounds):
            order = ("raw", "gateway") if r % 2 == 0 else ("gateway", "raw")
            for kind in order:
                runs[kind].append(drain(kind, Path(tmp) / f"drain-{kind}-{r}", messages))
            g, b = runs["gateway"][-1], runs["raw"][-1]
            print(
                f"round {r + 1}: gateway {g['rate']:,.0f}, bare paho {b['rate']:,.0f} msg/s"
                f" ({g['rate'] / b['rate']:.2f}); from the first message"
                f" {g['rate_from_first']:,.0f} and {b['rate_from_first']:,.0f}"
                f" ({g['rate_from_first'] / b['rate_from_first']:.2f}); start-up"
                f" {g['startup_ms']:.0f} and {b['startup_ms']:.0f} ms",
                flush=True,
            )
    lines = [f"QoS 1 backlog drain, {messages:,} msgs, {rounds} rounds alternated (medians):"]
    for key, label in (("rate", "from start-up"), ("rate_from_first", "from the first message")):
        gw, raw = median(runs["gateway"], key), median(runs["raw"], key)
        ratios = [g[key] / b[key] for g, b in zip(runs["gateway"], runs["raw"], strict=True)]
        lines.append(
            f"- {label}: gateway {gw:,.0f} msg/s ({spread(runs['gateway'], key)}), bare paho"
            f" {raw:,.0f} msg/s ({spread(runs['raw'], key)}), ratio of medians {gw / raw:.2f};"
            f" per-round ratios {min(ratios):.2f}–{max(ratios):.2f}, median"
            f" {statistics.median(ratios):.2f}"
        )
    lines.append(
        f"- start-up before the first message (median): gateway"
        f" {median(runs['gateway'], 'startup_ms'):.0f} ms, bare paho"
        f" {median(runs['raw'], 'startup_ms'):.0f} ms; CPU of the receiving process from"
        f" the first message: gateway {median(runs['gateway'], 'cpu_us'):.1f} µs a message"
        f" ({spread(runs['gateway'], 'cpu_us')}), bare paho {median(runs['raw'], 'cpu_us'):.1f}"
        f" ({spread(runs['raw'], 'cpu_us')})"
    )
    lines.append(
        f"- {os.cpu_count()} CPUs, 1-min load average {load_before:.2f} before and"
        f" {os.getloadavg()[0]:.2f} after"
    )
    return "\n".join(lines)


def main(argv: Sequence[str]) -> None:
    parser = argparse.ArgumentParser(description="Gateway durability benchmark (module doc).")
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument(
        "--drain-only", action="store_true", help="only the backlog drains, alternated"
    )
    parser.add_argument("--rounds", type=int, default=5, help="alternations for --drain-only")
    parser.add_argument("--messages", type=int, default=FULL.messages, help="for --drain-only")
    args = parser.parse_args(argv)
    if args.drain_only:
        print(drain_rounds(args.messages, args.rounds))
        return
    sizes = QUICK if args.quick else FULL
    load_before = os.getloadavg()[0]
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="leaksense-bench-gw-") as tmp:
        work = Path(tmp)
        runs = bench_throughput(work, sizes)
        imports = bench_imports()
        commits = bench_commits(work, sizes)
        drains = [
            drain_once(work / f"drain-{batch}", sizes.drain_readings, batch)
            for batch in (1_000, 5_000)
        ]
    print(report(sizes, runs, imports, commits, drains))
    print(
        f"- run time {time.perf_counter() - began:.0f} s; {os.cpu_count()} CPUs, 1-min load "
        f"average {load_before:.2f} before and {os.getloadavg()[0]:.2f} after"
    )


if __name__ == "__main__":
    main(sys.argv[1:])
