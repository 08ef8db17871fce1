"""Alerts: the filtered list, one alert with its chart and history, and its actions.

Actions call the workflow service (``workflow/service.py``); a refusal there (bad
input, or a conflict such as an alert already acknowledged by someone else) comes
back as a message on the alert's page.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Query, Request, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from leaksense.core.errors import Conflict, InvalidInput
from leaksense.core.messages import AlertKind
from leaksense.server.api.deps import SessionDep, StoreDep
from leaksense.server.dashboard import catalogue as cat
from leaksense.server.dashboard.auth import AlertActor, AlertViewer, CsrfForm
from leaksense.server.dashboard.charts import event_chart, event_window
from leaksense.server.dashboard.web import (
    PREFIX,
    DashboardRoute,
    flash,
    form_text,
    lang_of,
    redirect,
    render,
    zone_of,
)
from leaksense.server.db import Dma
from leaksense.server.users.service import list_users
from leaksense.server.workflow import audit
from leaksense.server.workflow import service as workflow
from leaksense.server.workflow.service import RESOLUTIONS, STATES
from leaksense.server.workflow.views import AlertView

router = APIRouter(prefix=f"{PREFIX}/alerts", route_class=DashboardRoute, include_in_schema=False)

Filter = Annotated[str, Query()]
STATE_ORDER = ("open", "acknowledged", "resolved")
RESOLUTION_ORDER = ("repaired", "false_alarm", "planned_work", "sensor_fault")
KINDS = tuple(k.value for k in AlertKind)
MAX_SHOWN = 200


def alerts_in(
    session: Session, dma_id: str | None, *, state: str | None = None, kind: str | None = None
) -> list[AlertView]:
    """Alerts of a DMA (its own and its meters'), or of the whole network."""
    return workflow.list_alerts(session, state=state, dma_id=dma_id, kind=kind, limit=MAX_SHOWN)


def _page(alert_id: str) -> str:
    return f"{PREFIX}/alerts/{quote(alert_id, safe='')}"


@router.get("")
def alert_list(
    *, request: Request, user: AlertViewer, session: SessionDep,
    state: Filter = "", dma: Filter = "", kind: Filter = "",
) -> Response:  # fmt: skip
    """Newest first, filtered by state, DMA and kind (empty: any)."""
    alerts = alerts_in(session, dma or None, state=state or None, kind=kind or None)
    dmas = session.execute(select(Dma.dma_id, Dma.name).order_by(Dma.dma_id)).all()
    return render(
        request, "alerts.html", user, alerts=alerts, dmas=dmas,
        states=[s for s in STATE_ORDER if s in STATES], kinds=KINDS,
        selected={"state": state, "dma": dma, "kind": kind},
    )  # fmt: skip


@router.get("/{alert_id}")
def alert_detail(
    *, request: Request, alert_id: str, user: AlertViewer, session: SessionDep, store: StoreDep
) -> Response:
    """The alert, the flow around it, its history and the actions its state allows."""
    alert = workflow.get_alert(session, alert_id)
    lang = lang_of(request)
    now = datetime.now(UTC)
    chart = event_chart(
        session, store, sensor_id=alert.sensor_id, dma_id=alert.dma_id,
        window=event_window(alert.started_at, alert.detected_at, alert.ended_at, now),
        marks=[alert.started_at, alert.detected_at], title=cat.t("chart_title", lang), lang=lang,
        zone=zone_of(request),
    )  # fmt: skip
    assignees = [u.username for u in list_users(session) if u.active]
    return render(
        request, "alert.html", user, alert=alert, chart=chart,
        history=audit.history(session, alert_id), assignees=assignees,
        resolutions=[r for r in RESOLUTION_ORDER if r in RESOLUTIONS],
        explanation=alert.explanation(lang),
    )  # fmt: skip


def _act(request: Request, alert_id: str, action: Callable[[], AlertView]) -> Response:
    try:
        action()
    except (InvalidInput, Conflict) as exc:
        flash(request, "error", str(exc))
    else:
        flash(request, "ok", cat.t("done", lang_of(request)))
    return redirect(_page(alert_id))


@router.post("/{alert_id}/acknowledge")
def acknowledge(
    *, request: Request, alert_id: str, form: CsrfForm, user: AlertActor, session: SessionDep
) -> Response:
    return _act(
        request, alert_id,
        lambda: workflow.acknowledge(session, alert_id, actor=user.username, now=datetime.now(UTC)),
    )  # fmt: skip


@router.post("/{alert_id}/assign")
def assign(
    *, request: Request, alert_id: str, form: CsrfForm, user: AlertActor, session: SessionDep
) -> Response:
    assignee = form_text(form, "assignee", 128)
    return _act(
        request, alert_id,
        lambda: workflow.assign(
            session, alert_id, assignee=assignee, actor=user.username, now=datetime.now(UTC)
        ),
    )  # fmt: skip


def _flow(text: str) -> float | None:
    if not text:
        return None
    try:
        return float(text.replace(",", "."))
    except ValueError as exc:
        raise InvalidInput(f"not a flow in m³/h: {text!r}") from exc


@router.post("/{alert_id}/resolve")
def resolve(
    *, request: Request, alert_id: str, form: CsrfForm, user: AlertActor, session: SessionDep
) -> Response:
    resolution = form_text(form, "resolution", 32)
    notes = form_text(form, "notes", 2000)
    flow_text = form_text(form, "repaired_flow_m3h", 32)
    return _act(
        request, alert_id,
        lambda: workflow.resolve(
            session, alert_id, resolution=resolution, actor=user.username,
            now=datetime.now(UTC), notes=notes,
            repaired_flow_m3h=_flow(flow_text) if resolution == "repaired" else None,
        ),
    )  # fmt: skip


@router.post("/{alert_id}/note")
def note(
    *, request: Request, alert_id: str, form: CsrfForm, user: AlertActor, session: SessionDep
) -> Response:
    text = form_text(form, "text", 2000)
    return _act(
        request, alert_id,
        lambda: workflow.add_note(
            session, alert_id, actor=user.username, now=datetime.now(UTC), text=text
        ),
    )  # fmt: skip
