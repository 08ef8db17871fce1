"""A night is judged on the hours it has; a new event never reuses an old one's id."""

from __future__ import annotations

from datetime import datetime

import numpy as np

from flows import PARIS, series
from leaksense.core.messages import AlertKind
from leaksense.edge.detection.artifact import DetectionParams, ModelArtifact
from leaksense.edge.detection.clock import LocalClock
from leaksense.edge.detection.events import EventBook
from leaksense.edge.detection.fit import fit_artifact
from leaksense.edge.detection.night import NightVerdict, NightWatch

DAY = 86_400
PARAMS = DetectionParams(morning_end_hour=0)  # nights judged alone, at 05:00


def early_risers(days: int) -> tuple[np.ndarray, np.ndarray]:
    """The synthetic series with twice the flow between 04:00 and 05:00 local (the
    night window's last hour: early shifts, a farm's milking)."""
    epoch, flow = series(days, noise=0.01)
    hours = np.array([datetime.fromtimestamp(float(t), PARIS).hour for t in epoch])
    return epoch, np.where(hours == 4, 2.0 * flow, flow)


def verdicts(
    artifact: ModelArtifact, epoch: np.ndarray, flow: np.ndarray
) -> dict[str, NightVerdict]:
    """A fresh night watch's verdicts, by the local date of their night."""
    watch, clock, out = NightWatch(artifact, 48, PARAMS), LocalClock(), {}
    profile = artifact.profile_m3h
    for t, y in zip(epoch.tolist(), flow.tolist(), strict=True):
        day, day_type, slot, hour = clock.locate(t)
        verdict = watch.observe(t, day, day_type, hour, y, shape=profile[day_type][slot])
        if verdict is not None:
            out[str(day)] = verdict
    return out


def test_the_spring_dst_night_expects_what_its_three_hours_expect() -> None:
    epoch, flow = early_risers(30)
    train = epoch < epoch[0] + 21 * DAY  # 2-22 March; DST comes on 29 March
    artifact = fit_artifact("s1", epoch[train], flow[train], LocalClock(), params=PARAMS)
    test = ~train
    judged = verdicts(artifact, epoch[test], flow[test])
    dst, before = judged["2026-03-29"], judged["2026-03-28"]
    # The DST night lacks its 02:00 hour, one of its quietest: its mean is well
    # above the whole window's level…
    whole_night_z = (dst.mean_m3h - before.baseline_m3h) / artifact.night_sigma_m3h
    assert whole_night_z > 3.0
    # …and what its own hours expect says it is a normal night.
    assert dst.mean_m3h > before.mean_m3h
    assert abs(dst.z) < 2.0 and not dst.alarm
    assert all(abs(v.z) < 2.0 for v in judged.values())


def test_a_new_event_with_the_start_of_the_last_one_gets_its_own_id() -> None:
    book = EventBook("gw", "s1", is_dma=False)
    texts = ("en", "fr")

    def open_close(started_s: float, now_s: float) -> str:
        alert = book.open(
            "night",
            AlertKind.BACKGROUND_LEAK,
            started_s=started_s,
            now_s=now_s,
            flow_m3h=1.0,
            confidence=0.5,
            texts=texts,
        )
        closed = book.close("night", now_s + 3600)
        assert closed is not None and closed.alert_id == alert.alert_id
        return alert.alert_id

    first = open_close(1000.0, 2000.0)
    again = open_close(1000.0, 9000.0)
    third = open_close(1000.0, 19000.0)
    other = open_close(50_000.0, 60_000.0)
    assert first == "gw:s1:night:1000"
    assert len({first, again, third}) == 3
    assert again.startswith(first) and third.startswith(first)
    assert other == "gw:s1:night:50000"
