"""A flow people judged normal: what a dismissed alert teaches its series.

When the utility resolves a burst or night-flow alert as ``false_alarm`` or
``sensor_fault`` while the gateway still sees it (a new customer, a farm's trough
filling at night), the server lists it as dismissed (``GET /api/v1/sensitivity``).
The series closes the event and takes the flow the alert had at the verdict as part
of its normal life from then on:

* the readings it remembered from before (its refit history, which holds nothing of
  the alarmed period) get that flow added, so every later refit learns the new
  level without a step in the middle of its window;
* a model trained before the verdict (the one in use, or one fetched from the
  server later) is used with that flow added to its profile and night levels
  (:func:`expecting`).

So the same excess does not alarm again, and a new leak on top of it is a new alert
instead of a rise of the dismissed one's flow. If the nights stop showing the flow
(:data:`UNSHOWN_NIGHTS` nights in a row less than half of it above their level, or
one night far below what the model with it expects: it was a passing use, a reservoir
filled once), the series takes it back; after :data:`CONFIRM_NIGHTS` nights
that show it, it is simply the series' normal.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from leaksense.edge.detection.artifact import ModelArtifact

UNSHOWN_NIGHTS = 2
CONFIRM_NIGHTS = 7
SHOWN_SHARE = 0.5
"""A night at least this share of the accepted flow above its level shows it."""
CLEARLY_BELOW_Z = -4.0
"""A night this many σ below what is expected (the flow included) is proof enough."""


@dataclass(frozen=True, slots=True)
class AcceptedFlow:
    """An accepted excess of one series, kept across restarts (eventfile.py)."""

    flow_m3h: float
    since_s: float
    """When it was accepted: history and models from before get it added."""
    unshown_nights: int = 0
    shown_nights: int = 0

    @property
    def gone(self) -> bool:
        """The nights no longer show it: take it back."""
        return self.unshown_nights >= UNSHOWN_NIGHTS

    @property
    def confirmed(self) -> bool:
        """The nights kept showing it: nothing more to watch."""
        return self.shown_nights >= CONFIRM_NIGHTS

    def plus(self, flow_m3h: float, now_s: float) -> AcceptedFlow:
        """A second dismissal before the first is confirmed (one flow from now on)."""
        return AcceptedFlow(self.flow_m3h + flow_m3h, now_s)

    def after_night(self, excess_m3h: float, z: float) -> AcceptedFlow:
        """After a night ``excess_m3h`` (``z`` σ) above what its model, the flow
        included, expects."""
        if excess_m3h + self.flow_m3h >= SHOWN_SHARE * self.flow_m3h:
            return replace(self, unshown_nights=0, shown_nights=self.shown_nights + 1)
        unshown = UNSHOWN_NIGHTS if z < CLEARLY_BELOW_Z else self.unshown_nights + 1
        return replace(self, unshown_nights=unshown)

    def applies_to(self, artifact: ModelArtifact) -> bool:
        """Was ``artifact`` trained before the flow was accepted?"""
        return artifact.trained_to.timestamp() < self.since_s


def expecting(artifact: ModelArtifact, flow_m3h: float) -> ModelArtifact:
    """``artifact`` with a steady ``flow_m3h`` more in everything it expects."""

    def more(values: list[float]) -> list[float]:
        return [v + flow_m3h for v in values]

    alt = artifact.night_alt_baseline_m3h
    morning = artifact.morning_m3h
    return artifact.model_copy(
        update={
            "profile_m3h": [more(row) for row in artifact.profile_m3h],
            "night_baseline_m3h": artifact.night_baseline_m3h + flow_m3h,
            "night_alt_baseline_m3h": None if alt is None else alt + flow_m3h,
            "morning_m3h": None if morning is None else more(morning),
            "mean_flow_m3h": artifact.mean_flow_m3h + flow_m3h,
        }
    )
