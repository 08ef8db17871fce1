"""Network description (sites, DMAs, sensors), gateways and bearer tokens."""

from __future__ import annotations

import tomllib
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from leaksense.core.errors import AuthenticationError, ConfigError, NotFoundError
from leaksense.core.messages import Identifier
from leaksense.server.db import ApiToken, Dma, Gateway, Sensor, Site
from leaksense.server.security import hash_token, new_token

TokenKind = Literal["gateway", "reader"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SiteSpec(_Strict):
    site_id: Identifier
    name: str


class DmaSpec(_Strict):
    dma_id: Identifier
    site_id: Identifier
    name: str


class SensorSpec(_Strict):
    sensor_id: Identifier
    site_id: Identifier
    dma_id: Identifier | None = None
    role: Literal["inlet", "outlet", "customer"]


class NetworkDescription(_Strict):
    """The TOML network file: ``[[sites]]``, ``[[dmas]]``, ``[[sensors]]``."""

    sites: list[SiteSpec] = []
    dmas: list[DmaSpec] = []
    sensors: list[SensorSpec] = []


def read_network_file(path: Path) -> NetworkDescription:
    """Parse and validate a network TOML file, naming the faulty entry on error."""
    try:
        return NetworkDescription.model_validate(tomllib.loads(path.read_text("utf-8")))
    except OSError as exc:
        raise ConfigError(f"cannot read network file {path}: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from exc
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise ConfigError(f"{path}: {problems}") from exc


def load_network(session: Session, network: NetworkDescription) -> int:
    """Create or update every entity of the description (idempotent); return the count."""
    for site in network.sites:
        session.merge(Site(site_id=site.site_id, name=site.name))
    for dma in network.dmas:
        session.merge(Dma(dma_id=dma.dma_id, site_id=dma.site_id, name=dma.name))
    session.flush()
    for spec in network.sensors:
        sensor = session.get(Sensor, spec.sensor_id) or Sensor(sensor_id=spec.sensor_id)
        sensor.site_id, sensor.dma_id, sensor.role = spec.site_id, spec.dma_id, spec.role
        session.add(sensor)
    session.commit()
    return len(network.sites) + len(network.dmas) + len(network.sensors)


def add_gateway(session: Session, gateway_id: str, site_id: str | None) -> str:
    """Register a gateway (or reuse it) and issue a new bearer token for it."""
    if site_id is not None and session.get(Site, site_id) is None:
        raise NotFoundError(f"site {site_id!r} does not exist: load the network file first")
    now = datetime.now(UTC)
    if session.get(Gateway, gateway_id) is None:
        session.add(Gateway(gateway_id=gateway_id, site_id=site_id, created_at=now))
        session.flush()
    token = new_token()
    session.add(
        ApiToken(
            token_sha256=hash_token(token),
            kind="gateway",
            name=gateway_id,
            gateway_id=gateway_id,
            created_at=now,
        )
    )
    session.commit()
    return token


def add_reader_token(session: Session, name: str) -> str:
    """Issue a read-only API token (reports, integrations)."""
    token = new_token()
    session.add(
        ApiToken(
            token_sha256=hash_token(token), kind="reader", name=name, created_at=datetime.now(UTC)
        )
    )
    session.commit()
    return token


def authenticate(session: Session, token: str, kinds: tuple[TokenKind, ...]) -> ApiToken:
    """The live token record for ``token`` if it is one of ``kinds``."""
    record = session.get(ApiToken, hash_token(token))
    if record is None or record.revoked_at is not None or record.kind not in kinds:
        raise AuthenticationError("unknown or revoked token")
    return record


def dma_meters(session: Session, dma_id: str) -> tuple[list[str], list[str]]:
    """``(inlet sensor ids, outlet sensor ids)`` of a DMA."""
    if session.get(Dma, dma_id) is None:
        raise NotFoundError(f"DMA {dma_id!r} does not exist")
    sensors = session.scalars(select(Sensor).where(Sensor.dma_id == dma_id)).all()
    inlets = sorted(s.sensor_id for s in sensors if s.role == "inlet")
    outlets = sorted(s.sensor_id for s in sensors if s.role == "outlet")
    return inlets, outlets
