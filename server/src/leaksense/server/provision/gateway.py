"""``provision gateway``: the gateway's uplink token (server side) and broker user.

The token is issued by the entities service (stored hashed on the server) and written
to the gateway's environment file (``LEAKSENSE_GATEWAY_TOKEN``, read by systemd's
``EnvironmentFile=`` and by the gateway). A rerun checks that the token already in
the file is a live token of this gateway and changes nothing; ``--rotate`` issues a
new one and revokes the old.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from leaksense.core.errors import AuthenticationError
from leaksense.server.db import ApiToken
from leaksense.server.provision.files import (
    SECRET_MODE,
    Step,
    new_secret,
    read_env_file,
    read_text,
    update_env_text,
    write_file,
)
from leaksense.server.provision.mosquitto import (
    format_password_file,
    hash_password,
    read_password_file,
    verify_password,
    write_broker_file,
)
from leaksense.server.security import hash_token
from leaksense.server.services import entities

TOKEN_KEY = "LEAKSENSE_GATEWAY_TOKEN"  # noqa: S105 - a variable name
MQTT_USERNAME_KEY = "LEAKSENSE_GATEWAY_MQTT_USERNAME"
MQTT_PASSWORD_KEY = "LEAKSENSE_GATEWAY_MQTT_PASSWORD"  # noqa: S105 - a variable name
GATEWAY_BROKER_USER = "leaksense-gateway"
"""The broker user of the gateway; firmware-config/mosquitto/leaksense.acl grants it."""
ENV_HEADER = "Secrets of the Leaksense gateway (mode 0600), written by `leaksense provision`."


def provision_gateway_token(
    sessions: sessionmaker[Any],
    gateway_id: str,
    site: str | None,
    env_file: Path,
    *,
    rotate: bool = False,
) -> list[Step]:
    """Make sure ``env_file`` holds a live uplink token of ``gateway_id``."""
    current = read_env_file(env_file).get(TOKEN_KEY)
    with sessions() as session:
        record = _live_record(session, current) if current else None
        if record is not None and record.gateway_id != gateway_id:
            raise AuthenticationError(
                f"{env_file} holds the token of gateway {record.gateway_id}, not {gateway_id}"
            )
        if record is not None and not rotate:
            return [Step("unchanged", f"uplink token of {gateway_id}", str(env_file))]
        if current and record is None and not rotate:
            raise AuthenticationError(
                f"the token in {env_file} is unknown to the server or revoked:"
                " pass --rotate to issue a new one"
            )
        token = entities.add_gateway(session, gateway_id, site)
        if record is not None:
            record.revoked_at = datetime.now(UTC)
            session.commit()
    step = _write_env(env_file, {TOKEN_KEY: token}, f"uplink token of {gateway_id}")
    revoked = [Step("updated", "previous token revoked", "server database")] if record else []
    return [Step("created", f"gateway {gateway_id} token", "server database"), *revoked, step]


def _live_record(session: Session, token: str) -> ApiToken | None:
    record = session.get(ApiToken, hash_token(token))
    if record is None or record.revoked_at is not None or record.kind != "gateway":
        return None
    return record


def provision_gateway_mqtt(
    env_file: Path, passwd_file: Path, *, rotate: bool = False, broker_group: int | None = None
) -> list[Step]:
    """The gateway's broker user in ``passwd_file``, its password in ``env_file``."""
    env = read_env_file(env_file)
    password = env.get(MQTT_PASSWORD_KEY)
    if rotate or not password:
        password = new_secret()
    entries = read_password_file(passwd_file)
    current = entries.get(GATEWAY_BROKER_USER)
    what = f"broker user {GATEWAY_BROKER_USER}"
    if current is not None and verify_password(password, current):
        passwd_step = Step("unchanged", what, str(passwd_file))
    else:
        entries[GATEWAY_BROKER_USER] = hash_password(password)
        passwd_step = write_broker_file(
            passwd_file, format_password_file(entries), what, broker_group
        )
    updates = {MQTT_USERNAME_KEY: GATEWAY_BROKER_USER, MQTT_PASSWORD_KEY: password}
    return [passwd_step, _write_env(env_file, updates, "gateway broker credentials")]


def _write_env(env_file: Path, updates: dict[str, str], what: str) -> Step:
    text = update_env_text(read_text(env_file), updates, ENV_HEADER)
    return write_file(env_file, text, mode=SECRET_MODE, what=what)
