"""Prices: action counts times a platform's table give energy (J) and latency (s).

Latency is the largest of the compute bound and each memory level's bandwidth
bound (transfers overlap compute; accesses off the level's port, such as partial-sum
accumulation, take none of it; DRAM traffic streams at the counts'
``dram_efficiency`` of the bandwidth), plus the counts' fixed ``overhead_s``; the
result names the bound that set it (``launch`` where the overhead alone is longer
than every other bound).
Energy is the sum over levels of bits x pJ/bit, MACs x pJ/MAC at the layer's
precision (gated MACs cost nothing), sparse bookkeeping (index decodes, and where a
profile prices them per event, column-pointer reads and activation-queue operations)
x pJ, and static power x latency; where the profile gives ``busy_w`` (the power a CPU
or GPU draws while it runs a kernel, whatever the kernel does), no less than busy_w x
latency: the difference is ``energy_busy_j``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulator.hwconfig import Platform
from simulator.traffic import ExecutionCounts

PJ = 1e-12


@dataclass(frozen=True, kw_only=True)
class LayerCost:
    """Latency (s) and energy (J) of one layer, with what set them."""

    latency_s: float
    bound: str
    compute_s: float
    memory_s: tuple[tuple[str, float], ...]
    energy_j: float
    energy_by_level_j: tuple[tuple[str, float], ...]
    energy_dram_j: float
    energy_sram_j: float
    energy_mac_j: float
    energy_index_j: float
    energy_static_j: float
    energy_busy_j: float = 0.0


def price(
    counts: ExecutionCounts, platform: Platform, weight_bits: int, activation_bits: int
) -> LayerCost:
    """Latency and energy of a layer's counts on ``platform``."""
    compute_s = counts.compute_cycles / platform.clock_hz
    memory_s = []
    by_level = []
    e_dram = e_onchip = 0.0
    # per level, in the accesses' order: bits read, written, and on the level's port
    sums: dict[str, list] = {}
    for a in counts.accesses:
        t = sums.get(a.level)
        if t is None:
            t = sums[a.level] = [0, 0, 0]
        t[0] += a.read_bits
        t[1] += a.write_bits
        if a.port:
            t[2] += a.read_bits + a.write_bits
    for lv in platform.memory:
        read, write, shared = sums.get(lv.name, (0, 0, 0))
        bandwidth = lv.bandwidth_bytes_per_s
        if lv.kind == "dram" and counts.dram_efficiency != 1.0:
            bandwidth = bandwidth * counts.dram_efficiency
        memory_s.append((lv.name, shared / 8 / bandwidth))
        e = (read * lv.read_pj_per_bit + write * lv.write_pj_per_bit) * PJ
        by_level.append((lv.name, e))
        if lv.kind == "dram":
            e_dram += e
        else:
            e_onchip += e
    # SCALE-Sim's CALC mode: bandwidth is a computed requirement, never a stall
    stalls = platform.dram_model != "scalesim"
    bounds = [("compute", compute_s), *(memory_s if stalls else ())]
    bound, latency = max(bounds, key=lambda b: b[1])
    if counts.overhead_s > latency:  # more time launching the layer than running it
        bound = "launch"
    latency = latency + counts.overhead_s
    e_mac = counts.macs_done * platform.mac_pj_for(weight_bits, activation_bits) * PJ
    e_index = (
        counts.index_decodes * platform.index_decode_pj
        + counts.pointer_reads * (platform.pointer_read_pj or 0.0)
        + counts.queue_pushes * platform.queue_pj
    ) * PJ
    e_static = platform.static_w * latency
    counted = e_dram + e_onchip + e_mac + e_index + e_static
    # a running chip draws busy_w however little of the counted work the kernel does
    e_busy = max(0.0, platform.busy_w * latency - counted)
    return LayerCost(
        latency_s=latency,
        bound=bound,
        compute_s=compute_s,
        memory_s=tuple(memory_s),
        energy_j=counted + e_busy,
        energy_by_level_j=tuple(by_level),
        energy_dram_j=e_dram,
        energy_sram_j=e_onchip,
        energy_mac_j=e_mac,
        energy_index_j=e_index,
        energy_static_j=e_static,
        energy_busy_j=e_busy,
    )


