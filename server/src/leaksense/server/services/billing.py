"""Billed-volume import: CSV ``dma_id,period_start,period_end,volume_m3``, all or nothing."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from datetime import datetime

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from leaksense.core.errors import InvalidInput, NotFoundError
from leaksense.core.messages import Identifier, UtcDatetime
from leaksense.server.db import BilledVolume, Dma
from leaksense.server.domain.volumes import BillingPeriod

COLUMNS = ("dma_id", "period_start", "period_end", "volume_m3")


class BillingRow(BaseModel):
    """One billed volume; periods are ``[period_start, period_end)``."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    dma_id: Identifier
    period_start: UtcDatetime
    period_end: UtcDatetime
    volume_m3: float

    @model_validator(mode="after")
    def _check(self) -> BillingRow:
        if self.period_end <= self.period_start:
            raise ValueError("period_end must be after period_start")
        if not 0 <= self.volume_m3 < 1e12:
            raise ValueError("volume_m3 must be a non-negative number")
        return self


def parse_billing_csv(text: str) -> list[BillingRow]:
    """Validate every row; the first bad row aborts with its line number."""
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise InvalidInput(f"billing CSV line 1: missing column(s) {', '.join(missing)}")
    rows = []
    for row in reader:
        try:
            rows.append(BillingRow.model_validate({c: row[c] for c in COLUMNS}))
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"]) or "row"
            raise InvalidInput(
                f"billing CSV line {reader.line_num}: {field}: {first['msg']}"
            ) from exc
    return rows


def import_billing(session: Session, rows: Sequence[BillingRow]) -> int:
    """Store rows in one transaction (re-importing a period replaces its volume)."""
    unknown = sorted({r.dma_id for r in rows} - set(session.scalars(select(Dma.dma_id)).all()))
    if unknown:
        raise NotFoundError(f"billing CSV names unknown DMA(s): {', '.join(unknown)}")
    for row in rows:
        existing = session.scalars(
            select(BilledVolume).where(
                BilledVolume.dma_id == row.dma_id,
                BilledVolume.period_start == row.period_start,
                BilledVolume.period_end == row.period_end,
            )
        ).first()
        record = existing or BilledVolume(
            dma_id=row.dma_id, period_start=row.period_start, period_end=row.period_end
        )
        record.volume_m3 = row.volume_m3
        session.add(record)
    session.commit()
    return len(rows)


def billing_periods(
    session: Session, dma_id: str, start: datetime, end: datetime
) -> list[BillingPeriod]:
    """The billed periods of a DMA that overlap ``[start, end)``."""
    records = session.scalars(
        select(BilledVolume).where(
            BilledVolume.dma_id == dma_id,
            BilledVolume.period_end > start,
            BilledVolume.period_start < end,
        )
    ).all()
    return [BillingPeriod(r.period_start, r.period_end, r.volume_m3) for r in records]
