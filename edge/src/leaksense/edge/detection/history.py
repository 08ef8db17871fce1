"""The refit history of one series: its recent normal readings, for the next fit.

A series remembers (time, flow) pairs as float32 offsets from a base time (±0.125 s
over the 15-day window) and float32 flows, 8 bytes a reading. Two stores behind one
:class:`HistoryStore` Protocol:

- :class:`MemoryHistory` keeps them in RAM (``leaksense detect``, the evaluation:
  fastest);
- :class:`FileHistory` keeps only a small write buffer in RAM and the rest in a file
  under the gateway's state directory, read back at each (weekly) refit and kept
  across restarts. 200 sensors reading every minute would otherwise hold ~35 MB.

File format (little-endian): a 24-byte header — magic ``LSHIST1\\n``, the base time
(float64, epoch seconds), a CRC-32 of those 16 bytes, 4 zero bytes — then blocks,
each a pair count (uint32), a CRC-32 of its payload (uint32) and ``count`` pairs of
float32 (offset_s, flow_m3h). Blocks are appended as the buffer fills; dropping the
oldest readings (or re-basing) rewrites the file. No fsync: a crash loses at most the
unwritten buffer, and a torn or corrupted block is found by its CRC when the file is
read, logged, and dropped with everything after it. A bad header drops the file.
A starting gateway deletes the files not written for two months (:func:`prune_stale`):
the histories of sensors removed or replaced.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import struct
import sys
import zlib
from array import array
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt

log = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
Where = Callable[[FloatArray], npt.NDArray[np.bool_]]
"""Which of these epoch seconds a change applies to."""
MAGIC = b"LSHIST1\n"
HEADER = struct.Struct("<8sdII")  # magic, base_s, crc32(magic + base_s), 0
BLOCK = struct.Struct("<II")  # pair count, crc32(payload)
PAIR_BYTES = 8
BLOCK_READINGS = 128
"""Readings buffered per series before a block is written (1 KB; 2 h at 1 a minute)."""
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
STALE_AFTER_S = 60 * 86_400.0
"""A history file not written for this long is of a series gone from the network
(a live one writes a block every few hours; a leak left open pauses it, not for
two months): :func:`prune_stale` deletes it."""


class HistoryStore(Protocol):
    """Rolling window of one series' readings, oldest first."""

    def __len__(self) -> int: ...

    def append(self, epoch_s: float, flow_m3h: float) -> float:
        """Remember one reading; returns the age of the oldest one at ``epoch_s``."""
        ...

    def age_s(self, epoch_s: float) -> float:
        """How old the oldest reading is at ``epoch_s`` (the history must not be empty)."""
        ...

    def drop_oldest(self, count: int) -> None:
        """Forget the ``count`` oldest readings (the window moves on)."""
        ...

    def read(self) -> tuple[FloatArray, FloatArray]:
        """Every remembered reading: epoch seconds and flows (m³/h), as float64."""
        ...

    def shift(self, before_s: float, delta_m3h: float, where: Where | None = None) -> None:
        """Add ``delta_m3h`` to the flows remembered before ``before_s`` (a flow people
        judged normal: accepted.py); only at the times ``where`` selects, if given."""
        ...

    def close(self) -> None:
        """Write what is buffered (a clean shutdown)."""
        ...


class MemoryHistory:
    """The history in RAM, as two float32 arrays."""

    def __init__(self) -> None:
        self.base_s = 0.0
        self._t = array("f")
        self._y = array("f")

    def __len__(self) -> int:
        return len(self._t)

    def append(self, epoch_s: float, flow_m3h: float) -> float:
        if not self._t:
            self.base_s = epoch_s
        self._t.append(epoch_s - self.base_s)
        self._y.append(flow_m3h)
        return epoch_s - self.base_s - self._t[0]

    def age_s(self, epoch_s: float) -> float:
        return epoch_s - self.base_s - self._t[0]

    def drop_oldest(self, count: int) -> None:
        self.base_s, offsets = _rebased(self.base_s, np.frombuffer(self._t, np.float32)[count:])
        self._t = array("f", offsets.tobytes())
        self._y = self._y[count:]

    def read(self) -> tuple[FloatArray, FloatArray]:
        t = self.base_s + np.frombuffer(self._t, dtype=np.float32).astype(np.float64)
        return t, np.frombuffer(self._y, dtype=np.float32).astype(np.float64)

    def shift(self, before_s: float, delta_m3h: float, where: Where | None = None) -> None:
        y = np.frombuffer(self._y, dtype=np.float32).copy()
        t = np.frombuffer(self._t, dtype=np.float32)
        y[_selected(t, self.base_s, before_s, where)] += delta_m3h
        self._y = array("f", y.tobytes())

    def close(self) -> None:
        """Nothing to write."""


