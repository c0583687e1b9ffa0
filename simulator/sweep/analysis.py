"""Reading a sweep's table back, and what to read off it: the Pareto front of two
quantities, and where a pruned variant breaks even with dense over two parameters."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from simulator.errors import ConfigError
from simulator.sweep.columns import OK
from simulator.sweep.store import read_table


def load_sweep(folder: str | Path) -> pd.DataFrame:
    """The results of a sweep folder as a typed table (the types its ``sweep.json``
    records: Parquet and CSV read back alike)."""
    folder = Path(folder)
    try:
        about = json.loads((folder / "sweep.json").read_text())
        types, fmt = dict(about["columns"]), about["format"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ConfigError(str(folder), f"holds no sweep (sweep.json: {type(e).__name__})") from None
    path = folder / f"results.{fmt}"
    if not path.is_file():
        raise ConfigError(str(folder), f"has no {path.name}: the sweep did not finish")
    try:
        return read_table(path, types)
    except (OSError, ValueError) as e:
        raise ConfigError(str(path), f"cannot be read as the sweep's table ({e})") from None


def _ok_rows(table: pd.DataFrame, variant: str | None, columns: tuple[str, ...]) -> pd.DataFrame:
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ConfigError("sweep table", f"no column {', '.join(missing)}")
    rows = table[table["status"] == OK]
    if variant is not None:
        rows = rows[rows["variant"] == variant]
    keep = np.isfinite(rows[list(columns)].astype("float64")).all(axis=1)
    return rows[keep]


def pareto_front(
    table: pd.DataFrame, x: str, y: str, *, variant: str | None = None
) -> pd.DataFrame:
    """The rows no other row beats on both ``x`` and ``y`` (both minimised: no row
    with x' <= x and y' <= y, one of them smaller), among valid rows (of ``variant``
    where given), sorted by ``x``. Rows that tie on both are all kept."""
    rows = _ok_rows(table, variant, (x, y))
    if rows.empty:
        return rows
    order = rows.sort_values([x, y], kind="stable")
    xs, ys = order[x].to_numpy(float), order[y].to_numpy(float)
    keep = np.zeros(len(order), dtype=bool)
    best = math.inf
    start = 0
    while start < len(order):  # rows of equal x together
        end = start
        while end < len(order) and xs[end] == xs[start]:
            end += 1
        low = ys[start:end].min()
        if low < best:
            keep[start:end] = ys[start:end] == low
            best = low
        start = end
    return order[keep]


def breakeven_grid(
    table: pd.DataFrame, x: str, y: str, *, variant: str = "sparse", metric: str = "speedup"
) -> pd.DataFrame:
    """``metric`` (speedup, or energy_ratio) of ``variant`` over dense on the grid of
    two parameters: index ``y``, columns ``x``. Where other parameters vary too, each
    cell holds the best value over them (the highest speedup, the lowest energy ratio):
    whether *some* point at (x, y) wins. Empty cells are NaN."""
    if metric not in ("speedup", "energy_ratio"):
        raise ConfigError("metric", f"expected speedup or energy_ratio, got {metric!r}")
    rows = _ok_rows(table, variant, (x, y, metric))
    best = "max" if metric == "speedup" else "min"
    grid = rows.groupby([y, x])[metric].agg(best).unstack(x)
    return grid.sort_index().sort_index(axis=1).astype("float64")


def breakeven_line(grid: pd.DataFrame, metric: str = "speedup") -> pd.DataFrame:
    """Where ``metric`` crosses 1 along each column of :func:`breakeven_grid`: one row
    per crossing, ``x``, ``y`` (interpolated linearly in log(metric) against y, in log
    y where every y is positive) and ``wins_above``: whether the variant beats dense
    just above that y (a speedup above 1, an energy ratio below 1)."""
    ys = grid.index.to_numpy(float)
    logy = bool((ys > 0).all())
    sign = 1.0 if metric == "speedup" else -1.0
    out = []
    for x in grid.columns:
        col = grid[x].to_numpy(float)
        good = np.isfinite(col) & (col > 0)
        yy, vv = ys[good], sign * np.log(col[good])  # > 0: the variant wins
        for i in range(len(yy) - 1):
            a, b = vv[i], vv[i + 1]
            if (a > 0) == (b > 0):
                continue
            frac = a / (a - b)
            if logy:
                at = math.exp(math.log(yy[i]) + frac * (math.log(yy[i + 1]) - math.log(yy[i])))
            else:
                at = yy[i] + frac * (yy[i + 1] - yy[i])
            out.append((x, at, bool(b > 0)))
    return pd.DataFrame(out, columns=["x", "y", "wins_above"])
