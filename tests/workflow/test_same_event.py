"""One leak, one event: alerts of two series that carry the same water are grouped.

The water map is pure logic (unit tests); the grouping, the notifications it holds
back and the resolution it shares run through real ingest, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from leaksense.core.messages import Alert
from leaksense.server.columns import ReadingPoint
from leaksense.server.domain.same_water import DmaBoundary, Subject, WaterMap
from leaksense.server.services.entities import NetworkDescription, load_network
from leaksense.server.services.ingest import Ingestor
from leaksense.server.services.repairs import repairs_in
from leaksense.server.stores.sqlite import SqliteReadingStore
from leaksense.server.wire import decode_ingest
from leaksense.server.workflow.audit import history
from leaksense.server.workflow.service import get_alert, list_alerts, resolve
from pg import SmtpServer
from workflow.support import GATEWAY, T0, Gateway1, Mailer, wire_alert

# A cascade: m-1 feeds d-1, whose outlet m-2 feeds d-2; m-3 leaves d-2 for a farm.
CASCADE = (
    DmaBoundary("d-1", inlets=("m-1",), outlets=("m-2",), customers=("c-1",)),
    DmaBoundary("d-2", inlets=("m-2",), outlets=("m-3",), customers=("c-2",)),
)


def meter(sensor_id: str) -> Subject:
    return Subject(sensor_id=sensor_id)


def dma(dma_id: str) -> Subject:
    return Subject(dma_id=dma_id)


def test_an_inlet_carries_its_dma_and_all_the_water_it_passes_on() -> None:
    water = WaterMap.of(CASCADE)
    assert water.same_water(meter("m-1"), dma("d-1"))
    assert water.same_water(meter("m-1"), dma("d-2"))  # passed on through m-2
    assert water.same_water(meter("m-1"), meter("m-3"))  # and on to the farm
    assert water.same_water(meter("m-2"), dma("d-2"))
    assert water.same_water(meter("c-2"), dma("d-2"))
    assert water.same_water(meter("c-2"), meter("m-1"))


def test_series_that_carry_different_water_are_apart() -> None:
    water = WaterMap.of(CASCADE)
    assert not water.same_water(dma("d-1"), dma("d-2"))  # d-2's water is subtracted
    assert not water.same_water(meter("m-2"), dma("d-1"))
    assert not water.same_water(meter("c-1"), meter("c-2"))
    assert not water.same_water(meter("c-1"), dma("d-2"))
    assert not water.same_water(meter("x-9"), meter("m-1"))  # a meter of no DMA


def test_a_loop_in_a_declared_network_ends() -> None:
    loop = WaterMap.of(
        (
            DmaBoundary("a", inlets=("m-a",), outlets=("m-b",)),
            DmaBoundary("b", inlets=("m-b",), outlets=("m-a",)),
        )
    )
    assert loop.parts(meter("m-a")) == {"dma:a", "dma:b"}


def declare_cascade(sessions: sessionmaker[Session]) -> None:
    network = NetworkDescription.model_validate(
        {
            "sites": [{"site_id": "site", "name": "Site"}],
            "dmas": [
                {"dma_id": "d-1", "site_id": "site", "name": "Haut", "inlets": ["m-1"],
                 "outlets": ["m-2"]},
                {"dma_id": "d-2", "site_id": "site", "name": "Bas", "inlets": ["m-2"]},
            ],
            "sensors": [
                {"sensor_id": "c-2", "site_id": "site", "dma_id": "d-2", "role": "customer"}
            ],
        }
    )  # fmt: skip
    with sessions() as session:
        load_network(session, network)
        session.commit()


def burst(
    alert_id: str,
    minutes_later: float = 0.0,
    sensor_id: str | None = "m-1",
    dma_id: str | None = None,
    flow_m3h: float = 4.2,
) -> Alert:
    """A burst alert on a meter, or on a DMA's net inflow, started at T0 − 10 min + …
    and raised 5 minutes after its start."""
    start = T0 - timedelta(minutes=10) + timedelta(minutes=minutes_later)
    subject = {"sensor_id": None if dma_id else sensor_id, "dma_id": dma_id}
    raised = start + timedelta(minutes=5)
    return wire_alert(
        alert_id, started_at=start, detected_at=raised, updated_at=raised, flow_m3h=flow_m3h,
        **subject,
    )  # fmt: skip


def test_a_leak_seen_by_an_inlet_and_its_dma_is_one_event_notified_once(
    sessions: sessionmaker[Session], gateway: Gateway1, smtp: SmtpServer, mailer: Mailer
) -> None:
    declare_cascade(sessions)
    worker = mailer.worker
    gateway.send(burst("gw-1:d-2:burst", dma_id="d-2"))
    assert worker.run_once() == (1, 1)
    # The upstream inlet saw the same burst 5 minutes later, and so did d-1's net
    # inflow (a different part of the water: a separate event).
    gateway.send(burst("gw-1:m-1:burst", 5), burst("gw-1:d-1:burst", 5, dma_id="d-1"))
    assert worker.run_once() == (1, 1)  # d-1's alert only
    assert "d-1" in smtp.messages()[1].get_content()
    with sessions() as session:
        first = get_alert(session, "gw-1:d-2:burst")
        linked = get_alert(session, "gw-1:m-1:burst")
        apart = get_alert(session, "gw-1:d-1:burst")
        listed = {a.alert_id: a.same_event_as for a in list_alerts(session)}
    assert first.also_seen == ("gw-1:m-1:burst",)
    assert linked.same_event_as == "gw-1:d-2:burst"
    assert apart.same_event_as is None
    assert listed["gw-1:m-1:burst"] == "gw-1:d-2:burst"
    assert linked.to_json()["same_event_as"] == "gw-1:d-2:burst"


def test_night_alerts_raised_by_the_same_night_are_one_event(
    sessions: sessionmaker[Session], gateway: Gateway1
) -> None:
    """Two series' CUSUMs may date their evidence from different nights; the verdict
    that raises both is the same night's."""
    declare_cascade(sessions)
    night = {"kind": "background_leak", "detected_at": T0, "updated_at": T0}
    gateway.send(
        wire_alert("gw-1:d-2:night", sensor_id=None, dma_id="d-2",
                   started_at=T0 - timedelta(days=2), **night),
        wire_alert("gw-1:m-2:night", sensor_id="m-2", started_at=T0 - timedelta(days=1), **night),
        wire_alert("gw-1:m-2:later", sensor_id="m-2", kind="background_leak",
                   started_at=T0 - timedelta(days=1), detected_at=T0 + timedelta(days=1)),
    )  # fmt: skip
    with sessions() as session:
        views = {a.alert_id: a.same_event_as for a in list_alerts(session)}
    assert views == {
        "gw-1:d-2:night": None,
        "gw-1:m-2:night": "gw-1:d-2:night",
        "gw-1:m-2:later": None,  # the same series: a new event of its own
    }


