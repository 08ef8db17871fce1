"""Notifications: a real SMTP server process, a real webhook receiver, retries, escalation.

Each test drives a :class:`NotificationWorker` round by round with a settable clock,
on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import ipaddress
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from leaksense.core.errors import ConfigError
from leaksense.server.notify import outbox
from leaksense.server.notify.policy import QuietHours
from leaksense.server.notify.webhook import signature, verify_signature
from leaksense.server.notify.worker import NotificationWorker
from leaksense.server.settings import load_settings
from leaksense.server.workflow.audit import history
from leaksense.server.workflow.escalation import dispatch_due
from leaksense.server.workflow.models import NotificationRecord
from leaksense.server.workflow.service import acknowledge, resolve
from pg import SmtpServer
from services import free_port
from workflow.support import T0, Clock, Gateway1, Mailer, notify_settings, wire_alert

ALERT = "gw-1:burst:1"
SECRET = "0123456789abcdef-test-secret"


def test_on_call_people_get_bilingual_mail_then_escalation_until_acknowledged(
    sessions: sessionmaker[Session], gateway: Gateway1, smtp: SmtpServer, mailer: Mailer
) -> None:
    worker, clock = mailer.worker, mailer.clock
    gateway.send(wire_alert(ALERT))
    assert worker.run_once() == (1, 1)
    (first,) = smtp.messages()
    assert first["To"] == "first@example.org"
    assert first["Subject"] == "[Leaksense] Casse / Burst — s-1 — 4.20 m³/h"
    body = first.get_content()
    assert "Nouvelle alerte : casse sur s-1." in body
    assert "Débit estimé : 4.20 m³/h, volume perdu : 0.7 m³" in body
    assert "New alert: burst at s-1." in body and "Estimated flow: 4.20 m³/h" in body
    assert "https://leaksense.example/dashboard/alerts/gw-1%3Aburst%3A1" in body
    clock.advance(599)
    assert worker.run_once() == (0, 0)
    clock.advance(1)
    assert worker.run_once() == (1, 1)
    second = smtp.messages()[-1]
    assert second["To"] == "second@example.org"
    assert "(escalation 1)" in second.get_content()
    with sessions() as session:
        acknowledge(session, ALERT, actor="second", now=clock.now)
    clock.advance(3600)
    assert worker.run_once() == (0, 0)
    assert len(smtp.messages()) == 2
    with sessions() as session:
        actions = [(e.actor, e.action, e.details.get("level")) for e in history(session, ALERT)]
    assert actions == [
        ("system", "notify", 0),
        ("system", "escalate", 1),
        ("second", "acknowledge", None),
    ]


def test_mail_is_retried_with_backoff_until_the_smtp_server_is_up(
    sessions: sessionmaker[Session], gateway: Gateway1, tmp_path: Path, db_url: str
) -> None:
    down = SmtpServer(tmp_path / "smtp")  # not started yet: connection refused
    clock = Clock()
    worker = NotificationWorker(
        sessions, notify_settings(tmp_path, db_url, smtp_port=down.port), clock
    )
    gateway.send(wire_alert(ALERT))
    assert worker.run_once() == (1, 0)
    assert worker.run_once() == (0, 0)  # not due again before the backoff
    with sessions() as session:
        row = session.scalars(select(NotificationRecord)).one()
        assert (row.attempts, row.sent_at) == (1, None)
        assert row.next_attempt_at == T0.replace(second=1)
        assert "SMTP 127.0.0.1" in (row.last_error or "")
    clock.advance(1)
    assert worker.run_once() == (0, 0)  # second failure: next attempt 2 s later
    with down:
        clock.advance(1)
        assert worker.run_once() == (0, 0)
        clock.advance(1)
        assert worker.run_once() == (0, 1)
        assert worker.run_once() == (0, 0)
        assert [m["To"] for m in down.messages()] == ["first@example.org"]
    with sessions() as session:
        assert outbox.stats(session) == outbox.OutboxStats(pending=0, sent=1, failed=0, cancelled=0)


def test_a_crashed_workers_claim_is_sent_once_its_lease_ran_out(
    sessions: sessionmaker[Session],
    gateway: Gateway1,
    smtp: SmtpServer,
    tmp_path: Path,
    db_url: str,
) -> None:
    clock = Clock()
    settings = notify_settings(tmp_path, db_url, smtp_port=smtp.port, notify_lease_s=30)
    worker = NotificationWorker(sessions, settings, clock)
    gateway.send(wire_alert(ALERT))
    with sessions() as session:
        assert dispatch_due(session, worker.policy, clock.now) == 1
        assert len(outbox.claim(session, clock.now, 30)) == 1  # then this worker "crashes"
    clock.advance(29)
    assert worker.run_once() == (0, 0)
    clock.advance(2)
    assert worker.run_once() == (0, 1)
    assert len(smtp.messages()) == 1


def test_quiet_hours_hold_back_all_but_bursts(
    sessions: sessionmaker[Session],
    gateway: Gateway1,
    smtp: SmtpServer,
    tmp_path: Path,
    db_url: str,
) -> None:
    clock = Clock(datetime(2026, 3, 2, 22, 0, tzinfo=UTC))  # 23:00 in Paris
    settings = notify_settings(
        tmp_path,
        db_url,
        smtp_port=smtp.port,
        notify_quiet_hours="22:00-07:00",
        notify_oncall=["first@example.org"],
    )
    worker = NotificationWorker(sessions, settings, clock)
    gateway.send(wire_alert("leak", kind="background_leak"), wire_alert("burst"))
    assert worker.run_once() == (1, 1)
    assert "Casse / Burst" in smtp.messages()[0]["Subject"]
    clock.now = datetime(2026, 3, 3, 6, 0, tzinfo=UTC)  # 07:00 in Paris
    assert worker.run_once() == (1, 1)
    assert "Fuite diffuse / Background leak" in smtp.messages()[1]["Subject"]


def test_quiet_hours_wrap_midnight_in_local_time() -> None:
    quiet = QuietHours.parse("22:00-07:00", "Europe/Paris")
    assert quiet.covers(datetime(2026, 7, 1, 20, 30, tzinfo=UTC))  # 22:30 summer time
    assert not quiet.covers(datetime(2026, 7, 1, 19, 30, tzinfo=UTC))
    assert quiet.covers(datetime(2026, 1, 1, 5, 59, tzinfo=UTC))  # 06:59 winter time
    assert not quiet.covers(datetime(2026, 1, 1, 6, 0, tzinfo=UTC))
    with pytest.raises(ConfigError):
        QuietHours.parse("22:00-07:00", "Mars/Olympus")


def test_acknowledging_cancels_what_was_not_sent_yet(
    sessions: sessionmaker[Session], gateway: Gateway1, smtp: SmtpServer, mailer: Mailer
) -> None:
    worker, clock = mailer.worker, mailer.clock
    gateway.send(wire_alert(ALERT))
    with sessions() as session:
        dispatch_due(session, worker.policy, clock.now)
        acknowledge(session, ALERT, actor="alice", now=clock.now)
        assert outbox.stats(session).cancelled == 1
    assert worker.run_once() == (0, 0)
    assert smtp.messages() == []


@dataclass
class Receiver:
    """A webhook receiver on loopback that checks the signature like a real one must."""

    failures_left: int
    accepted: list[dict[str, Any]] = field(default_factory=list)
    deliveries: list[str] = field(default_factory=list)
    refused_signatures: int = 0


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, str]]:
    state = Receiver(failures_left=1)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            ok = verify_signature(
                SECRET.encode(),
                self.headers["X-Leaksense-Timestamp"],
                body,
                self.headers["X-Leaksense-Signature"],
                now_s=time.time(),
            )
            if not ok:
                state.refused_signatures += 1
                status = 401
            elif state.failures_left > 0:
                state.failures_left -= 1
                status = 503
            else:
                state.accepted.append(json.loads(body))
                state.deliveries.append(self.headers["X-Leaksense-Delivery"])
                status = 204
            self.send_response(status)
            self.end_headers()

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state, f"http://127.0.0.1:{server.server_port}/hook"
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_webhook_posts_signed_json_and_retries_a_refusal(
    sessions: sessionmaker[Session],
    gateway: Gateway1,
    receiver: tuple[Receiver, str],
    tmp_path: Path,
    db_url: str,
) -> None:
    state, url = receiver
    clock = Clock()
    settings = notify_settings(
        tmp_path, db_url, smtp_host=None, webhook_url=url, webhook_secret=SECRET
    )
    worker = NotificationWorker(sessions, settings, clock)
    gateway.send(wire_alert(ALERT))
    assert worker.run_once() == (1, 0)  # the receiver answered 503
    clock.advance(1)
    assert worker.run_once() == (0, 1)
    (payload,) = state.accepted
    assert payload["event"] == "opened" and payload["alert"]["alert_id"] == ALERT
    assert payload["alert"]["flow_m3h"] == 4.2
    assert payload["text_fr"].startswith("Nouvelle alerte : Casse sur s-1")
    assert payload["text_en"].startswith("New alert: Burst at s-1")
    assert state.refused_signatures == 0 and len(state.deliveries) == 1


def test_signature_refuses_tampering_and_replays() -> None:
    body, now_s = b'{"event":"opened"}', 1_800_000_000.0
    good = signature(SECRET.encode(), int(now_s), body)
    assert verify_signature(SECRET.encode(), str(int(now_s)), body, good, now_s=now_s + 60)
    assert not verify_signature(SECRET.encode(), str(int(now_s)), body + b" ", good, now_s=now_s)
    assert not verify_signature(b"other", str(int(now_s)), body, good, now_s=now_s)
    assert not verify_signature(SECRET.encode(), str(int(now_s)), body, good, now_s=now_s + 301)
    assert not verify_signature(SECRET.encode(), "soon", body, good, now_s=now_s)


def test_a_webhook_needs_a_secret_and_production_a_real_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="webhook_secret"):
        load_settings(data_dir=tmp_path, webhook_url="http://127.0.0.1:1/hook")
    with pytest.raises(ConfigError, match="placeholder webhook_secret"):
        load_settings(
            mode="production", database_url="sqlite:///x.db", webhook_url="http://h/hook",
            webhook_secret="change-me",
        )  # fmt: skip


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "leaksense test relay")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "relay.crt", tmp_path / "relay.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_starttls_checks_the_relays_certificate_and_never_falls_back(
    sessions: sessionmaker[Session], gateway: Gateway1, tmp_path: Path, db_url: str
) -> None:
    cert, key = _self_signed(tmp_path)
    clock = Clock()
    with SmtpServer(tmp_path / "tls-smtp", tls=(cert, key)) as relay:
        untrusted = notify_settings(tmp_path, db_url, smtp_port=relay.port, smtp_starttls=True)
        gateway.send(wire_alert(ALERT))
        assert NotificationWorker(sessions, untrusted, clock).run_once() == (1, 0)
        with sessions() as session:
            row = session.scalars(select(NotificationRecord)).one()
            assert "CERTIFICATE_VERIFY_FAILED" in (row.last_error or "")
        assert relay.messages() == []  # nothing sent in clear instead
        trusted = notify_settings(
            tmp_path, db_url, smtp_port=relay.port, smtp_starttls=True, smtp_ca_file=cert
        )
        clock.advance(1)
        assert NotificationWorker(sessions, trusted, clock).run_once() == (0, 1)
        assert [m["To"] for m in relay.messages()] == ["first@example.org"]


def test_a_reopened_alert_is_notified_again(
    sessions: sessionmaker[Session], gateway: Gateway1, smtp: SmtpServer, mailer: Mailer
) -> None:
    worker, clock = mailer.worker, mailer.clock
    gateway.send(wire_alert(ALERT))
    assert worker.run_once() == (1, 1)
    with sessions() as session:
        resolve(session, ALERT, resolution="repaired", actor="bob", now=T0)
    gateway.send(wire_alert(ALERT, updated_at=T0 + timedelta(hours=2)))  # still leaking
    clock.advance(7200)
    assert worker.run_once() == (1, 1)
    reopened = smtp.messages()[-1]
    assert reopened["To"] == "first@example.org"  # the escalation starts over
    assert "Alerte rouverte : casse sur s-1." in reopened.get_content()
    assert "Alert reopened: burst at s-1." in reopened.get_content()


def test_a_dismissed_alert_whose_flow_doubles_is_reopened_and_notified(
    sessions: sessionmaker[Session], gateway: Gateway1, smtp: SmtpServer, mailer: Mailer
) -> None:
    """The gateway folds a new leak on the same series into its open event: a false-alarm
    verdict must not silence it (docs/alerts.md, "Reopen, not a new alert")."""
    worker, clock = mailer.worker, mailer.clock
    gateway.send(wire_alert(ALERT, flow_m3h=4.2))
    assert worker.run_once() == (1, 1)
    with sessions() as session:
        resolve(session, ALERT, resolution="false_alarm", actor="bob", now=T0)
    later = T0 + timedelta(hours=2)
    gateway.send(wire_alert(ALERT, flow_m3h=7.9, updated_at=later))  # under twice 4.2
    clock.advance(7200)
    assert worker.run_once() == (0, 0)
    gateway.send(wire_alert(ALERT, flow_m3h=8.6, updated_at=later + timedelta(hours=1)))
    clock.advance(3600)
    assert worker.run_once() == (1, 1)
    assert "Alert reopened: burst at s-1." in smtp.messages()[-1].get_content()
    with sessions() as session:
        reopen = [e for e in history(session, ALERT) if e.action == "reopen"]
    assert reopen[0].details["because"] == (
        "its flow rose from 4.200 to 8.600 m³/h after it was judged false_alarm"
    )


def test_permanent_refusals_are_given_up_at_once_and_old_rows_pruned(
    sessions: sessionmaker[Session], gateway: Gateway1, tmp_path: Path, db_url: str
) -> None:
    settings = notify_settings(
        tmp_path, db_url, smtp_port=free_port(), notify_oncall=["a@example.org", "b@example.org"]
    )
    worker = NotificationWorker(sessions, settings, Clock())
    gateway.send(wire_alert(ALERT))
    with sessions() as session:
        dispatch_due(session, worker.policy, T0)
        (item,) = outbox.claim(session, T0, 30)
        outbox.mark_failed(
            session, item, T0, "550 no such user", retry_base_s=1, retry_max_s=1,
            max_attempts=20, permanent=True,
        )  # fmt: skip
        assert outbox.stats(session) == outbox.OutboxStats(0, 0, 1, 0)
        assert outbox.claim(session, T0 + timedelta(days=1), 30) == []
        assert outbox.prune(session, T0) == 0
        assert outbox.prune(session, T0 + timedelta(seconds=1)) == 1
        assert outbox.stats(session) == outbox.OutboxStats(0, 0, 0, 0)
