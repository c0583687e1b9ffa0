"""A layer task on a row-stationary platform: its shape and hardware for the search,
and the counts of the chosen mapping as :class:`ExecutionCounts`."""

from __future__ import annotations

from simulator.dataflows.rowstationary.rlc import rlc_bits
from simulator.dataflows.rowstationary.search import RSHardware, RSShape, rs_mapping
from simulator.dataflows.task import LayerTask
from simulator.formats import FormatParams, format_stats
from simulator.hwconfig import Platform
from simulator.layers import Conv2d
from simulator.traffic import Access, ExecutionCounts, ceil_div, utilization

PJ = 1e-12


def rs_shape(task: LayerTask, rows: int, ifmap_spad: int) -> RSShape:
    """The shape the passes cover: structured pruning's surviving groups, filters and
    channels (a column mask keeps whole channel rows: ``ceil(cols / (R*S))``)."""
    layer, g = task.layer, task.effective_gemm()
    if isinstance(layer, Conv2d):
        r, s = layer.kernel_hw
        channels = max(1, ceil_div(g.cols, r * s))
        (h, w), (ph, pw) = layer.input_hw, layer.padding_hw
        shape = dict(
            images=layer.batch,
            out_hw=layer.output_hw,
            in_hw=(h + 2 * ph, w + 2 * pw),
            real_in_hw=(h, w),
            pad_top=ph,
            stride=layer.stride_hw[0],
            dilation=layer.dilation_hw[0],
        )
    else:
        r = s = 1
        channels = g.cols
        shape = dict(
            images=g.n_cols,
            out_hw=(1, 1),
            in_hw=(1, 1),
            real_in_hw=(1, 1),
            pad_top=0,
            stride=1,
            dilation=1,
        )
    cuts = ceil_div(r, rows) * ceil_div(s, ifmap_spad)
    return RSShape(
        groups=g.groups,
        filters=g.rows,
        channels=channels * cuts,
        kernel=(ceil_div(r, ceil_div(r, rows)), ceil_div(s, ceil_div(s, ifmap_spad))),
        row_chunks=cuts,
        **shape,
    )


def _coded_bits(
    task: LayerTask, platform: Platform, values: int, kv_values: int, density: float
) -> float:
    """Bits of ``values`` activations run-length coded at the activation width; the
    ``kv_values`` of them that are KV-cache elements, where the cache has a width of
    its own, are coded apart at that width (a separate stream of words)."""
    rs = platform.compute.row_stationary

    def coded(n: float, level_bits: int) -> float:
        return rlc_bits(
            n, density, run_bits=rs.run_bits, level_bits=level_bits, word_bits=rs.word_bits
        )

    if not kv_values or task.kv_width_bits == task.activation_bits:
        return coded(values, task.activation_bits)
    rest = coded(values - kv_values, task.activation_bits) if values > kv_values else 0.0
    return rest + coded(kv_values, task.kv_width_bits)


def rs_hardware(task: LayerTask, platform: Platform, weight_bits: float) -> RSHardware:
    """The array, spads, GLB, prices and the coded ifmap width a search sees for ``task``
    (``weight_bits``: stored bits per weight, metadata included)."""
    c, rs = platform.compute, platform.compute.row_stationary
    glb, dram = platform.level("sram"), platform.level("dram")
    spad, net = platform.level("regfile"), platform.level("network")
    ab = task.activation_bits
    inputs = max(1, task.input_count)
    in_bits = _coded_bits(task, platform, inputs, task.kv_input_count, task.activation_density)
    return RSHardware(
        rows=c.array_rows,
        cols=c.array_cols,
        filter_spad=rs.filter_spad,
        ifmap_spad=rs.ifmap_spad,
        psum_spad=rs.psum_spad,
        glb_bits=8.0 * glb.size_bytes,
        activation_bits=ab,
        weight_bits=weight_bits,
        dram_bits_per_cycle=8 * dram.bandwidth_bytes_per_s / platform.clock_hz,
        filter_load_stalls=rs.filter_load_stalls,
        prices=(
            dram.read_pj_per_bit,
            glb.read_pj_per_bit,
            spad.read_pj_per_bit if spad is not None else 0.0,
            net.read_pj_per_bit if net is not None else 0.0,
            platform.static_w / platform.clock_hz / PJ,
            in_bits / inputs,
        ),
    )


def run_rowstationary(task: LayerTask, platform: Platform) -> ExecutionCounts:
    """Counts of one layer on a row-stationary array (``execution: rowstationary``)."""
    c, rs = platform.compute, platform.compute.row_stationary
    wb, ab = task.weight_bits, task.activation_bits
    full, g = task.gemm, task.effective_gemm()
    meta = 0.0
    if task.variant == "structured":
        meta = format_stats(task.profile, "compact", FormatParams(weight_bits=wb)).other_bits
    per_weight = wb + meta / max(1, g.groups * g.rows * g.cols)
    hw = rs_hardware(task, platform, per_weight)
    shape = rs_shape(task, c.array_rows, rs.ifmap_spad)
    mp = rs_mapping(shape, hw)
    slots = g.macs
    done = slots * task.activation_density if c.zero_gating else float(slots)
    dram, glb = platform.level("dram").name, platform.level("sram").name
    spad, net = platform.level("regfile"), platform.level("network")
    out_density = task.activation_density if task.output_density is None else task.output_density
    out_bits = _coded_bits(task, platform, task.output_count, task.kv_output_count, out_density)

    def access(level: str, operand: str, read: float, write: float) -> Access:
        return Access(level=level, operand=operand, read_bits=float(read), write_bits=float(write))

    accesses = [
        access(dram, "weights", mp.dram_weight_reads * wb, 0),
        access(dram, "metadata", mp.dram_weight_reads * (per_weight - wb), 0),
        access(dram, "inputs", mp.dram_input_elements * hw.prices[-1], 0),
        access(dram, "outputs", 0, out_bits),
        access(glb, "inputs", mp.glb_input_reads * ab, mp.glb_input_writes * ab),
        access(glb, "psums", mp.glb_psum_reads * ab, mp.glb_psum_writes * ab),
        access(glb, "outputs", mp.glb_output_reads * ab, 0),
    ]
    if spad is not None:
        accesses += [
            access(spad.name, "weights", done * wb, mp.spad_filter_writes * wb),
            access(spad.name, "inputs", slots * ab, mp.spad_ifmap_writes * ab),
            access(spad.name, "psums", slots * ab, slots * ab),
        ]
    if net is not None:
        accesses.append(access(net.name, "psums", mp.array_psum_moves * ab, 0))
    cycles = mp.compute_cycles + mp.stall_cycles
    rows, cols = c.array_rows, c.array_cols
    return ExecutionCounts(
        engine=f"row-stationary {rows}x{cols}",
        macs_dense=task.layer.macs,
        macs_done=float(done),
        macs_gated=float(slots - done),
        macs_skipped=float(max(0, full.macs - slots)),
        index_decodes=0.0,
        compute_cycles=float(cycles),
        pe_utilization=utilization(task.profile.nnz * full.n_cols, rows * cols, cycles),
        accesses=tuple(accesses),
        words={
            f"{a.level}_{a.operand}_{kind}_bits": bits
            for a in accesses
            for kind, bits in (("read", a.read_bits), ("write", a.write_bits))
            if bits
        },
        mapping=mp,
    )
