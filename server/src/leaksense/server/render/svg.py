"""Inline SVG line charts for the printable reports: no JavaScript, no dependency.

A chart library (pygal) was considered: its SVG leans on CSS and scripts for
tooltips and its layout is hard to pin down in print (WeasyPrint). Reports need one
kind of chart, daily series against a left axis in m³ or m³/h and an optional right
axis in %, with markers for repair days; about a hundred lines do that and stay
deterministic, so tests can look for what the chart shows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

WIDTH, HEIGHT = 720, 260
LEFT, RIGHT, TOP, BOTTOM = 60, 50, 30, 40
GRID_LINES = 4


@dataclass(frozen=True, slots=True)
class Series:
    """One line: its legend, values (None: no point) and colour; ``right`` uses the % axis."""

    name: str
    values: Sequence[float | None]
    color: str
    right: bool = False


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    step = 10 ** (len(str(int(value))) - 1)
    return float((int(value / step) + 1) * step)


def _polyline(series: Series, x: Sequence[float], y_of: float, y_max: float) -> str:
    plot_h = HEIGHT - TOP - BOTTOM
    runs: list[list[str]] = [[]]
    for xi, v in zip(x, series.values, strict=True):
        if v is None:
            runs.append([])
            continue
        y = TOP + plot_h - plot_h * (v - y_of) / (y_max - y_of)
        runs[-1].append(f"{xi:.1f},{y:.1f}")
    return "".join(
        f'<polyline fill="none" stroke="{series.color}" stroke-width="1.8" points="{" ".join(r)}"/>'
        for r in runs
        if r
    )


def line_chart(
    title: str,
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    left_unit: str,
    markers: Sequence[int] = (),
) -> str:
    """An SVG chart of daily series; ``markers`` are day indices drawn as dashed lines."""
    n = len(labels)
    plot_w = WIDTH - LEFT - RIGHT
    x = [LEFT + (plot_w * i / (n - 1) if n > 1 else plot_w / 2) for i in range(n)]
    left_vals = [v for s in series if not s.right for v in s.values if v is not None]
    left_max = _nice_max(max(left_vals, default=0.0))
    right_vals = [v for s in series if s.right for v in s.values if v is not None]
    right_lo = 0.0 if not right_vals or min(right_vals) >= 0 else min(right_vals)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {WIDTH} {HEIGHT}"'
        f' width="{WIDTH}" height="{HEIGHT}" role="img" aria-label="{escape(title)}">',
        f'<text x="{LEFT}" y="18" font-size="13" font-weight="bold">{escape(title)}</text>',
    ]
    plot_h = HEIGHT - TOP - BOTTOM
    for k in range(GRID_LINES + 1):
        y = TOP + plot_h - plot_h * k / GRID_LINES
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>'
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" font-size="10" text-anchor="end">'
            f"{left_max * k / GRID_LINES:,.0f}</text>"
        )
        if right_vals:
            parts.append(
                f'<text x="{WIDTH - RIGHT + 6}" y="{y + 4:.1f}" font-size="10">'
                f"{right_lo + (100 - right_lo) * k / GRID_LINES:.0f} %</text>"
            )
    parts.append(f'<text x="6" y="{TOP - 8}" font-size="10">{escape(left_unit)}</text>')
    for i in markers:
        if 0 <= i < n:
            parts.append(
                f'<line class="marker" x1="{x[i]:.1f}" x2="{x[i]:.1f}" y1="{TOP}"'
                f' y2="{TOP + plot_h}" stroke="#c33" stroke-dasharray="4 3"/>'
            )
    for i in sorted({0, n // 2, n - 1}) if n else []:
        parts.append(
            f'<text x="{x[i]:.1f}" y="{HEIGHT - BOTTOM + 16}" font-size="10"'
            f' text-anchor="middle">{escape(labels[i])}</text>'
        )
    for k, s in enumerate(series):
        parts.append(_polyline(s, x, right_lo if s.right else 0.0, 100.0 if s.right else left_max))
        lx = LEFT + 150 * k
        parts.append(
            f'<rect x="{lx}" y="{HEIGHT - 14}" width="12" height="4" fill="{s.color}"/>'
            f'<text x="{lx + 16}" y="{HEIGHT - 9}" font-size="10">{escape(s.name)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
