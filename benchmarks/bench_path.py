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

Ratios are Leaksense speed ÷ raw speed: 1.00 means Leaksense adds nothing.
Figures are medians over repeats, raw and Leaksense runs alternated.
"""

from __future__ import annotations

import argparse
import gc
import os
import resource
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ParamSpec

import httpx
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from sensor_publisher import (
    BASE,
    SENSOR_COUNT,
    SENSOR_IDS,
    SITE,
    Publisher,
    flow_m3h,
    publish_all,
)
from sensor_publisher import messages as sensor_messages

from leaksense.core.messages import IngestBatch, IngestResult, Reading
from leaksense.core.topics import FLOW_SUBSCRIPTION
from leaksense.demo.broker import MosquittoProcess, free_port
from leaksense.demo.server_thread import ServerThread
from leaksense.edge.config import GatewayConfig, MqttConfig, UplinkConfig
from leaksense.edge.detection.engine import DetectionEngine
from leaksense.edge.gateway import Gateway
from leaksense.edge.mqtt import MqttIntake, Receipt
from leaksense.edge.outbox_sqlite import SqliteOutbox
from leaksense.edge.uplink import HttpUplink
from leaksense.server.app import create_app
from leaksense.server.runtime import Runtime, build_runtime
from leaksense.server.services.entities import (
    DmaSpec,
    NetworkDescription,
    SensorSpec,
    SiteSpec,
    add_gateway,
    load_network,
)
from leaksense.server.services.network_yield import compute_yield
from leaksense.server.settings import load_settings
from leaksense.server.stores.base import ReadingStore
from leaksense.server.stores.influx import InfluxReadingStore
from leaksense.server.stores.sqlite import SqliteReadingStore

P = ParamSpec("P")
MOSQUITTO = "/usr/sbin/mosquitto"
INFLUXD = "/usr/bin/influxd"
GATEWAY_ID = "gw-bench"
DMA_ID = "dma-bench"
INLETS = ("inlet-1", "inlet-2")
BATCH = 5_000
"""Points per /write request, rows per SQLite transaction, readings per ingest POST."""
YIELD_START = datetime(2026, 2, 5, tzinfo=UTC)
MESSAGE_TIMEOUT_S = 90.0
SETTLE_S = 0.3
"""MqttIntake sets ``connected`` when it sends SUBSCRIBE, before the SUBACK."""
US = 1_000_000


class BenchError(RuntimeError):
    """A stage could not run to the end (lost messages, a server that did not start)."""


@dataclass(frozen=True)
class Sizes:
    messages: int
    points: int
    mqtt_repeats: int
    store_repeats: int
    yield_days: int
    yield_runs: int


FULL = Sizes(20_000, 100_000, 3, 3, 30, 15)
QUICK = Sizes(2_000, 10_000, 1, 1, 7, 5)


@dataclass(frozen=True)
class Row:
    """One line of the result table."""

    stage: str
    leaksense: str
    raw: str
    ratio: str


@dataclass
class Figures:
    """Everything measured in one run: table rows and notes on how they were made."""

    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    samples: dict[str, list[float]] = field(default_factory=dict)

    def add(self, name: str, value: float) -> None:
        self.samples.setdefault(name, []).append(value)

    def median(self, name: str) -> float:
        return statistics.median(self.samples[name])

    def spread(self, name: str, unit: str) -> str:
        values = self.samples[name]
        return f"{name} {min(values):,.0f}–{max(values):,.0f} {unit}"

    def rate(self, stage: str, unit: str, leaksense: float, raw: float | None) -> None:
        """A throughput line; the ratio is Leaksense ÷ raw."""
        raw_text = f"{raw:,.0f} {unit}" if raw else "—"
        ratio = f"{leaksense / raw:.2f}" if raw else "—"
        self.rows.append(Row(stage, f"{leaksense:,.0f} {unit}", raw_text, ratio))

    def latency(self, stage: str, leaksense_s: float, raw_s: float) -> None:
        """A duration line; the ratio is raw time ÷ Leaksense time (a speed ratio)."""
        ms = f"{leaksense_s * 1000:,.1f} ms", f"{raw_s * 1000:,.1f} ms"
        self.rows.append(Row(stage, *ms, f"{raw_s / leaksense_s:.2f}"))


def timed(fn: Callable[P, object], *args: P.args, **kwargs: P.kwargs) -> float:
    """Seconds ``fn(*args, **kwargs)`` took."""
    began = time.perf_counter()
    fn(*args, **kwargs)
    return time.perf_counter() - began


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@contextmanager
def frozen_heap() -> Iterator[None]:
    """Keep the benchmark's own prepared data out of the GC's full collections."""
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


# --- 1. MQTT ----------------------------------------------------------------------------


def wait_for(count: int, received: Callable[[], int], began: float) -> float:
    """Messages/s from ``began`` until ``received()`` reaches ``count``."""
    deadline = began + MESSAGE_TIMEOUT_S
    while received() < count and time.perf_counter() < deadline:
        time.sleep(0.002)
    elapsed_s = time.perf_counter() - began
    if received() < count:
        raise BenchError(f"only {received()} of {count} messages arrived")
    return count / elapsed_s


class RawSubscriber:
    """A bare paho subscriber with the gateway's session settings; it only counts."""

    def __init__(self, port: int) -> None:
        self.count = 0
        self.subscribed = threading.Event()
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id="bench-raw-subscriber",
            clean_session=False,
            protocol=mqtt.MQTTv311,
        )
        client.max_queued_messages_set(0)
        client.on_connect = self._on_connect
        client.on_subscribe = lambda *_args: self.subscribed.set()
        client.on_message = self._on_message
        client.connect("127.0.0.1", port)
        client.loop_start()
        self._client = client

    def received(self) -> int:
        return self.count

    def _on_connect(self, client: mqtt.Client, *_args: Any) -> None:
        client.subscribe(FLOW_SUBSCRIPTION, qos=1)

    def _on_message(self, _client: mqtt.Client, _userdata: Any, _msg: mqtt.MQTTMessage) -> None:
        self.count += 1

    def wait_subscribed(self) -> RawSubscriber:
        if not self.subscribed.wait(10):
            raise BenchError("raw subscriber: no SUBACK")
        return self

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


