"""``provision node``: a sensor node's broker user, ACL entry and ESPHome secrets.

The node id is at once the ESPHome name, the MQTT user and the topic prefix
(firmware-config/esphome/common/leaksense-node.yaml), so the shipped ACL line
``pattern readwrite %u/#`` confines the node to ``<node_id>/#``. The entry added
here also lets it publish Leaksense JSON on ``leaksense/<site>/<node_id>/flow``,
bound to its own site.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from leaksense.core.errors import ConfigError
from leaksense.core.topics import flow_topic
from leaksense.server.provision.files import (
    SECRET_MODE,
    Step,
    format_secrets_file,
    new_secret,
    read_secrets_file,
    read_text,
    write_file,
)
from leaksense.server.provision.mosquitto import (
    acl_block,
    format_password_file,
    hash_password,
    read_password_file,
    set_acl_block,
    verify_password,
    write_broker_file,
)

NODE_ID = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,29}[a-z0-9])?")
"""ESPHome's rule for a device name (lower case, digits, hyphens, ≤ 31 characters)."""
RESERVED = frozenset({"leaksense", "leaksense-gateway", "gateway", "homeassistant", "esphome"})
GENERATED_SECRETS = ("mqtt_password", "ota_password", "fallback_ap_password")
SECRETS_HEADER = """\
ESPHome secrets of node {node_id} (site {site}), written by `leaksense provision node`.
Keep this file private (mode 0600) and out of version control; `--rotate` replaces
the generated passwords (the node must then be flashed again)."""
WRAPPER = """\
# Node {node_id} (site {site}), written by `leaksense provision node` (never rewritten).
# Flash it from this folder: `esphome run {node_id}.yaml`. Override the template's
# substitutions here (pins, K-factor, intervals); secrets come from secrets.yaml.
substitutions:
  node_id: {node_id}

packages:
  leaksense: !include {template}
"""


@dataclass(frozen=True, slots=True)
class NodeRequest:
    node_id: str
    site: str
    template: Path
    """Node config in firmware-config/esphome/ that the node's wrapper includes."""
    out_dir: Path
    """The node's folder: ``secrets.yaml`` and ``<node_id>.yaml`` are written there."""
    passwd_file: Path
    acl_file: Path
    broker_host: str
    ca_file: Path
    wifi_ssid: str
    wifi_password: str
    rotate: bool = False
    broker_group: int | None = None


def check_node_id(node_id: str) -> str:
    if not NODE_ID.fullmatch(node_id):
        raise ConfigError(
            f"node id {node_id!r}: use 1–31 lower-case letters, digits and inner hyphens"
            " (it is the ESPHome name, the MQTT user and the topic prefix)"
        )
    if node_id in RESERVED:
        raise ConfigError(f"node id {node_id!r} is reserved")
    return node_id


def provision_node(request: NodeRequest) -> list[Step]:
    """Create or check the node's credentials; returns what each step did."""
    node_id = check_node_id(request.node_id)
    flow_topic(request.site, node_id)  # checks the site id
    if not request.template.is_file():
        raise ConfigError(f"node template {request.template} not found")
    secrets_path = request.out_dir / "secrets.yaml"
    existing = read_secrets_file(secrets_path)
    entries = read_password_file(request.passwd_file)
    if node_id in entries and "mqtt_password" not in existing and not request.rotate:
        raise ConfigError(
            f"node {node_id} already has a broker password but no secrets file at"
            f" {secrets_path}: pass --rotate to issue new credentials (then reflash it)"
        )
    generated = {
        key: new_secret() if request.rotate or key not in existing else existing[key]
        for key in GENERATED_SECRETS
    }
    # Everything that can fail is read before the first write.
    acl_text = _acl_text(request)
    values = {
        "wifi_ssid": request.wifi_ssid,
        "wifi_password": request.wifi_password,
        "fallback_ap_password": generated["fallback_ap_password"],
        "ota_password": generated["ota_password"],
        "mqtt_broker": request.broker_host,
        "mqtt_password": generated["mqtt_password"],
        "mqtt_ca_certificate": _ca_pem(request.ca_file),
    }
    header = SECRETS_HEADER.format(node_id=node_id, site=request.site)
    return [
        _password_step(request, entries, generated["mqtt_password"]),
        write_broker_file(request.acl_file, acl_text, f"ACL of {node_id}", request.broker_group),
        write_file(
            secrets_path,
            format_secrets_file(header, values),
            mode=SECRET_MODE,
            what="ESPHome secrets",
        ),
        _wrapper_step(request),
    ]


def _ca_pem(path: Path) -> str:
    pem = read_text(path)
    if pem is None or "BEGIN CERTIFICATE" not in pem:
        raise ConfigError(f"CA certificate {path} not found: run `leaksense provision tls` first")
    return pem


def _password_step(request: NodeRequest, entries: dict[str, str], password: str) -> Step:
    current = entries.get(request.node_id)
    if current is not None and verify_password(password, current):
        return Step("unchanged", f"broker user {request.node_id}", str(request.passwd_file))
    entries[request.node_id] = hash_password(password)
    return write_broker_file(
        request.passwd_file,
        format_password_file(entries),
        f"broker user {request.node_id}",
        request.broker_group,
    )


def _acl_text(request: NodeRequest) -> str:
    """The ACL file with this node's block set (the shipped file must be installed)."""
    block = acl_block(
        request.node_id,
        f"node {request.node_id}, site {request.site}",
        [("write", flow_topic(request.site, request.node_id))],
    )
    current = read_text(request.acl_file)
    if current is None:
        raise ConfigError(
            f"ACL file {request.acl_file} not found: install"
            " firmware-config/mosquitto/leaksense.acl there first"
        )
    return set_acl_block(current, request.node_id, block)


def _wrapper_step(request: NodeRequest) -> Step:
    path = request.out_dir / f"{request.node_id}.yaml"
    if path.exists():
        return Step("unchanged", "node config (kept as edited)", str(path))
    template = Path(os.path.relpath(request.template.resolve(), request.out_dir.resolve()))
    text = WRAPPER.format(node_id=request.node_id, site=request.site, template=template)
    return write_file(path, text, mode=0o644, what="node config")
