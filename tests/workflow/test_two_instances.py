"""Two server instances on one PostgreSQL: no notification twice, no acknowledgement lost.

Both instances are real uvicorn servers (``ServerThread``) built from their own
runtime, each running its notification worker (started by the app's lifespan) every
50 ms against the same database and the same SMTP server process. A gateway posts
alerts to one of them; every alert must reach the SMTP server exactly once. Then each
alert is acknowledged through both instances at the same moment: one answers 200, the
other 409 naming the winner, and the alert and its audit log agree with the 200.
"""

from __future__ import annotations

import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from leaksense.demo.server_thread import ServerThread
from leaksense.server.app import create_app
from leaksense.server.notify import outbox
from leaksense.server.runtime import Runtime, build_runtime
from leaksense.server.services import entities
from leaksense.server.settings import ServerSettings, load_settings
from leaksense.server.workflow.audit import history
from pg import SmtpServer
from workflow.support import wire_alert

ALERTS = 8
LINK = re.compile(r"/alerts/(\S+)")


@dataclass
class Instance:
    http: httpx.Client
    runtime: Runtime
    admin_token: str


@pytest.fixture
def instances(pg_url: str, smtp: SmtpServer, tmp_path: Path) -> Iterator[list[Instance]]:
    servers: list[ServerThread] = []
    out: list[Instance] = []
    tokens: list[str] = []
    for name in ("a", "b"):
        runtime = build_runtime(_settings(tmp_path / name, pg_url, smtp.port))
        with runtime.sessions() as session:
            if name == "a":
                gateway_token = entities.add_gateway(session, "gw-1", None)
            tokens.append(entities.add_token(session, f"ops-{name}", "admin"))
        server = ServerThread(create_app(runtime=runtime)).start()
        servers.append(server)
        out.append(Instance(httpx.Client(base_url=server.url, timeout=10), runtime, tokens[-1]))
    out[0].http.headers["X-Gateway-Token"] = gateway_token
    yield out
    for instance, server in zip(out, servers, strict=True):
        instance.http.close()
        server.stop()


def _settings(data_dir: Path, pg_url: str, smtp_port: int) -> ServerSettings:
    return load_settings(
        data_dir=data_dir,
        database_url=pg_url,
        smtp_host="127.0.0.1",
        smtp_port=smtp_port,
        smtp_starttls=False,
        notify_oncall=["oncall@example.org", "backup@example.org"],
        notify_poll_interval_s=0.05,
    )


def _wait_for(condition: Callable[[], bool], timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_two_instances_send_each_notification_once_and_keep_one_acknowledgement(
    instances: list[Instance], smtp: SmtpServer
) -> None:
    a, b = instances
    now = datetime.now(UTC)
    alerts = [
        wire_alert(f"gw-1:burst:{i}", started_at=now - timedelta(minutes=2),
                   detected_at=now - timedelta(minutes=1), updated_at=now - timedelta(minutes=1))
        for i in range(ALERTS)
    ]  # fmt: skip
    body = {
        "gateway_id": "gw-1",
        "batch_seq": 1,
        "sent_at": now.isoformat(),
        "alerts": [x.model_dump(mode="json") for x in alerts],
    }
    token = a.http.headers.pop("X-Gateway-Token")
    answer = a.http.post("/api/v1/ingest", json=body, headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200, answer.text

    _wait_for(lambda: len(smtp.messages()) >= ALERTS)
    time.sleep(1.0)  # ~20 more rounds of both workers: nothing more may go out
    assert len(smtp.messages()) == ALERTS
    links = Counter(LINK.findall("".join(m.get_content() for m in smtp.messages())))
    assert links == Counter({quote(x.alert_id, safe=""): 2 for x in alerts})  # FR + EN text
    with a.runtime.sessions() as session:
        assert outbox.stats(session) == outbox.OutboxStats(0, ALERTS, 0, 0)

    for instance in (a, b):  # FastAPI builds route state lazily, not thread-safely (its
        # catch_warnings lets a warning escape as an error under pytest): warm up first
        warm = instance.http.post(
            "/api/v1/alerts/none/acknowledge",
            headers={"Authorization": f"Bearer {instance.admin_token}"},
        )
        assert warm.status_code == 404
    for alert in alerts:
        url = f"/api/v1/alerts/{alert.alert_id}/acknowledge"
        barrier = threading.Barrier(2)
        answers: dict[str, httpx.Response] = {}

        def ack(
            name: str,
            instance: Instance,
            url: str = url,
            barrier: threading.Barrier = barrier,
            answers: dict[str, httpx.Response] = answers,
        ) -> None:
            barrier.wait()
            answers[name] = instance.http.post(
                url, headers={"Authorization": f"Bearer {instance.admin_token}"}
            )  # fmt: skip

        threads = [threading.Thread(target=ack, args=(n, i)) for n, i in (("a", a), ("b", b))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        codes = sorted(r.status_code for r in answers.values())
        assert codes == [200, 409], {n: r.text for n, r in answers.items()}
        winner = next(n for n, r in answers.items() if r.status_code == 200)
        loser = answers["b" if winner == "a" else "a"]
        assert f"acknowledged by token:ops-{winner}" in loser.json()["detail"]
        view = b.http.get(
            f"/api/v1/alerts/{alert.alert_id}", headers={"Authorization": f"Bearer {b.admin_token}"}
        ).json()
        assert (view["state"], view["acknowledged_by"]) == ("acknowledged", f"token:ops-{winner}")
        with a.runtime.sessions() as session:
            acks = [e for e in history(session, alert.alert_id) if e.action == "acknowledge"]
        assert [e.actor for e in acks] == [f"token:ops-{winner}"]
