"""Replay sources: every format gives exactly the readings it holds, or fails naming the
file, the line and the field, before anything is published.

Golden files are written by each test, small enough to read in the assertion. The
InfluxDB tests export from a real ``influxd`` what our own store wrote, in both forms
a user would produce (CSV from ``/query``, line protocol), and replay it over a real
mosquitto to a subscriber that must receive the same readings.
"""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from leaksense.core.errors import ConfigError, InvalidInput
from leaksense.core.messages import Reading
from leaksense.server.stores.influx import MEASUREMENT, InfluxReadingStore
from leaksense.simulator import sources
from leaksense.simulator.files import write_readings_csv
from leaksense.simulator.publish import Broker, encode, publish_readings
from leaksense.simulator.sources import detect_format, load_source
from services import InfluxDatabase, MosquittoServer

T0 = datetime(2026, 1, 5, tzinfo=UTC)
T0_NS = 1_767_571_200_000_000_000
MINUTE_NS = 60_000_000_000


def reading(sensor_id: str, minutes: int, flow_m3h: float, index_m3: float | None) -> Reading:
    return Reading(
        sensor_id=sensor_id,
        time=T0 + timedelta(minutes=minutes),
        flow_m3h=flow_m3h,
        index_m3=index_m3,
    )


GOLDEN = [
    reading("ss-inlet", 0, 35.5, 125_000.0),
    reading("ss-farm", 0, 1.25, None),
    reading("ss-inlet", 1, 36.0, 125_000.59),
]


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# --- scenarios -------------------------------------------------------------------------


def test_builtin_scenario_is_simulated_with_its_site_and_esphome_nodes() -> None:
    one = load_source("saint-savin", days=1, seed=3, start=T0)
    assert one.site == "saint-savin"
    assert one.esphome  # Saint-Savin's customer meters are ESPHome nodes
    assert one.readings and all(r.time >= T0 for r in one.readings)
    assert [r.time for r in one.readings] == sorted(r.time for r in one.readings)
    again = load_source("saint-savin", days=1, seed=3, start=T0, site="elsewhere")
    assert again.readings == one.readings  # same seed, same readings
    assert again.site == "elsewhere"


def test_a_scenario_file_is_simulated(tmp_path: Path) -> None:
    shipped = resources.files("leaksense.simulator").joinpath("scenarios/saint-savin.yaml")
    path = write(tmp_path, "town.yaml", shipped.read_text(encoding="utf-8"))
    loaded = load_source(str(path), days=1, seed=3, start=T0)
    builtin = load_source("saint-savin", days=1, seed=3, start=T0)
    assert (loaded.readings, loaded.site, loaded.esphome) == (
        builtin.readings,
        builtin.site,
        builtin.esphome,
    )


def test_a_bad_scenario_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"town\.yaml"):
        load_source(str(write(tmp_path, "town.yaml", "name: [unclosed\n")))


@pytest.mark.parametrize("source", ["atlantis", "missing.csv"])
def test_unknown_source_names_the_built_ins(source: str) -> None:
    with pytest.raises(ConfigError, match=r"neither a built-in scenario .*saint-savin"):
        load_source(source)


def test_files_need_a_valid_site(tmp_path: Path) -> None:
    path = tmp_path / "readings.csv"
    write_readings_csv(path, GOLDEN)
    with pytest.raises(ConfigError, match="site is required"):
        load_source(str(path))
    with pytest.raises(ConfigError, match="site 'a/b'"):
        load_source(str(path), site="a/b")


# --- readings CSV ------------------------------------------------------------------------


def test_readings_csv(tmp_path: Path) -> None:
    path = tmp_path / "readings.csv"
    write_readings_csv(path, [GOLDEN[2], GOLDEN[0], GOLDEN[1]])
    loaded = load_source(str(path), site="test-site")
    assert list(loaded.readings) == GOLDEN  # put in time order, same-time order kept
    assert (loaded.site, dict(loaded.esphome)) == ("test-site", {})
    assert "readings-csv" in loaded.description


def test_readings_csv_error_names_file_line_and_field(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "readings.csv",
        "time,sensor_id,flow_m3h,index_m3\n2026-01-05T00:00:00Z,a,1.0,\n2026-01-05T00:05:00Z,a,x,\n",
    )
    with pytest.raises(InvalidInput, match=r"readings\.csv, line 3, field flow_m3h"):
        load_source(str(path), site="s")


# --- InfluxDB line protocol --------------------------------------------------------------

LINE_PROTOCOL = f"""\
# DDL
CREATE DATABASE leaksense WITH NAME autogen
# DML
# CONTEXT-DATABASE: leaksense
# CONTEXT-RETENTION-POLICY: autogen
# writes of other measurements are not readings
cpu,host=gw\\ 1 usage=3i {T0_NS}

flow,sensor_id=ss-inlet index_m3=125000.59,flow_m3h=36 {T0_NS + MINUTE_NS}
flow,note=a\\,b\\ c,sensor_id=ss-inlet flow_m3h=35.5,index_m3=125000 {T0_NS}
flow,sensor_id=ss-farm flow_m3h=1.25 {T0_NS}
"""


