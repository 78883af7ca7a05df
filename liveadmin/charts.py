"""Charts drawn on the server as SVG (no script, no CDN), each with its table.

A chart is computed here (geometry in a 600×200 viewBox) and drawn by the
template ``liveadmin/chart.html``, which also renders the same numbers as a table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.utils.formats import number_format
from django.utils.functional import Promise

# The SVG holds bars and grid lines only (stretched to the box); labels are HTML,
# so text stays readable at any width.
WIDTH, HEIGHT = 600, 200
LEFT, BOTTOM, TOP = 0, 0, 4


@dataclass
class Series:
    # ``label`` is the series' key (an outcome, an action), English; ``name`` is what
    # people read (the label when not given).
    label: str
    css: str
    values: list[float]
    name: str | Promise = ""

    @property
    def display(self) -> str | Promise:
        return self.name or self.label


@dataclass
class Bar:
    x: float
    y: float
    width: float
    height: float
    css: str
    title: str


@dataclass
class Chart:
    title: str | Promise
    buckets: list[datetime]
    series: list[Series]
    unit: str = ""
    bars: list[Bar] = field(default_factory=list)
    ticks: list[tuple[float, str]] = field(default_factory=list)
    labels: list[tuple[float, datetime]] = field(default_factory=list)
    extra: dict[str | Promise, list[str]] = field(default_factory=dict)

    @property
    def width(self) -> int:
        return WIDTH

    @property
    def height(self) -> int:
        return HEIGHT

    @property
    def plot_bottom(self) -> int:
        return HEIGHT - BOTTOM

    @property
    def left(self) -> int:
        return LEFT

    @property
    def total(self) -> float:
        return sum(sum(s.values) for s in self.series)

    @property
    def rows(self) -> list[tuple[datetime, list[float], list[str]]]:
        """(bucket start, one value per series, extra columns) for the table."""
        return [
            (
                start,
                [s.values[i] for s in self.series],
                [column[i] for column in self.extra.values()],
            )
            for i, start in enumerate(self.buckets)
        ]


def nice_max(value: float) -> float:
    """The smallest 1, 2 or 5 × 10^n at or above ``value`` (at least 1)."""
    if value <= 1:
        return 1
    magnitude = 1.0
    while magnitude * 10 <= value:
        magnitude *= 10
    for step in (1, 2, 5, 10):
        if step * magnitude >= value:
            return step * magnitude
    return 10 * magnitude


def _fmt(value: float) -> str:
    """A figure with the active language's separators (Django's locale formats)."""
    if value >= 10 or value == int(value):
        return number_format(value, 0, force_grouping=True)
    return number_format(value, 1)


def stacked_bars(chart: Chart) -> Chart:
    """Fill in the bars, y ticks and x labels of a stacked bar chart."""
    n = len(chart.buckets)
    if not n:
        return chart
    plot_w = WIDTH - LEFT
    plot_h = HEIGHT - BOTTOM - TOP
    totals = [sum(s.values[i] for s in chart.series) for i in range(n)]
    top = nice_max(max(totals, default=0))
    slot = plot_w / n
    gap = min(2.0, slot * 0.2)
    chart.bars = []
    for i in range(n):
        base = 0.0
        for s in chart.series:
            value = s.values[i]
            if value <= 0:
                continue
            h = plot_h * value / top
            y = TOP + plot_h - plot_h * (base + value) / top
            chart.bars.append(
                Bar(
                    x=round(LEFT + i * slot + gap / 2, 2),
                    y=round(y, 2),
                    width=round(max(slot - gap, 0.5), 2),
                    height=round(h, 2),
                    css=s.css,
                    title=f"{s.display}: {_fmt(value)}{chart.unit}",
                )
            )
            base += value
    chart.ticks = [
        (round(TOP + plot_h - plot_h * f, 2), _fmt(top * f)) for f in (0, 0.5, 1)
    ]
    step = max(1, -(-n // 3))
    chart.labels = [
        (round(LEFT + i * slot + slot / 2, 2), chart.buckets[i])
        for i in range(0, n, step)
    ]
    return chart
