"""The study's three figures, each as ``figure_*`` (a Figure, nothing written) and
``plot_*`` (PNG and SVG files): compute (speedup and energy ratio against the
pruning rate on one platform), storage (against the rate, per weight width) and
energy breakdown (per platform, by component)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.transforms import blended_transform_factory

from simulator.plots.data import (
    BREAKEVEN_COLUMNS,
    COMPONENTS,
    FAMILIES,
    compute_data,
    energy_data,
    storage_data,
)
from simulator.plots.layout import (
    distinct_colors,
    fit,
    label_lines,
    log_axes,
    new_figure,
    rate_text,
    save_figure,
)

RATE_LABEL = "pruning rate (×, all weights / kept weights)"

WIDTH_STYLES = (
    ("-", "o"),
    ("--", "s"),
    ("-.", "^"),
    ((0, (7, 2, 1, 2, 1, 2)), "D"),
    ((0, (12, 3)), "v"),
    ((0, (3, 2)), "P"),
)
"""Line style and marker of each weight width, narrowest first (break-even lines are
dotted, so no width is)."""

FAMILY_COLORS = {"cpu": "#1b7837", "gpu": "#b35806", "fpga": "#542788", "asic": "#b2182b"}
"""Colour of each platform class's labels in the energy figure."""

HATCHES = ("", "//", "xx", "\\\\", "--", "||")
"""Hatch of each kind of execution in the energy figure (dense first): lines only
(a dotted hatch is some 70 KB of circles per colour in the SVG)."""

ENERGY_CAP = 3.0
"""Energy bars above this ratio to dense (×) are clipped and labelled with their value."""


def figure_compute(
    sweep: pd.DataFrame,
    breakeven: pd.DataFrame,
    platform: str,
    *,
    networks: Sequence[str] = (),
    widths: Sequence[int] = (),
    family: str | None = None,
) -> Figure:
    """Whole-network speedup and energy ratio of non-structured pruning against dense
    on one platform (tables ``compute_sweep`` and ``compute_breakeven``): a colour
    per network, a line style and marker per weight width; dotted vertical lines at
    the break-even rates, labelled in place (each panel's title counts the lines
    that never break even). ``networks`` and ``widths`` fix the
    order of colours and styles (so that a network keeps its colour in every
    platform's figure); ``family`` (the profile's class) goes in the title."""
    s, b = compute_data(sweep, breakeven, platform)
    present = list(dict.fromkeys(s["network"]))
    order = [n for n in networks if n in present] + sorted(set(present) - set(networks))
    color = dict(zip(order, distinct_colors(len(order)), strict=True))
    all_widths = sorted({int(w) for w in widths} | {int(w) for w in s["weight_bits"]})
    style = {w: WIDTH_STYLES[i % len(WIDTH_STYLES)] for i, w in enumerate(all_widths)}
    shown_widths = sorted({int(w) for w in s["weight_bits"]})
    fig = new_figure(12.5, 5.0)
    axes = fig.subplots(1, 2)
    marks: list[list] = [[], []]
    be = {(r.network, int(r.weight_bits)): r for r in b.itertuples(index=False)}
    for (net, wb), g in s.groupby(["network", "weight_bits"], sort=False):
        ls, marker = style[int(wb)]
        for k, (col, be_col) in enumerate(
            zip(("speedup", "energy_ratio"), BREAKEVEN_COLUMNS, strict=True)
        ):
            axes[k].plot(g["rate"], g[col], color=color[net], ls=ls, marker=marker, ms=3.5, lw=1.4)
            x = getattr(be.get((net, int(wb))), be_col, math.nan)
            if math.isfinite(x):
                axes[k].axvline(x, color=color[net], ls=":", lw=1.1)
                width = f" {wb}b" if len(shown_widths) > 1 else ""
                marks[k].append((x, f"{net}{width} {rate_text(x)}", color[net]))
    lines = s.groupby(["network", "weight_bits"]).ngroups
    for ax, m, title, ylabel in (
        (axes[0], marks[0], "latency", "speedup over dense (×, higher is better)"),
        (axes[1], marks[1], "energy", "energy / dense energy (×, lower is better)"),
    ):
        ax.axhline(1.0, color="black", lw=0.9)
        log_axes(ax)
        ax.set_xlabel(f"non-structured {RATE_LABEL}")
        ax.set_ylabel(ylabel)
        if len(m) < lines:  # a line without a break-even has no dotted line: say so
            title += f" ({lines - len(m)} of {lines} lines never break even)"
        ax.set_title(title, fontsize=10, y=1.0)  # y: no costly auto-position
    handles = [Line2D([], [], color=color[n], lw=2.5, label=n) for n in order]
    handles += [
        Line2D(
            [],
            [],
            color="black",
            ls=style[w][0],
            marker=style[w][1],
            ms=3.5,
            label=f"{w}-bit weights",
        )
        for w in shown_widths
    ]
    handles += [
        Line2D([], [], color="gray", ls=":", lw=1.1, label="break-even rate"),
        Line2D([], [], color="black", lw=0.9, label="dense (1×)"),
    ]
    name = f"{platform} ({family})" if family else platform
    title = fig.suptitle(f"{name}: non-structured pruning against dense", fontsize=12)
    fit(fig, axes, handles, title=title, gap_in=0.3)
    for ax, m in zip(axes, marks, strict=True):
        label_lines(ax, m)
    return fig