class FileHistory:
    """The history in a file; RAM holds the base time, the count and a write buffer.

    Opening reads (and checks) what an earlier run left, so a restarted gateway
    refits at once. I/O errors are logged and never raised: the series then starts
    a new history (its current model stays in use).
    """

    def __init__(self, path: Path, block_readings: int = BLOCK_READINGS) -> None:
        self.path = path
        self.base_s = 0.0
        self._limit = 2 * block_readings
        self._written = 0  # readings in the file
        self._first_s = 0.0  # offset of the oldest reading
        self._pending = array("f")  # interleaved offset, flow
        self._fresh = True  # the next write starts a new file
        if path.exists():
            self._set(*self._load())

    def __len__(self) -> int:
        return self._written + len(self._pending) // 2

    def append(self, epoch_s: float, flow_m3h: float) -> float:
        pending = self._pending
        if not pending and not self._written:
            self.base_s, self._first_s = epoch_s, 0.0
        pending.append(epoch_s - self.base_s)
        pending.append(flow_m3h)
        if len(pending) >= self._limit:
            self._flush()
        return epoch_s - self.base_s - self._first_s

    def age_s(self, epoch_s: float) -> float:
        return epoch_s - self.base_s - self._first_s

    def drop_oldest(self, count: int) -> None:
        base_s, pairs = self._all()
        base_s, offsets = _rebased(base_s, pairs[count:, 0])
        kept = np.column_stack((offsets, pairs[count:, 1])).astype(np.float32)
        self._rewrite(base_s, kept)

    def read(self) -> tuple[FloatArray, FloatArray]:
        base_s, pairs = self._all()
        return base_s + pairs[:, 0].astype(np.float64), pairs[:, 1].astype(np.float64)

    def shift(self, before_s: float, delta_m3h: float, where: Where | None = None) -> None:
        base_s, pairs = self._all()
        pairs = pairs.copy()
        pairs[_selected(pairs[:, 0], base_s, before_s, where), 1] += delta_m3h
        self._rewrite(base_s, pairs)

    def close(self) -> None:
        self._flush()

    # -- file ------------------------------------------------------------------------
    def _set(self, base_s: float, pairs: npt.NDArray[np.float32]) -> None:
        self.base_s = base_s
        self._written = len(pairs)
        self._first_s = float(pairs[0, 0]) if self._written else 0.0
        self._fresh = not self._written

    def _all(self) -> tuple[float, npt.NDArray[np.float32]]:
        """Everything remembered, the file's part checked again (it may have changed)."""
        self._flush()
        if self._fresh:
            return self.base_s, np.empty((0, 2), np.float32)
        base_s, pairs = self._load()
        self._set(base_s, pairs)
        return base_s, pairs

    def _flush(self) -> None:
        if not self._pending:
            return
        if sys.byteorder == "big":
            self._pending.byteswap()
        payload = self._pending.tobytes()
        self._pending = array("f")
        data = _block(payload)
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND
        if self._fresh:
            data = _header(self.base_s) + data
            flags |= os.O_TRUNC
        try:
            if self._fresh:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, flags, 0o640)
            try:
                if os.write(fd, data) != len(data):
                    raise OSError("short write (disk full?)")
            finally:
                os.close(fd)
        except OSError as exc:
            self._lost(f"cannot write it: {exc}")
            return
        self._written += len(payload) // PAIR_BYTES
        self._fresh = False

    def _rewrite(self, base_s: float, pairs: npt.NDArray[np.float32]) -> None:
        """Replace the file by ``pairs`` (atomically: a crash leaves old or new)."""
        self._set(base_s, pairs)
        if not len(pairs):
            self._remove()
            return
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            tmp.write_bytes(_header(base_s) + _block(pairs.astype("<f4").tobytes()))
            os.replace(tmp, self.path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
            self._lost(f"cannot rewrite it: {exc}")

    def _load(self) -> tuple[float, npt.NDArray[np.float32]]:
        """The file's readings; a bad header loses them all, a bad block its tail."""
        try:
            data = self.path.read_bytes()
        except OSError as exc:
            self._lost(f"cannot read it: {exc}")
            return 0.0, np.empty((0, 2), np.float32)
        base_s, payload, valid_bytes, problem = _parse(data)
        pairs = np.frombuffer(payload, dtype="<f4").reshape(-1, 2).astype(np.float32)
        if problem is not None:
            log.warning(
                "refit history %s: %s; kept %d reading(s), dropped %d of %d byte(s)",
                self.path,
                problem,
                len(pairs),
                len(data) - valid_bytes,
                len(data),
            )
            self._rewrite(base_s, pairs)
        return base_s, pairs

    def _lost(self, why: str) -> None:
        log.warning("refit history %s: %s; starting a new one", self.path, why)
        self._written, self._first_s, self._pending = 0, 0.0, array("f")
        self._fresh = True
        self._remove()

    def _remove(self) -> None:
        self._fresh = True
        try:
            self.path.unlink(missing_ok=True)
        except OSError as exc:
            log.warning("refit history %s: cannot remove it: %s", self.path, exc)


def _selected(
    offsets: npt.NDArray[np.float32], base_s: float, before_s: float, where: Where | None
) -> npt.NDArray[np.bool_]:
    """The readings remembered before ``before_s`` that ``where`` selects (all, if None)."""
    mask: npt.NDArray[np.bool_] = offsets < before_s - base_s
    if where is not None:
        mask &= where(offsets.astype(np.float64) + base_s)
    return mask


def prune_stale(directory: Path, now_s: float, stale_after_s: float = STALE_AFTER_S) -> int:
    """Delete the history (open-events, model) files not written for ``stale_after_s``
    (a gateway's start: sensors replaced or removed would otherwise keep theirs for
    ever); returns how many. A file that cannot be deleted is logged and left."""
    removed = 0
    files = [*directory.glob("*.hist"), *directory.glob("*.events.json")]
    files += directory.glob("*.model.json")
    for path in sorted(files) if directory.is_dir() else []:
        try:
            if now_s - path.stat().st_mtime < stale_after_s:
                continue
            path.unlink()
        except OSError as exc:
            log.warning("could not delete the stale history %s: %s", path, exc)
            continue
        removed += 1
        log.info(
            "deleted the history of a series silent for %.0f days: %s",
            stale_after_s / 86_400,
            path.name,
        )
    return removed


def history_path(directory: Path, series_id: str, *, is_dma: bool) -> Path:
    """The file of one series: ``sensor-<id>.hist`` or ``dma-<id>.hist`` (an id that
    is no safe file name is hashed)."""
    name = (
        series_id if _SAFE_NAME.match(series_id) else hashlib.sha256(series_id.encode()).hexdigest()
    )
    return directory / f"{'dma' if is_dma else 'sensor'}-{name}.hist"


def _rebased(
    base_s: float, offsets: npt.NDArray[np.float32]
) -> tuple[float, npt.NDArray[np.float32]]:
    """Offsets re-based on the first one (so they stay small and precise)."""
    kept = offsets.astype(np.float64)
    shift_s = float(kept[0]) if kept.size else 0.0
    return base_s + shift_s, (kept - shift_s).astype(np.float32)


def _header(base_s: float) -> bytes:
    head = MAGIC + struct.pack("<d", base_s)
    return HEADER.pack(MAGIC, base_s, zlib.crc32(head), 0)


def _block(payload: bytes) -> bytes:
    return BLOCK.pack(len(payload) // PAIR_BYTES, zlib.crc32(payload)) + payload


def _parse(data: bytes) -> tuple[float, bytes, int, str | None]:
    """Base time, the payload of the valid blocks, how many bytes were valid, and what
    was wrong (or None)."""
    if len(data) < HEADER.size:
        return 0.0, b"", 0, "truncated header"
    magic, base_s, crc, _ = HEADER.unpack_from(data)
    if magic != MAGIC or crc != zlib.crc32(data[:16]) or not np.isfinite(base_s):
        return 0.0, b"", 0, "bad header"
    parts: list[bytes] = []
    at = HEADER.size
    while at < len(data):
        count, crc = BLOCK.unpack_from(data, at) if at + BLOCK.size <= len(data) else (0, 0)
        end = at + BLOCK.size + count * PAIR_BYTES
        payload = data[at + BLOCK.size : end]
        if not count or end > len(data) or zlib.crc32(payload) != crc:
            return base_s, b"".join(parts), at, "corrupted or truncated block"
        parts.append(payload)
        at = end
    return base_s, b"".join(parts), at, None
