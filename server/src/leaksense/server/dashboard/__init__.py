"""The web dashboard: server-rendered pages for technicians, managers and admins.

Alerts (list, detail with the flow around the event, acknowledge / assign / resolve),
the network (sensors, DMAs, gateways and their health), reports (indicators, charts,
exports) and users, in French and English, without JavaScript. ``auth`` holds the
session, CSRF and role checks, ``web`` the rendering and error pages, ``catalogue``
the texts; the ``routes_*`` modules call the services, nothing deeper.

``server/app.py`` adds :class:`DashboardSessions` (signed cookie) and :data:`router`.
"""

from __future__ import annotations

from fastapi import APIRouter

from leaksense.server.dashboard import (
    routes_alerts,
    routes_auth,
    routes_network,
    routes_reports,
    routes_users,
)
from leaksense.server.dashboard.auth import DashboardSessions, session_secret

router = APIRouter()
for _module in (routes_auth, routes_alerts, routes_network, routes_reports, routes_users):
    router.include_router(_module.router)
router.include_router(routes_auth.root)

__all__ = ["DashboardSessions", "router", "session_secret"]
