"""Real Mosquitto and InfluxDB servers for the tests, run as plain processes.

Debian's packages expect systemd, which test machines and CI containers do not have,
so each server is started here from a config written into a temp dir, listening on
127.0.0.1 and a free port, and stopped by PID. Its output goes to a log file in the
same dir, kept after the run and quoted in :class:`ServerStartError` when the server
does not come up.

``restart()`` keeps the port (and, for InfluxDB, the data), so a test can check
that a client reconnects and resubscribes after its broker went away.

The queue limits of the test broker are raised on purpose: with Mosquitto's defaults
a burst of QoS 1 messages is silently dropped ("Outgoing messages are being
dropped"). The production values are documented in
``firmware-config/mosquitto/mosquitto.conf``.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import IO, NamedTuple, NoReturn, Self

import httpx
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from leaksense.core.topics import FLOW_SUBSCRIPTION

LOOPBACK = "127.0.0.1"
MOSQUITTO_BINARY = "/usr/sbin/mosquitto"
MOSQUITTO_PASSWD_BINARY = "/usr/bin/mosquitto_passwd"
INFLUXD_BINARY = "/usr/bin/influxd"

START_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 5.0
_POLL_INTERVAL_S = 0.02
_LOG_TAIL_CHARS = 4_000
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class InfluxDatabase(NamedTuple):
    """A database on a test influxd; unpacks as ``(url, name)``."""

    url: str
    name: str


class ServerStartError(RuntimeError):
    """A server process exited or did not become ready in time (its log is quoted)."""


def free_port() -> int:
    """A TCP port on the loopback interface that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def ci_requested() -> bool:
    """True when env ``CI`` says this is a CI run, where a missing service is an error."""
    return os.environ.get("CI", "").strip().lower() in {"true", "1"}


def require_binary(name: str, path: str) -> str:
    """The path of a server binary: ``path`` if executable, else ``name`` on ``PATH``.

    Missing, the test is skipped on a developer machine but fails under CI: a CI run
    that silently skips every MQTT or InfluxDB test would prove nothing.
    """
    if os.access(path, os.X_OK):
        return path
    found = shutil.which(name)
    if found is not None:
        return found
    message = f"{name} is not installed (looked for {path} and on PATH)"
    if ci_requested():
        pytest.fail(f"{message}; CI must install it", pytrace=False)
    pytest.skip(message)


def _port_accepts(port: int) -> bool:
    try:
        with socket.create_connection((LOOPBACK, port), timeout=0.2):
            return True
    except OSError:
        return False


class _ServerProcess:
    """One server process: config and log in ``workdir``, start/stop/restart by PID."""

    name = "server"

    def __init__(self, workdir: Path, binary: str, port: int | None) -> None:
        self.workdir = workdir
        self.binary = binary
        self.port = port if port is not None else free_port()
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        workdir.mkdir(parents=True, exist_ok=True)

    @property
    def log_path(self) -> Path:
        """Where the process's stdout and stderr go (appended across restarts)."""
        return self.workdir / f"{self.name}.log"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def _command(self) -> list[str]:
        raise NotImplementedError

    def _prepare(self) -> None:
        """Write the config files; called before every start."""

    def _ready(self) -> bool:
        raise NotImplementedError

    def _environment(self) -> dict[str, str]:
        return dict(os.environ)

    def start(self) -> None:
        """Start the process and return once it serves requests."""
        if self.running:
            raise RuntimeError(f"{self.name} is already running (pid {self.pid})")
        if _port_accepts(self.port):
            # Readiness probes would be answered by whoever holds the port.
            raise ServerStartError(f"{self.name}: port {self.port} is already in use")
        self._prepare()
        self._log = self.log_path.open("ab")
        self._process = subprocess.Popen(
            self._command(),
            cwd=self.workdir,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=self._environment(),
            start_new_session=True,
        )
        self._wait_until_ready()

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if not self.running:
                code = self._process.returncode if self._process is not None else None
                self._fail_start(f"exited with code {code}")
            if self._ready():
                return
            if time.monotonic() > deadline:
                self._fail_start(f"not ready after {START_TIMEOUT_S:.0f} s")
            time.sleep(_POLL_INTERVAL_S)

    def _fail_start(self, reason: str) -> NoReturn:
        self.stop()
        tail = self.log_text()[-_LOG_TAIL_CHARS:]
        raise ServerStartError(
            f"{self.name} ({' '.join(self._command())}) {reason}; log {self.log_path}:\n{tail}"
        )

    def stop(self) -> None:
        """Terminate the process (kill it if it lingers); a no-op when not running."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=STOP_TIMEOUT_S)
        if self._log is not None:
            self._log.close()
            self._log = None

    def restart(self) -> None:
        """Stop, then start again on the same port."""
        self.stop()
        self.start()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


class MosquittoServer(_ServerProcess):
    """A Mosquitto broker on ``127.0.0.1:port``.

    Anonymous unless ``users`` (name -> password) is given, in which case a password
    file is written with ``mosquitto_passwd`` and anonymous clients are refused.
    """

    name = "mosquitto"

    def __init__(
        self,
        workdir: Path,
        *,
        binary: str = MOSQUITTO_BINARY,
        port: int | None = None,
        users: Mapping[str, str] | None = None,
        passwd_binary: str = MOSQUITTO_PASSWD_BINARY,
    ) -> None:
        super().__init__(workdir, binary, port)
        self.users = dict(users or {})
        self.passwd_binary = passwd_binary

    @property
    def host(self) -> str:
        return LOOPBACK

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    @property
    def config_path(self) -> Path:
        return self.workdir / "mosquitto.conf"

    @property
    def password_path(self) -> Path:
        return self.workdir / "passwd"

    def _prepare(self) -> None:
        lines = [
            f"listener {self.port} {self.host}",
            "persistence false",
            # A file, not stdout: stdout is block-buffered, so a running broker shows no log.
            f"log_dest file {self.log_path}",
            # Not `all`: debug logs every packet, which slows down throughput tests.
            *(f"log_type {kind}" for kind in ("error", "warning", "notice", "information")),
            "connection_messages true",
            "max_queued_messages 100000",
            "max_inflight_messages 0",
        ]
        if os.geteuid() == 0:
            # As root Mosquitto switches to the `mosquitto` user, which cannot read the
            # 0700 temp dir (password file); stay root for this loopback-only test broker.
            lines.append("user root")
        if self.users:
            self._write_password_file()
            lines += ["allow_anonymous false", f"password_file {self.password_path}"]
        else:
            lines.append("allow_anonymous true")
        self.config_path.write_text("\n".join(lines) + "\n")

    def _write_password_file(self) -> None:
        self.password_path.unlink(missing_ok=True)
        self.password_path.touch(mode=0o600)
        for user, password in self.users.items():
            subprocess.run(
                [self.passwd_binary, "-b", str(self.password_path), user, password],
                check=True,
                capture_output=True,
            )

    def _command(self) -> list[str]:
        return [self.binary, "-c", str(self.config_path)]

    def _ready(self) -> bool:
        return _port_accepts(self.port)

    def open_session(self, client_id: str) -> None:
        """Create a gateway's persistent session, so the broker queues from now on."""
        subscribed = threading.Event()
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False)
        client.on_subscribe = lambda *_args: subscribed.set()
        client.connect(self.host, self.port)
        client.loop_start()
        client.subscribe(FLOW_SUBSCRIPTION, qos=1)
        assert subscribed.wait(5), "no SUBACK"
        client.disconnect()
        client.loop_stop()


