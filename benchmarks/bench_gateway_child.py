"""The receiving side of ``bench_gateway.py``, run as its own process.

It imports what a gateway imports and nothing else (not the benchmark's server, not
FastAPI), so its VmRSS is the gateway's own. Usage (by ``bench_gateway.py``)::

    python bench_gateway_child.py receiver raw|gateway PORT WORKDIR COUNT live|drain
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from sensor_publisher import SITE

from leaksense.core.topics import FLOW_SUBSCRIPTION

GATEWAY_ID = "gw-bench"
TIMEOUT_S = 120.0
RECEIVER_IDS = {"raw": "bench-raw-subscriber", "gateway": f"leaksense-gw-{GATEWAY_ID}"}


class ChildError(RuntimeError):
    """The receiver could not do its part."""


def vm_kib(field: str) -> int:
    """``VmRSS`` or ``VmHWM`` of this process, KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise ChildError(f"no {field} in /proc/self/status")


# --- receivers (child processes) --------------------------------------------------------


class RawReceiver:
    """A bare paho subscriber with the gateway's session settings; it only counts."""

    def __init__(self, port: int) -> None:
        self.count = 0
        self.subscribed = threading.Event()
        self._port = port
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=RECEIVER_IDS["raw"],
            clean_session=False,
            protocol=mqtt.MQTTv311,
        )
        client.max_queued_messages_set(0)
        client.on_connect = lambda c, *_a: c.subscribe(FLOW_SUBSCRIPTION, qos=1)
        client.on_subscribe = lambda *_a: self.subscribed.set()
        client.on_message = self._on_message
        self._client = client

    def _on_message(self, *_args: Any) -> None:
        self.count += 1

    def start(self) -> None:
        self._client.connect("127.0.0.1", self._port)
        self._client.loop_start()

    def done(self) -> int:
        return self.count

    def received(self) -> int:
        return self.count

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


class GatewayReceiver:
    """The real ``GatewayRunner``, offline uplink: counts committed messages."""

    def __init__(self, port: int, workdir: Path) -> None:
        from leaksense.edge.config import parse_config  # noqa: PLC0415 - RSS is measured
        from leaksense.edge.runner import GatewayRunner  # noqa: PLC0415 - before and after

        config = parse_config(
            {
                "gateway_id": GATEWAY_ID,
                "site": SITE,
                "mqtt": {"port": port},
                "uplink": {"url": "http://127.0.0.1:9"},
                "outbox": {"path": str(workdir / "outbox.db")},
                "models": {"dir": str(workdir / "models")},
                "dead_letter_dir": str(workdir / "rejected"),
                "metrics": {"port": 0},
            }
        )
        self.runner = GatewayRunner(config, token="bench")  # noqa: S106 - offline
        self.subscribed = self.runner.intake.connected

    def start(self) -> None:
        self.runner.start()

    def done(self) -> int:
        if self.runner.gateway.stats.messages_rejected:
            raise ChildError("the gateway rejected messages")
        return self.runner.gateway.group.committed_messages

    def received(self) -> int:
        return self.runner.gateway.stats.messages_received

    def stop(self) -> None:
        self.runner.stop(drain_timeout_s=0.1)


def run_receiver(kind: str, port: int, workdir: Path, count: int, mode: str) -> None:
    """Child side: receive ``count`` messages, print rate and memory as JSON."""
    logging.basicConfig(level=logging.ERROR)
    imports_kib = vm_kib("VmRSS")
    receiver: RawReceiver | GatewayReceiver = (
        RawReceiver(port) if kind == "raw" else GatewayReceiver(port, workdir)
    )
    if mode == "live":
        receiver.start()
        if not receiver.subscribed.wait(10):
            sys.exit("receiver did not connect")
        time.sleep(0.3)  # MqttIntake sets `connected` when it sends SUBSCRIBE
        print("ready", flush=True)
        began = float(sys.stdin.readline())
    else:
        began = time.monotonic()
        receiver.start()
    deadline = began + TIMEOUT_S
    while not receiver.received() and time.monotonic() < deadline:
        time.sleep(0.0005)
    first_at = time.monotonic()  # the start-up (connection; the gateway's gc, models) is over
    first_cpu_s = time.process_time()
    while receiver.done() < count and time.monotonic() < deadline:
        time.sleep(0.002)
    ended_at = time.monotonic()
    cpu_s = time.process_time() - first_cpu_s
    done = receiver.done()
    rss_kib, hwm_kib = vm_kib("VmRSS"), vm_kib("VmHWM")
    receiver.stop()
    result = {
        "done": done,
        "rate": done / (ended_at - began),
        "rate_from_first": (done - 1) / (ended_at - first_at),
        "startup_ms": (first_at - began) * 1000,
        "cpu_us": cpu_s / max(1, done - 1) * 1e6,
        "rss_kib": rss_kib,
        "hwm_kib": hwm_kib,
    }
    print(json.dumps(result | {"imports_kib": imports_kib}), flush=True)


def main(argv: list[str]) -> None:
    if argv[:1] == ["receiver"]:
        run_receiver(argv[1], int(argv[2]), Path(argv[3]), int(argv[4]), argv[5])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
