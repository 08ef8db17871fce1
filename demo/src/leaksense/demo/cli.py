"""``leaksense demo``: the whole path on embedded defaults."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from leaksense.demo.run import DemoResult


def summary(result: DemoResult) -> str:
    """What the demo did and the Saint-Savin yield before and after repairs."""
    before, after, whole = (result.yields[k] for k in ("before", "after", "whole"))
    saved = before["losses_m3_per_day"] - after["losses_m3_per_day"]
    return "\n".join(
        [
            "",
            "Leaksense demo — Saint-Savin (Isère) / démonstration",
            f"  broker            : {result.broker}",
            f"  MQTT messages     : {result.published} published, {result.received} received by"
            f" the gateway, {result.rejected} rejected",
            f"  inlet readings stored by the server: {result.stored_inlet}",
            f"  data              : {result.workdir}/server (SQLite: leaksense.db, readings.db)",
            "",
            "  Network yield P104.3 / rendement du réseau (computed by the server from the data):",
            f"    before repairs / avant réparations : {before['yield_pct']:6.2f} %"
            f"  ({before['distributed_m3'] / before['days']:.0f} m³/day in,"
            f" {before['billed_m3'] / before['days']:.0f} m³/day billed)",
            f"    after repairs  / après réparations : {after['yield_pct']:6.2f} %"
            f"  ({after['distributed_m3'] / after['days']:.0f} m³/day in)",
            f"    whole period   / période complète  : {whole['yield_pct']:6.2f} %"
            " (repairs count only from the day they were made)",
            f"    losses saved   / pertes évitées    : {saved:6.1f} m³/day",
            "",
            f"  done in {result.elapsed_s:.1f} s. Next: README.md, `leaksense --help`.",
        ]
    )


def demo_command(
    workdir: Annotated[
        Path, typer.Option(help="Where the demo keeps its data (wiped at each demo run).")
    ] = Path("leaksense-demo"),
    days: Annotated[int, typer.Option(min=13, help="Simulated days.")] = 14,
    seed: Annotated[int, typer.Option(help="Simulation seed.")] = 1,
    broker: Annotated[str, typer.Option(help="auto, mosquitto or amqtt.")] = "auto",
) -> None:
    """Run broker, server, gateway and simulated Saint-Savin sensors; print the yields."""
    from leaksense.demo.run import run_demo

    typer.echo(summary(run_demo(workdir, days=days, seed=seed, broker=broker)))


def register(app: typer.Typer) -> None:
    """Entry point of the ``leaksense.cli`` group."""
    app.command("demo")(demo_command)
