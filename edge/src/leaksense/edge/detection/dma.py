"""A DMA's net inflow as a series of its own: Σ inlet flows − Σ outlet flows.

Readings of the member meters are grouped in time buckets of the reporting
interval; a bucket becomes a reading of the DMA series when every member has
reported in it. Older incomplete buckets are dropped (the DMA series has a gap,
which its health check reports).
"""

from __future__ import annotations

from collections.abc import Sequence


class DmaAggregator:
    """Turns member readings into the DMA's net-inflow readings."""

    def __init__(
        self, dma_id: str, inlets: Sequence[str], outlets: Sequence[str], interval_s: float
    ) -> None:
        self.dma_id = dma_id
        self.sign = {s: 1.0 for s in inlets} | {s: -1.0 for s in outlets}
        self.interval_s = interval_s
        self._buckets: dict[int, dict[str, float]] = {}
        self.dropped_buckets = 0

    def add(self, sensor_id: str, epoch_s: float, flow_m3h: float) -> list[tuple[float, float]]:
        """Record a member reading; returns completed ``(bucket start, net flow)``."""
        bucket = int(epoch_s // self.interval_s)
        members = self._buckets.setdefault(bucket, {})
        members[sensor_id] = flow_m3h
        if len(members) < len(self.sign):
            if len(self._buckets) > 4:
                self._drop_before(bucket - 3)
            return []
        del self._buckets[bucket]
        self._drop_before(bucket)
        net = sum(self.sign[s] * f for s, f in members.items())
        return [(bucket * self.interval_s, net)]

    def _drop_before(self, bucket: int) -> None:
        for old in [b for b in self._buckets if b < bucket]:
            del self._buckets[old]
            self.dropped_buckets += 1
