"""The detection evaluation: its grid, its leak sizing, its scoring rules and the MNF rule,
and a quick run whose scores must be sane (a huge leak is found, a quiet network is
quiet, faults are reported as faults, the baseline is scored side by side)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from leaksense.core import cli as core_cli
from leaksense.edge.detection.artifact import DetectionParams
from leaksense.edge.detection.clock import LocalClock
from leaksense.models.evaluation import command
from leaksense.models.evaluation.baseline import mnf_events
from leaksense.models.evaluation.build import build
from leaksense.models.evaluation.events import AlertEvent
from leaksense.models.evaluation.replay import Topology, Verdicts, engine_settings, run_engine
from leaksense.models.evaluation.runner import MNF, Detector, run_cases
from leaksense.models.evaluation.scenarios import EVENTS, NETWORKS, SEASONS, cases, grid
from leaksense.models.evaluation.score import score_case
from leaksense.models.evaluation.totals import Totals
from leaksense.simulator.generate import make_scenario_grid, simulate
from leaksense.simulator.network import dma_flows

DAY = 86_400.0


@pytest.fixture(scope="module")
def quick() -> dict[str, Totals]:
    """The quick set, scored once for the whole module (a few seconds)."""
    scores = run_cases(cases(quick=True), [Detector(command.ENGINE), MNF])
    return {name: Totals(name, s) for name, s in scores.items()}


def test_every_event_meets_every_network_and_season_in_both_sets() -> None:
    everything = grid()
    assert len({c.name for c in everything}) == len(everything)
    for which in ("tuning", "heldout"):
        chosen = [c for c in everything if c.set == which]
        assert {(c.event.kind, c.event.size) for c in chosen} == {(e.kind, e.size) for e in EVENTS}
        assert {c.network for c in chosen} == set(NETWORKS)
        assert {c.season.name for c in chosen} == {s.name for s in SEASONS}
    assert not {c.seed for c in everything if c.set == "tuning"} & {
        c.seed for c in everything if c.set == "heldout"
    }


def test_a_5_percent_leak_is_5_percent_of_the_night_flow() -> None:
    case = next(c for c in grid() if c.name == "background-5-v1")
    labelled = build(case)
    scenario = labelled.scenario
    grid_ = make_scenario_grid(scenario)
    flows = dma_flows(scenario, grid_, case.seed)
    assert len(labelled.leaks) == len(NETWORKS[case.network])  # one in every DMA
    times = grid_.times_s()
    for leak in labelled.leaks:
        night = (grid_.local_hour >= 1) & (grid_.local_hour < 5) & (times >= leak.start_s)
        leak_night_m3h = float(flows[leak.dma_id].leaks_m3h[leak.leak_id][night].mean())
        assert leak_night_m3h / leak.night_flow_m3h == pytest.approx(0.05, rel=0.05)
        assert leak.start_s >= labelled.test_start_s + 2 * DAY
        assert leak.deadline_s == leak.start_s + 2 * DAY


def test_mnf_rule_alarms_once_for_consecutive_nights_above_the_ten_day_minimum() -> None:
    clock = LocalClock("UTC")
    start = datetime(2026, 1, 5, tzinfo=UTC).timestamp()
    t = start + np.arange(0, 30 * DAY, 900.0)
    flow = np.full(t.size, 2.0)
    flow[t >= start + 20 * DAY] = 2.3  # +15 % from day 20 on
    events = mnf_events("s", t, flow, clock)
    assert len(events) == 1
    assert events[0].detected_s == pytest.approx(start + 20 * DAY + 6 * 3600 - 900)
    assert events[0].flow_m3h == pytest.approx(0.3)
    flow[t >= start + 20 * DAY] = 2.15  # +7.5 %: under the rule's 10 %
    assert mnf_events("s", t, flow, clock) == []


def test_scoring_separates_found_leaks_false_alarms_and_faulty_sensors() -> None:
    case = cases(quick=True)[3]  # faults on the inlet and on a customer meter
    labelled = build(case)
    sim = simulate(labelled.scenario, case.seed)
    topology = Topology.of(labelled.scenario)
    fault = next(f for f in sim.truth.faults if f.sensor_id.endswith("-in"))
    during = fault.start.timestamp() + 600

    def leak_alert(series: str, at_s: float) -> AlertEvent:
        return AlertEvent(f"{series}:{at_s}", series, "burst", None, at_s - 600, at_s, None, 1.0)

    quiet_s = labelled.test_start_s + DAY
    events = [leak_alert("dma-m", during), leak_alert("m-c001", quiet_s)]
    events.append(AlertEvent("f", fault.sensor_id, "sensor_fault", "dropout", during, during, None))
    events.append(leak_alert("m-c003", labelled.test_start_s - DAY))  # during warm-up: ignored
    score = score_case(labelled, sim.truth.faults, topology, events)
    assert [m.series_id for m in score.on_faulty] == ["dma-m"]
    assert [m.series_id for m in score.false_alarms] == ["m-c001"]
    still_open_days = (labelled.scenario.end.timestamp() - quiet_s) / DAY  # never ended
    assert score.false_alarms[0].open_days == pytest.approx(still_open_days)
    assert {f.sensor_id: f.reported for f in score.faults}[fault.sensor_id]
    assert score.series_months == pytest.approx(6 * 10 / 30.4375)


def test_quick_evaluation_finds_the_big_leak_and_burst_and_keeps_quiet(
    quick: dict[str, Totals],
) -> None:
    ours = quick[command.ENGINE]
    assert ours.errors == []
    found = {leak.kind: leak for leak in ours.leaks}
    assert found["background"].in_time, "a 50 % background leak must be found within 48 h"
    assert found["burst"].in_time, "a 100 % burst must be found within 15 min"
    quiet = next(s for s in ours.scores if s.event == "none")
    assert quiet.false_alarms == [] and quiet.true_alerts == 0
    assert ours.on_faulty == []
    assert all(reported == injected for reported, injected in ours.faults().values())
    # A burst's alert dates it to the reading it began in: within one reading (5 min).
    burst_error_s = found["burst"].start_error_s
    assert burst_error_s is not None and abs(burst_error_s) <= 300


def test_quick_evaluation_scores_the_mnf_rule_side_by_side(quick: dict[str, Totals]) -> None:
    mnf = quick[MNF.name]
    assert len(mnf.leaks) == len(quick[command.ENGINE].leaks) == 2
    assert mnf.series_months == quick[command.ENGINE].series_months
    assert not next(leak for leak in mnf.leaks if leak.kind == "burst").in_time
    text = command.sections({"heldout": list(quick.values())})["heldout"]
    assert "| recall, bursts ≥ 20 % of mean flow, within 15 min (≥ 95%) |" in text
    assert command.ENGINE in text and MNF.name in text


def test_tables_go_between_markers_and_the_prose_stays(tmp_path: Path) -> None:
    doc = tmp_path / "detection.md"
    doc.write_text("# Detection\n\nprose\n", "utf-8")
    command.write_sections(doc, {"heldout": "table 1"})
    command.write_sections(doc, {"heldout": "table 2", "tuning": "table 3"})
    text = doc.read_text("utf-8")
    assert text.startswith("# Detection\n\nprose\n")
    assert "table 1" not in text and text.count("table 2") == 1 and "table 3" in text


@pytest.fixture
def app() -> typer.Typer:
    return core_cli.build_app()


def test_evaluate_command_prints_the_tables(app: typer.Typer, tmp_path: Path) -> None:
    out = tmp_path / "detection.md"
    args = ["models", "evaluate", "--quick", "--jobs", "1", "--no-parts", "--out", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "#### Recall by leak size" in result.output
    assert "<!-- evaluation:heldout:begin -->" in out.read_text("utf-8")


@pytest.mark.slow
def test_worker_processes_give_the_same_scores(quick: dict[str, Totals]) -> None:
    scores = run_cases(cases(quick=True), [Detector(command.ENGINE), MNF], jobs=2)
    for name, totals in quick.items():
        assert scores[name] == totals.scores


def test_scoring_counts_the_false_alarms_the_server_puts_in_one_event() -> None:
    """Two series that carry the same water alarm together: one event, one notification
    (server ``domain/same_water.py``); a meter that carries other water stays apart."""
    case = cases(quick=True)[3]
    labelled = build(case)
    topology = Topology.of(labelled.scenario)
    at_s = labelled.test_start_s + DAY
    customers = sorted(topology.water.dmas["dma-m"].customers)
    first, other = customers[0], customers[1]

    def burst(series: str, delay_s: float) -> AlertEvent:
        t = at_s + delay_s
        return AlertEvent(f"{series}:{t}", series, "burst", None, t - 600, t, None, 1.0)

    events = [burst(first, 0), burst("dma-m", 300), burst(other, 600), burst("m-in", 3 * 3600)]
    score = score_case(labelled, (), topology, events)
    assert len(score.false_alarms) == 4
    assert score.grouped_false == 1  # the DMA's, under the customer meter's
    assert score.true_under_false == 0
    totals = Totals("engine", [score])
    assert totals.notified_false_alarm_rate == pytest.approx(3 / score.series_months)


def test_technicians_verdicts_end_the_false_alerts_and_leave_the_true_ones() -> None:
    case = cases(quick=True)[1]  # a background leak of 50 % of the night flow
    labelled = build(case)
    sim = simulate(labelled.scenario, case.seed)
    topology = Topology.of(labelled.scenario)
    settings = engine_settings(labelled.scenario, topology, DetectionParams(), case.warmup_days)
    plain = run_engine(sim, settings)
    leak_kinds = ("burst", "background_leak")
    still_open = {e.alert_id for e in plain if e.kind in leak_kinds and e.ended_s is None}
    assert still_open, "the leak's alert is open at the end of the case"
    trusted = run_engine(sim, settings, verdicts=Verdicts(3600.0, lambda e: True))
    assert [(e.alert_id, e.ended_s) for e in trusted] == [(e.alert_id, e.ended_s) for e in plain]
    dismissed = {
        e.alert_id: e for e in run_engine(sim, settings, verdicts=Verdicts(3600.0, lambda e: False))
    }
    ended = [dismissed[a] for a in still_open if a in dismissed]
    assert ended and all(e.ended_s is not None for e in ended)
