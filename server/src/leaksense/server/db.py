"""Relational store of entities (SQLAlchemy 2.0): SQLite by default, PostgreSQL by URL.

Sites, DMAs, sensors, gateways, API tokens (hashed), billed volumes, received
alerts and signed model artifacts live here, so several server instances can share
one database.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    DateTime,
    Engine,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    create_engine,
    event,
)
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

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
    """A district metered area: its inflow is inlet meters minus outlet meters."""

    __tablename__ = "dmas"
    dma_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    site_id: Mapped[str] = mapped_column(ForeignKey("sites.site_id"))
    name: Mapped[str] = mapped_column(String(200))


class Sensor(Base):
    __tablename__ = "sensors"
    sensor_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    site_id: Mapped[str | None] = mapped_column(ForeignKey("sites.site_id"), nullable=True)
    dma_id: Mapped[str | None] = mapped_column(ForeignKey("dmas.dma_id"), nullable=True)
    role: Mapped[str] = mapped_column(String(16), default="unknown")
    """``inlet`` / ``outlet`` of its DMA, ``customer`` meter, or ``unknown`` (auto-registered)."""
    last_seen_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)


class Gateway(Base):
    __tablename__ = "gateways"
    gateway_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    site_id: Mapped[str | None] = mapped_column(ForeignKey("sites.site_id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_seen_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    last_batch_seq: Mapped[int | None] = mapped_column(Integer, nullable=True)


class ApiToken(Base):
    """A bearer token, stored as its SHA-256 only; ``kind`` is ``gateway`` or ``reader``."""

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


def make_engine(url: str) -> Engine:
    """Engine for ``url`` with its tables created (SQLite gets WAL and foreign keys)."""
    try:
        engine = create_engine(url, pool_pre_ping=True)
        if engine.dialect.name == "sqlite":
            event.listen(engine, "connect", _sqlite_pragmas)
        Base.metadata.create_all(engine)
    except SQLAlchemyError as exc:
        raise StoreUnavailable(f"cannot open the entity database {url!r}: {exc}") from exc
    return engine


def make_sessionmaker(engine: Engine) -> sessionmaker[Any]:
    """Session factory; sessions do not expire objects on commit (they are returned)."""
    return sessionmaker(engine, expire_on_commit=False)