@pytest.mark.parametrize("name", ["export.lp", "export.txt", "export"])
def test_line_protocol(tmp_path: Path, name: str) -> None:
    path = write(tmp_path, name, LINE_PROTOCOL)
    assert detect_format(path) == "line-protocol"
    loaded = load_source(str(path), site="s")
    assert list(loaded.readings) == GOLDEN


def test_line_protocol_integers_and_escapes(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "export.lp",
        f'flow,sensor_id=a,label="x\\ y" flow_m3h=2i,index_m3=7u {T0_NS + 123_456}\n'
        f"flow\\,x,sensor_id=a flow_m3h=1 {T0_NS}\n",  # measurement "flow,x": skipped
    )
    assert list(load_source(str(path), site="s").readings) == [
        Reading(sensor_id="a", time=T0 + timedelta(microseconds=123), flow_m3h=2, index_m3=7)
    ]


@pytest.mark.parametrize(
    ("line", "where"),
    [
        (f"flow,sensor_id=a flow_m3h=abc {T0_NS}", "field flow_m3h"),
        (f'flow,sensor_id=a flow_m3h="1.5" {T0_NS}', "field flow_m3h"),
        (f"flow,sensor_id=a flow_m3h=1,index_m3=-2 {T0_NS}", "field index_m3"),
        (f"flow,site=x flow_m3h=1 {T0_NS}", "field sensor_id"),
        (f"flow,sensor_id=a/b flow_m3h=1 {T0_NS}", "field sensor_id"),
        (f"flow,sensor_id=a flow_m3h=1,pressure_bar=3 {T0_NS}", "field pressure_bar"),
        ("flow,sensor_id=a flow_m3h=1", "field time: the point has no timestamp"),
        (f"flow,sensor_id=a flow_m3h=1 {T0_NS // 1000}", "field time: .* nanosecond"),
        ("flow,sensor_id=a flow_m3h=1 soon", "field time"),
        (f"flow,sensor_id=a flow_m3h=1 {T0_NS}000000", "field time: .* out of range"),
        ("flow,sensor_id=a", "not line protocol"),
        (f"flow,sensor_id a=1 {T0_NS}", "not line protocol"),
    ],
)
def test_line_protocol_errors_name_file_line_and_field(
    tmp_path: Path, line: str, where: str
) -> None:
    good = f"flow,sensor_id=a flow_m3h=1 {T0_NS}"
    path = write(tmp_path, "export.lp", f"# DML\n{good}\n{line}\n{good}\n")
    with pytest.raises(InvalidInput, match=rf"export\.lp, line 3(, |: ){where}"):
        load_source(str(path), site="s")


def test_a_file_without_readings_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "export.lp", f"# DML\ncpu usage=1 {T0_NS}\n")
    with pytest.raises(InvalidInput, match="no readings"):
        load_source(str(path), site="s")


# --- InfluxDB CSV ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        # /query with Accept: application/csv (epoch ns), other measurements mixed in
        "name,tags,time,flow_m3h,index_m3,sensor_id,usage\n"
        f"flow,,{T0_NS},35.5,125000,ss-inlet,\n"
        f"flow,,{T0_NS},1.25,,ss-farm,\n"
        f"cpu,,{T0_NS},,,,3\n"
        f"flow,,{T0_NS + MINUTE_NS},36,125000.59,ss-inlet,\n",
        # influx -format csv -precision rfc3339
        "name,time,flow_m3h,index_m3,sensor_id\n"
        "flow,2026-01-05T00:01:00Z,36,125000.59,ss-inlet\n"
        "flow,2026-01-05T00:00:00Z,35.5,125000,ss-inlet\n"
        "flow,2026-01-05T00:00:00Z,1.25,,ss-farm\n",
        # ... GROUP BY sensor_id: the tag goes to the tags column
        "name,tags,time,flow_m3h,index_m3\n"
        f"flow,sensor_id=ss-farm,{T0_NS},1.25,\n"
        f"flow,sensor_id=ss-inlet,{T0_NS},35.5,125000\n"
        f"flow,sensor_id=ss-inlet,{T0_NS + MINUTE_NS},36,125000.59\n",
    ],
    ids=["query-csv", "cli-rfc3339", "grouped"],
)
def test_influx_csv(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, "influx.csv", text)
    assert detect_format(path) == "influx-csv"
    loaded = load_source(str(path), site="s")
    assert Counter(loaded.readings) == Counter(GOLDEN)
    assert [r.time for r in loaded.readings] == sorted(r.time for r in GOLDEN)


