"""The alert workflow: open → acknowledged → resolved, with notes and an audit log.

Every function takes the caller's SQLAlchemy session; the ones that change an alert
commit their change, its audit entry and its side effects (cancelled notifications,
false-alarm feedback) in one transaction, and roll back on refusal.

A state change is one conditional ``UPDATE alerts SET state = … WHERE state IN
(allowed)``: of two servers acknowledging the same alert at once, the database lets
exactly one update the row; the other sees no row changed and gets a
:class:`Conflict` (HTTP 409) that says who was first. An unknown alert is a
:class:`NotFoundError`, bad input an :class:`InvalidInput`.

Who did it (``actor``) is a free string chosen by the caller: a user name for the
dashboard, ``token:<name>`` for the API, ``gateway:<id>`` or ``system`` otherwise.
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import datetime
from typing import Any, Final, Literal, get_args

from sqlalchemy import ColumnElement, or_, select, update
from sqlalchemy.orm import Session

from leaksense.core.errors import Conflict, InvalidInput, NotFoundError
from leaksense.server.db import AlertRecord, DmaMeter, Sensor, upsert_statement
from leaksense.server.workflow.audit import MAX_ACTOR_CHARS, alert_target, record_audit
from leaksense.server.workflow.feedback import refresh_sensitivity
from leaksense.server.workflow.grouping import UNRESOLVED, linked_to, unlink
from leaksense.server.workflow.models import (
    AlertLink,
    AlertNote,
    AlertVerdictFlow,
    AlertWorkflow,
    NotificationRecord,
)
from leaksense.server.workflow.views import AlertView, NoteView, alert_view

AlertState = Literal["open", "acknowledged", "resolved"]
Resolution = Literal["repaired", "false_alarm", "planned_work", "sensor_fault"]
STATES: Final = frozenset(get_args(AlertState))
RESOLUTIONS: Final = frozenset(get_args(Resolution))
MAX_LIST: Final = 1000
MAX_NOTE_CHARS: Final = 2000
MAX_REPAIRED_FLOW_M3H: Final = 10_000.0
ENDS_THE_LEAK: Final = frozenset({"repaired", "planned_work"})
"""Resolutions that close every alert of the event (``_resolve_event``)."""


def list_alerts(
    session: Session,
    *,
    state: str | None = None,
    dma_id: str | None = None,
    kind: str | None = None,
    limit: int = 200,
) -> list[AlertView]:
    """Alerts, newest detection first, filtered by state, DMA and kind (without notes).

    ``dma_id`` selects the DMA's own alerts and those of its sensors: customer meters
    in it (``sensors.dma_id``) and meters on its boundary (``dma_meters``).
    """
    if state is not None and state not in STATES:
        raise InvalidInput(f"unknown alert state {state!r}: one of {sorted(STATES)}")
    if not 1 <= limit <= MAX_LIST:
        raise InvalidInput(f"limit must be within 1..{MAX_LIST}, not {limit}")
    query = (
        select(AlertRecord, AlertWorkflow, AlertLink.primary_id)
        .outerjoin(AlertWorkflow, AlertWorkflow.alert_id == AlertRecord.alert_id)
        .outerjoin(AlertLink, AlertLink.alert_id == AlertRecord.alert_id)
    )
    if state is not None:
        query = query.where(AlertRecord.state == state)
    if dma_id is not None:
        query = query.where(_in_dma(dma_id))
    if kind is not None:
        query = query.where(AlertRecord.kind == kind)
    query = query.order_by(AlertRecord.detected_at.desc(), AlertRecord.alert_id).limit(limit)
    rows = session.execute(query.execution_options(populate_existing=True)).all()
    return [alert_view(a, w, same_event_as=primary) for a, w, primary in rows]


def _in_dma(dma_id: str) -> ColumnElement[bool]:
    """Alerts about the DMA, its customer meters, or the meters on its boundary."""
    sensors = select(Sensor.sensor_id).where(Sensor.dma_id == dma_id)
    meters = select(DmaMeter.sensor_id).where(DmaMeter.dma_id == dma_id)
    return or_(
        AlertRecord.dma_id == dma_id,
        AlertRecord.sensor_id.in_(sensors),
        AlertRecord.sensor_id.in_(meters),
    )


def get_alert(session: Session, alert_id: str) -> AlertView:
    """One alert with its workflow and notes, or :class:`NotFoundError`."""
    row = session.execute(
        select(AlertRecord, AlertWorkflow)
        .outerjoin(AlertWorkflow, AlertWorkflow.alert_id == AlertRecord.alert_id)
        .where(AlertRecord.alert_id == alert_id)
        .execution_options(populate_existing=True)
    ).first()
    if row is None:
        raise NotFoundError(f"no alert {alert_id!r}")
    notes = session.scalars(
        select(AlertNote)
        .where(AlertNote.alert_id == alert_id)
        .order_by(AlertNote.created_at, AlertNote.id)
    ).all()
    view = alert_view(
        row[0],
        row[1],
        tuple(NoteView(n.created_at, n.author, n.text) for n in notes),
        session.scalar(select(AlertLink.primary_id).where(AlertLink.alert_id == alert_id)),
    )
    return replace(view, also_seen=tuple(linked_to(session, alert_id)))


def acknowledge(session: Session, alert_id: str, *, actor: str, now: datetime) -> AlertView:
    """open → acknowledged; the actor becomes the assignee if there is none.

    Escalation stops and notifications not yet sent are cancelled. Acknowledging an
    alert that is no longer open raises :class:`Conflict` naming who did it first.
    """
    _check_actor(actor)
    try:
        _transition(session, alert_id, ("open",), "acknowledged", "acknowledge")
        flow = ensure_workflow(session, alert_id, now)
        before = _snapshot("open", flow)
        flow.acknowledged_at, flow.acknowledged_by = now, actor
        flow.assignee = flow.assignee or actor
        _cancel_pending(session, alert_id, now)
        record_audit(
            session,
            actor,
            "acknowledge",
            alert_target(alert_id),
            {"before": before, "after": _snapshot("acknowledged", flow)},
            at=now,
        )
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return get_alert(session, alert_id)


def assign(
    session: Session, alert_id: str, *, assignee: str, actor: str, now: datetime
) -> AlertView:
    """Give an open or acknowledged alert to ``assignee`` (a resolved one: Conflict)."""
    _check_actor(actor)
    assignee = assignee.strip()
    if not assignee or len(assignee) > MAX_ACTOR_CHARS:
        raise InvalidInput(f"assignee must be 1..{MAX_ACTOR_CHARS} characters")
    try:
        state = _transition(session, alert_id, ("open", "acknowledged"), None, "assign")
        flow = ensure_workflow(session, alert_id, now)
        before = _snapshot(state, flow)
        flow.assignee = assignee
        record_audit(
            session,
            actor,
            "assign",
            alert_target(alert_id),
            {"before": before, "after": _snapshot(state, flow)},
            at=now,
        )
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return get_alert(session, alert_id)


def resolve(
    session: Session,
    alert_id: str,
    *,
    resolution: str,
    actor: str,
    now: datetime,
    notes: str = "",
    repaired_flow_m3h: float | None = None,
) -> AlertView:
    """open/acknowledged → resolved with a resolution (and, if repaired, the measured flow).

    ``notes`` (if any) is kept as a note. A ``false_alarm`` updates the series'
    sensitivity (``workflow/feedback.py``); a ``repaired`` one feeds the before/after
    report (``services/repairs.py``).
    """
    _check_actor(actor)
    _check_resolution(resolution, repaired_flow_m3h)
    _check_text(notes, allow_empty=True)
    try:
        if notes.strip():
            session.add(AlertNote(alert_id=alert_id, created_at=now, author=actor, text=notes))
        details = {"notes": notes}
        _resolve_one(
            session, alert_id, resolution=resolution, actor=actor, now=now,
            repaired_flow_m3h=repaired_flow_m3h, details=details,
        )  # fmt: skip
        _resolve_event(session, alert_id, resolution, actor, now)
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return get_alert(session, alert_id)


def _resolve_one(
    session: Session,
    alert_id: str,
    *,
    resolution: str,
    actor: str,
    now: datetime,
    repaired_flow_m3h: float | None,
    details: dict[str, Any],
) -> None:
    """One alert → resolved, audited (``details`` added to the entry), its pending
    notifications cancelled and its series' sensitivity refreshed (no commit)."""
    was = _transition(session, alert_id, UNRESOLVED, "resolved", "resolve")
    flow = ensure_workflow(session, alert_id, now)
    before = _snapshot(was, flow)
    flow.resolved_at, flow.resolved_by = now, actor
    flow.resolution, flow.repaired_flow_m3h = resolution, repaired_flow_m3h
    if resolution not in ENDS_THE_LEAK:
        _keep_verdict_flow(session, alert_id, now)
    _cancel_pending(session, alert_id, now)
    entry = {"before": before, "after": _snapshot("resolved", flow), **details}
    record_audit(session, actor, "resolve", alert_target(alert_id), entry, at=now)
    session.flush()
    refresh_sensitivity(session, _series_of(session, alert_id), now)


