"""Network description (sites, DMAs, sensors, boundary meters, declared volumes),
gateways and bearer tokens.

A DMA's balance is decided by its boundary meters (``dma_meters``): one physical meter
between two DMAs is the upstream DMA's outlet and the downstream DMA's inlet. The
network file declares them on the DMA (``inlets = [...]``, ``outlets = [...]``) or, as
before, on the sensor (``dma_id`` + ``role``); both work and may be mixed.
"""

from __future__ import annotations

import json
import tomllib
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from leaksense.core.errors import AuthenticationError, ConfigError, InvalidInput, NotFoundError
from leaksense.core.messages import Identifier, UtcDatetime
from leaksense.server.db import ApiToken, DeclaredVolume, Dma, DmaMeter, Gateway, Sensor, Site
from leaksense.server.security import hash_token, new_token

TokenKind = Literal["gateway", "reader", "admin", "integration"]
"""``gateway``: ingest for its own gateway; ``reader``: read reports, readings, alerts;
``admin``: also enter repairs and act on alerts; ``integration``: read alerts and act on
them (acknowledge, assign, resolve, notes), nothing else (a ticketing or SMS system)."""
IssuedKind = Literal["reader", "admin", "integration"]
MAX_TOKEN_NAME_CHARS = 64
Category = Literal["rural", "intermediate", "urban"]
VolumeKind = Literal[
    "produced",
    "imported",
    "exported",
    "unmetered_authorised",
    "network_service",
    "billed_unmetered",
    "unauthorised",
]
NonNegative = Annotated[float, Field(ge=0, allow_inf_nan=False)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SiteSpec(_Strict):
    site_id: Identifier
    name: str


class DmaSpec(_Strict):
    """A DMA and what the reports need to know about it (all optional but the name)."""

    dma_id: Identifier
    site_id: Identifier
    name: str
    mains_km: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = None
    service_connections: Annotated[int, Field(ge=0)] | None = None
    private_pipes_km: NonNegative = 0.0
    avg_pressure_m: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = None
    category: Category | None = None
    households: Annotated[int, Field(ge=0)] | None = None
    non_household_night_use_m3h: NonNegative = 0.0
    exceptional_night_use_m3h: NonNegative = 0.0
    pressure_profile_m: (
        Annotated[list[Annotated[float, Field(gt=0)]], Field(min_length=24, max_length=24)] | None
    ) = None
    """Average zone pressure at each UTC hour 0–23, m (night-day factor)."""
    n1: Annotated[float, Field(gt=0, le=3)] = 1.0
    under_registration_pct: Annotated[float, Field(ge=0, lt=100)] = 0.0
    zre: bool = False
    inlets: list[Identifier] = []
    outlets: list[Identifier] = []

    @model_validator(mode="after")
    def _check_meters(self) -> DmaSpec:
        both = sorted(set(self.inlets) & set(self.outlets))
        if both:
            raise ValueError(f"meter(s) {', '.join(both)} cannot be inlet and outlet of one DMA")
        return self


class SensorSpec(_Strict):
    sensor_id: Identifier
    site_id: Identifier
    dma_id: Identifier | None = None
    role: Literal["inlet", "outlet", "customer"]


class VolumeSpec(_Strict):
    """A volume over ``[period_start, period_end)`` not metered by Leaksense."""

    dma_id: Identifier
    kind: VolumeKind
    period_start: UtcDatetime
    period_end: UtcDatetime
    volume_m3: NonNegative

    @model_validator(mode="after")
    def _check_period(self) -> VolumeSpec:
        if self.period_end <= self.period_start:
            raise ValueError("period_end must be after period_start")
        return self


class NetworkDescription(_Strict):
    """The TOML network file: ``[[sites]]``, ``[[dmas]]``, ``[[sensors]]``, ``[[volumes]]``."""

    sites: list[SiteSpec] = []
    dmas: list[DmaSpec] = []
    sensors: list[SensorSpec] = []
    volumes: list[VolumeSpec] = []


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
    """Create or update every entity of the description (idempotent); return the count.

    The boundary meters of every DMA in the file are replaced by those it declares;
    declared volumes replace those of the same DMA, kind and period.
    """
    for site in network.sites:
        session.merge(Site(site_id=site.site_id, name=site.name))
    for dma in network.dmas:
        session.merge(_dma_record(dma))
    session.flush()
    for spec in network.sensors:
        sensor = session.get(Sensor, spec.sensor_id) or Sensor(sensor_id=spec.sensor_id)
        sensor.site_id, sensor.dma_id, sensor.role = spec.site_id, spec.dma_id, spec.role
        session.add(sensor)
    session.flush()
    _replace_boundary_meters(session, network)
    for volume in network.volumes:
        _declare_volume(session, volume)
    session.commit()
    return len(network.sites) + len(network.dmas) + len(network.sensors) + len(network.volumes)


def _dma_record(dma: DmaSpec) -> Dma:
    profile = None if dma.pressure_profile_m is None else json.dumps(dma.pressure_profile_m)
    return Dma(
        dma_id=dma.dma_id,
        site_id=dma.site_id,
        name=dma.name,
        mains_km=dma.mains_km,
        service_connections=dma.service_connections,
        private_pipes_km=dma.private_pipes_km,
        avg_pressure_m=dma.avg_pressure_m,
        category=dma.category,
        households=dma.households,
        non_household_night_use_m3h=dma.non_household_night_use_m3h,
        exceptional_night_use_m3h=dma.exceptional_night_use_m3h,
        pressure_profile_json=profile,
        n1=dma.n1,
        under_registration_pct=dma.under_registration_pct,
        zre=dma.zre,
    )


def _replace_boundary_meters(session: Session, network: NetworkDescription) -> None:
    """``dma_meters`` from the DMAs' lists and the sensors' ``dma_id``/``role``."""
    meters: dict[tuple[str, str], str] = {}
    for dma in network.dmas:
        meters |= {(dma.dma_id, s): "inlet" for s in dma.inlets}
        meters |= {(dma.dma_id, s): "outlet" for s in dma.outlets}
    for spec in network.sensors:
        if spec.dma_id is not None and spec.role in ("inlet", "outlet"):
            known = meters.setdefault((spec.dma_id, spec.sensor_id), spec.role)
            if known != spec.role:
                raise ConfigError(
                    f"sensor {spec.sensor_id!r} is declared both inlet and outlet of"
                    f" DMA {spec.dma_id!r}"
                )
    for dma_id in {d.dma_id for d in network.dmas} | {d for d, _ in meters}:
        session.execute(delete(DmaMeter).where(DmaMeter.dma_id == dma_id))
    site_of = {d.dma_id: d.site_id for d in network.dmas}
    for (dma_id, sensor_id), role in sorted(meters.items()):
        if session.get(Dma, dma_id) is None:
            raise ConfigError(f"meter {sensor_id!r} names unknown DMA {dma_id!r}")
        if session.get(Sensor, sensor_id) is None:
            session.add(Sensor(sensor_id=sensor_id, site_id=site_of.get(dma_id), role=role))
            session.flush()
        session.add(DmaMeter(dma_id=dma_id, sensor_id=sensor_id, role=role))


def _declare_volume(session: Session, spec: VolumeSpec) -> None:
    if session.get(Dma, spec.dma_id) is None:
        raise ConfigError(f"declared volume names unknown DMA {spec.dma_id!r}")
    record = session.scalars(
        select(DeclaredVolume).where(
            DeclaredVolume.dma_id == spec.dma_id,
            DeclaredVolume.kind == spec.kind,
            DeclaredVolume.period_start == spec.period_start,
            DeclaredVolume.period_end == spec.period_end,
        )
    ).first() or DeclaredVolume(
        dma_id=spec.dma_id,
        kind=spec.kind,
        period_start=spec.period_start,
        period_end=spec.period_end,
    )
    record.volume_m3 = spec.volume_m3
    session.add(record)


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
    return add_token(session, name, "reader")


def add_token(session: Session, name: str, kind: IssuedKind) -> str:
    """Issue a ``reader``, ``admin`` or ``integration`` token (see :data:`TokenKind`);
    ``name`` is who holds it, and the audit log names changes ``token:<name>``."""
    name = name.strip()
    if not 0 < len(name) <= MAX_TOKEN_NAME_CHARS:
        raise InvalidInput(f"a token name has 1 to {MAX_TOKEN_NAME_CHARS} characters")
    token = new_token()
    session.add(
        ApiToken(token_sha256=hash_token(token), kind=kind, name=name, created_at=datetime.now(UTC))
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
    get_dma(session, dma_id)
    meters = session.scalars(select(DmaMeter).where(DmaMeter.dma_id == dma_id)).all()
    inlets = sorted(m.sensor_id for m in meters if m.role == "inlet")
    outlets = sorted(m.sensor_id for m in meters if m.role == "outlet")
    return inlets, outlets


def get_dma(session: Session, dma_id: str) -> Dma:
    """The DMA record, or :class:`NotFoundError`."""
    dma = session.get(Dma, dma_id)
    if dma is None:
        raise NotFoundError(f"DMA {dma_id!r} does not exist")
    return dma


def all_dma_ids(session: Session) -> list[str]:
    """Every DMA id, sorted."""
    return sorted(session.scalars(select(Dma.dma_id)).all())
