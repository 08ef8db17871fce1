"""The users and login-throttle tables, on the shared entity database (``db.Base``)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from sqlalchemy import Boolean, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from leaksense.server.db import Base, UtcDateTime

Role = Literal["technician", "manager", "admin"]
ROLES: tuple[Role, ...] = ("technician", "manager", "admin")


class User(Base):
    """A dashboard user. ``session_epoch`` grows when the password changes or the user
    is disabled, which ends every session signed before (cookies carry the epoch)."""

    __tablename__ = "users"
    username: Mapped[str] = mapped_column(String(64), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    session_epoch: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_login_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)


class LoginThrottle(Base):
    """Failed logins counted per key (``user+ip:…``, ``user:…``) within a window.

    Kept in the database, not in memory, so that several server instances behind a
    load balancer share one count.
    """

    __tablename__ = "login_throttle"
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    window_start: Mapped[datetime] = mapped_column(UtcDateTime)
    blocked_until: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
