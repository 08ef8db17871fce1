"""Simulated readings per second (generation only, no files, no MQTT).

Run: ``uv run python benchmarks/bench_simulator.py [days] [repeats]``.
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime

from leaksense.simulator.generate import simulate
from leaksense.simulator.scenario import saint_savin


def main(days: int = 14, repeats: int = 5) -> None:
    """Best-of-``repeats`` generation rate for Saint-Savin over ``days``."""
    scenario = saint_savin(datetime(2026, 1, 5, tzinfo=UTC), days)
    best_s, count = float("inf"), 0
    for seed in range(repeats):
        began = time.perf_counter()
        count = len(simulate(scenario, seed).readings)
        best_s = min(best_s, time.perf_counter() - began)
    print(
        f"saint-savin {days} days: {count} readings in {best_s:.3f} s "
        f"= {count / best_s:,.0f} readings/s (best of {repeats})"
    )


if __name__ == "__main__":
    main(*(int(arg) for arg in sys.argv[1:3]))
