"""CPU and GPU: a per-layer roofline with a dense GEMM and the profile's sparse kernels.

- dense and structured: a dense GEMM of the (remaining) problem at the profile's
  GEMM fraction of peak at the layer's precision; a matrix-vector product (one
  column: a batch-1 FC layer, a decode step) no faster than its DRAM traffic streams
  at the GEMV fraction of bandwidth (``dram_efficiency`` of its counts: the bound is
  then DRAM's, priced in :mod:`simulator.cost`);
- sparse: each ``csr`` kernel of the profile predicts kept MACs at its absolute rate for
  the layer's precision (MAC/s, not a fraction of a peak), plus a cost per stored entry,
  per row and per call (and, where the kernel states it, per cache line of the dense
  operand missed once that operand outgrows a cache); of the applicable kernels, the one
  with the least roofline time (its compute, or its own bytes at each memory level,
  whichever binds) runs the layer and is named in the result. The weights move as CSR
  with that kernel's index and pointer widths, or, where the kernel names a
  ``layout``, in that storage format, bit-exact (its bitmap, indices, offsets and
  padding beside the kept values); an SpMV streams them no faster than a dense GEMV
  streams its weights; the activations are gathered. A kernel that computes
  as dense (Flash-LLM: "load as sparse, compute as dense") adds the layer's dense MACs
  at its ``dense_macs_per_s``; a kernel that lists widths runs only layers at those
  widths. A profile without a kernel that holds the precision cannot run the layer
  sparse (an error);
- nm: where the profile has an N:M unit and the mask fits it, the dense GEMM time over
  the fastest ``nm`` kernel's measured speed-up for the unit's N:M pattern among those
  that run the layer's weight and activation widths (the unit's own ``speedup`` when
  none does), with ceil(log2 M)-bit metadata per kept value. At one column (a decode
  step) the kept values and metadata stream at the GEMV fraction like dense weights,
  so the speed-up there is the ratio of bytes.

Group-wise quantization scales and zero points (the task's ``group_size``), counted
over the dense rows whatever the variant, move from DRAM with the weights' metadata.

Every layer also pays the profile's fixed ``layer_overhead_ns`` (kernel launch and
synchronisation), added to its latency whichever bound sets it. Compute time is
expressed in cycles of the profile's clock. Traffic is counted at DRAM and, staged
through once, at the largest on-chip level.
"""

from __future__ import annotations

import math

from simulator.dataflows.task import LayerTask
from simulator.errors import ConfigError
from simulator.formats import FormatParams, format_stats
from simulator.hwconfig import Platform, SparseKernel
from simulator.traffic import Access, ExecutionCounts, dram_accesses, utilization


def dense_seconds(task: LayerTask, platform: Platform, macs: float) -> float:
    """Compute time of a dense GEMM of ``macs`` at the GEMM fraction of peak."""
    r = platform.roofline
    wb, ab = task.weight_bits, task.activation_bits
    return macs / (r.peak_for(wb, ab) * r.gemm_efficiency_for(wb, ab))


def stream_efficiency(task: LayerTask, platform: Platform) -> float:
    """Fraction of DRAM bandwidth at which the layer's traffic streams: the profile's
    GEMV fraction for a matrix-vector product (one column per group: a batch-1 FC
    layer, a decode step's projection), whose weights are read once and used once;
    the full bandwidth for wider GEMMs, which reuse each weight across columns."""
    if task.gemm.n_cols != 1 or platform.level("dram") is None:
        return 1.0
    return platform.roofline.gemv_efficiency_for(task.weight_bits, task.activation_bits)