def figure_storage(curves: pd.DataFrame, network: str, index_bits: int) -> Figure:
    """Storage against the pruning rate (table ``storage_curves``), per weight width,
    relative to the dense layer at the same width: non-structured (relative-index
    CSR, ``index_bits`` per index) lines, structured markers, each at the rate its
    masks reach (whole filters: within a little of the rate asked), so that points
    at one rate keep as many weights."""
    c = storage_data(curves, network, index_bits)
    fig = new_figure(9.0, 5.0)
    ax = fig.subplots()
    nonstructured = c["kind"].str.startswith("non")
    widths = sorted({int(w) for w in c.loc[nonstructured, "weight_bits"]})
    for wb, col in zip(widths, distinct_colors(len(widths)), strict=True):
        ns = c[nonstructured & (c["weight_bits"] == wb)]
        ax.plot(
            ns["rate"],
            ns["bits"] / ns["dense_bits"],
            color=col,
            lw=1.6,
            label=f"{wb}-bit non-structured",
        )
    # structured storage relative to dense is the same at every width: drawn once
    for i, (kind, st) in enumerate(c[~nonstructured].groupby("kind", sort=True)):
        st = st[st["weight_bits"] == st["weight_bits"].max()].sort_values("effective_rate")
        ax.plot(
            st["effective_rate"],
            st["bits"] / st["dense_bits"],
            ls="--",
            lw=1.2,
            marker="s^Dvo"[i % 5],
            ms=4,
            color="black",
            label=f"{kind}, any weight width",
        )
    ax.axhline(1.0, color="dimgray", lw=0.9, label="dense storage (1×)")
    log_axes(ax)
    ax.set_xlabel(RATE_LABEL)
    ax.set_ylabel("storage / dense storage at the same weight width (×)")
    ax.set_title(f"{network}: storage with {index_bits}-bit relative indices", fontsize=11, y=1.0)
    fit(fig, [ax], ax.get_legend_handles_labels()[0])
    return fig


