"""Real processes for the fault-injection suite: broker, server, gateway, sensors.

Everything runs on loopback as separate processes that a scenario can stop, restart
or SIGKILL: a Mosquitto broker with persistence on (as shipped), the Leaksense server
(``leaksense server run``, InfluxDB reading store), the gateway (``leaksense gateway
run``) and influxd (the session's, see ``tests/conftest.py``). Sensor nodes are a
paho client in the test process that publishes QoS 1 readings and counts a reading
as *published* once the broker acknowledged it.

At the end a scenario compares what was published with what InfluxDB holds
(:func:`tally`), read back from influxd itself, not through the server.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from leaksense.core.topics import FLOW_SUBSCRIPTION, flow_topic
from leaksense.server.runtime import build_runtime
from leaksense.server.services import entities
from leaksense.server.settings import load_settings
from services import LOOPBACK, InfluxDatabase, InfluxServer, MosquittoServer, free_port

SITE = "faultville"
GATEWAY_ID = "gw-faults"
# ``leaksense gateway ...`` and ``leaksense server ...``, each with only its own
# plugin loaded (see launch.py).
LAUNCH = str(Path(__file__).with_name("launch.py"))
GATEWAY_COMMAND = [sys.executable, LAUNCH, "gateway", "gateway"]
SERVER_COMMAND = [sys.executable, LAUNCH, "server", "server"]
START_TIMEOUT_S = 40.0
Key = tuple[str, int]
"""``(sensor_id, microseconds since the epoch)``: how storage keys a reading."""


def wait_for(
    condition: Callable[[], bool], timeout_s: float, what: str, poll_s: float = 0.1
) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(poll_s)


def to_us(moment: datetime) -> int:
    return round(moment.timestamp() * 1_000_000)


# --- the broker ------------------------------------------------------------------------


class PersistentMosquitto(MosquittoServer):
    """A test broker that keeps sessions and queued messages across its restarts.

    As shipped (``firmware-config/mosquitto/mosquitto.conf``): without persistence a
    restarted broker forgets the gateway's session and every message queued for it.
    Saved on a clean stop (SIGTERM), as Mosquitto does.
    """

    def _prepare(self) -> None:
        super()._prepare()
        text = self.config_path.read_text()
        store = self.workdir / "store"
        store.mkdir(exist_ok=True)
        persistent = f"persistence true\npersistence_location {store}/"
        self.config_path.write_text(text.replace("persistence false", persistent))


def open_session(broker: MosquittoServer, client_id: str) -> None:
    """Create the gateway's persistent session, so the broker queues from now on."""
    subscribed = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False)
    client.on_subscribe = lambda *_args: subscribed.set()
    client.connect(broker.host, broker.port)
    client.loop_start()
    client.subscribe(FLOW_SUBSCRIPTION, qos=1)
    assert subscribed.wait(5), "no SUBACK"
    client.disconnect()
    client.loop_stop()


class Sensors:
    """Sensor nodes: one paho client publishing at QoS 1, reconnecting by itself.

    paho keeps unacknowledged QoS 1 messages, also those published while it is
    disconnected, and (re-)sends them after a reconnection, so a broker restart in
    the middle of a stream loses nothing on this side; a message counts as published
    once its PUBACK came back (``on_publish``; message ids are unique per client up to
    65 535 messages, more than a scenario sends).
    """

    def __init__(self, broker: MosquittoServer) -> None:
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="fault-nodes")
        self._client.max_inflight_messages_set(200)
        self._client.max_queued_messages_set(0)
        self._client.reconnect_delay_set(min_delay=1, max_delay=2)
        self._client.on_publish = self._on_publish
        self._acked: set[int] = set()
        self._lock = threading.Lock()
        self._client.connect(broker.host, broker.port)
        self._client.loop_start()
        self.published: dict[Key, float] = {}

    def _on_publish(self, _c: mqtt.Client, _u: object, mid: int, _rc: object, _p: object) -> None:
        with self._lock:
            self._acked.add(mid)

    def send(self, readings: Sequence[tuple[str, datetime, float]]) -> list[int]:
        """Queue readings for publication; returns their message ids (see :meth:`confirm`)."""
        mids = []
        for sensor, moment, flow in readings:
            payload = json.dumps({"time": moment.isoformat(), "flow_m3h": flow})
            info = self._client.publish(flow_topic(SITE, sensor), payload, qos=1)
            mids.append(info.mid)
            self.published[sensor, to_us(moment)] = flow
        return mids

    def confirm(self, mids: Iterable[int], timeout_s: float = 60.0) -> None:
        """Wait until the broker acknowledged every message of ``mids``."""
        waiting = set(mids)
        deadline = time.monotonic() + timeout_s
        while True:
            with self._lock:
                waiting -= self._acked
            if not waiting:
                return
            assert time.monotonic() < deadline, f"{len(waiting)} messages not acknowledged"
            time.sleep(0.01)

    def publish(self, readings: Sequence[tuple[str, datetime, float]]) -> None:
        self.confirm(self.send(readings))

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


