"""Figures of the study (matplotlib, headless): speedup and energy ratio against the
pruning rate per platform, storage against the rate per bit width, and energy
breakdowns per platform."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

COMPONENTS = (
    ("energy_dram_j", "DRAM"),
    ("energy_sram_j", "on-chip memory"),
    ("energy_mac_j", "MACs"),
    ("energy_index_j", "index decoding"),
    ("energy_static_j", "static"),
    ("energy_busy_j", "busy power floor"),
)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def plot_compute(sweep: pd.DataFrame, breakeven: pd.DataFrame, platform: str, path: Path) -> Path:
    """Network-level speedup and energy ratio of non-structured pruning against dense
    on one platform, one line per network (and weight width), break-evens marked."""
    plt = _pyplot()
    s = sweep[
        (sweep["platform"] == platform)
        & (sweep["kind"] == "sparse")
        & (sweep["layer"] == "(network)")
    ]
    b = breakeven[(breakeven["platform"] == platform) & (breakeven["layer"] == "(network)")]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), constrained_layout=True)
    for (net, wb), g in s.groupby(["network", "weight_bits"], sort=True):
        g = g.sort_values("rate")
        label = f"{net} ({wb}-bit)" if s["weight_bits"].nunique() > 1 else net
        for ax, col, be_col in (
            (axes[0], "speedup", "latency_breakeven_rate"),
            (axes[1], "energy_ratio", "energy_breakeven_rate"),
        ):
            (line,) = ax.plot(g["rate"], g[col], marker="o", ms=3, label=label)
            row = b[(b["network"] == net) & (b["weight_bits"] == wb)]
            if not row.empty and math.isfinite(row[be_col].iloc[0]):
                ax.axvline(row[be_col].iloc[0], color=line.get_color(), ls=":", lw=1)
    for ax, title in (
        (axes[0], "speedup over dense (higher is better)"),
        (axes[1], "energy / dense energy (lower is better)"),
    ):
        ax.axhline(1.0, color="black", lw=0.8)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("non-structured pruning rate (x)")
        ax.set_title(title, fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
    axes[1].legend(fontsize=7, loc="best")
    fig.suptitle(f"{platform}: non-structured pruning against dense (dotted: break-even)")
    return _save(fig, path)


def plot_storage(curves: pd.DataFrame, network: str, index_bits: int, path: Path) -> Path:
    """Storage against the pruning rate, per weight width, relative to the dense layer
    at the same width: non-structured (relative-index CSR) lines, structured markers,
    each at the rate its masks reach (whole filters: within a little of the rate
    asked), so that points at one rate keep as many weights."""
    plt = _pyplot()
    c = curves[(curves["network"] == network) & (curves["index_bits"] == index_bits)]
    fig, ax = plt.subplots(figsize=(7, 4.5), constrained_layout=True)
    for wb, g in c.groupby("weight_bits", sort=True):
        ns = g[g["kind"].str.startswith("non")].sort_values("rate")
        ax.plot(ns["rate"], ns["bits"] / ns["dense_bits"], label=f"{wb}-bit non-structured")
    # structured storage relative to dense is the same at every width: drawn once
    for kind, st in c[~c["kind"].str.startswith("non")].groupby("kind"):
        st = st[st["weight_bits"] == st["weight_bits"].max()].sort_values("effective_rate")
        ax.plot(
            st["effective_rate"],
            st["bits"] / st["dense_bits"],
            ls="--",
            marker="s",
            ms=3,
            color="black",
            label=f"{kind}, any weight width",
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("pruning rate: all weights / kept weights (x)")
    ax.set_ylabel("storage / dense storage at the same weight bits")
    ax.set_title(f"{network}: storage with {index_bits}-bit relative indices", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    return _save(fig, path)


def plot_energy_breakdown(breakdown: pd.DataFrame, network: str, path: Path) -> Path:
    """Energy per platform of dense, structured and non-structured execution at the
    network's rate, split by component, relative to dense on that platform (bars
    above 3x are clipped and labelled with their value)."""
    plt = _pyplot()
    b = breakdown[breakdown["network"] == network]
    b = b.loc[b.groupby(["platform", "kind"])["weight_bits"].idxmax()]
    platforms = sorted(b["platform"].unique())
    others = sorted(set(b["kind"]) - {"dense", "sparse"})
    kinds = [k for k in ("dense", *others, "sparse") if k in set(b["kind"])]
    fig, ax = plt.subplots(
        figsize=(max(8, 0.35 * len(platforms) * len(kinds)), 4.8), constrained_layout=True
    )
    width = 0.8 / len(kinds)
    x = np.arange(len(platforms))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    hatches = ("", "//", "..", "xx")
    cap = 3.0
    for i, kind in enumerate(kinds):
        bottom = np.zeros(len(platforms))
        pos = x + (i - (len(kinds) - 1) / 2) * width
        for j, (col, name) in enumerate(COMPONENTS):
            vals = []
            for p in platforms:
                row = b[(b["platform"] == p) & (b["kind"] == kind)]
                dense = b[(b["platform"] == p) & (b["kind"] == "dense")]["energy_j"]
                vals.append(float(row[col].iloc[0] / dense.iloc[0]) if len(row) else 0.0)
            ax.bar(
                pos,
                vals,
                width,
                bottom=bottom,
                color=colors[j % len(colors)],
                label=name if i == 0 else None,
                edgecolor="white",
                lw=0.3,
                hatch=hatches[i % len(hatches)],
            )
            bottom += vals
        for xi, total in zip(pos, bottom, strict=True):
            if total > cap:
                ax.text(
                    xi,
                    cap * 0.97,
                    f"{total:.0f}x",
                    ha="center",
                    va="top",
                    fontsize=7,
                    rotation=90,
                    color="white",
                )
    ax.set_ylim(0, cap)
    ax.axhline(1.0, color="black", lw=0.8)
    ax.set_xticks(x, platforms, rotation=35, ha="right", fontsize=8)
    ax.set_ylabel("energy / dense energy on the platform")
    legend = ", ".join(f"{k} ({h or 'plain'})" for k, h in zip(kinds, hatches, strict=False))
    ax.set_title(
        f"{network}: energy by component at the network's rate; bars: {legend}", fontsize=9
    )
    ax.legend(fontsize=7, ncol=5, loc="upper left")
    ax.grid(True, axis="y", alpha=0.3)
    return _save(fig, path)


def _save(fig, path: Path) -> Path:
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
