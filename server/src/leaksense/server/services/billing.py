"""Billed-volume import: CSV as billing software exports it, all or nothing.

Two layouts, told apart by the ``customer_id`` column:

- per DMA: ``dma_id,period_start,period_end,volume_m3`` (what ``leaksense simulate``
  writes as ``billing.csv``), stored in ``billed_volumes``;
- per customer: ``customer_id,dma_id,period_start,period_end,volume_m3``, stored in
  ``customer_bills`` (one row per account and billing period).

Headers are matched through :data:`COLUMN_ALIASES` after lower-casing and removing
accents, spaces and punctuation, so ``N° abonné;Secteur;Début période;Fin période;
Volume facturé (m³)`` is read as well. The separator is ``,``, ``;`` or a tab (from
the header line); volumes may use a decimal comma (``12,5``) and spaces between
thousands. Dates are ISO 8601 with an offset, or dates (``2026-01-05``,
``05/01/2026``) read as midnight UTC. A period is ``[period_start, period_end)``: a
date-only end is the day of the closing meter read, excluded.

Every row is validated before anything is stored; the first bad row aborts the
import with its line number, and the rows go in one transaction.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Sequence
from datetime import datetime

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from leaksense.core.errors import InvalidInput, NotFoundError
from leaksense.core.messages import Identifier, UtcDatetime
from leaksense.server.db import BilledVolume, CustomerBill, Dma, upsert_statement
from leaksense.server.domain.volumes import BillingPeriod

COLUMNS = ("dma_id", "period_start", "period_end", "volume_m3")
COLUMN_ALIASES: dict[str, tuple[str, ...]] = {
    "customer_id": (
        "customer_id", "customer", "client", "id_client", "numero_client", "abonne",
        "n_abonne", "no_abonne", "numero_abonne", "reference_abonne", "ref_abonne",
        "point_de_service", "pds",
    ),
    "dma_id": ("dma_id", "dma", "secteur", "secteur_hydraulique", "zone", "zone_de_comptage"),
    "period_start": (
        "period_start", "start", "debut", "date_debut", "debut_periode", "debut_de_periode",
        "date_ancien_releve", "ancien_releve", "date_releve_precedent",
    ),
    "period_end": (
        "period_end", "end", "fin", "date_fin", "fin_periode", "fin_de_periode",
        "date_nouveau_releve", "nouveau_releve", "date_releve",
    ),
    "volume_m3": (
        "volume_m3", "volume", "volume_facture", "volume_facture_m3", "consommation",
        "consommation_m3", "conso_m3", "m3_factures", "volume_factures_m3",
    ),
}  # fmt: skip
"""Canonical column → header spellings it is recognised by (after :func:`normalise_header`)."""

_FRENCH_DATE = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_SPACES = re.compile(r"[\s\u00a0\u202f']")


class BillingRow(BaseModel):
    """One billed volume over ``[period_start, period_end)``; ``customer_id`` if per account."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    dma_id: Identifier
    period_start: UtcDatetime
    period_end: UtcDatetime
    volume_m3: float
    customer_id: str | None = None

    @model_validator(mode="after")
    def _check(self) -> BillingRow:
        if self.period_end <= self.period_start:
            raise ValueError("period_end must be after period_start")
        if not 0 <= self.volume_m3 < 1e12:
            raise ValueError("volume_m3 must be a non-negative number")
        if self.customer_id is not None and not 0 < len(self.customer_id) <= 64:
            raise ValueError("customer_id must be 1 to 64 characters")
        return self


def normalise_header(name: str) -> str:
    """``'Volume facturé (m³)'`` → ``'volume_facture_m3'``."""
    plain = unicodedata.normalize("NFKD", name.strip().lstrip("\ufeff"))
    plain = "".join(c for c in plain if not unicodedata.combining(c)).lower()
    return re.sub(r"[^a-z0-9]+", "_", plain).strip("_")


def _volume(text: str) -> str:
    value = _SPACES.sub("", text)
    if "," in value:
        value = value.replace(".", "").replace(",", ".")
    return value


def _time(text: str) -> str:
    value = text.strip()
    match = _FRENCH_DATE.match(value)
    if match:
        day, month, year = match.groups()
        return f"{year}-{int(month):02d}-{int(day):02d}T00:00:00Z"
    if _ISO_DATE.match(value):
        return f"{value}T00:00:00Z"
    return value


