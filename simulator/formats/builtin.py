"""The built-in formats, each registered once with all its parts: counter, encoder,
closed form, i.i.d. expectation and the structured prunings it is made for.

Registration order is the order of :data:`~simulator.formats.stats.FORMATS` (and
of every table that lists all formats).
"""

from __future__ import annotations

import numpy as np

from simulator import kernels
from simulator.errors import FormatError
from simulator.formats import compressed
from simulator.formats import formulas as fx
from simulator.formats.profile import MaskProfile
from simulator.formats.stats import (
    Encoded,
    FormatParams,
    FormatStats,
    check_width,
    make_stats,
    register,
)
from simulator.units import ceil_log2

_EMPTY = np.zeros(0, dtype=np.int64)


def _encoded(fmt: str, values, indices=_EMPTY, pointers=_EMPTY, extra=_EMPTY) -> Encoded:
    return Encoded(format=fmt, values=values, indices=indices, pointers=pointers, extra=extra)


# --- dense -------------------------------------------------------------------------------


def _dense_expected(
    *, groups: int, rows: int, cols: int, density: float, params: FormatParams
) -> float:
    return float(groups * rows * cols * params.weight_bits)


@register(
    "dense",
    "every weight stored, zeros included",
    structured_for=("dense",),
    encode=lambda a, params: _encoded("dense", a.ravel().copy()),
    closed_form=lambda p, params: fx.dense_bits(p.weights, params.weight_bits),
    expected_bits=_dense_expected,
)
def _dense(p: MaskProfile, params: FormatParams) -> FormatStats:
    wb = params.weight_bits
    return make_stats(
        p,
        "dense",
        params,
        entries=p.weights,
        values_bits=p.nnz * wb,
        indices_bits=0,
        pointers_bits=0,
        fillers_bits=(p.weights - p.nnz) * wb,
        other_bits=0,
        line_axis="row",
        line_entries=np.full(p.groups * p.rows, p.cols, np.int64),
    )


# --- CSR / CSC: one implementation (compressed.py) ---------------------------------------


for _axis, _relative, _description in (
    ("row", False, "compressed rows, absolute column index of ceil(log2 cols) bits"),
    ("col", False, "compressed columns, absolute row index of ceil(log2 rows) bits"),
    ("row", True, "compressed rows, relative index (zero run) with filler entries"),
    ("col", True, "compressed columns, relative index with fillers (EIE)"),
):
    _count, _parts = compressed.parts(_axis, _relative)
    register(compressed.name_of(_axis, _relative), _description, **_parts)(_count)


# --- COO and bitmap ----------------------------------------------------------------------


def _coo_encode(a: np.ndarray, params: FormatParams) -> Encoded:
    r, c = np.nonzero(a)
    return _encoded("coo", a[r, c], indices=c.astype(np.int64), extra=r.astype(np.int64))


@register(
    "coo",
    "each kept value with its absolute row and column index",
    encode=_coo_encode,
    closed_form=lambda p, params: fx.coo_bits(
        nnz=p.nnz, rows=p.rows, cols=p.cols, weight_bits=params.weight_bits
    ),
    expected_bits=lambda *, groups, rows, cols, density, params: fx.coo_bits(
        nnz=density * (groups * rows * cols), rows=rows, cols=cols, weight_bits=params.weight_bits
    ),
)
def _coo(p: MaskProfile, params: FormatParams) -> FormatStats:
    ib = ceil_log2(p.rows) + ceil_log2(p.cols)
    return make_stats(
        p,
        "coo",
        params,
        entries=p.nnz,
        values_bits=p.nnz * params.weight_bits,
        indices_bits=p.nnz * ib,
        pointers_bits=0,
        fillers_bits=0,
        other_bits=0,
        line_axis="row",
        line_entries=p.row_nnz,
        detail=f"index {ib} b",
    )


def _bitmap_expected(
    *, groups: int, rows: int, cols: int, density: float, params: FormatParams
) -> float:
    weights = groups * rows * cols
    return fx.bitmap_bits(weights=weights, nnz=density * weights, weight_bits=params.weight_bits)


@register(
    "bitmap",
    "one presence bit per weight plus the kept values",
    encode=lambda a, params: _encoded("bitmap", a[a != 0], extra=(a != 0).astype(np.uint8).ravel()),
    closed_form=lambda p, params: fx.bitmap_bits(
        weights=p.weights, nnz=p.nnz, weight_bits=params.weight_bits
    ),
    expected_bits=_bitmap_expected,
)
def _bitmap(p: MaskProfile, params: FormatParams) -> FormatStats:
    return make_stats(
        p,
        "bitmap",
        params,
        entries=p.nnz,
        values_bits=p.nnz * params.weight_bits,
        indices_bits=0,
        pointers_bits=0,
        fillers_bits=0,
        other_bits=p.weights,
        line_axis="row",
        line_entries=p.row_nnz,
    )