class NoopUplink:
    """Confirms every batch at once: the gateway side is measured alone."""

    def send(self, batch: IngestBatch) -> IngestResult:
        return IngestResult(
            gateway_id=batch.gateway_id,
            batch_seq=batch.batch_seq,
            readings_stored=len(batch.readings),
            alerts_stored=len(batch.alerts),
        )


def make_gateway(
    workdir: Path, port: int, acknowledge: Callable[[Sequence[Receipt]], None] | None = None
) -> Gateway:
    config = GatewayConfig(
        gateway_id=GATEWAY_ID,
        site=SITE,
        mqtt=MqttConfig(port=port),
        uplink=UplinkConfig(flush_interval_s=0.2),
        dead_letter_dir=workdir / "rejected",
    )
    return Gateway(
        config,
        DetectionEngine(config.gateway_id, config.engine_settings()),
        SqliteOutbox(workdir / "outbox.db"),
        NoopUplink(),
        acknowledge=acknowledge,
    )


class GatewayRig:
    """The real gateway intake as ``leaksense/edge/runner.py`` assembles it, no-op uplink."""

    def __init__(self, workdir: Path, port: int) -> None:
        self.gateway = make_gateway(workdir, port, self._acknowledge)
        self._stop = threading.Event()
        self._uplink = threading.Thread(
            target=self.gateway.run_uplink, args=(self._stop,), name="uplink", daemon=True
        )
        self._committer = threading.Thread(
            target=self.gateway.run_committer, args=(self._stop,), name="committer", daemon=True
        )
        self._intake: MqttIntake | None = None

    def _acknowledge(self, receipts: Sequence[Receipt]) -> None:
        if self._intake is not None:
            self._intake.ack(receipts)

    def received(self) -> int:
        return self.gateway.stats.messages_received

    def connect(self) -> None:
        """Connect (a new intake, same client id: the broker resumes the session)."""
        config = self.gateway.config
        self._intake = MqttIntake(
            config.mqtt,
            client_id=f"leaksense-gw-{config.gateway_id}",
            topics=config.mqtt.subscriptions + self.gateway.parser.esphome_topics,
            handler=self.gateway.handle_message,
        )
        self._intake.start()
        if not self._uplink.is_alive():
            self._uplink.start()
            self._committer.start()

    def wait_subscribed(self) -> GatewayRig:
        if self._intake is None or not self._intake.connected.wait(10):
            raise BenchError("gateway intake did not connect")
        time.sleep(SETTLE_S)
        return self

    def disconnect(self) -> None:
        if self._intake is not None:
            self._intake.stop()
            self._intake = None

    def wait_for(self, count: int, began: float) -> float:
        """Messages/s until the gateway counted ``count``; every one must be accepted."""
        rate = wait_for(count, self.received, began)
        if self.gateway.stats.messages_rejected:
            raise BenchError(f"gateway rejected {self.gateway.stats.messages_rejected} messages")
        return rate

    def stop(self) -> None:
        self._stop.set()
        if self._uplink.is_alive():
            self._uplink.join(5)
            self._committer.join(5)
        self.disconnect()


