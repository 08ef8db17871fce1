"""Tables of the alert workflow, on the entity database's declarative base.

The alert itself stays in ``alerts`` (:class:`~leaksense.server.db.AlertRecord`),
whose ``state`` column is the workflow state (``open`` → ``acknowledged`` →
``resolved``), so that reports reading it need no join. What the workflow adds per
alert is in ``alert_workflow``; notes, the audit log, the notification outbox and the
per-series false-alarm feedback have their own tables. Importing this module
registers them with ``Base.metadata`` (``runtime.py`` and ``services/ingest.py`` do).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from leaksense.server.db import Base, UtcDateTime


class AlertWorkflow(Base):
    """What people did with an alert: assignee, acknowledgement, resolution, escalation."""

    __tablename__ = "alert_workflow"
    alert_id: Mapped[str] = mapped_column(ForeignKey("alerts.alert_id"), primary_key=True)
    assignee: Mapped[str | None] = mapped_column(String(128), nullable=True)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    acknowledged_by: Mapped[str | None] = mapped_column(String(128), nullable=True)
    resolved_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    resolved_by: Mapped[str | None] = mapped_column(String(128), nullable=True)
    resolution: Mapped[str | None] = mapped_column(String(16), nullable=True)
    """``repaired`` / ``false_alarm`` / ``planned_work`` / ``sensor_fault``."""
    repaired_flow_m3h: Mapped[float | None] = mapped_column(Float, nullable=True)
    """The repaired leak's flow as measured in the field (None: the estimate stands)."""
    escalation_level: Mapped[int] = mapped_column(Integer, default=0)
    """Index in the on-call list of the last person notified (0: the first)."""
    escalation_base_at: Mapped[datetime] = mapped_column(UtcDateTime)
    """When the escalation clock started: first reception, or the last reopening."""
    reopened_count: Mapped[int] = mapped_column(Integer, default=0)


class AlertNote(Base):
    """A free-text note on an alert (what was found, who was called)."""

    __tablename__ = "alert_notes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    alert_id: Mapped[str] = mapped_column(ForeignKey("alerts.alert_id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    author: Mapped[str] = mapped_column(String(128))
    text: Mapped[str] = mapped_column(Text)


class AuditRecord(Base):
    """One state change: who, when, what, on what, with the before/after in ``details``."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_target_at", "target", "at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(200))
    """``kind:id``, e.g. ``alert:gw1:leak:42`` or ``user:alice``."""
    details_json: Mapped[str] = mapped_column(Text, default="{}")


class NotificationRecord(Base):
    """A notification to send (the durable outbox): one row per channel and recipient.

    Rows are written in the transaction that changes the alert, so a notification
    exists iff its cause was committed. ``dedupe_key`` is unique: two instances that
    enqueue the same event insert one row. A worker claims due rows by setting
    ``claim_token`` and ``lease_until``; it marks them sent after success, or sets
    ``next_attempt_at`` (backoff) after a failure. A crashed worker's lease expires
    and another one sends.
    """

    __tablename__ = "notification_outbox"
    __table_args__ = (Index("ix_notification_outbox_due", "sent_at", "next_attempt_at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dedupe_key: Mapped[str] = mapped_column(String(400), unique=True)
    alert_id: Mapped[str] = mapped_column(String(128), index=True)
    event: Mapped[str] = mapped_column(String(16))
    """``opened`` / ``escalated`` / ``reopened``."""
    channel: Mapped[str] = mapped_column(String(16))
    """``email`` or ``webhook``."""
    recipient: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(String(300))
    body_text: Mapped[str] = mapped_column(Text)
    payload_json: Mapped[str] = mapped_column(Text)
    urgent: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime)
    """Not before then: quiet hours and retry backoff both move it."""
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    claim_token: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    failed_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    """Given up after ``notify_max_attempts``; stays for inspection."""
    cancelled_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    """Not sent because the alert was acknowledged or resolved before it went out."""
    last_error: Mapped[str | None] = mapped_column(String(500), nullable=True)


class SeriesSensitivity(Base):
    """False-alarm feedback of one sensor (or DMA): its detection threshold multiplier."""

    __tablename__ = "series_sensitivity"
    series_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    false_alarms: Mapped[int] = mapped_column(Integer, default=0)
    """``false_alarm`` resolutions of its alerts within the feedback window."""
    threshold_multiplier: Mapped[float] = mapped_column(Float, default=1.0)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class AlertLink(Base):
    """An alert that is the same event as an earlier one (``domain/same_water.py``):
    another series saw the same leak. It is shown under its ``primary_id``, is not
    notified while that one is unresolved, and is resolved with it."""

    __tablename__ = "alert_links"
    alert_id: Mapped[str] = mapped_column(ForeignKey("alerts.alert_id"), primary_key=True)
    primary_id: Mapped[str] = mapped_column(ForeignKey("alerts.alert_id"), index=True)
    linked_at: Mapped[datetime] = mapped_column(UtcDateTime)


class AlertVerdictFlow(Base):
    """The leak flow an alert reported when people judged it not a leak (a false
    alarm, a sensor fault): if the gateway later reports twice that, it is reopened
    (``received.py``), so a real leak that starts under a dismissed alert is told."""

    __tablename__ = "alert_verdict_flows"
    alert_id: Mapped[str] = mapped_column(ForeignKey("alerts.alert_id"), primary_key=True)
    flow_m3h: Mapped[float] = mapped_column(Float)
    judged_at: Mapped[datetime] = mapped_column(UtcDateTime)