# --- N:M ---------------------------------------------------------------------------------
#
# 2:4 with 4-bit values is Sparse-Marlin's layout (IST-DASLab/Sparse-Marlin,
# marlin/__init__.py, Layer_2_4, and marlin/marlin_cuda_kernel_nm.cu): the k/2 kept
# values of each output column packed as 4-bit codes, ``meta`` an int16 array of shape
# (n, k/16), i.e. 16 bits per 16 dense positions = a 2-bit position per kept value
# (cuSPARSELt's 2:4 metadata), and float16 scales (k/groupsize, n) over the dense k
# (FormatParams.group_size = 128, scale_bits = 16; Sparse-Marlin supports groupsize
# 128 or one per column). This format with weight_bits = 4 counts exactly that.
# Sparse-Marlin defines only 2:4; other N:M (4:8 among them) use the same rule, N
# slots of value + ceil(log2 M)-bit position per M, a layout no shipped kernel
# source found here confirms.


def _padded(a: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """``a`` in the top-left corner of a ``rows x cols`` zero matrix."""
    out = np.zeros((rows, cols), dtype=a.dtype)
    out[: a.shape[0], : a.shape[1]] = a
    return out


def _nm_encode(a: np.ndarray, params: FormatParams) -> Encoded:
    n, m = params.nm
    rows, cols = a.shape
    ngrp = -(-cols // m)
    vals, pos = [], []
    for row in _padded(a, rows, ngrp * m).reshape(rows, ngrp, m):
        for grp in row:
            kept = list(np.flatnonzero(grp))
            if len(kept) > n:
                raise FormatError(f"a group of {m} keeps {len(kept)} > {n}: not {n}:{m}")
            free = [p for p in range(m) if p not in kept]
            slots = sorted(kept + free[: n - len(kept)])
            vals += [grp[p] for p in slots]
            pos += slots
    return _encoded("nm", np.array(vals, dtype=a.dtype), extra=np.array(pos, dtype=np.int64))


def _nm_closed_form(p: MaskProfile, params: FormatParams) -> int:
    n, m = params.nm
    if p.group_max(m) > n:
        return 0  # not representable
    return fx.nm_bits(
        groups=p.groups, rows=p.rows, cols=p.cols, n=n, m=m, weight_bits=params.weight_bits
    )


@register(
    "nm",
    "N:M along the reduction axis: N slots of value + ceil(log2 M)-bit position per M weights",
    structured_for=("nm",),
    encode=_nm_encode,
    closed_form=_nm_closed_form,
)
def _nm(p: MaskProfile, params: FormatParams) -> FormatStats:
    n, m = params.nm
    ib = ceil_log2(m)
    slots_per_row = -(-p.cols // m) * n
    entries = p.groups * p.rows * slots_per_row
    wb = params.weight_bits
    worst = p.group_max(m)
    detail = f"{n}:{m}, position {ib} b"
    if worst > n:
        return make_stats(
            p,
            "nm",
            params,
            entries=0,
            values_bits=0,
            indices_bits=0,
            pointers_bits=0,
            fillers_bits=0,
            other_bits=0,
            line_axis="row",
            line_entries=np.zeros(p.groups * p.rows, np.int64),
            representable=False,
            detail=f"{detail}; not representable: a group of {m} keeps {worst} > {n}",
        )
    return make_stats(
        p,
        "nm",
        params,
        entries=entries,
        values_bits=p.nnz * wb,
        indices_bits=p.nnz * ib,
        pointers_bits=0,
        fillers_bits=(entries - p.nnz) * (wb + ib),
        other_bits=0,
        line_axis="row",
        line_entries=np.full(p.groups * p.rows, slots_per_row, np.int64),
        detail=detail,
    )


# --- block-CSR ---------------------------------------------------------------------------


def _bsr_encode(a: np.ndarray, params: FormatParams) -> Encoded:
    br, bc = params.block
    rows, cols = a.shape
    nbr, nbc = -(-rows // br), -(-cols // bc)
    padded = _padded(a, nbr * br, nbc * bc)
    vals, idx, ptr = [], [], [0]
    for bi in range(nbr):
        for bj in range(nbc):
            tile = padded[bi * br : (bi + 1) * br, bj * bc : (bj + 1) * bc]
            if tile.any():
                vals += list(tile.ravel())
                idx.append(bj)
        ptr.append(len(idx))
    return _encoded(
        "bsr",
        np.array(vals, dtype=a.dtype),
        indices=np.array(idx, np.int64),
        pointers=np.array(ptr, np.int64),
    )


def _bsr_blocks(p: MaskProfile, params: FormatParams) -> tuple[np.ndarray, int, int]:
    """Nonzero tiles per block-row (group-major), their number and the pointer width."""
    per_brow = kernels.block_counts(p.gemm, *params.block)
    blocks = int(per_brow.sum())
    pw = check_width("pointer", params.pointer_bits, fx.pointer_width(blocks), "bsr", p)
    return per_brow, blocks, pw


def _bsr_closed_form(p: MaskProfile, params: FormatParams) -> int:
    _, blocks, pw = _bsr_blocks(p, params)
    br, bc = params.block
    return fx.bsr_bits(
        blocks=blocks,
        groups=p.groups,
        rows=p.rows,
        cols=p.cols,
        block_rows=br,
        block_cols=bc,
        weight_bits=params.weight_bits,
        pointer_bits=pw,
    )


@register(
    "bsr",
    "block-CSR: nonzero b x b tiles stored dense with a block-column index",
    structured_for=("block",),
    encode=_bsr_encode,
    closed_form=_bsr_closed_form,
)
def _bsr(p: MaskProfile, params: FormatParams) -> FormatStats:
    br, bc = params.block
    per_brow, blocks, pw = _bsr_blocks(p, params)
    n_brows, n_bcols = -(-p.rows // br), -(-p.cols // bc)
    entries = blocks * br * bc
    ib = ceil_log2(n_bcols)
    wb = params.weight_bits
    # per row: every row of a block-row stores bc entries per tile of that block-row
    line_entries = np.repeat(per_brow.reshape(p.groups, n_brows) * bc, br, axis=1)[:, : p.rows]
    return make_stats(
        p,
        "bsr",
        params,
        entries=entries,
        values_bits=p.nnz * wb,
        indices_bits=blocks * ib,
        pointers_bits=p.groups * (n_brows + 1) * pw,
        fillers_bits=(entries - p.nnz) * wb,
        other_bits=0,
        line_axis="row",
        line_entries=line_entries.ravel(),
        detail=f"{br}x{bc} tiles, {blocks} kept, index {ib} b, pointer {pw} b",
    )


# --- compact (filter, channel and column pruning) ----------------------------------------


def _survivor_list(alive: np.ndarray) -> np.ndarray:
    """Which of ``alive`` survive, as :func:`formulas.survivor_list_bits` prices it:
    nothing when all do, else a bitmap (uint8) where that is smaller than the list
    of their indices (int64)."""
    kept, total = int(alive.sum()), alive.size
    if kept == total:
        return _EMPTY
    if total < kept * ceil_log2(total):
        return alive.astype(np.uint8)
    return np.flatnonzero(alive).astype(np.int64)


def _compact_encode(a: np.ndarray, params: FormatParams) -> Encoded:
    rows_alive, cols_alive = (a != 0).any(axis=1), (a != 0).any(axis=0)
    return _encoded(
        "compact",
        a[np.ix_(rows_alive, cols_alive)].ravel(),
        indices=_survivor_list(cols_alive),
        extra=_survivor_list(rows_alive),
    )


def _compact_closed_form(p: MaskProfile, params: FormatParams) -> int:
    return fx.compact_bits(
        kept_rows=p.kept_rows(),
        kept_cols=p.kept_cols(),
        rows=p.rows,
        cols=p.cols,
        weight_bits=params.weight_bits,
    )


@register(
    "compact",
    "dense submatrix of the surviving rows and columns plus survivor lists "
    "(filter, channel and column pruning)",
    structured_for=("filter", "channel", "column"),
    encode=_compact_encode,
    closed_form=_compact_closed_form,
)
def _compact(p: MaskProfile, params: FormatParams) -> FormatStats:
    kr, kc = p.kept_rows(), p.kept_cols()
    entries = int((kr * kc).sum())
    live = kr > 0
    wb = params.weight_bits
    alive = p.row_nnz.reshape(p.groups, p.rows) > 0
    line_entries = (alive * kc[:, None]).ravel().astype(np.int64)
    return make_stats(
        p,
        "compact",
        params,
        entries=entries,
        values_bits=p.nnz * wb,
        indices_bits=0,
        pointers_bits=0,
        fillers_bits=(entries - p.nnz) * wb,
        other_bits=fx.survivor_lists_bits(kr, kc, rows=p.rows, cols=p.cols),
        line_axis="row",
        line_entries=line_entries,
        detail=f"{int(live.sum())} of {p.groups} groups kept, {int(kr.sum())} rows in all",
    )
