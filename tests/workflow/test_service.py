"""The alert workflow service, on SQLite and on PostgreSQL (``db_url`` is parametrized)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.orm import Session, sessionmaker

from leaksense.core.errors import Conflict, InvalidInput, NotFoundError
from leaksense.server.db import Dma, DmaMeter, Sensor, Site
from leaksense.server.domain.sensitivity import multiplier
from leaksense.server.services.repairs import repairs_in
from leaksense.server.workflow import feedback
from leaksense.server.workflow.audit import history
from leaksense.server.workflow.service import (
    acknowledge,
    add_note,
    assign,
    get_alert,
    list_alerts,
    resolve,
)
from workflow.support import T0, Gateway1, wire_alert

ALERT = "gw-1:burst:1"


def test_alert_goes_open_acknowledged_resolved_with_audit(
    sessions: sessionmaker[Session], gateway: Gateway1
) -> None:
    gateway.send(wire_alert(ALERT))
    with sessions() as session:
        assert get_alert(session, ALERT).state == "open"
        acked = acknowledge(session, ALERT, actor="alice", now=T0)
        assert (acked.state, acked.acknowledged_by, acked.assignee) == (
            "acknowledged",
            "alice",
            "alice",
        )
        assert acked.acknowledged_at == T0
        assign(session, ALERT, assignee="bob", actor="alice", now=T0 + timedelta(minutes=1))
        add_note(session, ALERT, actor="bob", now=T0 + timedelta(minutes=30), text="Fuite trouvée")
        done = resolve(
            session, ALERT, resolution="repaired", actor="bob", now=T0 + timedelta(hours=3),
            notes="Collier posé", repaired_flow_m3h=3.5,
        )  # fmt: skip
    assert (done.state, done.resolution, done.resolved_by) == ("resolved", "repaired", "bob")
    assert done.repaired_flow_m3h == 3.5 and done.assignee == "bob"
    assert [n.text for n in done.notes] == ["Fuite trouvée", "Collier posé"]
    with sessions() as session:
        entries = history(session, ALERT)
    assert [(e.actor, e.action) for e in entries] == [
        ("alice", "acknowledge"), ("alice", "assign"), ("bob", "note"), ("bob", "resolve"),
    ]  # fmt: skip
    assert entries[0].details["before"]["state"] == "open"
    assert entries[0].details["after"]["state"] == "acknowledged"
    assert entries[1].details["after"]["assignee"] == "bob"
    assert entries[3].details["after"] == {
        "state": "resolved", "assignee": "bob", "resolution": "repaired", "repaired_flow_m3h": 3.5,
    }  # fmt: skip


def test_refused_changes_raise_clear_errors_and_change_nothing(
    sessions: sessionmaker[Session], gateway: Gateway1
) -> None:
    gateway.send(wire_alert(ALERT))
    with sessions() as session:
        acknowledge(session, ALERT, actor="alice", now=T0)
        with pytest.raises(Conflict, match="acknowledged by alice"):
            acknowledge(session, ALERT, actor="bob", now=T0)
        with pytest.raises(InvalidInput, match="unknown resolution"):
            resolve(session, ALERT, resolution="fixed", actor="bob", now=T0)
        with pytest.raises(InvalidInput, match="only for resolution 'repaired'"):
            resolve(
                session, ALERT, resolution="false_alarm", actor="b", now=T0, repaired_flow_m3h=1
            )
        with pytest.raises(InvalidInput, match=r"0\.\.10000"):
            resolve(session, ALERT, resolution="repaired", actor="b", now=T0, repaired_flow_m3h=-1)
        with pytest.raises(NotFoundError):
            acknowledge(session, "nope", actor="bob", now=T0)
        with pytest.raises(InvalidInput):
            add_note(session, ALERT, actor="bob", now=T0, text="   ")
        resolve(session, ALERT, resolution="planned_work", actor="bob", now=T0)
        resolved = r"is resolved \(planned_work by bob"
        with pytest.raises(Conflict, match=resolved):
            resolve(session, ALERT, resolution="repaired", actor="c", now=T0)
        with pytest.raises(Conflict, match=resolved):
            assign(session, ALERT, assignee="c", actor="c", now=T0)
        with pytest.raises(Conflict, match=resolved):
            acknowledge(session, ALERT, actor="c", now=T0)
        assert [e.action for e in history(session, ALERT)] == ["acknowledge", "resolve"]
        assert get_alert(session, ALERT).resolution == "planned_work"


def test_list_filters_by_state_dma_and_kind(
    sessions: sessionmaker[Session], gateway: Gateway1
) -> None:
    with sessions() as session:
        session.add(Site(site_id="site", name="Site"))
        session.flush()
        session.add_all([Dma(dma_id="dma-n", site_id="site", name="N"),
                         Dma(dma_id="dma-s", site_id="site", name="S")])  # fmt: skip
        session.flush()
        session.add(Sensor(sensor_id="inlet-n", role="inlet"))
        session.add(Sensor(sensor_id="cust-n", dma_id="dma-n", role="customer"))
        session.flush()
        session.add(DmaMeter(dma_id="dma-n", sensor_id="inlet-n", role="inlet"))
        session.commit()
    gateway.send(
        wire_alert("a1"),
        wire_alert("a2", sensor_id=None, dma_id="dma-n", kind="background_leak"),
        wire_alert("a3", kind="sensor_fault", fault="flatline", detected_at=T0),
        wire_alert("a4", sensor_id="inlet-n", detected_at=T0 - timedelta(hours=1)),
        wire_alert("a5", sensor_id="cust-n", detected_at=T0 - timedelta(hours=2)),
        wire_alert("a6", sensor_id=None, dma_id="dma-s", detected_at=T0 - timedelta(hours=3)),
    )
    with sessions() as session:
        acknowledge(session, "a1", actor="alice", now=T0)
        everything = [a.alert_id for a in list_alerts(session)]
        assert everything == ["a3", "a1", "a2", "a4", "a5", "a6"]
        assert [a.alert_id for a in list_alerts(session, state="open")] == [
            "a3",
            "a2",
            "a4",
            "a5",
            "a6",
        ]
        assert [a.alert_id for a in list_alerts(session, dma_id="dma-n")] == ["a2", "a4", "a5"]
        assert [a.alert_id for a in list_alerts(session, kind="sensor_fault")] == ["a3"]
        assert (
            list_alerts(session, state="acknowledged", kind="burst")[0].acknowledged_by == "alice"
        )
        assert len(list_alerts(session, limit=1)) == 1
        with pytest.raises(InvalidInput, match="unknown alert state"):
            list_alerts(session, state="closed")


def test_gateway_updates_keep_the_workflow_state(
    sessions: sessionmaker[Session], gateway: Gateway1
) -> None:
    gateway.send(wire_alert(ALERT))
    with sessions() as session:
        acknowledge(session, ALERT, actor="alice", now=T0)
    gateway.send(wire_alert(ALERT, flow_m3h=6.0, updated_at=T0 + timedelta(minutes=5)))
    with sessions() as session:
        view = get_alert(session, ALERT)
        assert (view.state, view.acknowledged_by, view.flow_m3h) == ("acknowledged", "alice", 6.0)
        assert len(list_alerts(session)) == 1  # one event, one alert
        resolve(session, ALERT, resolution="repaired", actor="bob", now=T0 + timedelta(hours=1))
    # the detector's lag after a repair: updates within the hour of grace change nothing
    gateway.send(wire_alert(ALERT, updated_at=T0 + timedelta(hours=1, minutes=30)))
    gateway.send(
        wire_alert(ALERT, ended_at=T0 + timedelta(hours=3), updated_at=T0 + timedelta(hours=3))
    )
    with sessions() as session:
        assert get_alert(session, ALERT).state == "resolved"


def test_a_repaired_leak_still_reported_an_hour_later_is_reopened(
    sessions: sessionmaker[Session], gateway: Gateway1
) -> None:
    gateway.send(wire_alert(ALERT), wire_alert("fa"))
    with sessions() as session:
        resolve(session, ALERT, resolution="repaired", actor="bob", now=T0)
        resolve(session, "fa", resolution="false_alarm", actor="bob", now=T0)
    later = T0 + timedelta(hours=1, minutes=1)
    gateway.send(wire_alert(ALERT, updated_at=later), wire_alert("fa", updated_at=later))
    with sessions() as session:
        reopened = get_alert(session, ALERT)
        assert (reopened.state, reopened.resolution, reopened.reopened_count) == ("open", None, 1)
        assert get_alert(session, "fa").state == "resolved"  # people said it was no leak
        last = history(session, ALERT)[-1]
        assert (last.actor, last.action) == ("gateway:gw-1", "reopen")
        assert last.details["before"]["resolution"] == "repaired"
        acknowledge(session, ALERT, actor="carol", now=later)  # the workflow starts again


def test_dismissed_alerts_are_listed_to_their_gateway_until_it_ends_them(
    sessions: sessionmaker[Session], gateway: Gateway1
) -> None:
    night = {"kind": "background_leak", "flow_m3h": 0.8}
    gateway.send(
        wire_alert("fa", **night),
        wire_alert("fault", sensor_id="s-2"),
        wire_alert("fixed"),
        wire_alert("open"),
        wire_alert("flow", kind="continuous_flow", sensor_id="s-3"),
    )
    with sessions() as session:
        resolve(session, "fa", resolution="false_alarm", actor="b", now=T0)
        resolve(session, "fault", resolution="sensor_fault", actor="b", now=T0)
        resolve(session, "fixed", resolution="repaired", actor="b", now=T0)
        resolve(session, "flow", resolution="false_alarm", actor="b", now=T0)
        listed = feedback.list_dismissed(session, "gw-1")
        assert [(d.alert_id, d.series_id, d.flow_m3h, d.resolution) for d in listed] == [
            ("fa", "s-1", 0.8, "false_alarm"),
            ("fault", "s-2", 4.2, "sensor_fault"),
        ]  # not repaired, not still open, not a kind the gateway can take back
        assert feedback.list_dismissed(session, "gw-other") == []
        assert len(feedback.list_dismissed(session, None)) == 2  # a reader sees all
    gateway.send(wire_alert("fa", **night, ended_at=T0 + timedelta(minutes=5)))
    with sessions() as session:
        assert [d.alert_id for d in feedback.list_dismissed(session, "gw-1")] == ["fault"]
        assert get_alert(session, "fa").state == "resolved"  # ending it changes no verdict


def test_false_alarms_raise_the_series_thresholds_within_bounds(
    sessions: sessionmaker[Session], gateway: Gateway1
) -> None:
    gateway.send(*[wire_alert(f"s1-{i}") for i in range(14)], wire_alert("old"))
    gateway.send(wire_alert("s2", sensor_id="s-2"))
    with sessions() as session:
        resolve(session, "old", resolution="false_alarm", actor="b", now=T0 - timedelta(days=91))
        for i in range(3):
            resolve(session, f"s1-{i}", resolution="false_alarm", actor="b", now=T0)
        resolve(session, "s1-3", resolution="repaired", actor="b", now=T0)
        resolve(session, "s2", resolution="sensor_fault", actor="b", now=T0)
        by_series = {s.series_id: s for s in feedback.list_sensitivity(session, T0)}
        assert by_series["s-1"].false_alarms == 3  # the 91-day-old one is out of the window
        assert by_series["s-1"].threshold_multiplier == pytest.approx(1.3)
        assert by_series["s-2"].threshold_multiplier == 1.0
        for i in range(4, 14):
            resolve(session, f"s1-{i}", resolution="false_alarm", actor="b", now=T0)
        assert feedback.list_sensitivity(session, T0)[0].threshold_multiplier == 2.0  # capped
        # 91 days later every false alarm has left the window: back to 1.0 on read
        later = feedback.list_sensitivity(session, T0 + timedelta(days=91))
        assert [(s.series_id, s.threshold_multiplier) for s in later] == [
            ("s-1", 1.0),
            ("s-2", 1.0),
        ]
    assert multiplier(0) == 1.0 and multiplier(-1) == 1.0 and multiplier(1000) == 2.0


def test_only_alerts_resolved_as_repaired_feed_the_repairs_report(
    sessions: sessionmaker[Session], gateway: Gateway1
) -> None:
    with sessions() as session:
        session.add(Site(site_id="site", name="Site"))
        session.flush()
        session.add(Dma(dma_id="d", site_id="site", name="D"))
        session.commit()
    gateway.send(
        wire_alert("fixed", sensor_id=None, dma_id="d"),
        wire_alert("ended", sensor_id=None, dma_id="d", ended_at=T0 + timedelta(hours=2)),
        wire_alert("false", sensor_id=None, dma_id="d"),
        wire_alert("open", sensor_id=None, dma_id="d"),
    )
    with sessions() as session:
        resolve(session, "fixed", resolution="repaired", actor="b", now=T0 + timedelta(hours=5),
                repaired_flow_m3h=2.5)  # fmt: skip
        resolve(session, "ended", resolution="repaired", actor="b", now=T0 + timedelta(days=2))
        resolve(session, "false", resolution="false_alarm", actor="b", now=T0)
        repairs = repairs_in(session, "d", T0, T0 + timedelta(days=1))
    assert [(r.repair_id, r.repaired_at, r.estimated_flow_m3h, r.source) for r in repairs] == [
        ("ended", T0 + timedelta(hours=2), 4.2, "alert"),  # stopped when the gateway saw it end
        ("fixed", T0 + timedelta(hours=5), 2.5, "alert"),  # measured flow wins over the estimate
    ]
