"""``leaksense detect``: replay a readings CSV through the gateway's detection, causally.

Rows are read fast (csv + ``datetime.fromisoformat``, no per-row model), sorted by
time, and fed one by one to the same :class:`DetectionEngine` the gateway runs: an
alert at time t uses nothing after t. Each alert event is written once, at its first
detection, as one JSON line.
"""

from __future__ import annotations

import csv
import logging
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO

from leaksense.core.errors import InvalidInput
from leaksense.core.messages import ID_PATTERN, Alert
from leaksense.edge.detection.engine import DetectionEngine

log = logging.getLogger(__name__)
REQUIRED = ("time", "sensor_id", "flow_m3h")


@dataclass
class CsvReadings:
    """Parsed rows as parallel columns, with what was rejected."""

    epoch_s: list[float] = field(default_factory=list)
    sensor_id: list[str] = field(default_factory=list)
    flow_m3h: list[float] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)


def read_csv(path: Path, *, strict: bool = False) -> CsvReadings:
    """Read ``time,sensor_id,flow_m3h`` rows; bad rows are rejected with their line."""
    valid_id = re.compile(ID_PATTERN).match
    out = CsvReadings()
    try:
        handle = path.open(newline="", encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc}") from exc
    with handle:
        reader = csv.reader(handle)
        header = next(reader, [])
        missing = [c for c in REQUIRED if c not in header]
        if missing:
            raise InvalidInput(f"{path} line 1: missing column(s) {', '.join(missing)}")
        i_t, i_s, i_f = (header.index(c) for c in REQUIRED)
        for line, row in enumerate(reader, start=2):
            try:
                time = datetime.fromisoformat(row[i_t])
                flow = float(row[i_f])
                sensor = row[i_s]
            except (ValueError, IndexError) as exc:
                _reject(out, path, line, f"unreadable row ({exc})", strict)
                continue
            if time.tzinfo is None:
                _reject(out, path, line, "time has no timezone (use UTC, e.g. ...Z)", strict)
            elif not math.isfinite(flow):
                _reject(out, path, line, "flow_m3h is not a finite number", strict)
            elif not valid_id(sensor):
                _reject(out, path, line, f"sensor_id {sensor[:40]!r} is not valid", strict)
            else:
                out.epoch_s.append(time.timestamp())
                out.sensor_id.append(sensor)
                out.flow_m3h.append(flow)
    return out


def _reject(out: CsvReadings, path: Path, line: int, why: str, strict: bool) -> None:
    message = f"{path} line {line}: {why}"
    if strict:
        raise InvalidInput(message)
    out.rejected.append(message)


def order(readings: CsvReadings) -> Iterator[int]:
    """Row indexes in time order (stable for equal times)."""
    return iter(sorted(range(len(readings.epoch_s)), key=readings.epoch_s.__getitem__))


def detect(
    engine: DetectionEngine,
    readings: CsvReadings,
    out: IO[str],
    progress: Callable[[int], None] | None = None,
) -> int:
    """Feed every row in time order; write each new alert event once; return the count."""
    seen: set[str] = set()
    written = 0
    epoch, sensor, flow = readings.epoch_s, readings.sensor_id, readings.flow_m3h
    for n, i in enumerate(order(readings), start=1):
        for alert in engine.observe_values(sensor[i], epoch[i], flow[i]):
            if alert.alert_id not in seen:
                seen.add(alert.alert_id)
                out.write(_line(alert))
                written += 1
        if progress is not None and n % 10_000 == 0:
            progress(10_000)
    return written


def _line(alert: Alert) -> str:
    return alert.model_dump_json(exclude_none=True) + "\n"
