"""A local MQTT broker for the demo: mosquitto when installed, else embedded amqtt."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from amqtt.broker import Broker

from leaksense.core.errors import ServiceUnavailable

MOSQUITTO_CONF = """\
listener {port} 127.0.0.1
allow_anonymous true
persistence false
log_dest stdout
# Without these limits a burst of QoS 1 messages is dropped (components.md).
max_queued_messages 100000
max_inflight_messages 0
"""


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(port: int, timeout_s: float) -> None:
    """Block until something accepts connections on ``127.0.0.1:port``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.02)
    raise ServiceUnavailable(f"nothing listens on 127.0.0.1:{port} after {timeout_s} s")


class LocalBroker(Protocol):
    name: str
    port: int

    def stop(self) -> None: ...


@dataclass
class MosquittoProcess:
    """mosquitto as a plain child process on a free loopback port."""

    workdir: Path
    name: str = "mosquitto"
    port: int = field(default_factory=free_port)
    _process: subprocess.Popen[bytes] | None = None

    def start(self, binary: str) -> MosquittoProcess:
        self.workdir.mkdir(parents=True, exist_ok=True)
        conf = self.workdir.resolve() / "mosquitto.conf"
        conf.write_text(MOSQUITTO_CONF.format(port=self.port))
        # Logs go through our file handle: run as root, mosquitto drops to its own user.
        with (self.workdir / "mosquitto.log").open("ab") as log:
            self._process = subprocess.Popen(
                [binary, "-c", str(conf)], stdout=log, stderr=subprocess.STDOUT
            )
        wait_for_port(self.port, 5.0)
        return self

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(5)


class AmqttThread:
    """amqtt (pure Python, MQTT 3.1.1) on its own event loop in a daemon thread."""

    name = "amqtt (embedded)"

    def __init__(self) -> None:
        self.port = free_port()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._broker: Broker | None = None

    def start(self) -> AmqttThread:
        self._thread.start()
        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{self.port}"}},
            "plugins": {
                "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}
            },
        }

        async def _start() -> Broker:
            broker = Broker(config)
            await broker.start()
            return broker

        # broker.start() returns once listening: no probe connection (amqtt logs it as an error).
        self._broker = asyncio.run_coroutine_threadsafe(_start(), self._loop).result(10)
        return self

    def stop(self) -> None:
        if self._broker is not None:
            asyncio.run_coroutine_threadsafe(self._broker.shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)


def start_broker(workdir: Path, prefer: str = "auto") -> LocalBroker:
    """mosquitto if on PATH (or ``prefer='mosquitto'``), else embedded amqtt."""
    binary = shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
    )
    if prefer != "amqtt" and binary is not None:
        return MosquittoProcess(workdir).start(binary)
    if prefer == "mosquitto":
        raise ServiceUnavailable("mosquitto is not installed (apt-get install mosquitto)")
    return AmqttThread().start()
