"""``leaksense server user add|passwd|role|list|disable|enable``: manage dashboard users.

Passwords are read from the terminal (twice, hidden) or, with ``--password-stdin``,
as one line from standard input for scripts; never from the command line, where
``ps`` and shell history would keep them.
"""

from __future__ import annotations

import getpass
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from leaksense.server.runtime import Runtime
    from leaksense.server.users.service import UserView

user_app = typer.Typer(help="Dashboard users (technician, manager, admin).", no_args_is_help=True)

PasswordStdin = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password as one line from stdin.")
]


def _runtime() -> Runtime:
    from leaksense.server.runtime import build_runtime
    from leaksense.server.settings import load_settings

    return build_runtime(load_settings())


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no passwd entry (some containers)
        return "cli"


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    password: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return password


def _line(user: UserView) -> str:
    last = f"{user.last_login_at:%Y-%m-%d %H:%M} UTC" if user.last_login_at else "never"
    state = "active" if user.active else "disabled"
    return f"{user.username:<24} {user.role:<11} {state:<9} last login {last}  {user.display_name}"


@user_app.command("add")
def add(
    username: str,
    role: Annotated[str, typer.Option(help="technician, manager or admin.")] = "technician",
    name: Annotated[str, typer.Option(help="Display name.")] = "",
    password_stdin: PasswordStdin = False,
) -> None:
    """Create a user (the first one: --role admin)."""
    from leaksense.server.users import service

    password = _password(password_stdin)
    runtime = _runtime()
    try:
        with runtime.sessions() as session:
            user = service.add_user(
                session, username, password, role,
                actor=_actor(), now=datetime.now(UTC), display_name=name,
            )  # fmt: skip
    finally:
        runtime.close()
    typer.echo(f"added {user.username} ({user.role})")


@user_app.command("passwd")
def passwd(username: str, password_stdin: PasswordStdin = False) -> None:
    """Set a user's password (ends the user's open sessions)."""
    from leaksense.server.users import service

    password = _password(password_stdin)
    runtime = _runtime()
    try:
        with runtime.sessions() as session:
            user = service.set_password(
                session, username, password, actor=_actor(), now=datetime.now(UTC)
            )
    finally:
        runtime.close()
    typer.echo(f"password changed for {user.username}")


@user_app.command("role")
def role(username: str, new_role: str) -> None:
    """Change a user's role."""
    from leaksense.server.users import service

    runtime = _runtime()
    try:
        with runtime.sessions() as session:
            user = service.set_role(
                session, username, new_role, actor=_actor(), now=datetime.now(UTC)
            )
    finally:
        runtime.close()
    typer.echo(f"{user.username} is now {user.role}")


@user_app.command("list")
def list_command() -> None:
    """Every user with role, state and last login."""
    from leaksense.server.users import service

    runtime = _runtime()
    try:
        with runtime.sessions() as session:
            users = service.list_users(session)
    finally:
        runtime.close()
    for user in users:
        typer.echo(_line(user))
    if not users:
        typer.echo("no users yet: leaksense server user add NAME --role admin")


@user_app.command("disable")
def disable(username: str) -> None:
    """Refuse the user's logins from now on and end their sessions."""
    from leaksense.server.users import service

    runtime = _runtime()
    try:
        with runtime.sessions() as session:
            user = service.disable_user(session, username, actor=_actor(), now=datetime.now(UTC))
    finally:
        runtime.close()
    typer.echo(f"disabled {user.username}")


@user_app.command("enable")
def enable(username: str) -> None:
    """Let a disabled user log in again."""
    from leaksense.server.users import service

    runtime = _runtime()
    try:
        with runtime.sessions() as session:
            user = service.enable_user(session, username, actor=_actor(), now=datetime.now(UTC))
    finally:
        runtime.close()
    typer.echo(f"enabled {user.username}")
