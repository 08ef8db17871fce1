"""``leaksense models ...``: create the signing key, train and publish models.

Settings come from the server's ``LEAKSENSE_SERVER_*`` variables: training reads
the same databases the server serves from, and stores signed artifacts there.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from leaksense.models.defaults import MIN_DAYS

if TYPE_CHECKING:
    from leaksense.models.pipeline import TrainOutcome

models_app = typer.Typer(help="Train and sign detection models.", no_args_is_help=True)


@models_app.command("keygen")
def keygen(
    out: Annotated[Path, typer.Option("--out", "-o", help="Private key file to create.")],
) -> None:
    """Create the Ed25519 signing key (mode 0600) and print the public key for gateways."""
    from leaksense.models.signing import generate_keypair

    public = generate_keypair(out)
    typer.echo(f"private key written to {out} (keep it on the training machine only)")
    typer.echo("gateway config:\n\n[models]")
    typer.echo(f'public_key = "{public}"')


@models_app.command("train")
def train(
    days: Annotated[float, typer.Option(min=1, max=400, help="Days of history to learn.")] = 60,
    series: Annotated[
        list[str] | None, typer.Option("--series", help="Sensor or DMA id; repeatable.")
    ] = None,
    timezone: Annotated[str, typer.Option(help="Local time zone of the network.")] = "Europe/Paris",
    holiday: Annotated[
        list[str] | None, typer.Option(help="Public holiday YYYY-MM-DD; repeatable.")
    ] = None,
    min_days: Annotated[
        float, typer.Option(min=3, help="Skip series with less history than this.")
    ] = MIN_DAYS,
) -> None:
    """Train every sensor and DMA (or --series) from stored readings, sign, store."""
    from leaksense.edge.detection.clock import LocalClock
    from leaksense.models.pipeline import train_all
    from leaksense.models.signing import signing_key
    from leaksense.server.runtime import build_runtime
    from leaksense.server.settings import load_settings

    settings = load_settings()
    private_key, note = signing_key(settings)
    if note:
        typer.echo(note)
    clock = LocalClock(timezone, [date.fromisoformat(d) for d in holiday or ()])
    runtime = build_runtime(settings)
    try:
        outcomes = train_all(
            runtime, private_key, days=days, series=series or (), clock=clock, min_days=min_days
        )
    finally:
        runtime.close()
    typer.echo(format_outcomes(outcomes))


def format_outcomes(outcomes: list[TrainOutcome]) -> str:
    """The training report: one row per trained series, one line per skipped one."""
    rows = [f"{'series':<24} {'kind':<6} {'days':>6}  {'trainer':<22} {'bytes':>6}"]
    for o in outcomes:
        if o.skipped is None:
            rows.append(
                f"{o.series_id:<24} {o.kind:<6} {o.days_used:>6.1f}  {o.trainer or '':<22}"
                f" {o.artifact_bytes or 0:>6}"
            )
    skipped = [f"skipped {o.kind} {o.series_id}: {o.skipped}" for o in outcomes if o.skipped]
    trained = len(outcomes) - len(skipped)
    return "\n".join([*rows, *skipped, f"{trained} artifact(s) stored, {len(skipped)} skipped"])


@models_app.command("evaluate")
def evaluate(  # noqa: PLR0917 - one parameter per CLI option
    which: Annotated[
        str, typer.Option("--set", help="Cases to score: tuning, heldout or all.")
    ] = "heldout",
    quick: Annotated[bool, typer.Option(help="Four short cases (a smoke test).")] = False,
    out: Annotated[
        Path | None, typer.Option(help="Markdown file to update (between evaluation markers).")
    ] = None,
    jobs: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 2,
    sweep: Annotated[
        bool, typer.Option(help="First choose parameters on the tuning set (slow).")
    ] = False,
    sklearn: Annotated[
        bool,
        typer.Option(help="Add a column pre-trained by the scikit-learn trainer (slow)."),
    ] = False,
    parts: Annotated[
        bool, typer.Option(help="Add one column per leak detector, alone, against MNF.")
    ] = True,
) -> None:
    """Score detection on labelled simulated scenarios, side by side with the MNF rule."""
    from leaksense.models.evaluation import command

    if which not in ("tuning", "heldout", "all"):
        raise typer.BadParameter("--set must be tuning, heldout or all")
    done = [0]

    def progress(case: object) -> None:
        done[0] += 1
        if done[0] % 10 == 0:
            typer.echo(f"{done[0]} cases scored", err=True)

    texts: dict[str, str] = {}
    params = None
    if sweep:
        texts["sweep"], params = command.run_sweep(jobs=jobs, quick=quick, progress=progress)
        which = "all"
    with_sklearn = sklearn and command.sklearn_available()
    results = command.evaluate(
        which,  # type: ignore[arg-type]
        quick=quick,
        jobs=jobs,
        params=params,
        sklearn=with_sklearn,
        parts=parts,
        progress=progress,
    )
    texts |= command.sections(results, parts=parts)
    if sklearn and not with_sklearn:
        typer.echo("scikit-learn trainer not installed: its column is left out", err=True)
    typer.echo(command.joined(list(texts.values())))
    if out is not None:
        command.write_sections(out, texts)
        typer.echo(f"updated {', '.join(texts)} in {out}", err=True)


def register(app: typer.Typer) -> None:
    """Entry point of the ``leaksense.cli`` group."""
    app.add_typer(models_app, name="models")
