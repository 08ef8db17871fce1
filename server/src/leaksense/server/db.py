"""Relational store of entities (SQLAlchemy 2.0): SQLite by default, PostgreSQL by URL.

Sites, DMAs (with their network description and boundary meters), sensors, gateways
(and their last health report), API tokens (hashed), billed volumes (per DMA or per
customer), declared volumes, repairs, received alerts, the log of ingested batches
and signed model artifacts live here, so several server instances can share one
database. The schema is created by ``create_all`` (no migrations yet): a database made
by an older version must be recreated to get new columns.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    DateTime,
    Engine,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    create_engine,
    event,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from leaksense.core.errors import StoreUnavailable


class UtcDateTime(TypeDecorator[datetime]):
    """Stores UTC, always returns timezone-aware UTC (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime refused: use UTC-aware datetimes")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    """Declarative base of every entity table."""


class Site(Base):
    __tablename__ = "sites"
    site_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))


class Dma(Base):
    """A district metered area: its inflow is inlet meters minus outlet meters.

    The network description used by the reports (water-loss-indicators.md): mains
    length (ILP, UARL), service connections and private pipes (UARL), average zone
    pressure (UARL, FAVAD), category (ILP grid; ``None``: by ILC), households (night
    use), and the constants of the minimum night flow analysis.
    """

    __tablename__ = "dmas"
    dma_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    site_id: Mapped[str] = mapped_column(ForeignKey("sites.site_id"))
    name: Mapped[str] = mapped_column(String(200))
    mains_km: Mapped[float | None] = mapped_column(Float, nullable=True)
    service_connections: Mapped[int | None] = mapped_column(Integer, nullable=True)
    private_pipes_km: Mapped[float] = mapped_column(Float, default=0.0)
    avg_pressure_m: Mapped[float | None] = mapped_column(Float, nullable=True)
    category: Mapped[str | None] = mapped_column(String(16), nullable=True)
    """``rural`` / ``intermediate`` / ``urban``; None: chosen by ILC."""
    households: Mapped[int | None] = mapped_column(Integer, nullable=True)
    non_household_night_use_m3h: Mapped[float] = mapped_column(Float, default=0.0)
    exceptional_night_use_m3h: Mapped[float] = mapped_column(Float, default=0.0)
    pressure_profile_json: Mapped[str | None] = mapped_column(Text, nullable=True)
    """24 hourly average zone pressures (m, UTC hours) as JSON, for the night-day factor."""
    n1: Mapped[float] = mapped_column(Float, default=1.0)
    under_registration_pct: Mapped[float] = mapped_column(Float, default=0.0)
    """Customer-meter under-registration, % of the billed volume (apparent losses)."""
    zre: Mapped[bool] = mapped_column(default=False)
    """Draws > 2 Mm³/year from a water-sharing zone: the stricter Grenelle threshold."""


class Sensor(Base):
    """A reporting meter. Where it sits in the network is in :class:`DmaMeter`.

    ``role`` is what kind of sensor it is (``inlet``/``outlet`` as declared in the
    network file, ``customer``, or ``unknown`` when ingest registered it); ``dma_id``
    is the DMA a customer meter is in. Neither decides a DMA's balance any more.
    """

    __tablename__ = "sensors"
    sensor_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    site_id: Mapped[str | None] = mapped_column(ForeignKey("sites.site_id"), nullable=True)
    dma_id: Mapped[str | None] = mapped_column(ForeignKey("dmas.dma_id"), nullable=True)
    role: Mapped[str] = mapped_column(String(16), default="unknown")
    """``inlet`` / ``outlet`` of its DMA, ``customer`` meter, or ``unknown`` (auto-registered)."""
    last_seen_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)


class DmaMeter(Base):
    """A meter on a DMA's boundary: one meter can be a DMA's outlet and the next one's inlet."""

    __tablename__ = "dma_meters"
    dma_id: Mapped[str] = mapped_column(ForeignKey("dmas.dma_id"), primary_key=True)
    sensor_id: Mapped[str] = mapped_column(ForeignKey("sensors.sensor_id"), primary_key=True)
    role: Mapped[str] = mapped_column(String(8))
    """``inlet`` or ``outlet``."""


class DeclaredVolume(Base):
    """A volume entered for a period rather than metered by Leaksense (m³ over ``[start, end)``).

    ``kind``: ``produced`` (Vp), ``imported`` (Vimp), ``exported`` (Vexp) for water that
    passes no Leaksense meter; ``unmetered_authorised`` (Vsc), ``network_service`` (Vs),
    ``billed_unmetered``, ``unauthorised`` (IWA). Reports prorate them by overlap.
    """

    __tablename__ = "declared_volumes"
    __table_args__ = (UniqueConstraint("dma_id", "kind", "period_start", "period_end"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dma_id: Mapped[str] = mapped_column(ForeignKey("dmas.dma_id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    period_start: Mapped[datetime] = mapped_column(UtcDateTime)
    period_end: Mapped[datetime] = mapped_column(UtcDateTime)
    volume_m3: Mapped[float] = mapped_column(Float)


class Gateway(Base):
    __tablename__ = "gateways"
    gateway_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    site_id: Mapped[str | None] = mapped_column(ForeignKey("sites.site_id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_seen_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    last_batch_seq: Mapped[int | None] = mapped_column(Integer, nullable=True)


class IngestedBatch(Base):
    """A batch already stored, so that a replay of it is answered without a new write.

    Keyed by ``(gateway_id, batch_seq)``; ``content_sha256`` (the body without its
    ``sent_at``) tells a retry of that batch from a different batch that reuses the
    number, as a gateway does after its outbox was wiped: that one is stored anew and
    replaces the record. Rows older than the retention are deleted by ingest.
    """

    __tablename__ = "ingested_batches"
    __table_args__ = (Index("ix_ingested_batches_gateway_stored", "gateway_id", "stored_at"),)
    gateway_id: Mapped[str] = mapped_column(ForeignKey("gateways.gateway_id"), primary_key=True)
    batch_seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    content_sha256: Mapped[str] = mapped_column(String(64))
    readings_stored: Mapped[int] = mapped_column(Integer)
    alerts_stored: Mapped[int] = mapped_column(Integer)
    stored_at: Mapped[datetime] = mapped_column(UtcDateTime)


class GatewayHealthRecord(Base):
    """The latest health report of each gateway, as the JSON it sent (``GatewayHealth``)."""

    __tablename__ = "gateway_health"
    gateway_id: Mapped[str] = mapped_column(ForeignKey("gateways.gateway_id"), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)
    report_json: Mapped[str] = mapped_column(Text)


class ApiToken(Base):
    """A bearer token, stored as its SHA-256 only; ``kind``: ``gateway``, ``reader``,
    ``admin``, ``integration`` (what each may do: ``services.entities.TokenKind``)."""

    __tablename__ = "api_tokens"
    token_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(64))
    gateway_id: Mapped[str | None] = mapped_column(ForeignKey("gateways.gateway_id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)


class BilledVolume(Base):
    """Volume billed to a DMA's customers over a billing period ``[start, end)``."""

    __tablename__ = "billed_volumes"
    __table_args__ = (UniqueConstraint("dma_id", "period_start", "period_end"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dma_id: Mapped[str] = mapped_column(ForeignKey("dmas.dma_id"))
    period_start: Mapped[datetime] = mapped_column(UtcDateTime)
    period_end: Mapped[datetime] = mapped_column(UtcDateTime)
    volume_m3: Mapped[float] = mapped_column(Float)


class CustomerBill(Base):
    """Volume billed to one customer over ``[period_start, period_end)``, as imported."""

    __tablename__ = "customer_bills"
    __table_args__ = (
        UniqueConstraint("customer_id", "period_start", "period_end"),
        Index("ix_customer_bills_dma_period", "dma_id", "period_end"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    customer_id: Mapped[str] = mapped_column(String(64))
    dma_id: Mapped[str] = mapped_column(ForeignKey("dmas.dma_id"))
    period_start: Mapped[datetime] = mapped_column(UtcDateTime)
    period_end: Mapped[datetime] = mapped_column(UtcDateTime)
    volume_m3: Mapped[float] = mapped_column(Float)


class RepairRecord(Base):
    """A leak found and repaired, entered by hand (resolved alerts are read from ``alerts``)."""

    __tablename__ = "repairs"
    repair_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    dma_id: Mapped[str] = mapped_column(ForeignKey("dmas.dma_id"), index=True)
    found_at: Mapped[datetime] = mapped_column(UtcDateTime)
    repaired_at: Mapped[datetime] = mapped_column(UtcDateTime)
    estimated_flow_m3h: Mapped[float] = mapped_column(Float)
    description: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class AlertRecord(Base):
    """An alert received from a gateway (the workflow around it comes later)."""

    __tablename__ = "alerts"
    alert_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    gateway_id: Mapped[str] = mapped_column(ForeignKey("gateways.gateway_id"))
    sensor_id: Mapped[str | None] = mapped_column(String(64), index=True, nullable=True)
    dma_id: Mapped[str | None] = mapped_column(String(64), index=True, nullable=True)
    kind: Mapped[str] = mapped_column(String(32))
    fault: Mapped[str | None] = mapped_column(String(32), nullable=True)
    state: Mapped[str] = mapped_column(String(16), default="open")
    started_at: Mapped[datetime] = mapped_column(UtcDateTime)
    detected_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)
    flow_m3h: Mapped[float] = mapped_column(Float)
    lost_volume_m3: Mapped[float] = mapped_column(Float, default=0.0)
    confidence: Mapped[float] = mapped_column(Float, default=0.5)
    explanation_en: Mapped[str] = mapped_column(String(500))
    explanation_fr: Mapped[str] = mapped_column(String(500))


class ModelArtifactRecord(Base):
    """A signed detection model artifact for one sensor or DMA, as the exact JSON served.

    Rows are appended, never updated: the latest ``stored_at`` per ``(kind,
    series_id)`` is the one gateways get, older rows are kept a while for rollback.
    The server never parses or signs the JSON: it stores what the trainer signed.
    """

    __tablename__ = "model_artifacts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    series_id: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    """``sensor`` or ``dma``."""
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    """When the trainer fitted it (from the artifact)."""
    stored_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    """When this server stored it: the cursor of ``GET /api/v1/models?since=``."""
    key_id: Mapped[str] = mapped_column(String(64))
    sha256: Mapped[str] = mapped_column(String(64))
    json: Mapped[str] = mapped_column(Text)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


RELAXED_COMMIT = "leaksense_relaxed_commit"
"""Set in a pooled SQLite connection's ``info`` by a transaction that commits with
``synchronous=NORMAL`` (``services/ingest.py``); check-in sets FULL back."""


def _restore_synchronous(dbapi_conn: Any, record: Any) -> None:
    if record.info.pop(RELAXED_COMMIT, False) and dbapi_conn is not None:
        dbapi_conn.execute("PRAGMA synchronous=FULL")


def make_engine(url: str) -> Engine:
    """Engine for ``url`` with its tables created (SQLite gets WAL and foreign keys)."""
    try:
        engine = create_engine(url, pool_pre_ping=True)
        if engine.dialect.name == "sqlite":
            event.listen(engine, "connect", _sqlite_pragmas)
            event.listen(engine, "checkin", _restore_synchronous)
        Base.metadata.create_all(engine)
    except SQLAlchemyError as exc:
        raise StoreUnavailable(f"cannot open the entity database {url!r}: {exc}") from exc
    return engine


def upsert_statement(session: Session, table: type[Base]) -> sqlite.Insert | postgresql.Insert:
    """``INSERT ... ON CONFLICT`` for the session's database (SQLite or PostgreSQL).

    Returns the dialect's insert (``.excluded``, ``.on_conflict_do_update``); a bulk
    upsert is then one statement per batch instead of a read and a write per row, and
    two server instances upserting the same key do not collide.
    """
    dialect = session.get_bind().dialect.name
    if dialect == "sqlite":
        return sqlite.insert(table)
    if dialect == "postgresql":
        return postgresql.insert(table)
    raise StoreUnavailable(f"entity database dialect {dialect!r} is not supported")


def make_sessionmaker(engine: Engine) -> sessionmaker[Any]:
    """Session factory; sessions do not expire objects on commit (they are returned)."""
    return sessionmaker(engine, expire_on_commit=False)
