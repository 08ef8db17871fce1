"""A real PostgreSQL server (Debian's ``postgresql`` package) and a real SMTP server
(aiosmtpd) for the tests, run as plain processes on loopback and free ports.

PostgreSQL's ``initdb`` and ``postgres`` refuse to run as root: as root, both run as
the ``postgres`` system user that the Debian package creates, in a temp dir of their
own (pytest's temp dirs are private to root). The cluster is throwaway, so durability
is off (``fsync``, ``synchronous_commit``), and it is stopped with SIGINT ("fast"
shutdown: SIGTERM would wait for every client to leave). Each test gets its own
database (:meth:`PostgresServer.create_database`).

The SMTP server is ``python -m aiosmtpd`` with its ``Mailbox`` handler: every message
it accepts lands in a Maildir that the test reads, so a test can count what was
really delivered across a server restart.
"""

from __future__ import annotations

import email.policy
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from types import TracebackType
from typing import IO, Self

import psycopg

from services import LOOPBACK, ServerStartError, free_port, require_binary

PG_BIN_DIR = Path("/usr/lib/postgresql/15/bin")
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0


def pg_binary(name: str) -> str:
    """``initdb`` / ``postgres`` from Debian's PostgreSQL 15 (or PATH); CI fails if missing."""
    return require_binary(name, str(PG_BIN_DIR / name))


class _Process:
    """A child process with its output in a log file, stopped by its own PID."""

    def __init__(self, name: str, log_path: Path) -> None:
        self.name = name
        self.log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def _spawn(self, command: list[str], user: str | None = None) -> None:
        self._log = self.log_path.open("ab")
        self._process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            user=user,
            group=user,
            extra_groups=[] if user else None,
            start_new_session=True,
        )

    def _fail(self, reason: str) -> None:
        self.stop()
        tail = self.log_path.read_text(errors="replace")[-4000:]
        raise ServerStartError(f"{self.name} {reason}; log {self.log_path}:\n{tail}")

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(sig)
            try:
                process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=STOP_TIMEOUT_S)
        if self._log is not None:
            self._log.close()
            self._log = None


class PostgresServer(_Process):
    """A throwaway PostgreSQL cluster on 127.0.0.1 (``.port``, ``.url(db)``)."""

    def __init__(self, initdb: str, postgres: str) -> None:
        self._run_as = "postgres" if os.geteuid() == 0 else None
        self.root = Path(tempfile.mkdtemp(prefix="leaksense-pg-"))
        self.data_dir, self.socket_dir = self.root / "data", self.root / "sock"
        self.socket_dir.mkdir()
        if self._run_as:
            entry = pwd.getpwnam(self._run_as)
            for path in (self.root, self.socket_dir):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        super().__init__("postgres", self.root / "postgres.log")
        self.initdb, self.postgres = initdb, postgres
        self.port = free_port()

    def start(self) -> None:
        if not self.data_dir.exists():
            subprocess.run(
                [self.initdb, "-D", str(self.data_dir), "-U", "postgres", "-A", "trust",
                 "-E", "UTF8", "--no-sync", "--no-instructions"],
                check=True, capture_output=True, user=self._run_as, group=self._run_as,
                extra_groups=[] if self._run_as else None,
            )  # fmt: skip
        self._spawn(
            [self.postgres, "-D", str(self.data_dir), "-p", str(self.port),
             "-k", str(self.socket_dir), "-c", f"listen_addresses={LOOPBACK}",
             "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
             "-c", "max_connections=60"],
            user=self._run_as,
        )  # fmt: skip
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self._accepts():
            if not self.running:
                self._fail("exited")
            if time.monotonic() > deadline:
                self._fail(f"not ready after {START_TIMEOUT_S:.0f} s")
            time.sleep(0.05)

    def _accepts(self) -> bool:
        try:
            with psycopg.connect(self._dsn("postgres"), connect_timeout=1):
                return True
        except psycopg.OperationalError:
            return False

    def _dsn(self, database: str) -> str:
        return f"host={LOOPBACK} port={self.port} user=postgres dbname={database}"

    def url(self, database: str) -> str:
        """SQLAlchemy URL of ``database`` (psycopg 3 driver)."""
        return f"postgresql+psycopg://postgres@{LOOPBACK}:{self.port}/{database}"

    def create_database(self) -> str:
        """A new empty database; returns its name."""
        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self._dsn("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return name

    def drop_database(self, name: str) -> None:
        with psycopg.connect(self._dsn("postgres"), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def close(self) -> None:
        self.stop(signal.SIGINT)  # fast shutdown
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class SmtpServer(_Process):
    """``python -m aiosmtpd`` on 127.0.0.1 storing each message in a Maildir."""

    def __init__(
        self, workdir: Path, port: int | None = None, tls: tuple[Path, Path] | None = None
    ) -> None:
        """``tls``: (certificate, key) PEM files; then STARTTLS is offered and required."""
        workdir.mkdir(parents=True, exist_ok=True)
        super().__init__("aiosmtpd", workdir / "aiosmtpd.log")
        self.maildir = workdir / "maildir"
        self.port = port or free_port()
        self.tls = tls

    def start(self) -> None:
        tls = ["--tlscert", str(self.tls[0]), "--tlskey", str(self.tls[1])] if self.tls else []
        self._spawn(
            [sys.executable, "-m", "aiosmtpd", "-n", "-l", f"{LOOPBACK}:{self.port}", *tls,
             "-c", "aiosmtpd.handlers.Mailbox", str(self.maildir)]
        )  # fmt: skip
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self._accepts():
            if not self.running:
                self._fail("exited")
            if time.monotonic() > deadline:
                self._fail(f"not ready after {START_TIMEOUT_S:.0f} s")
            time.sleep(0.05)

    def _accepts(self) -> bool:
        try:
            with socket.create_connection((LOOPBACK, self.port), timeout=0.2) as sock:
                return sock.recv(3) == b"220"
        except OSError:
            return False

    def messages(self) -> list[EmailMessage]:
        """Every message received so far (across restarts), oldest first, decoded."""
        files = [p for sub in ("new", "cur") for p in (self.maildir / sub).glob("*")]
        out: list[EmailMessage] = []
        for path in sorted(files, key=lambda p: (p.stat().st_mtime_ns, p.name)):
            with path.open("rb") as f:
                message = BytesParser(policy=email.policy.default).parse(f)
            assert isinstance(message, EmailMessage)
            out.append(message)
        return out

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
