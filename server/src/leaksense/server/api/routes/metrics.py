"""``GET /metrics``: Prometheus text format (see :mod:`leaksense.server.metrics`).

Open by default, as exporters usually are: the figures are operational, not
customer data. Bind the server to a private address or filter ``/metrics`` at the
reverse proxy, or set ``LEAKSENSE_SERVER_METRICS_REQUIRE_TOKEN=true`` to ask a reader
token (Prometheus sends it with ``authorization: {credentials: ...}``).
"""

from __future__ import annotations

from fastapi import APIRouter, Response

from leaksense.server.api.deps import MetricsAccess, MetricsDep
from leaksense.server.metrics import CONTENT_TYPE

router = APIRouter(tags=["metrics"])


@router.get("/metrics", response_class=Response, dependencies=[MetricsAccess])
def metrics(server_metrics: MetricsDep) -> Response:
    """This instance's counters and the gateways' last health figures."""
    return Response(server_metrics.exposition(), media_type=CONTENT_TYPE)
