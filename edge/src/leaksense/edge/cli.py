"""``leaksense gateway ...``: run or check a gateway."""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

gateway_app = typer.Typer(help="Run the edge gateway.", no_args_is_help=True)
log = logging.getLogger(__name__)


@gateway_app.command("run")
def run(config: Annotated[Path, typer.Option("--config", "-c", help="Gateway TOML file.")]) -> None:
    """Subscribe to the broker, detect locally and forward to the server until stopped."""
    from leaksense.edge.config import load_config
    from leaksense.edge.runner import GatewayRunner

    runner = GatewayRunner(load_config(config))
    stop = threading.Event()

    def _stop(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %d: stopping", signum)
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    runner.start()
    stop.wait()
    runner.stop()


@gateway_app.command("check-config")
def check_config(path: Path) -> None:
    """Validate a gateway TOML file and print what it maps."""
    from leaksense.edge.config import load_config

    config = load_config(path)
    typer.echo(
        f"{path}: gateway {config.gateway_id} (site {config.site}), broker "
        f"{config.mqtt.host}:{config.mqtt.port}, {len(config.esphome)} ESPHome sensor(s), "
        f"uplink {config.uplink.url}, outbox {config.outbox.path}"
    )


def detect_command(  # noqa: PLR0917 - one parameter per CLI option
    readings_csv: Path,
    out: Annotated[Path, typer.Option("--out", "-o", help="Alerts, one JSON object per line.")],
    warmup_days: Annotated[float, typer.Option(min=1, help="Days learned before detecting.")] = 14,
    timezone: Annotated[str, typer.Option(help="Local time zone of the network.")] = "Europe/Paris",
    customer: Annotated[
        list[str] | None,
        typer.Option(help="Customer meter id (continuous-flow check); repeatable."),
    ] = None,
    dma: Annotated[
        list[str] | None, typer.Option(help="DMA as ID=IN1+IN2-OUT1; repeatable.")
    ] = None,
    strict: Annotated[
        bool, typer.Option(help="Stop at the first bad row instead of skipping it.")
    ] = False,
) -> None:
    """Replay a readings CSV (time,sensor_id,flow_m3h) through the gateway's detection."""
    from rich.progress import Progress

    from leaksense.edge.config import parse_dma
    from leaksense.edge.detection import offline
    from leaksense.edge.detection.engine import DetectionEngine, EngineSettings

    readings = offline.read_csv(readings_csv, strict=strict)
    for message in readings.rejected[:5]:
        typer.echo(f"skipped: {message}", err=True)
    if readings.rejected:
        typer.echo(f"skipped {len(readings.rejected)} bad row(s) in total", err=True)
    settings = EngineSettings(
        timezone=timezone,
        warmup_days=warmup_days,
        customer_meters=frozenset(customer or ()),
        dmas=tuple(parse_dma(d) for d in dma or ()),
    )
    engine = DetectionEngine("offline", settings)
    with out.open("w", encoding="utf-8") as sink, Progress() as bar:
        task = bar.add_task("detect", total=len(readings.epoch_s))
        count = offline.detect(engine, readings, sink, lambda n: bar.advance(task, n))
        bar.update(task, completed=len(readings.epoch_s))
    typer.echo(f"{count} alert event(s) written to {out}")


def register(app: typer.Typer) -> None:
    """Entry point of the ``leaksense.cli`` group."""
    app.add_typer(gateway_app, name="gateway")
    app.command("detect")(detect_command)
