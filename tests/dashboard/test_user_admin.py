"""Admins change a user's role and reset a password from the users page.

The forms post to ``/dashboard/users/<name>/role`` and ``/password`` with the session's
CSRF token; only admins may; the users service makes and audits the change, and keeps
its rule that the last active admin stays admin.
"""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from dashboard.harness import PASSWORD, Site, csrf_of, logged_in, login
from leaksense.server.users import service as users
from leaksense.server.workflow.models import AuditRecord

NEW_PASSWORD = "another-long-password"


def _audit(site: Site, target: str) -> list[tuple[str, str, dict[str, object]]]:
    with site.runtime.sessions() as session:
        rows = session.scalars(
            select(AuditRecord).where(AuditRecord.target == target).order_by(AuditRecord.id)
        ).all()
        return [(r.actor, r.action, json.loads(r.details_json)) for r in rows]


def _role(site: Site, username: str) -> str:
    with site.runtime.sessions() as session:
        return users.get_user(session, username).role


def test_admin_changes_a_role_and_it_is_audited(site: Site) -> None:
    with logged_in(site, "alice", **{"Accept-Language": "en"}) as admin:
        page = admin.get("/dashboard/users")
        assert 'action="/dashboard/users/tom/role"' in page.text
        assert 'action="/dashboard/users/tom/password"' in page.text
        token = csrf_of(page.text)
        with logged_in(site, "tom") as tom:
            assert tom.get("/dashboard/reports").status_code == 403
            done = admin.post(
                "/dashboard/users/tom/role", data={"csrf_token": token, "role": "manager"}
            )
            assert (done.status_code, done.headers["location"]) == (303, "/dashboard/users")
            assert "Saved. tom → manager" in admin.get("/dashboard/users").text
            # the role is read at each request: tom's open session has it at once
            assert tom.get("/dashboard/reports").status_code == 200
        bad = admin.post("/dashboard/users/tom/role", data={"csrf_token": token, "role": "root"})
        assert bad.status_code == 303
        assert "role must be one of" in admin.get("/dashboard/users").text
        ghost = admin.post(
            "/dashboard/users/ghost/role", data={"csrf_token": token, "role": "admin"}
        )
        assert ghost.status_code == 303
        assert "no user &#39;ghost&#39;" in admin.get("/dashboard/users").text
    assert _role(site, "tom") == "manager"
    assert _audit(site, "user:tom")[-1] == (
        "alice", "user.role", {"from": "technician", "to": "manager"}
    )  # fmt: skip


def test_the_last_active_admin_cannot_be_demoted(site: Site) -> None:
    with logged_in(site, "alice", **{"Accept-Language": "en"}) as admin:
        token = csrf_of(admin.get("/dashboard/users").text)
        refused = admin.post(
            "/dashboard/users/alice/role", data={"csrf_token": token, "role": "technician"}
        )
        assert refused.status_code == 303
        assert "last active admin" in admin.get("/dashboard/users").text
        assert _role(site, "alice") == "admin"
        # with a second admin, alice may step down (and then loses the users page)
        promote = admin.post(
            "/dashboard/users/marc/role", data={"csrf_token": token, "role": "admin"}
        )
        assert promote.status_code == 303
        down = admin.post(
            "/dashboard/users/alice/role", data={"csrf_token": token, "role": "manager"}
        )
        assert down.status_code == 303
        assert admin.get("/dashboard/users").status_code == 403
    assert (_role(site, "alice"), _role(site, "marc")) == ("manager", "admin")
    assert [action for _, action, _ in _audit(site, "user:alice")] == ["user.add", "user.role"]


def test_admin_resets_a_password_which_ends_the_users_sessions(site: Site) -> None:
    with logged_in(site, "alice", **{"Accept-Language": "en"}) as admin:
        token = csrf_of(admin.get("/dashboard/users").text)
        with logged_in(site, "tom") as tom:
            short = admin.post(
                "/dashboard/users/tom/password", data={"csrf_token": token, "password": "short"}
            )
            assert short.status_code == 303
            assert "at least 10 characters" in admin.get("/dashboard/users").text
            assert tom.get("/dashboard/alerts").status_code == 200  # nothing changed
            done = admin.post(
                "/dashboard/users/tom/password",
                data={"csrf_token": token, "password": NEW_PASSWORD},
            )
            assert done.status_code == 303
            assert tom.get("/dashboard/alerts").status_code == 303  # the session ended
            assert login(tom, "tom").status_code == 401
            assert login(tom, "tom", NEW_PASSWORD).status_code == 303
        # resetting one's own password keeps one's own session
        own = admin.post(
            "/dashboard/users/alice/password", data={"csrf_token": token, "password": NEW_PASSWORD}
        )
        assert own.status_code == 303
        assert admin.get("/dashboard/users").status_code == 200
    audit = _audit(site, "user:tom")
    assert audit[-1] == ("alice", "user.passwd", {})
    assert all(NEW_PASSWORD not in json.dumps(details) for _, _, details in audit)


@pytest.mark.parametrize(
    ("path", "data"),
    [
        ("/dashboard/users/alice/role", {"role": "technician"}),
        ("/dashboard/users/tom/role", {"role": "admin"}),
        ("/dashboard/users/alice/password", {"password": "taken-over-password"}),
    ],
)
def test_a_technician_gets_403(site: Site, path: str, data: dict[str, str]) -> None:
    with logged_in(site, "tom") as tom:
        token = csrf_of(tom.get("/dashboard/alerts").text)  # a valid token of tom's session
        response = tom.post(path, data={"csrf_token": token, **data})
        assert response.status_code == 403
    assert (_role(site, "alice"), _role(site, "tom")) == ("admin", "technician")
    with logged_in(site, "alice"):  # alice's password is unchanged
        pass
    assert [a for _, a, _ in _audit(site, "user:alice")] == ["user.add"]


@pytest.mark.parametrize("token", [None, "forged-token"])
def test_role_and_password_forms_need_the_csrf_token(site: Site, token: str | None) -> None:
    with logged_in(site, "alice") as admin:
        extra = {} if token is None else {"csrf_token": token}
        assert (
            admin.post("/dashboard/users/tom/role", data={"role": "admin", **extra}).status_code
            == 403
        )
        reset = admin.post("/dashboard/users/tom/password", data={"password": "x" * 12, **extra})
        assert reset.status_code == 403
    assert _role(site, "tom") == "technician"
    with site.client() as tom:
        assert login(tom, "tom", PASSWORD).status_code == 303