def _resolve_event(
    session: Session, primary_id: str, resolution: str, actor: str, now: datetime
) -> None:
    """What resolving an event's first alert does to the other unresolved alerts of
    its event (``grouping.py``).

    A repair or planned work ends the leak every series saw: they are resolved the
    same way (the field-measured flow stays on the first alert: one leak is one
    repair, ``services/repairs.py``). A false alarm or a sensor fault was judged on
    the first alert's series only: they leave the event and are notified on their own.
    """
    for alert_id in linked_to(session, primary_id):
        state = session.scalar(select(AlertRecord.state).where(AlertRecord.alert_id == alert_id))
        if state not in UNRESOLVED:
            continue
        if resolution in ENDS_THE_LEAK:
            details = {"same_event_as": primary_id}
            _resolve_one(
                session, alert_id, resolution=resolution, actor=actor, now=now,
                repaired_flow_m3h=None, details=details,
            )  # fmt: skip
        else:
            unlink(session, alert_id, actor=actor, reason=resolution, now=now)


def _keep_verdict_flow(session: Session, alert_id: str, now: datetime) -> None:
    """Remember the flow the alert reported when it was judged not a leak."""
    record = session.get(AlertRecord, alert_id, populate_existing=True)
    assert record is not None
    session.merge(AlertVerdictFlow(alert_id=alert_id, flow_m3h=record.flow_m3h, judged_at=now))


