"""Page rendering and the dashboard's error pages.

Dashboard routes use :class:`DashboardRoute`, which turns what a route raises into a
page instead of the API's JSON: no session → the login page (303), a role or CSRF
refusal → 403, an unknown alert or DMA → 404, bad input or a conflict (someone else
acknowledged first) → the page again with the message. Errors are logged once here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine, Mapping
from datetime import datetime, tzinfo
from functools import cache
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from fastapi import Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from leaksense.core.errors import (
    Conflict,
    InvalidInput,
    LeaksenseError,
    NotFoundError,
    RateLimited,
)
from leaksense.server.dashboard import catalogue as cat
from leaksense.server.dashboard.auth import (
    COOKIE_PATH,
    CsrfFailed,
    Forbidden,
    LoginRequired,
    allowed,
    csrf_token,
)
from leaksense.server.render.catalogue import Lang
from leaksense.server.runtime import Runtime
from leaksense.server.users.service import UserView

log = logging.getLogger(__name__)

PREFIX = COOKIE_PATH


def lang_of(request: Request) -> Lang:
    return cat.negotiate(
        request.cookies.get(cat.LANG_COOKIE), request.headers.get("accept-language")
    )


def _num(value: float | None, digits: int = 1, lang: Lang = "en") -> str:
    if value is None:
        return "—"
    text = f"{value:,.{digits}f}"
    return text.replace(",", "\u202f").replace(".", ",") if lang == "fr" else text


def zone_of(request: Request) -> ZoneInfo:
    """The zone pages show times in (``display_timezone``; JSON APIs stay in UTC)."""
    runtime: Runtime = request.app.state.runtime
    return runtime.settings.display_zone


def local_time(moment: datetime | None, lang: Lang, zone: tzinfo) -> str:
    """``05/01/2026 04:00 CET``: local time with the zone's abbreviation, which tells
    the two 02:30 of the autumn change apart (CEST, then CET)."""
    if moment is None:
        return "—"
    local = moment.astimezone(zone)
    return local.strftime("%d/%m/%Y %H:%M %Z" if lang == "fr" else "%Y-%m-%d %H:%M %Z")


@cache
def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("leaksense.server", "templates"),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def flash(request: Request, kind: str, text: str) -> None:
    """A message shown once, on the next page (``ok`` or ``error``)."""
    request.session["flash"] = [kind, text]


def render(
    request: Request,
    template: str,
    user: UserView | None,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    """A dashboard page in the request's language."""
    lang = lang_of(request)
    zone = zone_of(request)
    message = request.session.pop("flash", None)
    html = (
        _environment()
        .get_template(f"dashboard/{template}")
        .render(
            lang=lang,
            other_lang="en" if lang == "fr" else "fr",
            t=lambda key, **p: cat.t(key, lang, **p),
            word=lambda prefix, value: cat.label_of(prefix, value, lang),
            num=lambda value, digits=1: _num(value, digits, lang),
            time=lambda moment: local_time(moment, lang, zone),
            zone_name=zone.key,
            user=user,
            can=lambda permission: allowed(user, permission),
            csrf=csrf_token(request),
            csrf_field="csrf_token",
            flash=message,
            path=request.url.path,
            here=quote(_here(request), safe="/"),
            prefix=PREFIX,
            **context,
        )
    )
    response = HTMLResponse(html, status_code=status_code)
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; form-action 'self';"
        " frame-ancestors 'none'"
    )
    return response


def _here(request: Request) -> str:
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


def redirect(url: str) -> RedirectResponse:
    """See-other to a dashboard page (after a POST)."""
    return RedirectResponse(url, status_code=303)


def safe_next(target: str | None, default: str = f"{PREFIX}/alerts") -> str:
    """A local dashboard path to go back to (anything else: ``default``)."""
    if target and target.startswith(PREFIX) and not target.startswith("//") and "\\" not in target:
        return target
    return default


def error_page(request: Request, status_code: int, title_key: str, message: str) -> HTMLResponse:
    user = request.scope.get("dashboard_user")
    return render(request, "error.html", user, status_code, title_key=title_key, message=message)


_STATUS: tuple[tuple[type[Exception], int, str], ...] = (
    (NotFoundError, 404, "not_found_title"),
    (InvalidInput, 422, "error_title"),
    (Conflict, 409, "error_title"),
    (RateLimited, 429, "error_title"),
)


def _refusal(request: Request, exc: Exception) -> Response:
    lang = lang_of(request)
    if isinstance(exc, LoginRequired):
        if request.method == "GET":
            return redirect(f"{PREFIX}/login?next={quote(_here(request), safe='')}")
        return redirect(f"{PREFIX}/login")
    if isinstance(exc, CsrfFailed):
        log.warning("%s %s -> 403: %s", request.method, request.url.path, exc)
        return error_page(request, 403, "forbidden_title", cat.t("csrf_failed", lang))
    if isinstance(exc, Forbidden):
        log.warning("%s %s -> 403: %s", request.method, request.url.path, exc)
        return error_page(request, 403, "forbidden_title", cat.t("forbidden", lang))
    assert isinstance(exc, LeaksenseError)
    status, title = next(
        ((s, k) for kind, s, k in _STATUS if isinstance(exc, kind)), (503, "error_title")
    )
    log.warning("%s %s -> %d: %s", request.method, request.url.path, status, exc)
    return error_page(request, status, title, str(exc))


class DashboardRoute(APIRoute):
    """An API route whose refusals are pages (see the module docstring)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def page_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except (LoginRequired, Forbidden, LeaksenseError) as exc:
                return _refusal(request, exc)

        return page_handler


def form_text(
    form: Mapping[str, Any], name: str, max_chars: int = 2000, *, strip: bool = True
) -> str:
    """A text field of a posted form ('' if absent), stripped unless it is a password;
    too long is :class:`InvalidInput`."""
    value = form.get(name, "")
    if not isinstance(value, str):
        raise InvalidInput(f"field {name!r} must be text")
    if len(value) > max_chars:
        raise InvalidInput(f"field {name!r} has more than {max_chars} characters")
    return value.strip() if strip else value
