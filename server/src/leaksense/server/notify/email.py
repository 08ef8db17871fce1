"""E-mail over SMTP (``smtplib``), STARTTLS and login optional.

With STARTTLS the server's certificate and name are checked against the system's CAs
(and ``smtp_ca_file``); a failed check is a failed attempt, retried, never a
fallback to plain text.
"""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path

from leaksense.core.errors import ServiceUnavailable
from leaksense.server.settings import ServerSettings


class NotifyFailed(ServiceUnavailable):
    """A channel refused or could not take a notification.

    Retried with backoff, unless ``permanent`` (an address the relay refuses): then
    given up at once, as retrying cannot help.
    """

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


@dataclass(frozen=True, slots=True)
class SmtpSender:
    host: str
    port: int
    sender: str
    starttls: bool = True
    username: str | None = None
    password: str | None = None
    timeout_s: float = 10.0
    ca_file: Path | None = None

    @classmethod
    def from_settings(cls, s: ServerSettings) -> SmtpSender | None:
        if s.smtp_host is None:
            return None
        return cls(
            host=s.smtp_host,
            port=s.smtp_port,
            sender=s.smtp_from,
            starttls=s.smtp_starttls,
            username=s.smtp_username,
            password=s.smtp_password.get_secret_value() if s.smtp_password else None,
            timeout_s=s.smtp_timeout_s,
            ca_file=s.smtp_ca_file,
        )

    def send(self, recipient: str, subject: str, body: str, delivery_id: str) -> None:
        """Send one plain-text UTF-8 message; ``delivery_id`` makes its Message-ID."""
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = self.sender, recipient, subject
        message["Date"] = format_datetime(datetime.now(UTC))
        message["Message-ID"] = make_msgid(idstring=delivery_id, domain="leaksense")
        message["X-Leaksense-Delivery"] = delivery_id
        message.set_content(body)
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout_s) as smtp:
                if self.starttls:
                    context = ssl.create_default_context()
                    if self.ca_file is not None:
                        context.load_verify_locations(cafile=self.ca_file)
                    smtp.starttls(context=context)
                if self.username:
                    smtp.login(self.username, self.password or "")
                smtp.send_message(message)
        except smtplib.SMTPRecipientsRefused as exc:
            refused = "; ".join(f"{to}: {code}" for to, (code, _) in exc.recipients.items())
            raise NotifyFailed(f"SMTP {self.host} refused {refused}", permanent=True) from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise NotifyFailed(f"SMTP {self.host}:{self.port}: {exc}") from exc