def missed_operand_lines(
    *,
    nnz: float,
    cols: int,
    n_cols: int,
    value_bytes: float,
    cache_bytes: float | None,
    line_bytes: int,
) -> float:
    """Cache lines of the dense operand that a CSR x dense product is charged as missing.

    Each stored entry (i, j) reads row j of the ``cols x n_cols`` dense operand:
    ``ceil(n_cols * value_bytes / line_bytes)`` lines. Successive reads of one row are
    a whole operand apart (every other row is read in between), so they hit while the
    operand fits ``cache_bytes`` and, once it is larger, miss on the share
    ``1 - cache_bytes / operand bytes`` (random replacement; a larger operand misses
    more). ``cache_bytes`` None: no term (0)."""
    if cache_bytes is None or nnz <= 0:
        return 0.0
    operand = cols * n_cols * value_bytes
    if operand <= cache_bytes:
        return 0.0
    lines = math.ceil(n_cols * value_bytes / line_bytes)
    return nnz * lines * (1 - cache_bytes / operand)


def csr_seconds(kernel: SparseKernel, task: LayerTask) -> float | None:
    """Time of a csr kernel on the layer's kept weights, or ``None`` when the kernel
    has no rate for a precision holding the operands or does not run the layer's
    widths: kept MACs at the kernel's rate, its per-entry, per-row and per-call costs,
    its per-line cost of the dense operand's missed lines (:func:`missed_operand_lines`)
    where it states one, and where it computes as dense (``dense_macs_per_s``), the
    layer's dense MACs at that rate."""
    wb, ab = task.weight_bits, task.activation_bits
    rate = kernel.rate_for(wb, ab)
    if rate is None or not kernel.runs_widths(wb, ab):
        return None
    g, p = task.gemm, task.profile
    seconds = (
        p.nnz * g.n_cols / rate
        + (p.nnz * kernel.entry_ns + g.groups * g.rows * kernel.row_ns + kernel.call_ns) * 1e-9
    )
    if kernel.dense_macs_per_s:
        dense_rate = kernel.dense_rate_for(wb, ab)
        if dense_rate is None:
            return None
        seconds += g.macs / dense_rate
    if kernel.operand_miss_ns > 0:
        missed = missed_operand_lines(
            nnz=p.nnz,
            cols=g.cols,
            n_cols=g.n_cols,
            value_bytes=task.activation_bits / 8,
            cache_bytes=kernel.operand_cache_bytes,
            line_bytes=kernel.cache_line_bytes,
        )
        seconds += missed * kernel.operand_miss_ns * 1e-9
    return seconds


def best_csr_kernel(task: LayerTask, platform: Platform) -> tuple[SparseKernel, float, float]:
    """The fastest csr kernel of the profile for the layer, its compute time and the
    metadata bits it streams (:func:`_csr_meta`): the one whose roofline time (its
    compute time, or the time its own bytes take at each memory level, whichever is
    longer: kernels differ in their metadata) is least; at equal times the faster
    compute, then the kernel listed first."""
    timed = []
    for i, k in enumerate(platform.roofline.kernels_of("csr")):
        seconds = csr_seconds(k, task)
        if seconds is not None:
            meta = _csr_meta(k, task)
            accesses = _accesses(task, platform, task.profile.nnz * task.weight_bits, meta)
            timed.append((_bound_s(seconds, accesses, platform, task), seconds, i, k, meta))
    if not timed:
        raise ConfigError(
            f"platform {platform.name!r}",
            f"no csr kernel in roofline.kernels runs {task.weight_bits}-bit weights with "
            f"{task.activation_bits}-bit activations (layer {task.layer.name!r})",
        )
    # equal roofline times (both held by the same bytes): the faster compute, then the
    # kernel listed first
    _, seconds, _, k, meta = min(timed, key=lambda x: (x[0], x[1], x[2]))
    return k, seconds, meta


