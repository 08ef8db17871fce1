"""What ingest does with an alert a gateway sent: start or keep its workflow.

One event is one ``alert_id``: the gateway re-sends it with fresher figures while it
lasts and with ``ended_at`` when it is over, and ingest upserts the ``alerts`` row
without touching its ``state``. So an acknowledged alert stays acknowledged however
many updates follow, and a resolved one stays resolved, except in the cases below.
A new leak alert that another series already raised for the same leak joins that
alert's event (``grouping.py``).

Reopening:

* an alert resolved as ``repaired`` or ``planned_work`` that the gateway still reports
  as ongoing (no ``ended_at``) with an ``updated_at`` more than :data:`REOPEN_AFTER`
  after the resolution is **reopened** (same ``alert_id``, state ``open``, resolution
  cleared, ``reopened_count`` + 1, an audit entry by ``gateway:<id>``): the leak was
  not fixed, and people are notified again. The hour of grace covers the detector's
  lag after a repair;
* an alert resolved as ``false_alarm`` or ``sensor_fault`` stands (the people said
  it was not a leak, and the feedback lowers the sensor's sensitivity) until the
  gateway reports a flow :data:`RISE_FACTOR` times the one it had at the verdict,
  more than :data:`REOPEN_AFTER` after it: the gateway keeps one event open and
  folds a new leak on the same series into it, which must not stay silent.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final

from sqlalchemy.orm import Session

from leaksense.server.db import AlertRecord
from leaksense.server.workflow.audit import alert_target, record_audit
from leaksense.server.workflow.feedback import refresh_sensitivity
from leaksense.server.workflow.grouping import link_same_event
from leaksense.server.workflow.models import AlertVerdictFlow, AlertWorkflow
from leaksense.server.workflow.service import ensure_workflow

REOPEN_AFTER: Final = timedelta(hours=1)
REOPENING_RESOLUTIONS: Final = frozenset({"repaired", "planned_work"})
RISE_FACTOR: Final = 2.0
"""A dismissed alert whose reported flow reaches this multiple of its flow at the
verdict is reopened: a new leak came on top of what was judged normal."""


def alert_received(session: Session, record: AlertRecord, now: datetime, *, created: bool) -> None:
    """Called by ingest after it upserted ``record``, in its transaction (no commit)."""
    if created:
        session.flush()  # the alert row first: its workflow row refers to it
        session.add(
            AlertWorkflow(
                alert_id=record.alert_id,
                escalation_level=-1,
                escalation_base_at=now,
                reopened_count=0,
            )
        )
        link_same_event(session, record, now)
        return
    if record.state != "resolved" or record.ended_at is not None or record.updated_at is None:
        return
    flow = ensure_workflow(session, record.alert_id, now)
    if flow.resolved_at is None or record.updated_at <= flow.resolved_at + REOPEN_AFTER:
        return
    if flow.resolution in REOPENING_RESOLUTIONS:
        _reopen(session, record, flow, now, "the gateway still reports the leak")
        return
    verdict = session.get(AlertVerdictFlow, record.alert_id)
    if verdict is not None and record.flow_m3h >= RISE_FACTOR * max(verdict.flow_m3h, 0.0):
        _reopen(
            session,
            record,
            flow,
            now,
            f"its flow rose from {verdict.flow_m3h:.3f} to {record.flow_m3h:.3f} m³/h "
            f"after it was judged {flow.resolution}",
        )


def _reopen(
    session: Session, record: AlertRecord, flow: AlertWorkflow, now: datetime, because: str
) -> None:
    before = {
        "state": "resolved",
        "resolution": flow.resolution,
        "resolved_at": flow.resolved_at,
        "resolved_by": flow.resolved_by,
    }
    record.state = "open"
    flow.resolution = flow.resolved_at = flow.resolved_by = flow.repaired_flow_m3h = None
    flow.acknowledged_at = flow.acknowledged_by = None
    flow.escalation_level, flow.escalation_base_at = -1, now
    flow.reopened_count += 1
    record_audit(
        session,
        f"gateway:{record.gateway_id}",
        "reopen",
        alert_target(record.alert_id),
        {
            "before": before,
            "after": {"state": "open"},
            "reported_at": record.updated_at,
            "because": because,
        },
        at=now,
    )
    session.flush()
    refresh_sensitivity(session, record.sensor_id or record.dma_id or "", now)
