"""Replay throughput against a bare paho publisher, on a real mosquitto.

Run: ``uv run python benchmarks/bench_replay.py [--quick] [--count N] [--rounds R]``
(or ``make bench``). One run starts its own mosquitto on a free loopback port (queue
limits raised, see components.md) and stops it at the end. It measures:

1. Simulated readings per second (Saint-Savin, generation only) and parse rates of the
   replay sources (readings CSV, InfluxDB line protocol, InfluxDB CSV) for the same
   readings.
2. Raw paho: the same N (topic, payload) pairs ``publish_readings`` would send, built
   beforehand, published at QoS 1 by a bare paho-mqtt 2.x client with its network
   thread (``loop_start``), with paho's in-flight limit at its default (20), at 100,
   and off (0: all N in flight at once); rate = N / time until the last PUBACK.
3. ``publish_readings`` of the N readings at max speed (sorting, encoding and
   connecting included).

A subscriber in another process (so that it does not compete for this one's GIL)
counts arrivals on ``#`` at QoS 1; "received" is N / time until the last arrival.
"CPU" is this process's CPU time per message (all its threads): less sensitive than
rates to a busy machine. Variants alternate round by round and medians are compared;
the ratio is replay ÷ the fastest raw variant.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing.synchronize import Event
from pathlib import Path
from queue import Queue
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from leaksense.core.messages import Reading
from leaksense.demo.broker import MosquittoProcess
from leaksense.simulator.files import write_readings_csv
from leaksense.simulator.publish import Broker, encode, publish_readings
from leaksense.simulator.sources import load_source

MOSQUITTO = "/usr/sbin/mosquitto"
SITE = "saint-savin"
START = datetime(2026, 1, 5, tzinfo=UTC)
WAIT_S = 120.0
Messages = list[tuple[str, bytes]]


def subscriber_main(port: int, count: int, ready: Event, results: Queue[tuple[int, float]]) -> None:
    """Count ``count`` arrivals on ``#``; report ``(received, monotonic time of the last)``.

    ``time.monotonic`` is CLOCK_MONOTONIC on Linux, shared by every process.
    """
    received, last, done = 0, 0.0, threading.Event()

    def on_message(_c: Any, _u: Any, _m: Any) -> None:
        nonlocal received, last
        received += 1
        last = time.monotonic()
        if received >= count:
            done.set()

    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
    client.on_message = on_message
    client.on_subscribe = lambda *_args: ready.set()
    client.connect("127.0.0.1", port)
    client.loop_start()
    client.subscribe("#", qos=1)
    done.wait(WAIT_S)
    client.disconnect()
    client.loop_stop()
    results.put((received, last))


@dataclass
class Rates:
    """Per-round figures of one variant: msg/s acknowledged, received; CPU µs/msg."""

    acknowledged: list[float] = field(default_factory=list)
    received: list[float] = field(default_factory=list)
    cpu_us: list[float] = field(default_factory=list)

    def line(self, name: str) -> str:
        ack, rec = statistics.median(self.acknowledged), statistics.median(self.received)
        return (
            f"{name:<38} {ack:>9,.0f} {rec:>9,.0f} {statistics.median(self.cpu_us):>7.1f}   "
            f"(best {max(self.acknowledged):,.0f} / {max(self.received):,.0f})"
        )


def measure(port: int, count: int, publish: Callable[[], None]) -> tuple[float, float, float]:
    """``(acknowledged/s, received/s, CPU µs/msg)`` of one ``publish()``, fresh subscriber."""
    ctx = mp.get_context("spawn")
    ready, results = ctx.Event(), ctx.Queue()
    process = ctx.Process(target=subscriber_main, args=(port, count, ready, results))
    process.start()
    try:
        if not ready.wait(30):
            raise RuntimeError("subscriber got no SUBACK")
        began, cpu_began = time.monotonic(), time.process_time()
        publish()
        acked_s, cpu_s = time.monotonic() - began, time.process_time() - cpu_began
        received, last = results.get(timeout=WAIT_S)
    finally:
        process.join(10)
    if received != count:
        raise RuntimeError(f"subscriber received {received} of {count} messages")
    return count / acked_s, count / (last - began), cpu_s / count * 1e6


def raw_publish(port: int, messages: Messages, max_in_flight: int) -> None:
    """A bare paho publisher: network thread, everything queued, wait for every PUBACK."""
    acked, done = 0, threading.Event()

    def on_publish(*_args: Any) -> None:
        nonlocal acked
        acked += 1
        if acked == len(messages):
            done.set()

    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
    client.max_inflight_messages_set(max_in_flight)
    client.on_publish = on_publish
    client.connect("127.0.0.1", port)
    client.loop_start()
    for topic, payload in messages:
        client.publish(topic, payload, qos=1)
    if not done.wait(WAIT_S):
        raise RuntimeError(f"raw publisher: {acked} of {len(messages)} acknowledged")
    client.disconnect()
    client.loop_stop()


def bench_sources(readings: list[Reading], workdir: Path) -> None:
    """Parse rate of each replay source format for ``readings``."""
    csv_path, lp_path, influx_csv = (
        workdir / "readings.csv",
        workdir / "export.lp",
        workdir / "influx.csv",
    )
    write_readings_csv(csv_path, readings)
    lines = [
        f"flow,sensor_id={r.sensor_id} flow_m3h={r.flow_m3h!r},index_m3={r.index_m3!r} "
        f"{int(r.time.timestamp()) * 1_000_000_000}"
        for r in readings
    ]
    lp_path.write_text("# DML\n# CONTEXT-DATABASE: leaksense\n" + "\n".join(lines) + "\n")
    influx_csv.write_text(
        "name,tags,time,flow_m3h,index_m3,sensor_id\n"
        + "".join(
            f"flow,,{int(r.time.timestamp()) * 1_000_000_000},{r.flow_m3h!r},{r.index_m3!r},"
            f"{r.sensor_id}\n"
            for r in readings
        )
    )
    for name, path in (
        ("readings CSV", csv_path),
        ("InfluxDB line protocol", lp_path),
        ("InfluxDB CSV", influx_csv),
    ):
        began = time.perf_counter()
        loaded = load_source(str(path), site=SITE)
        elapsed = time.perf_counter() - began
        assert len(loaded.readings) == len(readings)
        print(f"load {name:<30} {len(readings) / elapsed:>9,.0f} readings/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5 000 messages, 2 rounds")
    parser.add_argument("--count", type=int, default=20_000, help="messages per run")
    parser.add_argument("--rounds", type=int, default=7, help="runs of each variant")
    args = parser.parse_args()
    count, rounds = (5_000, 2) if args.quick else (args.count, args.rounds)

    days = count // (4 * 288) + 1  # Saint-Savin: 4 meters every 5 min
    began = time.perf_counter()
    scenario = load_source("saint-savin", days=days, start=START)
    generation_s = time.perf_counter() - began
    readings, nodes = list(scenario.readings[:count]), dict(scenario.esphome)
    messages = [encode(r, SITE, nodes) for r in readings]
    print(
        f"simulate saint-savin, {days} days: {len(scenario.readings) / generation_s:,.0f} "
        f"readings/s ({len(scenario.readings)} readings)"
    )
    with tempfile.TemporaryDirectory(prefix="bench-replay-") as tmp:
        bench_sources(readings, Path(tmp))
        broker = MosquittoProcess(Path(tmp) / "mosquitto").start(MOSQUITTO)
        try:
            port = broker.port
            variants: dict[str, Callable[[], None]] = {
                "raw paho, max_inflight 20 (default)": lambda: raw_publish(port, messages, 20),
                "raw paho, max_inflight 100": lambda: raw_publish(port, messages, 100),
                "raw paho, max_inflight 0 (no limit)": lambda: raw_publish(port, messages, 0),
                "publish_readings, max speed": lambda: _replay(port, readings, nodes),
            }
            rates = {name: Rates() for name in variants}
            for _ in range(rounds):
                for name, publish in variants.items():
                    ack, rec, cpu_us = measure(port, count, publish)
                    rates[name].acknowledged.append(ack)
                    rates[name].received.append(rec)
                    rates[name].cpu_us.append(cpu_us)
        finally:
            broker.stop()
    report(rates, count, rounds)


def _replay(port: int, readings: list[Reading], nodes: dict[str, str]) -> None:
    publish_readings(readings, Broker("127.0.0.1", port), site=SITE, esphome=nodes)


def report(rates: dict[str, Rates], count: int, rounds: int) -> None:
    print(f"\nQoS 1, {count} messages, median of {rounds} rounds")
    print(f"{'':<38} {'acked/s':>9} {'recv/s':>9} {'CPU µs':>7}")
    for name, rate in rates.items():
        print(rate.line(name))
    *raws, replay = rates.values()
    for what in ("acknowledged", "received"):
        best_raw = max(statistics.median(getattr(r, what)) for r in raws)
        ratio = statistics.median(getattr(replay, what)) / best_raw
        print(f"replay / fastest raw ({what}): {ratio:.2f}")
    leanest_raw = min(statistics.median(r.cpu_us) for r in raws)
    print(
        f"CPU per message: replay {statistics.median(replay.cpu_us):.1f} µs, "
        f"leanest raw {leanest_raw:.1f} µs"
    )


if __name__ == "__main__":
    main()
