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

import math
import weakref

import numpy as np

from simulator import kernels
from simulator.dataflows.task import LayerTask
from simulator.formats.formulas import pointer_width
from simulator.hwconfig import Platform
from simulator.masks import layer_rng
from simulator.traffic import Access, ExecutionCounts, dram_accesses, utilization

SAMPLED_COLUMNS = 8


_SCHEDULES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _settled(cycles: list[int]) -> bool:
    """Whether the mean cycles per column is known to 0.5% (standard error). In plain
    floats, summed in NumPy's order (:func:`_numpy_order_sum`): the same mean and
    standard deviation as ``np.std(ddof=1)``, without its cost on a few numbers."""
    n = len(cycles)
    mean = _numpy_order_sum([float(c) for c in cycles]) / n
    squares = [(c - mean) * (c - mean) for c in cycles]
    std = math.sqrt(_numpy_order_sum(squares) / (n - 1))
    return std / math.sqrt(n) <= 0.005 * mean


def _numpy_order_sum(values: list[float]) -> float:
    """``np.add.reduce`` of floats: fewer than 8 summed in turn (NumPy adds so few in
    a plain loop), more by NumPy itself."""
    if len(values) >= 8:
        return float(np.add.reduce(np.asarray(values, dtype=np.float64)))
    total = 0.0
    for v in values:
        total += v
    return total


def clear_schedules() -> None:
    """Forget the simulated schedules (they are kept per mask profile)."""
    _SCHEDULES.clear()


def _schedule(task: LayerTask, pes: int, depth: int) -> tuple[int, int, np.ndarray, tuple]:
    """Simulated totals over all input columns, kept per mask profile so that pricing
    at other bit widths does not simulate again: returns ``(PEs holding rows, stored
    kept values, stored entries of each PE holding rows, (cycles, MACs done, entries
    decoded, activations broadcast, sum of PE busy cycles, sum of the busiest PE's
    cycles))``."""
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
    if key not in per_profile:
        per_profile[key] = _simulate(task, pes, depth)
    return per_profile[key]


def _activations(task: LayerTask, n: int):
    """The nonzero activations of each simulated input column, in broadcast order."""
    rng = layer_rng(task.seed, task.layer.name + "/activations")
    for c in range(min(task.gemm.n_cols, SAMPLED_COLUMNS)):
        if task.activation_mask is not None:
            yield np.flatnonzero(np.asarray(task.activation_mask, bool).reshape(n, -1)[:, c])
        elif task.activation_density < 1:
            yield np.flatnonzero(rng.random(n) < task.activation_density)
        else:
            yield np.arange(n)


