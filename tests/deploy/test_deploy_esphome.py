"""Every ESPHome node config validates with ``esphome config``, offline, as shipped.

ESPHome pins paho-mqtt 1.6, so it lives in its own venv (``make esphome-venv`` →
``.venv-esphome``); missing, these tests skip on a laptop and fail in CI. Each run
copies firmware-config/esphome/ to a temp dir with a generated ``secrets.yaml``, the
file that ``leaksense provision node`` writes on a real site.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from leaksense.server.provision.files import format_secrets_file
from leaksense.server.provision.node import NodeRequest, provision_node
from leaksense.server.provision.tls import TlsPaths, provision_tls
from services import require_binary

ROOT = Path(__file__).resolve().parents[2]
ESPHOME_DIR = ROOT / "firmware-config" / "esphome"
GATEWAY_EXAMPLE = ROOT / "firmware-config" / "gateway" / "gateway.toml"
ESPHOME_VENV_BINARY = ROOT / ".venv-esphome" / "bin" / "esphome"
NODE_CONFIGS = sorted(
    path for path in ESPHOME_DIR.glob("*.yaml") if not path.name.startswith("secrets")
)
TEST_SECRETS = {
    "wifi_ssid": "test-ssid",
    "wifi_password": "test-wifi-password",
    "fallback_ap_password": "test-fallback",
    "ota_password": "test-ota",
    "mqtt_broker": "gateway.local",
    "mqtt_password": "test-mqtt-password",
    "mqtt_ca_certificate": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
}
# ESPHome's unit of the flow sensor -> the gateway's `[[esphome]] unit`.
GATEWAY_UNITS = {"L/min": "L/min", "m³/h": "m3/h", "L/h": "L/h"}


class _TagIgnoringLoader(yaml.SafeLoader):
    """Reads ESPHome YAML with ``!secret``, ``!lambda`` and ``!include`` as plain values."""


_TagIgnoringLoader.add_multi_constructor(
    "!",
    lambda loader, suffix, node: loader.construct_scalar(node),
)


def _esphome() -> str:
    return require_binary("esphome", str(ESPHOME_VENV_BINARY))


def _run_config(config: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_esphome(), *extra, "config", config.name],
        cwd=config.parent,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A copy of firmware-config/esphome with test secrets beside the node configs."""
    target = tmp_path / "esphome"
    shutil.copytree(ESPHOME_DIR, target, ignore=shutil.ignore_patterns("secrets.yaml"))
    (target / "secrets.yaml").write_text(format_secrets_file("test", TEST_SECRETS))
    return target


def _load(path: Path) -> dict[str, Any]:
    loaded = yaml.load(path.read_text(), Loader=_TagIgnoringLoader)  # noqa: S506 - safe subclass
    assert isinstance(loaded, dict)
    return loaded


def test_there_are_node_configs() -> None:
    names = {path.stem for path in NODE_CONFIGS}
    assert {"pulse-flow-meter", "dma-meter-modbus", "dma-meter-4-20ma"} <= names


@pytest.mark.parametrize("config", NODE_CONFIGS, ids=lambda p: p.name)
def test_node_config_is_valid(config: Path, workdir: Path) -> None:
    result = _run_config(workdir / config.name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Configuration is valid!" in result.stdout + result.stderr
    node_id = _load(config)["substitutions"]["node_id"]
    # The validated config publishes the flow where the gateway listens, with QoS 1.
    assert f"state_topic: {node_id}/sensor/flow/state\n    qos: 1" in result.stdout


@pytest.mark.parametrize("config", NODE_CONFIGS, ids=lambda p: p.name)
def test_the_gateway_example_maps_each_node_flow_in_its_unit(config: Path) -> None:
    node = _load(config)
    node_id = node["substitutions"]["node_id"]
    [flow] = [s for s in node["sensor"] if s.get("name") == "flow"]
    mapped = {
        entry["topic"]: entry for entry in tomllib.loads(GATEWAY_EXAMPLE.read_text())["esphome"]
    }
    entry = mapped[f"{node_id}/sensor/flow/state"]
    assert entry["unit"] == GATEWAY_UNITS[flow["unit_of_measurement"]]
    assert entry["sensor_id"] == node_id


@pytest.mark.parametrize(
    "config", [*NODE_CONFIGS, ESPHOME_DIR / "common" / "leaksense-node.yaml"], ids=lambda p: p.name
)
def test_credentials_come_only_from_secrets(config: Path) -> None:
    credentials = re.findall(
        r"^\s*(?:ssid|password|broker|certificate_authority):\s*(.*)$",
        config.read_text(),
        re.MULTILINE,
    )
    for value in credentials:
        assert value.startswith("!secret ") or value == "${node_id}", value


def test_a_broken_config_fails_with_a_clear_message(workdir: Path) -> None:
    config = workdir / "pulse-flow-meter.yaml"
    config.write_text(config.read_text().replace("pulse_pin: GPIO27", "pulse_pin: GPIO99"))
    result = _run_config(config)
    assert result.returncode != 0
    assert "Invalid pin number: 99" in result.stdout + result.stderr


def test_a_missing_secret_fails_with_a_clear_message(workdir: Path) -> None:
    secrets = {k: v for k, v in TEST_SECRETS.items() if k != "mqtt_password"}
    (workdir / "secrets.yaml").write_text(format_secrets_file("test", secrets))
    result = _run_config(workdir / "dma-meter-modbus.yaml")
    assert result.returncode != 0
    assert "Secret 'mqtt_password' not defined" in result.stdout + result.stderr


def test_a_provisioned_node_validates(workdir: Path, tmp_path: Path) -> None:
    """`provision node` output (wrapper + secrets.yaml) is a config ESPHome accepts."""
    (workdir / "secrets.yaml").unlink()
    provision_tls(TlsPaths(tmp_path / "tls"), ["gateway.local"])
    acl = tmp_path / "leaksense.acl"
    shutil.copy(ROOT / "firmware-config" / "mosquitto" / "leaksense.acl", acl)
    request = NodeRequest(
        node_id="ss-farm",
        site="saint-savin",
        template=workdir / "dma-meter-4-20ma.yaml",
        out_dir=tmp_path / "nodes" / "ss-farm",
        passwd_file=tmp_path / "leaksense.passwd",
        acl_file=acl,
        broker_host="gateway.local",
        ca_file=tmp_path / "tls" / "ca.crt",
        wifi_ssid="mairie",
        wifi_password="wifi-password",
    )
    provision_node(request)
    result = _run_config(request.out_dir / "ss-farm.yaml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "state_topic: ss-farm/sensor/flow/state" in result.stdout
    assert "username: ss-farm" in result.stdout
