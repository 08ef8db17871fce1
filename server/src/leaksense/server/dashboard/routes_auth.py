"""Login, logout, language switch, the stylesheet."""

from __future__ import annotations

from datetime import UTC, datetime
from importlib.resources import files
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import RedirectResponse

from leaksense.core.errors import AuthenticationError, RateLimited
from leaksense.server.api.deps import SessionDep
from leaksense.server.dashboard import catalogue as cat
from leaksense.server.dashboard.auth import COOKIE_PATH, CsrfForm, start_session
from leaksense.server.dashboard.web import (
    PREFIX,
    DashboardRoute,
    flash,
    form_text,
    lang_of,
    redirect,
    render,
    safe_next,
)
from leaksense.server.render.catalogue import LANGS
from leaksense.server.users.service import login as check_login

router = APIRouter(prefix=PREFIX, route_class=DashboardRoute, include_in_schema=False)
root = APIRouter(include_in_schema=False)

Next = Annotated[str | None, Query()]
LANG_COOKIE_MAX_AGE_S = 365 * 24 * 3600
_CSS = files("leaksense.server") / "static" / "dashboard.css"


@root.get("/")
async def home() -> RedirectResponse:
    return redirect(f"{PREFIX}/alerts")


@router.get("")
@router.get("/")
async def dashboard_home() -> RedirectResponse:
    return redirect(f"{PREFIX}/alerts")


@router.get("/login")
async def login_page(request: Request, next: Next = None) -> Response:
    return render(request, "login.html", None, next=safe_next(next), error=None)


@router.post("/login")
def login(request: Request, form: CsrfForm, session: SessionDep) -> Response:
    """Check the credentials (throttled), start a session, go where the user was going."""
    lang = lang_of(request)
    target = safe_next(form_text(form, "next", 500))
    username = form_text(form, "username", 200)
    ip = request.client.host if request.client else "unknown"
    try:
        user = check_login(
            session,
            username,
            form_text(form, "password", 1024, strip=False),
            ip=ip,
            now=datetime.now(UTC),
        )
    except RateLimited as exc:
        error = cat.t("login_throttled", lang, seconds=int(exc.retry_after_s))
        page = render(request, "login.html", None, 429, next=target, error=error)
        page.headers["Retry-After"] = str(int(exc.retry_after_s))
        return page
    except AuthenticationError:
        error = cat.t("login_failed", lang)
        return render(request, "login.html", None, 401, next=target, error=error)
    start_session(request, user)
    return redirect(target)


@router.post("/logout")
async def logout(request: Request, _form: CsrfForm) -> Response:
    request.session.clear()
    flash(request, "ok", cat.t("logged_out", lang_of(request)))
    return redirect(f"{PREFIX}/login")


@router.get("/lang/{lang}")
async def switch_language(request: Request, lang: str, next: Next = None) -> Response:
    """Remember the chosen language in a cookie and go back."""
    response = redirect(safe_next(next))
    if lang in LANGS:
        response.set_cookie(
            cat.LANG_COOKIE, lang, max_age=LANG_COOKIE_MAX_AGE_S, path=COOKIE_PATH,
            httponly=True, samesite="lax", secure=request.url.scheme == "https",
        )  # fmt: skip
    return response


@router.get("/static/dashboard.css")
async def stylesheet() -> Response:
    return Response(
        _CSS.read_text("utf-8"),
        media_type="text/css",
        headers={"Cache-Control": "public, max-age=3600"},
    )
