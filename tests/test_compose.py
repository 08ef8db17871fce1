"""docker-compose.yml, checked statically (no Docker engine runs the tests).

What is checked is what breaks a deployment quietly: a secret with a default, a
variable nobody documented, a database port open to the network, a volume that was
never declared, a dependency on a health state nobody reports.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from leaksense.server.settings import load_settings
from leaksense.server.stores.influx import MEASUREMENT
from leaksense.server.stores.influx_aggregates import HOURLY

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
MOSQUITTO_CONF = ROOT / "firmware-config" / "mosquitto" / "compose.conf"
GATEWAY_CONF = ROOT / "firmware-config" / "gateway" / "gateway.toml"
GRAFANA = ROOT / "grafana"
DATASOURCES = GRAFANA / "provisioning" / "datasources"
DASHBOARD_PROVIDERS = GRAFANA / "provisioning" / "dashboards"
DASHBOARDS = GRAFANA / "dashboards"

EXPECTED_SERVICES = {"mosquitto", "influxdb", "server", "grafana", "gateway", "simulator"}
VIRTUAL_SITE = {"mosquitto", "gateway", "simulator"}
LOOPBACK_ONLY = {"influxdb", "server", "grafana", "mosquitto"}

# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error}, ${NAME?error}, ${NAME:+alt}
REFERENCE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?P<op>:?[-?+])?(?P<arg>[^}]*)\}")
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|_KEY$|USER(NAME)?$|DATABASE_URL")
ENV_LINE = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)=(?P<value>.*)")
OPTIONAL_SECRETS = {
    "LEAKSENSE_SERVER_SMTP_USERNAME",
    "LEAKSENSE_SERVER_SMTP_PASSWORD",
    "LEAKSENSE_SERVER_WEBHOOK_SECRET",
}
"""Secrets of optional features: ``${NAME?message}`` (the line must be in .env, empty
while the feature is off) and empty in .env.example; the server refuses the feature
without them, and a placeholder in production (``server/settings.py``)."""


def _secret_op(name: str) -> str:
    return "?" if name in OPTIONAL_SECRETS else ":?"


@cache
def _compose() -> dict[str, Any]:
    loaded = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(loaded, dict)
    return loaded


def _services() -> dict[str, dict[str, Any]]:
    services = _compose()["services"]
    assert isinstance(services, dict)
    return services


def _strings(node: object) -> Iterator[str]:
    """Every string in the loaded YAML, keys included: where compose interpolates."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from _strings(key)
            yield from _strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from _strings(item)


def _references() -> list[re.Match[str]]:
    """``${...}`` references compose interpolates (``$$`` is a literal dollar sign)."""
    return [
        match
        for text in _strings(_compose())
        for match in REFERENCE.finditer(text.replace("$$", ""))
    ]


@cache
def _env_example() -> dict[str, tuple[str, list[str]]]:
    """Variables of .env.example: name -> (value, comment lines just above it)."""
    documented: dict[str, tuple[str, list[str]]] = {}
    comments: list[str] = []
    for line in ENV_EXAMPLE.read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            comments.append(stripped.lstrip("# "))
        elif match := ENV_LINE.fullmatch(stripped):
            assert match["name"] not in documented, f"{match['name']} documented twice"
            documented[match["name"]] = (match["value"], comments)
            comments = []
        else:
            assert not stripped, f".env.example: cannot parse {line!r}"
            comments = []
    return documented


def _volume_source(entry: str | dict[str, Any]) -> tuple[str, bool]:
    """(source, is_named_volume) of a service volume in short or long syntax."""
    if isinstance(entry, dict):
        return str(entry.get("source", "")), entry.get("type") == "volume"
    source = entry.split(":", 1)[0]
    return source, not source.startswith((".", "/", "~", "$"))


def _host_ips(ports: list[str | dict[str, Any]]) -> list[str | None]:
    """Host IP of each published port; None when it is published on every interface."""
    ips: list[str | None] = []
    for entry in ports:
        if isinstance(entry, dict):
            ips.append(entry.get("host_ip"))
        else:
            parts = str(entry).split(":")
            ips.append(parts[0] if len(parts) == 3 else None)
    return ips


def test_expected_services_exist() -> None:
    assert set(_services()) == EXPECTED_SERVICES


