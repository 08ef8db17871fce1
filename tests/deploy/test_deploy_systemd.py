"""The systemd units, tmpfiles and logrotate files for the Pi, checked as text.

systemd-analyze is not available where the tests run (no systemd): the units are
parsed with configparser, which reads the same INI shape, and checked against what
the rest of the deployment expects (the command, the files provisioning writes, the
state folder the gateway config uses, the log file logrotate rotates).
"""

from __future__ import annotations

import configparser
import re
import shlex
from pathlib import Path

import pytest

from leaksense.edge.config import load_config
from leaksense.server.provision.cli import DEFAULT_ENV_FILE

ROOT = Path(__file__).resolve().parents[2]
SYSTEMD = ROOT / "firmware-config" / "systemd"
GATEWAY_UNIT = SYSTEMD / "leaksense-gateway.service"
MOSQUITTO_DROP_IN = SYSTEMD / "mosquitto.service.d" / "leaksense.conf"
LOGROTATE = ROOT / "firmware-config" / "logrotate" / "leaksense-gateway"
PI_CONFIG = ROOT / "firmware-config" / "gateway" / "gateway-pi.toml"
HARDENING = {
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "ProtectKernelTunables": "yes",
    "ProtectKernelModules": "yes",
    "ProtectControlGroups": "yes",
    "RestrictSUIDSGID": "yes",
    "CapabilityBoundingSet": "",
}


def _unit(path: Path) -> configparser.RawConfigParser:
    """A unit file as sections of keys (repeated keys: the last one)."""
    parser = configparser.RawConfigParser(strict=False, empty_lines_in_values=False)
    parser.optionxform = str  # type: ignore[assignment, method-assign]
    parser.read_string(path.read_text())
    return parser


def _values(path: Path, key: str) -> list[str]:
    """Every value of a key that systemd allows to repeat."""
    return re.findall(rf"^{key}=(.*)$", path.read_text(), re.MULTILINE)


def test_gateway_unit_sections() -> None:
    unit = _unit(GATEWAY_UNIT)
    assert unit.sections() == ["Unit", "Service", "Install"]
    assert unit["Install"]["WantedBy"] == "multi-user.target"
    assert "mosquitto.service" in unit["Unit"]["After"]
    assert unit["Unit"]["StartLimitIntervalSec"] == "0"


def test_gateway_unit_runs_the_gateway_as_an_unprivileged_user() -> None:
    service = _unit(GATEWAY_UNIT)["Service"]
    command = shlex.split(service["ExecStart"])
    assert Path(command[0]).is_absolute()
    assert Path(command[0]).name == "leaksense"
    assert command[1:4] == ["gateway", "run", "--config"]
    assert command[4] == "/etc/leaksense/gateway.toml"
    assert service["User"] not in {"", "root"}
    assert service["Restart"] == "always"
    assert service["EnvironmentFile"] == str(DEFAULT_ENV_FILE)


@pytest.mark.parametrize(("key", "value"), sorted(HARDENING.items()))
def test_gateway_unit_is_hardened(key: str, value: str) -> None:
    assert _unit(GATEWAY_UNIT)["Service"][key] == value


def test_gateway_unit_filters_system_calls() -> None:
    assert _values(GATEWAY_UNIT, "SystemCallFilter") == [
        "@system-service",
        "~@privileged @resources",
    ]


def test_the_pi_gateway_config_writes_only_where_the_unit_allows() -> None:
    """ProtectSystem=strict: only the StateDirectory (and logs) are writable."""
    service = _unit(GATEWAY_UNIT)["Service"]
    state = Path("/var/lib") / service["StateDirectory"]
    config = load_config(PI_CONFIG)
    for path in (config.outbox.path, config.models.dir, config.dead_letter_dir):
        assert path.is_relative_to(state), path
    assert config.mqtt.host == "127.0.0.1"


def test_logrotate_rotates_the_gateway_log() -> None:
    service = _unit(GATEWAY_UNIT)["Service"]
    log_file = Path(service["StandardOutput"].removeprefix("append:"))
    assert log_file.parent == Path("/var/log") / service["LogsDirectory"]
    text = LOGROTATE.read_text()
    [pattern] = re.findall(r"^(/\S+) \{$", text, re.MULTILINE)
    assert log_file.match(pattern)
    directives = {line.split()[0] for line in text.splitlines() if line.startswith("    ")}
    # The file stays open in append mode: it must be truncated in place.
    assert {"copytruncate", "rotate", "compress", "missingok"} <= directives
    assert text.count("{") == text.count("}") == 1


def test_mosquitto_drop_in_restarts_always() -> None:
    drop_in = _unit(MOSQUITTO_DROP_IN)
    assert drop_in["Service"]["Restart"] == "always"
    assert set(drop_in.sections()) <= {"Unit", "Service"}
