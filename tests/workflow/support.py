"""Helpers of the workflow tests: alerts as gateways send them, through real ingest."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from leaksense.core.messages import Alert
from leaksense.server.db import Gateway
from leaksense.server.notify.worker import NotificationWorker
from leaksense.server.services.ingest import Ingestor
from leaksense.server.settings import ServerSettings, load_settings
from leaksense.server.stores.sqlite import SqliteReadingStore
from leaksense.server.wire import decode_ingest

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
GATEWAY = "gw-1"


def wire_alert(alert_id: str = "gw-1:burst:1", **fields: Any) -> Alert:
    """An alert as a gateway sends it (a burst on sensor s-1 by default)."""
    values: dict[str, Any] = {
        "alert_id": alert_id,
        "sensor_id": "s-1",
        "kind": "burst",
        "started_at": T0 - timedelta(minutes=10),
        "detected_at": T0 - timedelta(minutes=5),
        "updated_at": T0 - timedelta(minutes=5),
        "flow_m3h": 4.2,
        "lost_volume_m3": 0.7,
        "confidence": 0.9,
        "explanation_en": "Flow 4.2 m³/h above the expected night flow.",
        "explanation_fr": "Débit supérieur de 4,2 m³/h au débit de nuit attendu.",
    }
    values.update(fields)
    return Alert.model_validate(values)


class Gateway1:
    """Sends alerts through the real ingest path (``Ingestor``), as gateway ``gw-1``."""

    def __init__(self, sessions: sessionmaker[Session], store: SqliteReadingStore) -> None:
        self._sessions, self._ingestor, self._seq = sessions, Ingestor(store), 0
        with sessions() as session:
            session.add(Gateway(gateway_id=GATEWAY, created_at=T0))
            session.commit()

    def send(self, *alerts: Alert) -> None:
        body = {
            "gateway_id": GATEWAY,
            "batch_seq": self._seq,
            "sent_at": T0.isoformat(),
            "alerts": [a.model_dump(mode="json") for a in alerts],
        }
        self._seq += 1
        with self._sessions() as session:
            self._ingestor.ingest(session, GATEWAY, decode_ingest(json.dumps(body).encode()))


class Clock:
    """A settable UTC clock for workers (``clock.now``; ``advance(seconds)``)."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class Mailer:
    """A notification worker mailing ``smtp`` (two on-call people), on a settable clock."""

    worker: NotificationWorker
    clock: Clock


def notify_settings(tmp_path: Path, db_url: str, **overrides: Any) -> ServerSettings:
    """Settings that mail two on-call people through a local SMTP server."""
    values: dict[str, Any] = {
        "data_dir": tmp_path,
        "database_url": db_url,
        "smtp_host": "127.0.0.1",
        "smtp_starttls": False,
        "smtp_timeout_s": 2.0,
        "smtp_from": "leaksense@example.org",
        "notify_oncall": ["first@example.org", "second@example.org"],
        "escalate_after_s": 600,
        "notify_retry_base_s": 1.0,
        "public_base_url": "https://leaksense.example",
    }
    values.update(overrides)
    return load_settings(**values)
