"""The test servers themselves: real brokers and databases that real clients can use."""

from __future__ import annotations

import queue
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from services import (
    INFLUXD_BINARY,
    LOOPBACK,
    MOSQUITTO_BINARY,
    MOSQUITTO_PASSWD_BINARY,
    InfluxDatabase,
    InfluxServer,
    MosquittoServer,
    ServerStartError,
    free_port,
    require_binary,
)

WAIT_S = 5.0


class _Client:
    """A paho client on its network thread, its events turned into queues to wait on."""

    def __init__(self, server: MosquittoServer, *, auth: tuple[str, str] | None = None) -> None:
        self.connects: queue.Queue[ReasonCode] = queue.Queue()
        self.subscribed: queue.Queue[list[ReasonCode]] = queue.Queue()
        self.messages: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        self.paho = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"test-{uuid.uuid4().hex[:8]}"
        )
        self.paho.on_connect = self._on_connect
        self.paho.on_subscribe = self._on_subscribe
        self.paho.on_message = self._on_message
        self.paho.reconnect_delay_set(min_delay=1, max_delay=1)
        if auth is not None:
            self.paho.username_pw_set(*auth)
        self.paho.connect(server.host, server.port, keepalive=10)
        self.paho.loop_start()

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.ConnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        self.connects.put(reason_code)

    def _on_subscribe(
        self,
        client: mqtt.Client,
        userdata: object,
        mid: int,
        reason_codes: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        self.subscribed.put(reason_codes)

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        self.messages.put(msg)

    def close(self) -> None:
        self.paho.disconnect()
        self.paho.loop_stop()


@contextmanager
def _client(server: MosquittoServer, *, auth: tuple[str, str] | None = None) -> Iterator[_Client]:
    client = _Client(server, auth=auth)
    try:
        yield client
    finally:
        client.close()


def _subscribe(client: _Client, topic: str) -> None:
    result, _ = client.paho.subscribe(topic, qos=1)
    assert result == MQTTErrorCode.MQTT_ERR_SUCCESS
    [granted] = client.subscribed.get(timeout=WAIT_S)
    assert granted.value == 1  # QoS 1 granted


def _write_then_read(url: str, database: str, auth: httpx.BasicAuth | None = None) -> object:
    """Write one point at a fixed time and read it back over a bounded time range."""
    point = "flow,meter=m-001 flow_m3h=12.5 1704067200"  # 2024-01-01T00:00:00Z
    written = httpx.post(
        f"{url}/write",
        params={"db": database, "precision": "s"},
        content=point,
        auth=auth,
    )
    assert written.status_code == 204, written.text
    answer = httpx.get(
        f"{url}/query",
        params={
            "db": database,
            "q": "SELECT flow_m3h, meter FROM flow WHERE time >= '2024-01-01T00:00:00Z' "
            "AND time < '2024-01-01T01:00:00Z'",
        },
        auth=auth,
    )
    assert answer.status_code == 200, answer.text
    return answer.json()["results"][0]["series"][0]["values"]


def test_free_port_is_bindable_on_loopback() -> None:
    port = free_port()
    with socket.socket() as sock:
        sock.bind((LOOPBACK, port))
    assert 1024 <= port <= 65535


@pytest.mark.parametrize("ci", ["", "false"])
def test_missing_binary_skips_outside_ci(monkeypatch: pytest.MonkeyPatch, ci: str) -> None:
    monkeypatch.setenv("CI", ci)
    with pytest.raises(pytest.skip.Exception, match="not installed"):
        require_binary("leaksense-no-such-server", "/nonexistent/leaksense-no-such-server")


@pytest.mark.parametrize("ci", ["true", "1", "TRUE"])
def test_missing_binary_fails_in_ci(monkeypatch: pytest.MonkeyPatch, ci: str) -> None:
    monkeypatch.setenv("CI", ci)
    with pytest.raises(pytest.fail.Exception, match="CI must install it"):
        require_binary("leaksense-no-such-server", "/nonexistent/leaksense-no-such-server")


def test_require_binary_falls_back_to_path() -> None:
    assert require_binary("sh", "/nonexistent/sh").endswith("/sh")


@pytest.mark.mqtt
def test_mosquitto_delivers_a_qos1_message(mosquitto: MosquittoServer) -> None:
    assert mosquitto.url == f"mqtt://127.0.0.1:{mosquitto.port}"
    topic = f"leaksense/test/{uuid.uuid4().hex}"
    with _client(mosquitto) as subscriber, _client(mosquitto) as publisher:
        assert subscriber.connects.get(timeout=WAIT_S).value == 0
        assert publisher.connects.get(timeout=WAIT_S).value == 0
        _subscribe(subscriber, topic)

        info = publisher.paho.publish(topic, b'{"flow_m3h": 1.5}', qos=1)
        info.wait_for_publish(timeout=WAIT_S)
        assert info.is_published()  # PUBACK received

        message = subscriber.messages.get(timeout=WAIT_S)
        assert (message.topic, message.payload, message.qos) == (topic, b'{"flow_m3h": 1.5}', 1)


@pytest.mark.mqtt
def test_mosquitto_restart_keeps_the_port_so_clients_reconnect(
    mosquitto: MosquittoServer,
) -> None:
    """A client connected before a restart reconnects on its own and can subscribe again."""
    port, pid = mosquitto.port, mosquitto.pid
    topic = f"leaksense/test/{uuid.uuid4().hex}"
    with _client(mosquitto) as client:
        assert client.connects.get(timeout=WAIT_S).value == 0
        mosquitto.restart()
        assert (mosquitto.port, mosquitto.running) == (port, True)
        assert mosquitto.pid != pid
        assert client.connects.get(timeout=WAIT_S).value == 0  # paho reconnected

        _subscribe(client, topic)
        client.paho.publish(topic, b"after-restart", qos=1)
        assert client.messages.get(timeout=WAIT_S).payload == b"after-restart"


@pytest.mark.mqtt
def test_mosquitto_with_users_refuses_anonymous_clients(tmp_path: Path) -> None:
    passwd = require_binary("mosquitto_passwd", MOSQUITTO_PASSWD_BINARY)
    binary = require_binary("mosquitto", MOSQUITTO_BINARY)
    users = {"gateway": "s3cret"}
    with MosquittoServer(tmp_path, binary=binary, users=users, passwd_binary=passwd) as broker:
        with _client(broker, auth=("gateway", "s3cret")) as allowed:
            assert allowed.connects.get(timeout=WAIT_S).value == 0
        with _client(broker) as anonymous:
            refused = anonymous.connects.get(timeout=WAIT_S)
            assert refused.is_failure
            assert refused.getName() == "Not authorized"


@pytest.mark.influx
def test_influx_db_round_trips_a_point(influx_db: InfluxDatabase) -> None:
    url, database = influx_db
    assert _write_then_read(url, database) == [["2024-01-01T00:00:00Z", 12.5, "m-001"]]


@pytest.mark.influx
def test_influx_db_is_fresh_for_each_test(influxd: InfluxServer, influx_db: InfluxDatabase) -> None:
    answer = influxd.query("SHOW MEASUREMENTS", database=influx_db.name).json()
    assert "series" not in answer["results"][0]  # nothing left over from another test


@pytest.mark.influx
def test_influx_server_with_auth_keeps_data_and_port_across_restart(tmp_path: Path) -> None:
    binary = require_binary("influxd", INFLUXD_BINARY)
    admin = ("admin", "it's-s3cret")
    with InfluxServer(tmp_path, binary=binary, admin=admin) as server:
        server.create_database("meters")
        assert server.auth is not None
        assert _write_then_read(server.url, "meters", server.auth) == [
            ["2024-01-01T00:00:00Z", 12.5, "m-001"]
        ]
        anonymous = httpx.get(f"{server.url}/query", params={"q": "SHOW DATABASES"})
        assert anonymous.status_code == 401

        url = server.url
        server.restart()
        assert server.url == url
        answer = server.query(
            "SELECT count(flow_m3h) FROM flow WHERE time >= '2024-01-01T00:00:00Z' "
            "AND time < '2024-01-02T00:00:00Z'",
            database="meters",
        )
        assert answer.json()["results"][0]["series"][0]["values"][0][1] == 1
    assert not server.running
    assert (tmp_path / "influxd.log").exists()


@pytest.mark.influx
def test_influx_refuses_a_port_already_served(tmp_path: Path, influxd: InfluxServer) -> None:
    other = InfluxServer(tmp_path, binary=influxd.binary, port=influxd.port)
    with pytest.raises(ServerStartError, match="already in use"):
        other.start()
    assert not other.running


@pytest.mark.influx
def test_influx_start_failure_stops_and_quotes_the_log(
    tmp_path: Path, influxd: InfluxServer
) -> None:
    """influxd exits when it cannot bind its port; the error quotes its log."""
    with socket.socket() as holder:
        holder.bind((LOOPBACK, 0))  # bound but not listening: the pre-check passes
        server = InfluxServer(tmp_path, binary=influxd.binary, port=holder.getsockname()[1])
        try:
            with pytest.raises(
                ServerStartError, match=r"(?s)exited with code.*address already in use"
            ):
                server.start()
        finally:
            server.stop()
        assert not server.running