def add_note(session: Session, alert_id: str, *, actor: str, now: datetime, text: str) -> AlertView:
    """Add a note to an alert in any state."""
    _check_actor(actor)
    _check_text(text, allow_empty=False)
    try:
        if session.get(AlertRecord, alert_id) is None:
            raise NotFoundError(f"no alert {alert_id!r}")
        session.add(AlertNote(alert_id=alert_id, created_at=now, author=actor, text=text))
        record_audit(session, actor, "note", alert_target(alert_id), {"text": text}, at=now)
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return get_alert(session, alert_id)


def ensure_workflow(session: Session, alert_id: str, now: datetime) -> AlertWorkflow:
    """The alert's workflow row, created if missing (alerts stored before the workflow).

    ``INSERT … ON CONFLICT DO NOTHING``: two instances creating it at once make one.
    """
    flow = session.get(AlertWorkflow, alert_id, populate_existing=True)
    if flow is not None:
        return flow
    insert = upsert_statement(session, AlertWorkflow)
    session.execute(
        insert.values(
            alert_id=alert_id, escalation_level=-1, escalation_base_at=now, reopened_count=0
        ).on_conflict_do_nothing(index_elements=[AlertWorkflow.alert_id])
    )
    flow = session.get(AlertWorkflow, alert_id)
    assert flow is not None
    return flow


