"""``leaksense simulate`` and ``leaksense replay``: scenarios to files, or to a broker."""

from __future__ import annotations

import re
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from leaksense.core.errors import InvalidInput, LeaksenseError
from leaksense.simulator.builtin import BUILTIN_NAMES

if TYPE_CHECKING:
    from leaksense.simulator.files import SimulationFiles
    from leaksense.simulator.generate import Simulation
    from leaksense.simulator.scenario import Scenario

_EXIT_INTERRUPTED = 130

Seed = Annotated[int, typer.Option(help="Random seed: same seed, same readings.")]


def _start(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise typer.BadParameter(f"{text!r} is not an ISO 8601 date", param_hint="--start") from exc
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _simulate_scenario(name: str, start: str | None, days: int | None) -> Scenario:
    """A built-in scenario by name, or a scenario YAML file by path."""
    from leaksense.simulator.scenario import builtin_scenario, load_scenario

    when = None if start is None else _start(start)
    if name in BUILTIN_NAMES:
        return builtin_scenario(name, when, days)
    path = Path(name)
    if path.suffix not in {".yaml", ".yml"} or not path.is_file():
        raise typer.BadParameter(
            f"unknown scenario {name!r}: give a built-in ({', '.join(BUILTIN_NAMES)}) "
            "or a .yaml scenario file"
        )
    return load_scenario(path, when, days)


def _summary(sim: Simulation, files: SimulationFiles) -> str:
    spec = sim.scenario
    intervals = "/".join(str(s) for s in sorted({s.interval_s for s in spec.sensors}))
    lines = [
        f"{spec.name}: {sim.reading_count} readings from {len(spec.sensors)} sensors, "
        f"{spec.days} days every {intervals} s from {spec.start.isoformat()}, seed {sim.seed}",
        f"billing: {len(sim.billing)} periods, {sum(b.volume_m3 for b in sim.billing):.1f} m³; "
        f"leaks: {len(sim.truth.leaks)}, {sim.truth.real_losses_m3:.1f} m³ lost; "
        f"faults: {len(sim.truth.faults)}",
    ]
    lines += [
        f"{dma.dma_id}: in {dma.system_input_m3:.1f} m³, billed {dma.billed_m3:.1f}, "
        f"unbilled {dma.unbilled_authorised_m3:.1f}, real losses {dma.real_losses_m3:.1f}; "
        f"yield {dma.yield_pct:.2f}% (first day {dma.days[0].yield_pct:.2f}%, "
        f"last day {dma.days[-1].yield_pct:.2f}%)"
        for dma in sim.truth.dmas
    ]
    lines.append(
        f"wrote {files.readings}, {files.billing}, {files.customer_billing}, {files.truth}"
    )
    return "\n".join(lines)


def simulate_command(
    scenario: Annotated[
        str,
        typer.Argument(help=f"Built-in scenario ({', '.join(BUILTIN_NAMES)}) or a YAML file."),
    ],
    out: Annotated[Path, typer.Option(help="Directory for readings, billing and truth files.")],
    days: Annotated[
        int | None, typer.Option(min=1, help="Days to simulate (default: the scenario's, 14).")
    ] = None,
    seed: Seed = 0,
    start: Annotated[
        str | None,
        typer.Option(help="First instant, ISO 8601, UTC if no offset (default: the scenario's)."),
    ] = None,
) -> None:
    """Simulate a scenario into readings, billing and ground-truth files."""
    from leaksense.simulator.files import write_simulation
    from leaksense.simulator.generate import simulate

    try:
        spec = _simulate_scenario(scenario, start, days)
        sim = simulate(spec, seed)
        files = write_simulation(sim, out)
    except LeaksenseError as exc:
        typer.secho(f"error: {exc}", err=True, fg=typer.colors.RED)
        raise typer.Exit(2) from exc
    typer.echo(_summary(sim, files))


def _esphome_option(pairs: list[str]) -> dict[str, str]:
    from leaksense.core.messages import ID_PATTERN

    nodes = {}
    for pair in pairs:
        sensor_id, _, node = pair.partition("=")
        if not re.match(ID_PATTERN, sensor_id) or not re.match(ID_PATTERN, node):
            raise typer.BadParameter(f"{pair!r} is not SENSOR_ID=NODE", param_hint="--esphome")
        nodes[sensor_id] = node
    return nodes


@contextmanager
def _ctrl_c_sets(stop: threading.Event) -> Iterator[None]:
    """First Ctrl-C asks the replay to stop (it then drains the PUBACKs), a second one
    interrupts at once. A flag rather than KeyboardInterrupt, so that the signal never
    lands inside paho's socket handling."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)

    def handler(_signum: int, _frame: object) -> None:
        stop.set()
        signal.signal(signal.SIGINT, previous)

    signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def replay_command(
    source: Annotated[
        str,
        typer.Argument(
            help="Built-in scenario, scenario .yaml, readings CSV, or InfluxDB export "
            "(line protocol .lp/.txt, or `influx -format csv` output)."
        ),
    ],
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
    days: Annotated[
        int | None, typer.Option(min=1, help="Scenarios: days to simulate (default: its own).")
    ] = None,
    start: Annotated[
        str | None, typer.Option(help="Scenarios: first instant, ISO 8601 (default: its own).")
    ] = None,
    shift_to_now: Annotated[
        bool, typer.Option(help="Move timestamps so the first is now.")
    ] = False,
    site: Annotated[
        str | None, typer.Option(help="Site in topics (default: scenario's; files: required).")
    ] = None,
    esphome: Annotated[
        list[str] | None, typer.Option(help="SENSOR_ID=NODE: publish that sensor ESPHome-style.")
    ] = None,
    ca_file: Annotated[Path | None, typer.Option(help="CA certificate; turns TLS on.")] = None,
) -> None:
    """Publish a scenario or a file of readings over MQTT (QoS 1), as the meters would.

    Everything is read and validated before the first message goes out. Ctrl-C stops
    cleanly: what was sent is acknowledged, counted, and the exit code is 130.
    """
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    from leaksense.simulator.publish import Broker, publish_readings
    from leaksense.simulator.sources import load_source

    if speed is not None and max_speed:
        raise typer.BadParameter("give --speed or --max-speed, not both", param_hint="--speed")
    target = Broker.from_url(broker, ca_file)
    nodes = _esphome_option(esphome or [])
    when = None if start is None else _start(start)
    try:
        loaded = load_source(source, days=days, seed=seed, start=when, site=site)
    except InvalidInput as exc:
        raise typer.BadParameter(str(exc), param_hint="SOURCE") from exc
    pace = None if max_speed else (1.0 if speed is None else speed)
    typer.echo(
        f"replaying {len(loaded.readings)} readings from {loaded.description} to "
        f"{target.host}:{target.port}, " + (f"x{pace:g}" if pace else "max speed")
    )
    stop, began = threading.Event(), time.monotonic()
    columns = (TextColumn("replay"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns) as progress, _ctrl_c_sets(stop):
        task = progress.add_task("replay", total=len(loaded.readings))
        try:
            result = publish_readings(
                loaded.readings,
                target,
                site=loaded.site,
                esphome={**loaded.esphome, **nodes},
                speed=pace,
                shift_to_now=shift_to_now,
                on_progress=lambda n: progress.advance(task, n),
                stop=stop,
            )
        except LeaksenseError as exc:  # broker unreachable, refused, or silent
            typer.secho(f"error: {exc}", err=True, fg=typer.colors.RED)
            raise typer.Exit(2) from exc
    elapsed_s = time.monotonic() - began
    state = "stopped" if result.interrupted else "done"
    typer.echo(
        f"{state}: {result.published} published, {result.acknowledged} acknowledged "
        f"in {elapsed_s:.1f} s ({result.acknowledged / max(elapsed_s, 1e-9):,.0f} msg/s)"
    )
    if result.interrupted:
        raise typer.Exit(_EXIT_INTERRUPTED)


def register(app: typer.Typer) -> None:
    """Add ``simulate`` and ``replay`` to the ``leaksense`` command."""
    app.command("simulate")(simulate_command)
    app.command("replay")(replay_command)
