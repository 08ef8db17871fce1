"""Users (admins only): list, add, change role, reset password, disable, enable.

Each change is made and audited by the users service (``users/service.py``), the one
the CLI calls, so its rules hold here too: the last active admin keeps their role.
"""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request, Response

from leaksense.core.errors import Conflict, InvalidInput, NotFoundError
from leaksense.server.api.deps import SessionDep
from leaksense.server.dashboard import catalogue as cat
from leaksense.server.dashboard.auth import CsrfForm, UserAdmin, start_session
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


@router.post("/{username}/role")
def change_role(
    request: Request, username: str, form: CsrfForm, user: UserAdmin, session: SessionDep
) -> Response:
    """Give ``username`` the posted role (refused for the last active admin)."""
    try:
        changed = service.set_role(
            session, username, form_text(form, "role", 16), actor=user.username,
            now=datetime.now(UTC),
        )  # fmt: skip
    except (InvalidInput, Conflict, NotFoundError) as exc:
        flash(request, "error", str(exc))
        return redirect(PAGE)
    role = cat.label_of("role", changed.role, lang_of(request))
    return _done(request, f"{changed.username} → {role}")


@router.post("/{username}/password")
def reset_password(
    request: Request, username: str, form: CsrfForm, user: UserAdmin, session: SessionDep
) -> Response:
    """Set a new password for ``username``; that user's open sessions end (the admin's
    own session goes on when they reset their own password)."""
    password = form_text(form, "password", 1024, strip=False)
    try:
        changed = service.set_password(
            session, username, password, actor=user.username, now=datetime.now(UTC)
        )
    except (InvalidInput, NotFoundError) as exc:
        flash(request, "error", str(exc))
        return redirect(PAGE)
    if changed.username == user.username:
        start_session(request, changed)
    return _done(request, f"{changed.username} ({cat.t('password', lang_of(request)).lower()})")
