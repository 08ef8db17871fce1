"""Sessions, CSRF and roles of the dashboard.

The session is a cookie signed with ``session_secret`` (itsdangerous, through
Starlette's ``SessionMiddleware``): HttpOnly, SameSite=Lax, path ``/dashboard``,
``Secure`` when the request came over HTTPS (uvicorn reads ``X-Forwarded-Proto``
from a proxy it trusts), valid 12 hours from login. It holds the user name, the
user's ``session_epoch`` (a password change or disabling ends older sessions) and a
random CSRF token that every form posts back. The cookie's own expiry restarts
whenever the session changes, so the 12 hours are also checked against ``login_at``.
"""

from __future__ import annotations

import hmac
import logging
import os
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Final

from fastapi import Depends, Request
from starlette.datastructures import FormData
from starlette.middleware.sessions import SessionMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from leaksense.core.errors import ConfigError
from leaksense.server.api.deps import SessionDep
from leaksense.server.settings import ServerSettings
from leaksense.server.users.models import Role
from leaksense.server.users.service import UserView, session_user

log = logging.getLogger(__name__)

SESSION_COOKIE: Final = "leaksense_session"
SESSION_MAX_AGE_S: Final = 12 * 3600
COOKIE_PATH: Final = "/dashboard"
CSRF_FIELD: Final = "csrf_token"
DEV_SECRET_FILE: Final = "session-secret"  # noqa: S105 - a file name

PERMISSIONS: Final[dict[str, frozenset[Role]]] = {
    "alerts.view": frozenset({"technician", "manager", "admin"}),
    "alerts.act": frozenset({"technician", "manager", "admin"}),
    "network.view": frozenset({"technician", "manager", "admin"}),
    "reports.view": frozenset({"manager", "admin"}),
    "users.manage": frozenset({"admin"}),
}
"""Who may do what: the one table the routes check (``require``)."""


class LoginRequired(Exception):
    """No valid session: the dashboard answers with the login page."""


class Forbidden(Exception):
    """The user's role does not allow this (403)."""


class CsrfFailed(Forbidden):
    """A form posted without the session's CSRF token (403)."""


def session_secret(settings: ServerSettings) -> str:
    """The cookie signing key: configured, or in development one kept in ``data_dir``.

    Production without one is a :class:`ConfigError`: the server does not start.
    """
    if settings.session_secret is not None:
        return settings.session_secret.get_secret_value()
    if settings.mode == "production":
        raise ConfigError(
            "production mode needs LEAKSENSE_SERVER_SESSION_SECRET (32+ random characters)"
            " to sign dashboard sessions"
        )
    return _development_secret(settings.data_dir / DEV_SECRET_FILE)


def _development_secret(path: Path) -> str:
    try:
        return path.read_text("utf-8").strip()
    except FileNotFoundError:
        pass
    secret = secrets.token_urlsafe(32)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(secret)
    except FileExistsError:
        return path.read_text("utf-8").strip()
    except OSError as exc:
        log.warning("cannot keep the session secret in %s (%s): sessions end at restart", path, exc)
    return secret


class DashboardSessions:
    """``SessionMiddleware`` that marks the cookie ``Secure`` on HTTPS requests only."""

    def __init__(self, app: ASGIApp, secret_key: str) -> None:
        options = {
            "secret_key": secret_key,
            "session_cookie": SESSION_COOKIE,
            "max_age": SESSION_MAX_AGE_S,
            "path": COOKIE_PATH,
            "same_site": "lax",
        }
        self._plain = SessionMiddleware(app, https_only=False, **options)  # type: ignore[arg-type]
        self._secure = SessionMiddleware(app, https_only=True, **options)  # type: ignore[arg-type]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        secure = scope.get("scheme") in {"https", "wss"}
        await (self._secure if secure else self._plain)(scope, receive, send)


def csrf_token(request: Request) -> str:
    """The session's CSRF token, created on first use."""
    token = request.session.get("csrf")
    if not isinstance(token, str) or not token:
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


async def csrf_form(request: Request) -> FormData:
    """The posted form, once its CSRF token matches the session's (else 403)."""
    form = await request.form()
    expected = request.session.get("csrf")
    given = form.get(CSRF_FIELD)
    if not (isinstance(expected, str) and isinstance(given, str) and expected):
        raise CsrfFailed("missing CSRF token")
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise CsrfFailed("wrong CSRF token")
    return form


CsrfForm = Annotated[FormData, Depends(csrf_form)]


def start_session(request: Request, user: UserView) -> None:
    """A fresh session for ``user`` (nothing from before login is kept but the language)."""
    request.session.clear()
    request.session.update(
        {"user": user.username, "epoch": user.session_epoch, "login_at": int(time.time())}
    )
    csrf_token(request)


def current_user(request: Request, session: SessionDep) -> UserView:
    """The logged-in, active user, or :class:`LoginRequired`."""
    name, epoch = request.session.get("user"), request.session.get("epoch")
    login_at = request.session.get("login_at")
    if not isinstance(name, str) or not isinstance(epoch, int) or not isinstance(login_at, int):
        raise LoginRequired
    if time.time() - login_at > SESSION_MAX_AGE_S:  # the cookie is re-signed at each change
        request.session.clear()
        raise LoginRequired
    user = session_user(session, name, epoch)
    if user is None:
        request.session.clear()
        raise LoginRequired
    request.scope["dashboard_user"] = user  # for the navigation of error pages
    return user


CurrentUser = Annotated[UserView, Depends(current_user)]


def require(permission: str) -> Callable[[UserView], UserView]:
    """Dependency: the current user, if their role has ``permission`` (else 403)."""
    roles = PERMISSIONS[permission]

    def check(user: CurrentUser) -> UserView:
        if user.role not in roles:
            raise Forbidden(f"{user.username} ({user.role}) may not {permission}")
        return user

    return check


def allowed(user: UserView | None, permission: str) -> bool:
    """Whether to show a link or a button (the route checks again)."""
    return user is not None and user.role in PERMISSIONS[permission]


AlertViewer = Annotated[UserView, Depends(require("alerts.view"))]
AlertActor = Annotated[UserView, Depends(require("alerts.act"))]
NetworkViewer = Annotated[UserView, Depends(require("network.view"))]
ReportViewer = Annotated[UserView, Depends(require("reports.view"))]
UserAdmin = Annotated[UserView, Depends(require("users.manage"))]
