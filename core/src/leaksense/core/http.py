"""A small HTTP/1.1 client on the standard library, for hot, simple calls to one server.

The gateway's calls to the server (GET and POST of JSON) and the server's writes to
InfluxDB need no more than ``http.client``: it keeps httpx (~7 MiB resident) out of
the gateway process and costs a third of httpx's CPU a request on the ingest path.
An :class:`HttpClient` keeps up to ``max_connections`` keep-alive connections that
threads share (1: requests take turns on one connection). A kept connection the
server has closed since (idle timeout, restart) is opened again once before the
error surfaces, so only idempotent requests belong here (a gateway's batch, a
line-protocol write). Every transport failure — refused, reset, timed out, TLS,
malformed answer — raises :class:`TransportError`; HTTP statuses are returned,
never raised: the callers map both to :mod:`leaksense.core.errors`.
"""

from __future__ import annotations

import http.client
import json
import select
import ssl
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import Message
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from leaksense.core.errors import ConfigError

_STALE = (http.client.RemoteDisconnected, ConnectionError, ssl.SSLEOFError, ssl.SSLZeroReturnError)
"""A kept connection the server closed (``BrokenPipeError`` is a ``ConnectionError``)."""


class TransportError(Exception):
    """The request got no HTTP answer: connection, timeout, TLS or protocol failure."""


@dataclass(frozen=True, slots=True)
class Response:
    """An HTTP answer, read in full."""

    status: int
    headers: Message
    """Looked up case-insensitively: ``headers.get("retry-after")``."""
    content: bytes

    @property
    def is_success(self) -> bool:
        return 200 <= self.status < 300

    @property
    def text(self) -> str:
        charset = self.headers.get_content_charset() or "utf-8"
        try:
            return self.content.decode(charset, errors="replace")
        except LookupError:  # an unknown charset name
            return self.content.decode("utf-8", errors="replace")

    def header(self, name: str) -> str | None:
        """A header's value (case-insensitive name), None when absent."""
        value = self.headers.get(name)
        return None if value is None else str(value)

    def json(self) -> Any:
        """The body as JSON; ``ValueError`` when it is not."""
        return json.loads(self.content)


class HttpClient:
    """GET and POST to one server over kept connections, with fixed headers."""

    def __init__(
        self,
        base_url: str,
        timeout_s: float,
        *,
        headers: Mapping[str, str] | None = None,
        ca_file: Path | None = None,
        max_connections: int = 1,
    ) -> None:
        """``ca_file`` replaces the system CA store for an ``https`` URL."""
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"{base_url!r} is not an http:// or https:// URL")
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port or (443 if self._https else 80)
        self._prefix = parts.path.rstrip("/")
        self._timeout_s = timeout_s
        self._ca_file = ca_file
        self._headers = dict(headers or {})
        self._slots = threading.BoundedSemaphore(max_connections)
        self._lock = threading.Lock()
        self._idle: list[http.client.HTTPConnection] = []
        self.connections_opened = 0
        """Connections opened or tried (keep-alive keeps it small)."""

    def get(self, path: str, params: dict[str, str] | None = None) -> Response:
        query = f"?{urlencode(params)}" if params else ""
        return self._request("GET", f"{path}{query}", None, {})

    def post(self, path: str, body: str | bytes, content_type: str) -> Response:
        data = body.encode() if isinstance(body, str) else body
        return self._request("POST", path, data, {"Content-Type": content_type})

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def _request(
        self, method: str, target: str, body: bytes | None, headers: dict[str, str]
    ) -> Response:
        headers = self._headers | headers
        url = f"{self._prefix}{target}"
        with self._slots:
            conn, reused = self._take()
            try:
                return self._exchange(conn, method, url, body, headers)
            except _STALE as exc:
                conn.close()
                if not reused:
                    raise TransportError(_describe(exc)) from exc
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                raise TransportError(_describe(exc)) from exc
            conn = self._new()  # the kept connection was dead: once more, fresh
            try:
                return self._exchange(conn, method, url, body, headers)
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                raise TransportError(_describe(exc)) from exc

    def _exchange(
        self,
        conn: http.client.HTTPConnection,
        method: str,
        url: str,
        body: bytes | None,
        headers: dict[str, str],
    ) -> Response:
        conn.request(method, url, body=body, headers=headers)
        answer = conn.getresponse()
        content = answer.read()
        if answer.will_close:
            conn.close()
        else:
            with self._lock:
                self._idle.append(conn)
        return Response(answer.status, answer.msg, content)

    def _take(self) -> tuple[http.client.HTTPConnection, bool]:
        """A kept connection and True, or a new (not yet connected) one and False."""
        while True:
            with self._lock:
                kept = self._idle.pop() if self._idle else None
            if kept is None:
                return self._new(), False
            if kept.sock is not None and not _closed_by_peer(kept.sock):
                return kept, True
            kept.close()

    def _new(self) -> http.client.HTTPConnection:
        with self._lock:
            self.connections_opened += 1
        if self._https:
            return http.client.HTTPSConnection(
                self._host, self._port, timeout=self._timeout_s, context=_tls(self._ca_file)
            )
        return http.client.HTTPConnection(self._host, self._port, timeout=self._timeout_s)


def _closed_by_peer(sock: Any) -> bool:
    """An idle kept socket that is readable has an EOF (or garbage) waiting: unusable."""
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


@cache
def _tls(ca_file: Path | None) -> ssl.SSLContext:
    """One verifying context per CA file, shared by the clients (contexts are thread-safe)."""
    return ssl.create_default_context(cafile=str(ca_file) if ca_file else None)


def _describe(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__
