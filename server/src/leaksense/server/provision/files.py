"""Idempotent file writes and the small file formats provisioning reads back.

A write leaves a file untouched when it already holds the wanted content and mode,
otherwise replaces it atomically (temp file, fsync, rename), keeping the owner and
group of the file it replaces so a broker that reads it as its own user still can.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from leaksense.core.errors import ConfigError

Outcome = Literal["created", "updated", "unchanged"]
SECRET_MODE = 0o600
PUBLIC_MODE = 0o644

_SECRET_LINE = re.compile(r'(?P<key>[a-z_][a-z0-9_]*): (?P<value>".*")')
_ENV_LINE = re.compile(r"(?P<key>[A-Za-z_][A-Za-z0-9_]*)=(?P<value>.*)")


@dataclass(frozen=True, slots=True)
class Step:
    """What one provisioning step did to one file or record."""

    outcome: Outcome
    what: str
    where: str

    def __str__(self) -> str:
        return f"{self.outcome:<9} {self.what} ({self.where})"


def new_secret() -> str:
    """A random password: 192 bits, URL-safe (no quoting needed in any file format)."""
    return secrets.token_urlsafe(24)


def read_text(path: Path) -> str | None:
    """The file's text, or None when it does not exist."""
    try:
        return path.read_text("utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc


def write_file(path: Path, text: str, *, mode: int, what: str, group: int | None = None) -> Step:
    """Make ``path`` hold ``text`` with ``mode`` (and ``group``), changing only what differs."""
    old = read_text(path)
    if old == text:
        stat = path.stat()
        if stat.st_mode & 0o777 == mode and group in (None, stat.st_gid):
            return Step("unchanged", what, str(path))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _replace(path, text, mode, group)
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc}") from exc
    return Step("created" if old is None else "updated", what, str(path))


def _replace(path: Path, text: str, mode: int, group: int | None) -> None:
    previous = path.stat() if path.exists() else None
    temp = path.with_name(f".{path.name}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, mode)  # the umask may have narrowed it
        if previous is not None and os.geteuid() == 0:
            os.chown(temp, previous.st_uid, previous.st_gid)
        if group is not None:
            os.chown(temp, -1, group)
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)


def read_secrets_file(path: Path) -> dict[str, str]:
    """Values of a ``secrets.yaml`` written by :func:`format_secrets_file` ({} if absent)."""
    text = read_text(path)
    values: dict[str, str] = {}
    for number, line in enumerate((text or "").splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = _SECRET_LINE.fullmatch(line)
        try:
            value = json.loads(match["value"]) if match else None
        except json.JSONDecodeError:
            value = None
        if match is None or not isinstance(value, str):
            raise ConfigError(
                f'{path}:{number}: not a line `key: "value"` as leaksense provision writes;'
                " fix it or move the file away"
            )
        values[match["key"]] = value
    return values


def format_secrets_file(header: str, values: dict[str, str]) -> str:
    """YAML with one double-quoted scalar per key (JSON string escapes are valid YAML)."""
    lines = [f"# {line}" if line else "#" for line in header.splitlines()]
    lines += [f"{key}: {json.dumps(value)}" for key, value in values.items()]
    return "\n".join(lines) + "\n"


def read_env_file(path: Path) -> dict[str, str]:
    """``KEY=VALUE`` lines of a systemd/compose environment file ({} if absent)."""
    values: dict[str, str] = {}
    for line in (read_text(path) or "").splitlines():
        if match := _ENV_LINE.fullmatch(line.strip()):
            values[match["key"]] = match["value"]
    return values


def update_env_text(text: str | None, updates: dict[str, str], header: str) -> str:
    """``text`` with each key of ``updates`` set (in place, or appended); other lines kept."""
    lines = (text or f"# {header}\n").splitlines()
    pending = dict(updates)
    for index, line in enumerate(lines):
        match = _ENV_LINE.fullmatch(line.strip())
        if match and match["key"] in pending:
            lines[index] = f"{match['key']}={pending.pop(match['key'])}"
    lines += [f"{key}={value}" for key, value in pending.items()]
    return "\n".join(lines) + "\n"
