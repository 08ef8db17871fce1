"""A small HTTP/1.1 client on the standard library, for the gateway's calls to the server.

The gateway only GETs and POSTs JSON to one server, so ``http.client`` is enough and
keeps httpx (~7 MiB resident) out of the gateway process. Each :class:`HttpClient`
keeps one keep-alive connection, guarded by a lock so that threads may share it. A
kept connection the server has closed since (idle timeout, restart) is opened again
once before the error surfaces. Every transport failure — refused, reset, timed out,
TLS, malformed answer — raises :class:`TransportError`; HTTP statuses are returned,
never raised: the callers map both to :mod:`leaksense.core.errors`.
"""

from __future__ import annotations

import http.client
import json
import select
import ssl
import threading
from dataclasses import dataclass
from email.message import Message
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from leaksense.core.errors import ConfigError

USER_AGENT = "leaksense-gateway"
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
    """GET and POST to one server with a bearer token over a kept connection."""

    def __init__(
        self,
        base_url: str,
        token: str,
        timeout_s: float,
        *,
        ca_file: Path | None = None,
    ) -> None:
        """``ca_file`` replaces the system CA store for an ``https`` URL."""
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"uplink url {base_url!r} is not an http:// or https:// URL")
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port or (443 if self._https else 80)
        self._prefix = parts.path.rstrip("/")
        self._timeout_s = timeout_s
        self._ca_file = ca_file
        self._headers = {"Authorization": f"Bearer {token}", "User-Agent": USER_AGENT}
        self._lock = threading.Lock()
        self._conn: http.client.HTTPConnection | None = None
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
            self._drop()

    def _request(
        self, method: str, target: str, body: bytes | None, headers: dict[str, str]
    ) -> Response:
        headers = self._headers | headers
        url = f"{self._prefix}{target}"
        with self._lock:
            conn, reused = self._connection()
            try:
                return self._exchange(conn, method, url, body, headers)
            except _STALE as exc:
                self._drop()
                if not reused:
                    raise TransportError(_describe(exc)) from exc
            except (OSError, http.client.HTTPException) as exc:
                self._drop()
                raise TransportError(_describe(exc)) from exc
            conn, _ = self._connection()  # the kept connection was dead: once more, fresh
            try:
                return self._exchange(conn, method, url, body, headers)
            except (OSError, http.client.HTTPException) as exc:
                self._drop()
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
            self._drop()
        return Response(answer.status, answer.msg, content)

    def _connection(self) -> tuple[http.client.HTTPConnection, bool]:
        """The kept connection and True, or a new (not yet connected) one and False."""
        kept = self._conn
        if kept is not None and kept.sock is not None and not _closed_by_peer(kept.sock):
            return kept, True
        self._drop()
        conn: http.client.HTTPConnection
        if self._https:
            conn = http.client.HTTPSConnection(
                self._host, self._port, timeout=self._timeout_s, context=_tls(self._ca_file)
            )
        else:
            conn = http.client.HTTPConnection(self._host, self._port, timeout=self._timeout_s)
        self._conn = conn
        self.connections_opened += 1
        return conn, False

    def _drop(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


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
