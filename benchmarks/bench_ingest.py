"""Server ingest into InfluxDB against raw line-protocol writes to the same influxd, in one run.

Run: ``uv run python benchmarks/bench_ingest.py [--quick]`` (or ``make bench``).

The script starts its own influxd on a free loopback port, in a temp dir, and a real
Leaksense server on it: ``leaksense server run`` (uvicorn) in its own process, as it is
deployed, with ``reading_store=influxdb``. Three writers then write the same fresh
points, taking turns batch by batch so that a slow moment of the shared machine hits
them alike:

- **raw**: ready-made line protocol, 5 000 points per ``POST /write`` (httpx);
- **store**: ``InfluxReadingStore.write_points`` in this process (line protocol
  formatting, the write, and whatever else the store does on a write);
- **ingest**: ready-made batch JSON as gateways send it (``IngestColumns``,
  schema 2), 5 000 readings per ``POST /api/v1/ingest`` with a gateway's bearer token
  (httpx), answered once the server has written the points and recorded the batch.

Bodies are built before the clock starts: the figures are the server's cost, not the
client's. Each repeat writes points one day after the previous one, under new
``batch_seq`` values, so no batch is a replay. Ratios are Leaksense ÷ raw. The run
also times a replayed batch, and reads the server's own store write time from its
``/metrics``. At the end every database must hold every point (checked with
``count()``). ``--server-python`` runs the server with another interpreter, e.g. the
virtual environment of an older checkout; ``--compare-python`` runs a second server
with another interpreter next to the first, its batches ("ingest-b", in schema 1,
which every version takes) taking turns with the others, to compare versions in one
run.

Writes only mark the hours they touched as dirty; the hourly and daily aggregates are
refreshed later, by the server's background worker or before a read. So the run also
times that deferred work: ``refresh_aggregates`` over everything the ingest writer
wrote (and the store writer's database), checks that the aggregates count every point,
and prints the rate of ingest and refresh together.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from local_servers import Influxd
from path_common import frozen_heap

from leaksense.core.messages import IngestBatch, IngestColumns, Reading
from leaksense.demo.broker import free_port
from leaksense.server.columns import ReadingPoint
from leaksense.server.runtime import build_runtime
from leaksense.server.services.entities import (
    NetworkDescription,
    SiteSpec,
    add_gateway,
    load_network,
)
from leaksense.server.settings import load_settings
from leaksense.server.stores.base import points_of
from leaksense.server.stores.influx import InfluxReadingStore

SITE = "bench"
GATEWAY_ID = "gw-bench"
SENSOR_COUNT = 200
BATCH = 5_000
"""Points per ``/write`` request and readings per ingest POST."""
BASE = datetime(2026, 1, 1, tzinfo=UTC)
"""A Thursday 00:00 UTC: InfluxDB's 7-day shard groups start on Thursdays."""
US = 1_000_000
SENSOR_IDS = [f"s-{i:03d}" for i in range(SENSOR_COUNT)]
BENCH_LIMITS = {
    "rate_limit_requests_per_s": "1000",
    "rate_limit_readings_per_s": "10000000",
    "rate_limit_readings_burst": "10000000",
}
"""The per-gateway rate limits are raised: the benchmark measures the limiter's cost,
not its refusals (the defaults would rightly throttle a client this fast)."""
WRITERS = ("raw", "store", "ingest")


class BenchError(RuntimeError):
    """A writer failed, the server did not start, or a database misses points."""


@dataclass(frozen=True)
class Sizes:
    points: int
    repeats: int


FULL = Sizes(100_000, 7)
QUICK = Sizes(20_000, 2)


@dataclass
class Figures:
    samples: dict[str, list[float]] = field(default_factory=dict)

    def add(self, name: str, value: float) -> None:
        self.samples.setdefault(name, []).append(value)

    def median(self, name: str) -> float:
        return statistics.median(self.samples[name])

    def spread(self, name: str) -> str:
        values = self.samples[name]
        return f"{min(values):,.0f}–{max(values):,.0f}"


@dataclass(frozen=True)
class Dataset:
    """One repeat's points, in the form each writer takes (5 000 per batch)."""

    lines: list[bytes]
    points: list[list[ReadingPoint]]
    bodies: list[bytes]
    """Schema 2, as gateways send them (``HttpUplink.send``)."""
    rows_bodies: list[bytes]
    """The same batches in schema 1, which every server version takes."""


def flow_m3h(i: int) -> float:
    return round(0.5 + (i * 7919 % 4999) / 100, 2)


