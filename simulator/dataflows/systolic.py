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
``mapped``: the loop nest :mod:`simulator.mapping` chooses per layer; its DRAM,
buffer and (where the profile has one) register-file counts are the priced accesses,
and per-operand columns of the per-layer output.
"""

from __future__ import annotations

from simulator.dataflows.scalesim import dram_words
from simulator.dataflows.task import LayerTask
from simulator.formats import FormatParams, format_stats
from simulator.hwconfig import Platform
from simulator.layers import GemmView
from simulator.mapping import Budget, LoopNest, Prices, Window, map_gemm
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


def systolic_cycles(
    g: GemmView,
    rows: int,
    cols: int,
    dataflow: str,
    lanes: int = 1,
    double_buffered: bool = False,
) -> tuple[int, int, int]:
    """(cycles, row folds, column folds) of a dense GEMM view on a ``rows x cols`` array;
    cycles as SCALE-Sim reports them (sum over the folds of every group, minus one).

    ``lanes`` copies of the array share its stationary operand and split the streamed
    dimension (a DPU's pixel parallelism). ``double_buffered``: the next fold's
    stationary operand loads while the current fold streams (a fold costs the longer
    of the two) and the array fills and drains once per layer."""
    reduction, filters, outputs = g.cols, g.rows, g.n_cols
    a, b, t = {
        "ws": (reduction, filters, outputs),
        "os": (outputs, filters, reduction),
        "is": (reduction, outputs, filters),
    }[dataflow]
    rf, cf = ceil_div(a, rows), ceil_div(b, cols)
    t = ceil_div(t, lanes)
    folds = g.groups * rf * cf
    if double_buffered:
        load = 0 if dataflow == "os" else rows
        return folds * max(t, load) + rows + cols - 2 - 1, rf, cf
    return folds * fold_cycles(rows, cols, t, dataflow) - 1, rf, cf


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
    in_bits = task.input_bits  # KV-cache elements at their own width
    out_bits = task.output_bits
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
    task: LayerTask,
    platform: Platform,
    rows: int | None = None,
    cols: int | None = None,
    lanes: int = 1,
    double_buffered: bool = False,
) -> ExecutionCounts:
    """Counts of one layer on a dense systolic array (default: the profile's array),
    ``lanes`` copies wide (see :func:`systolic_cycles`)."""
    c = platform.compute
    rows, cols = rows or c.array_rows, cols or c.array_cols
    wb = task.weight_bits
    p = task.profile
    full = task.gemm
    g = task.effective_gemm()
    nm = c.nm_sparse
    value_bits = g.groups * g.rows * g.cols * wb
    meta_bits = 0.0
    engine = f"systolic {rows}x{cols}{f'x{lanes}' if lanes > 1 else ''} {c.dataflow}"
    if task.variant == "structured":
        meta_bits = format_stats(p, "compact", FormatParams(weight_bits=wb)).other_bits
    dense_k = g.cols
    if task.variant == "nm" and nm is not None:
        st = format_stats(p, "nm", FormatParams(weight_bits=wb, nm=(nm.n, nm.m)))
        if st.representable:
            g = GemmView(
                groups=g.groups, rows=g.rows, cols=ceil_div(g.cols * nm.n, nm.m), n_cols=g.n_cols
            )
            value_bits, meta_bits = st.values_bits + st.fillers_bits, st.indices_bits
            engine += f", {nm.n}:{nm.m} sparse"
    cycles, rf, cf = systolic_cycles(g, rows, cols, c.dataflow, lanes, double_buffered)
    slots = g.macs
    useful = p.nnz * full.n_cols
    # zero gating: a zero weight or a zero activation leaves the multiplier idle
    gated = slots - useful * task.activation_density if c.zero_gating else 0
    dram = platform.level("dram")
    buffer = next((lv for lv in platform.memory if lv.kind == "sram"), None)
    words = None
    nest = None
    accesses: list[Access] = []
    if dram is not None and platform.dram_model == "mapped":
        nest = _mapped(task, platform, dense_k, value_bits + meta_bits, rows, cols, cycles)
        engine += ", mapped"
        words = _mapping_words(nest)
        accesses += _nest_accesses(nest, platform, meta_bits / (value_bits + meta_bits or 1))
    else:
        ins, wts, outs = sram_reads(g, c.dataflow, rf, cf)
        # per-element widths: the bit-weighted mean where KV-cache elements are among them
        iw, ow = task.input_width_bits, task.output_width_bits
        if buffer is not None:
            accesses += [
                Access(level=buffer.name, operand="inputs", read_bits=ins * iw, write_bits=0.0),
                Access(level=buffer.name, operand="weights", read_bits=wts * wb, write_bits=0.0),
                Access(level=buffer.name, operand="outputs", read_bits=0.0, write_bits=outs * ow),
            ]
    if dram is not None and platform.dram_model == "scalesim":
        d_in, d_w, d_out = dram_words(task, g, platform, rows, cols, c.dataflow)
        engine += ", SCALE-Sim memory"
        words = {"dram_ifmap_words": d_in, "dram_filter_words": d_w, "dram_ofmap_words": d_out}
        accesses += [
            Access(
                level=dram.name,
                operand="inputs",
                read_bits=d_in * task.input_width_bits,
                write_bits=0.0,
            ),
            Access(level=dram.name, operand="weights", read_bits=d_w * wb, write_bits=0.0),
            Access(
                level=dram.name,
                operand="outputs",
                read_bits=0.0,
                write_bits=d_out * task.output_width_bits,
            ),
        ]
    elif dram is not None and platform.dram_model != "mapped":
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
        pe_utilization=utilization(useful, rows * cols * lanes, cycles),
        accesses=tuple(accesses),
        words=words,
        mapping=nest,
    )


def window_of(task: LayerTask, channels: int) -> Window | None:
    """The convolution behind a layer's GEMM (``channels`` input channels per group
    remain), or None for a layer whose inputs are its GEMM columns."""
    layer = task.layer
    if layer.kind != "conv2d":
        return None
    return Window(
        channels=channels,
        kernel=layer.kernel_hw,
        input_hw=layer.input_hw,
        output_hw=layer.output_hw,
        stride=layer.stride_hw,
        padding=layer.padding_hw,
        dilation=layer.dilation_hw,
        images=layer.batch,
    )


def _mapped(
    task: LayerTask,
    platform: Platform,
    dense_k: int,
    weight_bits_total: float,
    rows: int,
    cols: int,
    cycles: int,
) -> LoopNest:
    """The loop nest of the layer (``compute.dram_model: mapped``, :mod:`simulator.mapping`)
    over its effective GEMM, the reduction at its dense length ``dense_k`` (an N:M unit
    skips reduction steps, not the inputs they read). Buffers: the profile's ifmap,
    filter and ofmap SRAMs when ``scalesim_sram_bytes`` gives them, else its sram level
    shared (none: nothing fits, the smallest tiles are used). Weights count at their
    stored width, metadata included.

    **Activations on chip.** When the layer's whole input and output (activation width)
    fit in the buffer beside a weight tile and a tile of partial sums, they may stay
    there (no DRAM traffic for them) if that mapping ranks first on the objective (the
    input is taken to be the previous layer's output,
    left in the buffer; a producer whose own input and output did not fit wrote it to
    DRAM instead, which this layer-by-layer rule does not charge)."""
    g = task.effective_gemm()
    r, s = task.layer.kernel_hw if task.layer.kind == "conv2d" else (1, 1)
    window = window_of(task, dense_k // (r * s))
    ab = task.activation_bits
    if task.kv_input_count or task.kv_output_count:
        # a loop nest tiles inputs and outputs at one element width: with KV-cache
        # elements among them, the bit-weighted mean over the layer's inputs and outputs
        ab = (task.input_bits + task.output_bits) / max(1, task.input_count + task.output_count)
    given = platform.scalesim_sram_bytes
    buffer = platform.level("sram")
    dram = platform.level("dram")
    prices = Prices(
        dram_read_pj=dram.read_pj_per_bit,
        dram_write_pj=dram.write_pj_per_bit,
        buffer_read_pj=buffer.read_pj_per_bit if buffer is not None else 0.0,
        buffer_write_pj=buffer.write_pj_per_bit if buffer is not None else 0.0,
        compute_s=cycles / platform.clock_hz,
        dram_bytes_per_s=dram.bandwidth_bytes_per_s,
        buffer_bits_per_s=8 * buffer.bandwidth_bytes_per_s if buffer is not None else float("inf"),
    )
    kw = dict(
        groups=g.groups,
        dims=(g.rows, dense_k, g.n_cols),
        array=(rows, cols),
        dataflow=platform.compute.dataflow,
        weight_bits=weight_bits_total / max(1, g.groups * g.rows * dense_k),
        activation_bits=ab,
        psum_bits=platform.psum_bits,
        objective=platform.mapping_objective,
        prices=prices,
        window=window,
    )
    ins, outs = task.input_bits, task.output_bits
    if given:
        sizes = {k: 8.0 * v for k, v in given.items()}
        budget = Budget(weights=sizes["filter"], inputs=sizes["ifmap"], outputs=sizes["ofmap"])
        room = Budget(weights=sizes["filter"], inputs=0.0, outputs=sizes["ofmap"] - outs)
        resident = ins <= sizes["ifmap"] and outs < sizes["ofmap"]
    else:
        size = 8.0 * buffer.size_bytes if buffer is not None else 0.0
        budget = Budget(shared=size)
        room = Budget(shared=size - ins - outs)
        resident = ins + outs < size
    nests = [map_gemm(**kw, budget=budget)]  # memoised by its arguments
    if resident:  # else no tile fits beside the activations: no second search
        nests.append(map_gemm(**kw, budget=room, on_chip=True))
    return min((x for x in nests if x.fits), key=lambda x: x.score, default=nests[0])


def _nest_accesses(nest: LoopNest, platform: Platform, meta_share: float) -> list[Access]:
    """What a loop nest moves, per level and operand: DRAM (weights split into values
    and metadata by ``meta_share``), the buffer (every array delivery, fill and drain
    at the operand's width; partial sums accumulated at ``psum_bits`` over every
    reduction fold but the last, off the buffer's port, as in accumulators at the
    array's edge) and, where the profile has one, the register file."""
    dram = platform.level("dram")
    buffer = platform.level("sram")
    regfile = platform.level("regfile")
    pb = nest.psum_bits
    width = {"weights": nest.weight_bits, "inputs": nest.activation_bits}
    out = []
    w, i, o, p = (nest.operand(x) for x in ("weights", "inputs", "outputs", "psums"))
    out += [
        Access(
            level=dram.name,
            operand="weights",
            read_bits=w.dram_read_bits * (1 - meta_share),
            write_bits=0.0,
        ),
        Access(
            level=dram.name,
            operand="metadata",
            read_bits=w.dram_read_bits * meta_share,
            write_bits=0.0,
        ),
        Access(level=dram.name, operand="inputs", read_bits=i.dram_read_bits, write_bits=0.0),
        Access(level=dram.name, operand="outputs", read_bits=0.0, write_bits=o.dram_write_bits),
    ]
    if p.dram_write_bits:
        out.append(
            Access(
                level=dram.name,
                operand="psums",
                read_bits=p.dram_read_bits,
                write_bits=p.dram_write_bits,
            )
        )
    if buffer is not None:
        ab = nest.activation_bits
        outs = nest.groups * nest.dims[0] * nest.dims[2]
        drain = 0 if nest.activations_on_chip else outs * ab
        out += [
            Access(
                level=buffer.name,
                operand="weights",
                read_bits=w.buffer_reads * width["weights"],
                write_bits=w.dram_read_bits,
            ),
            Access(
                level=buffer.name,
                operand="inputs",
                read_bits=i.buffer_reads * ab,
                write_bits=i.dram_read_bits,
            ),
            Access(level=buffer.name, operand="outputs", read_bits=drain, write_bits=outs * ab),
            Access(
                level=buffer.name,
                operand="accumulation",
                read_bits=(o.buffer_reads - outs) * pb,
                write_bits=(o.buffer_writes - outs) * pb,
                port=False,
            ),
        ]
        if p.buffer_reads:
            out.append(
                Access(
                    level=buffer.name,
                    operand="psums",
                    read_bits=p.buffer_reads * pb,
                    write_bits=p.buffer_writes * pb,
                )
            )
    if regfile is not None:
        for t in (w, i, o):
            bits = width[t.operand] if t.operand != "outputs" else pb
            if t.regfile_reads or t.regfile_writes:
                out.append(
                    Access(
                        level=regfile.name,
                        operand=t.operand,
                        read_bits=t.regfile_reads * bits,
                        write_bits=t.regfile_writes * bits,
                    )
                )
    return out


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
