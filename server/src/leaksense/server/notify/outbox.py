"""The notification outbox: enqueue in the alert's transaction, claim, mark sent.

Claiming is what lets any number of server instances run a worker on one database
without sending twice:

* **PostgreSQL**: ``SELECT id … FOR UPDATE SKIP LOCKED`` picks due rows that no
  other transaction is claiming, then an ``UPDATE`` stamps them with this claim's
  token and a lease, and the claim commits before anything is sent.
* **SQLite**: one ``UPDATE … WHERE id IN (SELECT … LIMIT n)`` statement; SQLite runs
  writers one at a time, so the statement is the atomic claim.

A row is sent by the holder of its claim only, and marked ``sent_at`` by it after the
channel accepted it (``WHERE claim_token = …``). A worker that crashes before that
loses nothing: its lease expires and another worker sends the row again. That window
(sent, then crashed before the commit) is the one way to send twice; receivers can
drop the duplicate by its delivery id (``Message-ID`` / ``X-Leaksense-Delivery``).
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, delete, func, select, update
from sqlalchemy.orm import Session

from leaksense.server.db import upsert_statement
from leaksense.server.workflow.models import NotificationRecord

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Outgoing:
    """A notification to enqueue."""

    dedupe_key: str
    alert_id: str
    event: str
    channel: str
    recipient: str
    subject: str
    body_text: str
    payload: dict[str, Any]
    urgent: bool


@dataclass(frozen=True, slots=True)
class Claimed:
    """A claimed row, detached from the session, to send."""

    id: int
    claim_token: str
    alert_id: str
    channel: str
    recipient: str
    subject: str
    body_text: str
    payload_json: str
    attempts: int


def enqueue(session: Session, items: list[Outgoing], now: datetime) -> None:
    """Insert the rows in the caller's transaction; a ``dedupe_key`` already there is skipped."""
    if not items:
        return
    insert = upsert_statement(session, NotificationRecord)
    session.execute(
        insert.on_conflict_do_nothing(index_elements=[NotificationRecord.dedupe_key]),
        [
            {
                "dedupe_key": i.dedupe_key[:400],
                "alert_id": i.alert_id,
                "event": i.event,
                "channel": i.channel,
                "recipient": i.recipient,
                "subject": i.subject[:300],
                "body_text": i.body_text,
                "payload_json": json.dumps(i.payload, default=str, ensure_ascii=False),
                "urgent": i.urgent,
                "created_at": now,
                "next_attempt_at": now,
                "attempts": 0,
            }
            for i in items
        ],
    )


def _due(now: datetime) -> Any:
    n = NotificationRecord
    return (
        n.sent_at.is_(None),
        n.failed_at.is_(None),
        n.cancelled_at.is_(None),
        n.next_attempt_at <= now,
        n.lease_until.is_(None) | (n.lease_until < now),
    )


def claim(session: Session, now: datetime, lease_s: float, limit: int = 20) -> list[Claimed]:
    """Claim up to ``limit`` due rows for ``lease_s`` seconds and commit the claim."""
    n = NotificationRecord
    token = uuid.uuid4().hex
    lease_until = now + timedelta(seconds=lease_s)
    due = select(n.id).where(*_due(now)).order_by(n.urgent.desc(), n.id).limit(limit)
    if session.get_bind().dialect.name == "postgresql":
        ids = list(session.scalars(due.with_for_update(skip_locked=True)).all())
        if not ids:
            session.rollback()
            return []
        target = n.id.in_(ids)
    else:
        target = n.id.in_(due.scalar_subquery())
    session.execute(
        update(n)
        .where(target, *_due(now))
        .values(claim_token=token, lease_until=lease_until)
        .execution_options(synchronize_session=False)
    )
    session.commit()
    rows = session.execute(
        select(
            n.id, n.alert_id, n.channel, n.recipient, n.subject, n.body_text, n.payload_json,
            n.attempts,
        ).where(n.claim_token == token)
    ).all()  # fmt: skip
    session.rollback()
    return [
        Claimed(r.id, token, r.alert_id, r.channel, r.recipient, r.subject, r.body_text,
                r.payload_json, r.attempts)
        for r in rows
    ]  # fmt: skip


def mark_sent(session: Session, item: Claimed, now: datetime) -> bool:
    """Record the success; False if the claim was lost (the lease ran out meanwhile)."""
    n = NotificationRecord
    result = session.execute(
        update(n)
        .where(n.id == item.id, n.claim_token == item.claim_token)
        .values(sent_at=now, attempts=n.attempts + 1, lease_until=None, last_error=None)
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return bool(result.rowcount)  # type: ignore[attr-defined]


def mark_failed(
    session: Session,
    item: Claimed,
    now: datetime,
    error: str,
    *,
    retry_base_s: float,
    retry_max_s: float,
    max_attempts: int,
    permanent: bool = False,
) -> None:
    """Schedule the next attempt (``base × 2^attempts``, capped), or give up after the
    last one or at once if the failure is ``permanent``."""
    n = NotificationRecord
    attempts = item.attempts + 1
    delay_s = min(retry_max_s, retry_base_s * 2 ** (attempts - 1))
    values: dict[str, Any] = {
        "attempts": attempts,
        "claim_token": None,
        "lease_until": None,
        "last_error": error[:500],
        "next_attempt_at": now + timedelta(seconds=delay_s),
    }
    if attempts >= max_attempts or permanent:
        values["failed_at"] = now
        log.error("notification %d to %s given up after %d attempts: %s",
                  item.id, item.recipient, attempts, error)  # fmt: skip
    else:
        log.warning("notification %d to %s failed (attempt %d, retry in %.0f s): %s",
                    item.id, item.recipient, attempts, delay_s, error)  # fmt: skip
    session.execute(
        update(n)
        .where(n.id == item.id, n.claim_token == item.claim_token)
        .values(values)
        .execution_options(synchronize_session=False)
    )
    session.commit()


def prune(session: Session, before: datetime) -> int:
    """Delete rows finished (sent, given up, cancelled) before ``before``; returns how many."""
    n = NotificationRecord
    finished = func.coalesce(n.sent_at, n.failed_at, n.cancelled_at)
    result = session.execute(
        delete(n)
        .where(finished.is_not(None), finished < before)
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return int(result.rowcount)  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class OutboxStats:
    pending: int
    sent: int
    failed: int
    cancelled: int


def stats(session: Session) -> OutboxStats:
    """How many rows wait, were sent, were given up, were cancelled."""
    n = NotificationRecord
    status = case(
        (n.sent_at.is_not(None), "sent"),
        (n.failed_at.is_not(None), "failed"),
        (n.cancelled_at.is_not(None), "cancelled"),
        else_="pending",
    )
    rows = session.execute(select(status, func.count()).group_by(status)).all()
    counts = {str(row[0]): int(row[1]) for row in rows}
    session.rollback()
    return OutboxStats(*(counts.get(k, 0) for k in ("pending", "sent", "failed", "cancelled")))
