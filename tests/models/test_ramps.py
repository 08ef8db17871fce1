"""A ramp's size on the last night that can reveal it before its deadline."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from leaksense.models.evaluation.build import RAMP_DEADLINE_PCT, RAMP_START_PCT, LabelledLeak
from leaksense.models.evaluation.ramps import last_night_pct
from leaksense.models.evaluation.report import ramp_table
from leaksense.models.evaluation.score import CaseScore, LeakOutcome
from leaksense.models.evaluation.totals import Totals

PARIS = ZoneInfo("Europe/Paris")
STEP_S = 300.0


def _ramp(start: datetime, pct_per_day: float) -> LabelledLeak:
    days = (RAMP_DEADLINE_PCT - RAMP_START_PCT) / pct_per_day
    start_s = start.timestamp()
    return LabelledLeak(
        leak_id="r1",
        kind="incipient",
        size=pct_per_day,
        dma_id="dma-x",
        start_s=start_s,
        end_s=start_s + 30 * 86_400,
        deadline_s=start_s + days * 86_400,
        night_flow_m3h=4.0,
        mean_flow_m3h=20.0,
    )


def test_a_ramp_starting_at_noon_has_its_next_night() -> None:
    # 8 %/day from 1 %: 10 % after 27 h. The night 01:00-05:00 is centred 15 h in.
    ramp = _ramp(datetime(2026, 3, 10, 12, 0, tzinfo=PARIS), 8.0)
    assert last_night_pct(ramp, PARIS, STEP_S) == pytest.approx(1 + 8 * 15 / 24)


def test_an_evening_ramp_shows_only_a_young_night() -> None:
    # From 22:00 the deadline (01:00 two days on) comes before the second night ends.
    ramp = _ramp(datetime(2026, 3, 10, 22, 0, tzinfo=PARIS), 8.0)
    assert last_night_pct(ramp, PARIS, STEP_S) == pytest.approx(1 + 8 * 5 / 24)


def test_a_ramp_starting_inside_the_night_window_may_have_no_whole_night() -> None:
    # From 01:52 the deadline is 04:52 next night: that night's last reading is late.
    ramp = _ramp(datetime(2026, 3, 10, 1, 52, tzinfo=PARIS), 8.0)
    assert last_night_pct(ramp, PARIS, STEP_S) is None


def test_a_slow_ramp_is_judged_on_its_last_night_not_its_first() -> None:
    ramp = _ramp(datetime(2026, 3, 10, 12, 0, tzinfo=PARIS), 1.0)
    pct = last_night_pct(ramp, PARIS, STEP_S)
    assert pct is not None and 9.0 < pct < RAMP_DEADLINE_PCT


def test_the_ramp_table_counts_recall_by_the_night_a_ramp_has() -> None:
    start = datetime(2026, 3, 10, 12, 0, tzinfo=PARIS).timestamp()
    score = CaseScore("incipient-8-v0", "tuning", "incipient", "town-600", "clean", "winter")
    for pct, found in ((6.0, True), (7.0, False), (None, False)):
        detected = start + 3600 if found else None
        score.leaks.append(
            LeakOutcome("c", "incipient", 8, "dma-x", start, start + 2 * 3600, detected, None,
                        night_pct=pct)
        )  # fmt: skip
    table = ramp_table([Totals("engine", [score])])
    assert "| 5–8 % | 50 % (1/2) |" in table
    assert "| no whole night | 0 % (0/1) |" in table
    assert "| ≥ 8 % | — |" in table
