"""Action counts of executing one layer: bits per memory level and operand, MACs
done, gated and skipped, cycles and PE utilization. Counts only: prices live in
:mod:`simulator.cost`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

OPERANDS = ("weights", "metadata", "inputs", "outputs", "psums")
"""Operands of a layer's traffic: weight values, weight metadata (indices, pointers,
fillers, survivor lists), input activations, outputs, partial sums."""


class Mapped(Protocol):
    """A per-layer mapping an engine chose (:class:`simulator.mapping.LoopNest`, a
    row-stationary mapping): printable as its loop nest."""

    def loop_nest(self, indent: bool = False) -> str: ...


@dataclass(frozen=True, kw_only=True)
class Access:
    """Bits read from and written to one memory level for one operand. ``port``:
    whether they share the level's bandwidth (False for partial-sum accumulation in
    accumulators at the array's edge, which have their own port)."""

    level: str
    operand: str
    read_bits: float
    write_bits: float
    port: bool = True


@dataclass(frozen=True, kw_only=True)
class ExecutionCounts:
    """What executing one layer on one engine costs, in counts.

    ``macs_done`` are MACs the datapath performs on real operands; ``macs_gated``
    are performed slots whose zero operand gates the multiplier (no MAC energy);
    ``macs_skipped`` are never scheduled. ``index_decodes`` counts stored entries
    decoded (kept values and fillers). ``compute_cycles`` is the compute bound at
    the platform clock; ``pe_utilization`` = useful MACs / (MAC slots x cycles);
    ``load_balance`` = mean / max PE busy cycles for mask-driven engines.
    ``pointer_reads`` and ``queue_pushes`` are the EIE engine's column-pointer reads
    and activations queued at a PE, where its profile prices them per event.
    ``dram_efficiency`` is the fraction of the DRAM levels' bandwidth at which the
    layer's DRAM traffic streams (1: the full bandwidth; a CPU or GPU matrix-vector
    product streams its weights at the profile's GEMV fraction); ``overhead_s`` is
    time added to the latency whichever bound sets it (a CPU or GPU kernel's launch
    and synchronisation).
    """

    engine: str
    macs_dense: int
    macs_done: float
    macs_gated: float
    macs_skipped: float
    index_decodes: float
    compute_cycles: float
    pe_utilization: float
    accesses: tuple[Access, ...]
    load_balance: float = 1.0
    pointer_reads: float = 0.0
    queue_pushes: float = 0.0
    dram_efficiency: float = 1.0
    overhead_s: float = 0.0
    weight_room_left_bits: tuple[float, ...] | None = None
    """Weight SRAM left free on each PE after this layer's resident weights (engines that
    keep weights on chip across inferences); None: the engine does not."""
    words: Mapping[str, float] | None = None
    """Extra counts an engine reports in its own units, as flat columns of the
    per-layer table (SCALE-Sim mode: ``dram_ifmap_words`` and the like)."""
    mapping: Mapped | None = None
    """The mapping chosen for the layer (``dram_model: mapped``, row stationary), else None."""

    def bits(self, level: str, operand: str | None = None) -> float:
        """Read plus written bits at a level (optionally for one operand)."""
        return sum(
            a.read_bits + a.write_bits
            for a in self.accesses
            if a.level == level and (operand is None or a.operand == operand)
        )


def refetch_factor(operand_bytes: float, buffer_bytes: float, passes: int) -> int:
    """How many times an operand crosses from DRAM: once when it fits in its buffer;
    else once per pass of the loop that reuses it, but no more often than the number
    of buffer-sized chunks it spans (a tiled schedule re-fetches chunk by chunk)."""
    if operand_bytes <= buffer_bytes:
        return 1
    chunks = math.ceil(operand_bytes / buffer_bytes) if buffer_bytes > 0 else passes
    return max(1, min(int(passes), chunks))


def dram_accesses(
    *,
    level: str,
    weight_value_bits: float,
    weight_metadata_bits: float,
    input_bits: float,
    output_bits: float,
    input_refetch: int = 1,
    weight_refetch: int = 1,
    psum_spill_bits: float = 0.0,
) -> tuple[Access, ...]:
    """Off-chip traffic of a layer: weights (values and metadata) and inputs read
    (``*_refetch`` times), outputs written once, partial sums spilled and re-read."""
    out = [
        Access(
            level=level,
            operand="weights",
            read_bits=weight_value_bits * weight_refetch,
            write_bits=0.0,
        ),
        Access(
            level=level,
            operand="metadata",
            read_bits=weight_metadata_bits * weight_refetch,
            write_bits=0.0,
        ),
        Access(level=level, operand="inputs", read_bits=input_bits * input_refetch, write_bits=0.0),
        Access(level=level, operand="outputs", read_bits=0.0, write_bits=output_bits),
    ]
    if psum_spill_bits:
        out.append(
            Access(
                level=level, operand="psums", read_bits=psum_spill_bits, write_bits=psum_spill_bits
            )
        )
    return tuple(out)


def utilization(useful_macs: float, mac_slots_per_cycle: float, cycles: float) -> float:
    """Useful MACs over available MAC slots, within [0, 1]."""
    if cycles <= 0 or mac_slots_per_cycle <= 0:
        return 0.0
    return min(1.0, useful_macs / (mac_slots_per_cycle * cycles))


def ceil_div(a: int, b: int) -> int:
    return -(-int(a) // int(b))
