"""The audit log: who changed what, when. Entries are added to the caller's
transaction, so a refused change leaves no trace and an accepted one always does."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from leaksense.core.errors import NotFoundError
from leaksense.server.db import AlertRecord
from leaksense.server.workflow.models import AuditRecord

MAX_ACTOR_CHARS: Final = 128


@dataclass(frozen=True, slots=True)
class AuditEntry:
    at: datetime
    actor: str
    action: str
    target: str
    details: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "actor": self.actor,
            "action": self.action,
            "target": self.target,
            "details": self.details,
        }


def record_audit(
    session: Session,
    actor: str,
    action: str,
    target: str,
    details: dict[str, Any],
    *,
    at: datetime | None = None,
) -> None:
    """Add an audit entry to the session's transaction (the caller commits).

    ``target`` is ``kind:id`` (``alert:…``, ``user:…``); ``details`` holds what
    changed, e.g. ``{"before": {...}, "after": {...}}`` (non-JSON values as strings).
    """
    session.add(
        AuditRecord(
            at=at or datetime.now(UTC),
            actor=actor[:MAX_ACTOR_CHARS],
            action=action,
            target=target[:200],
            details_json=json.dumps(details, default=str, sort_keys=True),
        )
    )


def alert_target(alert_id: str) -> str:
    return f"alert:{alert_id}"


def history(session: Session, alert_id: str) -> list[AuditEntry]:
    """The audit entries of an alert, oldest first."""
    if session.get(AlertRecord, alert_id) is None:
        raise NotFoundError(f"no alert {alert_id!r}")
    records = session.scalars(
        select(AuditRecord)
        .where(AuditRecord.target == alert_target(alert_id))
        .order_by(AuditRecord.at, AuditRecord.id)
    ).all()
    return [
        AuditEntry(r.at, r.actor, r.action, r.target, json.loads(r.details_json)) for r in records
    ]
