"""Billing import as billing software exports it: layouts, French CSV, errors, all or nothing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from leaksense.core.errors import InvalidInput, NotFoundError
from leaksense.server.db import BilledVolume, CustomerBill, make_engine, make_sessionmaker
from leaksense.server.services import billing, entities

NETWORK = entities.NetworkDescription.model_validate(
    {
        "sites": [{"site_id": "s", "name": "S"}],
        "dmas": [{"dma_id": "nord", "site_id": "s", "name": "Nord", "inlets": ["in-n"]}],
    }
)
HEADER = "dma_id,period_start,period_end,volume_m3\n"
FRENCH = (
    "\ufeffN° abonné;Secteur;Début période;Fin période;Volume facturé (m³)\n"
    "A-001;nord;01/01/2026;01/04/2026;12,5\n"
    "A-002;nord;15/12/2025;15/03/2026;1 234,75\n"
)


@pytest.fixture
def session(tmp_path: Path) -> Iterator[Session]:
    sessions = make_sessionmaker(make_engine(f"sqlite:///{tmp_path / 'e.db'}"))
    with sessions() as s:
        entities.load_network(s, NETWORK)
        yield s


def test_french_export_is_read_through_the_column_table() -> None:
    rows = billing.parse_billing_csv(FRENCH)
    assert [(r.customer_id, r.volume_m3) for r in rows] == [("A-001", 12.5), ("A-002", 1234.75)]
    assert rows[0].period_start == datetime(2026, 1, 1, tzinfo=UTC)
    assert rows[1].period_end == datetime(2026, 3, 15, tzinfo=UTC)
    assert billing.normalise_header("Volume facturé (m³)") == "volume_facture_m3"


def test_per_customer_rows_are_stored_and_summed_per_period(session: Session) -> None:
    assert billing.import_billing(session, billing.parse_billing_csv(FRENCH)) == 2
    assert billing.import_billing(session, billing.parse_billing_csv(FRENCH)) == 2  # replaces
    assert session.query(CustomerBill).count() == 2
    periods = billing.billing_periods(
        session, "nord", datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC)
    )
    assert sorted(p.volume_m3 for p in periods) == [12.5, 1234.75]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (FRENCH + "A-003;nord;01/01/2026;01/04/2026;beaucoup\n", "line 4: volume_m3"),
        (FRENCH + "A-003;nord;01/04/2026;01/01/2026;3\n", "line 4: .*period_end must be after"),
        (FRENCH + "A-001;nord;01/01/2026;01/04/2026;3\n", "line 4: same .* as line 2"),
        (FRENCH + ";nord;01/01/2026;01/04/2026;3\n", "line 4: .*customer_id"),
        (FRENCH.replace("Secteur", "Commune"), "line 1: missing column.*dma_id"),
        (HEADER + "nord,2026-01-01,yesterday,3\n", "line 2: period_end"),
    ],
)  # fmt: skip
def test_bad_rows_give_their_line_and_nothing_is_imported(
    session: Session, text: str, message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        billing.import_billing(session, billing.parse_billing_csv(text))
    assert session.query(CustomerBill).count() == 0


def test_an_unknown_dma_aborts_the_whole_import(session: Session) -> None:
    text = FRENCH + "A-009;sud;01/01/2026;01/04/2026;3\n"
    with pytest.raises(NotFoundError, match="sud"):
        billing.import_billing(session, billing.parse_billing_csv(text))
    assert session.query(CustomerBill).count() == 0


def test_the_dma_level_layout_still_works(session: Session) -> None:
    rows = billing.parse_billing_csv(
        "dma_id,period_start,period_end,volume_m3\nnord,2026-01-01T00:00:00Z,2026-02-01,600.5\n"
    )
    assert rows[0].customer_id is None
    billing.import_billing(session, rows)
    assert [b.volume_m3 for b in session.query(BilledVolume)] == [600.5]
