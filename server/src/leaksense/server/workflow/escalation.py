"""Who is told, and when: the first on-call person at once, the next one per delay.

An open alert's ``escalation_level`` is the index in the on-call list of the last
person notified (-1: nobody yet). The worker calls :func:`dispatch_due` every few
seconds; for each open alert it moves the level up by one when that is due:

* level 0 (the first person, and the webhook) as soon as the alert is open; this also
  starts the escalation clock (``escalation_base_at``);
* level *k* once the alert has stayed unacknowledged ``k × escalate_after_s`` since,
  up to the last person on the list.

An alert that joined another's event (``grouping.py``) is not notified while that
one is unresolved: people were told of the event once. During quiet hours only
alerts of an urgent kind (bursts) move; the others wait for the end of quiet hours,
so a night's background leak reaches the first person in the morning rather than
everyone at once. Each move is one transaction: the alert row is
locked (a no-op conditional ``UPDATE``), the level moves only from the value read
(``WHERE escalation_level = old``), and the notifications are inserted with a unique
``dedupe_key``; two servers doing this at once enqueue one set.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from leaksense.server.db import AlertRecord
from leaksense.server.notify.messages import render
from leaksense.server.notify.outbox import Outgoing, enqueue
from leaksense.server.notify.policy import NotifyPolicy
from leaksense.server.workflow.audit import alert_target, record_audit
from leaksense.server.workflow.grouping import held_by_event
from leaksense.server.workflow.models import AlertWorkflow
from leaksense.server.workflow.service import get_alert
from leaksense.server.workflow.views import AlertView

log = logging.getLogger(__name__)
SYSTEM = "system"


def dispatch_due(session: Session, policy: NotifyPolicy, now: datetime) -> int:
    """Notify or escalate every open alert that is due; returns how many moved."""
    if not policy.enabled:
        return 0
    w = AlertWorkflow
    candidates = session.execute(
        select(w.alert_id, w.escalation_level, w.escalation_base_at, AlertRecord.kind)
        .join(AlertRecord, AlertRecord.alert_id == w.alert_id)
        .where(
            AlertRecord.state == "open",
            w.escalation_level < policy.max_level,
            w.alert_id.not_in(held_by_event()),
        )
        .order_by(AlertRecord.detected_at)
    ).all()
    session.rollback()
    moved = 0
    for row in candidates:
        level = row.escalation_level + 1
        if policy.deferred(row.kind, now):
            continue
        if level > 0 and now < row.escalation_base_at + timedelta(
            seconds=level * policy.escalate_after_s
        ):
            continue
        moved += _move(session, row.alert_id, row.escalation_level, policy, now)
    return moved


def _move(
    session: Session, alert_id: str, old_level: int, policy: NotifyPolicy, now: datetime
) -> int:
    """Raise the alert's level from ``old_level`` and enqueue its notifications."""
    try:
        locked = session.execute(
            update(AlertRecord)
            .where(AlertRecord.alert_id == alert_id, AlertRecord.state == "open")
            .values(state="open")
            .execution_options(synchronize_session=False)
        )
        if not locked.rowcount:  # type: ignore[attr-defined]
            session.rollback()
            return 0
        level = old_level + 1
        values: dict[str, object] = {"escalation_level": level}
        if level == 0:
            values["escalation_base_at"] = now
        raised = session.execute(
            update(AlertWorkflow)
            .where(AlertWorkflow.alert_id == alert_id, AlertWorkflow.escalation_level == old_level)
            .values(values)
            .execution_options(synchronize_session=False)
        )
        if not raised.rowcount:  # type: ignore[attr-defined]
            session.rollback()
            return 0
        alert = get_alert(session, alert_id)
        items = notifications(alert, level, policy)
        enqueue(session, items, now)
        record_audit(
            session,
            SYSTEM,
            "notify" if level == 0 else "escalate",
            alert_target(alert_id),
            {"level": level, "recipients": [f"{i.channel}:{i.recipient}" for i in items]},
            at=now,
        )
        session.commit()
    except BaseException:
        session.rollback()
        raise
    log.info("alert %s: level %d, %d notification(s) queued", alert_id, level, len(items))
    return 1


def notifications(alert: AlertView, level: int, policy: NotifyPolicy) -> list[Outgoing]:
    """The rows for one level: an e-mail to ``oncall[level]`` and the webhook."""
    event = "escalated"
    if level == 0:
        event = "reopened" if alert.reopened_count else "opened"
    text = render(alert, event, level, policy.base_url, policy.display_zone)
    urgent = alert.kind in policy.urgent_kinds
    key = f"{alert.alert_id}|{alert.reopened_count}|{level}"
    items: list[Outgoing] = []
    if policy.email and level < len(policy.oncall):
        to = policy.oncall[level]
        items.append(
            Outgoing(f"{key}|email|{to}", alert.alert_id, event, "email", to,
                     text.subject, text.body_text, text.payload, urgent)
        )  # fmt: skip
    if policy.webhook:
        items.append(
            Outgoing(f"{key}|webhook", alert.alert_id, event, "webhook", "webhook",
                     text.subject, text.body_text, text.payload, urgent)
        )  # fmt: skip
    return items