@pytest.mark.parametrize("name", sorted(EXPECTED_SERVICES))
def test_service_uses_a_pinned_image(name: str) -> None:
    image = _services()[name].get("image")
    assert isinstance(image, str)
    assert ":" in image
    assert not image.endswith(":latest")


def test_images_are_the_expected_ones() -> None:
    images = {name: service["image"] for name, service in _services().items()}
    assert images["mosquitto"] == "eclipse-mosquitto:2"
    assert images["influxdb"] == "influxdb:1.8"
    assert re.fullmatch(r"grafana/grafana:\d+\.\d+\.\d+", images["grafana"])


@pytest.mark.parametrize("name", sorted(EXPECTED_SERVICES))
def test_every_service_restarts_and_has_a_healthcheck(name: str) -> None:
    service = _services()[name]
    assert service.get("restart") == "unless-stopped"
    assert "healthcheck" in service, f"{name} restarts forever but reports no health"
    test = service["healthcheck"]["test"]
    assert isinstance(test, list)
    assert test[0] in {"CMD", "CMD-SHELL"}
    assert len(test) > 1
    assert {"interval", "timeout", "retries"} <= set(service["healthcheck"])


def test_the_virtual_site_is_a_profile_the_central_stack_does_not_need() -> None:
    """`docker compose up` starts the central stack; the simulated site is opt-in."""
    for name, service in _services().items():
        profiles = set(service.get("profiles", []))
        assert profiles == ({"virtual-site"} if name in VIRTUAL_SITE else set()), name
        if name not in VIRTUAL_SITE:
            assert not set(service.get("depends_on", {})) & VIRTUAL_SITE, name


def test_healthy_dependencies_report_health() -> None:
    for name, service in _services().items():
        for target, condition in service.get("depends_on", {}).items():
            assert target in _services(), f"{name} depends on unknown {target}"
            if condition.get("condition") == "service_healthy":
                assert "healthcheck" in _services()[target], f"{name} waits on {target}"


def test_named_volumes_are_declared_and_used() -> None:
    declared = set(_compose().get("volumes") or {})
    used = set()
    for service in _services().values():
        for entry in service.get("volumes", []):
            source, named = _volume_source(entry)
            if named:
                used.add(source)
    assert used == declared


def test_bind_mounted_repository_files_exist() -> None:
    for service in _services().values():
        for entry in service.get("volumes", []):
            source, named = _volume_source(entry)
            if not named and source.startswith("."):
                assert (ROOT / source).exists(), source


def test_only_braced_variables_are_used() -> None:
    for text in _strings(_compose()):
        unescaped = REFERENCE.sub("", text.replace("$$", ""))
        assert "$" not in unescaped, f"unbraced or malformed variable in {text!r}"


def test_every_variable_is_documented_in_env_example() -> None:
    used = {match["name"] for match in _references()}
    documented = set(_env_example())
    assert used - documented == set(), "used in docker-compose.yml, not in .env.example"
    assert documented - used == set(), "in .env.example, not used by docker-compose.yml"


def test_every_env_example_variable_has_a_comment() -> None:
    for name, (_, comments) in _env_example().items():
        assert comments, f"{name} has no comment in .env.example"


def test_secrets_are_required_and_have_no_default() -> None:
    secrets = [match for match in _references() if SECRET_NAME.search(match["name"])]
    assert {match["name"] for match in secrets} >= {
        "LEAKSENSE_MQTT_PASSWORD",
        "INFLUXDB_ADMIN_PASSWORD",
        "LEAKSENSE_INFLUX_PASSWORD",
        "LEAKSENSE_SERVER_DATABASE_URL",
    }
    for match in secrets:
        op = _secret_op(match["name"])
        assert match["op"] == op, f"{match[0]} must be ${{{match['name']}{op}message}}"
        assert match["arg"].strip(), f"{match[0]} needs a message saying what to set"


def test_secret_settings_come_only_from_the_env_file() -> None:
    """No service sets a credential to a literal: each is one required reference."""
    for name, service in _services().items():
        environment = service.get("environment", {})
        assert isinstance(environment, dict), f"{name}: use the mapping form"
        for key, value in environment.items():
            if SECRET_NAME.search(key):
                match = REFERENCE.fullmatch(str(value))
                assert match is not None, f"{name}.{key} is not a ${{VAR:?...}} reference"
                assert match["op"] == _secret_op(match["name"]), f"{name}.{key} has a default"


