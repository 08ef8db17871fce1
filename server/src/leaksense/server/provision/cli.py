"""``leaksense provision ...``: the commands; the work is in the sibling modules."""

from __future__ import annotations

import grp
import re
import socket
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from leaksense.core.errors import ConfigError

if TYPE_CHECKING:
    from leaksense.server.provision.files import Step

provision_app = typer.Typer(
    help="Credentials and TLS material for nodes, gateways and the broker (idempotent).",
    no_args_is_help=True,
)

DEFAULT_PASSWD = Path("/etc/mosquitto/leaksense.passwd")
DEFAULT_ACL = Path("/etc/mosquitto/leaksense.acl")
DEFAULT_TLS_DIR = Path("/etc/leaksense/tls")
DEFAULT_ENV_FILE = Path("/etc/leaksense/gateway.env")
DEFAULT_TEMPLATES = Path("firmware-config/esphome")

Rotate = Annotated[bool, typer.Option("--rotate", help="Replace the secret(s) even if valid.")]
PasswdFile = Annotated[Path, typer.Option(help="Mosquitto password file.")]
BrokerGroup = Annotated[
    str | None,
    typer.Option(help="Group the broker runs as (e.g. mosquitto): its files become 0640."),
]


def _report(steps: Iterable[Step], reload_hint: str | None = None) -> None:
    steps = list(steps)
    for step in steps:
        typer.echo(str(step))
    if all(step.outcome == "unchanged" for step in steps):
        typer.echo("nothing changed")
    elif reload_hint:
        typer.echo(reload_hint)


def _group_id(name: str | None) -> int | None:
    if name is None:
        return None
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError as exc:
        raise ConfigError(f"no group named {name!r} on this machine") from exc


@provision_app.command("node")
def node_command(  # noqa: PLR0917 - one parameter per CLI option
    node_id: str,
    site: Annotated[str, typer.Option(help="Site of the node (its Leaksense topic).")],
    broker_host: Annotated[str, typer.Option(help="Broker host name as in its TLS certificate.")],
    wifi_ssid: Annotated[str, typer.Option(envvar="LEAKSENSE_WIFI_SSID", help="Site Wi-Fi.")],
    wifi_password: Annotated[
        str, typer.Option(envvar="LEAKSENSE_WIFI_PASSWORD", help="Better from the environment.")
    ],
    template: Annotated[
        str, typer.Option(help="Node config: pulse-flow-meter, dma-meter-modbus, ...")
    ] = "pulse-flow-meter",
    templates_dir: Annotated[Path, typer.Option(help="Folder of node configs.")] = (
        DEFAULT_TEMPLATES
    ),
    out_dir: Annotated[Path, typer.Option(help="Nodes folder; this node gets OUT/NODE_ID/.")] = (
        Path("nodes")
    ),
    passwd_file: PasswdFile = DEFAULT_PASSWD,
    acl_file: Annotated[Path, typer.Option(help="Mosquitto ACL file.")] = DEFAULT_ACL,
    ca_file: Annotated[Path, typer.Option(help="CA certificate of the broker.")] = (
        DEFAULT_TLS_DIR / "ca.crt"
    ),
    broker_group: BrokerGroup = None,
    rotate: Rotate = False,
) -> None:
    """A node's broker user and ACL entry, and its ESPHome secrets.yaml (mode 0600)."""
    from leaksense.server.provision.node import NodeRequest, provision_node

    request = NodeRequest(
        node_id=node_id,
        site=site,
        template=templates_dir / f"{template}.yaml",
        out_dir=out_dir / node_id,
        passwd_file=passwd_file,
        acl_file=acl_file,
        broker_host=broker_host,
        ca_file=ca_file,
        wifi_ssid=wifi_ssid,
        wifi_password=wifi_password,
        rotate=rotate,
        broker_group=_group_id(broker_group),
    )
    _report(provision_node(request), "reload the broker: systemctl reload mosquitto")


@provision_app.command("gateway")
def gateway_command(
    gateway_id: str,
    site: Annotated[str | None, typer.Option(help="Site the gateway serves.")] = None,
    env_file: Annotated[Path, typer.Option(help="The gateway's environment file.")] = (
        DEFAULT_ENV_FILE
    ),
    rotate: Rotate = False,
) -> None:
    """The gateway's uplink token, issued in the server database (LEAKSENSE_SERVER_*)."""
    from leaksense.core.messages import ID_PATTERN
    from leaksense.server.db import make_engine, make_sessionmaker
    from leaksense.server.provision.gateway import provision_gateway_token
    from leaksense.server.settings import load_settings

    if not re.fullmatch(ID_PATTERN, gateway_id):
        raise ConfigError(f"gateway id {gateway_id!r} does not match {ID_PATTERN}")
    engine = make_engine(load_settings().entity_database_url)
    try:
        steps = provision_gateway_token(
            make_sessionmaker(engine), gateway_id, site, env_file, rotate=rotate
        )
    finally:
        engine.dispose()
    _report(steps, f"copy {env_file} to the gateway (mode 0600) and restart leaksense-gateway")


@provision_app.command("gateway-mqtt")
def gateway_mqtt_command(
    env_file: Annotated[Path, typer.Option(help="The gateway's environment file.")] = (
        DEFAULT_ENV_FILE
    ),
    passwd_file: PasswdFile = DEFAULT_PASSWD,
    broker_group: BrokerGroup = None,
    rotate: Rotate = False,
) -> None:
    """The gateway's broker user (leaksense-gateway), its password in the env file."""
    from leaksense.server.provision.gateway import provision_gateway_mqtt

    steps = provision_gateway_mqtt(
        env_file, passwd_file, rotate=rotate, broker_group=_group_id(broker_group)
    )
    _report(steps, "reload the broker and restart leaksense-gateway")


@provision_app.command("tls")
def tls_command(  # noqa: PLR0917 - one parameter per CLI option
    host: Annotated[
        list[str] | None,
        typer.Option(help="Name or address the broker is reached at (repeat). Default: this host."),
    ] = None,
    out_dir: Annotated[Path, typer.Option(help="Where ca.crt, broker.crt/.key go.")] = (
        DEFAULT_TLS_DIR
    ),
    ca_cert: Annotated[Path | None, typer.Option(help="Sign with this CA certificate...")] = None,
    ca_key: Annotated[Path | None, typer.Option(help="...and its key (PEM, EC).")] = None,
    key_group: Annotated[
        str | None, typer.Option(help="Group that may read broker.key (e.g. mosquitto).")
    ] = None,
    rotate: Rotate = False,
) -> None:
    """A CA (unless given) and a broker certificate for HOST names; keys mode 0600."""
    from leaksense.server.provision.tls import TlsPaths, provision_tls

    if (ca_cert is None) != (ca_key is None):
        raise ConfigError("--ca-cert and --ca-key go together")
    hosts = host or [socket.gethostname(), f"{socket.gethostname()}.local", "localhost"]
    ca_files = (ca_cert, ca_key) if ca_cert is not None and ca_key is not None else None
    steps = provision_tls(
        TlsPaths(out_dir), hosts, ca_files=ca_files, rotate=rotate, key_group=_group_id(key_group)
    )
    _report(steps, "restart the broker to load the new certificate")
