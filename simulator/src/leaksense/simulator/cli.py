"""``leaksense simulate`` and ``leaksense replay``: scenarios to files, or to a broker."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from leaksense.core.messages import Reading
from leaksense.simulator.files import read_readings_csv, write_simulation
from leaksense.simulator.generate import simulate
from leaksense.simulator.publish import Broker, esphome_nodes, publish_readings
from leaksense.simulator.scenario import BUILTIN, Scenario

DEFAULT_START = "2026-01-05"
_EXIT_INTERRUPTED = 130

Days = Annotated[int, typer.Option(min=1, help="Length of the simulated window, in days.")]
Seed = Annotated[int, typer.Option(help="Random seed: same seed, same readings.")]
Start = Annotated[
    str, typer.Option(help="First instant, ISO 8601 (a date is midnight; UTC if no offset).")
]


def _start(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise typer.BadParameter(f"{text!r} is not an ISO 8601 date", param_hint="--start") from exc
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _scenario(name: str, start: str, days: int) -> Scenario:
    if name not in BUILTIN:
        raise typer.BadParameter(f"unknown scenario {name!r}; built in: {', '.join(BUILTIN)}")
    return BUILTIN[name](_start(start), days)


def simulate_command(
    scenario: Annotated[str, typer.Argument(help=f"Built-in scenario: {', '.join(BUILTIN)}.")],
    out: Annotated[Path, typer.Option(help="Directory for readings.csv, billing.csv, truth.json.")],
    days: Days = 14,
    seed: Seed = 0,
    start: Start = DEFAULT_START,
) -> None:
    """Simulate a scenario into readings, billing and ground-truth files."""
    spec = _scenario(scenario, start, days)
    sim = simulate(spec, seed)
    files = write_simulation(sim, out)
    billed_m3 = sum(b.volume_m3 for b in sim.billing)
    last_step = spec.end - timedelta(seconds=spec.interval_s)
    typer.echo(
        f"{spec.name}: {len(sim.readings)} readings from {len(spec.sensors)} sensors, "
        f"{spec.days} days every {spec.interval_s} s from {spec.start.isoformat()}, seed {seed}\n"
        f"billing: {len(sim.billing)} periods, {billed_m3:.1f} m³; "
        f"leaks: {len(spec.leaks)}, {sim.truth.nominal_leakage_m3:.1f} m³ lost (nominal)\n"
        f"nominal yield: before {spec.nominal_yield(spec.start):.2%}, "
        f"after {spec.nominal_yield(last_step):.2%}\n"
        f"wrote {files.readings}, {files.billing}, {files.truth}"
    )


def _readings(
    source: str, start: str, days: int, seed: int, site: str | None
) -> tuple[list[Reading], str, dict[str, str]]:
    """Readings, site and ESPHome nodes from a built-in scenario or a readings CSV."""
    if source in BUILTIN:
        spec = _scenario(source, start, days)
        return simulate(spec, seed).readings, site or spec.site, esphome_nodes(spec)
    path = Path(source)
    if not path.is_file():
        raise typer.BadParameter(f"{source!r} is neither a built-in scenario nor a file")
    if site is None:
        raise typer.BadParameter("--site is required to replay a CSV", param_hint="--site")
    return read_readings_csv(path), site, {}


def _esphome_option(pairs: list[str]) -> dict[str, str]:
    nodes = {}
    for pair in pairs:
        sensor_id, _, node = pair.partition("=")
        if not sensor_id or not node:
            raise typer.BadParameter(f"{pair!r} is not SENSOR_ID=NODE", param_hint="--esphome")
        nodes[sensor_id] = node
    return nodes


def replay_command(
    source: Annotated[str, typer.Argument(help="Built-in scenario name or readings CSV path.")],
    *,
    broker: Annotated[
        str,
        typer.Option(
            envvar="LEAKSENSE_MQTT_URL", help="mqtt://[user:password@]host:port (mqtts:// TLS)."
        ),
    ] = "mqtt://localhost:1883",
    speed: Annotated[
        float | None, typer.Option(min=0, help="1 = real time, N = N times faster, 0 = max.")
    ] = None,
    max_speed: Annotated[bool, typer.Option(help="As fast as the broker acknowledges.")] = False,
    seed: Seed = 0,
    days: Days = 14,
    start: Start = DEFAULT_START,
    shift_to_now: Annotated[
        bool, typer.Option(help="Move timestamps so the first is now.")
    ] = False,
    site: Annotated[str | None, typer.Option(help="Site in topics (default: scenario's).")] = None,
    esphome: Annotated[
        list[str] | None, typer.Option(help="SENSOR_ID=NODE: publish ESPHome-style (CSV).")
    ] = None,
    ca_file: Annotated[Path | None, typer.Option(help="CA certificate; turns TLS on.")] = None,
) -> None:
    """Publish a scenario or a readings CSV over MQTT, paced like the real meters."""
    if speed is not None and max_speed:
        raise typer.BadParameter("give --speed or --max-speed, not both", param_hint="--speed")
    readings, site, nodes = _readings(source, start, days, seed, site)
    nodes |= _esphome_option(esphome or [])
    pace = None if max_speed else (1.0 if speed is None else speed)
    columns = (TextColumn("replay"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns) as progress:
        task = progress.add_task("replay", total=len(readings))
        result = publish_readings(
            readings,
            Broker.from_url(broker, ca_file),
            site=site,
            esphome=nodes,
            speed=pace,
            shift_to_now=shift_to_now,
            on_progress=lambda n: progress.advance(task, n),
        )
    state = "stopped" if result.interrupted else "done"
    typer.echo(f"{state}: {result.published} published, {result.acknowledged} acknowledged")
    if result.interrupted:
        raise typer.Exit(_EXIT_INTERRUPTED)


def register(app: typer.Typer) -> None:
    """Add ``simulate`` and ``replay`` to the ``leaksense`` command."""
    app.command("simulate")(simulate_command)
    app.command("replay")(replay_command)
