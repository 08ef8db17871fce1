"""``leaksense gateway ...``: run or check a gateway."""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

from leaksense.edge.config import load_config
from leaksense.edge.runner import GatewayRunner

gateway_app = typer.Typer(help="Run the edge gateway.", no_args_is_help=True)
log = logging.getLogger(__name__)


@gateway_app.command("run")
def run(config: Annotated[Path, typer.Option("--config", "-c", help="Gateway TOML file.")]) -> None:
    """Subscribe to the broker, detect locally and forward to the server until stopped."""
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
    config = load_config(path)
    typer.echo(
        f"{path}: gateway {config.gateway_id} (site {config.site}), broker "
        f"{config.mqtt.host}:{config.mqtt.port}, {len(config.esphome)} ESPHome sensor(s), "
        f"uplink {config.uplink.url}"
    )


def register(app: typer.Typer) -> None:
    """Entry point of the ``leaksense.cli`` group."""
    app.add_typer(gateway_app, name="gateway")
