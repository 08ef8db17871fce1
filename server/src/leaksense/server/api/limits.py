"""Request limits: body size (413) and per-gateway rates (429), each with a clear message.

Both protect the server from one misbehaving client: a gateway stuck in a retry loop,
or a body that would take seconds to parse. They are **per server instance**: behind
a load balancer with N instances a gateway can reach N times its rate. That is
acceptable for a guard against runaway clients (it is not a quota); a shared limit
would need a shared store (Redis) on every request.

- :class:`BodySizeLimit` is plain ASGI middleware, so it refuses a body before any
  byte of it is parsed: at once from ``Content-Length``, or as soon as a streamed
  (chunked) body passes the limit.
- :class:`GatewayRateLimiter` keeps two token buckets per gateway: requests per second
  and readings per second. A refused request takes nothing from the buckets and is
  told when to come back (``Retry-After``).
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from leaksense.core.errors import RateLimited


class _BodyTooLarge(Exception):
    """Raised into the app by the wrapped ``receive``; never leaves the middleware."""


class BodySizeLimit:
    """Answer 413 to any request whose body is larger than ``max_body_bytes``.

    The app reading a streamed body that goes over the limit gets an exception from
    ``receive``; whatever the app answers then is dropped and replaced by the 413.
    """

    def __init__(
        self, app: ASGIApp, max_body_bytes: int, on_reject: Callable[[], None] = lambda: None
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.on_reject = on_reject

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_body_bytes:
            await self._reject(scope, receive, send, declared)
            return
        received = 0
        overflow = False
        started = False

        async def limited_receive() -> Message:
            nonlocal received, overflow
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    overflow = True
                    raise _BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if overflow:
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        with contextlib.suppress(_BodyTooLarge):
            await self.app(scope, limited_receive, guarded_send)
        if overflow and not started:
            await self._reject(scope, receive, send, None)

    async def _reject(self, scope: Scope, receive: Receive, send: Send, size: int | None) -> None:
        self.on_reject()
        limit = f"{self.max_body_bytes:,} bytes ({self.max_body_bytes / 2**20:.1f} MiB)"
        what = f"of {size:,} bytes " if size is not None else ""
        detail = (
            f"request body {what}exceeds the limit of {limit}: send smaller batches"
            " (setting LEAKSENSE_SERVER_MAX_BODY_BYTES)"
        )
        response = JSONResponse({"detail": detail}, 413, headers={"Connection": "close"})
        await response(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


@dataclass(slots=True)
class TokenBucket:
    """``burst`` tokens at most, refilled at ``rate_per_s``."""

    rate_per_s: float
    burst: float
    tokens: float
    updated_s: float

    def take(self, amount: float, now_s: float) -> float:
        """Take ``amount`` tokens and return 0, or take none and return the seconds to wait."""
        self.tokens = min(self.burst, self.tokens + (now_s - self.updated_s) * self.rate_per_s)
        self.updated_s = now_s
        if amount <= self.tokens:
            self.tokens -= amount
            return 0.0
        return (amount - self.tokens) / self.rate_per_s


@dataclass(frozen=True, slots=True)
class Rate:
    """A sustained rate and the burst allowed above it."""

    per_s: float
    burst: int
    unit: str


class GatewayRateLimiter:
    """Requests and readings per second, per gateway id, in this process (thread-safe)."""

    def __init__(
        self, requests: Rate, readings: Rate, clock_s: Callable[[], float] = time.monotonic
    ) -> None:
        self._rates = {"requests": requests, "readings": readings}
        self._buckets: dict[tuple[str, str], TokenBucket] = {}
        self._clock_s = clock_s
        self._lock = threading.Lock()

    def take_request(self, gateway_id: str) -> None:
        """Count one request of ``gateway_id``; raise :class:`RateLimited` over its rate."""
        self._take("requests", gateway_id, 1)

    def take_readings(self, gateway_id: str, count: int) -> None:
        """Count ``count`` readings of ``gateway_id``; raise :class:`RateLimited` over its rate."""
        if count:
            self._take("readings", gateway_id, count)

    def _take(self, kind: str, gateway_id: str, amount: int) -> None:
        rate = self._rates[kind]
        with self._lock:
            now_s = self._clock_s()
            bucket = self._buckets.get((kind, gateway_id))
            if bucket is None:
                bucket = TokenBucket(rate.per_s, rate.burst, rate.burst, now_s)
                self._buckets[(kind, gateway_id)] = bucket
            wait_s = bucket.take(amount, now_s)
        if wait_s > 0:
            raise RateLimited(
                f"gateway {gateway_id!r} is over its rate of {rate.per_s:g} {rate.unit}/s "
                f"(burst {rate.burst:,}): nothing was stored, retry after {math.ceil(wait_s)} s",
                retry_after_s=wait_s,
            )
