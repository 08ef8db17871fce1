"""Each stage of the Leaksense data path against the raw limit of the component under it.

Run: ``uv run python benchmarks/bench_path.py [--quick]`` (or ``make bench``).

One run starts its own mosquitto and influxd on free loopback ports, in a temp dir,
and stops them at the end. It measures:

1. MQTT intake. N QoS 1 messages (Leaksense topics and JSON payloads, 200 sensors)
   are published by paho in a *separate process* (the sensors, ≤ 1 000 in flight) and
   received (a) by a bare paho subscriber that only counts them, (b) by the real
   gateway intake (``MqttIntake`` → ``Gateway.handle_message`` → parser, detector,
   intake group → ``SqliteOutbox`` → PUBACK, its uplink thread with a no-op uplink;
   ``benchmarks/bench_gateway.py`` measures that path in detail), assembled as
   ``leaksense/edge/runner.py`` does. Twice: live (publisher and receiver together)
   and as a backlog drain (the broker queued the N messages while the receiver was
   offline: the receiver's own limit). Also ``handle_message`` alone and peak RSS.
2. Server ingest on InfluxDB: raw line protocol POSTed to ``/write`` in 5 000-point
   batches, ``InfluxReadingStore.write`` of ``Reading`` objects, and the full HTTP
   path (``HttpUplink`` → uvicorn → FastAPI ``POST /api/v1/ingest`` → store).
3. The same on SQLite: raw ``executemany`` into the same table with the same pragmas,
   ``SqliteReadingStore.write`` and the full HTTP path; 5 000 rows per transaction.
4. Yield of one DMA (2 inlet meters, 1-minute data) over 30 days: ``compute_yield``
   against the two hourly InfluxQL (or SQL) queries it needs, sent raw.

The stages live in ``path_mqtt.py``, ``path_stores.py`` and ``path_yield.py``, the servers
they run against in ``local_servers.py``, what they share in ``path_common.py``.

Ratios are Leaksense speed ÷ raw speed: 1.00 means Leaksense adds nothing.
Figures are medians over repeats, raw and Leaksense runs alternated.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path

import httpx
from local_servers import Influxd, start_server
from path_common import FULL, QUICK, Figures, Row, Sizes
from path_mqtt import bench_mqtt
from path_stores import StoreTargets, bench_stores, open_raw_sqlite
from path_yield import bench_yield

from leaksense.server.stores.influx import InfluxReadingStore
from leaksense.server.stores.sqlite import SqliteReadingStore


def markdown(figures: Figures) -> str:
    return "\n".join(
        [
            "| Stage | Leaksense | Raw limit | Ratio |",
            "|---|---:|---:|---:|",
            *(f"| {r.stage} | {r.leaksense} | {r.raw} | {r.ratio} |" for r in figures.rows),
        ]
    )


def plain(figures: Figures) -> str:
    rows = [Row("stage", "leaksense", "raw limit", "ratio"), *figures.rows]
    cells = [(r.stage.replace("`", ""), r.leaksense, r.raw, r.ratio) for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(4)]
    return "\n".join(
        "  ".join(
            [c[0].ljust(widths[0]), *(v.rjust(w) for v, w in zip(c[1:], widths[1:], strict=True))]
        )
        for c in cells
    )


def bench_servers(figures: Figures, workdir: Path, sizes: Sizes) -> None:
    """Stages 2 to 4: influxd, two Leaksense servers, the raw writers."""
    with ExitStack() as stack:
        influxd = Influxd(workdir / "influxd").start()
        stack.callback(influxd.stop)
        http = stack.enter_context(httpx.Client(base_url=influxd.url, timeout=120.0))
        influx_store = InfluxReadingStore(influxd.url, "bench_store", timeout_s=120.0)
        stack.callback(influx_store.close)
        influx_store.ensure_database()
        http.post("/query", params={"q": 'CREATE DATABASE "bench_raw"'}).raise_for_status()
        influx_server = start_server(
            workdir / "server-influx",
            reading_store="influxdb",
            influx_url=influxd.url,
            influx_database="bench_http",
        )
        stack.callback(influx_server.stop)
        sqlite_server = start_server(workdir / "server-sqlite")
        stack.callback(sqlite_server.stop)
        sqlite_conn = open_raw_sqlite(workdir / "raw.db")
        stack.callback(sqlite_conn.close)
        sqlite_store = SqliteReadingStore(workdir / "store.db")
        stack.callback(sqlite_store.close)
        targets = StoreTargets(
            http,
            influx_store,
            influx_server,
            sqlite_conn,
            sqlite_store,
            sqlite_server,
            workdir / "server-sqlite" / "readings.db",
        )
        bench_stores(figures, targets, sizes)
        bench_yield(figures, targets, sizes)


def main(argv: Sequence[str]) -> None:
    parser = argparse.ArgumentParser(description="Leaksense path benchmark (see the module doc).")
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    sizes = QUICK if parser.parse_args(argv).quick else FULL
    load_before = os.getloadavg()[0]
    began = time.perf_counter()
    figures = Figures()
    with tempfile.TemporaryDirectory(prefix="leaksense-bench-") as tmp:
        bench_mqtt(figures, Path(tmp), sizes)
        mqtt_s = time.perf_counter() - began
        bench_servers(figures, Path(tmp), sizes)
    total_s = time.perf_counter() - began
    figures.notes.append(
        f"run time {total_s:.0f} s (MQTT {mqtt_s:.0f} s); {os.cpu_count()} CPUs, 1-min load "
        f"average {load_before:.2f} before and {os.getloadavg()[0]:.2f} after (the run itself "
        "keeps about 2 busy: anything above that is someone else)"
    )
    print(plain(figures))
    print()
    for note in figures.notes:
        print(f"- {note}")
    print()
    print(markdown(figures))


if __name__ == "__main__":
    main(sys.argv[1:])
