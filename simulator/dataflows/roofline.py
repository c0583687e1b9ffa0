"""CPU and GPU: a per-layer roofline with separate dense-GEMM and sparse-kernel terms.

- dense and structured: a dense GEMM of the (remaining) problem at the profile's
  dense efficiency of peak;
- sparse: CSR SpMM: kept MACs at the sparse efficiency of peak, plus a cost per
  stored entry and per row; the weights move as CSR with the kernel's index and
  pointer widths (32-bit in cuSPARSE/MKL), the activations are gathered;
- nm: where the profile has an N:M unit and the mask fits it, the dense GEMM
  ``speedup`` times faster, with ceil(log2 M)-bit metadata per kept value.

Every layer also pays the profile's fixed ``layer_overhead_ns`` (kernel launch and
synchronisation). Compute time is expressed in cycles of the profile's clock. Traffic is counted
at DRAM and, staged through once, at the largest on-chip level.
"""

from __future__ import annotations

from simulator.dataflows.task import LayerTask
from simulator.formats import FormatParams, format_stats
from simulator.hwconfig import Platform
from simulator.traffic import Access, ExecutionCounts, dram_accesses, utilization


def run_roofline(task: LayerTask, platform: Platform) -> ExecutionCounts:
    r = platform.roofline
    assert r is not None, "validated: cpu/gpu profiles have a roofline section"
    wb, ab = task.weight_bits, task.activation_bits
    peak = r.peak_for(wb, ab)
    layer, p = task.layer, task.profile
    g = task.gemm
    macs_dense = layer.macs
    nm = platform.compute.nm_sparse
    engine = "dense GEMM"
    meta_bits = 0.0
    decodes = 0.0
    if task.variant == "sparse":
        engine = "CSR SpMM"
        done = p.nnz * g.n_cols
        seconds = done / (peak * r.sparse_efficiency)
        seconds += (
            p.nnz * r.sparse_entry_overhead_ns + g.groups * g.rows * r.sparse_row_overhead_ns
        ) * 1e-9
        value_bits = p.nnz * wb
        meta_bits = p.nnz * r.sparse_index_bits + g.groups * (g.rows + 1) * r.sparse_pointer_bits
        decodes = p.nnz
    elif task.variant == "nm" and nm is not None:
        params = FormatParams(weight_bits=wb, nm=(nm.n, nm.m))
        st = format_stats(p, "nm", params)
        if not st.representable:
            engine = "dense GEMM (mask is not N:M)"
            done = macs_dense
            seconds = macs_dense / (peak * r.dense_efficiency)
            value_bits = g.groups * g.rows * g.cols * wb
        else:
            engine = f"{nm.n}:{nm.m} sparse GEMM"
            done = st.entries * g.n_cols
            seconds = macs_dense / (peak * r.dense_efficiency * nm.speedup)
            value_bits = st.values_bits + st.fillers_bits
            meta_bits = st.indices_bits
            decodes = st.entries
    else:
        eg = task.effective_gemm() if task.variant == "structured" else g
        done = eg.macs
        seconds = done / (peak * r.dense_efficiency)
        value_bits = eg.groups * eg.rows * eg.cols * wb
        if task.variant == "structured":
            meta_bits = format_stats(p, "compact", FormatParams(weight_bits=wb)).other_bits
    if task.variant in ("dense", "structured"):
        engine = "dense GEMM" + (" (smaller)" if task.variant == "structured" else "")
    useful = p.nnz * g.n_cols
    seconds += r.layer_overhead_ns * 1e-9  # kernel launch and synchronisation
    cycles = seconds * platform.clock_hz
    inputs = task.input_count * ab
    outputs = task.output_count * ab
    accesses = []
    dram = platform.level("dram")
    if dram is not None:
        accesses += dram_accesses(
            level=dram.name,
            weight_value_bits=value_bits,
            weight_metadata_bits=meta_bits,
            input_bits=inputs,
            output_bits=outputs,
        )
    onchip = [lv for lv in platform.memory if lv.kind != "dram"]
    if onchip:
        cache = max(onchip, key=lambda lv: lv.size_bytes)
        accesses += [
            Access(
                level=cache.name, operand="weights", read_bits=value_bits, write_bits=value_bits
            ),
            Access(level=cache.name, operand="metadata", read_bits=meta_bits, write_bits=meta_bits),
            Access(level=cache.name, operand="inputs", read_bits=inputs, write_bits=inputs),
            Access(level=cache.name, operand="outputs", read_bits=outputs, write_bits=outputs),
        ]
    slots = peak / platform.clock_hz
    return ExecutionCounts(
        engine=engine,
        macs_dense=macs_dense,
        macs_done=float(done),
        macs_gated=0.0,
        macs_skipped=float(max(0, macs_dense - done)),
        index_decodes=float(decodes),
        compute_cycles=cycles,
        pe_utilization=utilization(min(useful, done), slots, cycles),
        accesses=tuple(accesses),
    )
