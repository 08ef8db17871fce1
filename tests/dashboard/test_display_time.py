"""Times people read are local (``display_timezone``), with the zone's abbreviation;
JSON stays in UTC.

The autumn change of Europe/Paris is the hard case: on 25 October 2026 the clocks go
back at 03:00 CEST, so 02:30 happens twice, at 00:30 UTC (CEST) and 01:30 UTC (CET).
A technician must be able to tell the two apart, hence the abbreviation.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from dashboard.harness import Site, logged_in, serve_site
from leaksense.core.errors import ConfigError
from leaksense.server.dashboard.web import local_time
from leaksense.server.notify import messages
from leaksense.server.notify.policy import NotifyPolicy
from leaksense.server.services import entities
from leaksense.server.settings import load_settings
from leaksense.server.workflow.escalation import notifications
from leaksense.server.workflow.service import get_alert

PARIS = ZoneInfo("Europe/Paris")
FIRST_0230 = datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # 02:30 CEST
SECOND_0230 = datetime(2026, 10, 25, 1, 30, tzinfo=UTC)  # 02:30 CET, an hour later
DST_ALERT = "gw-saint-savin:in-1:1792888200"


@pytest.mark.parametrize(
    ("moment", "fr", "en"),
    [
        (FIRST_0230, "25/10/2026 02:30 CEST", "2026-10-25 02:30 CEST"),
        (SECOND_0230, "25/10/2026 02:30 CET", "2026-10-25 02:30 CET"),
        # spring: 01:59 CET is followed by 03:00 CEST
        (datetime(2026, 3, 29, 0, 59, tzinfo=UTC), "29/03/2026 01:59 CET", "2026-03-29 01:59 CET"),
        (datetime(2026, 3, 29, 1, 0, tzinfo=UTC), "29/03/2026 03:00 CEST", "2026-03-29 03:00 CEST"),
    ],
)
def test_local_time_across_the_dst_changes(moment: datetime, fr: str, en: str) -> None:
    assert local_time(moment, "fr", PARIS) == fr
    assert local_time(moment, "en", PARIS) == en
    assert local_time(None, "fr", PARIS) == "—"


def test_display_timezone_comes_from_the_environment_and_is_checked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert load_settings().display_timezone == "Europe/Paris"
    monkeypatch.setenv("LEAKSENSE_SERVER_DISPLAY_TIMEZONE", "America/Montreal")
    assert load_settings().display_zone == ZoneInfo("America/Montreal")
    monkeypatch.setenv("LEAKSENSE_SERVER_DISPLAY_TIMEZONE", "Europe/Pariss")
    with pytest.raises(ConfigError, match=r"display_timezone: .*unknown time zone 'Europe/Pariss'"):
        load_settings()
    monkeypatch.setenv("LEAKSENSE_SERVER_DISPLAY_TIMEZONE", "")  # empty: the default
    assert load_settings().display_timezone == "Europe/Paris"


def _dst_batch() -> dict[str, Any]:
    """An alert that starts in the first 02:30 and is detected in the second, with the
    readings of the night around it."""
    start = FIRST_0230 - timedelta(hours=8)
    readings = [
        {
            "sensor_id": "in-1",
            "time": (start + timedelta(minutes=10 * i)).isoformat(),
            "flow_m3h": 20.0 + (6.0 if start + timedelta(minutes=10 * i) >= FIRST_0230 else 0.0),
        }
        for i in range(6 * 16)
    ]
    alert = {
        "alert_id": DST_ALERT,
        "sensor_id": "in-1",
        "kind": "burst",
        "started_at": FIRST_0230.isoformat(),
        "detected_at": SECOND_0230.isoformat(),
        "flow_m3h": 6.0,
        "lost_volume_m3": 6.0,
        "confidence": 0.9,
        "explanation_en": "flow 6 m³/h above its usual level",
        "explanation_fr": "débit supérieur de 6 m³/h à l'habitude",
    }
    return {
        "gateway_id": "gw-saint-savin",
        "batch_seq": 2,
        "sent_at": (SECOND_0230 + timedelta(hours=10)).isoformat(),
        "readings": readings,
        "alerts": [alert],
    }


def test_pages_show_local_time_and_the_api_utc(site: Site) -> None:
    site.ingest(_dst_batch())
    page_url = f"/dashboard/alerts/{DST_ALERT}"
    with logged_in(site, "tom", **{"Accept-Language": "fr-FR"}) as client:
        page = client.get(page_url)
        assert page.status_code == 200
        assert "25/10/2026 02:30 CEST" in page.text  # started
        assert "25/10/2026 02:30 CET" in page.text  # detected, an hour later
        assert "UTC</dd>" not in page.text
        assert "Heures locales (Europe/Paris)" in page.text
        # the chart's first label: 6 h before the start, local time
        assert ">24/10 20:30</text>" in page.text
        listing = client.get("/dashboard/alerts")
        assert "25/10/2026 02:30 CET" in listing.text
    with site.runtime.sessions() as session:
        reader = entities.add_token(session, "wall-screen", "reader")
    with site.client(Authorization=f"Bearer {reader}") as api:
        body = api.get(f"/api/v1/alerts/{DST_ALERT}").json()
    assert body["started_at"].startswith("2026-10-25T00:30:00")
    assert body["started_at"].endswith(("+00:00", "Z"))


@pytest.fixture
def montreal_site(tmp_path: Path, fast_hashing: None) -> Iterator[Site]:
    yield from serve_site(tmp_path, display_timezone="America/Montreal")


def test_the_zone_is_a_setting(montreal_site: Site) -> None:
    """The harness's alert, detected 2026-01-05 04:00 UTC, is 23:00 EST the day before."""
    with logged_in(montreal_site, "tom", **{"Accept-Language": "en"}) as client:
        page = client.get("/dashboard/alerts")
    assert "2026-01-04 23:00 EST" in page.text
    assert "Local times (America/Montreal)" in page.text


def test_notification_texts_are_local_and_the_payload_utc(site: Site) -> None:
    site.ingest(_dst_batch())
    with site.runtime.sessions() as session:
        alert = get_alert(session, DST_ALERT)
    text = messages.render(alert, "opened", 0, "https://leaksense.example.org", PARIS)
    assert "depuis le 25/10/2026 02:30 CEST." in text.body_text
    assert "since 2026-10-25 02:30 CEST." in text.body_text
    assert "UTC" not in text.body_text
    assert "25/10/2026 02:30 CEST" in text.payload["text_fr"]
    assert "2026-10-25 02:30 CEST" in text.payload["text_en"]
    assert text.payload["alert"]["started_at"].startswith("2026-10-25T00:30:00")
    # what the worker queues takes the zone from the settings
    settings = load_settings(
        webhook_url="http://127.0.0.1:9/hook", webhook_secret="k" * 32,
        display_timezone="America/Montreal",
    )  # fmt: skip
    [queued] = notifications(alert, 0, NotifyPolicy.from_settings(settings))
    assert "since 2026-10-24 20:30 EDT." in queued.body_text
    spring = messages.local_time(datetime(2026, 3, 29, 1, 30, tzinfo=UTC), PARIS, "en")
    assert spring == "2026-03-29 03:30 CEST"
