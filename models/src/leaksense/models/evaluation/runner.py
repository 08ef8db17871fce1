"""Run cases through detectors, in parallel over cases.

A worker builds and simulates a case once and replays it through every detector
asked for (the engine with one or several parameter sets, the MNF rule), so a
parameter sweep costs one simulation per case. Cases go to worker processes of this
machine (``--jobs``); only local dataclasses travel between them.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Literal

from leaksense.core.errors import InvalidInput
from leaksense.edge.detection.artifact import DetectionParams, ModelArtifact
from leaksense.edge.detection.clock import LocalClock
from leaksense.models.evaluation.build import build
from leaksense.models.evaluation.replay import (
    FloatArray,
    Topology,
    Verdicts,
    engine_settings,
    pretrain,
    run_engine,
    run_mnf,
    series_columns,
)
from leaksense.models.evaluation.scenarios import Case
from leaksense.models.evaluation.score import CaseScore, is_true, score_case
from leaksense.models.evaluation.snr import burst_snr
from leaksense.simulator.generate import simulate

DetectorKind = Literal["engine", "mnf"]


@dataclass(frozen=True)
class Detector:
    """A column of the report: the engine with some parameters, or the MNF rule."""

    name: str
    kind: DetectorKind = "engine"
    params: DetectionParams = field(default_factory=DetectionParams)
    trainer: Literal["gateway", "sklearn"] = "gateway"
    """``gateway``: the engine warms up on its own data (numpy medians); ``sklearn``:
    each series is pre-trained on its warm-up days by the server's trainer."""
    verdict_after_h: float | None = None
    """Technicians dismiss each false burst or night-flow alert this long after it
    is raised (None: nobody judges, the alerts stay open)."""


MNF = Detector("MNF rule", "mnf")


def _sklearn_trainer(
    params: DetectionParams,
) -> Callable[[str, str, FloatArray, FloatArray, LocalClock], ModelArtifact]:
    from leaksense.models.train import train_artifact  # noqa: PLC0415 - scikit-learn is slow to import

    def train(
        series_id: str, kind: str, t: FloatArray, y: FloatArray, clock: LocalClock
    ) -> ModelArtifact:
        return train_artifact(series_id, t, y, clock, kind=kind, params=params)

    return train


def _pretrained(
    detector: Detector,
    columns: dict[str, tuple[FloatArray, FloatArray]],
    topology: Topology,
    clock: LocalClock,
    until_s: float,
) -> list[ModelArtifact]:
    trainer = _sklearn_trainer(detector.params)
    out = []
    for series_id, column in columns.items():
        try:
            out += pretrain({series_id: column}, topology, trainer, clock, until_s)
        except InvalidInput:
            continue  # this series warms up on its own, as a gateway would
    return out


def run_case(case: Case, detectors: Sequence[Detector]) -> dict[str, CaseScore]:
    """Simulate one case and score every detector on it."""
    labelled = build(case)
    sim = simulate(labelled.scenario, case.seed)
    topology = Topology.of(labelled.scenario)
    scenario = labelled.scenario
    clock = LocalClock(scenario.spec.timezone, scenario.holidays())
    columns = series_columns(sim, topology, scenario.interval_s)
    snr = burst_snr(labelled.leaks, columns, clock, labelled.test_start_s)
    out = {}
    for detector in detectors:
        try:
            if detector.kind == "mnf":
                events = run_mnf(columns, clock, topology)
            else:
                settings = engine_settings(scenario, topology, detector.params, case.warmup_days)
                artifacts = None
                if detector.trainer == "sklearn":
                    until_s = labelled.test_start_s
                    artifacts = _pretrained(detector, columns, topology, clock, until_s)
                verdicts = None
                if detector.verdict_after_h is not None:
                    after_s = 3600 * detector.verdict_after_h
                    verdicts = Verdicts(after_s, lambda e: is_true(e, labelled.leaks, topology))
                events = run_engine(sim, settings, artifacts, verdicts)
        except Exception as exc:  # a crash is a result to report, not to hide
            score = score_case(labelled, sim.truth.faults, topology, [], snr)
            score.error = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
            out[detector.name] = score
            continue
        out[detector.name] = score_case(labelled, sim.truth.faults, topology, events, snr)
    return out


def _run_one(job: tuple[Case, tuple[Detector, ...]]) -> dict[str, CaseScore]:
    return run_case(*job)


def run_cases(
    cases: Sequence[Case],
    detectors: Sequence[Detector],
    *,
    jobs: int = 1,
    progress: Callable[[Case], None] | None = None,
) -> dict[str, list[CaseScore]]:
    """Scores of every detector (by name) on every case, in the cases' order."""
    work = [(case, tuple(detectors)) for case in cases]
    out: dict[str, list[CaseScore]] = {d.name: [] for d in detectors}
    if jobs <= 1:
        results = map(_run_one, work)
        for case, result in zip(cases, results, strict=True):
            _collect(out, result, case, progress)
        return out
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
        for case, result in zip(cases, pool.map(_run_one, work), strict=True):
            _collect(out, result, case, progress)
    return out


def _collect(
    out: dict[str, list[CaseScore]],
    result: dict[str, CaseScore],
    case: Case,
    progress: Callable[[Case], None] | None,
) -> None:
    for name, score in result.items():
        out[name].append(score)
    if progress is not None:
        progress(case)