def series(
    sensors: Sequence[str], start: datetime, minutes: range
) -> list[tuple[str, datetime, float]]:
    """One reading a minute for each sensor, minute by minute; unique times per sensor.

    Flows vary (never constant for hours, so no flatline alert) and are exact in
    binary, so stored values compare equal.
    """
    return [
        (sensor, start + timedelta(minutes=m), 1.0 + ((m * 7 + i) % 64) / 16)
        for m in minutes
        for i, sensor in enumerate(sensors)
    ]


# --- processes -------------------------------------------------------------------------


class Process:
    """A child process logging to a file; killed or stopped by its PID."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self._args = args
        self._env = env
        self.log_path = log
        self.process: subprocess.Popen[bytes] | None = None
        self.kills = 0
        self.starts = 0

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def spawn(self) -> None:
        """Start the process without waiting for it (see :meth:`wait_ready`)."""
        assert not self.running
        self.starts += 1
        with self.log_path.open("ab") as out:
            self.process = subprocess.Popen(
                self._args,
                env=self._env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_ready(self) -> None:
        wait_for(self._ready, START_TIMEOUT_S, f"{self.log_path.stem} to start", poll_s=0.05)

    def _ready(self) -> bool:
        raise NotImplementedError

    def start(self) -> None:
        self.spawn()
        self.wait_ready()

    def kill(self) -> None:
        """SIGKILL: no handler runs, nothing is flushed or closed."""
        assert self.process is not None and self.running
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)
        self.kills += 1

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""


def _clean_environment(prefix: str) -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(prefix)}


class ServerProcess(Process):
    """``leaksense server run`` on a loopback port, readings in an InfluxDB database."""

    def __init__(self, workdir: Path, influx: InfluxDatabase) -> None:
        self.port = free_port()
        self.url = f"http://{LOOPBACK}:{self.port}"
        self.data_dir = workdir / "server"
        env = _clean_environment("LEAKSENSE_SERVER_") | {
            "LEAKSENSE_SERVER_DATA_DIR": str(self.data_dir),
            "LEAKSENSE_SERVER_READING_STORE": "influxdb",
            "LEAKSENSE_SERVER_INFLUX_URL": influx.url,
            "LEAKSENSE_SERVER_INFLUX_DATABASE": influx.name,
            "LEAKSENSE_SERVER_NOTIFY_WORKER": "false",
        }
        args = [*SERVER_COMMAND, "run", "--host", LOOPBACK, "--port", str(self.port)]
        super().__init__(args, env, workdir / "server.log")
        self.token = self._provision(influx)

    def _provision(self, influx: InfluxDatabase) -> str:
        settings = load_settings(
            data_dir=self.data_dir,
            reading_store="influxdb",
            influx_url=influx.url,
            influx_database=influx.name,
        )
        runtime = build_runtime(settings)
        network = entities.NetworkDescription.model_validate(
            {"sites": [{"site_id": SITE, "name": "Faultville"}]}
        )
        with runtime.sessions() as session:
            entities.load_network(session, network)
            token = entities.add_gateway(session, GATEWAY_ID, SITE)
        runtime.close()
        return token

    def _ready(self) -> bool:
        assert self.running, f"the server exited:\n{self.log_text()[-3000:]}"
        try:
            return httpx.get(f"{self.url}/metrics", timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    def batches(self) -> list[tuple[int, int, int]]:
        """``(batch_seq, readings_stored, alerts_stored)`` of the batch log, in order."""
        with sqlite3.connect(self.data_dir / "leaksense.db") as db:
            rows = db.execute(
                "SELECT batch_seq, readings_stored, alerts_stored FROM ingested_batches "
                "ORDER BY batch_seq"
            ).fetchall()
        return [(int(a), int(b), int(c)) for a, b, c in rows]

    def alerts(self) -> list[tuple[str, str]]:
        """``(alert_id, received_at)`` of the alerts the server stored."""
        with sqlite3.connect(self.data_dir / "leaksense.db") as db:
            rows = db.execute("SELECT alert_id, received_at FROM alerts").fetchall()
        return [(str(a), str(b)) for a, b in rows]


@dataclass
class GatewaySettings:
    """What a scenario changes in the gateway's TOML (short delays by default)."""

    batch_max_readings: int = 1000
    retry_max_s: float = 1.0
    max_readings: int | None = None
    outbox_dir: Path | None = None