def test_a_far_larger_burst_on_the_same_water_is_a_new_event_and_notified(
    sessions: sessionmaker[Session], gateway: Gateway1, smtp: SmtpServer, mailer: Mailer
) -> None:
    """A big burst must not be held under a small alert that came first: two series
    that see one leak see about the same flow."""
    declare_cascade(sessions)
    worker = mailer.worker
    gateway.send(burst("gw-1:m-1:small", flow_m3h=1.0))
    gateway.send(
        burst("gw-1:d-2:big", 5, dma_id="d-2", flow_m3h=3.5),
        burst("gw-1:m-2:same", 6, sensor_id="m-2", flow_m3h=1.2),
    )
    assert worker.run_once() == (2, 2)  # the small one, then the big one: two events
    with sessions() as session:
        views = {a.alert_id: a.same_event_as for a in list_alerts(session)}
    assert views == {
        "gw-1:m-1:small": None,
        "gw-1:d-2:big": None,
        "gw-1:m-2:same": "gw-1:m-1:small",
    }


def test_an_alert_starting_later_or_of_another_kind_is_a_new_event(
    sessions: sessionmaker[Session], gateway: Gateway1
) -> None:
    declare_cascade(sessions)
    gateway.send(burst("gw-1:d-2:burst", dma_id="d-2"))
    gateway.send(
        burst("gw-1:m-1:late", 31),
        wire_alert("gw-1:m-1:night", sensor_id="m-1", kind="background_leak"),
        wire_alert("gw-1:m-1:fault", sensor_id="m-1", kind="sensor_fault", fault="spike"),
    )
    with sessions() as session:
        views = {a.alert_id: a for a in list_alerts(session)}
    assert all(v.same_event_as is None for v in views.values())


