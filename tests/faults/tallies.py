"""A scenario's outcome: what InfluxDB holds against what was published, and the report.

Read back from influxd itself, not through the server, so that the count does not
depend on the code under test; :func:`tally` compares, :func:`write_report` writes
the run's table (``build/fault-injection.md``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx

from faults.bed import Key
from faults.processes import ServerProcess
from services import InfluxDatabase


def stored_points(influx: InfluxDatabase) -> list[tuple[str, int, float]]:
    """Every reading point in the database: ``(sensor_id, time_us, flow_m3h)``."""
    response = httpx.get(
        f"{influx.url}/query",
        params={
            "db": influx.name,
            "q": 'SELECT "flow_m3h" FROM "flow" GROUP BY "sensor_id"',
            "epoch": "u",
        },
        timeout=30,
    )
    response.raise_for_status()
    points = []
    for result in response.json()["results"]:
        assert "error" not in result, result
        for found in result.get("series", []):
            sensor = found["tags"]["sensor_id"]
            points += [(sensor, int(t), float(v)) for t, v in found["values"]]
    return points


def stored_count(influx: InfluxDatabase) -> int:
    """How many reading points the database holds (0 while influxd is down)."""
    try:
        response = httpx.get(
            f"{influx.url}/query",
            params={"db": influx.name, "q": 'SELECT count("flow_m3h") FROM "flow"'},
            timeout=10,
        )
        series_ = response.json()["results"][0].get("series", [])
    except (httpx.HTTPError, ValueError, KeyError):
        return 0
    return int(series_[0]["values"][0][1]) if series_ else 0


@dataclass
class Tally:
    """One scenario's outcome, as reported in build/fault-injection.md."""

    scenario: str
    published: int
    stored: int
    duplicated: int
    lost: int
    dropped_counted: int = 0
    resent: int = 0
    seconds: float = 0.0
    faults: str = ""
    notes: list[str] = field(default_factory=list)


def tally(
    scenario: str, published: dict[Key, float], points: list[tuple[str, int, float]]
) -> Tally:
    """Compare published readings with stored points.

    InfluxDB keys a point by series and time, so a reading written twice is one point:
    a *duplicate* in storage is a point at a time no sensor published (a reading
    stamped again), or a second point for one key. A reading is *stored* when its
    key holds exactly its published value.
    """
    keys = [(sensor, time_us) for sensor, time_us, _ in points]
    values = {(sensor, time_us): flow for sensor, time_us, flow in points}
    stored = sum(1 for key, flow in published.items() if values.get(key) == flow)
    extra = sum(1 for key in set(keys) if key not in published)
    return Tally(
        scenario=scenario,
        published=len(published),
        stored=stored,
        duplicated=len(keys) - len(set(keys)) + extra,
        lost=len(published) - stored,
    )


def server_writes(server: ServerProcess) -> int:
    """Readings the server wrote, summed over its batch log (replays not counted)."""
    return sum(readings for _, readings, _ in server.batches())


def log_lines(text: str, pattern: str) -> int:
    return len(re.findall(pattern, text))


def write_report(path: Path, tallies: Sequence[Tally], command: str) -> str:
    """The Markdown table of a run; written to ``path`` and returned."""
    lines = [
        "| scenario | faults injected | published | stored | duplicated | lost | "
        "dropped (counted) | re-sent, absorbed | time |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for t in tallies:
        lines.append(
            f"| {t.scenario} | {t.faults} | {t.published:,} | {t.stored:,} | {t.duplicated} "
            f"| {t.lost} | {t.dropped_counted:,} | {t.resent:,} | {t.seconds:.1f} s |"
        )
    notes = [f"- **{t.scenario}**: {note}" for t in tallies for note in t.notes]
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    text = "\n".join(
        [f"# Fault-injection suite ({stamp})", "", f"`{command}`", "", *lines, "", *notes, ""]
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return text
