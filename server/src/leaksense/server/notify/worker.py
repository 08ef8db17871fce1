"""The notification worker: a daemon thread that escalates, claims and sends.

Each round (every ``notify_poll_interval_s``): :func:`dispatch_due` enqueues what
became due, then due outbox rows are claimed (``outbox.claim``) and sent one by one,
each marked sent or rescheduled. Errors of a round are logged and the next round
runs; the database being down only delays notifications.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from leaksense.core.errors import LeaksenseError
from leaksense.server.notify import outbox
from leaksense.server.notify.email import NotifyFailed, SmtpSender
from leaksense.server.notify.policy import NotifyPolicy
from leaksense.server.notify.webhook import WebhookSender
from leaksense.server.settings import ServerSettings
from leaksense.server.workflow.escalation import dispatch_due

log = logging.getLogger(__name__)
KEEP: Final = timedelta(days=90)
"""How long finished notifications stay in the outbox (the audit log keeps the rest)."""
PRUNE_INTERVAL_S: Final = 3600.0
Clock = Callable[[], datetime]


def _utc_now() -> datetime:
    return datetime.now(UTC)


class NotificationWorker:
    """Sends the outbox of one database; any number may run against it at once."""

    def __init__(
        self,
        sessions: sessionmaker[Any],
        settings: ServerSettings,
        clock: Clock = _utc_now,
    ) -> None:
        self._sessions = sessions
        self._settings = settings
        self._clock = clock
        self.policy = NotifyPolicy.from_settings(settings)
        self._smtp = SmtpSender.from_settings(settings)
        self._webhook = WebhookSender.from_settings(settings)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pruned_at_s: float | None = None

    @property
    def enabled(self) -> bool:
        return self.policy.enabled

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="leaksense-notify", daemon=True)
            self._thread.start()

    def stop(self, timeout_s: float = 15.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except (SQLAlchemyError, LeaksenseError) as exc:
                log.warning("notification round failed, retrying: %s", exc)
            except Exception:  # a bug must not stop notifications for good
                log.exception("notification round crashed")
            self._stop.wait(self._settings.notify_poll_interval_s)

    def run_once(self) -> tuple[int, int]:
        """One round; returns (alerts moved, notifications sent)."""
        with self._sessions() as session:
            self._prune(session)
            moved = dispatch_due(session, self.policy, self._clock())
            sent = 0
            while not self._stop.is_set():
                batch = outbox.claim(session, self._clock(), self._settings.notify_lease_s)
                if not batch:
                    break
                sent += sum(self._deliver(session, item) for item in batch)
        return moved, sent

    def _prune(self, session: Session) -> None:
        """Once an hour, forget notifications finished more than ``KEEP`` ago."""
        now_s = time.monotonic()
        if self._pruned_at_s is not None and now_s - self._pruned_at_s < PRUNE_INTERVAL_S:
            return
        self._pruned_at_s = now_s
        pruned = outbox.prune(session, self._clock() - KEEP)
        if pruned:
            log.info("forgot %d notifications finished more than %s ago", pruned, KEEP)

    def _deliver(self, session: Session, item: outbox.Claimed) -> bool:
        s = self._settings
        try:
            self._send(item)
        except NotifyFailed as exc:
            outbox.mark_failed(
                session,
                item,
                self._clock(),
                str(exc),
                retry_base_s=s.notify_retry_base_s,
                retry_max_s=s.notify_retry_max_s,
                max_attempts=s.notify_max_attempts,
                permanent=exc.permanent,
            )
            return False
        if not outbox.mark_sent(session, item, self._clock()):
            log.warning("notification %d sent after its lease ran out", item.id)
        return True

    def _send(self, item: outbox.Claimed) -> None:
        delivery_id = f"leaksense-{item.id}"
        if item.channel == "email":
            if self._smtp is None:
                raise NotifyFailed("no SMTP server configured (LEAKSENSE_SERVER_SMTP_HOST)")
            self._smtp.send(item.recipient, item.subject, item.body_text, delivery_id)
        elif item.channel == "webhook":
            if self._webhook is None:
                raise NotifyFailed("no webhook configured (LEAKSENSE_SERVER_WEBHOOK_URL)")
            self._webhook.send(json.loads(item.payload_json), delivery_id, time.time())
        else:
            raise NotifyFailed(f"unknown channel {item.channel!r}")


def start_worker(
    sessions: sessionmaker[Any], settings: ServerSettings
) -> NotificationWorker | None:
    """Start a worker if ``notify_worker`` is on and a channel is configured."""
    if not settings.notify_worker:
        return None
    worker = NotificationWorker(sessions, settings)
    if not worker.enabled:
        return None
    worker.start()
    log.info("notification worker started")
    return worker