def figure_energy_breakdown(
    breakdown: pd.DataFrame, network: str, *, families: Mapping[str, str | None] | None = None
) -> Figure:
    """Energy per platform of dense, structured and non-structured execution at the
    network's rate (table ``energy_breakdown``), split by component (colour) and
    kind (hatch), relative to dense on that platform, at the widest weight width
    studied there (in the tick label); bars above :data:`ENERGY_CAP` are clipped and
    labelled with their value. ``families`` maps a platform to its class (cpu, gpu,
    fpga, asic): platforms are grouped by class, each group named above the bars,
    its tick labels in its colour."""
    b = energy_data(breakdown, network)
    fam = {p: (families or {}).get(p) or "" for p in set(b["platform"])}
    rank = {f: i for i, f in enumerate(FAMILIES)}
    platforms = sorted(fam, key=lambda p: (rank.get(fam[p], len(rank)), fam[p], p))
    others = sorted(set(b["kind"]) - {"dense", "sparse"})
    kinds = [k for k in ("dense", *others, "sparse") if k in set(b["kind"])]
    x, pos = [], 0.0  # platforms of one class side by side, a gap between classes
    for i, p in enumerate(platforms):
        pos += 0.6 if i and fam[p] != fam[platforms[i - 1]] else 0.0
        x.append(pos)
        pos += 1.0
    x = np.asarray(x)
    fig = new_figure(max(9.0, 0.3 * len(platforms) * max(len(kinds), 1) + 3.5), 5.4)
    ax = fig.subplots()
    width = 0.8 / max(len(kinds), 1)
    colors = colormaps["tab10"].colors
    by = {(r.platform, r.kind): r for r in b.itertuples(index=False)}
    for i, kind in enumerate(kinds):
        bottom = np.zeros(len(platforms))
        xs = x + (i - (len(kinds) - 1) / 2) * width
        for j, (col, _) in enumerate(COMPONENTS):
            vals = np.array([_share(by, p, kind, col) for p in platforms])
            # one collection of rectangles per kind and component, not a patch per
            # bar (patches cost most of this figure's time); limits are set below
            left, right, top = xs - width / 2, xs + width / 2, bottom + vals
            boxes = [
                [(x0, y0), (x0, y1), (x1, y1), (x1, y0)]
                for x0, x1, y0, y1 in zip(left, right, bottom, top, strict=True)
                if y1 > y0
            ]
            ax.add_collection(
                PolyCollection(
                    boxes,
                    facecolors=[colors[j]],
                    edgecolors="white",
                    linewidths=0.3,
                    hatch=HATCHES[i % len(HATCHES)] or None,
                ),
                autolim=False,
            )
            bottom = top
        for xi, total in zip(xs, bottom, strict=True):
            if total > ENERGY_CAP:  # clipped: the value written on the bar
                ax.text(
                    xi,
                    ENERGY_CAP * 0.97,
                    f"{total:.0f}×",
                    ha="center",
                    va="top",
                    fontsize=7,
                    rotation=90,
                    color="white",
                )
    tallest = max((max(_share(by, p, k, "energy_j") for p in platforms) for k in kinds), default=1)
    ax.set_ylim(0, min(ENERGY_CAP, max(1.15, 1.08 * tallest)))
    if len(x):
        ax.set_xlim(x.min() - 0.6, x.max() + 0.6)
    ax.axhline(1.0, color="black", lw=0.9)
    ticks = [
        f"{p} ({int(by[p, 'dense'].weight_bits)}b)" if (p, "dense") in by else p for p in platforms
    ]
    ax.set_xticks(x, ticks, rotation=35, ha="right", rotation_mode="anchor", fontsize=8)
    for label, p in zip(ax.get_xticklabels(), platforms, strict=True):
        label.set_color(FAMILY_COLORS.get(fam[p], "black"))
    over = blended_transform_factory(ax.transData, ax.transAxes)
    groups = list(dict.fromkeys(fam[p] for p in platforms))
    for k, f in enumerate(groups):
        xs = x[[fam[p] == f for p in platforms]]
        name = f.upper() if f else "other"
        ax.text(
            xs.mean(),
            1.01,
            name,
            transform=over,
            ha="center",
            va="bottom",
            fontsize=9,
            weight="bold",
            color=FAMILY_COLORS.get(f, "black"),
        )
        if k < len(groups) - 1:
            ax.axvline(xs.max() + 0.8, color="gray", lw=0.6)
    ax.set_ylabel("energy / dense energy on the platform (×)")
    ax.set_xlabel("platform (weight width), grouped by class")
    ax.set_title(
        f"{network}: energy by component at the network's rate", fontsize=11, pad=20, y=1.0
    )
    ax.grid(True, axis="y", alpha=0.3)
    handles = [Patch(color=colors[j], label=name) for j, (_, name) in enumerate(COMPONENTS)]
    handles += [
        Patch(
            facecolor="0.55",
            edgecolor="white",
            hatch=HATCHES[i % len(HATCHES)],
            label=_kind_name(k),
        )
        for i, k in enumerate(kinds)
    ]
    fit(fig, [ax], handles, xticks=(ticks, 35.0), top_in=0.2)
    return fig


def _kind_name(kind: str) -> str:
    return {"dense": "dense", "sparse": "non-structured"}.get(kind, f"{kind} (structured)")


def _share(by: dict, platform: str, kind: str, col: str) -> float:
    """One component's energy of ``kind`` on ``platform`` over dense's total there."""
    row, dense = by.get((platform, kind)), by.get((platform, "dense"))
    if row is None or dense is None or not dense.energy_j:
        return 0.0
    return float(getattr(row, col) / dense.energy_j)


def plot_compute(sweep, breakeven, platform: str, stem: Path, **options) -> list[Path]:
    """Write :func:`figure_compute` as ``stem.png`` and ``stem.svg``."""
    return save_figure(figure_compute(sweep, breakeven, platform, **options), stem)


def plot_storage(curves, network: str, index_bits: int, stem: Path) -> list[Path]:
    """Write :func:`figure_storage` as ``stem.png`` and ``stem.svg``."""
    return save_figure(figure_storage(curves, network, index_bits), stem)


def plot_energy_breakdown(breakdown, network: str, stem: Path, **options) -> list[Path]:
    """Write :func:`figure_energy_breakdown` as ``stem.png`` and ``stem.svg``."""
    return save_figure(figure_energy_breakdown(breakdown, network, **options), stem)