def test_resolving_an_event_resolves_its_alerts_and_counts_one_repair(
    sessions: sessionmaker[Session], gateway: Gateway1
) -> None:
    declare_cascade(sessions)
    gateway.send(burst("gw-1:m-2:burst", sensor_id="m-2"), burst("gw-1:d-2:burst", 2, dma_id="d-2"))
    with sessions() as session:
        resolve(session, "gw-1:m-2:burst", resolution="repaired", actor="bob", now=T0,
                repaired_flow_m3h=3.5)  # fmt: skip
    with sessions() as session:
        linked = get_alert(session, "gw-1:d-2:burst")
        repairs = repairs_in(session, "d-2", T0 - timedelta(days=1), T0 + timedelta(days=1))
        trail = history(session, "gw-1:d-2:burst")
    assert (linked.state, linked.resolution, linked.resolved_by) == ("resolved", "repaired", "bob")
    assert [(r.repair_id, r.estimated_flow_m3h) for r in repairs] == [("gw-1:m-2:burst", 3.5)]
    assert sorted((e.action, e.details["same_event_as"]) for e in trail) == [
        ("link", "gw-1:m-2:burst"),
        ("resolve", "gw-1:m-2:burst"),
    ]


def test_a_false_alarm_on_the_first_alert_lets_the_others_be_notified(
    sessions: sessionmaker[Session], gateway: Gateway1, smtp: SmtpServer, mailer: Mailer
) -> None:
    """A verdict on one series is no verdict on another's alert: it leaves the event."""
    declare_cascade(sessions)
    worker = mailer.worker
    gateway.send(burst("gw-1:m-1:burst"), burst("gw-1:d-2:burst", 3, dma_id="d-2"))
    assert worker.run_once() == (1, 1)  # the event's first alert only
    with sessions() as session:
        resolve(session, "gw-1:m-1:burst", resolution="false_alarm", actor="bob", now=T0)
    with sessions() as session:
        alone = get_alert(session, "gw-1:d-2:burst")
        trail = history(session, "gw-1:d-2:burst")
    assert (alone.state, alone.same_event_as) == ("open", None)
    unlinked = [e.details for e in trail if e.action == "unlink"]
    assert unlinked == [{"was_same_event_as": "gw-1:m-1:burst", "because": "false_alarm"}]
    assert worker.run_once() == (1, 1)
    assert "d-2" in smtp.messages()[-1].get_content()


class HeldStore(SqliteReadingStore):
    """A reading store whose write waits to be released: the batch that writes to it
    keeps its transaction open meanwhile, as a slow InfluxDB would."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.release = threading.Event()
        self.writing = threading.Event()

    def write_points(self, points: Sequence[ReadingPoint]) -> int:
        self.writing.set()
        assert self.release.wait(10)
        return super().write_points(points)


def test_two_instances_ingesting_one_leak_at_once_make_one_event(
    sessions: sessionmaker[Session], gateway: Gateway1, tmp_path: Path
) -> None:
    declare_cascade(sessions)
    held = HeldStore(tmp_path / "held.db")
    body = {
        "gateway_id": GATEWAY,
        "batch_seq": 100,
        "sent_at": T0.isoformat(),
        "alerts": [burst("gw-1:d-2:burst", dma_id="d-2").model_dump(mode="json")],
        "readings": [{"sensor_id": "m-1", "time": T0.isoformat(), "flow_m3h": 9.0}],
    }

    def first_instance() -> None:  # its batch stays uncommitted until the store writes
        with sessions() as session:
            Ingestor(held).ingest(session, GATEWAY, decode_ingest(json.dumps(body).encode()))

    first = threading.Thread(target=first_instance)
    first.start()
    assert held.writing.wait(10)
    # The same leak seen by the inlet, ingested by the other instance meanwhile.
    second = threading.Thread(target=gateway.send, args=(burst("gw-1:m-1:burst", 5),))
    second.start()
    second.join(0.5)
    assert second.is_alive()  # it waits for the first batch to commit
    held.release.set()
    first.join(10)
    second.join(10)
    held.close()
    assert not first.is_alive() and not second.is_alive()
    with sessions() as session:
        primary = get_alert(session, "gw-1:d-2:burst")
        joined = get_alert(session, "gw-1:m-1:burst")
    assert joined.same_event_as == "gw-1:d-2:burst"
    assert primary.same_event_as is None and primary.also_seen == ("gw-1:m-1:burst",)