class InfluxServer(_ServerProcess):
    """An InfluxDB 1.x server (v1 HTTP API) on ``127.0.0.1:port``, data in ``workdir``.

    With ``admin=(user, password)`` authentication is on and that admin is created on
    first start; every helper request then authenticates as it.
    """

    name = "influxd"

    def __init__(
        self,
        workdir: Path,
        *,
        binary: str = INFLUXD_BINARY,
        port: int | None = None,
        admin: tuple[str, str] | None = None,
    ) -> None:
        super().__init__(workdir, binary, port)
        self.rpc_port = free_port()
        self.admin = admin
        self._admin_created = False

    @property
    def host(self) -> str:
        return LOOPBACK

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def config_path(self) -> Path:
        return self.workdir / "influxdb.conf"

    @property
    def auth(self) -> httpx.BasicAuth | None:
        return httpx.BasicAuth(*self.admin) if self.admin is not None else None

    def _prepare(self) -> None:
        data = self.workdir / "data"
        self.config_path.write_text(
            f"""\
reporting-enabled = false
bind-address = "{self.host}:{self.rpc_port}"

[meta]
  dir = "{data / "meta"}"
  logging-enabled = false

[data]
  dir = "{data / "data"}"
  wal-dir = "{data / "wal"}"
  query-log-enabled = false

[coordinator]
  # Refuse runaway GROUP BY time() queries instead of growing until the OOM killer.
  max-select-buckets = 100000

[monitor]
  store-enabled = false

[http]
  bind-address = "{self.host}:{self.port}"
  auth-enabled = {"true" if self.admin is not None else "false"}
  log-enabled = false

[continuous_queries]
  log-enabled = false

[logging]
  level = "warn"
  suppress-logo = true
"""
        )

    def _environment(self) -> dict[str, str]:
        # influxd lets INFLUXDB_* variables override the config file; keep them out.
        return {k: v for k, v in os.environ.items() if not k.startswith("INFLUXDB_")}

    def _command(self) -> list[str]:
        return [self.binary, "run", "-config", str(self.config_path)]

    def _ready(self) -> bool:
        try:
            return httpx.get(f"{self.url}/ping", timeout=0.5).status_code == 204
        except httpx.HTTPError:
            return False

    def start(self) -> None:
        super().start()
        if self.admin is not None and not self._admin_created:
            user, password = self.admin
            # Allowed without credentials only while no user exists.
            self._query(
                f"CREATE USER {_identifier(user)} WITH PASSWORD "
                f"'{_string(password)}' WITH ALL PRIVILEGES",
                auth=None,
            )
            self._admin_created = True

    def query(self, statement: str, *, database: str | None = None) -> httpx.Response:
        """POST an InfluxQL statement to ``/query``; raise if it or any result failed."""
        return self._query(statement, database=database, auth=self.auth)

    def _query(
        self, statement: str, *, auth: httpx.BasicAuth | None, database: str | None = None
    ) -> httpx.Response:
        data = {"q": statement} | ({"db": database} if database is not None else {})
        response = httpx.post(f"{self.url}/query", data=data, auth=auth, timeout=10.0)
        response.raise_for_status()
        errors = [r["error"] for r in response.json().get("results", []) if "error" in r]
        if errors:
            raise RuntimeError(f"InfluxQL {statement!r} failed: {errors}")
        return response

    def create_database(self, name: str) -> None:
        self.query(f'CREATE DATABASE "{_identifier(name)}"')

    def drop_database(self, name: str) -> None:
        self.query(f'DROP DATABASE "{_identifier(name)}"')


def _identifier(name: str) -> str:
    """``name`` if it is a plain InfluxQL identifier; refuse anything needing escapes."""
    if not _IDENTIFIER.fullmatch(name):
        raise ValueError(f"not a plain identifier: {name!r}")
    return name


def _string(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")
