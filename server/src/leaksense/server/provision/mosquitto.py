"""Mosquitto's password file (PBKDF2-SHA512, ``$7$``) and ACL file, edited per user.

The password hash is the one ``mosquitto_passwd`` writes since Mosquitto 2.0:
``user:$7$<iterations>$<base64 salt>$<base64 PBKDF2-HMAC-SHA512>``, so no Mosquitto
tool is needed on the machine that provisions. The broker rereads both files on
``SIGHUP`` (``systemctl reload mosquitto``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
from pathlib import Path

from leaksense.core.errors import ConfigError
from leaksense.server.provision.files import SECRET_MODE, Step, read_text, write_file

ITERATIONS = 101
"""Mosquitto's own default; the passwords provisioned are random (192 bits), so a
slow hash adds nothing against guessing, and every CONNECT pays for it."""
SALT_BYTES = 12

ACL_MARK = "# leaksense provision:"
_USER = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def hash_password(password: str, *, iterations: int = ITERATIONS) -> str:
    """The ``$7$`` hash of ``password`` with a fresh random salt."""
    salt = secrets.token_bytes(SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, iterations)
    return f"$7${iterations}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, encoded: str) -> bool:
    """Whether ``encoded`` (a ``$7$`` hash) is the hash of ``password``."""
    parts = encoded.split("$")
    if len(parts) != 5 or parts[1] != "7" or not parts[2].isdigit():
        return False
    try:
        salt, digest = base64.b64decode(parts[3]), base64.b64decode(parts[4])
    except binascii.Error:
        return False
    actual = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, int(parts[2]))
    return hmac.compare_digest(actual, digest)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def check_user(name: str) -> str:
    """A broker user name Leaksense accepts (no ACL wildcards, separators or spaces)."""
    if not _USER.fullmatch(name):
        raise ConfigError(f"{name!r} is not a valid broker user name ([A-Za-z0-9_.-], ≤ 64)")
    return name


def read_password_file(path: Path) -> dict[str, str]:
    """``user -> hash`` of a Mosquitto password file ({} if absent)."""
    entries: dict[str, str] = {}
    for number, line in enumerate((read_text(path) or "").splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        user, sep, encoded = line.partition(":")
        if not sep or not user:
            raise ConfigError(f"{path}:{number}: not a `user:hash` line")
        entries[user] = encoded
    return entries


def format_password_file(entries: dict[str, str]) -> str:
    return "".join(f"{user}:{encoded}\n" for user, encoded in entries.items())


def acl_block(user: str, comment: str, topics: list[tuple[str, str]]) -> list[str]:
    """The lines of one user's ACL block; ``topics`` are ``(access, topic)`` pairs."""
    return [
        f"{ACL_MARK} {comment}",
        f"user {user}",
        *(f"topic {access} {topic}" for access, topic in topics),
    ]


def set_acl_block(text: str, user: str, block: list[str]) -> str:
    """``text`` of an ACL file with ``user``'s provisioned block replaced or appended.

    A provisioned block runs from its ``# leaksense provision:`` mark to the next blank
    line; lines written by hand elsewhere in the file are kept as they are.
    """
    lines = text.splitlines()
    start = _find_block(lines, user)
    if start is None:
        while lines and not lines[-1].strip():
            lines.pop()
        lines += ["", *block]
    else:
        end = start
        while end < len(lines) and lines[end].strip():
            end += 1
        lines[start:end] = block
    return "\n".join(lines) + "\n"


def _find_block(lines: list[str], user: str) -> int | None:
    for index, line in enumerate(lines[:-1]):
        if line.startswith(ACL_MARK) and lines[index + 1].strip() == f"user {user}":
            return index
    for index, line in enumerate(lines):
        if line.strip() == f"user {user}":
            raise ConfigError(
                f"user {user} has ACL lines written by hand (line {index + 1}):"
                " remove them or leave this user to manual administration"
            )
    return None


def write_broker_file(path: Path, text: str, what: str, group: int | None) -> Step:
    """Write a file the broker reads as its own user (password file, ACL).

    With ``group`` (the broker's), mode 0640 and that group; without, the file keeps
    the group read bit it had (so a file set up for the broker stays readable), else 0600.
    """
    mode = 0o640 if group is not None else SECRET_MODE
    if group is None and path.exists():
        mode = (path.stat().st_mode & 0o640) or SECRET_MODE
    return write_file(path, text, mode=mode, what=what, group=group)