def _simulate(task: LayerTask, pes: int, depth: int) -> tuple[int, int, np.ndarray, tuple]:
    groups, rows, cols = (
        (task.profile.groups, task.profile.rows, task.profile.cols)
        if task.variant == "sparse"
        else astuple3(task.effective_gemm())
    )
    n = groups * cols
    n_cols = task.gemm.n_cols
    # PEs beyond the row count hold no row: they pop each activation in one cycle, never
    # later than a PE with work, so they cannot set the schedule (load balance is
    # reported over the PEs that hold rows; utilization over all of them).
    pes = min(pes, rows)
    if task.variant == "sparse":
        # by column: each activation reads one row of them
        columns, kept = task.profile.pe_column_entries(pes, task.index_bits, by_column=True)
        col_entries = columns.sum(axis=1)
        pe_entries = columns.sum(axis=0)
    else:  # a dense block: PE k holds ceil((rows - k) / pes) rows of every column, no fillers
        per_pe = np.array([-(-(rows - k) // pes) for k in range(pes)], dtype=np.int64)
        columns = None
        kept = col_entries = np.full(n, rows, dtype=np.int64)
        pe_entries = per_pe * n
    acc = np.zeros(6)
    per_column = []
    for order in _activations(task, n):
        if columns is not None:
            t, busy = kernels.eie_schedule_columns(columns, order.astype(np.int64), depth)
            busy_sum, busy_max = busy.sum(), busy.max(initial=0)
        else:  # identical work for every activation: the busiest PE sets the pace
            w = np.maximum(per_pe, 1)
            t = 1 + order.size * int(w.max()) if order.size else 0
            busy_sum, busy_max = order.size * w.sum(), order.size * w.max()
        acc += (t, kept[order].sum(), col_entries[order].sum(), order.size, busy_sum, busy_max)
        per_column.append(t)
        if len(per_column) >= 2 and _settled(per_column):
            break
    stored_kept = int(kept.sum())
    pe_entries.setflags(write=False)
    return pes, stored_kept, pe_entries, tuple(acc * (n_cols / len(per_column)))


def astuple3(g) -> tuple[int, int, int]:
    return g.groups, g.rows, g.cols


def _residency(
    task: LayerTask, pe_bits: np.ndarray, level_bits: float
) -> tuple[float, tuple[float, ...]]:
    """Weights kept on chip across inferences: each PE's slice stays in what is left of
    its weight SRAM (``task.weight_room_bits``, else all ``level_bits``); the rest is
    streamed. Returns (the fraction of the stored bits that does not fit, the room
    left on each PE)."""
    room = (
        np.asarray(task.weight_room_bits, dtype=np.float64)
        if task.weight_room_bits is not None
        else np.full(pe_bits.size, level_bits)
    )
    if room.size < pe_bits.size:  # PEs the room does not list are free
        room = np.concatenate([room, np.full(pe_bits.size - room.size, level_bits)])
    held = np.minimum(pe_bits, room[: pe_bits.size])
    left = room.copy()
    left[: pe_bits.size] -= held
    total = float(pe_bits.sum())
    spilled = (total - float(held.sum())) / total if total else 0.0
    return spilled, tuple(float(x) for x in left)


def run_eie(task: LayerTask, platform: Platform, pes: int | None = None) -> ExecutionCounts:
    """Counts of one layer on an EIE-style engine of ``pes`` PEs (default: the profile's)."""
    pes = pes or platform.compute.pes
    depth = platform.compute.fifo_depth
    active_pes, stored_kept, pe_entries, totals = _schedule(task, pes, depth)
    stored = int(pe_entries.sum())
    cycles, done, decoded, active, busy_total, busy_max = totals
    g = task.effective_gemm() if task.variant != "sparse" else task.gemm
    groups, rows, cols = g.groups, g.rows, g.cols
    n_cols = task.gemm.n_cols
    macs_dense = task.layer.macs
    wb, ib, ab = task.weight_bits, task.index_bits, task.activation_bits
    ptr_bits = pointer_width(stored)
    srams = [lv for lv in platform.memory if lv.kind == "sram"]
    local = next((lv for lv in srams if lv.per_pe), srams[0] if srams else None)
    acts = next((lv for lv in platform.memory if lv.kind == "regfile"), local)
    dram = platform.level("dram")
    # column pointers: priced per read where the profile gives a price (a pointer SRAM
    # of their own), else bits of the weight SRAM; two per nonzero activation per PE
    pointer_reads = 2 * active_pes * active
    per_event = platform.pointer_read_pj is not None
    pointer_bits = 0.0 if per_event else pointer_reads * ptr_bits
    # weights kept on chip across inferences (EIE): what does not fit in the PEs' weight
    # SRAM, filled in network order, is read from DRAM on every pass over the weights,
    # i.e. once per input column, only for the columns with a nonzero activation
    resident = platform.compute.weights_resident and local is not None and dram is not None
    spilled, room_left, words = 0.0, None, None
    if resident:
        if task.layer.prunable:
            level_bits = local.size_bytes * 8 * (1 if local.per_pe else 1 / pes)
            spilled, room_left = _residency(task, pe_entries * float(wb + ib), level_bits)
        words = {
            "weights_stored_bytes": stored * (wb + ib) / 8 if task.layer.prunable else 0.0,
            "weights_from_dram_fraction": spilled,
        }
    weight_bits = done * wb
    meta_bits = done * ib + (decoded - done) * (wb + ib)
    accesses = []
    if local is not None:
        accesses += [
            Access(
                level=local.name,
                operand="weights",
                read_bits=weight_bits * (1 - spilled),
                write_bits=0.0,
            ),
            Access(
                level=local.name,
                operand="metadata",
                read_bits=meta_bits * (1 - spilled) + pointer_bits,
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
    if resident:  # activations stay in the PEs' registers; weights that spilled stream in
        if spilled:
            accesses += [
                Access(
                    level=dram.name,
                    operand="weights",
                    read_bits=weight_bits * spilled,
                    write_bits=0.0,
                ),
                Access(
                    level=dram.name,
                    operand="metadata",
                    read_bits=meta_bits * spilled,
                    write_bits=0.0,
                ),
            ]
    elif dram is not None:  # weights stream in once in compressed form (FPGA-hosted engines)
        stored_values = stored_kept * wb
        stored_meta = stored_kept * ib + (stored - stored_kept) * (wb + ib)
        stored_meta += groups * active_pes * (cols + 1) * ptr_bits
        accesses += dram_accesses(
            level=dram.name,
            weight_value_bits=stored_values,
            weight_metadata_bits=stored_meta,
            input_bits=task.input_bits,
            output_bits=task.output_bits,
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
        pointer_reads=pointer_reads if per_event else 0.0,
        queue_pushes=active_pes * active,
        weight_room_left_bits=room_left,
        words=words,
    )
