"""Figure plumbing shared by the study's figures: a figure on its own canvas, log
axes with plain tick labels, margins computed from text sizes (no layout engine),
a legend outside the axes, labels placed on vertical lines, and writing PNG + SVG."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from matplotlib import colormaps, rc_context, rcParams, ticker
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.transforms import blended_transform_factory

from simulator.files import write_via
from simulator.plots.data import FORMATS

DPI = 100
"""Resolution of the PNG files (dots per inch; figure sizes are in inches)."""


def new_figure(width_in: float, height_in: float) -> Figure:
    """A figure of the given size (inches) on its own Agg canvas: nothing global
    (pyplot's figure list, the backend) is touched."""
    fig = Figure(figsize=(width_in, height_in), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def distinct_colors(n: int) -> list:
    """``n`` distinct colours from a qualitative map: tab10 up to 10, tab20 up to 20,
    then evenly spaced hues."""
    if n <= 10:
        return list(colormaps["tab10"].colors[:n])
    if n <= 20:
        return list(colormaps["tab20"].colors[:n])
    return [colormaps["hsv"](i / n) for i in range(n)]


def rate_text(rate: float) -> str:
    """A pruning rate, short: ``4.2×``, ``13×``, ``348×``."""
    return f"{rate:.2g}×" if rate < 10 else f"{rate:.0f}×"


def log_axes(ax) -> None:
    """Log-log axes with plain tick labels (0.5, 1, 2, 5, 10; only decades over a
    wide range, every tick over a narrow one) and a light grid on them; no minor
    ticks (each tick is a costly object to draw). Call after the data are drawn."""
    ax.set_xscale("log")
    ax.set_yscale("log")
    for axis, (lo, hi) in ((ax.xaxis, ax.get_xlim()), (ax.yaxis, ax.get_ylim())):
        decades = math.log10(hi / lo) if lo > 0 and hi > lo else 1.0
        subs = (1.0,) if decades > 3.5 else (1.0, 2.0, 5.0) if decades > 0.6 else range(1, 10)
        axis.set_major_locator(ticker.LogLocator(subs=tuple(subs)))
        axis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        axis.set_minor_locator(ticker.NullLocator())
    ax.grid(True, which="major", alpha=0.3)


def fit(
    fig: Figure,
    axes: Sequence,
    handles: list,
    *,
    title=None,
    xticks: tuple[list[str], float] | None = None,
    gap_in: float = 0.0,
    top_in: float = 0.0,
    pad_in: float = 0.1,
):
    """Fixed margins, computed once from the sizes of the texts around the axes (tick
    labels, axis labels, titles, ``title`` over the figure) with a legend of
    ``handles`` at the figure's right edge, outside every axes: no layout engine and
    no drawing. ``xticks`` gives fixed x tick labels and their rotation (degrees);
    ``gap_in`` is extra room between axes side by side, ``top_in`` above their
    titles (inches). Returns the legend."""
    r = fig.canvas.get_renderer()
    w, h = fig.bbox.width, fig.bbox.height
    pt, pad = fig.dpi / 72, pad_in * fig.dpi
    legend, columns = None, 1
    while legend is None or legend.get_window_extent(r).height > h - 2 * pad:
        if legend is not None:  # too tall for the figure: one more column
            legend.remove()
            columns += 1
        legend = fig.legend(
            handles=handles,
            loc="center right",
            bbox_to_anchor=(1.0, 0.5),
            fontsize=8,
            frameon=False,
            handlelength=2.6,
            handleheight=1.1,
            ncols=columns,
        )
        if columns >= len(handles):
            break
    tick = (rcParams["ytick.major.size"] + rcParams["ytick.major.pad"]) * pt
    gap = rcParams["axes.labelpad"] * pt
    side = max(
        _tick_label_size(r, ax.yaxis)[0] + _text_size(r, ax.get_ylabel(), ax.yaxis.label)[1]
        for ax in axes
    )
    side += tick + gap + pad
    xtick = max(
        _tick_label_size(r, ax.xaxis, *(xticks or ()))[1]
        + _text_size(r, ax.get_xlabel(), ax.xaxis.label)[1]
        for ax in axes
    )
    bottom = xtick + tick + gap + pad
    top = max(_text_size(r, ax.get_title(), ax.title)[1] for ax in axes) + 6 * pt + pad
    top += top_in * fig.dpi
    if title is not None:
        top += _text_size(r, title.get_text(), title)[1] + pad
        title.set_y(1 - pad / 2 / h)
        title.set_va("top")
    right = legend.get_window_extent(r).width + 2 * pad
    if xticks:  # the first label, rotated and right-aligned, reaches left of its tick
        first = _tick_label_size(r, axes[0].xaxis, xticks[0][:1], xticks[1])[0]
        lo, hi = axes[0].get_xlim()
        tick0 = (axes[0].get_xticks()[0] - lo) / (hi - lo) * (w - side - right)
        side = max(side, first - tick0 + pad)
    n = len(axes)
    between = side + gap_in * fig.dpi
    each = (w - side - right - (n - 1) * between) / n
    fig.subplots_adjust(
        left=side / w,
        right=1 - right / w,
        bottom=bottom / h,
        top=1 - top / h,
        wspace=between / each,
    )
    legend.set_bbox_to_anchor((1 - pad / w, 0.5), transform=fig.transFigure)
    return legend


def label_lines(ax, marks: list[tuple[float, str, object]], size: float = 7.0) -> None:
    """Label vertical lines in place: each ``(x, text, colour)`` is written along its
    line (rotated, on a light box), from the top of the axes down, each label below
    those of nearby lines it would overlap; where a crowd of lines leaves no room
    below, the label moves sideways, a label's width at a time, to the nearest free
    place (several lines at one rate: their labels side by side). Call after
    :func:`fit`."""
    r = ax.figure.canvas.get_renderer()
    box = ax.get_window_extent(r)
    lo, hi = sorted(ax.get_xlim())
    thick = size * ax.figure.dpi / 72 * 1.4  # a rotated label's width, box included
    placed: list[tuple[float, float, float]] = []  # x, top and bottom (pixels from the top)
    along = blended_transform_factory(ax.transData, ax.transAxes)
    for x, text, color in sorted(marks, key=lambda m: m[0]):
        if not lo <= x <= hi:
            continue
        px = ax.transData.transform((x, 1.0))[0]
        length = _text_size(r, text, FontProperties(size=size))[0] + 6
        spot = None
        for shift in (0, 1, -1, 2, -2, 3, -3, 4, -4):
            at = px + shift * thick
            if not box.x0 + thick / 2 <= at <= box.x1 - thick / 2:
                continue
            y0 = _free_from_top(placed, at, thick, length)
            if y0 + length <= box.height - 4:
                spot = (at, y0)
                break
        at, y0 = spot or (px, 4.0)  # no room anywhere near: overlap at the top
        placed.append((at, y0, y0 + length))
        ax.text(
            ax.transData.inverted().transform((at, 0.0))[0],
            1 - (y0 + length / 2) / box.height,
            text,
            transform=along,
            rotation=90,
            ha="center",
            va="center",
            fontsize=size,
            color=color,
            bbox={"boxstyle": "square,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.8},
        )


def _free_from_top(placed, at: float, thick: float, length: float) -> float:
    """The highest top (pixels below the axes' top) where a label ``length`` long at
    ``at`` overlaps none of the ``placed`` labels."""
    y0 = 4.0
    for a, b in sorted((a, b) for p, a, b in placed if abs(p - at) < thick):
        if y0 + length <= a:
            break  # fits in the gap above this label
        y0 = max(y0, b + 3)
    return y0


def save_figure(fig: Figure, stem: Path) -> list[Path]:
    """Write ``fig`` as ``stem.png`` (:data:`DPI`) and ``stem.svg``, each under a
    temporary name renamed into place; returns both paths. SVG text stays text, and
    neither file carries a date, so the same figure gives the same bytes."""
    paths = []
    with rc_context({"svg.fonttype": "none", "svg.hashsalt": "prunesim"}):
        for fmt in FORMATS:
            path = stem.with_name(f"{stem.name}.{fmt}")
            meta = {"Date": None} if fmt == "svg" else {}
            write_via(
                path, lambda tmp, f=fmt, m=meta: fig.savefig(tmp, format=f, dpi=DPI, metadata=m)
            )
            paths.append(path)
    return paths


def _tick_label_size(renderer, axis, texts=None, rotation: float = 0.0) -> tuple[float, float]:
    """Width and height (pixels) of the largest major tick label of ``axis`` (or of
    ``texts`` at ``rotation`` degrees), computed without making the ticks."""
    if texts is None:
        lo, hi = sorted(axis.get_view_interval())
        fmt = axis.get_major_formatter()
        locs = [v for v in axis.get_major_locator()() if lo <= v <= hi]
        texts = fmt.format_ticks(locs)
    prop = FontProperties(size=rcParams["xtick.labelsize"])
    sizes = [_text_size(renderer, t, prop) for t in texts if t]
    if not sizes:
        return 0.0, 0.0
    c, s = abs(math.cos(math.radians(rotation))), abs(math.sin(math.radians(rotation)))
    return max(w * c + t * s for w, t in sizes), max(w * s + t * c for w, t in sizes)


def _text_size(renderer, text: str, prop) -> tuple[float, float]:
    """Width and height (pixels) of ``text`` in ``prop`` (FontProperties, or a Text
    whose font is used); several lines stack."""
    if not text:
        return 0.0, 0.0
    if not isinstance(prop, FontProperties):
        prop = prop.get_fontproperties()
    lines = text.split("\n")
    sizes = [renderer.get_text_width_height_descent(t, prop, ismath=False) for t in lines]
    return max(s[0] for s in sizes), sum(s[1] for s in sizes) * 1.2
