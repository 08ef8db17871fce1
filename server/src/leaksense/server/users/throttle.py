"""Login throttling: after too many failures a key is blocked for a growing delay.

Two keys per attempt (rules below): the user from one address, which stops a
guesser at the fifth try, and the user from anywhere, which stops a guesser that
rotates addresses without letting one noisy address lock a user out at once. The
delay doubles with each failure past the limit (30 s, 60 s, … at most 15 min);
counts restart after an hour without failure or on a successful login.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from leaksense.core.errors import RateLimited
from leaksense.server.db import upsert_statement
from leaksense.server.users.models import LoginThrottle


@dataclass(frozen=True, slots=True)
class ThrottleRule:
    scope: str
    max_failures: int


RULES = (ThrottleRule("user+ip", 5), ThrottleRule("user", 20))
WINDOW = timedelta(hours=1)
BASE_DELAY_S = 30.0
MAX_DELAY_S = 900.0


def _keys(username: str, ip: str) -> list[tuple[str, ThrottleRule]]:
    subject = {"user+ip": f"{username}|{ip}", "user": username}
    return [(f"{rule.scope}:{subject[rule.scope]}", rule) for rule in RULES]


def delay_s(failures: int, max_failures: int) -> float:
    """How long a key stays blocked after its ``failures``-th failure (0: not blocked)."""
    if failures < max_failures:
        return 0.0
    return min(MAX_DELAY_S, BASE_DELAY_S * 2.0 ** (failures - max_failures))


def check(session: Session, username: str, ip: str, now: datetime) -> None:
    """Raise :class:`RateLimited` while any key of this attempt is blocked."""
    keys = [key for key, _ in _keys(username, ip)]
    rows = session.scalars(select(LoginThrottle).where(LoginThrottle.key.in_(keys))).all()
    blocks = [r.blocked_until for r in rows if r.blocked_until and r.blocked_until > now]
    if blocks:
        wait_s = math.ceil((max(blocks) - now).total_seconds())
        raise RateLimited(f"too many failed logins for {username!r}; retry in {wait_s} s", wait_s)


def record_failure(session: Session, username: str, ip: str, now: datetime) -> float:
    """Count a failure under each key; the longest block it starts, in seconds (0: none)."""
    blocked_s = 0.0
    for key, rule in _keys(username, ip):
        insert = upsert_statement(session, LoginThrottle)
        session.execute(
            insert.values(key=key, failures=0, window_start=now).on_conflict_do_nothing(
                index_elements=[LoginThrottle.key]
            )
        )
        row = session.scalars(
            select(LoginThrottle)
            .where(LoginThrottle.key == key)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).one()
        if now - row.window_start > WINDOW:
            row.failures, row.window_start, row.blocked_until = 0, now, None
        row.failures += 1
        wait_s = delay_s(row.failures, rule.max_failures)
        if wait_s:
            row.blocked_until = now + timedelta(seconds=wait_s)
            blocked_s = max(blocked_s, wait_s)
    session.commit()
    return blocked_s


def clear(session: Session, username: str, ip: str) -> None:
    """Forget the failures of this user (a successful login); the caller commits."""
    keys = [key for key, _ in _keys(username, ip)]
    session.execute(delete(LoginThrottle).where(LoginThrottle.key.in_(keys)))
