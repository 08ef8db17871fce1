"""Users: add, change password or role, disable, enable, list, log in.

Every change is written to the audit log (``workflow.service.record_audit``) in the
same transaction as the change. Nothing here creates a user by itself: the first
admin is made with ``leaksense server user add NAME --role admin``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from leaksense.core.errors import AuthenticationError, Conflict, InvalidInput, NotFoundError
from leaksense.server.users import passwords, throttle
from leaksense.server.users.models import ROLES, Role, User
from leaksense.server.workflow.audit import record_audit

USERNAME = re.compile(r"^[a-z0-9][a-z0-9._@-]{0,63}$")


@dataclass(frozen=True, slots=True)
class UserView:
    username: str
    display_name: str
    role: Role
    active: bool
    session_epoch: int
    created_at: datetime
    last_login_at: datetime | None


def _view(user: User) -> UserView:
    return UserView(
        username=user.username,
        display_name=user.display_name,
        role=check_role(user.role),
        active=user.active,
        session_epoch=user.session_epoch,
        created_at=user.created_at,
        last_login_at=user.last_login_at,
    )


def check_role(role: str) -> Role:
    """``technician``, ``manager`` or ``admin``; anything else is :class:`InvalidInput`."""
    for known in ROLES:
        if role == known:
            return known
    raise InvalidInput(f"role must be one of {', '.join(ROLES)} (got {role!r})")


def normalise_username(username: str) -> str:
    """Lower-cased and checked: letters, digits and ``._@-``, at most 64 characters."""
    name = username.strip().lower()
    if not USERNAME.fullmatch(name):
        raise InvalidInput(
            f"invalid username {username!r}: 1-64 of a-z 0-9 . _ @ -, starting with a letter"
            " or digit"
        )
    return name


def _user(session: Session, username: str) -> User:
    user = session.get(User, normalise_username(username))
    if user is None:
        raise NotFoundError(f"no user {username!r}")
    return user


def get_user(session: Session, username: str) -> UserView:
    return _view(_user(session, username))


def list_users(session: Session) -> list[UserView]:
    """Every user, active or not, by name."""
    return [_view(u) for u in session.scalars(select(User).order_by(User.username))]


def add_user(
    session: Session,
    username: str,
    password: str,
    role: str,
    *,
    actor: str,
    now: datetime,
    display_name: str = "",
) -> UserView:
    """Create a user; an existing name is a :class:`Conflict`."""
    name = normalise_username(username)
    checked_role = check_role(role)
    passwords.check_password_policy(password)
    if session.get(User, name) is not None:
        raise Conflict(f"user {name!r} already exists")
    user = User(
        username=name,
        display_name=display_name.strip()[:200],
        role=checked_role,
        password_hash=passwords.hash_password(password),
        active=True,
        session_epoch=0,
        created_at=now,
        updated_at=now,
    )
    session.add(user)
    session.flush()
    record_audit(session, actor, "user.add", f"user:{name}", {"role": checked_role}, at=now)
    session.commit()
    return _view(user)


def set_password(
    session: Session, username: str, password: str, *, actor: str, now: datetime
) -> UserView:
    """Replace a password; the user's open sessions end."""
    passwords.check_password_policy(password)
    user = _user(session, username)
    user.password_hash = passwords.hash_password(password)
    user.session_epoch += 1
    user.updated_at = now
    record_audit(session, actor, "user.passwd", f"user:{user.username}", {}, at=now)
    session.commit()
    return _view(user)


def _active_admins(session: Session) -> int:
    count = session.scalar(
        select(func.count()).select_from(User).where(User.role == "admin", User.active)
    )
    return int(count or 0)


def _refuse_losing_last_admin(session: Session, user: User) -> None:
    if user.role == "admin" and user.active and _active_admins(session) <= 1:
        raise Conflict(f"{user.username!r} is the last active admin: add another admin first")


def set_role(session: Session, username: str, role: str, *, actor: str, now: datetime) -> UserView:
    """Change a user's role (the last active admin keeps theirs)."""
    checked_role = check_role(role)
    user = _user(session, username)
    if checked_role != "admin":
        _refuse_losing_last_admin(session, user)
    before = user.role
    user.role = checked_role
    user.updated_at = now
    record_audit(
        session,
        actor,
        "user.role",
        f"user:{user.username}",
        {"from": before, "to": checked_role},
        at=now,
    )
    session.commit()
    return _view(user)


def disable_user(session: Session, username: str, *, actor: str, now: datetime) -> UserView:
    """Refuse further logins and end the user's sessions (history keeps the name)."""
    user = _user(session, username)
    if not user.active:
        return _view(user)
    _refuse_losing_last_admin(session, user)
    user.active = False
    user.session_epoch += 1
    user.updated_at = now
    record_audit(session, actor, "user.disable", f"user:{user.username}", {}, at=now)
    session.commit()
    return _view(user)


def enable_user(session: Session, username: str, *, actor: str, now: datetime) -> UserView:
    user = _user(session, username)
    if user.active:
        return _view(user)
    user.active = True
    user.updated_at = now
    record_audit(session, actor, "user.enable", f"user:{user.username}", {}, at=now)
    session.commit()
    return _view(user)


def login(session: Session, username: str, password: str, *, ip: str, now: datetime) -> UserView:
    """The user these credentials name, or :class:`AuthenticationError`.

    Throttled (``throttle.py``): a blocked attempt raises :class:`RateLimited` without
    checking the password. An unknown user costs as much time as a wrong password.
    A hash made with weaker parameters than today's is replaced.
    """
    try:
        name = normalise_username(username)
    except InvalidInput:
        name = username.strip().lower()[:64]
    throttle.check(session, name, ip, now)
    user = session.get(User, name)
    if user is None:
        passwords.burn_time(password)
        ok, rehash = False, False
    else:
        ok, rehash = passwords.verify(user.password_hash, password)
    if not ok or user is None or not user.active:
        blocked_s = throttle.record_failure(session, name, ip, now)
        if blocked_s:
            record_audit(
                session, "system", "user.login_blocked", f"user:{name}", {"ip": ip}, at=now
            )
            session.commit()
        raise AuthenticationError("wrong username or password")
    if rehash:
        user.password_hash = passwords.hash_password(password)
    user.last_login_at = now
    throttle.clear(session, name, ip)
    session.commit()
    return _view(user)


def session_user(session: Session, username: str, epoch: int) -> UserView | None:
    """The active user a session cookie names, if its epoch is still current."""
    user = session.get(User, username)
    if user is None or not user.active or user.session_epoch != epoch:
        return None
    return _view(user)
