"""HTTP uplink to the central server, behind the :class:`Uplink` Protocol.

Failures are translated once: unreachable or overloaded server →
:class:`UplinkUnavailable` (retry later), refused token → :class:`AuthenticationError`,
refused batch → :class:`InvalidInput` (retrying would not help), and for health
reports an endpoint the server does not have (a server older than the gateway) →
:class:`NotFoundError`.
"""

from __future__ import annotations

from typing import Protocol

from leaksense.core.errors import (
    AuthenticationError,
    InvalidInput,
    NotFoundError,
    UplinkUnavailable,
)
from leaksense.core.messages import GatewayHealth, IngestBatch, IngestColumns, IngestResult
from leaksense.edge.http import Response, TransportError, gateway_client

INGEST_PATH = "/api/v1/ingest"
HEALTH_PATH = "/api/v1/gateways/health"


class Uplink(Protocol):
    def send(self, batch: IngestBatch) -> IngestResult: ...


class HttpUplink:
    """POSTs batches with the gateway's bearer token."""

    def __init__(self, url: str, token: str, timeout_s: float = 10.0) -> None:
        self._http = gateway_client(url, token, timeout_s)

    def send(self, batch: IngestBatch) -> IngestResult:
        """POST the batch in columns (schema 2: a seventh of the bytes of schema 1)."""
        response = self._post(
            INGEST_PATH, IngestColumns.of(batch).model_dump_json(exclude_none=True)
        )
        if response.status == 200:
            return IngestResult.model_validate_json(response.content)
        raise _failure(response, f"batch {batch.batch_seq}")

    def send_health(self, health: GatewayHealth) -> None:
        """POST a health report; any 2xx answer is a success."""
        response = self._post(HEALTH_PATH, health.model_dump_json())
        if response.is_success:
            return
        if response.status in (404, 405):
            raise NotFoundError(f"the server has no {HEALTH_PATH} (older than this gateway)")
        raise _failure(response, "health report")

    def _post(self, path: str, body: str) -> Response:
        try:
            return self._http.post(path, body, "application/json")
        except TransportError as exc:
            raise UplinkUnavailable(f"server unreachable: {exc}", retry_after_s=0.0) from exc

    def close(self) -> None:
        self._http.close()


def _failure(response: Response, what: str) -> Exception:
    status, detail = response.status, _detail(response)
    if status == 401:
        return AuthenticationError(f"server refused the gateway token: {detail}")
    if status in (400, 413, 422):
        return InvalidInput(f"server refused {what}: {detail}")
    return UplinkUnavailable(f"server answered HTTP {status}: {detail}", _retry_after(response))


def _detail(response: Response) -> str:
    try:
        body = response.json()
    except ValueError:
        body = None
    detail = body.get("detail", response.text) if isinstance(body, dict) else response.text
    return str(detail)[:500]


def _retry_after(response: Response) -> float:
    """The server's ``Retry-After`` in seconds; 0 without one (the backoff decides)."""
    value = response.header("Retry-After")
    try:
        return max(1.0, float(value)) if value is not None else 0.0
    except ValueError:
        return 0.0
