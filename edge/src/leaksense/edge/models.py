"""Signed model artifacts from the server: verified, installed, kept on disk.

At start, the artifacts saved in ``[models] dir`` are verified again and installed,
so a restarted gateway detects at once instead of warming up for two weeks. Then,
every ``refresh_s``, the gateway asks ``GET /api/v1/models?since=<cursor>``, checks
each artifact's checksum and Ed25519 signature against ``[models] public_key``,
installs it and saves it atomically. An artifact that fails verification is
refused, counted and logged: never installed, never saved. Without a public key
nothing from the server is trusted and every series keeps learning on local data.

The sync runs on its own thread; it installs through the callable it is given,
which the runner makes hold the gateway's detection lock.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from leaksense.core.errors import (
    AuthenticationError,
    InvalidInput,
    UplinkUnavailable,
)
from leaksense.core.messages import ID_PATTERN
from leaksense.edge.atomic import write_atomic
from leaksense.edge.config import GatewayConfig
from leaksense.edge.detection.artifact import (
    ModelArtifact,
    checksum,
    load_public_key,
    parse_signed,
)
from leaksense.edge.http import TransportError, gateway_client
from leaksense.edge.polling import refresh_periodically

if TYPE_CHECKING:  # cryptography loads only where a signature is checked (-6 MiB)
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

log = logging.getLogger(__name__)
MODELS_PATH = "/api/v1/models"
Installer = Callable[[Sequence[ModelArtifact]], int]
"""Puts verified artifacts to use (``DetectionEngine.install``); returns how many were."""


@dataclass
class ModelSyncStats:
    """Counters for a technician or a test."""

    loaded: int = 0
    """Artifacts installed from disk at start."""
    fetched: int = 0
    installed: int = 0
    """New artifacts from the server, verified and installed."""
    refused: int = 0
    """Artifacts (from disk or server) that failed verification."""
    fetch_failures: int = 0


@dataclass(frozen=True, slots=True)
class _Verified:
    artifact: ModelArtifact
    data: bytes
    sha256: str


class ModelSync:
    """Keeps a gateway's detection models in step with the server."""

    def __init__(self, config: GatewayConfig, token: str, install: Installer) -> None:
        self._dir: Path = config.models.dir
        self._refresh_s = config.models.refresh_s
        key = config.models.public_key
        self._key: Ed25519PublicKey | None = load_public_key(key) if key else None
        self._install = install
        self._http = gateway_client(config.uplink.url, token, config.uplink.timeout_s)
        self._installed: dict[tuple[str, str], str] = {}
        self._since: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.stats = ModelSyncStats()
        if self._key is None:
            log.warning(
                "no [models] public_key: server models are refused, every series learns "
                "from this gateway's own data"
            )

    # -- at start --------------------------------------------------------------------
    def load_saved(self) -> int:
        """Verify and install the artifacts saved by earlier runs; returns how many."""
        if self._key is None or not self._dir.is_dir():
            return 0
        verified = []
        for path in sorted(self._dir.glob("*.json")):
            try:
                verified.append(self._verify(path.read_bytes()))
            except (OSError, InvalidInput) as exc:
                self.stats.refused += 1
                log.error("refused saved model %s: %s", path, exc)
        self._use(verified)
        self.stats.loaded += len(verified)
        return len(verified)

    # -- from the server ---------------------------------------------------------------
    def refresh(self) -> int:
        """Fetch what changed since the last call; returns how many artifacts were new.

        Raises :class:`UplinkUnavailable` or :class:`AuthenticationError` when the
        server cannot be asked; refused artifacts are counted, not raised.
        """
        if self._key is None:
            return 0
        body = self._fetch()
        items = body.get("artifacts")
        if not isinstance(items, list):
            raise UplinkUnavailable("server sent a models answer without an artifact list")
        self.stats.fetched += len(items)
        fresh = []
        for item in items:
            data = json.dumps(item, separators=(",", ":"), ensure_ascii=False).encode()
            try:
                verified = self._verify(data)
            except InvalidInput as exc:
                self.stats.refused += 1
                log.error("refused model from the server: %s", exc)
                continue
            if self._installed.get(_key_of(verified.artifact)) != verified.sha256:
                self._save(verified)
                fresh.append(verified)
        self._use(fresh)
        self.stats.installed += len(fresh)
        if isinstance(body.get("as_of"), str):
            self._since = body["as_of"]
        return len(fresh)

    def run(self, stop: threading.Event) -> None:
        """Refresh now, then every ``refresh_s``, until ``stop`` is set."""
        refresh_periodically(
            stop, self.refresh, self._refresh_s, "models", log, on_failure=self._failed
        )

    def _failed(self) -> None:
        self.stats.fetch_failures += 1

    def start(self) -> None:
        """Load saved models, then keep fetching on a thread (not without a key)."""
        self.load_saved()
        if self._key is None:
            return
        self._thread = threading.Thread(
            target=self.run, args=(self._stop,), name="models", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._http.close()

    # -- helpers -----------------------------------------------------------------------
    def _fetch(self) -> dict[str, Any]:
        params = {"since": self._since} if self._since else {}
        try:
            response = self._http.get(MODELS_PATH, params=params)
        except TransportError as exc:
            raise UplinkUnavailable(f"server unreachable: {exc}") from exc
        if response.status == 401:
            raise AuthenticationError("server refused the gateway token for models")
        if response.status != 200:
            raise UplinkUnavailable(f"models: server answered HTTP {response.status}")
        try:
            body = response.json()
        except ValueError as exc:
            raise UplinkUnavailable(f"models: server answer is not JSON: {exc}") from exc
        if not isinstance(body, dict):
            raise UplinkUnavailable("models: server answer is not a JSON object")
        return body

    def _verify(self, data: bytes) -> _Verified:
        artifact = parse_signed(data, self._key)
        if not re.fullmatch(ID_PATTERN, artifact.series_id):
            raise InvalidInput(f"model artifact names an invalid series {artifact.series_id!r}")
        return _Verified(artifact, data, checksum(artifact))

    def _use(self, verified: Sequence[_Verified]) -> None:
        if verified:
            self._install([v.artifact for v in verified])
        for v in verified:
            self._installed[_key_of(v.artifact)] = v.sha256

    def _save(self, verified: _Verified) -> None:
        """Write atomically: a crash leaves the old file or the new one, never half."""
        kind, series_id = _key_of(verified.artifact)
        path = self._dir / f"{kind}.{series_id}.json"
        try:
            write_atomic(path, verified.data)
        except OSError as exc:  # detection goes on; the model is fetched again next start
            log.error("cannot save model %s: %s", path, exc)


def _key_of(artifact: ModelArtifact) -> tuple[str, str]:
    return artifact.kind, artifact.series_id
