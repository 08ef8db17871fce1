"""The hourly water balance of a DMA (balance.py)."""

from __future__ import annotations

import pytest

from leaksense.edge.detection.balance import HourlyBalance


def test_the_mean_comes_once_a_whole_hour_is_covered() -> None:
    balance = HourlyBalance(3600.0)
    means = [balance.add(300.0 * i, 1.2 if i % 3 == 0 else 0.0) for i in range(13)]
    assert means[:12] == [None] * 12
    assert means[12] == pytest.approx(0.4)  # the last 12 readings: 4 pulses of 1.2


def test_old_readings_leave_the_hour() -> None:
    balance = HourlyBalance(3600.0)
    for i in range(13):
        balance.add(300.0 * i, -1.0)
    last = None
    for i in range(13, 25):
        last = balance.add(300.0 * i, 2.0)
    assert last == pytest.approx(2.0)


def test_a_gap_longer_than_the_hour_starts_a_new_span() -> None:
    balance = HourlyBalance(3600.0)
    for i in range(13):
        balance.add(300.0 * i, -1.0)
    assert balance.add(300.0 * 12 + 7200.0, 5.0) is None
