"""Run-length coded activations (Eyeriss v1 keeps ifmaps and ofmaps so in DRAM)."""

from __future__ import annotations

import math


def rlc_pairs(values: float, density: float, run_bits: int) -> float:
    """Expected (run, level) pairs coding ``values`` i.i.d. activations of nonzero
    fraction ``density``: one pair per nonzero, plus one pair (a full run and a zero
    level) per ``2**run_bits`` zeros a run holds beyond what one pair covers. With
    ``q = (1 - d)**(2**run_bits)`` that is ``d*L*(1 + q/(1 - q)) = d*L / (1 - q)``
    (long streams; an all-zero stream costs ``L / 2**run_bits``)."""
    if values <= 0:
        return 0.0
    span = 2**run_bits
    if density >= 1:
        return float(values)
    covered = -math.expm1(span * math.log1p(-density))  # 1 - (1 - d)**span
    return values * density / covered


def rlc_bits(
    values: float, density: float, *, run_bits: int, level_bits: int, word_bits: int
) -> float:
    """Bits of ``values`` activations run-length coded: pairs of a ``run_bits`` zero
    run and a ``level_bits`` value, as many as fit in a ``word_bits`` word beside
    its one-bit last-word flag (Eyeriss: 3 x (5 + 16) + 1 = 64)."""
    per_word = (word_bits - 1) // (run_bits + level_bits)
    if per_word < 1:
        raise ValueError(f"a {word_bits}-bit word holds no {run_bits + level_bits}-bit pair")
    return math.ceil(rlc_pairs(values, density, run_bits) / per_word) * word_bits
