"""Alert workflow endpoints: list, read, acknowledge, assign, resolve, notes, history.

Reading needs a ``reader``, ``admin`` or ``integration`` token; changing an alert an
``admin`` or ``integration`` token (recorded in the audit log as ``token:<name>``). An
``integration`` token (a ticketing or SMS system) can do nothing else: no reports, no
ingest. A change the alert's state forbids
(acknowledging an alert someone acknowledged first) is a 409 that says who did it.
``GET /sensitivity`` gives gateways (and readers) each series' false-alarm threshold
multiplier (``workflow/feedback.py``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from leaksense.core.errors import AuthenticationError
from leaksense.server.api.deps import (
    AlertActorToken,
    AlertReaderToken,
    Credentials,
    SessionDep,
)
from leaksense.server.db import ApiToken
from leaksense.server.domain.sensitivity import MAX_MULTIPLIER
from leaksense.server.notify import outbox
from leaksense.server.services.entities import authenticate
from leaksense.server.workflow import audit, service
from leaksense.server.workflow.feedback import list_dismissed, list_sensitivity
from leaksense.server.workflow.service import MAX_NOTE_CHARS, Resolution

router = APIRouter(prefix="/api/v1", tags=["alerts"])


class AssignBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    assignee: Annotated[str, Field(min_length=1, max_length=128)]


class ResolveBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    resolution: Resolution
    notes: Annotated[str, Field(max_length=MAX_NOTE_CHARS)] = ""
    repaired_flow_m3h: Annotated[float | None, Field(ge=0, le=10_000, allow_inf_nan=False)] = None


class NoteBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: Annotated[str, Field(min_length=1, max_length=MAX_NOTE_CHARS)]


def _actor(token: ApiToken) -> str:
    return f"token:{token.name}"


def _now() -> datetime:
    return datetime.now(UTC)


@router.get("/alerts")
def list_alerts(
    session: SessionDep,
    _token: AlertReaderToken,
    state: Annotated[str | None, Query(description="open, acknowledged or resolved")] = None,
    dma: Annotated[str | None, Query(description="DMA id")] = None,
    kind: Annotated[str | None, Query(description="burst, background_leak, ...")] = None,
    limit: Annotated[int, Query(ge=1, le=service.MAX_LIST)] = 200,
) -> list[dict[str, Any]]:
    alerts = service.list_alerts(session, state=state, dma_id=dma, kind=kind, limit=limit)
    return [a.to_json() for a in alerts]


@router.get("/alerts/{alert_id}")
def get_alert(alert_id: str, session: SessionDep, _token: AlertReaderToken) -> dict[str, Any]:
    return service.get_alert(session, alert_id).to_json()


@router.get("/alerts/{alert_id}/history")
def alert_history(
    alert_id: str, session: SessionDep, _token: AlertReaderToken
) -> list[dict[str, Any]]:
    return [e.to_json() for e in audit.history(session, alert_id)]


@router.post("/alerts/{alert_id}/acknowledge")
def acknowledge(alert_id: str, session: SessionDep, token: AlertActorToken) -> dict[str, Any]:
    return service.acknowledge(session, alert_id, actor=_actor(token), now=_now()).to_json()


@router.post("/alerts/{alert_id}/assign")
def assign(
    alert_id: str, body: AssignBody, session: SessionDep, token: AlertActorToken
) -> dict[str, Any]:
    view = service.assign(
        session, alert_id, assignee=body.assignee, actor=_actor(token), now=_now()
    )
    return view.to_json()


@router.post("/alerts/{alert_id}/resolve")
def resolve(
    alert_id: str, body: ResolveBody, session: SessionDep, token: AlertActorToken
) -> dict[str, Any]:
    view = service.resolve(
        session,
        alert_id,
        resolution=body.resolution,
        actor=_actor(token),
        now=_now(),
        notes=body.notes,
        repaired_flow_m3h=body.repaired_flow_m3h,
    )
    return view.to_json()


@router.post("/alerts/{alert_id}/notes")
def add_note(
    alert_id: str, body: NoteBody, session: SessionDep, token: AlertActorToken
) -> dict[str, Any]:
    return service.add_note(
        session, alert_id, actor=_actor(token), now=_now(), text=body.text
    ).to_json()


@router.get("/notifications/stats")
def notification_stats(session: SessionDep, _token: AlertReaderToken) -> dict[str, int]:
    """The notification outbox: waiting, sent, given up (see the logs), cancelled."""
    stats = outbox.stats(session)
    return {
        "pending": stats.pending,
        "sent": stats.sent,
        "failed": stats.failed,
        "cancelled": stats.cancelled,
    }


def _any_token(session: SessionDep, credentials: Credentials) -> ApiToken:
    if credentials is None:
        raise AuthenticationError("missing bearer token (Authorization: Bearer <token>)")
    return authenticate(session, credentials.credentials, ("gateway", "reader", "admin"))


@router.get("/sensitivity")
def sensitivity(
    session: SessionDep, token: Annotated[ApiToken, Depends(_any_token)]
) -> dict[str, Any]:
    """Detection threshold multipliers per series (1.0 = as trained; at most 2.0), and
    the dismissed alerts the asking gateway (a reader: any gateway) still reports."""
    rows = list_sensitivity(session, _now())
    gateway_id = token.gateway_id if token.kind == "gateway" else None
    return {
        "max_multiplier": MAX_MULTIPLIER,
        "series": {
            r.series_id: {
                "threshold_multiplier": r.threshold_multiplier,
                "false_alarms": r.false_alarms,
                "updated_at": r.updated_at.isoformat(),
            }
            for r in rows
        },
        "dismissed": [
            {
                "alert_id": d.alert_id,
                "series_id": d.series_id,
                "flow_m3h": d.flow_m3h,
                "resolution": d.resolution,
                "judged_at": d.judged_at.isoformat(),
            }
            for d in list_dismissed(session, gateway_id)
        ],
    }
