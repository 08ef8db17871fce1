"""False-alarm feedback from the server: per-series detection threshold multipliers.

Technicians who resolve alerts as false alarms make the server raise that series'
multiplier (1.0 to 2.0, docs/alerts.md); ``GET /api/v1/sensitivity`` serves them.
Every ``[models] refresh_s`` the gateway fetches them, hands them to the detection
engine (which scales its CUSUM decision thresholds) and keeps them in
``[models] dir``/``sensitivity.json``, so a restarted gateway that cannot reach the
server keeps them. A multiplier can only make a series less sensitive, and by at most
×2: values out of that range or for invalid series ids are refused, counted, logged.

The same answer lists the alerts people **dismissed** (judged ``false_alarm`` or
``sensor_fault``) that this gateway still reports as going on: each is handed to the
engine, whose series closes it and expects its flow from then on
(``detection/accepted.py``). The series keeps that in its events file; a dismissal
listed again (its closing alert not yet sent) finds nothing open and does nothing.
"""

from __future__ import annotations

import json
import logging
import math
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from leaksense.core.errors import AuthenticationError, UplinkUnavailable
from leaksense.core.messages import ID_PATTERN, NOT_A_LEAK
from leaksense.edge.atomic import write_atomic
from leaksense.edge.config import GatewayConfig
from leaksense.edge.http import TransportError, gateway_client
from leaksense.edge.polling import refresh_periodically

log = logging.getLogger(__name__)
SENSITIVITY_PATH = "/api/v1/sensitivity"
FILE_NAME = "sensitivity.json"
MIN_MULTIPLIER, MAX_MULTIPLIER = 1.0, 2.0
MAX_FLOW_M3H = 100_000.0
Tuner = Callable[[Mapping[str, float]], int]
"""Applies multipliers (``DetectionEngine.set_sensitivity``); returns how many series."""


@dataclass(frozen=True, slots=True)
class Dismissal:
    """An alert people judged not a leak, with its flow at the verdict."""

    alert_id: str
    flow_m3h: float
    resolution: str


Dismisser = Callable[[Sequence[Dismissal]], int]
"""Closes the dismissed alerts still open (the runner, through the engine); returns
how many it closed."""


def _no_dismissals(dismissals: Sequence[Dismissal]) -> int:
    return 0


class SensitivitySync:
    """Keeps the engine's per-series threshold multipliers in step with the server."""

    def __init__(
        self,
        config: GatewayConfig,
        token: str,
        tune: Tuner,
        dismiss: Dismisser = _no_dismissals,
    ) -> None:
        self._path: Path = config.models.dir / FILE_NAME
        self._refresh_s = config.models.refresh_s
        self._tune = tune
        self._dismiss = dismiss
        self._http = gateway_client(config.uplink.url, token, config.uplink.timeout_s)
        self._current: dict[str, float] = {}
        self._unsupported = False
        self.refused = 0

    @property
    def current(self) -> dict[str, float]:
        """The multipliers in use, by series id."""
        return dict(self._current)

    def load_saved(self) -> int:
        """Apply the multipliers saved by an earlier run; returns how many series."""
        try:
            data = json.loads(self._path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return 0
        except (OSError, ValueError) as exc:
            log.error("ignored %s: %s", self._path, exc)
            return 0
        return self._apply(self._valid(data if isinstance(data, dict) else {}), save=False)

    def refresh(self) -> int:
        """Fetch and apply the server's multipliers and dismissals; returns how many
        series changed plus how many dismissed alerts were closed.

        Raises :class:`UplinkUnavailable` or :class:`AuthenticationError` when the
        server cannot be asked. A server without the endpoint (HTTP 404) is not an
        error: the gateway keeps its current multipliers.
        """
        if self._unsupported:
            return 0
        try:
            response = self._http.get(SENSITIVITY_PATH)
        except TransportError as exc:
            raise UplinkUnavailable(f"server unreachable: {exc}") from exc
        if response.status == 404:
            self._unsupported = True
            log.info("the server serves no %s: no false-alarm feedback", SENSITIVITY_PATH)
            return 0
        if response.status == 401:
            raise AuthenticationError("server refused the gateway token for sensitivity")
        if response.status != 200:
            raise UplinkUnavailable(f"sensitivity: server answered HTTP {response.status}")
        try:
            body = response.json()
        except ValueError as exc:
            raise UplinkUnavailable(f"sensitivity: answer is not JSON: {exc}") from exc
        series = body.get("series") if isinstance(body, dict) else None
        if not isinstance(series, dict):
            raise UplinkUnavailable("sensitivity: answer has no 'series' object")
        flat = {
            k: v.get("threshold_multiplier") if isinstance(v, dict) else None
            for k, v in series.items()
        }
        changed = self._apply(self._valid(flat), save=True)
        dismissed = body.get("dismissed", [])
        if not isinstance(dismissed, list):
            raise UplinkUnavailable("sensitivity: 'dismissed' is not a list")
        return changed + self._dismiss(self._valid_dismissals(dismissed))

    def run(self, stop: threading.Event) -> None:
        """Refresh now, then every ``refresh_s``, until ``stop`` is set."""
        refresh_periodically(stop, self.refresh, self._refresh_s, "detection sensitivity", log)

    def close(self) -> None:
        self._http.close()

    def _valid(self, raw: Mapping[str, Any]) -> dict[str, float]:
        valid: dict[str, float] = {}
        for series_id, value in raw.items():
            ok_value = isinstance(value, int | float) and not isinstance(value, bool)
            if (
                ok_value
                and math.isfinite(value)
                and MIN_MULTIPLIER <= value <= MAX_MULTIPLIER
                and re.fullmatch(ID_PATTERN, series_id)
            ):
                valid[series_id] = float(value)
            else:
                self.refused += 1
                log.error("refused sensitivity %r for series %r", value, series_id)
        return valid

    def _valid_dismissals(self, raw: list[Any]) -> list[Dismissal]:
        valid: list[Dismissal] = []
        for item in raw:
            entry = item if isinstance(item, dict) else {}
            alert_id, flow, resolution = (
                entry.get(k) for k in ("alert_id", "flow_m3h", "resolution")
            )
            if (
                isinstance(alert_id, str)
                and 0 < len(alert_id) <= 128
                and isinstance(flow, int | float)
                and not isinstance(flow, bool)
                and 0.0 <= flow <= MAX_FLOW_M3H
                and resolution in NOT_A_LEAK
            ):
                valid.append(Dismissal(alert_id, float(flow), str(resolution)))
            else:
                self.refused += 1
                log.error("refused dismissal %r", item)
        return valid

    def _apply(self, multipliers: dict[str, float], *, save: bool) -> int:
        # a series the server no longer lists goes back to 1.0
        wanted = dict.fromkeys(self._current, MIN_MULTIPLIER) | multipliers
        changed = {k: v for k, v in wanted.items() if self._current.get(k, MIN_MULTIPLIER) != v}
        if not changed:
            return 0
        self._tune(changed)
        self._current = {k: v for k, v in wanted.items() if v != MIN_MULTIPLIER}
        if save:
            self._save()
        return len(changed)

    def _save(self) -> None:
        """Write atomically; a failure only means the next start fetches them again."""
        try:
            write_atomic(self._path, json.dumps(self._current, sort_keys=True).encode())
        except OSError as exc:
            log.error("cannot save %s: %s", self._path, exc)
