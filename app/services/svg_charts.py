"""Bar charts drawn on the server as inline SVG: accessible, scalable, and allowed by the strict CSP.

This module does the arithmetic (where each bar, label and grid line goes) and returns a ``Chart`` of plain
shapes; ``templates/_chart.html`` writes them out as ``<svg>``, so every label (area names are typed by
people) is autoescaped like any other text, and no ``Markup`` is built by hand. No script and no ``style=``:
colours come from CSS classes in ``static/css/reports.css`` (which follow the light and dark themes and print
black on white), and every series after the first has its own pattern, and every bar a value label or a
tooltip, so colour is never the only cue. The ``<svg>`` is ``role="img"`` with a ``<title>`` and a ``<desc>``
summing the figures up; the page puts a table with the same figures beside it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

FONT = 14
WIDTH = 480.0
PATTERNS = ("solid", "hatch", "dots", "cross")


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[int]


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    series: int
    title: str


@dataclass(frozen=True)
class Label:
    x: float
    y: float
    text: str
    css: str = "chart-text"
    anchor: str = "start"


@dataclass(frozen=True)
class Rule:
    x1: float
    y1: float
    x2: float
    y2: float
    css: str = "chart-grid"


@dataclass(frozen=True)
class Swatch:
    x: float
    y: float
    series: int


@dataclass
class Chart:
    """What ``templates/_chart.html`` draws: sizes in viewBox units, the shapes, the words that sum it up."""

    chart_id: str
    title: str
    desc: str
    width: float
    height: float = 0.0
    series: list[str] = field(default_factory=list)
    bars: list[Bar] = field(default_factory=list)
    labels: list[Label] = field(default_factory=list)
    rules: list[Rule] = field(default_factory=list)
    swatches: list[Swatch] = field(default_factory=list)

    @property
    def patterns(self) -> list[tuple[int, str]]:
        """The series drawn with a pattern over their colour (all but the first), and which pattern."""
        return [(index, PATTERNS[index % len(PATTERNS)]) for index in range(1, len(self.series))]

    def fill(self, series: int) -> str:
        return f"url(#{self.chart_id}-p{series})" if series else ""


def n(value: float) -> str:
    """A coordinate written short: 12.5, 40."""
    return f"{value:.1f}".rstrip("0").rstrip(".")


def nice_max(value: int) -> int:
    """A round top for the value axis: 1, 2 or 4 for small counts, else 1, 2, 5 or 10 times a power of ten."""
    if value <= 4:
        return 1 if value <= 1 else 2 if value == 2 else 4
    power = 10 ** math.floor(math.log10(value))
    return next(step * power for step in (1, 2, 5, 10) if step * power >= value)


def _ticks(top: int) -> list[int]:
    step = max(1, top // 4)
    return list(range(0, top + 1, step))


def _legend(chart: Chart, series: Sequence[Series], y: float) -> float:
    """The key, wrapping onto more lines when it does not fit; returns the height it takes."""
    x, line = 0.0, 0
    for index, one in enumerate(series):
        item_width = 24 + len(one.name) * FONT * 0.56 + 16
        if x and x + item_width > chart.width:
            x, line = 0.0, line + 1
        top = y + line * (FONT + 10)
        chart.swatches.append(Swatch(x, top, index))
        chart.labels.append(Label(x + 24, top + FONT - 2, one.name))
        x += item_width
    return (line + 1) * (FONT + 10)


def _top(series: Sequence[Series], count: int, stacked: bool) -> int:
    if stacked:
        return nice_max(max((sum(s.values[i] for s in series) for i in range(count)), default=0))
    return nice_max(max((v for s in series for v in s.values), default=0))


@dataclass(frozen=True)
class _Slot:
    """Where one category's bars go: its left edge and width along the category axis, the value scale."""

    start: float
    size: float
    base: float
    scale: float


def column_chart(
    chart_id: str,
    title: str,
    desc: str,
    categories: Sequence[str],
    series: Sequence[Series],
    *,
    stacked: bool = False,
    sublabels: Sequence[str] = (),
    x_label: str = "",
    y_label: str = "",
) -> Chart:
    """Vertical bars, one group (or stack) per category, e.g. per month; a value on every bar that fits.

    ``sublabels`` go under the category labels (the year under January and under the first month)."""
    chart = Chart(chart_id, title, desc, WIDTH, series=[s.name for s in series])
    left, top_pad, plot_h = 36.0, 28.0, 200.0
    plot_w = WIDTH - left - 8
    top = _top(series, len(categories), stacked)
    base = top_pad + plot_h
    scale = plot_h / top
    for tick in _ticks(top):
        y = base - tick * scale
        chart.rules.append(Rule(left, y, WIDTH - 8, y))
        chart.labels.append(Label(left - 6, y + 5, str(tick), anchor="end"))
    chart.rules.append(Rule(left, base, WIDTH - 8, base, "chart-baseline"))
    slot = plot_w / max(len(categories), 1)
    every = max(1, math.ceil(len(categories) / 12))
    for index, category in enumerate(categories):
        if index % every == 0:
            chart.labels.append(Label(left + slot * (index + 0.5), base + 18, category, anchor="middle"))
        if index < len(sublabels) and sublabels[index]:
            chart.labels.append(Label(left + slot * (index + 0.5), base + 36, sublabels[index], anchor="middle"))
        place = _Slot(left + slot * index, slot, base, scale)
        (_stack_column if stacked else _group_column)(chart, category, series, index, place)
    if y_label:
        chart.labels.append(Label(0, top_pad - 12, y_label, "chart-text chart-axis-label"))
    if x_label:
        chart.labels.append(Label(left + plot_w / 2, base + 58, x_label, "chart-text chart-axis-label", "middle"))
    key_at = base + (70 if x_label else 50)
    chart.height = key_at + _legend(chart, series, key_at)
    return chart