def live_raw(workdir: Path, count: int) -> float:
    """Bare paho subscriber while the publisher publishes: messages/s."""
    broker = MosquittoProcess(workdir).start(MOSQUITTO)
    publisher = Publisher(broker.port, count)
    subscriber: RawSubscriber | None = None
    try:
        subscriber = RawSubscriber(broker.port).wait_subscribed()
        publisher.wait_ready()
        began = time.perf_counter()
        publisher.go()
        return wait_for(count, subscriber.received, began)
    finally:
        if subscriber is not None:
            subscriber.stop()
        publisher.close()
        broker.stop()


def live_gateway(workdir: Path, count: int) -> float:
    """Gateway intake while the publisher publishes: messages/s."""
    broker = MosquittoProcess(workdir).start(MOSQUITTO)
    publisher = Publisher(broker.port, count)
    rig = GatewayRig(workdir, broker.port)
    try:
        rig.connect()
        rig.wait_subscribed()
        publisher.wait_ready()
        began = time.perf_counter()
        publisher.go()
        return rig.wait_for(count, began)
    finally:
        rig.stop()
        publisher.close()
        broker.stop()


def drain(workdir: Path, count: int, gateway_first: bool) -> tuple[float, float]:
    """(bare paho, gateway) messages/s draining a backlog queued while they were offline."""
    broker = MosquittoProcess(workdir).start(MOSQUITTO)
    rig = GatewayRig(workdir, broker.port)
    try:
        RawSubscriber(broker.port).wait_subscribed().stop()
        rig.connect()
        rig.wait_subscribed()
        rig.disconnect()
        publish_all(broker.port, count)

        def drain_raw() -> float:
            began = time.perf_counter()
            subscriber = RawSubscriber(broker.port)
            try:
                return wait_for(count, subscriber.received, began)
            finally:
                subscriber.stop()

        def drain_gateway() -> float:
            began = time.perf_counter()
            rig.connect()
            return rig.wait_for(count, began)

        if gateway_first:
            gateway_rate = drain_gateway()
            return drain_raw(), gateway_rate
        return drain_raw(), drain_gateway()
    finally:
        rig.stop()
        broker.stop()


def handle_message_alone(workdir: Path, count: int) -> float:
    """Messages/s through ``Gateway.handle_message`` called directly (no MQTT)."""
    gateway = make_gateway(workdir, 1883)
    messages = sensor_messages(count)
    began = time.perf_counter()
    for topic, payload in messages:
        gateway.handle_message(topic, payload)
    gateway.group.commit()
    return count / (time.perf_counter() - began)


def bench_mqtt(figures: Figures, workdir: Path, sizes: Sizes) -> None:
    count = sizes.messages
    rss_start = peak_rss_mib()
    for r in range(sizes.mqtt_repeats):
        runs = [("raw live", live_raw), ("gateway live", live_gateway)]
        for name, fn in runs[:: -1 if r % 2 else 1]:
            figures.add(name, fn(workdir / f"{name}-{r}".replace(" ", "-"), count))
        raw_rate, gateway_rate = drain(workdir / f"drain-{r}", count, gateway_first=r % 2 == 1)
        figures.add("raw drain", raw_rate)
        figures.add("gateway drain", gateway_rate)
    rss_mqtt = peak_rss_mib()
    alone = handle_message_alone(workdir, count)
    unit, m = "msg/s", figures.median
    figures.rate(
        f"MQTT QoS 1, {count:,} msgs, live: gateway intake vs bare paho",
        unit,
        m("gateway live"),
        m("raw live"),
    )
    figures.rate(
        "MQTT QoS 1, backlog drain: gateway intake vs bare paho",
        unit,
        m("gateway drain"),
        m("raw drain"),
    )
    figures.rate(
        "`Gateway.handle_message` alone (no MQTT) vs bare paho drain", unit, alone, m("raw drain")
    )
    figures.rows.append(
        Row("Peak RSS of the process after the MQTT runs", f"{rss_mqtt:,.0f} MiB", "—", "—")
    )
    figures.notes.append(
        f"MQTT: median of {sizes.mqtt_repeats} runs each, raw and gateway alternated; ranges: "
        + "; ".join(
            figures.spread(n, unit)
            for n in ("raw live", "gateway live", "raw drain", "gateway drain")
        )
        + f"; peak RSS after imports {rss_start:,.0f} MiB"
    )


