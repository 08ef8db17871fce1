"""The gateway's refresh loop: failures are counted and retried, successes logged."""

from __future__ import annotations

import logging
import threading

import pytest

from leaksense.core.errors import UplinkUnavailable
from leaksense.edge.polling import refresh_periodically


def test_failures_are_retried_and_counted_until_stopped(caplog: pytest.LogCaptureFixture) -> None:
    stop = threading.Event()
    calls, failures = [], []

    def refresh() -> int:
        calls.append(1)
        if len(calls) <= 2:
            raise UplinkUnavailable("server unreachable")
        stop.set()
        return 3

    log = logging.getLogger("test.polling")
    with caplog.at_level(logging.INFO, logger="test.polling"):
        refresh_periodically(
            stop, refresh, 0.01, "models", log, on_failure=lambda: failures.append(1)
        )
    assert (len(calls), len(failures)) == (3, 2)
    assert caplog.text.count("models fetch failed (server unreachable)") == 2
    assert "models: 3 updated from the server" in caplog.text
