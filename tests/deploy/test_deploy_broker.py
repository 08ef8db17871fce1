"""The shipped broker configuration runs and enforces its ACL with provisioned users.

Mosquitto is started from firmware-config/mosquitto/mosquitto.conf (paths moved to a
temp dir, free ports), with the shipped ACL and the users, ACL entries and TLS
material that ``leaksense provision`` writes. Each test publishes with QoS 1 and then
checks what the gateway's subscription to ``#`` received. A denied publish is still
acknowledged by the broker (MQTT 3.1.1), so "not received" is checked after a later,
allowed message from the same client has arrived: the broker keeps a client's order.
"""

from __future__ import annotations

import shutil
import socket
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from deploy.support import (
    PRODUCTION_CONF,
    SHIPPED_ACL,
    BrokerPaths,
    Client,
    ShippedMosquitto,
    connect,
)
from leaksense.server.provision.files import read_env_file, read_secrets_file
from leaksense.server.provision.gateway import provision_gateway_mqtt
from leaksense.server.provision.node import NodeRequest, provision_node
from leaksense.server.provision.tls import TlsPaths, provision_tls
from services import MOSQUITTO_BINARY, require_binary

pytestmark = pytest.mark.mqtt

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "firmware-config" / "esphome" / "pulse-flow-meter.yaml"
SITE = "saint-savin"


@dataclass
class Site:
    broker: ShippedMosquitto
    paths: BrokerPaths
    passwords: dict[str, str]

    def node(self, user: str, *, subscribe: str | None = None, tls: bool = False) -> Client:
        """``user`` logged in with its provisioned password (over TLS if asked)."""
        if tls:
            return connect(
                self.broker.tls_port,
                user,
                self.passwords[user],
                host="localhost",
                ca_file=self.paths.tls / "ca.crt",
                subscribe=subscribe,
            )
        return connect(self.broker.port, user, self.passwords[user], subscribe=subscribe)


def _provision(paths: BrokerPaths, nodes_dir: Path) -> dict[str, str]:
    provision_tls(TlsPaths(paths.tls), ["localhost", "127.0.0.1"])
    shutil.copy(SHIPPED_ACL, paths.acl)
    passwords = {}
    for node_id in ("ss-school", "ss-farm"):
        request = NodeRequest(
            node_id=node_id,
            site=SITE,
            template=TEMPLATE,
            out_dir=nodes_dir / node_id,
            passwd_file=paths.passwd,
            acl_file=paths.acl,
            broker_host="localhost",
            ca_file=paths.tls / "ca.crt",
            wifi_ssid="site-wifi",
            wifi_password="wifi-password",
        )
        provision_node(request)
        passwords[node_id] = read_secrets_file(nodes_dir / node_id / "secrets.yaml")[
            "mqtt_password"
        ]
    env_file = paths.root / "gateway.env"
    provision_gateway_mqtt(env_file, paths.passwd)
    env = read_env_file(env_file)
    passwords[env["LEAKSENSE_GATEWAY_MQTT_USERNAME"]] = env["LEAKSENSE_GATEWAY_MQTT_PASSWORD"]
    return passwords


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    binary = require_binary("mosquitto", MOSQUITTO_BINARY)
    root = tmp_path_factory.mktemp("broker")
    paths = BrokerPaths(root / "etc")
    paths.root.mkdir()
    passwords = _provision(paths, root / "nodes")
    with ShippedMosquitto(paths, binary) as broker:
        yield Site(broker, paths, passwords)


@pytest.fixture
def gateway(site: Site) -> Iterator[Client]:
    client = site.node("leaksense-gateway", subscribe="#")
    assert client.reason is not None
    assert not client.reason.is_failure
    yield client
    client.close()


def test_a_node_publishes_its_own_states_to_the_gateway(site: Site, gateway: Client) -> None:
    node = site.node("ss-school")
    node.publish("ss-school/sensor/flow/state", "12.5")
    node.publish("leaksense/saint-savin/ss-school/flow", '{"flow_m3h": 0.75}')
    assert gateway.wait_for("ss-school/sensor/flow/state")
    assert gateway.wait_for("leaksense/saint-savin/ss-school/flow")
    node.close()


def test_a_node_cannot_publish_on_another_nodes_topics(site: Site, gateway: Client) -> None:
    intruder = site.node("ss-farm")
    intruder.publish("ss-school/sensor/flow/state", "999")
    intruder.publish("leaksense/saint-savin/ss-school/flow", '{"flow_m3h": 99}')
    intruder.publish("leaksense/other-site/ss-farm/flow", '{"flow_m3h": 99}')
    intruder.publish("ss-farm/sensor/flow/state", "3.0")  # allowed: the barrier
    assert gateway.wait_for("ss-farm/sensor/flow/state")
    assert gateway.topics() == {"ss-farm/sensor/flow/state"}
    intruder.close()


def test_a_node_cannot_read_other_topics(site: Site) -> None:
    spy = site.node("ss-farm", subscribe="#")
    school = site.node("ss-school")
    school.publish("ss-school/sensor/flow/state", "1.0")
    own = site.node("ss-farm")
    own.publish("ss-farm/sensor/total/state", "12.345")
    assert spy.wait_for("ss-farm/sensor/total/state")
    assert spy.topics() == {"ss-farm/sensor/total/state"}
    for client in (spy, school, own):
        client.close()


def test_anonymous_and_wrong_passwords_are_refused(site: Site) -> None:
    for user, password in ((None, None), ("ss-school", "not-the-password"), ("nobody", "x")):
        client = connect(site.broker.port, user, password)
        assert client.reason is not None
        assert client.reason.is_failure, f"{user} was let in"
        client.close()


def test_nodes_connect_over_tls_with_the_provisioned_ca(site: Site, gateway: Client) -> None:
    node = site.node("ss-school", tls=True)
    assert node.reason is not None
    assert not node.reason.is_failure
    node.publish("ss-school/sensor/total/state", "42.000")
    assert gateway.wait_for("ss-school/sensor/total/state")
    node.close()


def test_tls_refuses_a_broker_certificate_from_another_ca(site: Site, tmp_path: Path) -> None:
    provision_tls(TlsPaths(tmp_path), ["localhost"])
    context = ssl.create_default_context(cafile=tmp_path / "ca.crt")
    with (
        socket.create_connection(("127.0.0.1", site.broker.tls_port), timeout=5) as raw,
        pytest.raises(ssl.SSLCertVerificationError),
    ):
        context.wrap_socket(raw, server_hostname="localhost")


def test_the_broker_certificate_names_the_host_the_nodes_use(site: Site) -> None:
    context = ssl.create_default_context(cafile=site.paths.tls / "ca.crt")
    with (
        socket.create_connection(("127.0.0.1", site.broker.tls_port), timeout=5) as raw,
        pytest.raises(ssl.SSLCertVerificationError, match="mismatch"),
    ):
        context.wrap_socket(raw, server_hostname="not-the-broker.example")


def test_the_plain_listener_is_loopback_only() -> None:
    listeners = [
        line.split()[1:]
        for line in PRODUCTION_CONF.read_text().splitlines()
        if line.startswith("listener ")
    ]
    assert listeners == [["1883", "127.0.0.1"], ["8883"]]