class GatewayProcess(Process):
    """``leaksense gateway run --config gateway.toml`` with ``/metrics`` on a free port."""

    def __init__(
        self,
        workdir: Path,
        broker: MosquittoServer,
        server: ServerProcess,
        settings: GatewaySettings,
    ) -> None:
        self.metrics_port = free_port()
        outbox_dir = settings.outbox_dir or workdir / "gateway"
        outbox_dir.mkdir(parents=True, exist_ok=True)
        self.outbox_path = outbox_dir / "outbox.db"
        bound = f"max_readings = {settings.max_readings}" if settings.max_readings else ""
        config = workdir / "gateway.toml"
        config.write_text(
            f"""
gateway_id = "{GATEWAY_ID}"
site = "{SITE}"
dead_letter_dir = "{workdir / "rejected"}"
[mqtt]
host = "{broker.host}"
port = {broker.port}
keepalive_s = 5
[uplink]
url = "{server.url}"
flush_interval_s = 0.2
batch_max_readings = {settings.batch_max_readings}
timeout_s = 5.0
retry_max_s = {settings.retry_max_s}
[outbox]
path = "{self.outbox_path}"
{bound}
[models]
dir = "{workdir / "models"}"
[metrics]
port = {self.metrics_port}
"""
        )
        env = _clean_environment("LEAKSENSE_GATEWAY_") | {"LEAKSENSE_GATEWAY_TOKEN": server.token}
        args = [*GATEWAY_COMMAND, "run", "--config", str(config)]
        super().__init__(args, env, workdir / "gateway.log")

    def _ready(self) -> bool:
        """Connected to the broker since its last start."""
        assert self.running, f"the gateway exited:\n{self.log_text()[-3000:]}"
        return self.connections() >= self.starts

    def connections(self) -> int:
        """Connections to the broker so far (its log, all runs)."""
        return self.log_text().count("MQTT connected")

    def metrics(self) -> dict[str, float]:
        """The gateway's ``/metrics`` as ``{name: value}`` (unlabelled samples); {} if down."""
        try:
            text = httpx.get(f"http://{LOOPBACK}:{self.metrics_port}/metrics", timeout=2).text
        except httpx.HTTPError:
            return {}
        values = {}
        for line in text.splitlines():
            if match := re.fullmatch(r"(leaksense_gateway_[a-z_]+) (\S+)", line):
                values[match[1]] = float(match[2])
        return values

    def metric(self, name: str) -> float:
        return self.metrics().get(f"leaksense_gateway_{name}", -1.0)


