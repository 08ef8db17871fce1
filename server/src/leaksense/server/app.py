"""FastAPI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from fastapi import FastAPI

from leaksense.server import dashboard
from leaksense.server.api import errors
from leaksense.server.api.limits import BodySizeLimit, GatewayRateLimiter, Rate
from leaksense.server.api.routes import alerts, gateways, ingest, metrics, models, network
from leaksense.server.api.routes import reports as report_routes
from leaksense.server.metrics import ServerMetrics
from leaksense.server.notify.worker import start_worker
from leaksense.server.runtime import Runtime, build_runtime
from leaksense.server.services.ingest import Ingestor
from leaksense.server.settings import ServerSettings, load_settings


def create_app(settings: ServerSettings | None = None, runtime: Runtime | None = None) -> FastAPI:
    """The server app; builds its runtime from settings (or the environment).

    The rate limiter, the metrics and the ingestor's caches live with the app, in
    memory: they are per server instance (see ``api/limits.py``, ``metrics.py`` and
    ``services/ingest.py``).
    """
    rt = runtime or build_runtime(settings or load_settings())
    s = rt.settings

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        worker = start_worker(rt.sessions, s)  # notifications (notify/worker.py)
        yield
        if worker is not None:
            worker.stop()
        rt.close()

    app = FastAPI(title="Leaksense", version="0.1.0", lifespan=lifespan)
    app.state.runtime = rt
    app.state.metrics = server_metrics = ServerMetrics(rt.sessions, s.reading_store)
    app.state.ingestor = Ingestor(
        rt.store,
        timedelta(days=s.batch_log_retention_days),
        relax_log_commit=s.reading_store == "influxdb",  # see services/ingest.py
    )
    app.state.limiter = GatewayRateLimiter(
        requests=Rate(s.rate_limit_requests_per_s, s.rate_limit_requests_burst, "requests"),
        readings=Rate(s.rate_limit_readings_per_s, s.rate_limit_readings_burst, "readings"),
    )
    app.add_middleware(
        BodySizeLimit,
        max_body_bytes=s.max_body_bytes,
        on_reject=lambda: server_metrics.rejected(413),
    )
    app.add_middleware(dashboard.DashboardSessions, secret_key=dashboard.session_secret(s))
    errors.install(app)
    app.include_router(ingest.router)
    app.include_router(gateways.router)
    app.include_router(network.router)
    app.include_router(report_routes.router)
    app.include_router(models.router)
    app.include_router(alerts.router)
    app.include_router(metrics.router)
    app.include_router(dashboard.router)
    return app