def _transition(
    session: Session,
    alert_id: str,
    allowed: tuple[str, ...],
    to_state: str | None,
    verb: str,
) -> str:
    """Move the alert to ``to_state`` (None: keep it) if it is in ``allowed``.

    Returns the state it was in. The conditional UPDATE comes first so that it takes
    the row (PostgreSQL) or the database (SQLite) write lock before anything is read.
    """
    target = AlertRecord.state if to_state is None else to_state
    result = session.execute(
        update(AlertRecord)
        .where(AlertRecord.alert_id == alert_id, AlertRecord.state.in_(allowed))
        .values(state=target)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount == 1:  # type: ignore[attr-defined]
        if to_state is None:
            state = session.scalar(
                select(AlertRecord.state).where(AlertRecord.alert_id == alert_id)
            )
            return str(state)
        if len(allowed) == 1:
            return allowed[0]
        flow = session.get(AlertWorkflow, alert_id, populate_existing=True)
        return "acknowledged" if flow is not None and flow.acknowledged_at else "open"
    session.rollback()
    record = session.get(AlertRecord, alert_id, populate_existing=True)
    if record is None:
        raise NotFoundError(f"no alert {alert_id!r}")
    flow = session.get(AlertWorkflow, alert_id, populate_existing=True)
    raise Conflict(
        f"alert {alert_id!r} is {record.state}{_by_whom(record.state, flow)}: cannot {verb} it"
    )


def _by_whom(state: str, flow: AlertWorkflow | None) -> str:
    if flow is None:
        return ""
    if state == "acknowledged" and flow.acknowledged_at is not None:
        return f" (acknowledged by {flow.acknowledged_by} at {flow.acknowledged_at:{_ISO}})"
    if state == "resolved" and flow.resolved_at is not None:
        return f" ({flow.resolution} by {flow.resolved_by} at {flow.resolved_at:{_ISO}})"
    return ""


_ISO: Final = "%Y-%m-%dT%H:%M:%SZ"


def _cancel_pending(session: Session, alert_id: str, now: datetime) -> None:
    """Cancel the alert's notifications that no worker holds right now."""
    session.execute(
        update(NotificationRecord)
        .where(
            NotificationRecord.alert_id == alert_id,
            NotificationRecord.sent_at.is_(None),
            NotificationRecord.failed_at.is_(None),
            NotificationRecord.cancelled_at.is_(None),
            (NotificationRecord.lease_until.is_(None)) | (NotificationRecord.lease_until < now),
        )
        .values(cancelled_at=now, claim_token=None, lease_until=None)
        .execution_options(synchronize_session=False)
    )


def _series_of(session: Session, alert_id: str) -> str:
    record = session.get(AlertRecord, alert_id)
    assert record is not None
    return record.sensor_id or record.dma_id or ""


def _snapshot(state: str, flow: AlertWorkflow) -> dict[str, Any]:
    return {
        "state": state,
        "assignee": flow.assignee,
        "resolution": flow.resolution,
        "repaired_flow_m3h": flow.repaired_flow_m3h,
    }


def _check_actor(actor: str) -> None:
    if not actor.strip() or len(actor) > MAX_ACTOR_CHARS:
        raise InvalidInput(f"actor must be 1..{MAX_ACTOR_CHARS} characters")


def _check_text(text: str, *, allow_empty: bool) -> None:
    if not allow_empty and not text.strip():
        raise InvalidInput("a note needs some text")
    if len(text) > MAX_NOTE_CHARS:
        raise InvalidInput(f"a note has at most {MAX_NOTE_CHARS} characters, not {len(text)}")


def _check_resolution(resolution: str, repaired_flow_m3h: float | None) -> None:
    if resolution not in RESOLUTIONS:
        raise InvalidInput(f"unknown resolution {resolution!r}: one of {sorted(RESOLUTIONS)}")
    if repaired_flow_m3h is None:
        return
    if resolution != "repaired":
        raise InvalidInput("repaired_flow_m3h is only for resolution 'repaired'")
    if not math.isfinite(repaired_flow_m3h) or not 0 <= repaired_flow_m3h <= MAX_REPAIRED_FLOW_M3H:
        raise InvalidInput(f"repaired_flow_m3h must be within 0..{MAX_REPAIRED_FLOW_M3H:g} m³/h")