@dataclass
class Bed:
    """One scenario's processes (server and gateway not started yet)."""

    workdir: Path
    broker: PersistentMosquitto
    influxd: InfluxServer
    influx: InfluxDatabase
    server: ServerProcess
    sensors: Sensors
    gateways: list[GatewayProcess] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    def gateway(self, settings: GatewaySettings | None = None) -> GatewayProcess:
        gateway = GatewayProcess(
            self.workdir, self.broker, self.server, settings or GatewaySettings()
        )
        self.gateways.append(gateway)
        return gateway

    def close(self) -> None:
        """Stop every process the scenario started (also after a failure)."""
        self.sensors.close()
        for gateway in self.gateways:
            gateway.stop()
        self.server.stop()
        self.broker.stop()


# --- storage ---------------------------------------------------------------------------


def stored_points(influx: InfluxDatabase) -> list[tuple[str, int, float]]:
    """Every reading point in the database: ``(sensor_id, time_us, flow_m3h)``."""
    response = httpx.get(
        f"{influx.url}/query",
        params={
            "db": influx.name,
            "q": 'SELECT "flow_m3h" FROM "flow" GROUP BY "sensor_id"',
            "epoch": "u",
        },
        timeout=30,
    )
    response.raise_for_status()
    points = []
    for result in response.json()["results"]:
        assert "error" not in result, result
        for found in result.get("series", []):
            sensor = found["tags"]["sensor_id"]
            points += [(sensor, int(t), float(v)) for t, v in found["values"]]
    return points


def stored_count(influx: InfluxDatabase) -> int:
    """How many reading points the database holds (0 while influxd is down)."""
    try:
        response = httpx.get(
            f"{influx.url}/query",
            params={"db": influx.name, "q": 'SELECT count("flow_m3h") FROM "flow"'},
            timeout=10,
        )
        series_ = response.json()["results"][0].get("series", [])
    except (httpx.HTTPError, ValueError, KeyError):
        return 0
    return int(series_[0]["values"][0][1]) if series_ else 0


@dataclass
class Tally:
    """One scenario's outcome, as reported in build/fault-injection.md."""

    scenario: str
    published: int
    stored: int
    duplicated: int
    lost: int
    dropped_counted: int = 0
    resent: int = 0
    seconds: float = 0.0
    faults: str = ""
    notes: list[str] = field(default_factory=list)


def tally(
    scenario: str, published: dict[Key, float], points: list[tuple[str, int, float]]
) -> Tally:
    """Compare published readings with stored points.

    InfluxDB keys a point by series and time, so a reading written twice is one point:
    a *duplicate* in storage is a point at a time no sensor published (a reading
    stamped again), or a second point for one key. A reading is *stored* when its
    key holds exactly its published value.
    """
    keys = [(sensor, time_us) for sensor, time_us, _ in points]
    values = {(sensor, time_us): flow for sensor, time_us, flow in points}
    stored = sum(1 for key, flow in published.items() if values.get(key) == flow)
    extra = sum(1 for key in set(keys) if key not in published)
    return Tally(
        scenario=scenario,
        published=len(published),
        stored=stored,
        duplicated=len(keys) - len(set(keys)) + extra,
        lost=len(published) - stored,
    )


def server_writes(server: ServerProcess) -> int:
    """Readings the server wrote, summed over its batch log (replays not counted)."""
    return sum(readings for _, readings, _ in server.batches())


def log_lines(text: str, pattern: str) -> int:
    return len(re.findall(pattern, text))


def write_report(path: Path, tallies: Sequence[Tally], command: str) -> str:
    """The Markdown table of a run; written to ``path`` and returned."""
    lines = [
        "| scenario | faults injected | published | stored | duplicated | lost | "
        "dropped (counted) | re-sent, absorbed | time |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for t in tallies:
        lines.append(
            f"| {t.scenario} | {t.faults} | {t.published:,} | {t.stored:,} | {t.duplicated} "
            f"| {t.lost} | {t.dropped_counted:,} | {t.resent:,} | {t.seconds:.1f} s |"
        )
    notes = [f"- **{t.scenario}**: {note}" for t in tallies for note in t.notes]
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    text = "\n".join(
        [f"# Fault-injection suite ({stamp})", "", f"`{command}`", "", *lines, "", *notes, ""]
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return text
