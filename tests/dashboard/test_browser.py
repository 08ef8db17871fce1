"""The dashboard in headless Chromium (Debian's, driven by Playwright; no browser download).

A technician logs in on a phone-sized screen, finds the alert, acknowledges it and
resolves it as repaired; a manager opens the reports and the printable report; an
admin changes a user's role. Each
step leaves a screenshot in ``build/screenshots/`` (kept as a CI artifact).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, ViewportSize, sync_playwright

from dashboard.harness import ALERT_ID, PASSWORD, Site
from leaksense.server.users import service as users
from leaksense.server.workflow.service import get_alert
from services import require_binary

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "build" / "screenshots"
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
PHONE: ViewportSize = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = require_binary("chromium", CHROMIUM)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, args=ARGS)
        yield chromium
        chromium.close()


def _shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def _fits_the_screen(page: Page) -> bool:
    width: bool = page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    return width


def _log_in(page: Page, site: Site, username: str) -> None:
    page.goto(f"{site.url}/dashboard/alerts")
    assert "/dashboard/login" in page.url
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("#login-submit")
    page.wait_for_url("**/dashboard/alerts")


def test_technician_acknowledges_and_resolves_an_alert(browser: Browser, site: Site) -> None:
    context = browser.new_context(viewport=PHONE, locale="en-GB", is_mobile=True, has_touch=True)
    page = context.new_page()
    try:
        page.goto(f"{site.url}/dashboard/login")
        _shot(page, "01-login")
        _log_in(page, site, "tom")
        assert page.locator("#alert-list .card").count() == 1
        assert "background leak" in page.inner_text("#alert-list")
        assert _fits_the_screen(page)
        _shot(page, "02-alerts")

        page.click("#alert-list .card")
        assert page.inner_text("#alert-state") == "open"
        assert page.locator("svg.chart polyline").count() >= 1
        assert _fits_the_screen(page)
        box = page.locator("#acknowledge").bounding_box()
        assert box is not None and box["height"] >= 44  # a thumb can hit it
        _shot(page, "03-alert")

        page.click("#acknowledge")
        page.wait_for_selector("#alert-state:text('acknowledged')")
        assert page.inner_text("#alert-assignee") == "tom"
        _shot(page, "04-acknowledged")

        page.select_option("#resolution", "repaired")
        page.fill("#repaired-flow", "3.5")
        page.fill("#resolve-form textarea[name=notes]", "joint replaced")
        page.click("#resolve")
        page.wait_for_selector("#alert-state:text('resolved')")
        assert "repaired (3.50 m³/h)" in page.inner_text("#alert-resolution")
        assert page.locator("#resolve").count() == 0
        _shot(page, "05-resolved")
    finally:
        context.close()
    with site.runtime.sessions() as session:
        alert = get_alert(session, ALERT_ID)
        assert (alert.state, alert.resolution, alert.repaired_flow_m3h) == (
            "resolved", "repaired", 3.5,
        )  # fmt: skip


def test_manager_opens_a_report_and_switches_language(browser: Browser, site: Site) -> None:
    context = browser.new_context(viewport=PHONE, locale="fr-FR")
    page = context.new_page()
    try:
        _log_in(page, site, "marc")
        assert "Alertes" in page.inner_text("nav")
        page.click("nav >> text=Rapports")
        page.wait_for_url("**/dashboard/reports")
        page.fill("input[name=start]", "2026-01-04")
        page.fill("input[name=end]", "2026-01-06")
        page.click("form.filters button")
        page.wait_for_url("**/dashboard/reports?start=2026-01-04*")
        assert page.locator("#scope-ss-dma svg.chart").count() == 1
        assert "P104.3" in page.inner_text("main")
        assert _fits_the_screen(page)
        _shot(page, "06-reports")

        page.click("#switch-lang")
        page.wait_for_selector("h1:text('Reports')")
        assert "start=2026-01-04" in page.url  # the same report, in English
        _shot(page, "07-reports-en")

        page.click("#export-html")
        page.wait_for_selector("h1:text('Network efficiency report')")
        assert page.locator("svg.chart").count() >= 1
        _shot(page, "08-printable-report")
    finally:
        context.close()


def test_admin_changes_a_role_on_a_phone(browser: Browser, site: Site) -> None:
    context = browser.new_context(viewport=PHONE, locale="en-GB", is_mobile=True, has_touch=True)
    page = context.new_page()
    try:
        _log_in(page, site, "alice")
        page.click("nav >> text=Users")
        page.wait_for_url("**/dashboard/users")
        page.click("#edit-tom summary")  # <details>: no JavaScript needed
        page.select_option("#edit-tom select[name=role]", "manager")
        assert _fits_the_screen(page)
        _shot(page, "09-users-role")
        page.click("#edit-tom >> text=Change role")
        page.wait_for_selector(".flash.ok:text('tom → manager')")
        assert "Local times (Europe/Paris)" in page.inner_text("#time-zone")
        _shot(page, "10-users-role-changed")
    finally:
        context.close()
    with site.runtime.sessions() as session:
        assert users.get_user(session, "tom").role == "manager"
