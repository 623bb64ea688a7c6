"""Report charts as PNG bytes, made to be read on a phone: 1080×1350 px (Telegram's portrait
photo), horizontal bars with the label above each bar, large type, Ukrainian labels (DejaVu Sans
has Cyrillic). matplotlib runs headless on the Agg backend; no pyplot, so no global figure state
is shared between two reports drawn at once.

Only published values are drawn: a "<5" bar is drawn at the threshold, hatched and labelled
"<5", never at its true length.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from services.report_exports import Translate, cell_text
from services.report_tables import SMALL_COUNT, SMALL_COUNT_LABEL, ReportTable

WIDTH_PX, HEIGHT_PX, DPI = 1080, 1350, 120
MAX_BARS = 12
_BAR = "#2f6db5"
_SMALL = "#9bb7d9"


def bar_chart_png(
    table: ReportTable, translate: Translate, *, title: str, value_column: int = 1
) -> bytes | None:
    """Horizontal bars of one count column of `table` (largest first, at most MAX_BARS); None
    when there is nothing to draw."""
    rows = [r for r in table.published() if r[value_column] not in (None, 0)]
    if not rows:
        return None
    bars: list[tuple[str, float, str]] = []
    for row in rows[:MAX_BARS]:
        value = row[value_column]
        label = str(cell_text(row[0], translate))
        if value == SMALL_COUNT_LABEL:
            bars.append((label, float(SMALL_COUNT - 1), SMALL_COUNT_LABEL))
        elif isinstance(value, (int, float)):
            bars.append((label, float(value), f"{value:g}"))
    return _draw(bars, title)


def _draw(bars: Sequence[tuple[str, float, str]], title: str) -> bytes:
    figure = Figure(figsize=(WIDTH_PX / DPI, HEIGHT_PX / DPI), dpi=DPI)
    FigureCanvasAgg(figure)
    axes = figure.add_axes((0.05, 0.04, 0.88, 0.84))
    figure.suptitle(_wrap(title, 34), fontsize=24, fontweight="bold", x=0.05, ha="left", y=0.97)
    positions = list(range(len(bars)))[::-1]
    top = max(value for _l, value, _t in bars) or 1.0
    colors = [_SMALL if text == SMALL_COUNT_LABEL else _BAR for _l, _v, text in bars]
    axes.barh(positions, [v for _l, v, _t in bars], height=0.45, color=colors)
    for y, (label, value, text) in zip(positions, bars, strict=True):
        # The label above its bar: long Ukrainian names do not squeeze the bars.
        axes.text(0, y + 0.32, _wrap(label, 40), fontsize=17, va="bottom", ha="left")
        axes.text(value + top * 0.01, y, text, fontsize=18, fontweight="bold", va="center", ha="left")
    axes.set_xlim(0, top * 1.15)
    axes.set_ylim(-0.6, len(bars) - 0.2)
    axes.axis("off")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def _wrap(text: str, width: int) -> str:
    words, lines, line = text.split(), [], ""
    for word in words:
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    lines.append(line)
    return "\n".join(lines[:2])
