"""Gateways report their health; readers list gateways with their last report."""

from __future__ import annotations

from fastapi import APIRouter, Response

from leaksense.core.messages import GatewayHealth
from leaksense.server.api.deps import GatewayToken, ReaderToken, SessionDep
from leaksense.server.services.gateways import GatewayStatus, list_gateways, record_health

router = APIRouter(prefix="/api/v1/gateways", tags=["gateways"])


@router.post("/health", status_code=204, response_class=Response)
def report_health(health: GatewayHealth, token: GatewayToken, session: SessionDep) -> Response:
    """Keep the gateway's latest health report (its ``gateway_id`` must be the token's)."""
    record_health(session, token, health)
    return Response(status_code=204)


@router.get("")
def gateways(_token: ReaderToken, session: SessionDep) -> list[GatewayStatus]:
    """Every gateway: when it was last heard of and its last health report."""
    return list_gateways(session)
