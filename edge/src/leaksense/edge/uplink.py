"""HTTP uplink to the central server, behind the :class:`Uplink` Protocol.

Failures are translated once: unreachable or overloaded server →
:class:`UplinkUnavailable` (retry later), refused token → :class:`AuthenticationError`,
refused batch → :class:`InvalidInput` (retrying would not help), and for health
reports an endpoint the server does not have (a server older than the gateway) →
:class:`NotFoundError`. Batches go in schema 2 (:class:`IngestColumns`); a server
that refuses it for its ``schema_version`` (older than the gateway) gets schema 1
from then on, the refused batch first.
"""

from __future__ import annotations

import logging
from typing import Protocol

from leaksense.core.errors import (
    AuthenticationError,
    InvalidInput,
    NotFoundError,
    UplinkUnavailable,
)
from leaksense.core.messages import GatewayHealth, IngestBatch, IngestColumns, IngestResult
from leaksense.edge.http import Response, TransportError, gateway_client

log = logging.getLogger(__name__)
INGEST_PATH = "/api/v1/ingest"
HEALTH_PATH = "/api/v1/gateways/health"


class Uplink(Protocol):
    def send(self, batch: IngestBatch) -> IngestResult: ...


class HttpUplink:
    """POSTs batches with the gateway's bearer token."""

    def __init__(self, url: str, token: str, timeout_s: float = 10.0) -> None:
        self._http = gateway_client(url, token, timeout_s)
        self._columns = True
        """Send schema 2, until a server refuses it."""

    def send(self, batch: IngestBatch) -> IngestResult:
        """POST the batch in columns (schema 2: a seventh of the bytes of schema 1)."""
        if self._columns:
            columns = IngestColumns.of(batch).model_dump_json(exclude_none=True)
            response = self._post(INGEST_PATH, columns)
            if response.status != 422 or "schema_version" not in _detail(response):
                return _result(response, batch)
            log.warning(
                "the server refuses schema 2 batches (older than this gateway): sending schema 1"
            )
            self._columns = False
        return _result(self._post(INGEST_PATH, batch.model_dump_json()), batch)

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


def _result(response: Response, batch: IngestBatch) -> IngestResult:
    if response.status == 200:
        return IngestResult.model_validate_json(response.content)
    raise _failure(response, f"batch {batch.batch_seq}")


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
