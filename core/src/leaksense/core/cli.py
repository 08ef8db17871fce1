"""The ``leaksense`` command.

Each installed deployable contributes its subcommands through the ``leaksense.cli``
entry-point group (a function taking the root :class:`typer.Typer`), so a Raspberry Pi
with only ``leaksense-edge`` gets ``leaksense gateway ...`` and nothing that would
need the server's dependencies.
"""

from __future__ import annotations

import logging
import sys
from importlib.metadata import entry_points

import typer

from leaksense.core.errors import LeaksenseError

ENTRY_POINT_GROUP = "leaksense.cli"


def build_app() -> typer.Typer:
    """Root app with every installed deployable's commands registered."""
    app = typer.Typer(
        name="leaksense",
        help="Leaksense: edge-IoT water-leak detection for drinking-water utilities.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
    )

    @app.callback()
    def _root(
        verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logging."),
    ) -> None:
        logging.basicConfig(
            level=logging.DEBUG if verbose else logging.INFO,
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )
        for noisy in ("httpx", "httpcore", "amqtt", "transitions"):
            logging.getLogger(noisy).setLevel(logging.DEBUG if verbose else logging.WARNING)

    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        ep.load()(app)
    return app


def main() -> None:
    """Console entry point: run the app, turning Leaksense errors into a clean exit 2."""
    try:
        build_app()()
    except LeaksenseError as exc:
        typer.secho(f"error: {exc}", err=True, fg=typer.colors.RED)
        sys.exit(2)
