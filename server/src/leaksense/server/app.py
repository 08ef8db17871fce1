"""FastAPI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from leaksense.server.api import errors
from leaksense.server.api.routes import ingest, models, network
from leaksense.server.runtime import Runtime, build_runtime
from leaksense.server.settings import ServerSettings, load_settings


def create_app(settings: ServerSettings | None = None, runtime: Runtime | None = None) -> FastAPI:
    """The server app; builds its runtime from settings (or the environment)."""
    rt = runtime or build_runtime(settings or load_settings())

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        rt.close()

    app = FastAPI(title="Leaksense", version="0.1.0", lifespan=lifespan)
    app.state.runtime = rt
    errors.install(app)
    app.include_router(ingest.router)
    app.include_router(network.router)
    app.include_router(models.router)
    return app
