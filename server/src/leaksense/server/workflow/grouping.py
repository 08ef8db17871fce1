"""One leak, one event: link a new leak alert to the open one it duplicates.

When ingest creates a leak alert, :func:`link_same_event` looks for an unresolved
alert of the same kind, started or raised within 30 minutes of it, with a flow
within a factor of 3 of its own, on a series that carries some of the same water
(``domain/same_water.py``, from the DMAs' boundary meters and customer meters). If
there is one, the new alert joins its event (``alert_links``):
it is listed under it and nobody is notified of it while that one is unresolved
(``escalation.py``). Resolving that one as repaired or planned work resolves it too;
as a false alarm or a sensor fault, it leaves the event and is notified on its own
(``service.py``): a verdict on one series is no verdict on another's alert.

Two server instances may ingest the two alerts of one leak at the same instant. Each
would look for the other's alert before it is committed, find none, and start an
event of its own. On PostgreSQL the search therefore holds a transaction-wide
advisory lock (:data:`GROUPING_LOCK`) until the batch commits, so the second one
waits and then sees the first. SQLite lets one writer in at a time anyway.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Select, or_, select, text
from sqlalchemy.orm import Session, aliased

from leaksense.core.messages import LEAK_KINDS
from leaksense.server.db import AlertRecord, DmaMeter, Sensor
from leaksense.server.domain.same_water import (
    SAME_EVENT_WITHIN,
    AlertFacts,
    DmaBoundary,
    Subject,
    WaterMap,
    same_event,
)
from leaksense.server.workflow.audit import alert_target, record_audit
from leaksense.server.workflow.models import AlertLink

UNRESOLVED = ("open", "acknowledged")
GROUPING_LOCK = 0x4C53_4750
"""PostgreSQL advisory lock key held while a new leak alert looks for its event."""


def water_map(session: Session) -> WaterMap:
    """The DMAs' boundaries and customer meters, as the entity database declares them."""
    inlets: dict[str, list[str]] = {}
    outlets: dict[str, list[str]] = {}
    customers: dict[str, list[str]] = {}
    for m in session.scalars(select(DmaMeter)):
        (inlets if m.role == "inlet" else outlets).setdefault(m.dma_id, []).append(m.sensor_id)
    rows = session.execute(
        select(Sensor.sensor_id, Sensor.dma_id).where(
            Sensor.role == "customer", Sensor.dma_id.is_not(None)
        )
    )
    for sensor_id, dma_id in rows:
        customers.setdefault(dma_id or "", []).append(sensor_id)
    ids = set(inlets) | set(outlets) | set(customers)
    return WaterMap.of(
        DmaBoundary(
            d,
            tuple(sorted(inlets.get(d, ()))),
            tuple(sorted(outlets.get(d, ()))),
            tuple(sorted(customers.get(d, ()))),
        )
        for d in sorted(ids)
    )


def held_by_event() -> Select[Any]:
    """The ids of alerts linked to an event whose first alert is still unresolved."""
    primary = aliased(AlertRecord)
    return (
        select(AlertLink.alert_id)
        .join(primary, primary.alert_id == AlertLink.primary_id)
        .where(primary.state.in_(UNRESOLVED))
    )


def linked_to(session: Session, primary_id: str) -> list[str]:
    """The alerts that joined the event ``primary_id`` heads, in the order they came."""
    rows = session.scalars(
        select(AlertLink.alert_id)
        .where(AlertLink.primary_id == primary_id)
        .order_by(AlertLink.linked_at, AlertLink.alert_id)
    )
    return list(rows)


def unlink(session: Session, alert_id: str, *, actor: str, reason: str, now: datetime) -> None:
    """Take an alert out of its event: it is then notified on its own."""
    link = session.get(AlertLink, alert_id)
    if link is None:
        return
    details = {"was_same_event_as": link.primary_id, "because": reason}
    session.delete(link)
    record_audit(session, actor, "unlink", alert_target(alert_id), details, at=now)


def facts(record: AlertRecord) -> AlertFacts:
    return AlertFacts(
        record.alert_id,
        Subject(record.sensor_id, record.dma_id),
        record.kind,
        record.started_at,
        record.detected_at,
        record.flow_m3h,
    )


def link_same_event(session: Session, record: AlertRecord, now: datetime) -> str | None:
    """Link a newly created alert to the event it duplicates; returns that event's
    alert id, or None (a new event). In ingest's transaction (no commit)."""
    if record.kind not in LEAK_KINDS:
        return None
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": GROUPING_LOCK})
    linked = select(AlertLink.alert_id)
    candidates = session.scalars(
        select(AlertRecord)
        .where(
            AlertRecord.alert_id != record.alert_id,
            AlertRecord.kind == record.kind,
            AlertRecord.state.in_(UNRESOLVED),
            or_(
                AlertRecord.started_at.between(
                    record.started_at - SAME_EVENT_WITHIN, record.started_at + SAME_EVENT_WITHIN
                ),
                AlertRecord.detected_at.between(
                    record.detected_at - SAME_EVENT_WITHIN, record.detected_at + SAME_EVENT_WITHIN
                ),
            ),
            AlertRecord.alert_id.not_in(linked),
        )
        .order_by(AlertRecord.detected_at, AlertRecord.alert_id)
    ).all()
    if not candidates:
        return None
    water, new = water_map(session), facts(record)
    primary = next((c for c in candidates if same_event(water, new, facts(c))), None)
    if primary is None:
        return None
    session.add(AlertLink(alert_id=record.alert_id, primary_id=primary.alert_id, linked_at=now))
    record_audit(
        session,
        f"gateway:{record.gateway_id}",
        "link",
        alert_target(record.alert_id),
        {"same_event_as": primary.alert_id},
        at=now,
    )
    return primary.alert_id