def _csr_meta(kernel: SparseKernel, task: LayerTask) -> float:
    """Metadata bits a csr kernel streams, beside the kept values at the layer's weight
    width, plus the weights' group scales: with a ``layout``, everything that format
    stores but the kept values (bit-exact, :func:`simulator.formats.format_stats`:
    bitmap, indices, pointers, tile offsets, padding slots); without, CSR: an index per
    kept weight and a pointer per row and group, at the kernel's widths."""
    if kernel.layout is not None:
        stats = format_stats(
            task.profile, kernel.layout, FormatParams(weight_bits=task.weight_bits)
        )
        return stats.metadata_bits + task.group_scales_bits()
    g = task.gemm
    return (
        task.profile.nnz * kernel.index_bits
        + g.groups * (g.rows + 1) * kernel.pointer_bits
        + task.group_scales_bits()
    )


def _bound_s(compute_s: float, accesses, platform: Platform, task: LayerTask) -> float:
    """The longest of the compute time and each memory level's time for ``accesses``
    (their bits on the level's port over its bandwidth, DRAM at the layer's streaming
    fraction), as :func:`simulator.cost.price` bounds a layer."""
    worst = compute_s
    streaming = stream_efficiency(task, platform)
    for lv in platform.memory:
        bits = sum(a.read_bits + a.write_bits for a in accesses if a.level == lv.name and a.port)
        bandwidth = lv.bandwidth_bytes_per_s * (streaming if lv.kind == "dram" else 1.0)
        worst = max(worst, bits / 8 / bandwidth)
    return worst


def _accesses(task: LayerTask, platform: Platform, value_bits: float, meta_bits: float) -> list:
    """What the layer moves on a CPU or GPU: weights (values and metadata), inputs (the
    KV-cache operand at its own width) and outputs through DRAM and through the largest
    on-chip level (each written there and read back)."""
    inputs, outputs = task.input_bits, task.output_bits
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
    return accesses


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
        # (an SpMV streams the CSR arrays from DRAM no faster than a dense GEMV does)
        kernel, seconds, meta_bits = best_csr_kernel(task, platform)
        engine = f"{kernel.name} ({kernel.layout or 'CSR'})"
        done = p.nnz * g.n_cols
        value_bits = p.nnz * wb
        decodes = p.nnz
    elif task.variant == "nm" and nm is not None:
        params = FormatParams(weight_bits=wb, nm=(nm.n, nm.m))
        st = format_stats(p, "nm", params)
        if not st.representable:
            engine = "dense GEMM (mask is not N:M)"
            done = macs_dense
            value_bits = g.groups * g.rows * g.cols * wb
            meta_bits = task.group_scales_bits()
            seconds = dense_seconds(task, platform, macs_dense)
        else:
            kernels = [
                k
                for k in r.kernels_of("nm")
                if (k.n, k.m) == (nm.n, nm.m) and k.runs_widths(wb, task.activation_bits)
            ]
            best = max(kernels, key=lambda k: k.speedup) if kernels else None
            speedup = best.speedup if best is not None else nm.speedup
            engine = f"{best.name} ({nm.n}:{nm.m})" if best else f"{nm.n}:{nm.m} sparse GEMM"
            done = st.entries * g.n_cols
            value_bits = st.values_bits + st.fillers_bits
            meta_bits = st.indices_bits + task.group_scales_bits()
            decodes = st.entries
            seconds = dense_seconds(task, platform, macs_dense) / speedup
    else:
        eg = task.effective_gemm() if task.variant == "structured" else g
        done = eg.macs
        value_bits = eg.groups * eg.rows * eg.cols * wb
        seconds = dense_seconds(task, platform, done)
        if task.variant == "structured":
            meta_bits = format_stats(p, "compact", FormatParams(weight_bits=wb)).other_bits
        meta_bits += task.group_scales_bits(eg)
    if task.variant in ("dense", "structured"):
        engine = "dense GEMM" + (" (smaller)" if task.variant == "structured" else "")
    useful = p.nnz * g.n_cols
    overhead_s = r.layer_overhead_ns * 1e-9  # kernel launch and synchronisation
    streaming = stream_efficiency(task, platform)
    cycles = seconds * platform.clock_hz
    accesses = _accesses(task, platform, value_bits, meta_bits)
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
        dram_efficiency=streaming,
        overhead_s=overhead_s,
    )
