"""The recent level: how far a series' flow runs above or below its profile lately.

What the burst watch expects is the profile times this level, the ratio of two
exponentially weighted averages (half-life ``level_half_life_h``) of the flow and of
the profile. A series starts it from one reading (:meth:`RecentLevel.start`); after
a burst it starts again from zero, so that the readings after the burst weigh alike
at first. Its state is kept across a gateway's restart (eventfile.py): started
again from the first reading after a restart at 04:00, a low one left the level low
for hours, and the morning rise alarmed (docs/detection.md, *Sixteenth round*).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

LN2 = math.log(2)
NIGHTS_KEPT = 8
"""How many nights' levels are kept (:meth:`RecentLevel.before`)."""


@dataclass(frozen=True, slots=True)
class LevelState:
    """A :class:`RecentLevel`'s averages, kept across a gateway's restart."""

    flow_m3h: float
    profile_m3h: float
    nights: tuple[tuple[float, float], ...] = ()
    """The level after each of the last nights judged: (night start, level)."""


class RecentLevel:
    """The recent level of one series: 1.0 until it has a reading."""

    __slots__ = ("_flow", "_half_life_s", "_nights", "_profile")

    def __init__(self, half_life_h: float) -> None:
        self._half_life_s = 3600.0 * half_life_h
        self._flow = self._profile = 0.0
        self._nights: deque[tuple[float, float]] = deque(maxlen=NIGHTS_KEPT)

    def use(self, half_life_h: float) -> None:
        """Average over this half-life from now on."""
        self._half_life_s = 3600.0 * half_life_h

    @property
    def started(self) -> bool:
        return self._profile > 0.0

    @property
    def level(self) -> float:
        return self._flow / self._profile if self._profile > 0.0 else 1.0

    def start(self, flow_m3h: float, profile_m3h: float) -> None:
        """Start from one reading (a profile of zero is no level: not started yet)."""
        self._flow, self._profile = flow_m3h, profile_m3h

    def add(self, flow_m3h: float, profile_m3h: float, dt_s: float) -> None:
        """One more reading of ``flow_m3h`` where the profile expects ``profile_m3h``."""
        a = 1.0 - math.exp(-LN2 * dt_s / self._half_life_s)
        self._flow += a * (flow_m3h - self._flow)
        self._profile += a * (profile_m3h - self._profile)

    def reset(self) -> None:
        """Forget it (after a burst, whose readings it skipped): the next readings
        average from zero, or :meth:`start` it again."""
        self._flow = self._profile = 0.0

    def night_judged(self, night_start_s: float) -> None:
        """A night was judged: remember the level now, for :meth:`before`."""
        if self.started:
            self._nights.append((night_start_s, self.level))

    def before(self, epoch_s: float) -> float:
        """The level after the last night judged that started before ``epoch_s``
        (0: none kept). A night alert's flow was partly taken in by the level in the
        hours before the alert; this is the level without it."""
        return next((lv for start_s, lv in reversed(self._nights) if start_s < epoch_s), 0.0)

    def state(self) -> LevelState:
        return LevelState(self._flow, self._profile, tuple(self._nights))

    def restore(self, state: LevelState) -> None:
        self._flow, self._profile = state.flow_m3h, state.profile_m3h
        self._nights.extend(state.nights)