def test_influx_csv_is_recognised_by_content(tmp_path: Path) -> None:
    path = write(tmp_path, "export", f"name,time,flow_m3h,sensor_id\nflow,{T0_NS},1,a\n")
    assert detect_format(path) == "influx-csv"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            f"name,time,flow_m3h,sensor_id\nflow,{T0_NS},1,a\nflow,{T0_NS},x,a\n",
            "line 3, field flow_m3h",
        ),
        (f"name,time,flow_m3h,sensor_id\nflow,{T0_NS},1,a\nflow,{T0_NS},1\n", "line 3: expected 4"),
        ("name,time,flow_m3h,sensor_id\nflow,2026-01-05T00:00:00,1,a\n", "line 2, field time"),
        ("name,time,sensor_id\nflow,1,a\n", "line 1: InfluxDB CSV header lacks flow_m3h"),
        ("time,flow\n2026-01-05T00:00:00Z,1\n", "line 1: header must be time,sensor_id"),
    ],
)
def test_csv_errors_name_file_line_and_field(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, "influx.csv", text)
    with pytest.raises(InvalidInput, match=rf"influx\.csv, {message}"):
        load_source(str(path), site="s")


def test_the_measurement_is_the_servers() -> None:
    assert sources.INFLUX_MEASUREMENT == MEASUREMENT


# --- a real InfluxDB export, replayed over a real mosquitto ------------------------------


def stored_readings() -> list[Reading]:
    return [
        Reading(
            sensor_id=f"m-{k % 3}",
            time=T0 + timedelta(minutes=5 * (k // 3), microseconds=k),
            flow_m3h=round(1.5 + k * 0.125, 4),
            index_m3=None if k % 7 == 0 else 100.0 + k,
        )
        for k in range(60)
    ]


def export_query(db: InfluxDatabase, **kwargs: str) -> httpx.Response:
    """A bounded ``SELECT *`` (components.md: never an unbounded time range)."""
    statement = (
        f"SELECT * FROM {MEASUREMENT} WHERE time >= '2026-01-04T00:00:00Z' "  # noqa: S608
        "AND time < '2026-01-06T00:00:00Z'"
    )
    params = {"db": db.name, "q": statement} | kwargs
    accept = {"Accept": "application/csv"} if "epoch" not in kwargs else {}
    response = httpx.get(f"{db.url}/query", params=params, headers=accept, timeout=10.0)
    response.raise_for_status()
    return response


def as_line_protocol(response: httpx.Response) -> str:
    """The JSON answer of ``/query?epoch=ns`` in line protocol, as influx_inspect writes it."""
    lines = ["# DML", "# CONTEXT-DATABASE: leaksense"]
    for series in response.json()["results"][0]["series"]:
        for row in series["values"]:
            values = dict(zip(series["columns"], row, strict=True))
            fields = ",".join(
                f"{name}={values[name]!r}" for name in ("index_m3", "flow_m3h") if values[name]
            )
            lines.append(f"{series['name']},sensor_id={values['sensor_id']} {fields} {row[0]}")
    return "\n".join(lines) + "\n"


@pytest.fixture
def influx_export(influx_db: InfluxDatabase) -> InfluxDatabase:
    store = InfluxReadingStore(influx_db.url, influx_db.name)
    try:
        store.write(stored_readings())
    finally:
        store.close()
    return influx_db


class Collector:
    """Subscribed to ``#`` (SUBACK awaited) before anything is published."""

    def __init__(self, server: MosquittoServer) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self._changed, self._subscribed = threading.Condition(), threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *_args: self._subscribed.set()
        self.client.connect(server.host, server.port)
        self.client.loop_start()
        self.client.subscribe("#", qos=1)
        assert self._subscribed.wait(20), "no SUBACK"

    def _on_message(self, _c: Any, _u: Any, message: mqtt.MQTTMessage) -> None:
        with self._changed:
            self.messages.append((message.topic, bytes(message.payload)))
            self._changed.notify_all()

    def wait_for(self, count: int) -> list[tuple[str, bytes]]:
        """The messages once ``count`` arrived (or after 20 s); disconnects."""
        with self._changed:
            self._changed.wait_for(lambda: len(self.messages) >= count, 20)
        self.client.disconnect()
        self.client.loop_stop()
        return list(self.messages)


@pytest.mark.influx
@pytest.mark.mqtt
@pytest.mark.parametrize("form", ["csv", "line-protocol"])
def test_an_export_of_our_influxdb_replays_exactly(
    influx_export: InfluxDatabase, mosquitto: MosquittoServer, tmp_path: Path, form: str
) -> None:
    if form == "csv":
        path = write(tmp_path, "flow.csv", export_query(influx_export).text)
    else:
        path = write(tmp_path, "flow.lp", as_line_protocol(export_query(influx_export, epoch="ns")))
    loaded = load_source(str(path), site="replayed")
    expected = sorted(stored_readings(), key=lambda r: r.time)
    assert list(loaded.readings) == expected

    collector = Collector(mosquitto)
    result = publish_readings(loaded.readings, Broker.from_url(mosquitto.url), site="replayed")
    received = collector.wait_for(len(expected))
    assert (result.published, result.acknowledged) == (len(expected), len(expected))
    assert Counter(received) == Counter(encode(r, "replayed", {}) for r in expected)
