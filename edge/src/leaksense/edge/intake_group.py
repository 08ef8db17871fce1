"""Group commit between the MQTT intake and the durable outbox.

A QoS 1 message may be acknowledged to the broker only once its reading is durable,
but an fsync per message would cap the gateway at a few hundred messages a second
on an SD card. So the intake thread appends each parsed message to an in-memory
group, and a committer thread writes the group to the outbox in one transaction (one
fsync) every ``commit_interval_s`` or ``commit_max_messages`` messages, then sends
the group's PUBACKs, in the order the messages came.

If the gateway dies before the commit, nothing was acknowledged and the broker
re-sends the group on the next connection. If the commit fails (disk full, I/O
error), the group is kept and retried: still unacknowledged, the messages stay the
broker's responsibility. Bad payloads are part of the group too, so their PUBACK
keeps its place and they are not re-sent forever.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from leaksense.core.errors import StoreUnavailable
from leaksense.core.messages import Alert
from leaksense.edge.mqtt import Receipt
from leaksense.edge.outbox import Outbox, ReadingRow

log = logging.getLogger(__name__)
Acknowledger = Callable[[Sequence[Receipt]], None]
CommitHook = Callable[[int, int], None]
"""Called after each commit with the numbers of readings and alerts committed."""
FailureHook = Callable[[], None]
"""Called after each commit the outbox refused (disk full, I/O error)."""
RETRY_S = 1.0


@dataclass
class _Group:
    readings: list[ReadingRow] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    receipts: list[Receipt] = field(default_factory=list)
    messages: int = 0
    first_at: float = 0.0

    def extend(self, later: _Group) -> None:
        self.readings += later.readings
        self.alerts += later.alerts
        self.receipts += later.receipts
        self.messages += later.messages


class IntakeGroup:
    """Collects messages from the intake thread; commits and acknowledges them in groups."""

    def __init__(
        self,
        outbox: Outbox,
        interval_s: float,
        max_messages: int,
        acknowledge: Acknowledger | None = None,
        on_commit: CommitHook | None = None,
        *,
        on_failure: FailureHook | None = None,
    ) -> None:
        self._outbox = outbox
        self._interval_s = interval_s
        self._max_messages = max_messages
        self._acknowledge = acknowledge
        self._on_commit = on_commit
        self._on_failure = on_failure
        self._group = _Group()
        self._lock = threading.Lock()  # taken per message: a bare lock, no Python frame
        self._ready = threading.Condition(self._lock)
        self._committing = threading.Lock()
        self.commits = 0
        self.committed_messages = 0
        self.commit_failures = 0

    def append(
        self, reading: ReadingRow | None, alerts: Sequence[Alert], receipt: Receipt | None
    ) -> None:
        """Add one message's outcome (``reading`` None for a rejected message)."""
        with self._lock:
            group = self._group
            if reading is not None:
                group.readings.append(reading)
            if alerts:
                group.alerts += alerts
            if receipt is not None:
                group.receipts.append(receipt)
            group.messages += 1
            if group.messages == 1:
                group.first_at = time.monotonic()
                self._ready.notify()
            elif group.messages == self._max_messages:
                self._ready.notify()

    def pending(self) -> int:
        """Messages received and not yet committed."""
        with self._ready:
            return self._group.messages

    def commit(self) -> int:
        """Commit and acknowledge what is pending now; returns how many messages.

        Raises :class:`StoreUnavailable` when the outbox cannot write; the group is
        then kept, in order, for the next attempt.
        """
        with self._committing:
            with self._ready:
                group, self._group = self._group, _Group()
            if not group.messages:
                return 0
            try:
                self._outbox.add_rows(group.readings, group.alerts)
            except StoreUnavailable:
                with self._ready:
                    group.extend(self._group)
                    self._group = group
                raise
            if self._acknowledge is not None and group.receipts:
                self._acknowledge(group.receipts)
            self.commits += 1
            self.committed_messages += group.messages
            if self._on_commit is not None:
                self._on_commit(len(group.readings), len(group.alerts))
            return group.messages

    def run(self, stop: threading.Event) -> None:
        """Commit each group when it is old or large enough, until ``stop``; then once more."""
        while not stop.is_set():
            self._wait_for_group(stop)
            try:
                self.commit()
            except StoreUnavailable as exc:
                self.commit_failures += 1
                if self._on_failure is not None:
                    self._on_failure()
                log.error("cannot commit to the outbox (%s); messages stay unacknowledged", exc)
                stop.wait(RETRY_S)
        try:
            self.commit()
        except StoreUnavailable as exc:
            log.error("last commit failed (%s); the broker keeps the messages", exc)

    def _wait_for_group(self, stop: threading.Event) -> None:
        with self._ready:
            while not self._group.messages and not stop.is_set():
                self._ready.wait(0.5)
            while self._group.messages < self._max_messages and not stop.is_set():
                left_s = self._group.first_at + self._interval_s - time.monotonic()
                if left_s <= 0:
                    return
                self._ready.wait(left_s)
