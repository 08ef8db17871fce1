"""``GET /api/v1/models``: gateways fetch the signed model artifacts of their site."""

from __future__ import annotations

import json

from fastapi import APIRouter, Response
from pydantic import AwareDatetime

from leaksense.server.api.deps import GatewayToken, SessionDep
from leaksense.server.services.models import models_for_gateway

router = APIRouter(prefix="/api/v1", tags=["models"])

_EXAMPLE = {"artifacts": [{"artifact": {"series_id": "ss-inlet"}, "sha256": "…"}], "as_of": None}


@router.get(
    "/models",
    response_class=Response,
    responses={200: {"content": {"application/json": {"example": _EXAMPLE}}}},
)
def models(
    token: GatewayToken, session: SessionDep, since: AwareDatetime | None = None
) -> Response:
    """Latest signed artifact of each sensor and DMA of the gateway's site.

    ``since`` (the previous answer's ``as_of``) keeps only artifacts stored after it.
    Artifacts are returned byte for byte as signed; the gateway verifies them.
    """
    page = models_for_gateway(session, token.gateway_id, since)
    as_of = json.dumps(page.as_of.isoformat() if page.as_of else None)
    body = '{"artifacts":[' + ",".join(a.json for a in page.artifacts) + '],"as_of":' + as_of + "}"
    return Response(body, media_type="application/json")
