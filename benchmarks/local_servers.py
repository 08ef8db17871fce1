"""influxd and real Leaksense servers, started locally for the benchmarks that need them."""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from path_common import DMA_ID, GATEWAY_ID, INLETS, BenchError
from sensor_publisher import SITE

from leaksense.demo.broker import free_port
from leaksense.demo.server_thread import ServerThread
from leaksense.edge.uplink import HttpUplink
from leaksense.server.app import create_app
from leaksense.server.runtime import Runtime, build_runtime
from leaksense.server.services.entities import (
    DmaSpec,
    NetworkDescription,
    SensorSpec,
    SiteSpec,
    add_gateway,
    load_network,
)
from leaksense.server.settings import load_settings

INFLUXD = "/usr/bin/influxd"


class Influxd:
    """influxd 1.x as a child process: config, data and log in ``workdir``."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None

    def _write_config(self) -> Path:
        data = self.workdir / "data"
        data.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "influxdb.conf"
        config.write_text(
            f'reporting-enabled = false\nbind-address = "127.0.0.1:{free_port()}"\n'
            f'[meta]\n  dir = "{data / "meta"}"\n  logging-enabled = false\n'
            f'[data]\n  dir = "{data / "data"}"\n  wal-dir = "{data / "wal"}"\n'
            "  query-log-enabled = false\n"
            # Bounded GROUP BY time() buckets: an unbounded one can exhaust memory.
            "[coordinator]\n  max-select-buckets = 100000\n"
            "[monitor]\n  store-enabled = false\n"
            f'[http]\n  bind-address = "127.0.0.1:{self.port}"\n  log-enabled = false\n'
            '[logging]\n  level = "warn"\n  suppress-logo = true\n'
        )
        return config

    def start(self) -> Influxd:
        config = self._write_config()
        with (self.workdir / "influxd.log").open("ab") as log:
            self._process = subprocess.Popen(
                [INFLUXD, "run", "-config", str(config)], stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and self._process.poll() is None:
            try:
                if httpx.get(f"{self.url}/ping", timeout=0.5).status_code == 204:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.stop()
        raise BenchError(f"influxd did not start (see {self.workdir / 'influxd.log'})")

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(5)


@dataclass
class Server:
    """A real Leaksense server in a thread, and a gateway's HTTP uplink to it."""

    runtime: Runtime
    thread: ServerThread
    uplink: HttpUplink

    def stop(self) -> None:
        self.uplink.close()
        self.thread.stop()
        self.runtime.close()


def bench_network() -> NetworkDescription:
    return NetworkDescription(
        sites=[SiteSpec(site_id=SITE, name="Benchmark site")],
        dmas=[DmaSpec(dma_id=DMA_ID, site_id=SITE, name="Benchmark DMA")],
        sensors=[
            SensorSpec(sensor_id=s, site_id=SITE, dma_id=DMA_ID, role="inlet") for s in INLETS
        ],
    )


def start_server(data_dir: Path, **store_settings: str) -> Server:
    settings = load_settings(data_dir=data_dir, **store_settings)
    runtime = build_runtime(settings)
    try:
        with runtime.sessions() as session:
            load_network(session, bench_network())
            token = add_gateway(session, GATEWAY_ID, SITE)
        thread = ServerThread(create_app(settings, runtime)).start()
    except BaseException:
        runtime.close()
        raise
    return Server(runtime, thread, HttpUplink(thread.url, token, timeout_s=120.0))