def test_env_example_holds_placeholders_not_secrets() -> None:
    for name, (value, _) in _env_example().items():
        if re.search("PASSWORD|SECRET|TOKEN", name):
            assert value == ("" if name in OPTIONAL_SECRETS else "change-me"), name


def test_a_variable_has_the_same_default_everywhere() -> None:
    forms: dict[str, set[tuple[str, str]]] = {}
    for match in _references():
        forms.setdefault(match["name"], set()).add((match["op"] or "", match["arg"]))
    for name, seen in forms.items():
        defaults = {arg for op, arg in seen if op in {"-", ":-"}}
        assert len(defaults) <= 1, f"{name} has different defaults: {defaults}"


def _interpolate(text: str, env: dict[str, str]) -> str:
    """``text`` as compose interpolates it from ``env`` (the forms this file uses)."""

    def value(match: re.Match[str]) -> str:
        given = env.get(match["name"])
        if match["op"] in {":-", "-"} and not given:
            return match["arg"]
        assert given is not None or match["op"] not in {"?", ":?"}, match[0]
        return given or ""

    return REFERENCE.sub(value, text.replace("$$", "$"))


def test_the_server_accepts_its_compose_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """With .env.example's values (placeholders replaced by real secrets, optional
    features left empty), the server's settings load in production mode."""
    env = {
        name: "a-real-secret-of-at-least-32-chars!" if value == "change-me" else value
        for name, (value, _) in _env_example().items()
    }
    for key, raw in _services()["server"]["environment"].items():
        monkeypatch.setenv(key, _interpolate(str(raw), env))
    settings = load_settings()
    assert settings.mode == "production"
    assert settings.display_timezone == "Europe/Paris"
    assert settings.smtp_host is None and settings.smtp_password is None
    assert settings.webhook_url is None and settings.webhook_secret is None
    assert settings.notify_urgent_kinds == ["burst"]  # empty: the server's default


@pytest.mark.parametrize("name", sorted(LOOPBACK_ONLY))
def test_ports_are_bound_to_loopback(name: str) -> None:
    ports = _services()[name].get("ports", [])
    assert ports, f"{name} publishes no port"
    assert set(_host_ips(ports)) == {"127.0.0.1"}


def test_influxdb_requires_authentication() -> None:
    environment = _services()["influxdb"]["environment"]
    assert environment["INFLUXDB_HTTP_AUTH_ENABLED"] == "true"


def test_server_environment_targets_influxdb() -> None:
    environment = _services()["server"]["environment"]
    assert environment["LEAKSENSE_SERVER_MODE"] == "production"
    assert environment["LEAKSENSE_SERVER_READING_STORE"] == "influxdb"
    assert environment["LEAKSENSE_SERVER_INFLUX_URL"] == "http://influxdb:8086"
    # The server logs in as the user and to the database the influxdb service creates.
    influxdb = _services()["influxdb"]["environment"]
    assert environment["LEAKSENSE_SERVER_INFLUX_DATABASE"] == influxdb["INFLUXDB_DB"]
    assert environment["LEAKSENSE_SERVER_INFLUX_USERNAME"] == influxdb["INFLUXDB_USER"]
    assert environment["LEAKSENSE_SERVER_INFLUX_PASSWORD"] == influxdb["INFLUXDB_USER_PASSWORD"]


@pytest.mark.parametrize("name", ["server", "gateway", "simulator"])
def test_python_services_install_workspace_members(name: str) -> None:
    service = _services()[name]
    assert service["working_dir"] == "/app"
    assert "./:/app:ro" in service["volumes"]
    script = service["command"][-1]
    [installed] = re.findall(r"pip install ((?:\./\w+ ?)+)", script)
    members = installed.split()
    assert members[0] == "./core"
    for member in members:
        assert (ROOT / member / "pyproject.toml").is_file(), member
    assert "exec leaksense " in script


def test_mosquitto_gets_the_repository_config_and_its_password_file() -> None:
    service = _services()["mosquitto"]
    mount = "./firmware-config/mosquitto/compose.conf:/mosquitto/config/mosquitto.conf:ro"
    assert mount in service["volumes"]
    settings = dict(
        line.split(maxsplit=1)
        for line in MOSQUITTO_CONF.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    )
    assert settings["allow_anonymous"] == "false"
    assert settings["persistence"] == "true"
    # The file the compose command writes is the one the broker reads.
    assert f"mosquitto_passwd -c -b {settings['password_file']}" in service["command"][-1]


