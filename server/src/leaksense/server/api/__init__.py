"""HTTP API (FastAPI): thin routes over :mod:`leaksense.server.services`."""
