"""Prices: action counts times a platform's table give energy (J) and latency (s).

Latency is the largest of the compute bound and each memory level's bandwidth
bound (transfers overlap compute; accesses off the level's port, such as partial-sum
accumulation, take none of it); the result names the bound that set it.
Energy is the sum over levels of bits x pJ/bit, MACs x pJ/MAC at the layer's
precision (gated MACs cost nothing), sparse bookkeeping (index decodes, and where a
profile prices them per event, column-pointer reads and activation-queue operations)
x pJ, and static power x latency; where the profile gives ``busy_w`` (the power a CPU
or GPU draws while it runs a kernel, whatever the kernel does), no less than busy_w x
latency: the difference is ``energy_busy_j``.
"""

from __future__ import annotations

from dataclasses import dataclass

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
    for lv in platform.memory:
        at = [a for a in counts.accesses if a.level == lv.name]
        read = sum(a.read_bits for a in at)
        write = sum(a.write_bits for a in at)
        shared = sum(a.read_bits + a.write_bits for a in at if a.port)
        memory_s.append((lv.name, shared / 8 / lv.bandwidth_bytes_per_s))
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
