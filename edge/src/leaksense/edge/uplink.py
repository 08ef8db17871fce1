"""HTTP uplink to the central server, behind the :class:`Uplink` Protocol.

Failures are translated once: unreachable or overloaded server →
:class:`UplinkUnavailable` (retry later), refused token → :class:`AuthenticationError`,
refused batch → :class:`InvalidInput` (retrying would not help).
"""

from __future__ import annotations

from typing import Protocol

import httpx

from leaksense.core.errors import AuthenticationError, InvalidInput, UplinkUnavailable
from leaksense.core.messages import IngestBatch, IngestResult

INGEST_PATH = "/api/v1/ingest"


class Uplink(Protocol):
    def send(self, batch: IngestBatch) -> IngestResult: ...


class HttpUplink:
    """POSTs batches with the gateway's bearer token."""

    def __init__(self, url: str, token: str, timeout_s: float = 10.0) -> None:
        self._http = httpx.Client(
            base_url=url,
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout_s,
        )

    def send(self, batch: IngestBatch) -> IngestResult:
        try:
            response = self._http.post(
                INGEST_PATH,
                content=batch.model_dump_json(),
                headers={"Content-Type": "application/json"},
            )
        except httpx.HTTPError as exc:
            raise UplinkUnavailable(f"server unreachable: {exc}") from exc
        status = response.status_code
        if status == 200:
            return IngestResult.model_validate_json(response.content)
        detail = _detail(response)
        if status == 401:
            raise AuthenticationError(f"server refused the gateway token: {detail}")
        if status in (400, 413, 422):
            raise InvalidInput(f"server refused batch {batch.batch_seq}: {detail}")
        retry_after_s = _retry_after(response)
        raise UplinkUnavailable(f"server answered HTTP {status}: {detail}", retry_after_s)

    def close(self) -> None:
        self._http.close()


def _detail(response: httpx.Response) -> str:
    try:
        return str(response.json().get("detail", response.text))[:500]
    except ValueError:
        return response.text[:500]


def _retry_after(response: httpx.Response) -> float:
    try:
        return max(1.0, float(response.headers.get("Retry-After", "5")))
    except ValueError:
        return 5.0