def test_gateway_and_simulator_use_the_compose_broker() -> None:
    gateway = tomllib.loads(GATEWAY_CONF.read_text())
    assert gateway["mqtt"]["host"] == "mosquitto"
    assert "@mosquitto:1883" in _services()["simulator"]["command"][-1]
    assert "1883" in {str(p).split(":")[-1] for p in _services()["mosquitto"]["ports"]}
    assert "leaksense replay " in _services()["simulator"]["command"][-1]


# --- Grafana --------------------------------------------------------------------------


def _yaml(path: Path) -> dict[str, Any]:
    loaded = yaml.safe_load(path.read_text())
    assert isinstance(loaded, dict), path
    return loaded


def _datasources() -> list[dict[str, Any]]:
    files = sorted(DATASOURCES.glob("*.yaml"))
    assert files
    return [ds for path in files for ds in _yaml(path)["datasources"]]


def _dashboards() -> list[dict[str, Any]]:
    files = sorted(DASHBOARDS.glob("*.json"))
    assert files
    return [json.loads(path.read_text()) for path in files]


def _mount_target(service: str, source: str) -> str:
    for entry in _services()[service]["volumes"]:
        if entry.startswith(f"{source}:"):
            return str(entry.split(":")[1])
    raise AssertionError(f"{service} does not mount {source}")


def test_grafana_mounts_its_provisioning() -> None:
    assert _mount_target("grafana", "./grafana/provisioning") == "/etc/grafana/provisioning"
    [provider] = _yaml(DASHBOARD_PROVIDERS / "leaksense.yaml")["providers"]
    assert provider["options"]["path"] == _mount_target("grafana", "./grafana/dashboards")
    assert _yaml(DASHBOARD_PROVIDERS / "leaksense.yaml")["apiVersion"] == 1


def test_grafana_datasource_reads_the_servers_database_as_the_read_only_user() -> None:
    [datasource] = _datasources()
    environment = _services()["grafana"]["environment"]
    influxdb = _services()["influxdb"]["environment"]
    assert datasource["type"] == "influxdb"
    assert datasource["url"] == _services()["server"]["environment"]["LEAKSENSE_SERVER_INFLUX_URL"]
    # Every ${VAR} of the provisioning file is set in Grafana's environment.
    text = "".join(path.read_text() for path in DATASOURCES.glob("*.yaml"))
    for name in re.findall(r"\$\{(\w+)\}", text):
        assert name in environment, f"{name} is not set in the grafana service"
    refs = {key: environment[key] for key in re.findall(r"\$\{(\w+)\}", text)}
    assert refs["LEAKSENSE_GRAFANA_INFLUX_USERNAME"] == influxdb["INFLUXDB_READ_USER"]
    assert refs["LEAKSENSE_GRAFANA_INFLUX_PASSWORD"] == influxdb["INFLUXDB_READ_USER_PASSWORD"]
    assert refs["LEAKSENSE_GRAFANA_INFLUX_DATABASE"] == influxdb["INFLUXDB_DB"]
    assert "password" not in datasource  # only in secureJsonData, encrypted by Grafana


def test_dashboards_use_the_provisioned_datasource_and_bounded_queries() -> None:
    """Panels query what the server writes, always within the dashboard's time range."""
    uids = {ds["uid"] for ds in _datasources()}
    measurements = {MEASUREMENT, HOURLY}
    for dashboard in _dashboards():
        assert dashboard["uid"]
        assert " / " in dashboard["title"], "titles in French / English"
        for panel in dashboard["panels"]:
            assert panel["datasource"]["uid"] in uids
            assert " / " in panel["title"], panel["title"]
            for target in panel["targets"]:
                query = target["query"]
                assert "$timeFilter" in query, f"unbounded query: {query}"
                [measurement] = re.findall(r'FROM "(\w+)"', query)
                assert measurement in measurements, query
        for variable in dashboard["templating"]["list"]:
            assert variable["datasource"]["uid"] in uids


def test_grafana_is_not_open_to_anonymous_users() -> None:
    environment = _services()["grafana"]["environment"]
    assert environment["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    assert environment["GF_USERS_ALLOW_SIGN_UP"] == "false"
