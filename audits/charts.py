"""Server-rendered SVG charts for the quality page: no script, no library, a few KB each.

Each chart is one ``<svg role="img">`` with an ``aria-label`` and a ``<desc>`` that states
every figure in words (screen readers do not read inside an image); points carry a
``<title>`` for the mouse. Series differ by colour, dash and marker shape, so they read
without colour too. A missing figure (None) is a gap in its line, never a zero.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import count

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

# Okabe–Ito colours (distinguishable with the common colour-vision deficiencies), each with a
# dash pattern and a marker shape of its own.
STYLES = (
    ("#0072B2", "", "circle"),
    ("#D55E00", "6 4", "square"),
    ("#009E73", "2 3", "diamond"),
    ("#CC79A7", "10 3 2 3", "triangle"),
)
BAR_COLOUR = "#0072B2"
GRID = "#d9e2ec"
TEXT = "#616e7c"
FONT = 'font-family="system-ui, sans-serif"'

_ids = count(1)


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[float | None]  # shares 0–1, one per period; None = not measured


def percent(value: float | None) -> str:
    return "not measured" if value is None else f"{value * 100:.0f}%"


def _fmt(number: float) -> str:
    return f"{number:.1f}".removesuffix(".0")


def _polygon(*points: tuple[float, float]) -> str:
    return '<polygon points="' + " ".join(f"{_fmt(x)},{_fmt(y)}" for x, y in points) + '"'


def _marker(shape: str, x: float, y: float, colour: str, tip: str) -> str:
    if shape == "square":
        tag, body = "rect", f'<rect x="{_fmt(x - 4)}" y="{_fmt(y - 4)}" width="8" height="8"'
    elif shape == "diamond":
        tag, body = "polygon", _polygon((x, y - 5.5), (x + 5.5, y), (x, y + 5.5), (x - 5.5, y))
    elif shape == "triangle":
        tag, body = "polygon", _polygon((x, y - 5.5), (x + 5.5, y + 4.5), (x - 5.5, y + 4.5))
    else:
        tag, body = "circle", f'<circle cx="{_fmt(x)}" cy="{_fmt(y)}" r="4.5"'
    style = f'fill="{colour}" stroke="#fff" stroke-width="1.5"'
    return f"{body} {style}><title>{escape(tip)}</title></{tag}>"


def _label_step(n: int, room: float, label_width: float) -> int:
    """Every how many periods an axis label fits without overlapping its neighbours."""
    step = 1
    while n > 1 and room * step < label_width:
        step += 1
    return step


def line_chart(
    *,
    label: str,
    x_labels: Sequence[str],
    series: Sequence[Series],
    x_titles: Sequence[str] | None = None,
    width: int = 960,
    height: int = 300,
) -> SafeString:
    """Up to four series of shares (0–1) over periods, on a 0–100 % scale.

    ``x_labels`` are the short axis labels, ``x_titles`` the longer words used in tooltips
    and the description (``"week of 2 Nov 2026"``).
    """
    if len(series) > len(STYLES):
        raise ValueError(f"at most {len(STYLES)} series")
    titles = list(x_titles or x_labels)
    uid = f"chart-{next(_ids)}"
    left, right, top, bottom = 48, 16, 40, 36
    plot_w, plot_h = width - left - right, height - top - bottom
    pad = 20  # keeps the first and last points off the axis
    n = len(x_labels)
    step_x = (plot_w - 2 * pad) / (n - 1) if n > 1 else 0

    def x_at(i: int) -> float:
        return left + (pad + i * step_x if n > 1 else plot_w / 2)

    def y_at(v: float) -> float:
        return top + plot_h * (1 - max(0.0, min(1.0, v)))

    parts = [
        f'<svg class="chart line-chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(label)}" aria-describedby="{uid}-desc" {FONT} font-size="12" '
        f'preserveAspectRatio="xMidYMid meet" xmlns="http://www.w3.org/2000/svg">',
        f'<desc id="{uid}-desc">{escape(_describe_lines(label, titles, series))}</desc>',
    ]
    # Grid and the 0–100 % axis.
    for tick in (0, 25, 50, 75, 100):
        y = y_at(tick / 100)
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{_fmt(y)}" y2="{_fmt(y)}" '
            f'stroke="{GRID}" stroke-width="1"/>'
            f'<text x="{left - 8}" y="{_fmt(y + 4)}" text-anchor="end" fill="{TEXT}">'
            f"{tick}%</text>"
        )
    every = _label_step(n, step_x or plot_w, 64)
    for i, text in enumerate(x_labels):
        if i % every == 0 or i == n - 1 and (n - 1) % every >= every / 2:
            parts.append(
                f'<text x="{_fmt(x_at(i))}" y="{height - bottom + 18}" text-anchor="middle" '
                f'fill="{TEXT}">{escape(text)}</text>'
            )
    # Series: a path broken at every gap, a marker on every measured point.
    for s, (colour, dash, shape) in zip(series, STYLES, strict=False):
        runs: list[list[tuple[float, float]]] = [[]]
        markers = []
        for i, value in enumerate(s.values[:n]):
            if value is None:
                if runs[-1]:
                    runs.append([])
                continue
            x, y = x_at(i), y_at(value)
            runs[-1].append((x, y))
            markers.append(_marker(shape, x, y, colour, f"{s.name}, {titles[i]}: {percent(value)}"))
        d = " ".join(
            "M" + " L".join(f"{_fmt(x)},{_fmt(y)}" for x, y in run) for run in runs if len(run) > 1
        )
        group = [f'<g class="series" data-series="{escape(s.name)}">']
        if d:
            dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
            group.append(
                f'<path d="{d}" fill="none" stroke="{colour}" stroke-width="2.5"'
                f'{dash_attr} stroke-linejoin="round"/>'
            )
        group.extend(markers)
        group.append("</g>")
        parts.append("".join(group))
    if not any(v is not None for s in series for v in s.values):
        parts.append(
            f'<text x="{_fmt(left + plot_w / 2)}" y="{_fmt(top + plot_h / 2)}" '
            f'text-anchor="middle" fill="{TEXT}" font-size="14">Nothing measured in this '
            f"period yet.</text>"
        )
    parts.append(_legend(series, left, 16))
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 — every text above went through escape()


def _legend(series: Sequence[Series], x0: int, y: int) -> str:
    items, x = [], float(x0)
    for s, (colour, dash, shape) in zip(series, STYLES, strict=False):
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        items.append(
            f'<line x1="{_fmt(x)}" x2="{_fmt(x + 28)}" y1="{y}" y2="{y}" stroke="{colour}" '
            f'stroke-width="2.5"{dash_attr}/>'
            + _marker(shape, x + 14, y, colour, s.name)
            + f'<text x="{_fmt(x + 34)}" y="{y + 4}" fill="#1f2933">{escape(s.name)}</text>'
        )
        x += 34 + 7.5 * len(s.name) + 24
    return f'<g class="legend" aria-hidden="true">{"".join(items)}</g>'


def _describe_lines(label: str, titles: Sequence[str], series: Sequence[Series]) -> str:
    if not titles:
        return f"{label}: no periods."
    lines = [f"{label}, from {titles[0]} to {titles[-1]}."]
    for s in series:
        figures = "; ".join(f"{t}: {percent(v)}" for t, v in zip(titles, s.values, strict=False))
        lines.append(f"{s.name}: {figures}.")
    return " ".join(lines)


def bar_chart(
    *,
    label: str,
    bars: Sequence[tuple[str, int]],
    width: int = 460,
    unit: tuple[str, str] = ("error", "errors"),
) -> SafeString:
    """Horizontal bars of counts (findings by category), each with its number at its end."""
    uid = f"chart-{next(_ids)}"
    row, top, left, right = 30, 8, 104, 48
    height = top * 2 + row * max(1, len(bars))
    plot_w = width - left - right
    biggest = max((value for _, value in bars), default=0)

    def words(name: str, value: int) -> str:
        return f"{name}: {value} {unit[0] if value == 1 else unit[1]}"

    description = f"{label}: " + (
        "; ".join(words(name, value) for name, value in bars) + "." if bars else "none."
    )
    parts = [
        f'<svg class="chart bar-chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(label)}" aria-describedby="{uid}-desc" {FONT} font-size="13" '
        f'xmlns="http://www.w3.org/2000/svg">',
        f'<desc id="{uid}-desc">{escape(description)}</desc>',
        f'<line x1="{left}" x2="{left}" y1="{top}" y2="{height - top}" stroke="{GRID}"/>',
    ]
    for i, (name, value) in enumerate(bars):
        y = top + i * row
        w = plot_w * value / biggest if biggest else 0
        parts.append(
            f'<g class="bar"><title>{escape(words(name, value))}</title>'
            f'<text x="{left - 8}" y="{y + row / 2 + 4:.0f}" text-anchor="end" fill="#1f2933">'
            f"{escape(name)}</text>"
            f'<rect x="{left}" y="{y + 6}" width="{_fmt(max(w, 0))}" height="{row - 12}" rx="3" '
            f'fill="{BAR_COLOUR}"/>'
            f'<text x="{_fmt(left + w + 6)}" y="{y + row / 2 + 4:.0f}" fill="{TEXT}">{value}</text>'
            "</g>"
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 — every text above went through escape()


def _count_axis(biggest: float) -> tuple[float, float]:
    """(top, step) of a count axis: a step of 1, 2 or 5 times a power of ten (never below
    1: counts are whole), at most five steps up to the first multiple at or above ``biggest``."""
    step = 1.0
    while biggest / step > 5:
        for factor in (2, 2.5, 2):  # 1 → 2 → 5 → 10 → 20 …
            step *= factor
            if biggest / step <= 5:
                break
    top = step * max(1, -(-biggest // step))
    return top, step


def count_chart(
    *,
    label: str,
    x_labels: Sequence[str],
    series: Sequence[Series],
    x_titles: Sequence[str] | None = None,
    unit: tuple[str, str] = ("run", "runs"),
    stacked: bool = True,
    width: int = 960,
    height: int = 260,
) -> SafeString:
    """Up to four series of counts per period as columns (work done per day), stacked in
    the legend's order from the bottom up (parts of one whole) or, with ``stacked=False``,
    side by side (figures that do not add up, such as tasks created and completed), on a
    scale from 0 to a round number at or above the tallest column. Every period has a
    ``<title>`` with its figures and the ``<desc>`` states them all in words."""
    if len(series) > len(STYLES):
        raise ValueError(f"at most {len(STYLES)} series")
    titles = list(x_titles or x_labels)
    uid = f"chart-{next(_ids)}"
    left, right, top, bottom = 48, 16, 40, 36
    plot_w, plot_h = width - left - right, height - top - bottom
    n = len(x_labels)
    totals = [sum((s.values[i] or 0) for s in series) for i in range(n)]
    tallest = [
        totals[i] if stacked else max(((s.values[i] or 0) for s in series), default=0)
        for i in range(n)
    ]
    axis_top, axis_step = _count_axis(max(tallest, default=0))
    slot = plot_w / max(n, 1)
    group_w = max(2.0, min(36.0 if stacked else 18.0 * len(series), slot * 0.7))
    bar_w = group_w if stacked else group_w / max(len(series), 1)

    def words(value: float) -> str:
        value = round(value, 1)
        shown = _fmt(value)
        return f"{shown} {unit[0] if value == 1 else unit[1]}"

    description = [f"{label}."]
    for s in series:
        figures = "; ".join(
            f"{t}: {words(v or 0)}" for t, v in zip(titles, s.values, strict=False) if v
        )
        description.append(f"{s.name}: {figures or 'none'}.")
    parts = [
        f'<svg class="chart count-chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(label)}" aria-describedby="{uid}-desc" {FONT} font-size="12" '
        f'preserveAspectRatio="xMidYMid meet" xmlns="http://www.w3.org/2000/svg">',
        f'<desc id="{uid}-desc">{escape(" ".join(description))}</desc>',
    ]
    ticks = round(axis_top / axis_step)
    for step in range(ticks + 1):
        value = axis_step * step
        y = top + plot_h * (1 - step / ticks)
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{_fmt(y)}" y2="{_fmt(y)}" '
            f'stroke="{GRID}" stroke-width="1"/>'
            f'<text x="{left - 8}" y="{_fmt(y + 4)}" text-anchor="end" fill="{TEXT}">'
            f"{_fmt(round(value, 1))}</text>"
        )
    every = _label_step(n, slot, 64)
    for i, text in enumerate(x_labels):
        if i % every == 0:
            parts.append(
                f'<text x="{_fmt(left + slot * (i + 0.5))}" y="{height - bottom + 18}" '
                f'text-anchor="middle" fill="{TEXT}">{escape(text)}</text>'
            )
    for i in range(n):
        if not totals[i]:
            continue
        x = left + slot * (i + 0.5) - group_w / 2
        base = top + plot_h
        tip = ", ".join(f"{s.name} {_fmt(round(s.values[i] or 0, 1))}" for s in series)
        column = [f'<g class="column"><title>{escape(f"{titles[i]}: {tip}")}</title>']
        for k, (s, (colour, _, _)) in enumerate(zip(series, STYLES, strict=False)):
            value = s.values[i] or 0
            if value <= 0:
                continue
            h = plot_h * value / axis_top
            if stacked:
                base -= h
                y, bar_x = base, x
            else:
                y, bar_x = top + plot_h - h, x + k * bar_w
            column.append(
                f'<rect x="{_fmt(bar_x)}" y="{_fmt(y)}" width="{_fmt(bar_w)}" '
                f'height="{_fmt(h)}" fill="{colour}"/>'
            )
        column.append("</g>")
        parts.append("".join(column))
    if not any(totals):
        parts.append(
            f'<text x="{_fmt(left + plot_w / 2)}" y="{_fmt(top + plot_h / 2)}" '
            f'text-anchor="middle" fill="{TEXT}" font-size="14">Nothing in this period.</text>'
        )
    items, x = [], float(left)
    for s, (colour, _, _) in zip(series, STYLES, strict=False):
        items.append(
            f'<rect x="{_fmt(x)}" y="10" width="12" height="12" fill="{colour}"/>'
            f'<text x="{_fmt(x + 18)}" y="20" fill="#1f2933">{escape(s.name)}</text>'
        )
        x += 18 + 7.5 * len(s.name) + 24
    parts.append(f'<g class="legend" aria-hidden="true">{"".join(items)}</g>')
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 — every text above went through escape()