def _columns(fieldnames: Sequence[str]) -> dict[str, str]:
    """Canonical column → header as written in the file."""
    found: dict[str, str] = {}
    for header in fieldnames:
        key = normalise_header(header)
        for canonical, aliases in COLUMN_ALIASES.items():
            if key in aliases and canonical not in found:
                found[canonical] = header
    missing = [c for c in COLUMNS if c not in found]
    if missing:
        raise InvalidInput(f"billing CSV line 1: missing column(s) {', '.join(missing)}")
    return found


def parse_billing_csv(text: str) -> list[BillingRow]:
    """Validate every row; the first bad row aborts with its line number."""
    first_line = text.lstrip("\ufeff").split("\n", 1)[0]
    delimiter = max((";", ",", "\t"), key=first_line.count)
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")), delimiter=delimiter)
    columns = _columns(reader.fieldnames or [])
    rows: list[BillingRow] = []
    seen: dict[tuple[str | None, str, datetime, datetime], int] = {}
    for row in reader:
        values = {c: (row.get(header) or "").strip() for c, header in columns.items()}
        values["volume_m3"] = _volume(values["volume_m3"])
        values["period_start"] = _time(values["period_start"])
        values["period_end"] = _time(values["period_end"])
        try:
            parsed = BillingRow.model_validate(values)
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"]) or "row"
            raise InvalidInput(
                f"billing CSV line {reader.line_num}: {field}: {first['msg']}"
            ) from exc
        key = (parsed.customer_id, parsed.dma_id, parsed.period_start, parsed.period_end)
        if key in seen:
            raise InvalidInput(
                f"billing CSV line {reader.line_num}: same customer and period as line {seen[key]}"
            )
        seen[key] = reader.line_num
        rows.append(parsed)
    return rows


def import_billing(session: Session, rows: Sequence[BillingRow]) -> int:
    """Store rows in one transaction (re-importing a period replaces its volume)."""
    unknown = sorted({r.dma_id for r in rows} - set(session.scalars(select(Dma.dma_id)).all()))
    if unknown:
        raise NotFoundError(f"billing CSV names unknown DMA(s): {', '.join(unknown)}")
    per_dma = [r for r in rows if r.customer_id is None]
    per_customer = [r for r in rows if r.customer_id is not None]
    try:
        _store_dma_rows(session, per_dma)
        _store_customer_rows(session, per_customer)
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return len(rows)


def _store_dma_rows(session: Session, rows: Sequence[BillingRow]) -> None:
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


def _store_customer_rows(session: Session, rows: Sequence[BillingRow]) -> None:
    """One bulk upsert per 1 000 rows: a commune has thousands of accounts."""
    for i in range(0, len(rows), 1_000):
        insert = upsert_statement(session, CustomerBill)
        session.execute(
            insert.on_conflict_do_update(
                index_elements=[
                    CustomerBill.customer_id,
                    CustomerBill.period_start,
                    CustomerBill.period_end,
                ],
                set_={"dma_id": insert.excluded.dma_id, "volume_m3": insert.excluded.volume_m3},
            ),
            [
                {
                    "customer_id": r.customer_id,
                    "dma_id": r.dma_id,
                    "period_start": r.period_start,
                    "period_end": r.period_end,
                    "volume_m3": r.volume_m3,
                }
                for r in rows[i : i + 1_000]
            ],
        )


def billing_periods(
    session: Session, dma_id: str, start: datetime, end: datetime
) -> list[BillingPeriod]:
    """The billed periods of a DMA that overlap ``[start, end)``, both layouts.

    Customer bills of the same period are summed into one: proration only needs the
    period and its volume.
    """
    records = session.scalars(
        select(BilledVolume).where(
            BilledVolume.dma_id == dma_id,
            BilledVolume.period_end > start,
            BilledVolume.period_start < end,
        )
    ).all()
    periods = [BillingPeriod(r.period_start, r.period_end, r.volume_m3) for r in records]
    sums: dict[tuple[datetime, datetime], float] = {}
    for bill in session.scalars(
        select(CustomerBill).where(
            CustomerBill.dma_id == dma_id,
            CustomerBill.period_end > start,
            CustomerBill.period_start < end,
        )
    ):
        key = (bill.period_start, bill.period_end)
        sums[key] = sums.get(key, 0.0) + bill.volume_m3
    periods += [BillingPeriod(lo, hi, volume) for (lo, hi), volume in sorted(sums.items())]
    return periods
