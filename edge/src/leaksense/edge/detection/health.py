"""Sensor health: each reading of a series is judged before leak detection sees it.

A sensor clock off the gateway's (skew.py), a gap longer than ``gap_s``, a meter
index going backwards, an impossible value (for a DMA, a negative balance over an
hour: balance.py), a value stuck for ``flatline_s``. Each raises a sensor-fault
alert and pauses the series' leak detection (through ``pause``); a faulty reading
never feeds it. Lone spikes are judged later, against the model (:meth:`SensorHealth.spike`,
called by series.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable

from leaksense.core.messages import Alert, AlertKind
from leaksense.edge.detection import texts
from leaksense.edge.detection.artifact import DetectionParams
from leaksense.edge.detection.balance import HourlyBalance
from leaksense.edge.detection.events import EventBook
from leaksense.edge.detection.skew import SkewWatch

Held = tuple[float, float, float, float]
"""A reading held back: (time, flow, expected flow, z)."""


class SensorHealth:
    """The health checks of one series (a meter, or a DMA's net inflow)."""

    def __init__(
        self,
        book: EventBook,
        pause: Callable[[float], None],
        params: DetectionParams,
        *,
        is_dma: bool,
        clock_tolerance_s: float,
        interval_s: float,
    ) -> None:
        self.book = book
        self._pause = pause
        self.params = params
        self.night_baseline_m3h = 0.0
        """From the series' model: a DMA inlet never rests, so zero stuck is a fault."""
        self.flat_start_s = 0.0
        """When the value last changed (a DMA makes no burst of a stuck meter)."""
        self._flat_value = math.nan
        self._last_index: float | None = None
        self._balance = HourlyBalance() if is_dma else None
        self._skew = SkewWatch(clock_tolerance_s, interval_s)
        self._held: list[Held] = []
        self._last_spike_s = -math.inf
        self.absurd_m3h = math.inf
        """A reading above this (and ``spike_z`` above the expected) is held back:
        set from the series' model."""

    def spike(self, reading: Held, alerts: list[Alert]) -> list[Held] | None:
        """Hold back a reading ``(time, flow, expected, z)`` far out of line: a lone one
        is a spike (a sensor fault, alerted once a day at most), not a burst. Returns
        the readings to go on with now (held ones first), or None to wait."""
        epoch_s, flow, _, z = reading
        held = self._held
        if z > self.params.spike_z and flow > self.absurd_m3h and len(held) < 2:
            held.append(reading)
            return None
        self._held = []
        if not held or z >= 3.0:
            return [*held, reading]
        if epoch_s - self._last_spike_s > 86_400:
            self._last_spike_s = epoch_s
            alerts.append(
                self.book.one_shot(
                    "spike",
                    AlertKind.SENSOR_FAULT,
                    started_s=held[0][0],
                    now_s=epoch_s,
                    texts=texts.fault("spike", max(h[1] for h in held)),
                    fault="spike",
                )
            )
        self._pause(epoch_s)  # and the DMA this meter feeds is paused with it
        return [reading]

    def check(
        self,
        epoch_s: float,
        last_s: float | None,
        flow: float,
        index: float | None,
        alerts: list[Alert],
    ) -> bool:
        """Judge one reading (``last_s``: the series' previous one); False: faulty,
        leak detection must not see it."""
        p, book = self.params, self.book
        if last_s is not None and epoch_s - last_s > p.gap_s:
            hours = (epoch_s - last_s) / 3600
            alerts.append(
                book.one_shot(
                    "dropout",
                    AlertKind.SENSOR_FAULT,
                    started_s=last_s,
                    now_s=epoch_s,
                    texts=texts.fault("dropout", hours=hours),
                    fault="dropout",
                )
            )
            self._pause(epoch_s)
        if index is not None:
            if self._last_index is not None and index < self._last_index - 1e-6:
                alerts.append(
                    book.one_shot(
                        "counter",
                        AlertKind.SENSOR_FAULT,
                        started_s=epoch_s,
                        now_s=epoch_s,
                        texts=texts.fault("counter_reset", index),
                        fault="counter_reset",
                    )
                )
            self._last_index = index
        if (wrong := self._impossible(epoch_s, flow)) is not None:
            if book.get("impossible") is None:
                alerts.append(
                    book.open(
                        "impossible",
                        AlertKind.SENSOR_FAULT,
                        started_s=epoch_s,
                        now_s=epoch_s,
                        flow_m3h=0.0,
                        confidence=1.0,
                        texts=texts.fault(*wrong),
                        fault="impossible_value",
                    )
                )
            self._pause(epoch_s)
            return False
        if (closed := book.close("impossible", epoch_s)) is not None:
            alerts.append(closed)
        return self._flatline(epoch_s, flow, alerts)

    def check_clock(self, epoch_s: float, received_s: float, alerts: list[Alert]) -> None:
        """A sensor clock off the gateway's (skew.py) is a sensor fault: its readings
        are mistimed, so leak detection pauses while it lasts."""
        error_s = self._skew.observe(epoch_s, received_s)
        book = self.book
        if error_s is None:
            alerts.extend(a for a in [book.close("clock", received_s)] if a is not None)
            return
        if book.get("clock") is None:
            key = "clock_ahead" if error_s > 0 else "clock_behind"
            alerts.append(
                book.open(
                    "clock",
                    AlertKind.SENSOR_FAULT,
                    started_s=received_s,
                    now_s=received_s,
                    flow_m3h=0.0,
                    confidence=1.0,
                    texts=texts.fault(key, abs(error_s) / 60),
                    fault="clock",
                )
            )
        self._pause(max(epoch_s, received_s))

    def _impossible(self, epoch_s: float, flow: float) -> tuple[str, float] | None:
        """What is impossible about this reading (a key of ``texts.FAULTS``, a value).

        A DMA's net inflow is judged on its hourly mean (balance.py): one reading
        below zero is a pulse meter's resolution, an hour of it a meter fault.
        """
        p = self.params
        lowest = p.min_flow_m3h if self._balance is None else -p.max_flow_m3h
        if not lowest <= flow <= p.max_flow_m3h:
            return "impossible_value", flow
        mean = None if self._balance is None else self._balance.add(epoch_s, flow)
        if mean is not None and mean < p.min_flow_m3h:
            return "negative_balance", mean
        return None

    def _flatline(self, epoch_s: float, flow: float, alerts: list[Alert]) -> bool:
        book = self.book
        if flow != self._flat_value:
            self._flat_value, self.flat_start_s = flow, epoch_s
            if (closed := book.close("flatline", epoch_s)) is not None:
                alerts.append(closed)
                self._pause(epoch_s)
            return True
        stuck_s = epoch_s - self.flat_start_s
        if stuck_s < self.params.flatline_s or not self._stuck_is_abnormal(flow):
            return True
        if book.get("flatline") is None:
            alerts.append(
                book.open(
                    "flatline",
                    AlertKind.SENSOR_FAULT,
                    started_s=self.flat_start_s,
                    now_s=epoch_s,
                    flow_m3h=0.0,
                    confidence=1.0,
                    texts=texts.fault("flatline", flow, stuck_s / 3600),
                    fault="flatline",
                )
            )
        self._pause(epoch_s)
        return False

    def _stuck_is_abnormal(self, flow: float) -> bool:
        """A constant non-zero flow is a stuck sensor; a constant zero only where the
        series is never at rest (a DMA inlet), not at a customer's meter at night."""
        if abs(flow) > self.params.zero_flow_m3h:
            return True
        return self.night_baseline_m3h > 10 * self.params.zero_flow_m3h
