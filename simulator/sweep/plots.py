"""Figures of a sweep, SVG and PNG: the Pareto front of two quantities over every valid
point, and the break-even of a pruned variant with dense over two parameters.

matplotlib's object-oriented API only: each figure is a :class:`matplotlib.figure.Figure`
of fixed size (no pyplot, no global backend, no constrained layout), axes labelled
with units read off the column names, legends outside the data.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from simulator.files import write_via
from simulator.sweep.analysis import breakeven_grid, pareto_front

UNITS = (
    ("_bytes_per_s", "bytes/s"),
    ("_bits_per_cycle", "bits/cycle"),
    ("_pj_per_bit", "pJ/bit"),
    ("_hz", "Hz"),
    ("_bytes", "bytes"),
    ("_bits", "bits"),
    ("_pj", "pJ"),
    ("_ns", "ns"),
    ("_s", "s"),
    ("_j", "J"),
    ("_w", "W"),
    ("_nm", "nm"),
)
"""Column-name endings and the unit they mean (units live in the names)."""

UNITLESS = {
    "speedup": "speedup over dense (x)",
    "energy_ratio": "energy / dense energy",
    "pes": "processing elements",
    "pruning.rate": "pruning rate (x)",
    "pruning.density": "kept fraction",
    "pruning.sparsity": "removed fraction",
    "pe_utilization": "PE utilization",
    "effective_rate": "rate reached (x)",
    "macs_done": "MACs done",
    "macs_dense": "MACs of the dense network",
}


def label(column: str) -> str:
    """An axis label with its unit: ``memory.dram.bandwidth_bytes_per_s`` ->
    ``memory.dram.bandwidth (bytes/s)``; ratios and counts say what they are."""
    if column in UNITLESS:
        return UNITLESS[column]
    for ending, unit in UNITS:
        if column.endswith(ending):
            return f"{column[: -len(ending)].replace('_', ' ')} ({unit})"
    return f"{column.replace('_', ' ')} (count)"


def _is_log(values: np.ndarray) -> bool:
    """Log scale where the values are positive and span more than a factor of 8."""
    values = values[np.isfinite(values)]
    return bool(len(values) and (values > 0).all() and values.max() / values.min() > 8)


def _edges(centres: np.ndarray, log: bool) -> np.ndarray:
    """Cell edges around sorted cell centres: midpoints (geometric on a log axis), the
    outer edges as far out as the nearest inner ones."""
    c = np.log(centres) if log else centres.astype(float)
    if len(c) == 1:
        mid = np.array([c[0] - 0.5, c[0] + 0.5]) if not log else np.array([c[0] - 0.1, c[0] + 0.1])
    else:
        inner = (c[1:] + c[:-1]) / 2
        mid = np.concatenate(([2 * c[0] - inner[0]], inner, [2 * c[-1] - inner[-1]]))
    return np.exp(mid) if log else mid


def _contour(xs, ys, values, logx: bool, logy: bool) -> list[np.ndarray]:
    """The lines where ``values`` crosses 0 on the grid, interpolated in the axes' own
    scales (log where the axis is), as (x, y) arrays in data units."""
    import contourpy

    tx = np.log(xs) if logx else xs
    ty = np.log(ys) if logy else ys
    z = np.ma.masked_invalid(values)
    lines = contourpy.contour_generator(x=tx, y=ty, z=z).lines(0.0)
    out = []
    for line in lines:
        pts = np.asarray(line, dtype=float)
        pts[:, 0] = np.exp(pts[:, 0]) if logx else pts[:, 0]
        pts[:, 1] = np.exp(pts[:, 1]) if logy else pts[:, 1]
        out.append(pts)
    return out


def _figure(right: float = 0.7, bottom: float = 0.13):
    """A fixed-size figure and its axes, margins set once (no layout engine)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8.0, 4.8), dpi=110)
    ax = fig.add_subplot()
    fig.subplots_adjust(left=0.15, right=right, bottom=bottom, top=0.9)
    return fig, ax


def _save(fig, stem: Path) -> list[Path]:
    """The figure as ``stem.png`` and ``stem.svg``, each written whole or not at all."""
    out = []
    for suffix in (".png", ".svg"):
        path = stem.parent / f"{stem.name}{suffix}"
        out.append(write_via(path, lambda tmp, s=suffix: fig.savefig(tmp, format=s[1:])))
    return out


