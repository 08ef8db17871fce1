"""The gateway's standard-library HTTP client against a real local HTTP/1.1 server.

The server (``http.server`` in a thread) records every request with the client port
it came from, so a test sees whether the client kept its connection, opened a new one
after the server closed it, and what it sent. The uplink's mapping of HTTP answers to
Leaksense errors is checked through the same server.
"""

from __future__ import annotations

import json
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import NamedTuple

import pytest

from leaksense.core.errors import (
    AuthenticationError,
    ConfigError,
    InvalidInput,
    UplinkUnavailable,
)
from leaksense.core.messages import IngestBatch, IngestColumns
from leaksense.edge.http import HttpClient, TransportError, gateway_client
from leaksense.edge.uplink import HttpUplink
from leaksense.server.provision.tls import TlsPaths, provision_tls
from services import LOOPBACK, free_port

TOKEN = "lks_test-token"


@dataclass(frozen=True, slots=True)
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    client_port: int
    nth_on_connection: int


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive unless told otherwise
    disable_nagle_algorithm = True  # headers and body are separate writes
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.nth = 0

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def _handle(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.nth += 1
        seen = Seen(
            self.command, self.path, dict(self.headers), body, self.client_address[1], self.nth
        )
        self.server.seen.append(seen)
        self.server.behaviour(self)

    def answer(self, status: int, body: object, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


Behaviour = Callable[[_Handler], None]


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, behaviour: Behaviour) -> None:
        super().__init__((LOOPBACK, 0), _Handler)
        self.behaviour = behaviour
        self.seen: list[Seen] = []

    @property
    def url(self) -> str:
        scheme = "https" if isinstance(self.socket, ssl.SSLSocket) else "http"
        return f"{scheme}://{LOOPBACK}:{self.server_address[1]}"


def echo(handler: _Handler) -> None:
    handler.answer(200, {"path": handler.path}, {"X-Seen": str(len(handler.server.seen))})


@pytest.fixture
def serve() -> Iterator[Callable[..., _Server]]:
    """Start servers with a behaviour (and optionally TLS); all are stopped after."""
    servers: list[_Server] = []

    def start(behaviour: Behaviour = echo, tls: ssl.SSLContext | None = None) -> _Server:
        server = _Server(behaviour)
        if tls is not None:
            server.socket = tls.wrap_socket(server.socket, server_side=True)
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def client_for() -> Iterator[Callable[..., HttpClient]]:
    clients: list[HttpClient] = []

    def make(url: str, timeout_s: float = 5.0, ca_file: Path | None = None) -> HttpClient:
        clients.append(gateway_client(url, TOKEN, timeout_s, ca_file=ca_file))
        return clients[-1]

    yield make
    for client in clients:
        client.close()


def test_requests_share_one_kept_connection(
    serve: Callable[..., _Server], client_for: Callable[..., HttpClient]
) -> None:
    server = serve()
    client = client_for(server.url + "/prefix/")
    first = client.get("/api/v1/models", {"since": "2026-01-01T00:00:00+00:00"})
    posted = client.post("/api/v1/ingest", '{"a": 1}', "application/json")
    third = client.get("/api/v1/sensitivity")
    assert [r.status for r in (first, posted, third)] == [200, 200, 200]
    assert first.json() == {"path": "/prefix/api/v1/models?since=2026-01-01T00%3A00%3A00%2B00%3A00"}
    assert third.header("x-seen") == "3" and third.header("X-SEEN") == "3"
    assert third.header("Retry-After") is None
    assert third.is_success and '"path"' in third.text
    assert client.connections_opened == 1
    assert len({seen.client_port for seen in server.seen}) == 1
    assert [seen.nth_on_connection for seen in server.seen] == [1, 2, 3]
    get, post = server.seen[0], server.seen[1]
    assert get.headers["Authorization"] == f"Bearer {TOKEN}"
    assert get.headers["User-Agent"] == "leaksense-gateway"
    assert "Content-Type" not in get.headers
    assert post.method == "POST" and post.body == b'{"a": 1}'
    assert post.headers["Content-Type"] == "application/json"
    assert post.headers["Content-Length"] == "8"


def test_a_connection_the_server_closed_is_opened_again(
    serve: Callable[..., _Server], client_for: Callable[..., HttpClient]
) -> None:
    def answer_then_close(handler: _Handler) -> None:
        echo(handler)
        handler.close_connection = True  # no "Connection: close": the client learns later

    server = serve(answer_then_close)
    client = client_for(server.url)
    for _ in range(3):
        assert client.get("/x").status == 200
    assert client.connections_opened == 3
    assert len({seen.client_port for seen in server.seen}) == 3


def test_a_request_dropped_on_a_kept_connection_is_sent_once_more_on_a_new_one(
    serve: Callable[..., _Server], client_for: Callable[..., HttpClient]
) -> None:
    """The race the idle check cannot see: the server hangs up on the request itself."""
    server = serve(_drop_every_second_request)
    client = client_for(server.url)
    assert client.post("/api/v1/ingest", "1", "text/plain").status == 200
    assert client.post("/api/v1/ingest", "2", "text/plain").status == 200
    assert client.connections_opened == 2
    assert [(s.body, s.nth_on_connection) for s in server.seen] == [
        (b"1", 1),
        (b"2", 2),  # dropped without an answer
        (b"2", 1),  # sent again on a new connection
    ]


def _drop_every_second_request(handler: _Handler) -> None:
    if handler.nth == 2:
        handler.close_connection = True  # hang up without answering
        return
    echo(handler)


def test_a_refused_connection_is_a_transport_error_at_once(
    client_for: Callable[..., HttpClient],
) -> None:
    client = client_for(f"http://{LOOPBACK}:{free_port()}")
    with pytest.raises(TransportError, match="refused"):
        client.get("/")
    assert client.connections_opened == 1  # a new connection is not tried twice


def test_a_server_slower_than_the_timeout_is_a_transport_error(
    serve: Callable[..., _Server], client_for: Callable[..., HttpClient]
) -> None:
    release = threading.Event()

    def slow(handler: _Handler) -> None:
        release.wait(5.0)
        echo(handler)

    server = serve(slow)
    client = client_for(server.url, timeout_s=0.3)
    started = time.monotonic()
    try:
        with pytest.raises(TransportError, match="timed out"):
            client.get("/slow")
    finally:
        release.set()
    assert time.monotonic() - started < 2.0
    assert client.get("/again").status == 200  # the broken connection was dropped
    assert client.connections_opened == 2


def test_threads_share_a_client(
    serve: Callable[..., _Server], client_for: Callable[..., HttpClient]
) -> None:
    server = serve()
    client = client_for(server.url)
    statuses: list[int] = []

    def work() -> None:
        statuses.extend(client.get("/t").status for _ in range(10))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * 40
    assert client.connections_opened == 1


def test_tls_is_verified_against_the_given_ca(
    serve: Callable[..., _Server], client_for: Callable[..., HttpClient], tmp_path: Path
) -> None:
    paths = TlsPaths(tmp_path)
    provision_tls(paths, [LOOPBACK])
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(paths.broker_cert, paths.broker_key)
    server = serve(tls=context)
    trusting = client_for(server.url, ca_file=paths.ca_cert)
    assert trusting.get("/a").status == 200
    assert trusting.get("/b").status == 200
    assert trusting.connections_opened == 1
    with pytest.raises(TransportError, match="CERTIFICATE_VERIFY_FAILED"):
        client_for(server.url).get("/c")  # the system store does not know this CA


@pytest.mark.parametrize("url", ["ftp://example.org", "127.0.0.1:8000", "http://"])
def test_a_url_that_is_not_http_is_a_config_error(url: str) -> None:
    with pytest.raises(ConfigError, match="not an http"):
        gateway_client(url, TOKEN, 1.0)


def _batch() -> IngestBatch:
    reading = {"sensor_id": "s-1", "time": "2026-01-01T00:00:00Z", "flow_m3h": 1.5}
    return IngestBatch.model_validate(
        {
            "gateway_id": "gw-1",
            "batch_seq": 7,
            "sent_at": "2026-01-01T00:00:00Z",
            "readings": [reading, reading | {"sensor_id": "s-2", "index_m3": 3.25}],
        }
    )


class Answer(NamedTuple):
    status: int
    body: object
    headers: dict[str, str]
    error: type[Exception]
    message: str
    retry_after_s: float | None = None


@pytest.mark.parametrize(
    "answer",
    [
        Answer(503, {"detail": "busy"}, {"Retry-After": "7"}, UplinkUnavailable, "503: busy", 7.0),
        Answer(502, "not json", {}, UplinkUnavailable, 'HTTP 502: "not json"', 0.0),
        Answer(429, ["a list"], {"Retry-After": "soon"}, UplinkUnavailable, "HTTP 429", 0.0),
        Answer(401, {"detail": "unknown token"}, {}, AuthenticationError, "unknown token"),
        Answer(422, {"detail": "bad batch"}, {}, InvalidInput, "refused batch 7: bad batch"),
    ],
)
def test_uplink_answers_map_to_leaksense_errors(
    serve: Callable[..., _Server], answer: Answer
) -> None:
    server = serve(lambda handler: handler.answer(answer.status, answer.body, answer.headers))
    uplink = HttpUplink(server.url, TOKEN, timeout_s=5.0)
    try:
        with pytest.raises(answer.error, match=answer.message) as raised:
            uplink.send(_batch())
    finally:
        uplink.close()
    if answer.retry_after_s is not None:
        assert isinstance(raised.value, UplinkUnavailable)
        assert raised.value.retry_after_s == answer.retry_after_s
    assert server.seen[0].path == "/api/v1/ingest"


def _schema_1_only(handler: _Handler) -> None:
    """A server older than schema 2, refusing it as such a server does."""
    body = json.loads(handler.server.seen[-1].body)
    if body.get("schema_version", 1) != 1:
        detail = "invalid request: body.schema_version: Input should be 1"
        handler.answer(422, {"detail": detail})
        return
    handler.answer(
        200,
        {
            "gateway_id": body["gateway_id"],
            "batch_seq": body["batch_seq"],
            "readings_stored": len(body["readings"]),
            "alerts_stored": 0,
        },
    )


def test_the_uplink_sends_columns_and_falls_back_to_schema_1_for_an_older_server(
    serve: Callable[..., _Server], caplog: pytest.LogCaptureFixture
) -> None:
    current = serve(_schema_1_only)
    uplink = HttpUplink(current.url, TOKEN, timeout_s=5.0)
    try:
        first = uplink.send(_batch())
        second = uplink.send(_batch())
    finally:
        uplink.close()
    versions = [json.loads(s.body).get("schema_version") for s in current.seen]
    assert versions == [2, 1, 1]  # refused once, then schema 1 from then on
    assert first.readings_stored == second.readings_stored == len(_batch().readings) > 0
    assert "refuses schema 2" in caplog.text


def test_the_uplink_sends_schema_2_to_a_current_server(serve: Callable[..., _Server]) -> None:
    server = serve(lambda handler: handler.answer(422, {"detail": "flow_m3h: too large"}))
    uplink = HttpUplink(server.url, TOKEN, timeout_s=5.0)
    try:
        with pytest.raises(InvalidInput, match="too large"):
            uplink.send(_batch())
    finally:
        uplink.close()
    sent = [IngestColumns.model_validate_json(s.body) for s in server.seen]
    assert [c.batch() for c in sent] == [_batch()]  # one request, no fallback


def test_an_unreachable_server_is_uplink_unavailable() -> None:
    uplink = HttpUplink(f"http://{LOOPBACK}:{free_port()}", TOKEN, timeout_s=1.0)
    try:
        with pytest.raises(UplinkUnavailable, match="server unreachable") as raised:
            uplink.send(_batch())
    finally:
        uplink.close()
    assert raised.value.retry_after_s == 0.0
