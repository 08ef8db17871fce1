"""What ``leaksense replay`` can replay: a scenario, a readings CSV or an InfluxDB export.

Every source is parsed and validated in full before anything is published (a bad line
halfway through a file must not leave half a replay on the broker), and every record
goes through :class:`~leaksense.core.messages.Reading`, so a file fails with its
name, line number and field, as an :class:`~leaksense.core.errors.InvalidInput`.

Formats, chosen by extension then content:

- a built-in scenario name (``saint-savin``, ...) or a scenario file (``.yaml``,
  ``.yml``), simulated with a seed;
- a readings CSV (``time,sensor_id,flow_m3h,index_m3``, what ``leaksense simulate``
  writes);
- InfluxDB line protocol (``.lp``, ``.txt``, or any file that is not one of the CSVs),
  as ``influx_inspect export`` or our server writes it: points of measurement
  ``flow`` tagged ``sensor_id``, fields ``flow_m3h`` and ``index_m3``, nanosecond
  timestamps; comments, ``# DDL``/``# DML``/``# CONTEXT-…`` headers and ``CREATE``
  statements are skipped, and so are other measurements; tags other than
  ``sensor_id`` are ignored, other fields refused (they would be silently lost);
- InfluxDB CSV (header ``name,[tags,]time,…``), as ``influx -format csv`` or ``/query``
  with ``Accept: application/csv`` answer; time in nanoseconds or RFC 3339, the
  ``sensor_id`` in its own column or in ``tags``; other columns are ignored (CSV
  cannot tell a tag from a field).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from leaksense.core.errors import ConfigError, InvalidInput
from leaksense.core.messages import ID_PATTERN, Reading
from leaksense.simulator.builtin import BUILTIN_NAMES
from leaksense.simulator.files import READINGS_HEADER, read_readings_csv
from leaksense.simulator.generate import simulate
from leaksense.simulator.publish import esphome_nodes
from leaksense.simulator.scenario import Scenario, builtin_scenario, load_scenario

INFLUX_MEASUREMENT = "flow"
"""The measurement our server writes readings to (``leaksense.server.stores.influx``)."""
SCENARIO_SUFFIXES = (".yaml", ".yml")
_FIELDS = ("flow_m3h", "index_m3")
_SKIPPED_PREFIXES = ("#", "CREATE ")  # comments, DDL/DML/CONTEXT headers, CREATE DATABASE
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MIN_PLAUSIBLE_NS = 100_000_000_000_000_000  # 1973-03-03: smaller is s, ms or µs, not ns
_ID = re.compile(ID_PATTERN)


@dataclass(frozen=True, slots=True)
class ReplaySource:
    """Readings in time order, the site of their JSON topics, and ESPHome nodes."""

    readings: Sequence[Reading]
    site: str
    esphome: Mapping[str, str] = field(default_factory=dict)
    description: str = ""


def load_source(
    source: str,
    *,
    days: int | None = None,
    seed: int = 0,
    start: datetime | None = None,
    site: str | None = None,
) -> ReplaySource:
    """Parse and validate ``source`` completely: a scenario name or a file.

    ``days``, ``seed`` and ``start`` apply to scenarios (None: the scenario's own);
    ``site`` overrides a scenario's and is required for files, which carry none.
    """
    if site is not None:
        _check_site(site)
    path = Path(source)
    if source in BUILTIN_NAMES or path.suffix.lower() in SCENARIO_SUFFIXES:
        return _scenario_source(scenario_of(source, start=start, days=days), seed, site)
    if not path.is_file():
        raise ConfigError(
            f"{source!r} is neither a built-in scenario ({', '.join(BUILTIN_NAMES)}) nor a file"
        )
    if site is None:
        raise ConfigError(f"{path}: a site is required to replay a file (--site)")
    kind = detect_format(path)
    readings = {
        "readings-csv": read_readings_csv,
        "influx-csv": read_influx_csv,
        "line-protocol": read_line_protocol,
    }[kind](path)
    if not readings:
        raise InvalidInput(f"{path}: no readings ({kind})")
    readings.sort(key=lambda r: r.time)  # stable: same-time readings keep file order
    return ReplaySource(readings, site, {}, f"{path} ({kind})")


def scenario_of(source: str, *, start: datetime | None, days: int | None) -> Scenario:
    """The one place scenarios come from: a built-in name or a scenario file."""
    if source in BUILTIN_NAMES:
        return builtin_scenario(source, start, days)
    return load_scenario(Path(source), start, days)


def _scenario_source(scenario: Scenario, seed: int, site: str | None) -> ReplaySource:
    # Sorted although generated in time order: meters with their own intervals or a
    # drifting clock interleave, and a replay goes strictly forward in time.
    readings = sorted(simulate(scenario, seed).readings, key=lambda r: r.time)
    description = f"scenario {scenario.name}, seed {seed}"
    return ReplaySource(readings, site or scenario.site, esphome_nodes(scenario), description)


def _check_site(site: str) -> None:
    if not _ID.match(site):
        raise ConfigError(f"site {site!r} does not match {ID_PATTERN}")


def detect_format(path: Path) -> str:
    """``readings-csv``, ``influx-csv`` or ``line-protocol``: by extension, then header."""
    suffix = path.suffix.lower()
    if suffix == ".lp":
        return "line-protocol"
    header = _first_line(path)
    columns = next(csv.reader([header]), [])
    if tuple(columns) == READINGS_HEADER:
        return "readings-csv"
    if columns[:1] == ["name"] and "time" in columns:
        return "influx-csv"
    if suffix == ".csv":
        raise InvalidInput(
            f"{path}, line 1: header must be {','.join(READINGS_HEADER)} (readings CSV) "
            "or name,[tags,]time,… (InfluxDB CSV)"
        )
    return "line-protocol"


def _first_line(path: Path) -> str:
    try:
        with path.open(encoding="utf-8-sig") as f:
            return next((line.strip() for line in f if line.strip()), "")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{path}: cannot read: {exc}") from exc


def _read_lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{path}: cannot read: {exc}") from exc


def _invalid(path: Path, line: int, exc: ValidationError) -> InvalidInput:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"])
    return InvalidInput(f"{path}, line {line}, field {where}: {error['msg']}")


def _reading(path: Path, line: int, values: dict[str, Any]) -> Reading:
    try:
        return Reading.model_validate(values)
    except ValidationError as exc:
        raise _invalid(path, line, exc) from exc


def _from_ns(path: Path, line: int, text: str) -> datetime:
    """Nanoseconds since the epoch as a UTC datetime (to the microsecond)."""
    try:
        ns = int(text)
    except ValueError:
        raise InvalidInput(f"{path}, line {line}, field time: {text!r} is not an integer") from None
    if abs(ns) < _MIN_PLAUSIBLE_NS:
        raise InvalidInput(
            f"{path}, line {line}, field time: {ns} is before 1973 in nanoseconds; "
            "export with nanosecond precision"
        )
    try:
        return _EPOCH + timedelta(microseconds=ns // 1000)
    except OverflowError:
        raise InvalidInput(f"{path}, line {line}, field time: {ns} is out of range") from None


# --- InfluxDB line protocol ------------------------------------------------------------


def read_line_protocol(path: Path) -> list[Reading]:
    """Readings from the ``flow`` points of a line-protocol file; other points skipped."""
    readings = []
    for number, raw in enumerate(_read_lines(path), start=1):
        line = raw.strip()
        if not line or line.startswith(_SKIPPED_PREFIXES):
            continue
        try:
            point = _parse_point(line)
        except ValueError as exc:
            raise InvalidInput(f"{path}, line {number}: not line protocol: {exc}") from None
        if point is not None:
            readings.append(_point_reading(path, number, *point))
    return readings


def _point_reading(
    path: Path, line: int, tags: dict[str, str], fields: dict[str, str], timestamp: str | None
) -> Reading:
    unknown = sorted(set(fields) - set(_FIELDS))
    if unknown:
        raise InvalidInput(
            f"{path}, line {line}, field {unknown[0]}: not a reading field "
            f"(expected {', '.join(_FIELDS)})"
        )
    if timestamp is None:
        raise InvalidInput(f"{path}, line {line}, field time: the point has no timestamp")
    values: dict[str, Any] = {"time": _from_ns(path, line, timestamp)}
    if "sensor_id" in tags:
        values["sensor_id"] = tags["sensor_id"]
    for name, value in fields.items():
        values[name] = _field_number(value)
    return _reading(path, line, values)


def _field_number(value: str) -> str:
    """A numeric field value without its integer suffix; strings stay quoted (refused)."""
    return value[:-1] if value[-1:] in ("i", "u") and value[:-1].lstrip("-").isdigit() else value


def _parse_point(line: str) -> tuple[dict[str, str], dict[str, str], str | None] | None:
    """``(tags, fields, timestamp)`` of a ``flow`` point, None for other measurements."""
    if "\\" not in line and '"' not in line:  # nothing escaped or quoted: plain splits
        sections = line.split(" ")
        if len(sections) not in (2, 3):
            raise ValueError("expected 'measurement[,tags] fields [timestamp]'")
        measurement, *tag_items = sections[0].split(",")
        if measurement != INFLUX_MEASUREMENT:
            return None
        timestamp = sections[2] if len(sections) == 3 else None
        return _pairs(tag_items, "tag"), _pairs(sections[1].split(","), "field"), timestamp
    key_end = _find(line, " ", 0, quotes=False)
    if key_end < 0:
        raise ValueError("expected 'measurement[,tags] fields [timestamp]'")
    measurement, *tag_items = _split(line[:key_end], ",", quotes=False)
    if _unescape(measurement) != INFLUX_MEASUREMENT:
        return None
    fields_end = _find(line, " ", key_end + 1, quotes=True)
    field_set = line[key_end + 1 : fields_end if fields_end >= 0 else len(line)]
    timestamp = line[fields_end + 1 :].strip() if fields_end >= 0 else None
    return _pairs(tag_items, "tag"), _pairs(_split(field_set, ",", quotes=True), "field"), timestamp


def _pairs(items: list[str], what: str) -> dict[str, str]:
    pairs = {}
    for item in items:
        equals = item.find("=") if "\\" not in item else _find(item, "=", 0, quotes=False)
        if equals <= 0:
            raise ValueError(f"{what} {item!r} is not key=value")
        value = item[equals + 1 :]
        pairs[_unescape(item[:equals])] = _unescape(value) if what == "tag" else value
    return pairs


def _find(text: str, char: str, start: int, *, quotes: bool) -> int:
    """Index of the first ``char`` from ``start`` not escaped (nor quoted), or -1."""
    if "\\" not in text and not (quotes and '"' in text):
        return text.find(char, start)
    quoted, i = False, start
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            i += 2
            continue
        if quotes and ch == '"':
            quoted = not quoted
        elif ch == char and not quoted:
            return i
        i += 1
    return -1


def _split(text: str, sep: str, *, quotes: bool) -> list[str]:
    parts = []
    while (cut := _find(text, sep, 0, quotes=quotes)) >= 0:
        parts.append(text[:cut])
        text = text[cut + 1 :]
    parts.append(text)
    return parts


def _unescape(text: str) -> str:
    if "\\" not in text:
        return text
    out, chars = [], iter(text)
    for ch in chars:
        out.append(next(chars, ch) if ch == "\\" else ch)
    return "".join(out)


# --- InfluxDB CSV ------------------------------------------------------------------------


def read_influx_csv(path: Path) -> list[Reading]:
    """Readings from the ``flow`` rows of an InfluxDB CSV; other measurements skipped."""
    readings = []
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            header = next(reader, [])
            column = _influx_columns(path, header)
            for row in reader:
                if len(row) != len(header) and row:
                    raise InvalidInput(
                        f"{path}, line {reader.line_num}: "
                        f"expected {len(header)} fields, got {len(row)}"
                    )
                if row and row[column["name"]] == INFLUX_MEASUREMENT:
                    readings.append(_influx_row(path, reader.line_num, row, column))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InvalidInput(f"{path}: cannot read: {exc}") from exc
    return readings


def _influx_columns(path: Path, header: list[str]) -> dict[str, int]:
    column = {name: i for i, name in enumerate(header)}
    missing = [name for name in ("name", "time", "flow_m3h") if name not in column]
    if "sensor_id" not in column and "tags" not in column:
        missing.append("sensor_id (or tags)")
    if missing:
        raise InvalidInput(f"{path}, line 1: InfluxDB CSV header lacks {', '.join(missing)}")
    return column


def _influx_row(path: Path, line: int, row: list[str], column: dict[str, int]) -> Reading:
    time_text = row[column["time"]]
    values: dict[str, Any] = {
        "time": _from_ns(path, line, time_text) if _is_integer(time_text) else time_text
    }
    tags = _csv_tags(row[column["tags"]]) if "tags" in column else {}
    sensor_id = row[column["sensor_id"]] if "sensor_id" in column else tags.get("sensor_id")
    if sensor_id:
        values["sensor_id"] = sensor_id
    for name in _FIELDS:
        if name in column and row[column[name]] != "":
            values[name] = row[column[name]]
    return _reading(path, line, values)


def _csv_tags(text: str) -> dict[str, str]:
    """``sensor_id=a,other=b`` (the ``tags`` column of a grouped query)."""
    pairs = (item.partition("=") for item in text.split(",") if item)
    return {key: value for key, _, value in pairs}


def _is_integer(text: str) -> bool:
    return text.lstrip("-").isdigit()
