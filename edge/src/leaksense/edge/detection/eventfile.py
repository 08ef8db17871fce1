"""A series' open events and night evidence, kept across a gateway's restarts.

Without it a restart forgot its open alerts (the server kept them open for ever and
the restarted gateway opened a second alert for the same leak) and the nights of
evidence a small leak had gathered, the night it was watching, and the watering
evenings of the last days (the recurring-excess memory), the recent level
(level.py), and the flow people judged normal (accepted.py). A small JSON
file beside the series' history (``sensor-<id>.events.json``) is written when the
series sends an alert (an event opens, is re-sent or closes), judges a night, and
once an hour while it gathers a night or its morning: about ten times a day,
atomically (a temporary file, fsync, rename). A file that cannot be read, or is not
one, is logged and left aside: detection starts afresh, as before.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from pydantic import TypeAdapter

from leaksense.edge.atomic import write_atomic
from leaksense.edge.detection.accepted import AcceptedFlow
from leaksense.edge.detection.events import EventBook
from leaksense.edge.detection.level import LevelState
from leaksense.edge.detection.night import NightEvidence
from leaksense.edge.detection.recent import RecentState

log = logging.getLogger(__name__)
FORMAT = "leaksense.events/1"


@dataclass(frozen=True, slots=True)
class SeriesState:
    """What a series keeps beside its open events (None: nothing yet, or no model)."""

    night: NightEvidence | None = None
    recent: RecentState | None = None
    """The recurring-excess memory (recent.py): without it, the first watering
    evening after a restart would be a burst again."""
    accepted: AcceptedFlow | None = None
    """A dismissed alert's flow, expected from then on (kept however long the
    gateway was down: it is the people's verdict, not evidence)."""
    level: LevelState | None = None
    """The recent level (level.py): without it, the level started again from the
    first readings after a restart, and the morning after a night restart alarmed."""


_STATE = TypeAdapter(SeriesState)


def events_path(history_file: Path) -> Path:
    """The events file of the series whose history is ``history_file``."""
    return history_file.with_suffix(".events.json")


def load_state(path: Path, book: EventBook) -> SeriesState:
    """Restore the open events saved in ``path`` into ``book``; returns what the
    series saved with them (empty: no file, or one that cannot be read)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("format") != FORMAT:
            raise ValueError(f"format {data.get('format')!r}, expected {FORMAT!r}")
        night = data.get("night")
        if isinstance(night, dict) and "judged_s" in night:  # written before windows were kept
            night["saved_s"] = night.pop("judged_s")
        kept = {key: data.get(key) for key in ("recent", "accepted", "level")} | {"night": night}
        state = _STATE.validate_python(kept)
        book.restore(data)
    except FileNotFoundError:
        return SeriesState()
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        log.warning("ignoring the open events in %s: %s", path, exc)
        return SeriesState()
    return state


def save_state(path: Path, book: EventBook, saved: SeriesState) -> None:
    """Write ``book``'s open events and what the series ``saved`` to ``path``; a
    failure is logged, never raised (a full disk must not stop detection)."""
    state = {"format": FORMAT, **book.snapshot(), **_STATE.dump_python(saved, mode="json")}
    try:
        write_atomic(path, json.dumps(state).encode())
    except OSError as exc:
        log.warning("could not save the open events to %s: %s", path, exc)