# --- 2-3. Stores ------------------------------------------------------------------------


@dataclass(frozen=True)
class Dataset:
    """The same points in each form a writer needs, built outside the timings."""

    readings: list[Reading]
    lines: list[bytes]
    rows: list[list[tuple[str, int, float, None]]]
    batches: list[IngestBatch]


def make_dataset(count: int, start: datetime, first_seq: int) -> Dataset:
    """``count`` readings: 200 sensors, one per minute each, from ``start``."""
    start_us = round(start.timestamp() * US)
    columns = [
        (SENSOR_IDS[i % SENSOR_COUNT], start_us + (i // SENSOR_COUNT) * 60 * US, flow_m3h(i))
        for i in range(count)
    ]
    readings = [
        Reading(sensor_id=s, time=datetime.fromtimestamp(t / US, tz=UTC), flow_m3h=f)
        for s, t, f in columns
    ]
    chunks = range(0, count, BATCH)
    return Dataset(
        readings=readings,
        lines=[
            "\n".join(
                f"flow,sensor_id={s} flow_m3h={f!r} {t}" for s, t, f in columns[i : i + BATCH]
            ).encode()
            for i in chunks
        ],
        rows=[[(s, t, f, None) for s, t, f in columns[i : i + BATCH]] for i in chunks],
        batches=[
            IngestBatch(
                gateway_id=GATEWAY_ID,
                batch_seq=first_seq + n,
                sent_at=datetime.now(UTC),
                readings=readings[i : i + BATCH],
            )
            for n, i in enumerate(chunks)
        ],
    )


class Influxd:
    """influxd 1.x as a child process: config, data and log in ``workdir``."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None

    def _write_config(self) -> Path:
        data = self.workdir / "data"
        data.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "influxdb.conf"
        config.write_text(
            f'reporting-enabled = false\nbind-address = "127.0.0.1:{free_port()}"\n'
            f'[meta]\n  dir = "{data / "meta"}"\n  logging-enabled = false\n'
            f'[data]\n  dir = "{data / "data"}"\n  wal-dir = "{data / "wal"}"\n'
            "  query-log-enabled = false\n"
            # Bounded GROUP BY time() buckets: an unbounded one can exhaust memory.
            "[coordinator]\n  max-select-buckets = 100000\n"
            "[monitor]\n  store-enabled = false\n"
            f'[http]\n  bind-address = "127.0.0.1:{self.port}"\n  log-enabled = false\n'
            '[logging]\n  level = "warn"\n  suppress-logo = true\n'
        )
        return config

    def start(self) -> Influxd:
        config = self._write_config()
        with (self.workdir / "influxd.log").open("ab") as log:
            self._process = subprocess.Popen(
                [INFLUXD, "run", "-config", str(config)], stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and self._process.poll() is None:
            try:
                if httpx.get(f"{self.url}/ping", timeout=0.5).status_code == 204:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.stop()
        raise BenchError(f"influxd did not start (see {self.workdir / 'influxd.log'})")

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(5)


@dataclass
class Server:
    """A real Leaksense server in a thread, and a gateway's HTTP uplink to it."""

    runtime: Runtime
    thread: ServerThread
    uplink: HttpUplink

    def stop(self) -> None:
        self.uplink.close()
        self.thread.stop()
        self.runtime.close()


def bench_network() -> NetworkDescription:
    return NetworkDescription(
        sites=[SiteSpec(site_id=SITE, name="Benchmark site")],
        dmas=[DmaSpec(dma_id=DMA_ID, site_id=SITE, name="Benchmark DMA")],
        sensors=[
            SensorSpec(sensor_id=s, site_id=SITE, dma_id=DMA_ID, role="inlet") for s in INLETS
        ],
    )


def start_server(data_dir: Path, **store_settings: str) -> Server:
    settings = load_settings(data_dir=data_dir, **store_settings)
    runtime = build_runtime(settings)
    try:
        with runtime.sessions() as session:
            load_network(session, bench_network())
            token = add_gateway(session, GATEWAY_ID, SITE)
        thread = ServerThread(create_app(settings, runtime)).start()
    except BaseException:
        runtime.close()
        raise
    return Server(runtime, thread, HttpUplink(thread.url, token, timeout_s=120.0))


def influx_raw_write(http: httpx.Client, database: str, bodies: Sequence[bytes]) -> None:
    for body in bodies:
        response = http.post("/write", params={"db": database, "precision": "u"}, content=body)
        if response.status_code != 204:
            raise BenchError(f"raw /write: HTTP {response.status_code} {response.text[:200]}")


SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS readings (
    sensor_id TEXT NOT NULL, time_us INTEGER NOT NULL, flow_m3h REAL NOT NULL, index_m3 REAL,
    PRIMARY KEY (sensor_id, time_us)
) WITHOUT ROWID;
"""


def open_raw_sqlite(path: Path) -> sqlite3.Connection:
    """The table and pragmas of ``SqliteReadingStore`` (WAL, ``synchronous=FULL``)."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.executescript(SQLITE_SCHEMA)
    return conn


def sqlite_raw_write(
    conn: sqlite3.Connection, batches: Sequence[Sequence[tuple[Any, ...]]]
) -> None:
    for rows in batches:
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany("INSERT OR REPLACE INTO readings VALUES (?, ?, ?, ?)", rows)
        conn.execute("COMMIT")


def write_in_batches(store: ReadingStore, readings: Sequence[Reading]) -> None:
    """One ``write`` per 5 000 readings, as ingest calls it once per gateway batch."""
    for i in range(0, len(readings), BATCH):
        store.write(readings[i : i + BATCH])


@dataclass
class StoreTargets:
    """Where each writer of stages 2-3 writes: one database or file per writer."""

    influx_http: httpx.Client
    influx_store: InfluxReadingStore
    influx_server: Server
    sqlite_conn: sqlite3.Connection
    sqlite_store: SqliteReadingStore
    sqlite_server: Server
    sqlite_server_db: Path


def store_repeat(figures: Figures, targets: StoreTargets, data: Dataset) -> None:
    """Each writer writes the same fresh points; records points/s.

    Writers take turns batch by batch, so a slow moment of the disk or of a neighbour
    on the machine hits all of them alike instead of one whole run.
    """
    t = targets

    def readings(i: int) -> list[Reading]:
        return data.readings[i * BATCH : (i + 1) * BATCH]

    writers: dict[str, Callable[[int], object]] = {
        "influx raw": lambda i: influx_raw_write(t.influx_http, "bench_raw", data.lines[i : i + 1]),
        "influx store": lambda i: t.influx_store.write(readings(i)),
        "influx http": lambda i: t.influx_server.uplink.send(data.batches[i]),
        "sqlite raw": lambda i: sqlite_raw_write(t.sqlite_conn, data.rows[i : i + 1]),
        "sqlite store": lambda i: t.sqlite_store.write(readings(i)),
        "sqlite http": lambda i: t.sqlite_server.uplink.send(data.batches[i]),
    }
    elapsed_s = dict.fromkeys(writers, 0.0)
    with frozen_heap():
        for i in range(len(data.batches)):
            for name, write in writers.items():
                elapsed_s[name] += timed(write, i)
    for name, seconds in elapsed_s.items():
        figures.add(name, len(data.readings) / seconds)


def bench_stores(figures: Figures, targets: StoreTargets, sizes: Sizes) -> None:
    """Repeat ``r`` writes fresh points one day after those of repeat ``r - 1``."""
    batches = -(-sizes.points // BATCH)
    for r in range(sizes.store_repeats):
        data = make_dataset(sizes.points, BASE + timedelta(days=r), r * batches)
        store_repeat(figures, targets, data)
    unit, m = "points/s", figures.median
    for key, name, store in (
        ("influx", "InfluxDB", "InfluxReadingStore"),
        ("sqlite", "SQLite", "SqliteReadingStore"),
    ):
        raw = m(f"{key} raw")
        figures.rate(f"{name}: `{store}.write` vs raw", unit, m(f"{key} store"), raw)
        figures.rate(f"{name}: full HTTP ingest path vs raw", unit, m(f"{key} http"), raw)
    names = [f"{k} {w}" for k in ("influx", "sqlite") for w in ("raw", "store", "http")]
    figures.notes.append(
        f"stores: {sizes.points:,} points per run, median of {sizes.store_repeats}; ranges: "
        + "; ".join(figures.spread(n, unit) for n in names)
    )


# --- 4. Yield ---------------------------------------------------------------------------


def yield_readings(days: int) -> list[Reading]:
    return [
        Reading(sensor_id=s, time=YIELD_START + timedelta(minutes=m), flow_m3h=flow_m3h(m + k))
        for k, s in enumerate(INLETS)
        for m in range(days * 24 * 60)
    ]


def influx_hourly_raw(http: httpx.Client, database: str, end: datetime) -> None:
    """The two queries ``compute_yield`` needs, sent raw, JSON decoded."""
    for sensor in INLETS:
        query = (
            'SELECT mean("flow_m3h"), count("flow_m3h") FROM "flow" WHERE '  # noqa: S608
            f"\"sensor_id\" = '{sensor}' AND time >= '{YIELD_START.isoformat()}' "
            f"AND time < '{end.isoformat()}' GROUP BY time(1h) fill(none)"
        )
        response = http.get("/query", params={"db": database, "q": query, "epoch": "u"})
        response.raise_for_status()
        response.json()


def sqlite_hourly_raw(conn: sqlite3.Connection, end: datetime) -> None:
    """The two queries ``compute_yield`` needs, on a connection of our own."""
    hour_us = 3600 * US
    bounds = round(YIELD_START.timestamp() * US), round(end.timestamp() * US)
    for sensor in INLETS:
        conn.execute(
            "SELECT (time_us / ?) * ? AS hour, avg(flow_m3h), count(*) FROM readings "
            "WHERE sensor_id = ? AND time_us >= ? AND time_us < ? GROUP BY hour ORDER BY hour",
            (hour_us, hour_us, sensor, *bounds),
        ).fetchall()


def yield_once(server: Server, end: datetime) -> None:
    with server.runtime.sessions() as session:
        report = compute_yield(session, server.runtime.store, DMA_ID, YIELD_START, end)
    if report.completeness_pct != 100.0:
        raise BenchError(f"yield completeness {report.completeness_pct} %, expected 100 %")


def alternate(figures: Figures, runs: int, timings: dict[str, Callable[[], object]]) -> None:
    """One warm-up each, then ``runs`` rounds of every timing in turn."""
    for fn in timings.values():
        fn()
    for _ in range(runs):
        for name, fn in timings.items():
            figures.add(name, timed(fn))


def bench_yield(figures: Figures, targets: StoreTargets, sizes: Sizes) -> None:
    end = YIELD_START + timedelta(days=sizes.yield_days)
    readings = yield_readings(sizes.yield_days)
    write_in_batches(targets.influx_server.runtime.store, readings)
    write_in_batches(targets.sqlite_server.runtime.store, readings)
    with sqlite3.connect(targets.sqlite_server_db) as conn:
        alternate(
            figures,
            sizes.yield_runs,
            {
                "yield influx": lambda: yield_once(targets.influx_server, end),
                "yield influx raw": lambda: influx_hourly_raw(
                    targets.influx_http, "bench_http", end
                ),
                "yield sqlite": lambda: yield_once(targets.sqlite_server, end),
                "yield sqlite raw": lambda: sqlite_hourly_raw(conn, end),
            },
        )
    m = figures.median
    stage = f"Yield, 1 DMA, {sizes.yield_days} days of 1-min data from 2 inlets"
    figures.latency(
        f"{stage}, InfluxDB: `compute_yield` vs its 2 raw queries",
        m("yield influx"),
        m("yield influx raw"),
    )
    figures.latency(
        f"{stage}, SQLite: `compute_yield` vs its 2 raw queries",
        m("yield sqlite"),
        m("yield sqlite raw"),
    )
    figures.notes.append(
        f"yield: {len(readings):,} points, median of {sizes.yield_runs} runs after a warm-up"
    )


# --- Output and main --------------------------------------------------------------------


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
