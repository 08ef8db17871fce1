"""Users (admins only): list, add, disable, enable. Each change is audited by the service."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request, Response

from leaksense.core.errors import Conflict, InvalidInput
from leaksense.server.api.deps import SessionDep
from leaksense.server.dashboard import catalogue as cat
from leaksense.server.dashboard.auth import CsrfForm, UserAdmin
from leaksense.server.dashboard.web import (
    PREFIX,
    DashboardRoute,
    flash,
    form_text,
    lang_of,
    redirect,
    render,
)
from leaksense.server.users import service
from leaksense.server.users.models import ROLES

router = APIRouter(prefix=f"{PREFIX}/users", route_class=DashboardRoute, include_in_schema=False)
PAGE = f"{PREFIX}/users"


@router.get("")
def users_page(request: Request, user: UserAdmin, session: SessionDep) -> Response:
    return render(request, "users.html", user, users=service.list_users(session), roles=ROLES)


def _done(request: Request, change: str) -> Response:
    flash(request, "ok", f"{cat.t('done', lang_of(request))} {change}")
    return redirect(PAGE)


@router.post("")
def add_user(request: Request, form: CsrfForm, user: UserAdmin, session: SessionDep) -> Response:
    password = form_text(form, "password", 1024, strip=False)
    try:
        added = service.add_user(
            session, form_text(form, "username", 64), password, form_text(form, "role", 16),
            actor=user.username, now=datetime.now(UTC),
            display_name=form_text(form, "display_name", 200),
        )  # fmt: skip
    except (InvalidInput, Conflict) as exc:
        flash(request, "error", str(exc))
        return redirect(PAGE)
    return _done(request, added.username)


@router.post("/{username}/disable")
def disable_user(
    request: Request, username: str, form: CsrfForm, user: UserAdmin, session: SessionDep
) -> Response:
    try:
        service.disable_user(session, username, actor=user.username, now=datetime.now(UTC))
    except (InvalidInput, Conflict) as exc:
        flash(request, "error", str(exc))
        return redirect(PAGE)
    return _done(request, username)


@router.post("/{username}/enable")
def enable_user(
    request: Request, username: str, form: CsrfForm, user: UserAdmin, session: SessionDep
) -> Response:
    service.enable_user(session, username, actor=user.username, now=datetime.now(UTC))
    return _done(request, username)
