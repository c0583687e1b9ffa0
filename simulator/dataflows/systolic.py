"""Dense systolic array, weight-, output- or input-stationary (SCALE-Sim's model).

Per group, the GEMM of a layer maps two of its dimensions onto the array and
streams the third through it:

====  ===================  ===================  =============
flow  array rows           array columns        streamed (T)
====  ===================  ===================  =============
ws    reduction (C/g·R·S)  filters (K/g)        outputs N·P·Q
os    outputs N·P·Q        filters (K/g)        reduction
is    reduction            outputs N·P·Q        filters
====  ===================  ===================  =============

Each fold (tile of the two mapped dimensions) costs T cycles to stream plus the
skew of the array to fill and drain, rows + cols − 2, plus, for ws and is, rows
cycles to load the stationary operand first (SCALE-Sim v3,
``systolic_compute_{ws,os,is}``: prefix, suffix and skew of each fold's demand
matrix). Like SCALE-Sim's report, a layer's count is the index of its last
cycle: the sum over folds minus one, so that the two agree exactly.
Structured pruning shrinks the mapped dimensions; a non-structured mask saves
no cycle (its zero weights may gate the multipliers if the array gates). An
N:M unit, where the profile has one, streams only N of every M reduction
elements.
"""

from __future__ import annotations

from simulator.dataflows.task import LayerTask
from simulator.formats import FormatParams, format_stats
from simulator.hwconfig import Platform
from simulator.layers import GemmView
from simulator.traffic import (
    Access,
    ExecutionCounts,
    ceil_div,
    dram_accesses,
    refetch_factor,
    utilization,
)


def fold_cycles(rows: int, cols: int, temporal: int, dataflow: str) -> int:
    """Cycles of one fold: load the stationary operand (ws, is), stream, fill and drain."""
    load = 0 if dataflow == "os" else rows
    return load + rows + cols + temporal - 2


def systolic_cycles(g: GemmView, rows: int, cols: int, dataflow: str) -> tuple[int, int, int]:
    """(cycles, row folds, column folds) of a dense GEMM view on a ``rows x cols`` array;
    cycles as SCALE-Sim reports them (sum over the folds of every group, minus one)."""
    reduction, filters, outputs = g.cols, g.rows, g.n_cols
    a, b, t = {
        "ws": (reduction, filters, outputs),
        "os": (outputs, filters, reduction),
        "is": (reduction, outputs, filters),
    }[dataflow]
    rf, cf = ceil_div(a, rows), ceil_div(b, cols)
    return g.groups * rf * cf * fold_cycles(rows, cols, t, dataflow) - 1, rf, cf


def sram_reads(g: GemmView, dataflow: str, rf: int, cf: int) -> tuple[int, int, int]:
    """(input reads, weight reads, output writes) in elements, per SCALE-Sim's counting:
    the stationary operand is read once, the streamed one once per fold of the other
    mapped dimension, and outputs written once per fold of the reduction."""
    red, fil, out = g.cols, g.rows, g.n_cols
    if dataflow == "ws":
        ins, wts, outs = out * red * cf, red * fil, out * fil * rf
    elif dataflow == "os":
        ins, wts, outs = out * red * cf, red * fil * rf, out * fil
    else:
        ins, wts, outs = red * out, red * fil * cf, out * fil * rf
    return g.groups * ins, g.groups * wts, g.groups * outs


def run_systolic(
    task: LayerTask, platform: Platform, rows: int | None = None, cols: int | None = None
) -> ExecutionCounts:
    """Counts of one layer on a dense systolic array (default: the profile's array)."""
    c = platform.compute
    rows, cols = rows or c.array_rows, cols or c.array_cols
    wb, ab = task.weight_bits, task.activation_bits
    p = task.profile
    full = task.gemm
    g = task.effective_gemm()
    nm = c.nm_sparse
    value_bits = g.groups * g.rows * g.cols * wb
    meta_bits = 0.0
    engine = f"systolic {rows}x{cols} {c.dataflow}"
    if task.variant == "structured":
        meta_bits = format_stats(p, "compact", FormatParams(weight_bits=wb)).other_bits
    if task.variant == "nm" and nm is not None:
        st = format_stats(p, "nm", FormatParams(weight_bits=wb, nm=(nm.n, nm.m)))
        if st.representable:
            g = GemmView(
                groups=g.groups, rows=g.rows, cols=ceil_div(g.cols * nm.n, nm.m), n_cols=g.n_cols
            )
            value_bits, meta_bits = st.values_bits + st.fillers_bits, st.indices_bits
            engine += f", {nm.n}:{nm.m} sparse"
    cycles, rf, cf = systolic_cycles(g, rows, cols, c.dataflow)
    slots = g.macs
    useful = p.nnz * full.n_cols
    gated = slots - useful if c.zero_gating else 0
    ins, wts, outs = sram_reads(g, c.dataflow, rf, cf)
    accesses = []
    buffer = next((lv for lv in platform.memory if lv.kind == "sram"), None)
    if buffer is not None:
        accesses += [
            Access(level=buffer.name, operand="inputs", read_bits=ins * ab, write_bits=0.0),
            Access(level=buffer.name, operand="weights", read_bits=wts * wb, write_bits=0.0),
            Access(level=buffer.name, operand="outputs", read_bits=0.0, write_bits=outs * ab),
        ]
    dram = platform.level("dram")
    if dram is not None:
        size = buffer.size_bytes if buffer is not None else 0.0
        in_bits = task.layer.input_count * ab
        out_bits = task.layer.output_count * ab
        accesses += dram_accesses(
            level=dram.name,
            weight_value_bits=value_bits,
            weight_metadata_bits=meta_bits,
            input_bits=in_bits,
            output_bits=out_bits,
            input_refetch=refetch_factor(in_bits / 8, size / 3, cf),
            psum_spill_bits=0.0 if rf == 1 or out_bits / 8 <= size / 3 else out_bits * (rf - 1),
        )
    return ExecutionCounts(
        engine=engine,
        macs_dense=task.layer.macs,
        macs_done=float(slots - gated),
        macs_gated=float(gated),
        macs_skipped=float(max(0, full.macs - slots)),
        index_decodes=float(p.nnz if task.variant == "nm" and nm is not None else 0),
        compute_cycles=float(cycles),
        pe_utilization=utilization(useful, rows * cols, cycles),
        accesses=tuple(accesses),
    )
