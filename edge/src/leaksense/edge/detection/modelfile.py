"""The model a series trained itself, kept across a gateway's restart.

Without it a restart refitted every series from its history at once, at whatever
hour the gateway came back: in the middle of a night, the refit took the part of the
night it had for a whole one, the night's day factor came out different, and the
night's verdict alarmed (docs/detection.md, *Sixteenth round*). A series writes the
model it fits beside its history (``sensor-<id>.model.json``) and takes it back after
a restart, until its next refit is due. A file that cannot be read, or is another
series', is logged and left aside: the series refits, as before. Models from the
server are kept by the gateway's model sync (``edge/models.py``).
"""

from __future__ import annotations

import logging
from pathlib import Path

from pydantic import ValidationError

from leaksense.edge.atomic import write_atomic
from leaksense.edge.detection.artifact import ModelArtifact

log = logging.getLogger(__name__)


def model_path(history_file: Path) -> Path:
    """The model file of the series whose history is ``history_file``."""
    return history_file.with_suffix(".model.json")


def load_model(path: Path, series_id: str) -> ModelArtifact | None:
    """The model saved in ``path`` for ``series_id`` (None: none, or unusable)."""
    try:
        artifact = ModelArtifact.model_validate_json(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValidationError) as exc:
        log.warning("ignoring the saved model %s: %s", path, exc)
        return None
    if artifact.series_id != series_id:
        log.warning("ignoring the saved model %s: it is %r's", path, artifact.series_id)
        return None
    return artifact


def save_model(path: Path, artifact: ModelArtifact) -> None:
    """Write ``artifact`` to ``path``; a failure is logged, never raised."""
    try:
        write_atomic(path, artifact.model_dump_json().encode())
    except OSError as exc:
        log.warning("could not save the model to %s: %s", path, exc)
