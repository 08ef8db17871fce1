"""``leaksense models ...``: fit detection parameters from exported readings."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from leaksense.models.thresholds import fit_ceilings_m3h
from leaksense.simulator.files import read_readings_csv

models_app = typer.Typer(help="Fit detection models from history.", no_args_is_help=True)


@models_app.command("fit-thresholds")
def fit_thresholds(
    readings_csv: Path,
    out: Annotated[Path | None, typer.Option(help="Write TOML here instead of stdout.")] = None,
) -> None:
    """Per-sensor flow ceilings as a ``[detector.max_flow_m3h]`` gateway-config table."""
    ceilings = fit_ceilings_m3h(read_readings_csv(readings_csv))
    lines = ["[detector.max_flow_m3h]"] + [f"{json.dumps(k)} = {v}" for k, v in ceilings.items()]
    text = "\n".join(lines) + "\n"
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text, "utf-8")
        typer.echo(f"wrote {len(ceilings)} ceilings to {out}")


def register(app: typer.Typer) -> None:
    """Entry point of the ``leaksense.cli`` group."""
    app.add_typer(models_app, name="models")
