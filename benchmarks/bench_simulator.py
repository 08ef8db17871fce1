"""Simulated readings per second, for each built-in scenario.

Three rates: ``generate`` (numpy columns only), ``csv`` (generate and write
readings.csv, billing and truth: what ``leaksense simulate`` does) and ``objects``
(generate and build validated ``Reading`` objects, what replay and the demo use).

Run: ``uv run python benchmarks/bench_simulator.py [days] [repeats]``.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from leaksense.simulator.builtin import BUILTIN_NAMES
from leaksense.simulator.files import write_simulation
from leaksense.simulator.generate import simulate
from leaksense.simulator.scenario import Scenario, builtin_scenario


def best_s(run: Callable[[int], object], repeats: int) -> float:
    """Shortest wall time of ``run(seed)`` over ``repeats`` seeds."""
    best = float("inf")
    for seed in range(repeats):
        began = time.perf_counter()
        run(seed)
        best = min(best, time.perf_counter() - began)
    return best


def measure(scenario: Scenario, repeats: int, directory: Path) -> dict[str, float]:
    count = simulate(scenario, 0).reading_count
    rates = {
        "generate": count / best_s(lambda seed: simulate(scenario, seed), repeats),
        "csv": count
        / best_s(lambda seed: write_simulation(simulate(scenario, seed), directory), repeats),
    }
    if count <= 200_000:  # a million pydantic objects only measure pydantic
        rates["objects"] = count / best_s(lambda seed: simulate(scenario, seed).readings, repeats)
    return {"readings": count, **rates}


def main(days: int = 14, repeats: int = 3) -> None:
    """Best-of-``repeats`` rates for every built-in over ``days``."""
    with tempfile.TemporaryDirectory() as tmp:
        for name in BUILTIN_NAMES:
            scenario = builtin_scenario(name, days=days)
            result = measure(scenario, repeats, Path(tmp))
            rates = ", ".join(
                f"{key} {value:,.0f}/s" for key, value in result.items() if key != "readings"
            )
            print(
                f"{name:12} {days} days, {len(scenario.sensors):5} sensors, "
                f"{int(result['readings']):>9,} readings: {rates} (best of {repeats})"
            )


if __name__ == "__main__":
    main(*(int(arg) for arg in sys.argv[1:3]))
