"""The study's answer, counted per platform family: where non-structured pruning wins,
against what (dense, structured pruning at the same rate, structured pruning at equal
accuracy), and by how much. Counts only; the report words them
(:func:`family_sentence`)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

FAMILIES = (("cpu", "CPUs"), ("gpu", "GPUs"), ("fpga", "FPGAs"), ("asic", "ASICs"))
"""Platform families (a profile's ``class``) in the order the answer takes them, and
their names in the report."""

BENEFICIAL, DENSE_ONLY, NOT_BENEFICIAL = "yes", "against dense only", "no"
"""The answer for a family: non-structured pruning beats structured pruning in some
pair (see :attr:`FamilyAnswer.structured`); it beats only dense; it beats neither."""


@dataclass(frozen=True)
class Pair:
    """One network on one platform, with non-structured pruning's two ratios there
    against what it was compared with: ``latency`` (against dense: the speedup,
    above 1 is better; against structured pruning: latency over its latency, below 1
    is better) and ``energy`` (energy over the other's energy, below 1 is better)."""

    network: str
    platform: str
    latency: float
    energy: float


@dataclass(frozen=True, kw_only=True)
class FamilyAnswer:
    """The verdict's wins on one platform family, at the verdict's margin. Pairs are
    network/platform pairs of the verdict; a win is by more than the margin."""

    family: str
    """The profiles' ``class``: ``cpu``, ``gpu``, ``fpga``, ``asic`` (or another)."""
    platforms: tuple[str, ...]
    pairs: int
    margin: float
    speedup_range: tuple[float, float]
    """Smallest and largest speedup over dense in this family."""
    dense: tuple[Pair, ...]
    """Pairs faster than dense or using less energy (best speedup first)."""
    dense_latency: int
    """Of :attr:`dense`, how many are faster."""
    dense_energy: int
    """Of :attr:`dense`, how many use less energy."""
    no_speedup: tuple[str, ...]
    """Platforms where no network runs faster than dense at all (speedup 1 or less)."""
    same_rate_latency_range: tuple[float, float]
    """Smallest and largest latency over structured pruning at the same rate."""
    equal_compared: int
    """Pairs compared at equal accuracy (a published structured rate within the grid)."""
    equal_beyond_grid: int
    """Pairs whose published structured rate lies past the structured rates computed."""
    structured: tuple[Pair, ...]
    """Pairs where non-structured pruning beats structured pruning, in latency or
    energy: at equal accuracy where compared there, or at the same rate (a win at
    the same rate is a win at equal accuracy too: structured pruning loses accuracy
    sooner, so at equal accuracy it prunes less and costs no less). Ratios against
    structured pruning at equal accuracy where compared, else at the same rate;
    best latency first."""
    structured_lost: int
    """Pairs compared at equal accuracy where non-structured pruning wins neither."""
    undecided: int
    """Pairs not compared at equal accuracy (no published structured rate, or one
    past the grid) that do not win at the same rate either: structured pruning at
    equal accuracy might prune less and lose; unknown."""

    @property
    def answer(self) -> str:
        """:data:`BENEFICIAL` if non-structured pruning beats structured pruning in
        some pair, :data:`DENSE_ONLY` if it beats only dense, else
        :data:`NOT_BENEFICIAL`."""
        if self.structured:
            return BENEFICIAL
        return DENSE_ONLY if self.dense else NOT_BENEFICIAL


def _range(values: pd.Series) -> tuple[float, float]:
    x = values.astype(float).dropna()
    return (float(x.min()), float(x.max())) if len(x) else (math.nan, math.nan)


def _won(v: pd.DataFrame, column: str) -> pd.Series:
    return v[column].eq(True)


def _pair_list(v: pd.DataFrame, latency: pd.Series, energy: pd.Series, best_high: bool):
    order = latency.sort_values(ascending=not best_high, kind="stable").index
    return tuple(
        Pair(str(v.at[i, "network"]), str(v.at[i, "platform"]), float(latency[i]), float(energy[i]))
        for i in order
    )


def family_answer(v: pd.DataFrame, family: str) -> FamilyAnswer:
    """The :class:`FamilyAnswer` of the verdict rows ``v`` (one family's)."""
    compared = v["equal_accuracy"] == "compared"
    eq_win = compared & (
        _won(v, "beats_structured_at_equal_accuracy_latency")
        | _won(v, "beats_structured_at_equal_accuracy_energy")
    )
    same_win = _won(v, "beats_structured_latency") | _won(v, "beats_structured_energy")
    wins = eq_win | same_win
    lat = v["latency_vs_structured_same_rate"].where(
        ~compared, v["latency_vs_structured_equal_accuracy"]
    )
    en = v["energy_vs_structured_same_rate"].where(
        ~compared, v["energy_vs_structured_equal_accuracy"]
    )
    dense_lat, dense_en = _won(v, "beats_dense_latency"), _won(v, "beats_dense_energy")
    dense = v[dense_lat | dense_en]
    best = v.groupby("platform", sort=False)["speedup_vs_dense"].max()
    return FamilyAnswer(
        family=str(family),
        platforms=tuple(sorted(v["platform"].unique())),
        pairs=len(v),
        margin=float(v["margin"].iloc[0]),
        speedup_range=_range(v["speedup_vs_dense"]),
        dense=_pair_list(dense, dense["speedup_vs_dense"], dense["energy_ratio_vs_dense"], True),
        dense_latency=int(dense_lat.sum()),
        dense_energy=int(dense_en.sum()),
        no_speedup=tuple(sorted(best[best <= 1.0].index)),
        same_rate_latency_range=_range(v["latency_vs_structured_same_rate"]),
        equal_compared=int(compared.sum()),
        equal_beyond_grid=int((v["equal_accuracy"] == "beyond grid").sum()),
        structured=_pair_list(v[wins], lat[wins], en[wins], False),
        structured_lost=int((compared & ~wins).sum()),
        undecided=int((~compared & ~wins).sum()),
    )


def family_answers(verdict: pd.DataFrame) -> list[FamilyAnswer]:
    """One :class:`FamilyAnswer` per platform family in ``verdict`` (a decided verdict
    table with a ``platform_class`` column), families in :data:`FAMILIES` order, then
    any other."""
    if verdict.empty:
        return []
    known = [f for f, _ in FAMILIES]
    present = list(dict.fromkeys(verdict["platform_class"]))
    order = [f for f in known if f in present] + [f for f in present if f not in known]
    return [family_answer(verdict[verdict["platform_class"] == f], f) for f in order]
