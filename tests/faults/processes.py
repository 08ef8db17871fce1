"""The suite's processes: the broker, the server and the gateway, each a child process.

A scenario's faults are done to processes (stopped, restarted, SIGKILLed), so each
one runs on loopback as its own process, logging to a file of the test's directory:
a Mosquitto broker with persistence on (as shipped), the Leaksense server
(``leaksense server run``, InfluxDB reading store) and the gateway (``leaksense
gateway run``), both through ``launch.py``. influxd is the session's (see
``tests/conftest.py``).
"""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from leaksense.server.runtime import build_runtime
from leaksense.server.services import entities
from leaksense.server.settings import load_settings
from services import LOOPBACK, InfluxDatabase, MosquittoServer, free_port

SITE = "faultville"
GATEWAY_ID = "gw-faults"
# ``leaksense gateway ...`` and ``leaksense server ...``, each with only its own
# plugin loaded (see launch.py).
LAUNCH = str(Path(__file__).with_name("launch.py"))
GATEWAY_COMMAND = [sys.executable, LAUNCH, "gateway", "gateway"]
SERVER_COMMAND = [sys.executable, LAUNCH, "server", "server"]
START_TIMEOUT_S = 40.0


def wait_for(
    condition: Callable[[], bool], timeout_s: float, what: str, poll_s: float = 0.1
) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(poll_s)


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
