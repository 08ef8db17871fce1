"""Shared pieces of the path benchmark: sizes, names, the figures it collects and their timing."""

from __future__ import annotations

import gc
import resource
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import ParamSpec

P = ParamSpec("P")
GATEWAY_ID = "gw-bench"
DMA_ID = "dma-bench"
INLETS = ("inlet-1", "inlet-2")
US = 1_000_000


class BenchError(RuntimeError):
    """A stage could not run to the end (lost messages, a server that did not start)."""


@dataclass(frozen=True)
class Sizes:
    messages: int
    points: int
    mqtt_repeats: int
    store_repeats: int
    yield_days: int
    yield_runs: int


FULL = Sizes(20_000, 100_000, 3, 3, 30, 15)
QUICK = Sizes(2_000, 10_000, 1, 1, 7, 5)


@dataclass(frozen=True)
class Row:
    """One line of the result table."""

    stage: str
    leaksense: str
    raw: str
    ratio: str


@dataclass
class Figures:
    """Everything measured in one run: table rows and notes on how they were made."""

    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    samples: dict[str, list[float]] = field(default_factory=dict)

    def add(self, name: str, value: float) -> None:
        self.samples.setdefault(name, []).append(value)

    def median(self, name: str) -> float:
        return statistics.median(self.samples[name])

    def spread(self, name: str, unit: str) -> str:
        values = self.samples[name]
        return f"{name} {min(values):,.0f}–{max(values):,.0f} {unit}"

    def rate(self, stage: str, unit: str, leaksense: float, raw: float | None) -> None:
        """A throughput line; the ratio is Leaksense ÷ raw."""
        raw_text = f"{raw:,.0f} {unit}" if raw else "—"
        ratio = f"{leaksense / raw:.2f}" if raw else "—"
        self.rows.append(Row(stage, f"{leaksense:,.0f} {unit}", raw_text, ratio))

    def latency(self, stage: str, leaksense_s: float, raw_s: float) -> None:
        """A duration line; the ratio is raw time ÷ Leaksense time (a speed ratio)."""
        ms = f"{leaksense_s * 1000:,.1f} ms", f"{raw_s * 1000:,.1f} ms"
        self.rows.append(Row(stage, *ms, f"{raw_s / leaksense_s:.2f}"))


def timed(fn: Callable[P, object], *args: P.args, **kwargs: P.kwargs) -> float:
    """Seconds ``fn(*args, **kwargs)`` took."""
    began = time.perf_counter()
    fn(*args, **kwargs)
    return time.perf_counter() - began


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@contextmanager
def frozen_heap() -> Iterator[None]:
    """Keep the benchmark's own prepared data out of the GC's full collections."""
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
