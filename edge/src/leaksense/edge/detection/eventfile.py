"""A series' open events, kept across a gateway's restarts in a small JSON file.

Without it a restart forgot its open alerts: the server kept them open for ever and
the restarted gateway opened a second alert for the same leak. The file sits beside
the series' history (``sensor-<id>.events.json``) and is written only when the
series sends an alert — an event opens, is re-sent or closes: a few times a day —
atomically (a temporary file, fsync, rename). A file that cannot be read, or is not
one, is logged and left aside: detection starts without its events, as before.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from leaksense.edge.detection.events import EventBook

log = logging.getLogger(__name__)
FORMAT = "leaksense.events/1"


def events_path(history_file: Path) -> Path:
    """The events file of the series whose history is ``history_file``."""
    return history_file.with_suffix(".events.json")


def load_events(path: Path, book: EventBook) -> int:
    """Restore the open events saved in ``path`` into ``book``; returns how many."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("format") != FORMAT:
            raise ValueError(f"format {data.get('format')!r}, expected {FORMAT!r}")
        book.restore(data)
    except FileNotFoundError:
        return 0
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        log.warning("ignoring the open events in %s: %s", path, exc)
        return 0
    return len(data["open"])


def save_events(path: Path, book: EventBook) -> None:
    """Write ``book``'s open events to ``path``; a failure is logged, never raised
    (a full disk must not stop detection)."""
    tmp = path.with_suffix(".tmp")
    try:
        with tmp.open("w", encoding="utf-8") as f:
            json.dump({"format": FORMAT, **book.snapshot()}, f)
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(path)
    except OSError as exc:
        log.warning("could not save the open events to %s: %s", path, exc)
