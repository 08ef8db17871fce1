"""The dashboard over HTTP: login, throttling, roles, CSRF, languages, pages, exports."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import httpx
import itsdangerous
import pytest
from sqlalchemy import select

from dashboard.harness import ALERT_ID, PASSWORD, Site, csrf_of, logged_in, login
from leaksense.core.errors import ConfigError
from leaksense.server import dashboard
from leaksense.server.app import create_app
from leaksense.server.runtime import build_runtime
from leaksense.server.settings import load_settings
from leaksense.server.users import service as users
from leaksense.server.workflow.models import AuditRecord
from leaksense.server.workflow.service import get_alert

ALERT_PAGE = "/dashboard/alerts/" + ALERT_ID


def _audit(site: Site, target: str) -> list[tuple[str, str, dict[str, object]]]:
    with site.runtime.sessions() as session:
        rows = session.scalars(
            select(AuditRecord).where(AuditRecord.target == target).order_by(AuditRecord.id)
        ).all()
        return [(r.actor, r.action, json.loads(r.details_json)) for r in rows]


def test_pages_need_a_session(site: Site) -> None:
    with site.client() as client:
        response = client.get("/dashboard/alerts?state=open")
        assert response.status_code == 303
        expected = "/dashboard/login?next=%2Fdashboard%2Falerts%3Fstate%3Dopen"
        assert response.headers["location"] == expected
        assert client.get("/").headers["location"] == "/dashboard/alerts"


def test_login_opens_a_session_with_safe_cookie_flags(site: Site) -> None:
    with site.client() as client:
        page = client.get("/dashboard/login?next=/dashboard/network")
        response = client.post(
            "/dashboard/login",
            data={"csrf_token": csrf_of(page.text), "username": "Tom", "password": PASSWORD,
                  "next": "/dashboard/network"},
        )  # fmt: skip
        assert response.status_code == 303
        assert response.headers["location"] == "/dashboard/network"
        cookie = response.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=lax" in cookie and "path=/dashboard" in cookie
        assert "secure" not in cookie
        alerts = client.get("/dashboard/alerts")
        assert alerts.status_code == 200
        assert "in-1" in alerts.text and "fuite de fond" in alerts.text


def test_cookie_is_secure_behind_an_https_proxy(site: Site) -> None:
    # uvicorn trusts X-Forwarded-Proto from 127.0.0.1, as from a local reverse proxy.
    with site.client(**{"X-Forwarded-Proto": "https"}) as client:
        response = client.get("/dashboard/login")  # starts the session (its CSRF token)
        assert response.status_code == 200
        assert "; secure" in response.headers["set-cookie"].lower()
        # so a client on plain http never sends it back: the form's token is not found
        assert login(client, "tom").status_code == 403


def test_login_refuses_wrong_password_and_open_redirects(site: Site) -> None:
    with site.client(**{"Accept-Language": "en"}) as client:
        response = login(client, "tom", "wrong-password!")
        assert response.status_code == 401
        assert "Wrong username or password" in response.text
        assert client.get("/dashboard/alerts").status_code == 303
        page = client.get("/dashboard/login")
        response = client.post(
            "/dashboard/login",
            data={"csrf_token": csrf_of(page.text), "username": "tom", "password": PASSWORD,
                  "next": "https://evil.example/"},
        )  # fmt: skip
        assert response.headers["location"] == "/dashboard/alerts"


def test_login_is_throttled_after_five_failures(site: Site) -> None:
    with site.client(**{"Accept-Language": "en"}) as client:
        for _ in range(5):
            assert login(client, "tom", "not-the-password").status_code == 401
        blocked = login(client, "tom")  # even the right password waits
        assert blocked.status_code == 429
        assert 25 <= int(blocked.headers["retry-after"]) <= 30
        assert "Too many failed attempts" in blocked.text
    assert [a for _, a, _ in _audit(site, "user:tom")][-1] == "user.login_blocked"
    with site.runtime.sessions() as session:  # the others are not affected
        assert users.login(session, "marc", PASSWORD, ip="127.0.0.1", now=datetime.now(UTC))


def test_technician_cannot_manage_users_or_read_reports(site: Site) -> None:
    with logged_in(site, "tom") as client:
        assert client.get("/dashboard/users").status_code == 403
        assert client.get("/dashboard/reports").status_code == 403
        assert client.get("/dashboard/reports/efficiency.csv").status_code == 403
        token = csrf_of(client.get("/dashboard/alerts").text)
        response = client.post(
            "/dashboard/users",
            data={"csrf_token": token, "username": "mallory", "password": "x" * 12,
                  "role": "admin"},
        )  # fmt: skip
        assert response.status_code == 403
        response = client.post("/dashboard/users/alice/disable", data={"csrf_token": token})
        assert response.status_code == 403
    with site.runtime.sessions() as session:
        assert [u.username for u in users.list_users(session)] == ["alice", "marc", "tom"]
        assert users.get_user(session, "alice").active


def test_manager_reads_reports_and_exports(site: Site) -> None:
    with logged_in(site, "marc") as client:
        assert client.get("/dashboard/users").status_code == 403
        page = client.get("/dashboard/reports?start=2026-01-04&end=2026-01-06")
        assert page.status_code == 200
        assert "<svg" in page.text and "P104.3" in page.text
        assert 'href="/dashboard/reports/efficiency.csv?start=2026-01-04' in page.text
        csv = client.get("/dashboard/reports/efficiency.csv?start=2026-01-04&end=2026-01-06")
        assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
        assert csv.text.startswith("scope;section;key")
        printable = client.get(
            "/dashboard/reports/efficiency.html?start=2026-01-04&end=2026-01-06&lang=en"
        )
        assert printable.status_code == 200 and "Network efficiency report" in printable.text
        pdf = client.get("/dashboard/reports/efficiency.pdf?start=2026-01-04&end=2026-01-06")
        assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
        bad = client.get("/dashboard/reports?start=2026-01-04&end=2025-01-01")
        assert bad.status_code == 422 and "whole days" in bad.text


def test_admin_adds_and_disables_a_user_and_it_is_audited(site: Site) -> None:
    with logged_in(site, "alice") as admin:
        token = csrf_of(admin.get("/dashboard/users").text)
        response = admin.post(
            "/dashboard/users",
            data={"csrf_token": token, "username": "Lea", "password": "a-long-password",
                  "role": "technician", "display_name": "Léa M."},
        )  # fmt: skip
        assert response.status_code == 303
        assert "lea" in admin.get("/dashboard/users").text
        with logged_in(site, "tom") as tom:
            assert tom.get("/dashboard/alerts").status_code == 200
            disable = admin.post("/dashboard/users/tom/disable", data={"csrf_token": token})
            assert disable.status_code == 303
            assert tom.get("/dashboard/alerts").status_code == 303  # the session ended
            assert login(tom, "tom").status_code == 401
        short = admin.post(
            "/dashboard/users",
            data={"csrf_token": token, "username": "bob", "password": "short", "role": "admin"},
        )
        assert short.status_code == 303
        assert "at least 10 characters" in admin.get("/dashboard/users").text
    assert [(actor, action) for actor, action, _ in _audit(site, "user:lea")] == [
        ("alice", "user.add")
    ]
    assert ("alice", "user.disable") in [(a, b) for a, b, _ in _audit(site, "user:tom")]


@pytest.mark.parametrize("token", [None, "forged-token"])
def test_posts_without_the_csrf_token_are_refused(site: Site, token: str | None) -> None:
    with logged_in(site, "tom") as client:
        data = {} if token is None else {"csrf_token": token}
        response = client.post(ALERT_PAGE + "/acknowledge", data=data)
        assert response.status_code == 403
        assert client.post("/dashboard/logout", data=data).status_code == 403
        assert client.get("/dashboard/alerts").status_code == 200  # still logged in
    with site.runtime.sessions() as session:
        assert get_alert(session, ALERT_ID).state == "open"


def test_technician_acknowledges_assigns_and_resolves(site: Site) -> None:
    with logged_in(site, "tom") as client:
        page = client.get(ALERT_PAGE)
        assert page.status_code == 200 and "<polyline" in page.text
        assert "la passerelle clôt l&#39;alerte et tient ce débit pour normal" in page.text
        token = csrf_of(page.text)
        first = client.post(ALERT_PAGE + "/acknowledge", data={"csrf_token": token})
        assert first.status_code == 303
        again = client.post(ALERT_PAGE + "/acknowledge", data={"csrf_token": token})
        assert again.status_code == 303
        assert "acknowledged by tom" in client.get(ALERT_PAGE).text  # the conflict, shown
        client.post(ALERT_PAGE + "/assign", data={"csrf_token": token, "assignee": "marc"})
        response = client.post(
            ALERT_PAGE + "/resolve",
            data={"csrf_token": token, "resolution": "repaired", "repaired_flow_m3h": "3,5",
                  "notes": "joint changé"},
        )  # fmt: skip
        assert response.status_code == 303
        done = client.get(ALERT_PAGE)
        assert "réparée (3,50 m³/h)" in done.text and "joint changé" in done.text
        assert 'id="resolve"' not in done.text
    with site.runtime.sessions() as session:
        alert = get_alert(session, ALERT_ID)
        assert (alert.state, alert.resolution) == ("resolved", "repaired")
        assert alert.repaired_flow_m3h == 3.5
        assert (alert.acknowledged_by, alert.resolved_by, alert.assignee) == ("tom", "tom", "marc")


def test_language_follows_the_browser_and_the_switch(site: Site) -> None:
    with logged_in(site, "tom", **{"Accept-Language": "en-GB,en;q=0.9,fr;q=0.5"}) as client:
        page = client.get("/dashboard/alerts")
        assert '<html lang="en">' in page.text and "background leak" in page.text
        switch = client.get("/dashboard/lang/fr?next=%2Fdashboard%2Falerts")
        assert switch.status_code == 303 and switch.headers["location"] == "/dashboard/alerts"
        page = client.get("/dashboard/alerts")
        assert '<html lang="fr">' in page.text and "fuite de fond" in page.text
    with logged_in(site, "tom", **{"Accept-Language": "de-DE, es;q=0.8"}) as client:
        assert '<html lang="fr">' in client.get("/dashboard/alerts").text  # the default


def test_network_pages_show_health_and_charts(site: Site) -> None:
    with logged_in(site, "tom", **{"Accept-Language": "en"}) as client:
        page = client.get("/dashboard/network")
        assert page.status_code == 200
        assert "gw-saint-savin" in page.text and "no health report" in page.text
        assert "in-1" in page.text and "Bourg" in page.text
        sensor = client.get("/dashboard/sensors/in-1")
        assert sensor.status_code == 200 and "<polyline" in sensor.text
        dma = client.get("/dashboard/dmas/ss-dma")
        assert dma.status_code == 200 and "<polyline" in dma.text
        assert quote(ALERT_ID, safe="") in dma.text  # a sensor alert shows on its DMA
        card = quote(ALERT_ID, safe="")
        assert card in client.get("/dashboard/alerts?dma=ss-dma&state=open").text
        assert card not in client.get("/dashboard/alerts?state=resolved").text
        assert card not in client.get("/dashboard/alerts?kind=burst").text
        assert client.get("/dashboard/alerts?state=bogus").status_code == 422
        assert client.get("/dashboard/sensors/nope").status_code == 404
        assert client.get("/dashboard/alerts/nope").status_code == 404


def test_static_stylesheet_is_served(site: Site) -> None:
    response = httpx.get(f"{site.url}/dashboard/static/dashboard.css")
    assert response.status_code == 200 and "min-height: 44px" in response.text


def test_production_refuses_to_start_without_a_session_secret(tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path / 'entities.db'}"
    production = load_settings(mode="production", database_url=database_url, data_dir=tmp_path)
    runtime = build_runtime(production)
    try:
        with pytest.raises(ConfigError, match="SESSION_SECRET"):
            create_app(production, runtime)
    finally:
        runtime.close()
    for weak in ("secret", "short-but-not-a-placeholder"):
        with pytest.raises(ConfigError, match="SESSION_SECRET"):
            load_settings(mode="production", database_url=database_url, session_secret=weak)
    strong = load_settings(
        mode="production", database_url=database_url, data_dir=tmp_path,
        session_secret="k" * 8 + "J3s9-Qm2_xW8pLr5tVb7nHc4yZa6",
    )  # fmt: skip
    assert dashboard.session_secret(strong).startswith("kkkk")
    assert not (tmp_path / "session-secret").exists()  # nothing written in production


def _cookie(secret: str, session: dict[str, object]) -> str:
    data = base64.b64encode(json.dumps(session).encode())
    return itsdangerous.TimestampSigner(secret).sign(data).decode()


def test_sessions_are_signed_and_end_after_twelve_hours(site: Site) -> None:
    secret = (site.runtime.settings.data_dir / "session-secret").read_text().strip()
    now = int(time.time())
    fresh = {"user": "tom", "epoch": 0, "login_at": now - 60, "csrf": "t"}
    stale = fresh | {"login_at": now - 13 * 3600}
    cases = [(secret, fresh, 200), (secret, stale, 303), ("another-secret", fresh, 303)]
    for key, session, status in cases:
        with site.client() as client:
            client.cookies.set("leaksense_session", _cookie(key, session), path="/dashboard")
            assert client.get("/dashboard/alerts").status_code == status


def test_an_alert_of_the_same_leak_is_shown_under_the_first(site: Site) -> None:
    """The DMA's own alert for the leak its inlet in-1 alerted first (grouping.py)."""
    with site.runtime.sessions() as session:
        first = get_alert(session, ALERT_ID)
    same_id = "gw-saint-savin:ss-dma:1"
    same = {
        "alert_id": same_id,
        "dma_id": "ss-dma",
        "kind": first.kind,
        "started_at": first.started_at.isoformat(),
        "detected_at": first.detected_at.isoformat(),
        "flow_m3h": 3.9,
        "explanation_en": "night flow 3.9 m³/h above its usual level",
        "explanation_fr": "débit de nuit supérieur de 3,9 m³/h à l'habitude",
    }
    site.ingest(
        {"gateway_id": "gw-saint-savin", "batch_seq": 2, "sent_at": first.detected_at.isoformat(),
         "alerts": [same]}
    )  # fmt: skip
    with logged_in(site, "tom") as client:
        linked = client.get("/dashboard/alerts/" + quote(same_id))
        assert 'id="same-event-as"' in linked.text and f">{ALERT_ID}</a>" in linked.text
        assert "une seule notification" in linked.text
        head = client.get(ALERT_PAGE)
        assert 'id="also-seen"' in head.text and ">gw-saint-savin:ss-dma:1</a>" in head.text
        listing = client.get("/dashboard/alerts")
        assert f"Même fuite que {ALERT_ID}" in listing.text
