"""The Leaksense server (uvicorn) on a free loopback port in a background thread."""

from __future__ import annotations

import threading
import time

import uvicorn
from fastapi import FastAPI

from leaksense.core.errors import ServiceUnavailable
from leaksense.demo.broker import free_port


class ServerThread:
    """Serves ``app`` until :meth:`stop`."""

    def __init__(self, app: FastAPI) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def start(self, timeout_s: float = 10.0) -> ServerThread:
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise ServiceUnavailable(f"the server did not start on {self.url}")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(10)
