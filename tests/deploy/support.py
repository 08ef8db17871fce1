"""The shipped Mosquitto configuration, run for real with its paths moved to a temp dir.

``firmware-config/mosquitto/mosquitto.conf`` names system paths (/etc, /var, /run) and
fixed ports; :func:`render_production_config` swaps exactly those for a temp dir and
free loopback ports and refuses a config that still names a system path afterwards,
so a directive added to the shipped file later cannot silently escape the test.
"""

from __future__ import annotations

import os
import re
import ssl
import threading
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from services import LOOPBACK, _port_accepts, _ServerProcess, free_port

ROOT = Path(__file__).resolve().parents[2]
MOSQUITTO_DIR = ROOT / "firmware-config" / "mosquitto"
PRODUCTION_CONF = MOSQUITTO_DIR / "mosquitto.conf"
SHIPPED_ACL = MOSQUITTO_DIR / "leaksense.acl"
TIMEOUT_S = 5.0


@dataclass(frozen=True)
class BrokerPaths:
    """Where the rendered broker keeps what the shipped config puts in /etc and /var."""

    root: Path

    @property
    def passwd(self) -> Path:
        return self.root / "leaksense.passwd"

    @property
    def acl(self) -> Path:
        return self.root / "leaksense.acl"

    @property
    def tls(self) -> Path:
        return self.root / "tls"


def render_production_config(paths: BrokerPaths, plain_port: int, tls_port: int) -> str:
    """The shipped mosquitto.conf with system paths and ports replaced."""
    replacements = {
        "password_file": f"password_file {paths.passwd}",
        "acl_file": f"acl_file {paths.acl}",
        "listener 1883": f"listener {plain_port} {LOOPBACK}",
        "listener 8883": f"listener {tls_port} {LOOPBACK}",
        "cafile": f"cafile {paths.tls / 'ca.crt'}",
        "certfile": f"certfile {paths.tls / 'broker.crt'}",
        "keyfile": f"keyfile {paths.tls / 'broker.key'}",
        "persistence_location": f"persistence_location {paths.root / 'data'}/",
        "pid_file": f"pid_file {paths.root / 'mosquitto.pid'}",
        "log_dest": f"log_dest file {paths.root / 'mosquitto.log'}",
    }
    lines = []
    for line in PRODUCTION_CONF.read_text().splitlines():
        key = next((k for k in replacements if line == k or line.startswith(k + " ")), None)
        lines.append(replacements[key] if key else line)
    if os.geteuid() == 0:
        lines.append("user root")  # the temp dir is not readable by the mosquitto user
    text = "\n".join(lines) + "\n"
    leftover = re.findall(r"^[^#\n]*\s(/(?:etc|var|run)/\S*)", text, re.MULTILINE)
    assert not leftover, f"system paths left in the rendered config: {leftover}"
    return text


class ShippedMosquitto(_ServerProcess):
    """Mosquitto running the rendered production config (plain and TLS listeners)."""

    name = "mosquitto"

    def __init__(self, paths: BrokerPaths, binary: str) -> None:
        super().__init__(paths.root, binary, None)
        self.paths = paths
        self.tls_port = free_port()
        (paths.root / "data").mkdir(parents=True, exist_ok=True)

    @property
    def config_path(self) -> Path:
        return self.paths.root / "mosquitto.conf"

    @property
    def log_path(self) -> Path:
        return self.paths.root / "mosquitto.log"

    def _prepare(self) -> None:
        self.config_path.write_text(render_production_config(self.paths, self.port, self.tls_port))

    def _command(self) -> list[str]:
        return [self.binary, "-c", str(self.config_path)]

    def _ready(self) -> bool:
        return _port_accepts(self.port) and _port_accepts(self.tls_port)


@dataclass
class Client:
    """A paho client that records its CONNACK and the messages it receives."""

    paho: mqtt.Client
    connected: threading.Event = field(default_factory=threading.Event)
    subscribed: threading.Event = field(default_factory=threading.Event)
    reason: ReasonCode | None = None
    received: list[tuple[str, bytes]] = field(default_factory=list)
    got_message: threading.Condition = field(default_factory=threading.Condition)

    def wait_for(self, topic: str) -> bool:
        """True once a message on ``topic`` has arrived (False after the timeout)."""
        with self.got_message:
            return self.got_message.wait_for(
                lambda: any(t == topic for t, _ in self.received), timeout=TIMEOUT_S
            )

    def topics(self) -> set[str]:
        with self.got_message:
            return {topic for topic, _ in self.received}

    def publish(self, topic: str, payload: str) -> None:
        info = self.paho.publish(topic, payload, qos=1)
        info.wait_for_publish(timeout=TIMEOUT_S)
        assert info.is_published(), f"no PUBACK for {topic}"

    def close(self) -> None:
        self.paho.disconnect()
        self.paho.loop_stop()


def connect(
    port: int,
    user: str | None,
    password: str | None,
    *,
    ca_file: Path | None = None,
    host: str = LOOPBACK,
    subscribe: str | None = None,
) -> Client:
    """Connect (TLS when ``ca_file`` is given); the CONNACK is in ``.reason``."""
    paho = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"test-{user}-{free_port()}")
    client = Client(paho)
    if user is not None:
        paho.username_pw_set(user, password)
    if ca_file is not None:
        paho.tls_set(ca_certs=str(ca_file), tls_version=ssl.PROTOCOL_TLS_CLIENT)

    def on_connect(c: mqtt.Client, u: object, f: object, reason: ReasonCode, p: object) -> None:
        client.reason = reason
        client.connected.set()

    def on_subscribe(c: mqtt.Client, u: object, m: int, codes: list[ReasonCode], p: object) -> None:
        client.subscribed.set()

    def on_message(c: mqtt.Client, u: object, message: mqtt.MQTTMessage) -> None:
        with client.got_message:
            client.received.append((message.topic, bytes(message.payload)))
            client.got_message.notify_all()

    paho.on_connect = on_connect
    paho.on_subscribe = on_subscribe
    paho.on_message = on_message
    paho.connect(host, port, keepalive=30)
    paho.loop_start()
    assert client.connected.wait(TIMEOUT_S), "no CONNACK"
    if subscribe is not None and client.reason is not None and not client.reason.is_failure:
        paho.subscribe(subscribe, qos=1)
        assert client.subscribed.wait(TIMEOUT_S), "no SUBACK"
    return client
