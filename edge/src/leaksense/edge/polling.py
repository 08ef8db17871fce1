"""A refresh loop for what a gateway fetches from the server (models, sensitivity)."""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable

from leaksense.core.errors import LeaksenseError

RETRY_FIRST_S = 30.0
"""After a failed fetch: retry in 30–60 s, then 60–120 s … capped at the period."""


def refresh_periodically(
    stop: threading.Event,
    refresh: Callable[[], int],
    period_s: float,
    what: str,
    log: logging.Logger,
    *,
    on_failure: Callable[[], None] | None = None,
) -> None:
    """Call ``refresh`` now, then every ``period_s``, until ``stop`` is set.

    ``refresh`` returns how many things changed (logged when not 0) and raises a
    :class:`LeaksenseError` when the server cannot be asked: then the next attempt
    comes sooner, with exponential backoff and jitter, never later than the period.
    """
    failures = 0
    while not stop.is_set():
        delay_s = period_s
        try:
            changed = refresh()
            if changed:
                log.info("%s: %d updated from the server", what, changed)
            failures = 0
        except LeaksenseError as exc:
            failures += 1
            if on_failure is not None:
                on_failure()
            base_s = min(period_s, RETRY_FIRST_S * 2 ** (failures - 1))
            delay_s = random.uniform(base_s, min(period_s, 2 * base_s))
            log.warning("%s fetch failed (%s); retrying in %.0f s", what, exc, delay_s)
        stop.wait(delay_s)
