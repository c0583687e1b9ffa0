"""The verdict's rules: what counts as a win (a stated margin), and structured pruning
read off its computed curve at another rate (the published rate at equal accuracy)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

WINS = (
    ("beats_dense_latency", "speedup_vs_dense", "higher"),
    ("beats_dense_energy", "energy_ratio_vs_dense", "lower"),
    ("beats_structured_latency", "latency_vs_structured_same_rate", "lower"),
    ("beats_structured_energy", "energy_vs_structured_same_rate", "lower"),
    (
        "beats_structured_at_equal_accuracy_latency",
        "latency_vs_structured_equal_accuracy",
        "lower",
    ),
    (
        "beats_structured_at_equal_accuracy_energy",
        "energy_vs_structured_equal_accuracy",
        "lower",
    ),
)
"""Each verdict column, the ratio it is decided on, and which way is better."""

EQUAL_ACCURACY_WINS = tuple(w for w, _, _ in WINS if "equal_accuracy" in w)

BEYOND_GRID = 1e-3
"""Relative distance past the largest structured rate computed at which a rate is
"beyond the grid" (the curve is not extrapolated)."""


def matched_at_most(rate, searched_from):
    """Whether a matching structured rate is only an upper bound: the mildest
    structured rate searched (``structured_rate_searched_from``) already matches, and
    :func:`simulator.study.first_crossing` returns it. Numbers or columns."""
    return rate <= searched_from


def is_win(value: float, better: str, margin: float) -> bool:
    """Whether ``value`` is a win by ``margin``: the other option costs more than
    ``1 + margin`` times as much. For a speedup (``better == "higher"``) that is
    ``value > 1 + margin``; for a cost ratio, non-structured over the other
    (``"lower"``), ``value < 1 / (1 + margin)``. The one rule serves latency and
    energy alike, and a ratio and its inverse (a latency ratio of 0.952 is a speedup
    of 1.05). Margin 0: any strict improvement."""
    win = 1.0 + margin
    return bool(value > win) if better == "higher" else bool(value * win < 1.0)


def decide(verdict: pd.DataFrame, margin: float) -> pd.DataFrame:
    """The verdict's win columns decided at ``margin`` (see :func:`is_win`), with a
    ``margin`` column; applied when the verdict is derived, so it may be applied again
    to a verdict decided at another margin. The equal-accuracy columns are None where
    the ratio is NaN (no published structured rate, or one beyond the grid)."""
    v = verdict.copy()
    v["margin"] = float(margin)
    for column, ratio, better in WINS:
        if ratio not in v:
            continue
        values = [
            None if (column in EQUAL_ACCURACY_WINS and math.isnan(x)) else is_win(x, better, margin)
            for x in v[ratio].astype(float)
        ]
        v[column] = pd.Series(
            values, index=v.index, dtype=object if column in EQUAL_ACCURACY_WINS else bool
        )
    return v


def at_rate(rates: np.ndarray, values: np.ndarray, rate: float) -> float:
    """``values`` (positive, on a curve over ascending ``rates``) at ``rate``, linear
    in log value against log rate between the two rates around it; clamped to the
    ends (the same-rate comparison asks for rates a little past the grid's ends, where
    whole filters fall short of the rate asked)."""
    return float(np.exp(np.interp(math.log(rate), np.log(rates), np.log(values))))


def beyond_grid(rates: np.ndarray, rate: float) -> bool:
    """Whether ``rate`` lies past the largest of ``rates`` (see :data:`BEYOND_GRID`)."""
    return rate > float(np.max(rates)) * (1 + BEYOND_GRID)


def main_engine(frame: pd.DataFrame) -> str:
    """The engine that carried the largest share of a run's latency (its layers'
    ``engine`` and ``latency_s``)."""
    return str(frame.groupby("engine", sort=False)["latency_s"].sum().idxmax())
