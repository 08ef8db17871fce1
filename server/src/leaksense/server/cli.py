"""``leaksense server ...`` and ``leaksense yield``: run and administer the server."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer

from leaksense.core.errors import InvalidInput
from leaksense.server.provision.cli import provision_app
from leaksense.server.report_cli import report_app
from leaksense.server.users.cli import user_app

if TYPE_CHECKING:
    from leaksense.server.runtime import Runtime
    from leaksense.server.services.network_yield import YieldReport

server_app = typer.Typer(help="Run and administer the central server.", no_args_is_help=True)
server_app.add_typer(user_app, name="user")


def _runtime() -> Runtime:
    from leaksense.server.runtime import build_runtime
    from leaksense.server.settings import load_settings

    return build_runtime(load_settings())


@server_app.command("run")
def run(
    host: Annotated[str | None, typer.Option(help="Bind address.")] = None,
    port: Annotated[int | None, typer.Option(help="TCP port.")] = None,
) -> None:
    """Serve the HTTP API (settings from LEAKSENSE_SERVER_* variables)."""
    import uvicorn

    from leaksense.server.app import create_app
    from leaksense.server.settings import load_settings

    settings = load_settings()
    uvicorn.run(create_app(settings), host=host or settings.host, port=port or settings.port)


@server_app.command("load-network")
def load_network(path: Path) -> None:
    """Create or update sites, DMAs and sensors from a network TOML file."""
    from leaksense.server.services import entities

    network = entities.read_network_file(path)
    runtime = _runtime()
    with runtime.sessions() as session:
        count = entities.load_network(session, network)
    runtime.close()
    typer.echo(f"loaded {count} entities from {path}")


@server_app.command("add-gateway")
def add_gateway(
    gateway_id: str,
    site: Annotated[str | None, typer.Option(help="Site the gateway serves.")] = None,
) -> None:
    """Register a gateway and print its new bearer token (shown only once)."""
    from leaksense.server.services import entities

    runtime = _runtime()
    with runtime.sessions() as session:
        token = entities.add_gateway(session, gateway_id, site)
    runtime.close()
    typer.echo(token)


@server_app.command("add-token")
def add_token(
    name: str,
    kind: Annotated[
        Literal["reader", "admin", "integration"],
        typer.Option(
            help="reader: read reports, readings and alerts; admin: also enter repairs and"
            " act on alerts; integration: read alerts and act on them, nothing else."
        ),
    ] = "reader",
) -> None:
    """Issue an API token (reports, integrations), shown only once; the server keeps its
    SHA-256 only. Alert changes made with it are audited as ``token:NAME``."""
    from leaksense.server.services import entities

    runtime = _runtime()
    with runtime.sessions() as session:
        token = entities.add_token(session, name, kind)
    runtime.close()
    typer.echo(token)


@server_app.command("import-billing")
def import_billing(path: Path) -> None:
    """Import billed volumes (CSV: dma_id,period_start,period_end,volume_m3); all or nothing."""
    from leaksense.server.services import billing

    try:
        text = path.read_text("utf-8")
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc}") from exc
    rows = billing.parse_billing_csv(text)
    runtime = _runtime()
    with runtime.sessions() as session:
        count = billing.import_billing(session, rows)
    runtime.close()
    typer.echo(f"imported {count} billed periods from {path}")


def format_yield(report: YieldReport) -> str:
    """Bilingual one-screen summary of a yield report."""
    return "\n".join(
        [
            f"DMA {report.dma_id}  {report.start:%Y-%m-%d %H:%M} → {report.end:%Y-%m-%d %H:%M} UTC"
            f" ({report.days:g} days / jours)",
            f"  distributed / mis en distribution : {report.distributed_m3:12.1f} m³",
            f"  billed / facturé                  : {report.billed_m3:12.1f} m³"
            f"  (prorated / proratisé {report.billed_prorated_m3:.1f} m³,"
            f" coverage {report.billing_coverage_pct:.0f} %)",
            f"  losses / pertes                   : {report.losses_m3:12.1f} m³"
            f"  ({report.losses_m3_per_day:.1f} m³/day)",
            f"  yield / rendement P104.3          : {report.yield_pct:12.2f} %",
            f"  data completeness / complétude    : {report.completeness_pct:12.1f} %",
            *(f"  WARNING / ATTENTION: {w}" for w in report.warnings),
        ]
    )


def yield_command(
    dma_id: str,
    start: Annotated[datetime, typer.Option(help="Period start (UTC, whole hour).")],
    end: Annotated[datetime, typer.Option(help="Period end, excluded (UTC, whole hour).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """P104.3 network yield of a DMA over a period, from the stored data."""
    from leaksense.server.services.network_yield import compute_yield

    start_utc = start if start.tzinfo else start.replace(tzinfo=UTC)
    end_utc = end if end.tzinfo else end.replace(tzinfo=UTC)
    runtime = _runtime()
    with runtime.sessions() as session:
        report = compute_yield(session, runtime.store, dma_id, start_utc, end_utc)
    runtime.close()
    if as_json:
        typer.echo(json.dumps(dataclasses.asdict(report), default=str, indent=2))
    else:
        typer.echo(format_yield(report))


def register(app: typer.Typer) -> None:
    """Entry point of the ``leaksense.cli`` group."""
    app.add_typer(server_app, name="server")
    app.add_typer(report_app, name="report")
    app.add_typer(provision_app, name="provision")
    app.command("yield")(yield_command)
