"""Simulation files: readings and billing as CSV, ground truth as JSON.

Files are a boundary like MQTT: every row read back goes through the wire models, and
the first bad row fails the whole read with its line number and field, so a caller
never works on half a file. Simulated readings are written straight from their numpy
columns (no :class:`Reading` per row): that is what makes ``leaksense simulate`` fast.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from pydantic import TypeAdapter, ValidationError

from leaksense.core.errors import InvalidInput
from leaksense.core.messages import Identifier, IndexM3, Reading, UtcDatetime, WireModel
from leaksense.simulator.billing import BilledPeriod, CustomerBill
from leaksense.simulator.generate import MeterSeries, Simulation, merged_order
from leaksense.simulator.timegrid import IntArray
from leaksense.simulator.truth import TRUTH_FORMAT, Truth

READINGS_HEADER = ("time", "sensor_id", "flow_m3h", "index_m3")
BILLING_HEADER = ("dma_id", "period_start", "period_end", "volume_m3")
CUSTOMER_BILLING_HEADER = ("customer_id", *BILLING_HEADER)
_ROWS_PER_WRITE = 100_000
T = TypeVar("T")
_TRUTH = TypeAdapter(Truth)


class _BillingRow(WireModel):
    dma_id: Identifier
    period_start: UtcDatetime
    period_end: UtcDatetime
    volume_m3: IndexM3


@dataclass(frozen=True, slots=True)
class SimulationFiles:
    """Where :func:`write_simulation` put each file."""

    readings: Path
    billing: Path
    customer_billing: Path
    truth: Path


def iso_utc(time: datetime) -> str:
    """ISO 8601 in UTC with a ``Z``, the form every Leaksense file uses."""
    return time.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def _read_csv(path: Path, header: Sequence[str], parse: Callable[[dict[str, Any]], T]) -> list[T]:
    """Parse every row or none: the first bad one raises, naming line and field."""
    try:
        with path.open(newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InvalidInput(f"{path}: cannot read: {exc}") from exc
    if not rows or tuple(rows[0]) != tuple(header):
        raise InvalidInput(f"{path}, line 1: header must be {','.join(header)}")
    parsed = []
    for line, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise InvalidInput(
                f"{path}, line {line}: expected {len(header)} fields, got {len(row)}"
            )
        try:
            parsed.append(parse({k: v or None for k, v in zip(header, row, strict=True)}))
        except ValidationError as exc:
            error = exc.errors()[0]
            field = ".".join(str(part) for part in error["loc"])
            raise InvalidInput(f"{path}, line {line}, field {field}: {error['msg']}") from exc
    return parsed


def write_readings_csv(path: Path, readings: Iterable[Reading]) -> None:
    """Write ``time,sensor_id,flow_m3h,index_m3`` rows (empty index when unknown)."""
    _write_csv(
        path,
        READINGS_HEADER,
        (
            (
                iso_utc(r.time),
                r.sensor_id,
                repr(r.flow_m3h),
                "" if r.index_m3 is None else repr(r.index_m3),
            )
            for r in readings
        ),
    )


def _column(series: Sequence[MeterSeries], flat: IntArray, index: bool) -> list[str]:
    """One column of every reading as text, in ``flat`` order (no index: empty)."""
    parts = [
        (s.index_m3 if s.index_m3 is not None else np.full(len(s), np.nan)) if index else s.flow_m3h
        for s in series
    ]
    text = map(repr, np.concatenate(parts)[flat].tolist())
    return ["" if t == "nan" else t for t in text] if index else list(text)


def write_series_csv(path: Path, series: Sequence[MeterSeries]) -> int:
    """Write readings from columns, time-ordered like :attr:`Simulation.readings`."""
    times, sensor, position = merged_order(tuple(series))
    flat = np.cumsum([0, *(len(s) for s in series)])[:-1][sensor] + position
    flows, indexes = _column(series, flat, index=False), _column(series, flat, index=True)
    unique, which = np.unique(times, return_inverse=True)
    stamps = [f"{t}Z" for t in np.datetime_as_string(unique.astype("datetime64[s]"), unit="s")]
    ids = [s.sensor_id for s in series]
    with path.open("w", encoding="utf-8", newline="") as f:
        f.write(",".join(READINGS_HEADER) + "\n")
        for lo in range(0, len(flows), _ROWS_PER_WRITE):
            hi = lo + _ROWS_PER_WRITE
            rows = zip(which[lo:hi].tolist(), sensor[lo:hi].tolist(), strict=True)
            f.write(
                "".join(
                    f"{stamps[t]},{ids[s]},{q},{i}\n"
                    for (t, s), q, i in zip(rows, flows[lo:hi], indexes[lo:hi], strict=True)
                )
            )
    return len(flows)


def read_readings_csv(path: Path) -> list[Reading]:
    """Read and validate a readings CSV."""
    return _read_csv(path, READINGS_HEADER, Reading.model_validate)


def write_billing_csv(path: Path, billing: Iterable[BilledPeriod]) -> None:
    """Write one row per billing period."""
    _write_csv(
        path,
        BILLING_HEADER,
        (
            (b.dma_id, iso_utc(b.period_start), iso_utc(b.period_end), repr(b.volume_m3))
            for b in billing
        ),
    )


def _billed_period(row: dict[str, Any]) -> BilledPeriod:
    valid = _BillingRow.model_validate(row)
    return BilledPeriod(valid.dma_id, valid.period_start, valid.period_end, valid.volume_m3)


def read_billing_csv(path: Path) -> list[BilledPeriod]:
    """Read and validate a billing CSV."""
    return _read_csv(path, BILLING_HEADER, _billed_period)


def write_customer_billing_csv(path: Path, bills: Iterable[CustomerBill]) -> None:
    """One row per account and billing period (``billing.csv`` is their sum per DMA)."""
    _write_csv(
        path,
        CUSTOMER_BILLING_HEADER,
        (
            (
                b.customer_id,
                b.dma_id,
                iso_utc(b.period_start),
                iso_utc(b.period_end),
                repr(b.volume_m3),
            )
            for b in bills
        ),
    )


def write_truth_json(path: Path, truth: Truth) -> None:
    """Write the ground truth (``leaksense.truth/1``)."""
    data = _TRUTH.dump_python(truth, mode="json")
    path.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def read_truth_json(path: Path) -> Truth:
    """Read the ground truth back, refusing other formats."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError("expected a JSON object")
        if data.get("format") != TRUTH_FORMAT:
            raise ValueError(f"format must be {TRUTH_FORMAT!r}")
        truth = _TRUTH.validate_python(data)
    except (OSError, ValueError) as exc:  # ValidationError and JSONDecodeError included
        raise InvalidInput(f"{path}: not a truth file: {exc}") from exc
    if truth.start.tzinfo is None or truth.end.tzinfo is None:
        raise InvalidInput(f"{path}: start and end must carry a UTC offset")
    return truth


def write_simulation(simulation: Simulation, directory: Path) -> SimulationFiles:
    """Write ``readings.csv``, ``billing.csv``, ``billing-customers.csv`` and ``truth.json``."""
    directory.mkdir(parents=True, exist_ok=True)
    files = SimulationFiles(
        directory / "readings.csv",
        directory / "billing.csv",
        directory / "billing-customers.csv",
        directory / "truth.json",
    )
    write_series_csv(files.readings, simulation.series)
    write_billing_csv(files.billing, simulation.billing)
    write_customer_billing_csv(files.customer_billing, simulation.customer_billing)
    write_truth_json(files.truth, simulation.truth)
    return files
