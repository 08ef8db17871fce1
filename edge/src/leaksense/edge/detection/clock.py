"""Local calendar of a reading: day type and time slot in the network's time zone.

People live in local time, so demand profiles are indexed by local day type and
quarter-hour; converting each reading is cached per UTC hour (a DST change moves
the profile by an hour, as the consumers do).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

SLOTS_PER_DAY = 96
SLOT_S = 900
WEEKDAY, SATURDAY, SUNDAY = 0, 1, 2
DAY_TYPES = 3
"""Weekday, Saturday, Sunday-or-holiday."""


class LocalClock:
    """Maps UTC epoch seconds to (local date, day type, quarter-hour slot, local hour)."""

    def __init__(self, timezone: str = "Europe/Paris", holidays: Iterable[date] = ()) -> None:
        self.zone = ZoneInfo(timezone)
        self.holidays = frozenset(holidays)
        self._hour = -1
        self._hour_start_sod = 0  # local second-of-day at the start of the cached UTC hour
        self._day: date = date.min
        self._day_type = WEEKDAY

    def locate(self, epoch_s: float) -> tuple[date, int, int, int]:
        """``(local date, day type, slot, local hour)`` of an instant."""
        hour = int(epoch_s // 3600)
        if hour != self._hour:
            self._refresh(hour)
        second_of_day = self._hour_start_sod + int(epoch_s - hour * 3600)
        if second_of_day >= 86_400:  # offsets that are not whole hours cross midnight mid-hour
            day = self._day + timedelta(days=1)
            second_of_day -= 86_400
            return day, self.day_type(day), second_of_day // SLOT_S, second_of_day // 3600
        return self._day, self._day_type, second_of_day // SLOT_S, second_of_day // 3600

    def hours_between(self, start_s: float, end_s: float) -> tuple[int, ...]:
        """The local hours a span covers, by quarter hours (empty: a whole day or more,
        so every hour)."""
        if end_s - start_s >= 86_400.0:
            return ()
        steps = range(int((end_s - start_s) // SLOT_S) + 1)
        return tuple(sorted({self.locate(start_s + SLOT_S * k)[3] for k in steps}))

    def at_hours(
        self, hours: tuple[int, ...]
    ) -> Callable[[npt.NDArray[np.float64]], npt.NDArray[np.bool_]] | None:
        """Selects the epoch seconds at those local hours (None: every hour)."""
        if not hours:
            return None
        locate = self.locate

        def where(epoch_s: npt.NDArray[np.float64]) -> npt.NDArray[np.bool_]:
            local = np.fromiter((locate(float(t))[3] for t in epoch_s), np.int64, epoch_s.size)
            return np.isin(local, hours)

        return where

    def day_type(self, day: date) -> int:
        """Weekday, Saturday, or Sunday/holiday."""
        if day in self.holidays or day.weekday() == 6:
            return SUNDAY
        return SATURDAY if day.weekday() == 5 else WEEKDAY

    def _refresh(self, hour: int) -> None:
        start = datetime.fromtimestamp(hour * 3600, tz=UTC).astimezone(self.zone)
        self._hour = hour
        self._hour_start_sod = start.hour * 3600 + start.minute * 60 + start.second
        self._day = start.date()
        self._day_type = self.day_type(self._day)
