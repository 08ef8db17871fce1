"""Who is notified and when: the on-call list, quiet hours, urgent kinds."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from leaksense.core.errors import ConfigError
from leaksense.server.settings import ServerSettings


@dataclass(frozen=True, slots=True)
class QuietHours:
    """A daily local-time window (it may wrap midnight: 22:00-07:00)."""

    start: time
    end: time
    zone: ZoneInfo

    @classmethod
    def parse(cls, text: str, timezone: str) -> QuietHours:
        try:
            start, end = (time.fromisoformat(part) for part in text.split("-"))
            return cls(start, end, ZoneInfo(timezone))
        except (ValueError, ZoneInfoNotFoundError) as exc:
            raise ConfigError(f"invalid quiet hours {text!r} in {timezone!r}: {exc}") from exc

    def covers(self, now: datetime) -> bool:
        local = now.astimezone(self.zone).time()
        if self.start <= self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end


@dataclass(frozen=True, slots=True)
class NotifyPolicy:
    oncall: tuple[str, ...]
    """E-mail addresses in escalation order."""
    escalate_after_s: float
    quiet_hours: QuietHours | None
    urgent_kinds: frozenset[str]
    base_url: str
    email: bool
    """SMTP is configured: on-call people get e-mails."""
    webhook: bool
    display_zone: tzinfo = UTC
    """The zone of the times in notification texts (``display_timezone``)."""

    @classmethod
    def from_settings(cls, s: ServerSettings) -> NotifyPolicy:
        quiet = (
            QuietHours.parse(s.notify_quiet_hours, s.notify_timezone)
            if s.notify_quiet_hours
            else None
        )
        return cls(
            oncall=tuple(s.notify_oncall),
            escalate_after_s=s.escalate_after_s,
            quiet_hours=quiet,
            urgent_kinds=frozenset(s.notify_urgent_kinds),
            base_url=s.public_base_url.rstrip("/"),
            email=s.smtp_host is not None,
            webhook=s.webhook_url is not None,
            display_zone=s.display_zone,
        )

    @property
    def enabled(self) -> bool:
        return (self.email and bool(self.oncall)) or self.webhook

    @property
    def max_level(self) -> int:
        """The last escalation level: the last person on the list (0 if one or none)."""
        return max(len(self.oncall) - 1, 0)

    def deferred(self, kind: str, now: datetime) -> bool:
        """True when an alert of ``kind`` must wait for the end of quiet hours."""
        return (
            self.quiet_hours is not None
            and kind not in self.urgent_kinds
            and self.quiet_hours.covers(now)
        )