@dataclass(frozen=True)
class PricePoints:
    """The priced fields of many platforms as arrays, one element per platform: the
    hardware points of a sweep that share their counts (same memory levels, in the
    same order; they differ in clock, bandwidths and energies). :meth:`price` is
    :func:`price`'s arithmetic, operation for operation, element by element, so each
    point's figures equal ``price(counts, platform, ...)`` bit for bit
    (``tests/test_sweep_shared.py``)."""

    platforms: tuple[Platform, ...]

    def __post_init__(self) -> None:
        levels = [(lv.name, lv.kind) for lv in self.platforms[0].memory]
        if any([(lv.name, lv.kind) for lv in p.memory] != levels for p in self.platforms):
            raise ValueError("PricePoints needs platforms with the same memory levels")
        each = self._each
        table = {
            "clock_hz": each(lambda p: p.clock_hz),
            "index_decode_pj": each(lambda p: p.index_decode_pj),
            "pointer_read_pj": each(lambda p: p.pointer_read_pj or 0.0),
            "queue_pj": each(lambda p: p.queue_pj),
            "static_w": each(lambda p: p.static_w),
            "busy_w": each(lambda p: p.busy_w),
        }
        for k in range(len(levels)):
            for f in ("bandwidth_bytes_per_s", "read_pj_per_bit", "write_pj_per_bit"):
                table[f"{k} {f}"] = each(lambda p, k=k, f=f: getattr(p.memory[k], f))
        object.__setattr__(self, "_table", table)
        object.__setattr__(self, "_mac_pj", {})

    def _each(self, value) -> np.ndarray:
        return np.array([value(p) for p in self.platforms], dtype=np.float64)

    def price(
        self, counts: ExecutionCounts, weight_bits: int, activation_bits: int
    ) -> dict[str, np.ndarray]:
        """:func:`price` of one layer's counts on every platform: an array per
        :class:`LayerCost` field (``bound``: level names), without ``memory_s`` and
        ``energy_by_level_j``."""
        t = self._table
        first = self.platforms[0]
        n = len(self.platforms)
        compute_s = counts.compute_cycles / t["clock_hz"]
        memory_s = []
        e_dram = e_onchip = 0.0
        for k, lv in enumerate(first.memory):
            at = [a for a in counts.accesses if a.level == lv.name]
            read = sum(a.read_bits for a in at)
            write = sum(a.write_bits for a in at)
            shared = sum(a.read_bits + a.write_bits for a in at if a.port)
            bandwidth = t[f"{k} bandwidth_bytes_per_s"]
            if lv.kind == "dram" and counts.dram_efficiency != 1.0:
                bandwidth = bandwidth * counts.dram_efficiency
            memory_s.append(shared / 8 / bandwidth)
            e = (read * t[f"{k} read_pj_per_bit"] + write * t[f"{k} write_pj_per_bit"]) * PJ
            if lv.kind == "dram":
                e_dram = e_dram + e
            else:
                e_onchip = e_onchip + e
        stalls = first.dram_model != "scalesim"
        names = ["compute", *(lv.name for lv in first.memory)] if stalls else ["compute"]
        bounds = np.vstack([compute_s, *(memory_s if stalls else ())])
        pick = np.argmax(bounds, axis=0)  # the first largest, as max() picks
        latency = bounds[pick, np.arange(n)]
        names_picked = np.array(names, dtype=object)[pick]
        if counts.overhead_s:
            names_picked = np.where(counts.overhead_s > latency, "launch", names_picked)
        latency = latency + counts.overhead_s
        mac = self._mac_pj.get((weight_bits, activation_bits))
        if mac is None:
            mac = self._each(lambda p: p.mac_pj_for(weight_bits, activation_bits))
            self._mac_pj[(weight_bits, activation_bits)] = mac
        e_mac = counts.macs_done * mac * PJ
        e_index = (
            counts.index_decodes * t["index_decode_pj"]
            + counts.pointer_reads * t["pointer_read_pj"]
            + counts.queue_pushes * t["queue_pj"]
        ) * PJ
        e_static = t["static_w"] * latency
        counted = e_dram + e_onchip + e_mac + e_index + e_static
        e_busy = np.maximum(0.0, t["busy_w"] * latency - counted)
        zeros = np.zeros(n)
        return {
            "latency_s": latency,
            "bound": names_picked,
            "compute_s": compute_s,
            "energy_j": counted + e_busy,
            "energy_dram_j": e_dram + zeros,
            "energy_sram_j": e_onchip + zeros,
            "energy_mac_j": e_mac,
            "energy_index_j": e_index,
            "energy_static_j": e_static,
            "energy_busy_j": e_busy,
        }
