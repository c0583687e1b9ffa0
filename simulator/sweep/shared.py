"""What hardware points of one mask can share: the counts of every layer, where the
swept fields only price them.

prunesim counts first and prices second (:mod:`simulator.cost`): an engine turns a
layer into action counts, :func:`~simulator.cost.price` turns counts into latency and
energy with the profile's clock, bandwidths and energies (:data:`PRICED`). Where a
point differs from another only in fields that its engines do not read, both have the
same counts, and only the price differs. Some engines do read priced fields: a mapped
systolic array and the row-stationary search choose their loop nests by latency or
energy, the roofline turns seconds into cycles with the clock and streams GEMV weights
at the DRAM bandwidth, EIE counts pointer reads as events when the profile prices
them (:data:`READ_BY_ENGINE`). A field is *price-only* on a platform when no engine
the platform may run reads it; the set is conservative (every engine the platform may
run for any variant), and ``tests/test_sweep_shared.py`` perturbs every price-only
field of every built-in profile and checks that no count moves.
"""

from __future__ import annotations

from fnmatch import fnmatchcase

from simulator.hwconfig import Platform

PRICED = (
    "clock_hz",
    "memory.*.bandwidth_bytes_per_s",
    "memory.*.bandwidth_bits_per_cycle",
    "memory.*.read_pj_per_bit",
    "memory.*.write_pj_per_bit",
    "energy.*",
)
"""Key paths of the fields :func:`~simulator.cost.price` reads (``*``: any name)."""

READ_BY_ENGINE: dict[str, tuple[str, ...]] = {
    "eie": ("energy.pointer_read_pj",),
    "scnn": (),
    "roofline": ("clock_hz", "memory.*.bandwidth_bytes_per_s", "memory.*.bandwidth_bits_per_cycle"),
    "systolic": PRICED,
    "rowstationary": PRICED,
}
"""Priced fields each engine's counts also depend on (an engine not listed reads them
all)."""


def engines_of(platform: Platform) -> set[str]:
    """Every engine ``platform`` may run, for any variant: its execution model, the
    sparse engines it names, and on an FPGA its dense array and EIE array."""
    named = platform.raw.get("compute", {}).get("sparse_engines") or {}
    out = {platform.execution, *named.values()}
    if platform.fpga is not None:
        out |= {"systolic", "eie"}
    return out


def price_only(path: str, platform: Platform) -> bool:
    """Whether a hardware key path only prices the counts on ``platform``."""
    if not any(fnmatchcase(path, p) for p in PRICED):
        return False
    for engine in engines_of(platform):
        reads = READ_BY_ENGINE.get(engine, PRICED)
        if any(fnmatchcase(path, p) for p in reads):
            return False
    return True
