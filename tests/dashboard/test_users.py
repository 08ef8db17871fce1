"""Users: the service's rules, argon2 rehashing, throttling, the CLI, the language choice."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from leaksense.core.cli import build_app
from leaksense.core.errors import AuthenticationError, Conflict, InvalidInput, RateLimited
from leaksense.server.dashboard.catalogue import TEXTS, negotiate, parse_accept_language
from leaksense.server.runtime import build_runtime
from leaksense.server.settings import load_settings
from leaksense.server.users import service, throttle
from leaksense.server.users.models import User
from leaksense.server.workflow.models import AuditRecord

NOW = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
PASSWORD = "correct-horse-battery"


@pytest.fixture
def session(tmp_path: Path, database_url: str) -> Iterator[Session]:
    """A session on SQLite, then on PostgreSQL (the throttle's upserts differ)."""
    runtime = build_runtime(load_settings(data_dir=tmp_path, database_url=database_url))
    with runtime.sessions() as s:
        yield s
    runtime.close()


def test_add_checks_names_roles_passwords_and_duplicates(session: Session) -> None:
    user = service.add_user(session, " Alice ", PASSWORD, "admin", actor="cli", now=NOW)
    assert (user.username, user.role, user.active) == ("alice", "admin", True)
    stored = session.get(User, "alice")
    assert stored is not None and stored.password_hash.startswith("$argon2id$")
    assert PASSWORD not in stored.password_hash
    with pytest.raises(Conflict, match="already exists"):
        service.add_user(session, "ALICE", PASSWORD, "admin", actor="cli", now=NOW)
    with pytest.raises(InvalidInput, match="role must be one of"):
        service.add_user(session, "bob", PASSWORD, "root", actor="cli", now=NOW)
    with pytest.raises(InvalidInput, match="at least 10"):
        service.add_user(session, "bob", "short", "technician", actor="cli", now=NOW)
    with pytest.raises(InvalidInput, match="invalid username"):
        service.add_user(session, "bob smith", PASSWORD, "technician", actor="cli", now=NOW)
    audit = session.scalars(select(AuditRecord)).all()
    assert [(a.actor, a.action, a.target) for a in audit] == [("cli", "user.add", "user:alice")]


def test_the_last_admin_cannot_be_disabled_or_demoted(session: Session) -> None:
    service.add_user(session, "alice", PASSWORD, "admin", actor="cli", now=NOW)
    with pytest.raises(Conflict, match="last active admin"):
        service.disable_user(session, "alice", actor="cli", now=NOW)
    with pytest.raises(Conflict, match="last active admin"):
        service.set_role(session, "alice", "manager", actor="cli", now=NOW)
    service.add_user(session, "bob", PASSWORD, "admin", actor="cli", now=NOW)
    assert not service.disable_user(session, "alice", actor="bob", now=NOW).active
    with pytest.raises(AuthenticationError):
        service.login(session, "alice", PASSWORD, ip="10.0.0.1", now=NOW)


def test_login_rehashes_a_hash_made_with_weaker_parameters(session: Session) -> None:
    service.add_user(session, "tom", PASSWORD, "technician", actor="cli", now=NOW)
    user = session.get(User, "tom")
    assert user is not None
    weak = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1).hash(PASSWORD)
    user.password_hash = weak
    session.commit()
    logged = service.login(session, "tom", PASSWORD, ip="10.0.0.1", now=NOW)
    assert logged.last_login_at == NOW
    session.refresh(user)
    assert user.password_hash != weak
    assert not PasswordHasher().check_needs_rehash(user.password_hash)
    PasswordHasher().verify(user.password_hash, PASSWORD)


def test_password_change_ends_sessions_and_is_audited(session: Session) -> None:
    service.add_user(session, "tom", PASSWORD, "technician", actor="cli", now=NOW)
    before = service.get_user(session, "tom").session_epoch
    assert service.session_user(session, "tom", before) is not None
    service.set_password(session, "tom", "another-long-one", actor="alice", now=NOW)
    assert service.session_user(session, "tom", before) is None
    with pytest.raises(AuthenticationError):
        service.login(session, "tom", PASSWORD, ip="10.0.0.1", now=NOW)
    assert service.login(session, "tom", "another-long-one", ip="10.0.0.1", now=NOW)
    actions = session.scalars(select(AuditRecord.action).order_by(AuditRecord.id)).all()
    assert actions == ["user.add", "user.passwd"]