def _group_column(chart: Chart, category: str, series: Sequence[Series], index: int, place: _Slot) -> None:
    bar_w = place.size * 0.8 / len(series)
    for s_index, one in enumerate(series):
        value = one.values[index]
        h = value * place.scale
        x = place.start + place.size * 0.1 + s_index * bar_w
        chart.bars.append(Bar(x, place.base - h, bar_w, h, s_index, f"{category}, {one.name}: {value}"))
        if bar_w >= 9:
            chart.labels.append(Label(x + bar_w / 2, place.base - h - 4, str(value), "chart-value", "middle"))


def _stack_column(chart: Chart, category: str, series: Sequence[Series], index: int, place: _Slot) -> None:
    bar_w, y = place.size * 0.8, place.base
    x = place.start + place.size * 0.1
    for s_index, one in enumerate(series):
        value = one.values[index]
        h = value * place.scale
        y -= h
        chart.bars.append(Bar(x, y, bar_w, h, s_index, f"{category}, {one.name}: {value}"))
        if value and h >= FONT + 2 and bar_w >= 18:
            chart.labels.append(Label(x + bar_w / 2, y + h / 2 + 5, str(value), "chart-value chart-value-on", "middle"))
    total = sum(s.values[index] for s in series)
    chart.labels.append(Label(x + bar_w / 2, y - 4, str(total), "chart-value", "middle"))


def row_chart(
    chart_id: str,
    title: str,
    desc: str,
    categories: Sequence[str],
    series: Sequence[Series],
    *,
    stacked: bool = True,
    value_label: str = "",
) -> Chart:
    """Horizontal bars, one row per category with its name written above it (long names fit at 320 px)."""
    chart = Chart(chart_id, title, desc, WIDTH, series=[s.name for s in series])
    pad, bar_h = 8.0, 22.0
    row_h = FONT + 8 + bar_h * (1 if stacked else len(series)) + 12
    top = _top(series, len(categories), stacked)
    scale = (WIDTH - pad - 48) / top
    y0 = 8.0 + (FONT + 6 if value_label else 0)
    if value_label:
        chart.labels.append(Label(pad, FONT + 2, value_label, "chart-text chart-axis-label"))
    for index, category in enumerate(categories):
        y = y0 + row_h * index
        chart.labels.append(Label(pad, y + FONT, category, "chart-text chart-category"))
        place = _Slot(y + FONT + 6, bar_h, pad, scale)
        (_stack_row if stacked else _group_row)(chart, category, series, index, place)
    bottom = y0 + row_h * len(categories)
    chart.rules.append(Rule(pad, y0, pad, bottom, "chart-baseline"))
    chart.height = bottom + 4 + _legend(chart, series, bottom + 4)
    return chart


def _stack_row(chart: Chart, category: str, series: Sequence[Series], index: int, place: _Slot) -> None:
    x = place.base
    for s_index, one in enumerate(series):
        value = one.values[index]
        w = value * place.scale
        chart.bars.append(Bar(x, place.start, w, place.size - 2, s_index, f"{category}, {one.name}: {value}"))
        if value and w >= 24:
            chart.labels.append(
                Label(x + w / 2, place.start + place.size / 2 + 4, str(value), "chart-value chart-value-on", "middle")
            )
        x += w
    total = sum(s.values[index] for s in series)
    chart.labels.append(Label(x + 4, place.start + place.size / 2 + 4, str(total), "chart-value"))


def _group_row(chart: Chart, category: str, series: Sequence[Series], index: int, place: _Slot) -> None:
    for s_index, one in enumerate(series):
        value = one.values[index]
        w = value * place.scale
        y = place.start + s_index * place.size
        chart.bars.append(Bar(place.base, y, w, place.size - 2, s_index, f"{category}, {one.name}: {value}"))
        chart.labels.append(Label(place.base + w + 4, y + place.size / 2 + 4, str(value), "chart-value"))