def make_dataset(count: int, start: datetime, first_seq: int) -> Dataset:
    """``count`` readings: 200 sensors, one per minute each, from ``start``."""
    readings = [
        Reading(
            sensor_id=SENSOR_IDS[i % SENSOR_COUNT],
            time=start + timedelta(minutes=i // SENSOR_COUNT),
            flow_m3h=flow_m3h(i),
        )
        for i in range(count)
    ]
    chunks = [readings[i : i + BATCH] for i in range(0, count, BATCH)]
    points = [points_of(chunk) for chunk in chunks]
    batches = [
        IngestBatch(
            gateway_id=GATEWAY_ID,
            batch_seq=first_seq + n,
            sent_at=datetime.now(UTC),
            readings=chunk,
        )
        for n, chunk in enumerate(chunks)
    ]
    return Dataset(
        lines=[
            "\n".join(f"flow,sensor_id={s} flow_m3h={f!r} {t}" for s, t, f, _ in batch).encode()
            for batch in points
        ],
        points=points,
        bodies=[
            IngestColumns.of(batch).model_dump_json(exclude_none=True).encode() for batch in batches
        ],
        rows_bodies=[batch.model_dump_json().encode() for batch in batches],
    )


def timed(fn: Callable[[], object]) -> float:
    began = time.perf_counter()
    fn()
    return time.perf_counter() - began


@dataclass
class Rig:
    """influxd, the Leaksense server on it, and what each writer writes with."""

    influx: httpx.Client
    store: InfluxReadingStore
    server: httpx.Client
    pids: dict[str, int]
    """``server`` and ``influxd`` processes, whose CPU time is read from /proc."""
    other: httpx.Client | None = None
    """A second server (``--compare-python``), writing to ``bench_http_b``."""

    @property
    def writers(self) -> tuple[str, ...]:
        return (*WRITERS, "ingest-b") if self.other else WRITERS


def raw_write(rig: Rig, body: bytes) -> None:
    response = rig.influx.post("/write", params={"db": "bench_raw", "precision": "u"}, content=body)
    if response.status_code != 204:
        raise BenchError(f"raw /write: HTTP {response.status_code} {response.text[:200]}")


def ingest(rig: Rig, body: bytes, server: httpx.Client | None = None) -> None:
    response = (server or rig.server).post("/api/v1/ingest", content=body)
    if response.status_code != 200 or response.json()["readings_stored"] != BATCH:
        raise BenchError(f"ingest: HTTP {response.status_code} {response.text[:200]}")


def count_points(rig: Rig, database: str) -> int:
    response = rig.influx.get(
        "/query", params={"db": database, "q": 'SELECT count("flow_m3h") FROM "flow"'}
    )
    response.raise_for_status()
    series = response.json()["results"][0].get("series", [])
    return int(series[0]["values"][0][1]) if series else 0


def repeat(figures: Figures, rig: Rig, data: Dataset) -> None:
    writers: dict[str, Callable[[int], object]] = {
        "raw": lambda i: raw_write(rig, data.lines[i]),
        "store": lambda i: rig.store.write_points(data.points[i]),
        "ingest": lambda i: ingest(rig, data.bodies[i]),
    }
    if rig.other is not None:
        writers["ingest-b"] = lambda i: ingest(rig, data.rows_bodies[i], rig.other)
    elapsed_s = dict.fromkeys(writers, 0.0)
    cpu = {(w, p): 0.0 for w in writers for p in ("bench", *rig.pids)}
    with frozen_heap():
        for i in range(len(data.lines)):
            order = rig.writers if i % 2 == 0 else rig.writers[::-1]
            for name in order:
                before = {"bench": time.process_time()} | {
                    p: cpu_s(pid) for p, pid in rig.pids.items()
                }
                elapsed_s[name] += timed(lambda: writers[name](i))  # noqa: B023 - called at once
                cpu[(name, "bench")] += time.process_time() - before["bench"]
                for p, pid in rig.pids.items():
                    cpu[(name, p)] += cpu_s(pid) - before[p]
    points = len(data.lines) * BATCH
    for name, seconds in elapsed_s.items():
        figures.add(name, points / seconds)
    for (name, process), seconds in cpu.items():
        figures.add(f"cpu {name} {process}", seconds / len(data.lines) * 1000)


def server_store_write_ms(rig: Rig) -> float | None:
    """Mean store write time per batch as the server measured it (from ``/metrics``)."""
    samples = {}
    for line in rig.server.get("/metrics").text.splitlines():
        if line.startswith("leaksense_server_store_write_seconds_"):
            name, _, value = line.rpartition(" ")
            samples[name.split("{")[0].rsplit("_", 1)[1]] = float(value)
    if not samples.get("count"):
        return None
    return samples["sum"] / samples["count"] * 1000


def start_server(
    stack: ExitStack, workdir: Path, influx_url: str, python: str, database: str = "bench_http"
) -> tuple[httpx.Client, int]:
    """``leaksense server run`` in its own process, and a client with a gateway's token."""
    workdir.mkdir(parents=True, exist_ok=True)
    settings = {
        "data_dir": str(workdir / "server"),
        "reading_store": "influxdb",
        "influx_url": influx_url,
        "influx_database": database,
    } | BENCH_LIMITS
    runtime = build_runtime(load_settings(**settings))
    with runtime.sessions() as session:
        load_network(session, NetworkDescription(sites=[SiteSpec(site_id=SITE, name="Bench")]))
        token = add_gateway(session, GATEWAY_ID, SITE)
    runtime.close()
    port = free_port()
    env = os.environ | {f"LEAKSENSE_SERVER_{k.upper()}": v for k, v in settings.items()}
    command = [python, "-c", "from leaksense.core.cli import main; main()", "server", "run"]
    with (workdir / "server.log").open("ab") as log:
        process = subprocess.Popen(
            [*command, "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    stack.callback(_stop, process)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(f"{url}/api/v1/health", timeout=1).status_code == 200:
                headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
                client = httpx.Client(base_url=url, headers=headers, timeout=120)
                return stack.enter_context(client), process.pid
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise BenchError(f"the server did not start (see {workdir / 'server.log'})")


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


def start_rig(stack: ExitStack, workdir: Path, python: str, other_python: str | None) -> Rig:
    influxd = Influxd(workdir / "influxd").start()
    stack.callback(influxd.stop)
    influx = stack.enter_context(httpx.Client(base_url=influxd.url, timeout=120.0))
    influx.post("/query", params={"q": 'CREATE DATABASE "bench_raw"'}).raise_for_status()
    store = InfluxReadingStore(influxd.url, "bench_store", timeout_s=120.0)
    stack.callback(store.close)
    store.ensure_database()
    server, server_pid = start_server(stack, workdir, influxd.url, python)
    influxd_pid = influxd._process.pid if influxd._process else 0
    pids = {"server": server_pid, "influxd": influxd_pid}
    other = None
    if other_python is not None:
        other, pids["server_b"] = start_server(
            stack, workdir / "b", influxd.url, other_python, "bench_http_b"
        )
    return Rig(influx, store, server, pids, other)


def cpu_s(pid: int) -> float:
    """CPU seconds used so far by every thread of process ``pid`` (``schedstat``, in ns)."""
    total_ns = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total_ns += int((task / "schedstat").read_text().split()[0])
        except (FileNotFoundError, ProcessLookupError):  # a thread that just ended
            continue
    return total_ns / 1e9


def catch_up(rig: Rig, database: str) -> float:
    """Seconds to bring ``database``'s aggregates up to date; checks they count every point."""
    store = InfluxReadingStore(str(rig.influx.base_url), database, refresh_interval_s=None)
    try:
        seconds = timed(store.refresh_aggregates)
    finally:
        store.close()
    response = rig.influx.get(
        "/query",
        params={
            "db": database,
            "q": 'SELECT sum("reading_count") FROM "flow_hourly" '
            "WHERE time >= '2025-01-01T00:00:00Z' AND time < '2027-01-01T00:00:00Z'",
        },
    )
    response.raise_for_status()
    series = response.json()["results"][0].get("series", [])
    counted = int(series[0]["values"][0][1]) if series else 0
    if counted != count_points(rig, database):
        raise BenchError(f"{database}: the hourly aggregate counts {counted:,} points")
    return seconds


def cpu_notes(figures: Figures, writers: Sequence[str]) -> list[str]:
    """CPU ms per batch of each process for each writer, and what they imply on a quiet
    machine, where a sequential writer's time is the sum of its stages' CPU time."""
    notes = []
    total = {}
    for writer in writers:
        server = "server_b" if writer == "ingest-b" else "server"
        parts = {p: figures.median(f"cpu {writer} {p}") for p in ("bench", server, "influxd")}
        total[writer] = sum(parts.values())
        notes.append(
            f"CPU per batch, {writer}: "
            + ", ".join(f"{p} {ms:.1f} ms" for p, ms in parts.items())
            + f" (sum {total[writer]:.1f} ms)"
        )
    notes.append(
        "ratio of CPU sums (a quiet machine's ratio for one sequential writer): "
        f"store {total['raw'] / total['store']:.2f}, ingest {total['raw'] / total['ingest']:.2f}"
    )
    return notes


def run(
    sizes: Sizes, workdir: Path, python: str, other_python: str | None = None
) -> tuple[Figures, list[str]]:
    figures = Figures()
    batches = -(-sizes.points // BATCH)
    with ExitStack() as stack:
        rig = start_rig(stack, workdir, python, other_python)
        warm = make_dataset(BATCH, BASE - timedelta(days=1), 10_000_000)
        raw_write(rig, warm.lines[0])
        rig.store.write_points(warm.points[0])
        ingest(rig, warm.bodies[0])
        if rig.other is not None:
            ingest(rig, warm.rows_bodies[0], rig.other)
        for r in range(sizes.repeats):
            data = make_dataset(sizes.points, BASE + timedelta(days=r), r * batches)
            repeat(figures, rig, data)
        replay_ms = statistics.median(timed(lambda: ingest(rig, warm.bodies[0])) for _ in range(5))
        store_ms = server_store_write_ms(rig)
        expected = BATCH + sizes.repeats * batches * BATCH
        databases = ["bench_raw", "bench_store", "bench_http"] + ["bench_http_b"] * bool(rig.other)
        stored = {db: count_points(rig, db) for db in databases}
        if set(stored.values()) != {expected}:
            raise BenchError(f"expected {expected:,} points in each database, found {stored}")
        for database in ("bench_http", "bench_store"):
            figures.add(f"refresh {database}", expected / catch_up(rig, database))
    ranges = ", ".join(f"{w} {figures.spread(w)}" for w in rig.writers)
    notes = [
        f"{sizes.points:,} points per repeat in {batches} batches of {BATCH:,}, "
        f"median of {sizes.repeats} repeats; ranges (points/s): {ranges}",
        f"per batch: raw {BATCH / figures.median('raw') * 1000:.1f} ms, "
        f"ingest {BATCH / figures.median('ingest') * 1000:.1f} ms, of which the server's "
        "store write (its /metrics) "
        + (f"{store_ms:.1f} ms" if store_ms is not None else "unknown"),
        f"replay of a stored {BATCH:,}-reading batch (nothing written): {replay_ms * 1000:.1f} ms",
        *cpu_notes(figures, rig.writers),
        f"every database holds the {expected:,} points written (checked with count())",
        "deferred aggregate refresh of all of them, then checked (Σ reading_count): "
        f"{figures.median('refresh bench_http'):,.0f} points/s for the ingest database, "
        f"{figures.median('refresh bench_store'):,.0f} points/s for the store's",
    ]
    return figures, notes


def main(argv: Sequence[str]) -> None:
    parser = argparse.ArgumentParser(description="Leaksense ingest benchmark (see the module doc).")
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument(
        "--server-python", default=sys.executable, help="interpreter that runs the server"
    )
    parser.add_argument(
        "--compare-python",
        default=None,
        help="also run a second server with this interpreter (e.g. an older checkout's), "
        "its batches taking turns with the others ('ingest-b')",
    )
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    load_before = os.getloadavg()[0]
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="leaksense-bench-ingest-") as tmp:
        figures, notes = run(sizes, Path(tmp), args.server_python, args.compare_python)
    raw, store, ingested = (figures.median(w) for w in WRITERS)
    notes.append(
        f"run time {time.perf_counter() - began:.0f} s; {os.cpu_count()} CPUs, 1-min load "
        f"average {load_before:.2f} before and {os.getloadavg()[0]:.2f} after"
    )
    refresh = figures.median("refresh bench_http")
    with_refresh = 1 / (1 / ingested + 1 / refresh)
    for label, value in (
        ("raw line protocol /write", raw),
        ("InfluxReadingStore.write_points", store),
        ("HTTP ingest (full path)", ingested),
        ("HTTP ingest + deferred refresh", with_refresh),
        *(
            [("HTTP ingest, --compare-python", figures.median("ingest-b"))]
            if args.compare_python
            else []
        ),
    ):
        print(f"{label:34s}{value:>10,.0f} points/s   {value / raw:.2f} of raw")
    print()
    for note in notes:
        print(f"- {note}")
    print()
    print("| Stage | Leaksense | Raw limit | Ratio |")
    print("|---|---:|---:|---:|")
    for stage, value in (
        ("`InfluxReadingStore.write_points`", store),
        ("full HTTP ingest path (`POST /api/v1/ingest`)", ingested),
        ("HTTP ingest + its deferred aggregate refresh", with_refresh),
    ):
        print(
            f"| InfluxDB: {stage} vs raw line protocol | {value:,.0f} points/s "
            f"| {raw:,.0f} points/s | {value / raw:.2f} |"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
