"""Gateways as the server sees them: last heard of, last health report.

A gateway POSTs a :class:`GatewayHealth` every few minutes; only the latest is kept
(one row per gateway, the JSON as sent), because history belongs in Prometheus,
which scrapes the same figures from ``/metrics``.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict
from sqlalchemy import select
from sqlalchemy.orm import Session

from leaksense.core.errors import AuthenticationError
from leaksense.core.messages import GatewayHealth
from leaksense.server.db import ApiToken, Gateway, GatewayHealthRecord, upsert_statement


class GatewayStatus(BaseModel):
    """One gateway in ``GET /api/v1/gateways``."""

    model_config = ConfigDict(frozen=True)

    gateway_id: str
    site_id: str | None
    created_at: datetime
    last_seen_at: datetime | None
    """Last ingest or health report received from it."""
    last_batch_seq: int | None
    health_received_at: datetime | None
    health: GatewayHealth | None


def record_health(session: Session, token: ApiToken, health: GatewayHealth) -> None:
    """Keep ``health`` as the latest report of the token's gateway."""
    if token.gateway_id != health.gateway_id:
        raise AuthenticationError(
            f"this token belongs to gateway {token.gateway_id!r}, not {health.gateway_id!r}"
        )
    now = datetime.now(UTC)
    insert = upsert_statement(session, GatewayHealthRecord)
    session.execute(
        insert.values(
            gateway_id=health.gateway_id, received_at=now, report_json=health.model_dump_json()
        ).on_conflict_do_update(
            index_elements=[GatewayHealthRecord.gateway_id],
            set_={"received_at": now, "report_json": insert.excluded.report_json},
        )
    )
    gateway = session.get(Gateway, health.gateway_id)
    if gateway is not None:
        gateway.last_seen_at = now
    session.commit()


def list_gateways(session: Session) -> list[GatewayStatus]:
    """Every registered gateway with its last health report, by id."""
    rows = session.execute(
        select(Gateway, GatewayHealthRecord)
        .outerjoin(GatewayHealthRecord, GatewayHealthRecord.gateway_id == Gateway.gateway_id)
        .order_by(Gateway.gateway_id)
    ).all()
    return [
        GatewayStatus(
            gateway_id=gateway.gateway_id,
            site_id=gateway.site_id,
            created_at=gateway.created_at,
            last_seen_at=gateway.last_seen_at,
            last_batch_seq=gateway.last_batch_seq,
            health_received_at=health.received_at if health else None,
            health=GatewayHealth.model_validate_json(health.report_json) if health else None,
        )
        for gateway, health in rows
    ]
