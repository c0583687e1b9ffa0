"""EIE-style sparse PE array (Han et al., ISCA 2016).

Rows of each group's weight matrix are interleaved over the PEs (row i on PE
i mod P); each PE stores its slice in relative-index CSC. Nonzero input
activations are broadcast, one per cycle at most, into per-PE FIFOs of the
profile's depth; a PE spends max(1, entries) cycles on an activation (its kept
values and fillers in that column; the pointer read takes the cycle when there
are none). The cycle count is simulated from the actual mask
(:func:`simulator.kernels.eie_schedule`), which yields the load imbalance.

Input columns (tokens, batch, output pixels) are independent: they are simulated
one by one, each with its own activation mask, until the mean cycles per column
is known to 0.5% (standard error; at least 2, at most ``SAMPLED_COLUMNS``), and
the mean is scaled to all columns.
"""

from __future__ import annotations

import weakref

import numpy as np

from simulator import kernels
from simulator.dataflows.task import LayerTask
from simulator.formats.formulas import pointer_width
from simulator.hwconfig import Platform
from simulator.masks import layer_rng
from simulator.traffic import Access, ExecutionCounts, dram_accesses, utilization

SAMPLED_COLUMNS = 8


def pe_column_entries(gemm: np.ndarray, pes: int, index_bits: int) -> tuple[np.ndarray, ...]:
    """Per group, PE and column: kept values and fillers of the PE's row slice.

    ``gemm`` is uint8 ``(groups, rows, cols)``; returns ``(nnz, fillers)``, each int64
    ``(groups, pes, cols)``.
    """
    g, rows, cols = gemm.shape
    local = -(-rows // pes)
    padded = np.zeros((g, local * pes, cols), dtype=np.uint8)
    padded[:, :rows] = gemm
    sliced = np.ascontiguousarray(
        padded.reshape(g, local, pes, cols).transpose(0, 2, 1, 3).reshape(g * pes, local, cols)
    )
    nnz, fillers, _ = kernels.line_stats(sliced, True, index_bits)
    return nnz.reshape(g, pes, cols), fillers.reshape(g, pes, cols)


def _matrix_rows(task: LayerTask) -> int:
    return task.profile.rows if task.variant == "sparse" else task.effective_gemm().rows


def _matrix(task: LayerTask) -> np.ndarray:
    """The matrix the engine stores: all ones (dense), the surviving block
    (structured), or the mask itself."""
    if task.variant == "sparse":
        return task.profile.gemm
    g = task.effective_gemm()
    return np.ones((g.groups, g.rows, g.cols), dtype=np.uint8)


_SCHEDULES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _settled(cycles: list[int]) -> bool:
    """Whether the mean cycles per column is known to 0.5% (standard error)."""
    c = np.asarray(cycles, dtype=np.float64)
    return c.std(ddof=1) / np.sqrt(c.size) <= 0.005 * c.mean()


def clear_schedules() -> None:
    """Forget the simulated schedules (they are kept per mask profile)."""
    _SCHEDULES.clear()


def _schedule(task: LayerTask, pes: int, depth: int) -> tuple[np.ndarray, np.ndarray, tuple]:
    """(nnz, fillers) per group, PE and column, and the simulated totals over all
    input columns: (cycles, MACs done, entries decoded, activations broadcast,
    sum of PE busy cycles, sum of the busiest PE's cycles). Kept per mask profile,
    so that pricing at other bit widths does not simulate again."""
    key = (
        task.variant,
        pes,
        depth,
        task.index_bits,
        task.activation_density,
        task.seed,
        task.layer.name,
        task.gemm.n_cols,
        id(task.activation_mask),
    )
    per_profile = _SCHEDULES.setdefault(task.profile, {})
    if key in per_profile:
        return per_profile[key]
    m = _matrix(task)
    groups, rows, cols = m.shape
    n_cols = task.gemm.n_cols
    # PEs beyond the row count hold no row: they pop each activation in one cycle, never
    # later than a PE with work, so they cannot set the schedule (load balance is
    # reported over the PEs that hold rows; utilization over all of them).
    idle = max(0, pes - rows)
    pes = pes - idle
    nnz, fillers = pe_column_entries(m, pes, task.index_bits)
    entries = nnz + fillers
    # groups follow one another through the same FIFOs: one broadcast sequence
    ent_flat = np.ascontiguousarray(entries.transpose(1, 0, 2).reshape(pes, groups * cols))
    col_nnz = nnz.sum(axis=1).ravel()
    col_entries = entries.sum(axis=1).ravel()
    rng = layer_rng(task.seed, task.layer.name + "/activations")
    acc = np.zeros(6)
    per_column = []
    for c in range(min(n_cols, SAMPLED_COLUMNS)):
        if task.activation_mask is not None:
            act = np.asarray(task.activation_mask, dtype=bool).reshape(groups * cols, -1)[:, c]
        elif task.activation_density < 1:
            act = rng.random(groups * cols) < task.activation_density
        else:
            act = np.ones(groups * cols, dtype=bool)
        order = np.flatnonzero(act)
        t, busy = kernels.eie_schedule(ent_flat, order, depth)
        acc += (
            t,
            col_nnz[order].sum(),
            col_entries[order].sum(),
            order.size,
            busy.sum(),
            busy.max() if busy.size else 0,
        )
        per_column.append(t)
        if len(per_column) >= 2 and _settled(per_column):
            break
    sampled = len(per_column)
    result = (nnz, fillers, tuple(acc * (n_cols / sampled)))
    per_profile[key] = result
    return result


def run_eie(task: LayerTask, platform: Platform, pes: int | None = None) -> ExecutionCounts:
    """Counts of one layer on an EIE-style engine of ``pes`` PEs (default: the profile's)."""
    pes = pes or platform.compute.pes
    depth = platform.compute.fifo_depth
    nnz, fillers, totals = _schedule(task, pes, depth)
    cycles, done, decoded, active, busy_total, busy_max = totals
    entries = nnz + fillers
    groups, active_pes, cols = nnz.shape
    rows = _matrix_rows(task)
    n_cols = task.gemm.n_cols
    macs_dense = task.layer.macs
    wb, ib, ab = task.weight_bits, task.index_bits, task.activation_bits
    total_entries = int(entries.sum())
    ptr_bits = pointer_width(total_entries)
    srams = [lv for lv in platform.memory if lv.kind == "sram"]
    local = next((lv for lv in srams if lv.per_pe), srams[0] if srams else None)
    acts = next((lv for lv in platform.memory if lv.kind == "regfile"), local)
    accesses = []
    if local is not None:
        accesses += [
            Access(level=local.name, operand="weights", read_bits=done * wb, write_bits=0.0),
            Access(
                level=local.name,
                operand="metadata",
                read_bits=done * ib
                + (decoded - done) * (wb + ib)
                + 2 * active_pes * active * ptr_bits,
                write_bits=0.0,
            ),
        ]
    if acts is not None:
        out_bits = groups * rows * n_cols * ab
        accesses += [
            Access(level=acts.name, operand="inputs", read_bits=active * ab, write_bits=0.0),
            Access(level=acts.name, operand="psums", read_bits=done * ab, write_bits=done * ab),
            Access(level=acts.name, operand="outputs", read_bits=0.0, write_bits=out_bits),
        ]
    dram = platform.level("dram")
    if dram is not None:  # weights stream in once in compressed form (FPGA-hosted engines)
        stored_values = int(nnz.sum()) * wb
        stored_meta = int(nnz.sum()) * ib + int(fillers.sum()) * (wb + ib)
        stored_meta += groups * active_pes * (cols + 1) * ptr_bits
        accesses += dram_accesses(
            level=dram.name,
            weight_value_bits=stored_values,
            weight_metadata_bits=stored_meta,
            input_bits=task.input_count * ab,
            output_bits=task.output_count * ab,
        )
    return ExecutionCounts(
        engine=f"eie {pes} PE, FIFO {depth}",
        macs_dense=macs_dense,
        macs_done=done,
        macs_gated=0.0,
        macs_skipped=max(0.0, macs_dense - done),
        index_decodes=decoded,
        compute_cycles=cycles,
        pe_utilization=utilization(done, pes * platform.compute.macs_per_pe_per_cycle, cycles),
        accesses=tuple(accesses),
        load_balance=busy_total / (active_pes * busy_max) if busy_max else 1.0,
    )