@pytest.mark.usefixtures("fast_hashing")
def test_throttle_blocks_per_user_and_address_then_forgets(session: Session) -> None:
    service.add_user(session, "tom", PASSWORD, "technician", actor="cli", now=NOW)
    for _ in range(5):
        with pytest.raises(AuthenticationError):
            service.login(session, "tom", "wrong-password", ip="10.0.0.1", now=NOW)
    with pytest.raises(RateLimited) as blocked:
        service.login(session, "tom", PASSWORD, ip="10.0.0.1", now=NOW)
    assert blocked.value.retry_after_s == 30
    # another address is not blocked by this one's failures
    assert service.login(session, "tom", PASSWORD, ip="10.0.0.2", now=NOW)
    # the block ends after its delay
    later = NOW + timedelta(seconds=31)
    assert service.login(session, "tom", PASSWORD, ip="10.0.0.1", now=later)


@pytest.mark.usefixtures("fast_hashing")
def test_throttle_blocks_a_user_guessed_from_many_addresses(session: Session) -> None:
    service.add_user(session, "tom", PASSWORD, "technician", actor="cli", now=NOW)
    for i in range(20):
        with pytest.raises(AuthenticationError):
            service.login(session, "tom", "wrong-password", ip=f"10.0.1.{i}", now=NOW)
    with pytest.raises(RateLimited):
        service.login(session, "tom", PASSWORD, ip="10.0.9.9", now=NOW)


@pytest.mark.usefixtures("fast_hashing")
def test_unknown_users_are_throttled_too(session: Session) -> None:
    for _ in range(5):
        with pytest.raises(AuthenticationError):
            service.login(session, "ghost", "whatever-it-is", ip="10.0.0.1", now=NOW)
    with pytest.raises(RateLimited):
        service.login(session, "ghost", "whatever-it-is", ip="10.0.0.1", now=NOW)


def test_throttle_delay_doubles_up_to_its_cap() -> None:
    assert [throttle.delay_s(n, 5) for n in (4, 5, 6, 7)] == [0.0, 30.0, 60.0, 120.0]
    assert throttle.delay_s(50, 5) == throttle.MAX_DELAY_S


def test_cli_adds_lists_changes_and_disables_users(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEAKSENSE_SERVER_DATA_DIR", str(tmp_path / "data"))
    runner = CliRunner()
    app = build_app()
    empty = runner.invoke(app, ["server", "user", "list"])
    assert empty.exit_code == 0 and "no users yet" in empty.output
    added = runner.invoke(
        app, ["server", "user", "add", "alice", "--role", "admin", "--name", "Alice"],
        input=f"{PASSWORD}\n{PASSWORD}\n",
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    assert "added alice (admin)" in added.output
    scripted = runner.invoke(
        app, ["server", "user", "add", "tom", "--password-stdin"], input=f"{PASSWORD}\n"
    )
    assert scripted.exit_code == 0, scripted.output
    mismatch = runner.invoke(
        app, ["server", "user", "passwd", "tom"], input="a-long-password\nanother-one!!\n" * 3
    )
    assert mismatch.exit_code != 0
    changed = runner.invoke(
        app, ["server", "user", "passwd", "tom", "--password-stdin"], input="a-long-password\n"
    )
    assert changed.exit_code == 0 and "password changed for tom" in changed.output
    assert runner.invoke(app, ["server", "user", "role", "tom", "manager"]).exit_code == 0
    assert runner.invoke(app, ["server", "user", "disable", "tom"]).exit_code == 0
    last_admin = runner.invoke(app, ["server", "user", "disable", "alice"])
    assert last_admin.exit_code != 0 and isinstance(last_admin.exception, Conflict)
    listing = runner.invoke(app, ["server", "user", "list"]).output.splitlines()
    assert listing[0].split()[:3] == ["alice", "admin", "active"]
    assert listing[1].split()[:3] == ["tom", "manager", "disabled"]
    runtime = build_runtime(load_settings(data_dir=tmp_path / "data"))
    with runtime.sessions() as session:
        audit = session.scalars(select(AuditRecord).order_by(AuditRecord.id)).all()
        assert [a.action for a in audit] == [
            "user.add", "user.add", "user.passwd", "user.role", "user.disable",
        ]  # fmt: skip
        assert all(a.actor.startswith("cli") for a in audit)
        assert all(PASSWORD not in a.details_json for a in audit)
    runtime.close()


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("en-US,en;q=0.9", "en"),
        ("fr-FR,fr;q=0.9,en;q=0.8", "fr"),
        ("de-DE,en;q=0.5,fr;q=0.4", "en"),
        ("en;q=0.2, fr;q=0.8", "fr"),
        ("de, es", None),
        ("en;q=0", None),
        ("", None),
    ],
)
def test_accept_language(header: str, expected: str | None) -> None:
    assert parse_accept_language(header) == expected


def test_cookie_language_wins_and_every_text_has_both() -> None:
    assert negotiate("en", "fr-FR") == "en"
    assert negotiate("xx", "en-GB") == "en"
    assert negotiate(None, None) == "fr"
    assert all(set(row) == {"fr", "en"} and all(row.values()) for row in TEXTS.values())
