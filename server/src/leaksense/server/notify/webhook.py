"""A generic webhook: JSON POST signed with HMAC-SHA256, for SMS gateways or chat bots.

Headers sent with each POST::

    X-Leaksense-Timestamp: 1763790000          (Unix seconds)
    X-Leaksense-Signature: sha256=<hex>         HMAC-SHA256(secret, "<timestamp>.<body>")
    X-Leaksense-Delivery:  <outbox row id>      the same on every retry

A receiver recomputes the HMAC over the timestamp, a dot and the raw body, compares
in constant time, and refuses timestamps more than five minutes away from its clock
(a replayed request is stale); :func:`verify_signature` does all three. Any 2xx
answer is success; anything else, or no answer, is retried with backoff.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any, Final

import httpx

from leaksense.server.notify.email import NotifyFailed
from leaksense.server.settings import ServerSettings

TOLERANCE_S: Final = 300.0


def signature(secret: bytes, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify_signature(
    secret: bytes,
    timestamp: str,
    body: bytes,
    signature_header: str,
    *,
    now_s: float,
    tolerance_s: float = TOLERANCE_S,
) -> bool:
    """True if the request is authentic and fresh (what a receiver should check)."""
    try:
        sent_s = int(timestamp)
    except ValueError:
        return False
    if abs(now_s - sent_s) > tolerance_s:
        return False
    return hmac.compare_digest(signature(secret, sent_s, body), signature_header)


@dataclass(frozen=True, slots=True)
class WebhookSender:
    url: str
    secret: bytes
    timeout_s: float = 10.0

    @classmethod
    def from_settings(cls, s: ServerSettings) -> WebhookSender | None:
        if s.webhook_url is None or s.webhook_secret is None:
            return None
        return cls(s.webhook_url, s.webhook_secret.get_secret_value().encode(), s.smtp_timeout_s)

    def send(self, payload: dict[str, Any], delivery_id: str, now_s: float) -> None:
        body = json.dumps(payload, ensure_ascii=False, sort_keys=True).encode()
        timestamp = int(now_s)
        headers = {
            "Content-Type": "application/json",
            "X-Leaksense-Timestamp": str(timestamp),
            "X-Leaksense-Signature": signature(self.secret, timestamp, body),
            "X-Leaksense-Delivery": delivery_id,
        }
        try:
            response = httpx.post(self.url, content=body, headers=headers, timeout=self.timeout_s)
        except httpx.HTTPError as exc:
            raise NotifyFailed(f"webhook {self.url}: {exc}") from exc
        if not response.is_success:
            raise NotifyFailed(f"webhook {self.url} answered {response.status_code}")
