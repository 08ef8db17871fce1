"""Which series watch the same water, and which alerts are one event.

A leak inside a DMA shows on the DMA's net inflow (inlets − outlets) and on its
inlet meter, and on the inlet of every DMA upstream, which carries its water on; a
leak behind a customer meter shows on that meter, on its DMA and on the DMA's
inlets. Two gateways' series (or one gateway's two) can so raise two alerts for one
leak, at the same time. A technician must get one event, not two notifications
(docs/detection.md, "One leak, one event").

The water a series carries is a set of *parts*: each DMA's own part (its net
inflow, less its customer meters), each customer meter, each meter that leaves a
DMA for no declared DMA. Two series carry the same water when their sets meet.
Pure: the caller reads the DMAs and meters from wherever it keeps them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final

from leaksense.core.messages import LEAK_KINDS

SAME_FLOW_RATIO: Final = 3.0
"""Two series that see one leak see about the same flow: a far larger one is another
leak (a big burst must not be held under a small false alarm)."""
SAME_EVENT_WITHIN: Final = timedelta(minutes=30)
"""Two alerts whose estimated starts, and whose detections, are further apart are
two events."""


@dataclass(frozen=True)
class DmaBoundary:
    """A DMA's boundary meters and the customer meters inside it."""

    dma_id: str
    inlets: tuple[str, ...] = ()
    outlets: tuple[str, ...] = ()
    customers: tuple[str, ...] = ()


@dataclass(frozen=True)
class Subject:
    """What an alert is about: a meter (``sensor_id``) or a DMA's net inflow."""

    sensor_id: str | None = None
    dma_id: str | None = None


@dataclass
class WaterMap:
    """The parts of the water each series carries, from the DMAs' boundaries."""

    dmas: Mapping[str, DmaBoundary]
    _fed_by: dict[str, list[str]] = field(default_factory=dict, init=False)

    @classmethod
    def of(cls, dmas: Iterable[DmaBoundary]) -> WaterMap:
        out = cls({d.dma_id: d for d in dmas})
        for d in out.dmas.values():
            for meter in d.inlets:
                out._fed_by.setdefault(meter, []).append(d.dma_id)
        return out

    def parts(self, subject: Subject) -> frozenset[str]:
        """The parts of the water a series carries (never empty)."""
        if subject.dma_id is not None:
            return self._dma_parts(subject.dma_id, inlets=False, seen=set())
        meter = subject.sensor_id or ""
        if meter in self._fed_by:
            out: set[str] = set()
            for dma_id in self._fed_by[meter]:
                out |= self._dma_parts(dma_id, inlets=True, seen=set())
            return frozenset(out)
        return frozenset({f"meter:{meter}"})

    def _dma_parts(self, dma_id: str, *, inlets: bool, seen: set[str]) -> frozenset[str]:
        """A DMA's own part and its customers; through its inlets (``inlets``), also
        all the water they pass on through its outlets."""
        if dma_id in seen:  # a loop in a declared network: each DMA once
            return frozenset()
        seen.add(dma_id)
        dma = self.dmas.get(dma_id, DmaBoundary(dma_id))
        out = {f"dma:{dma_id}", *(f"meter:{c}" for c in dma.customers)}
        if inlets:
            for meter in dma.outlets:
                downstream = self._fed_by.get(meter)
                if not downstream:
                    out.add(f"meter:{meter}")
                for d in downstream or ():
                    out |= self._dma_parts(d, inlets=True, seen=seen)
        return frozenset(out)

    def same_water(self, a: Subject, b: Subject) -> bool:
        return not self.parts(a).isdisjoint(self.parts(b))


@dataclass(frozen=True)
class AlertFacts:
    """What the grouping rule reads of an alert."""

    alert_id: str
    subject: Subject
    kind: str
    started_at: datetime
    detected_at: datetime
    flow_m3h: float
    """The alert's estimate of the leak flow."""


def same_event(water: WaterMap, new: AlertFacts, old: AlertFacts) -> bool:
    """Is ``new`` the same leak as ``old``: a leak alert of the same kind, on a series
    that carries some of the same water, that started, or was raised, within
    :data:`SAME_EVENT_WITHIN` of it (two series' night alerts raised by the same
    night's verdict may date their evidence from different nights), with a flow
    within :data:`SAME_FLOW_RATIO` of its flow."""
    close = (
        abs(new.started_at - old.started_at) <= SAME_EVENT_WITHIN
        or abs(new.detected_at - old.detected_at) <= SAME_EVENT_WITHIN
    )
    small, large = sorted((max(new.flow_m3h, 0.0), max(old.flow_m3h, 0.0)))
    return (
        new.kind in LEAK_KINDS
        and new.kind == old.kind
        and new.subject != old.subject
        and close
        and large <= SAME_FLOW_RATIO * small
        and water.same_water(new.subject, old.subject)
    )


def group_in_order(water: WaterMap, alerts: Iterable[AlertFacts]) -> dict[str, str]:
    """Alert id → the first alert of its event, for alerts given in the order they
    arrive, as the server links them (an alert that joined an event heads none)."""
    heads: list[AlertFacts] = []
    out: dict[str, str] = {}
    for alert in alerts:
        head = next((h for h in heads if same_event(water, alert, h)), None)
        if head is None:
            heads.append(alert)
        else:
            out[alert.alert_id] = head.alert_id
    return out