def _slug(*parts: str) -> str:
    return "-".join(re.sub(r"[^A-Za-z0-9_.]+", "_", p) for p in parts)


def plot_pareto(
    table: pd.DataFrame, x: str, y: str, variant: str | None, folder: Path, title: str = ""
) -> list[Path]:
    """Every valid point of ``variant`` (grey) and its Pareto front (both minimised)."""
    rows = table[(table["status"] == "ok") & (table["variant"] == variant if variant else True)]
    front = pareto_front(table, x, y, variant=variant)
    fig, ax = _figure()
    ax.scatter(rows[x], rows[y], s=8, color="0.7", label=f"valid points ({len(rows):,})")
    ax.plot(
        front[x], front[y], "o-", color="C3", ms=4, lw=1.2, label=f"Pareto front ({len(front)})"
    )
    if _is_log(rows[x].to_numpy(float)):
        ax.set_xscale("log")
    if _is_log(rows[y].to_numpy(float)):
        ax.set_yscale("log")
    ax.set_xlabel(label(x))
    ax.set_ylabel(label(y))
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8, frameon=False)
    what = (f"{variant} variant" if variant else "every variant") + ", both minimised"
    ax.set_title(f"{title}: {what}" if title else what, fontsize=10)
    return _save(fig, folder / _slug("pareto", x, y, variant or "all"))


def plot_breakeven(
    table: pd.DataFrame,
    x: str,
    y: str,
    variant: str,
    metric: str,
    folder: Path,
    title: str = "",
) -> list[Path]:
    """``metric`` of ``variant`` over dense on the (x, y) grid (best over the other
    parameters in each cell), and the line where it breaks even (1)."""
    grid = breakeven_grid(table, x, y, variant=variant, metric=metric)
    from matplotlib.ticker import NullLocator

    fig, ax = _figure(right=0.92, bottom=0.2)
    xs, ys = grid.columns.to_numpy(float), grid.index.to_numpy(float)
    logx, logy = _is_log(xs), _is_log(ys)
    values = np.log2(grid.to_numpy(float))
    bound = max(np.nanmax(np.abs(values)) if np.isfinite(values).any() else 1.0, 0.1)
    # green where the variant wins: high speedup, low energy ratio
    cmap = "RdYlGn" if metric == "speedup" else "RdYlGn_r"
    mesh = ax.pcolormesh(
        _edges(xs, logx), _edges(ys, logy), values, cmap=cmap, vmin=-bound, vmax=bound
    )
    bar = fig.colorbar(mesh, ax=ax, fraction=0.05, pad=0.02)
    bar.set_label(f"log2 {label(metric)}", fontsize=8)
    if len(xs) > 1 and len(ys) > 1:
        for i, pts in enumerate(_contour(xs, ys, values, logx, logy)):
            ax.plot(
                pts[:, 0],
                pts[:, 1],
                color="black",
                lw=1.5,
                label=f"break-even ({metric} = 1)" if i == 0 else None,
            )
    ax.plot(xs.repeat(len(ys)), np.tile(ys, len(xs)), "k.", ms=2, label="points evaluated")
    for axis, values_, log in ((ax.xaxis, xs, logx), (ax.yaxis, ys, logy)):
        if log:
            (ax.set_xscale if axis is ax.xaxis else ax.set_yscale)("log")
        if len(values_) <= 12:  # tick the grid's own values
            axis.set_ticks(values_, labels=[f"{v:.3g}" for v in values_])
            axis.set_minor_locator(NullLocator())
    ax.set_xlabel(label(x))
    ax.set_ylabel(label(y))
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2, fontsize=8, frameon=False)
    head = f"{title}: " if title else ""
    ax.set_title(f"{head}{variant} against dense, best over the other parameters", fontsize=10)
    return _save(fig, folder / _slug("breakeven", x, y, variant, metric))


def draw(table: pd.DataFrame, plots, folder: Path, title: str = "") -> list[Path]:
    """Every figure of ``plots`` (:class:`~simulator.sweep.spec.Plot`) into ``folder``."""
    out: list[Path] = []
    for p in plots:
        if p.kind == "pareto":
            out += plot_pareto(table, p.x, p.y, p.variant, folder, title)
        else:
            out += plot_breakeven(table, p.x, p.y, p.variant, p.metric, folder, title)
    return out
