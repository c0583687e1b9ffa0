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

Off-chip traffic follows ``compute.dram_model``: prunesim's heuristic (default,
:func:`_dram`), SCALE-Sim's own counting (:mod:`simulator.dataflows.scalesim`), or
``mapped``: the loop nest :mod:`simulator.mapping` chooses per layer (DRAM from its
re-fetch factors and partial-sum spills; its buffer and register-file counts are
reported as per-layer columns, while the priced SRAM accesses stay those above).
"""

from __future__ import annotations

from simulator.dataflows.scalesim import dram_words
from simulator.dataflows.task import LayerTask
from simulator.formats import FormatParams, format_stats
from simulator.hwconfig import Platform
from simulator.layers import GemmView
from simulator.mapping import Budget, LoopNest, Prices, map_gemm
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


ACCUMULATOR_BITS = 32
"""Width of a spilled partial sum (int32 or fp32 accumulators)."""


def _dram(
    task: LayerTask,
    dataflow: str,
    buffer_bytes: float,
    rf: int,
    cf: int,
    value_bits: float,
    meta_bits: float,
    level: str,
) -> tuple[Access, ...]:
    """Off-chip traffic. Each operand gets a third of the buffer (SCALE-Sim's split).
    The stationary operand is fetched once; a streamed one once per fold of the other
    mapped dimension when it does not fit (:func:`refetch_factor`). Partial sums spill
    at accumulator width when the reduction is split over folds (ws, is) and the
    outputs do not fit. Activations stay on chip between layers when a layer's inputs
    and outputs fit in the buffer together."""
    share = buffer_bytes / 3
    in_bits = task.input_count * task.activation_bits
    out_bits = task.output_count * task.activation_bits
    w_bytes = (value_bits + meta_bits) / 8
    in_refetch = w_refetch = 1
    if dataflow == "ws":
        in_refetch = refetch_factor(in_bits / 8, share, cf)
    elif dataflow == "os":
        in_refetch = refetch_factor(in_bits / 8, share, cf)
        w_refetch = refetch_factor(w_bytes, share, rf)
    else:
        w_refetch = refetch_factor(w_bytes, share, cf)
    spill = 0.0
    outputs = task.output_count
    if dataflow != "os" and rf > 1 and outputs * ACCUMULATOR_BITS / 8 > share:
        spill = outputs * ACCUMULATOR_BITS * (rf - 1)
    if (in_bits + out_bits) / 8 <= buffer_bytes:
        in_bits = out_bits = 0.0
        in_refetch = 1
    return dram_accesses(
        level=level,
        weight_value_bits=value_bits,
        weight_metadata_bits=meta_bits,
        input_bits=in_bits,
        output_bits=out_bits,
        input_refetch=in_refetch,
        weight_refetch=w_refetch,
        psum_spill_bits=spill,
    )


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
    # zero gating: a zero weight or a zero activation leaves the multiplier idle
    gated = slots - useful * task.activation_density if c.zero_gating else 0
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
    words = None
    nest = None
    if dram is not None and platform.dram_model == "scalesim":
        d_in, d_w, d_out = dram_words(task, g, platform, rows, cols, c.dataflow)
        engine += ", SCALE-Sim memory"
        words = {"dram_ifmap_words": d_in, "dram_filter_words": d_w, "dram_ofmap_words": d_out}
        accesses += [
            Access(level=dram.name, operand="inputs", read_bits=d_in * ab, write_bits=0.0),
            Access(level=dram.name, operand="weights", read_bits=d_w * wb, write_bits=0.0),
            Access(level=dram.name, operand="outputs", read_bits=0.0, write_bits=d_out * ab),
        ]
    elif dram is not None and platform.dram_model == "mapped":
        nest = _mapped(platform, g, rows, cols, value_bits + meta_bits, ab, cycles)
        engine += ", mapped"
        words = _mapping_words(nest)
        psums = nest.operand("psums")
        accesses += dram_accesses(
            level=dram.name,
            weight_value_bits=value_bits,
            weight_metadata_bits=meta_bits,
            input_bits=g.groups * g.cols * g.n_cols * ab,
            output_bits=nest.operand("outputs").dram_write_bits,
            input_refetch=nest.input_refetch,
            weight_refetch=nest.weight_refetch,
            psum_spill_bits=psums.dram_write_bits,
        )
    elif dram is not None:
        accesses += _dram(
            task,
            c.dataflow,
            buffer.size_bytes if buffer else 0.0,
            rf,
            cf,
            value_bits,
            meta_bits,
            dram.name,
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
        words=words,
        mapping=nest,
    )


def _mapped(
    platform: Platform,
    g: GemmView,
    rows: int,
    cols: int,
    weight_bits_total: float,
    activation_bits: int,
    cycles: int,
) -> LoopNest:
    """The loop nest of ``g`` (``compute.dram_model: mapped``, :mod:`simulator.mapping`):
    its buffers are the profile's ifmap, filter and ofmap SRAMs when
    ``scalesim_sram_bytes`` gives them, else its sram level as one shared buffer (none:
    nothing fits, the smallest tiles are used). Weights count at their stored width,
    metadata included (bits per weight of the effective GEMM)."""
    given = platform.scalesim_sram_bytes
    buffer = platform.level("sram")
    if given:
        budget = Budget(
            weights=8.0 * given["filter"],
            inputs=8.0 * given["ifmap"],
            outputs=8.0 * given["ofmap"],
        )
    else:
        budget = Budget(shared=8.0 * buffer.size_bytes if buffer is not None else 0.0)
    dram = platform.level("dram")
    prices = Prices(
        dram_read_pj=dram.read_pj_per_bit,
        dram_write_pj=dram.write_pj_per_bit,
        buffer_read_pj=buffer.read_pj_per_bit if buffer is not None else 0.0,
        buffer_write_pj=buffer.write_pj_per_bit if buffer is not None else 0.0,
        compute_s=cycles / platform.clock_hz,
        dram_bytes_per_s=dram.bandwidth_bytes_per_s,
    )
    per_weight = weight_bits_total / max(1, g.groups * g.rows * g.cols)
    return map_gemm(
        groups=g.groups,
        dims=(g.rows, g.cols, g.n_cols),
        array=(rows, cols),
        dataflow=platform.compute.dataflow,
        weight_bits=per_weight,
        activation_bits=activation_bits,
        budget=budget,
        psum_bits=platform.psum_bits,
        objective=platform.mapping_objective,
        prices=prices,
    )


def _mapping_words(nest: LoopNest) -> dict[str, float]:
    """Per-operand counts of a mapping as flat per-layer columns: DRAM in bits, buffer
    and register file in elements."""
    out: dict[str, float] = {}
    for t in nest.traffic:
        out[f"dram_{t.operand}_read_bits"] = t.dram_read_bits
        out[f"dram_{t.operand}_write_bits"] = t.dram_write_bits
        out[f"buffer_{t.operand}_reads"] = float(t.buffer_reads)
        out[f"buffer_{t.operand}_writes"] = float(t.buffer_writes)
        out[f"regfile_{t.operand}_reads"] = float(t.regfile_reads)
        out[f"regfile_{t.operand}_writes"] = float(t.regfile_writes)
    return out
