"""Bit-exact storage formats, checked against independently obtained numbers:

(a) per-format stats against counts from the slow twins (tests/twins.py) and the
    formats' documented definitions;
(b) absolute-index CSR/CSC against scipy.sparse;
(c) stats against the lengths of the arrays ``formats.encode`` builds (which are
    decoded back to the matrix first), and the closed forms in ``formulas``;
(d) the i.i.d. expectations in ``formulas`` against large random masks;
(e) invariants (nnz preserved, CSR(W) == CSC(W^T), fillers vs index width,
    structured masks in their own formats), EIE's worked example, parameter errors.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import scipy.sparse as sp
import twins
from hypothesis import example, given
from hypothesis import strategies as st

from simulator import storage
from simulator.errors import FormatError, MaskError
from simulator.formats import (
    FORMATS,
    Encoded,
    FormatParams,
    FormatStats,
    encodable_formats,
    encode,
    expected_formats,
    format_stats,
    formulas,
    layer_storage,
    profile_gemm,
    profile_mask,
    profile_matrix,
    register,
    structured_formats,
    unregister,
)
from simulator.layers import Conv2d, Linear
from simulator.masks import Pruning, generate_mask
from simulator.storage import network_storage
from simulator.workloads import Network, load_network

ALL_FORMATS = (
    "dense",
    "csr",
    "csc",
    "csr-rel",
    "csc-rel",
    "coo",
    "bitmap",
    "nm",
    "bsr",
    "compact",
    "tiled-csl",
    "tca-bme",
)

# the shipped layouts (Flash-LLM csrc/SpMM_API.cu and TilingConfig.h; SpInfer
# kernel_benchmark/spmm_test_utils.h InitSparseMatrixA_bitmap_v6), restated here
CSL_TILE, CSL_ALIGN, CSL_LOC, CSL_OFF = (128, 64), 4, 16, 32
BME_GLOBAL, BME_ALIGN, BME_OFF = (64, 64), 8, 32


def clog2(n: int) -> int:
    """ceil(log2 n) for n >= 1, by floating point (exact for these small integers)."""
    return math.ceil(math.log2(n)) if n > 1 else 0


def as_gemm(matrix: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(matrix != 0, dtype=np.uint8)[None]


params_st = st.builds(
    FormatParams,
    weight_bits=st.sampled_from([1, 4, 8, 16, 32]),
    index_bits=st.integers(1, 8),
    block=st.tuples(st.integers(1, 6), st.integers(1, 6)),
    nm=st.sampled_from([(1, 2), (2, 4), (1, 4), (4, 8), (2, 8), (3, 3)]),
)


# --- reference stats: the formats' definitions applied to twin counts -------------------


def reference_stats(m: np.ndarray, fmt: str, p: FormatParams) -> dict:
    """Every FormatStats field of ``fmt`` for the (groups, rows, cols) mask ``m``, from
    the twins' counts and the format's definition (DESIGN.md; formats docstrings)."""
    groups, rows, cols = m.shape
    wb = p.weight_bits
    row_nnz, col_nnz, _, _ = twins.line_profile(m)
    nnz = int(row_nnz.sum())
    out = {"nnz": nnz, "representable": True, "other_bits": 0}
    if fmt == "dense":
        return out | dict(
            entries=m.size,
            values_bits=nnz * wb,
            indices_bits=0,
            pointers_bits=0,
            fillers_bits=(m.size - nnz) * wb,
            line_entries=np.full(groups * rows, cols),
        )
    if fmt in ("csr", "csc", "csr-rel", "csc-rel"):
        by_col = fmt.startswith("csc")
        lines, length = (cols, rows) if by_col else (rows, cols)
        line_nnz = col_nnz if by_col else row_nnz
        if fmt.endswith("-rel"):
            ib = p.index_bits
            per_line = twins.line_fillers(m, ib, by_col)
        else:
            ib = clog2(length)
            per_line = np.zeros_like(line_nnz)
        fillers = int(per_line.sum())
        pw = clog2(nnz + fillers + 1)
        return out | dict(
            entries=nnz + fillers,
            values_bits=nnz * wb,
            indices_bits=nnz * ib,
            pointers_bits=groups * (lines + 1) * pw,
            fillers_bits=fillers * (wb + ib),
            line_entries=line_nnz + per_line,
        )
    if fmt == "coo":
        return out | dict(
            entries=nnz,
            values_bits=nnz * wb,
            indices_bits=nnz * (clog2(rows) + clog2(cols)),
            pointers_bits=0,
            fillers_bits=0,
            line_entries=row_nnz,
        )
    if fmt == "bitmap":
        return out | dict(
            entries=nnz,
            values_bits=nnz * wb,
            indices_bits=0,
            pointers_bits=0,
            fillers_bits=0,
            other_bits=m.size,
            line_entries=row_nnz,
        )
    if fmt == "nm":
        n, mm = p.nm
        if twins.group_max(m, mm) > n:
            return out | dict(
                entries=0,
                values_bits=0,
                indices_bits=0,
                pointers_bits=0,
                fillers_bits=0,
                representable=False,
                line_entries=np.zeros(groups * rows),
            )
        slots = math.ceil(cols / mm) * n
        entries = groups * rows * slots
        return out | dict(
            entries=entries,
            values_bits=nnz * wb,
            indices_bits=nnz * clog2(mm),
            pointers_bits=0,
            fillers_bits=(entries - nnz) * (wb + clog2(mm)),
            line_entries=np.full(groups * rows, slots),
        )
    if fmt == "bsr":
        br, bc = p.block
        per_brow = twins.block_counts(m, br, bc)
        blocks = int(per_brow.sum())
        n_brows, n_bcols = math.ceil(rows / br), math.ceil(cols / bc)
        entries = blocks * br * bc
        line_entries = [
            per_brow[g * n_brows + i // br] * bc for g in range(groups) for i in range(rows)
        ]
        return out | dict(
            entries=entries,
            values_bits=nnz * wb,
            indices_bits=blocks * clog2(n_bcols),
            pointers_bits=groups * (n_brows + 1) * clog2(blocks + 1),
            fillers_bits=(entries - nnz) * wb,
            line_entries=np.array(line_entries),
        )
    if fmt == "compact":
        entries = other = 0
        line_entries = []
        for g in range(groups):
            alive_rows = m[g].any(axis=1)
            alive_cols = m[g].any(axis=0)
            kr, kc = int(alive_rows.sum()), int(alive_cols.sum())
            entries += kr * kc
            # a survivor list: nothing when all survive, else the cheaper of an
            # index list (kept * ceil(log2 total)) and a bitmap (total bits)
            other += 0 if kr == rows else min(kr * clog2(rows), rows)
            other += 0 if kc == cols else min(kc * clog2(cols), cols)
            line_entries += [kc if a else 0 for a in alive_rows]
        # and which groups survive, the same way
        live = int(m.any(axis=(1, 2)).sum())
        other += 0 if live == groups else min(live * clog2(groups), groups)
        return out | dict(
            entries=entries,
            values_bits=nnz * wb,
            indices_bits=0,
            pointers_bits=0,
            fillers_bits=(entries - nnz) * wb,
            other_bits=other,
            line_entries=np.array(line_entries),
        )
    if fmt == "tiled-csl":
        # per 128 x 64 tile: (value, 16-bit location) pairs padded to a multiple of 4;
        # tiles + 2 offsets of 32 bits per group
        per_tile = twins.tile_nnz(m, *CSL_TILE)
        entries = int(sum(math.ceil(n / CSL_ALIGN) * CSL_ALIGN for n in per_tile))
        tiles = math.ceil(rows / CSL_TILE[0]) * math.ceil(cols / CSL_TILE[1])
        return out | dict(
            entries=entries,
            values_bits=nnz * wb,
            indices_bits=nnz * CSL_LOC,
            pointers_bits=groups * (tiles + 2) * CSL_OFF,
            fillers_bits=(entries - nnz) * (wb + CSL_LOC),
            line_entries=row_nnz,
        )
    if fmt == "tca-bme":
        # per 64 x 64 tile: values padded to a multiple of 8, 64 bitmaps of 64 bits,
        # 4 median offsets, one global offset; plus one global offset and one max word
        per_tile = twins.tile_nnz(m, *BME_GLOBAL)
        entries = int(sum(math.ceil(n / BME_ALIGN) * BME_ALIGN for n in per_tile))
        tiles = math.ceil(rows / BME_GLOBAL[0]) * math.ceil(cols / BME_GLOBAL[1])
        return out | dict(
            entries=entries,
            values_bits=nnz * wb,
            indices_bits=0,
            pointers_bits=groups * (4 * tiles + tiles + 1 + 1) * BME_OFF,
            fillers_bits=(entries - nnz) * wb,
            other_bits=groups * tiles * 64 * 64,
            line_entries=row_nnz,
        )
    raise AssertionError(fmt)


def assert_stats_equal(stats, ref: dict) -> None:
    for key, want in ref.items():
        got = getattr(stats, key)
        if key == "line_entries":
            np.testing.assert_array_equal(got, want, err_msg=f"{stats.format}: line_entries")
        else:
            assert got == want, f"{stats.format}: {key} = {got}, expected {want}"


# --- (a) format stats vs the twin counts --------------------------------------------------


def test_every_registered_format_is_covered():
    assert set(FORMATS) == set(ALL_FORMATS)
    assert set(encodable_formats()) == set(ALL_FORMATS)


@given(m=twins.gemm_masks(max_side=30), params=params_st, fmt=st.sampled_from(ALL_FORMATS))
@example(  # a dead group: compact lists the surviving groups (1 of 2: a 1-bit list)
    m=np.array([[[0, 0]], [[1, 1]]], dtype=np.uint8), params=FormatParams(), fmt="compact"
)
def test_format_stats_match_twin_counts(m, params, fmt):
    stats = format_stats(profile_gemm(m), fmt, params)
    assert_stats_equal(stats, reference_stats(m, fmt, params))
    assert stats.weights == m.size
    assert stats.total_bits == (
        stats.values_bits
        + stats.indices_bits
        + stats.pointers_bits
        + stats.fillers_bits
        + stats.other_bits
    )


@given(data=st.data(), b=st.integers(1, 8), fmt=st.sampled_from(["csr-rel", "csc-rel"]))
def test_relative_stats_match_twin_on_masks_with_fillers(data, b, fmt):
    m = data.draw(twins.masks_with_runs(b, by_column=fmt == "csc-rel"))
    params = FormatParams(index_bits=b, weight_bits=4)
    assert_stats_equal(format_stats(profile_gemm(m), fmt, params), reference_stats(m, fmt, params))


@given(m=twins.gemm_masks(max_side=30))
def test_profile_counts_match_twin(m):
    p = profile_gemm(m)
    row_nnz, col_nnz, rgh, cgh = twins.line_profile(m)
    assert (p.groups, p.rows, p.cols) == m.shape
    assert p.nnz == np.count_nonzero(m) == row_nnz.sum()
    np.testing.assert_array_equal(p.row_nnz, row_nnz)
    np.testing.assert_array_equal(p.col_nnz, col_nnz)
    np.testing.assert_array_equal(p.row_gap_hist, rgh)
    np.testing.assert_array_equal(p.col_gap_hist, cgh)
    for b in (1, 3, 8):
        assert (
            formulas.fillers_from_gaps(p.row_gap_hist, b) == twins.line_fillers(m, b, False).sum()
        )
        assert formulas.fillers_from_gaps(p.col_gap_hist, b) == twins.line_fillers(m, b, True).sum()


def test_layer_storage_uses_the_gemm_view_of_a_grouped_conv(rng):
    # weights (K=8, C/g=3, 3, 3) with g=2: two 4 x 27 matrices; rows = output channels
    layer = Conv2d(
        name="c", in_channels=6, out_channels=8, kernel_hw=(3, 3), input_hw=(5, 5), groups=2
    )
    mask = rng.random(layer.weight_shape) < 0.3
    out = layer_storage(layer, mask, ["csr", "csc", "dense"], FormatParams(weight_bits=8))
    per_filter = mask.reshape(8, -1).sum(1)
    np.testing.assert_array_equal(out["csr"].line_entries, per_filter)
    per_col = mask.reshape(2, 4, 27).sum(1).ravel()  # group-major columns
    np.testing.assert_array_equal(out["csc"].line_entries, per_col)
    nnz = int(mask.sum())
    assert out["csr"].nnz == nnz
    assert out["csr"].indices_bits == nnz * 5  # 27 columns -> 5-bit index
    assert out["csc"].indices_bits == nnz * 2  # 4 rows -> 2-bit index
    assert out["dense"].total_bits == 8 * 6 // 2 * 9 * 8
    assert out["csr"].pointers_bits == 2 * (4 + 1) * clog2(nnz + 1)


def test_profile_rejects_bad_input():
    layer = Linear(name="fc", in_features=4, out_features=3)
    with pytest.raises(MaskError, match="shape"):
        profile_mask(layer, np.ones((4, 3), bool))
    with pytest.raises(MaskError):
        profile_gemm(np.ones((3, 4), np.uint8))  # not 3-D
    with pytest.raises(MaskError):
        profile_gemm(np.ones((1, 3, 4), bool))  # not uint8
    with pytest.raises(MaskError):
        profile_gemm(np.ones((1, 4, 3), np.uint8).transpose(0, 2, 1))  # not C-contiguous
    with pytest.raises(MaskError):
        profile_matrix(np.ones(5))


# --- (b) absolute-index CSR/CSC vs scipy.sparse -------------------------------------------


@given(w=twins.small_matrices(max_side=40), wb=st.sampled_from([1, 4, 8, 16]))
def test_csr_csc_counts_and_bits_equal_scipy(w, wb):
    rows, cols = w.shape
    params = FormatParams(weight_bits=wb)
    p = profile_matrix(w)
    for fmt, sparse, lines, dim in (
        ("csr", sp.csr_matrix(w), rows, cols),
        ("csc", sp.csc_matrix(w), cols, rows),
    ):
        stats = format_stats(p, fmt, params)
        nnz = sparse.nnz
        assert len(sparse.indptr) == lines + 1
        assert stats.nnz == stats.entries == nnz
        np.testing.assert_array_equal(stats.line_entries, np.diff(sparse.indptr))
        # nnz * (value + ceil(log2 dim)-bit index) + (lines + 1) * ceil(log2(nnz + 1))
        expected = nnz * (wb + clog2(dim)) + (lines + 1) * clog2(nnz + 1)
        assert stats.total_bits == expected, fmt
        assert stats.pointers_bits == len(sparse.indptr) * clog2(nnz + 1)
        if nnz:  # the index width really holds every scipy index, the pointer every indptr
            assert sparse.indices.max() < 2 ** clog2(dim)
            assert sparse.indptr.max() < 2 ** clog2(nnz + 1)


@given(m=twins.gemm_masks(max_side=30, long_lines=False))
def test_csr_csc_of_several_groups_equal_scipy_per_group(m):
    groups, rows, cols = m.shape
    p = profile_gemm(m)
    params = FormatParams(weight_bits=8)
    csr = [sp.csr_matrix(m[g]) for g in range(groups)]
    csc = [sp.csc_matrix(m[g]) for g in range(groups)]
    nnz = sum(a.nnz for a in csr)
    # pointer width is one layer-wide width, ceil(log2(layer entries + 1)) (FormatParams)
    pw = clog2(nnz + 1)
    for fmt, mats, lines, dim in (("csr", csr, rows, cols), ("csc", csc, cols, rows)):
        stats = format_stats(p, fmt, params)
        np.testing.assert_array_equal(
            stats.line_entries, np.concatenate([np.diff(a.indptr) for a in mats])
        )
        assert stats.total_bits == sum(a.nnz * (8 + clog2(dim)) + (lines + 1) * pw for a in mats)


# --- (c) stats vs the encoded arrays; closed forms ----------------------------------------


def decode(enc, shape: tuple[int, int], index_bits: int, block, nm) -> np.ndarray:
    """Rebuild the matrix from an encoding (each format's documented layout)."""
    rows, cols = shape
    out = np.zeros(shape, dtype=np.int64)
    fmt = enc.format
    if fmt == "dense":
        out[:] = enc.values.reshape(shape)
    elif fmt in ("csr", "csc", "csr-rel", "csc-rel"):
        by_col = fmt.startswith("csc")
        target = out.T if by_col else out
        for line in range(target.shape[0]):
            lo, hi = enc.pointers[line], enc.pointers[line + 1]
            pos = -1
            for v, i in zip(enc.values[lo:hi], enc.indices[lo:hi], strict=True):
                if fmt.endswith("-rel"):
                    assert 0 <= i < 2**index_bits
                    pos += int(i) + 1  # i zeros skipped, then this entry (a filler holds 0)
                else:
                    pos = int(i)
                target[line, pos] = v
    elif fmt == "coo":
        out[enc.extra, enc.indices] = enc.values
    elif fmt == "bitmap":
        out.ravel()[np.flatnonzero(enc.extra)] = enc.values
    elif fmt == "nm":
        n, m = nm
        ngrp = math.ceil(cols / m)
        padded = np.zeros((rows, ngrp * m), dtype=np.int64)
        slots = iter(zip(enc.values, enc.extra, strict=True))
        for r in range(rows):
            for g in range(ngrp):
                for _ in range(n):
                    v, pos = next(slots)
                    assert 0 <= pos < m
                    padded[r, g * m + pos] = v
        out[:] = padded[:, :cols]
    elif fmt == "bsr":
        br, bc = block
        nbr, nbc = math.ceil(rows / br), math.ceil(cols / bc)
        padded = np.zeros((nbr * br, nbc * bc), dtype=np.int64)
        for bi in range(nbr):
            for t in range(enc.pointers[bi], enc.pointers[bi + 1]):
                bj = enc.indices[t]
                tile = enc.values[t * br * bc : (t + 1) * br * bc].reshape(br, bc)
                padded[bi * br : (bi + 1) * br, bj * bc : (bj + 1) * bc] = tile
        out[:] = padded[:rows, :cols]
    elif fmt == "compact":  # survivor lists: none (all survive), a bitmap or indices
        keep_rows, keep_cols = (
            np.ones(n, bool)
            if not len(lst)
            else lst.astype(bool)
            if lst.dtype == np.uint8
            else np.isin(np.arange(n), lst)
            for lst, n in ((enc.extra, rows), (enc.indices, cols))
        )
        if len(enc.values):
            out[np.ix_(keep_rows, keep_cols)] = enc.values.reshape(keep_rows.sum(), keep_cols.sum())
    elif fmt == "tiled-csl":
        out[:] = decode_tiled_csl(enc, shape)
    elif fmt == "tca-bme":
        out[:] = decode_tca_bme(enc, shape)
    return out


def decode_tiled_csl(enc, shape: tuple[int, int]) -> np.ndarray:
    """Flash-LLM: tile t's entries are [4 * offsets[t], 4 * offsets[t + 1]); a location
    is row * 64 + (col ^ ((row % 8) << 3)) inside the 128 x 64 tile."""
    rows, cols = shape
    tr, tc = CSL_TILE
    nbr, nbc = math.ceil(rows / tr), math.ceil(cols / tc)
    assert len(enc.pointers) == nbr * nbc + 2 and enc.pointers[-1] == enc.pointers[-2]
    assert len(enc.values) % CSL_ALIGN == 0
    padded = np.zeros((nbr * tr, nbc * tc), dtype=np.int64)
    for t in range(nbr * nbc):
        bi, bj = divmod(t, nbc)
        for e in range(CSL_ALIGN * enc.pointers[t], CSL_ALIGN * enc.pointers[t + 1]):
            loc = int(enc.indices[e])
            assert 0 <= loc < 2**CSL_LOC
            r = loc // tc
            c = (loc % tc) ^ ((r % 8) << 3)
            padded[bi * tr + r, bj * tc + c] = enc.values[e]
    return padded[:rows, :cols]


def decode_tca_bme(enc, shape: tuple[int, int]) -> np.ndarray:
    """SpInfer: per 64 x 64 tile, its 4 median tiles (16 x 64) in row order; in each,
    pairs of 8-row local tiles (column-major 2 x 2 groups, left to right); a set bit
    r * 8 + c of a local tile's bitmap takes the next value of its global tile."""
    rows, cols = shape
    g = BME_GLOBAL[0]
    nbr, nbc = math.ceil(rows / g), math.ceil(cols / g)
    padded = np.zeros((nbr * g, nbc * g), dtype=np.int64)
    local = iter(enc.extra.tolist())
    assert len(enc.indices) == 4 * nbr * nbc
    for t in range(nbr * nbc):
        bi, bj = divmod(t, nbc)
        pos = int(enc.pointers[t])
        start = pos
        for med in range(4):
            assert enc.indices[4 * t + med] == pos - start
            for pair in range(4):  # 2 x 2 groups of local tiles along the 64 columns
                for j in range(2):
                    for i in range(2):
                        bits = next(local)
                        r0 = bi * g + med * 16 + i * 8
                        c0 = bj * g + (2 * pair + j) * 8
                        for b in range(64):
                            if bits >> b & 1:
                                padded[r0 + b // 8, c0 + b % 8] = enc.values[pos]
                                pos += 1
        assert (enc.pointers[t + 1] - start) % BME_ALIGN == 0
        assert not np.any(enc.values[pos : enc.pointers[t + 1]])  # the padding is zero
    biggest = max(np.diff(enc.pointers[:-1]), default=0)
    assert enc.pointers[-1] == biggest
    return padded[:rows, :cols]


def encoded_bits(enc, shape: tuple[int, int], p: FormatParams) -> int:
    """Bits of the encoded arrays: each array's length times its element width."""
    rows, cols = shape
    wb = p.weight_bits
    lv, li, lp, le = (len(a) for a in (enc.values, enc.indices, enc.pointers, enc.extra))
    fmt = enc.format
    if fmt == "dense":  # every weight, zeros included
        return lv * wb
    if fmt in ("csr", "csc"):
        return lv * wb + li * clog2(cols if fmt == "csr" else rows) + lp * clog2(lv + 1)
    if fmt.endswith("-rel"):
        return lv * wb + li * p.index_bits + lp * clog2(lv + 1)
    if fmt == "coo":  # indices = columns, extra = rows
        return lv * wb + li * clog2(cols) + le * clog2(rows)
    if fmt == "bitmap":  # one bit per weight
        return lv * wb + le
    if fmt == "nm":  # extra = positions inside each group of M
        return lv * wb + le * clog2(p.nm[1])
    if fmt == "bsr":  # indices = block columns, pointers per block-row
        return lv * wb + li * clog2(math.ceil(cols / p.block[1])) + lp * clog2(li + 1)
    if fmt == "compact":  # survivor lists: a bit per line (bitmap) or an index per survivor
        return (
            lv * wb
            + (li if enc.indices.dtype == np.uint8 else li * clog2(cols))
            + (le if enc.extra.dtype == np.uint8 else le * clog2(rows))
        )
    if fmt == "tiled-csl":  # 16-bit locations, 32-bit offsets
        return lv * (wb + CSL_LOC) + lp * CSL_OFF
    if fmt == "tca-bme":  # 64-bit bitmaps, 32-bit median and global offsets and max word
        return lv * wb + le * 64 + (li + lp) * CSL_OFF
    raise AssertionError(fmt)


@given(w=twins.small_matrices(), params=params_st, fmt=st.sampled_from(ALL_FORMATS))
def test_stats_bits_equal_encoded_array_lengths(w, params, fmt):
    stats = format_stats(profile_matrix(w), fmt, params)
    kw = dict(index_bits=params.index_bits, block=params.block, nm=params.nm)
    if not stats.representable:
        assert fmt == "nm"
        with pytest.raises(FormatError):
            encode(w, fmt, **kw)
        return
    enc = encode(w, fmt, **kw)
    np.testing.assert_array_equal(decode(enc, w.shape, **kw), w)
    assert stats.total_bits == encoded_bits(enc, w.shape, params)
    assert stats.total_bits == FORMATS[fmt].closed_form(profile_matrix(w), params)
    assert stats.entries == len(enc.values)
    assert stats.nnz == np.count_nonzero(enc.values) == np.count_nonzero(w)
    # explicit zeros: relative fillers and unused N:M slots carry a value and an index;
    # padding inside BSR tiles and zeros of a dense matrix only a value
    index_width = {
        "csr-rel": params.index_bits,
        "csc-rel": params.index_bits,
        "nm": clog2(params.nm[1]),
        "tiled-csl": CSL_LOC,
    }.get(fmt, 0)  # dense: zeros are values
    zeros = len(enc.values) - np.count_nonzero(enc.values)
    assert stats.fillers_bits == zeros * (params.weight_bits + index_width)
    if fmt in ("csr", "csc", "csr-rel", "csc-rel", "bsr"):
        # per line (rows for CSR, BSR; columns for CSC): the pointer differences
        per_line = np.diff(enc.pointers)
        if fmt == "bsr":
            br, bc = params.block
            per_line = np.repeat(per_line * bc, br)[: w.shape[0]]
        np.testing.assert_array_equal(stats.line_entries, per_line)


@given(w=twins.small_matrices(), params=params_st)
def test_dense_and_compact_bits_by_hand(w, params):
    p = profile_matrix(w)
    wb = params.weight_bits
    assert format_stats(p, "dense", params).total_bits == w.size * wb
    rows_alive, cols_alive = (w != 0).any(1), (w != 0).any(0)
    sub = w[np.ix_(rows_alive, cols_alive)]
    kr, kc = sub.shape
    lists = (0 if kr == w.shape[0] else min(kr * clog2(w.shape[0]), w.shape[0])) + (
        0 if kc == w.shape[1] else min(kc * clog2(w.shape[1]), w.shape[1])
    )
    compact = format_stats(p, "compact", params)
    assert compact.total_bits == sub.size * wb + lists
    assert compact.entries == sub.size


@given(m=twins.gemm_masks(max_side=30), params=params_st)
def test_closed_forms_equal_total_bits(m, params):
    groups, rows, cols = m.shape
    p = profile_gemm(m)
    wb = params.weight_bits
    nnz = int(np.count_nonzero(m))

    def total(fmt):
        return format_stats(p, fmt, params).total_bits

    assert total("dense") == formulas.dense_bits(m.size, wb)
    for fmt, lines, dim in (("csr", rows, cols), ("csc", cols, rows)):
        assert total(fmt) == formulas.compressed_bits(
            nnz=nnz,
            fillers=0,
            groups=groups,
            lines=lines,
            weight_bits=wb,
            index_bits=clog2(dim),
            pointer_bits=clog2(nnz + 1),
        )
        f = int(twins.line_fillers(m, params.index_bits, fmt == "csc").sum())
        assert total(f"{fmt}-rel") == formulas.compressed_bits(
            nnz=nnz,
            fillers=f,
            groups=groups,
            lines=lines,
            weight_bits=wb,
            index_bits=params.index_bits,
            pointer_bits=clog2(nnz + f + 1),
        )
    assert total("coo") == formulas.coo_bits(nnz=nnz, rows=rows, cols=cols, weight_bits=wb)
    assert total("bitmap") == formulas.bitmap_bits(weights=m.size, nnz=nnz, weight_bits=wb)
    n, mm = params.nm
    if twins.group_max(m, mm) <= n:
        assert total("nm") == formulas.nm_bits(
            groups=groups, rows=rows, cols=cols, n=n, m=mm, weight_bits=wb
        )
    else:
        assert total("nm") == 0
    br, bc = params.block
    blocks = int(twins.block_counts(m, br, bc).sum())
    assert total("bsr") == formulas.bsr_bits(
        blocks=blocks,
        groups=groups,
        rows=rows,
        cols=cols,
        block_rows=br,
        block_cols=bc,
        weight_bits=wb,
        pointer_bits=clog2(blocks + 1),
    )
    kept_rows = np.array([g.any(axis=1).sum() for g in m])
    kept_cols = np.array([g.any(axis=0).sum() for g in m])
    assert total("compact") == formulas.compact_bits(
        kept_rows=kept_rows, kept_cols=kept_cols, rows=rows, cols=cols, weight_bits=wb
    )


@given(m=twins.gemm_masks(max_side=30), params=params_st)
def test_every_declared_closed_form_equals_the_counted_bits(m, params):
    p = profile_gemm(m)
    closed = [spec for spec in FORMATS.values() if spec.closed_form is not None]
    assert {spec.name for spec in closed} == set(ALL_FORMATS)
    for spec in closed:
        assert spec.closed_form(p, params) == format_stats(p, spec.name, params).total_bits


def test_closed_forms_hand_computed():
    # 2 groups of 10 x 12, 30 kept, 5 fillers, 8-bit values, 4-bit index, 6-bit pointers
    assert (
        formulas.compressed_bits(
            nnz=30, fillers=5, groups=2, lines=10, weight_bits=8, index_bits=4, pointer_bits=6
        )
        == 35 * 12 + 2 * 11 * 6
    )
    assert formulas.coo_bits(nnz=7, rows=100, cols=9, weight_bits=4) == 7 * (4 + 7 + 4)
    assert formulas.bitmap_bits(weights=64, nnz=7, weight_bits=4) == 64 + 28
    # 2:4 on 3 rows of 10 columns: 3 groups of 4 per row (padded), 2 slots of 8 + 2 bits
    assert formulas.nm_bits(groups=1, rows=3, cols=10, n=2, m=4, weight_bits=8) == 3 * 3 * 2 * 10
    # 5 tiles of 4x4 in a 10 x 10 matrix: 3 block columns (2-bit index), 3 block rows
    assert (
        formulas.bsr_bits(
            blocks=5,
            groups=1,
            rows=10,
            cols=10,
            block_rows=4,
            block_cols=4,
            weight_bits=8,
            pointer_bits=3,
        )
        == 5 * (128 + 2) + 4 * 3
    )
    assert formulas.pointer_width(0) == 0
    assert formulas.pointer_width(1) == 1
    assert formulas.pointer_width(255) == 8
    assert formulas.pointer_width(256) == 9
    assert formulas.survivor_list_bits(64, 64) == 0
    assert formulas.survivor_list_bits(3, 64) == 18  # 3 x 6-bit indices < 64-bit bitmap
    assert formulas.survivor_list_bits(40, 64) == 64  # bitmap cheaper than 240
    # 3 groups of 8 x 64: group 0 keeps all, group 1 keeps 2 rows x 3 cols, group 2 none
    kr, kc = np.array([8, 2, 0]), np.array([64, 3, 0])
    # 2 of 3 groups: min(2 x 2, 3) = 3; group 0 no lists; group 1: min(2 x 3, 8) + 3 x 6
    assert formulas.survivor_lists_bits(kr, kc, rows=8, cols=64) == 3 + 6 + 18
    assert (
        formulas.compact_bits(kept_rows=kr, kept_cols=kc, rows=8, cols=64, weight_bits=4)
        == (8 * 64 + 6) * 4 + 27
    )


# --- (d) i.i.d. expectations vs large random masks -----------------------------------------
# Tolerance: |measured mean - formula| <= 4 standard errors, the standard error taken from
# the sample itself (a 4-sigma band: a correct formula fails with probability ~6e-5 per
# check; seeds are fixed, so the tests are deterministic).

Z = 4.0


@pytest.mark.slow
@pytest.mark.parametrize(
    ("length", "density", "index_bits", "n_rows"),
    [
        (300, 0.03, 3, 3000),
        (64, 0.2, 1, 3000),
        (1000, 0.005, 5, 2000),
        (40, 0.5, 2, 3000),
        (2000, 0.002, 8, 1500),
    ],
)
def test_expected_line_fillers_vs_bernoulli_rows(length, density, index_bits, n_rows):
    m = twins.bernoulli((1, n_rows, length), density, seed=length + n_rows)
    per_row = twins.line_fillers(m, index_bits, by_column=False)
    expected = formulas.expected_line_fillers(length, density, index_bits)
    se = per_row.std(ddof=1) / math.sqrt(n_rows)
    assert expected > 0 and se > 0
    assert abs(per_row.mean() - expected) <= Z * se, (per_row.mean(), expected, se)


def test_expected_line_fillers_zero_when_line_shorter_than_span():
    # a line of L <= 2**b weights has no run of 2**b zeros before an entry
    assert formulas.expected_line_fillers(16, 0.1, 4) == 0.0
    assert formulas.expected_line_fillers(17, 0.1, 4) > 0.0
    assert formulas.expected_line_fillers(100, 0.0, 4) == 0.0
    # L = 17, B = 16: only an entry at position 16 after 16 zeros: d * (1-d)**16
    assert formulas.expected_line_fillers(17, 0.1, 4) == pytest.approx(0.1 * 0.9**16)


@pytest.mark.slow
@pytest.mark.parametrize(("density", "index_bits"), [(0.05, 4), (0.1, 2), (0.01, 6), (0.3, 1)])
def test_fillers_per_nonzero_limit_vs_long_rows(density, index_bits):
    n_rows, length = 40, 40_000
    m = twins.bernoulli((1, n_rows, length), density, seed=index_bits)
    fillers = twins.line_fillers(m, index_bits, by_column=False).astype(float)
    nnz = m[0].sum(axis=1).astype(float)
    ratio = fillers.sum() / nnz.sum()
    # ratio estimator: standard error by the delta method over independent rows
    se = np.std(fillers - ratio * nnz, ddof=1) / math.sqrt(n_rows) / nnz.mean()
    q = (1 - density) ** (2**index_bits)
    # finite lines lose ~B q / (1-q)^2 fillers per line at the start (runs cut there):
    # a relative bias of B / ((1-q) L) at most, added to the tolerance
    bias = q / (1 - q) * 2**index_bits / ((1 - q) * length)
    limit = formulas.fillers_per_nonzero_limit(density, index_bits)
    assert limit == pytest.approx(q / (1 - q))
    assert abs(ratio - limit) <= Z * se + bias, (ratio, limit, se, bias)


def test_fillers_per_nonzero_limit_edges():
    assert formulas.fillers_per_nonzero_limit(0.0, 4) == math.inf
    assert formulas.fillers_per_nonzero_limit(1.0, 4) == 0.0
    # EIE's 4-bit index at 10% density: q = 0.9**16 = 0.18530, q / (1 - q) = 0.22745
    assert formulas.fillers_per_nonzero_limit(0.1, 4) == pytest.approx(0.22745, abs=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("shape", "block", "density"),
    [
        ((2, 37, 53), (4, 6), 0.02),
        ((1, 32, 32), (4, 4), 0.05),
        ((3, 10, 9), (3, 4), 0.2),
        ((1, 50, 7), (8, 8), 0.01),
    ],
)
def test_expected_nonzero_blocks_vs_measured(shape, block, density):
    n_masks = 300
    counts = np.array(
        [
            twins.block_counts(twins.bernoulli(shape, density, seed=s), *block).sum()
            for s in range(n_masks)
        ]
    )
    groups, rows, cols = shape
    expected = formulas.expected_nonzero_blocks(
        groups=groups,
        rows=rows,
        cols=cols,
        block_rows=block[0],
        block_cols=block[1],
        density=density,
    )
    se = counts.std(ddof=1) / math.sqrt(n_masks)
    assert abs(counts.mean() - expected) <= Z * se, (counts.mean(), expected, se)


@pytest.mark.slow
@pytest.mark.parametrize("fmt", formulas.EXPECTED_FORMATS)
def test_expected_format_bits_vs_measured(fmt):
    # 2 x 64 x 96 at density 0.1: ~1,229 kept (sd ~34), entries stay inside [1024, 2047],
    # so the computed pointer width is 11 bits in every sample and in the expectation
    shape, density, wb, b = (2, 64, 96), 0.1, 8, 4
    params = FormatParams(weight_bits=wb, index_bits=b)
    n_masks = 200
    bits = np.array(
        [
            format_stats(
                profile_gemm(twins.bernoulli(shape, density, seed=s)), fmt, params
            ).total_bits
            for s in range(n_masks)
        ],
        dtype=float,
    )
    groups, rows, cols = shape
    expected = formulas.expected_format_bits(
        fmt, groups=groups, rows=rows, cols=cols, density=density, weight_bits=wb, index_bits=b
    )
    se = bits.std(ddof=1) / math.sqrt(n_masks)
    if fmt == "dense":
        assert expected == bits[0] == groups * rows * cols * wb and se == 0
    else:
        assert abs(bits.mean() - expected) <= Z * se, (bits.mean(), expected, se)


def test_expected_nonzero_blocks_by_hand():
    # 8 x 8 in 4 x 4 tiles: 4 tiles of 16; 10 x 8 adds a 2 x 4 border band of 2 tiles
    d = 0.1
    full = 1 - 0.9**16
    assert formulas.expected_nonzero_blocks(
        groups=1, rows=8, cols=8, block_rows=4, block_cols=4, density=d
    ) == pytest.approx(4 * full)
    assert formulas.expected_nonzero_blocks(
        groups=3, rows=10, cols=8, block_rows=4, block_cols=4, density=d
    ) == pytest.approx(3 * (4 * full + 2 * (1 - 0.9**8)))


# --- (e) invariants --------------------------------------------------------------------


@given(m=twins.gemm_masks(max_side=30), params=params_st)
def test_nnz_preserved_in_every_format(m, params):
    p = profile_gemm(m)
    nnz = int(np.count_nonzero(m))
    for fmt in ALL_FORMATS:
        stats = format_stats(p, fmt, params)
        assert stats.nnz == nnz, fmt
        if stats.representable:
            assert stats.entries >= nnz, fmt
            assert stats.values_bits == nnz * params.weight_bits, fmt
            assert stats.fillers == stats.entries - nnz >= 0, fmt
            if fmt in ("bsr", "tiled-csl", "tca-bme"):  # padding belongs to no real row
                assert stats.line_entries.sum() <= stats.entries, fmt
            else:
                assert stats.line_entries.sum() == stats.entries, fmt


@given(m=twins.gemm_masks(max_side=30), params=params_st)
def test_csr_of_w_equals_csc_of_w_transposed(m, params):
    p = profile_gemm(m)
    pt = profile_gemm(np.ascontiguousarray(m.transpose(0, 2, 1)))
    for row_fmt, col_fmt in (
        ("csr", "csc"),
        ("csr-rel", "csc-rel"),
        ("csc", "csr"),
        ("csc-rel", "csr-rel"),
    ):
        a, b = format_stats(p, row_fmt, params), format_stats(pt, col_fmt, params)
        for key in (
            "total_bits",
            "values_bits",
            "indices_bits",
            "pointers_bits",
            "fillers_bits",
            "entries",
            "nnz",
        ):
            assert getattr(a, key) == getattr(b, key), (row_fmt, key)
        np.testing.assert_array_equal(a.line_entries, b.line_entries)


@given(m=twins.gemm_masks(max_side=30), fmt=st.sampled_from(["csr-rel", "csc-rel"]))
def test_relative_fillers_non_increasing_in_index_bits(m, fmt):
    p = profile_gemm(m)
    fillers = [format_stats(p, fmt, FormatParams(index_bits=b)).fillers for b in range(1, 13)]
    assert all(a >= b for a, b in itertools.pairwise(fillers)), fillers
    # with 2**b >= line length no run is long enough for a filler
    longest = m.shape[2] if fmt == "csr-rel" else m.shape[1]
    assert format_stats(p, fmt, FormatParams(index_bits=clog2(longest) or 1)).fillers == 0


STRUCTURED_LAYERS = [
    Conv2d(name="conv", in_channels=16, out_channels=32, kernel_hw=(3, 3), input_hw=(8, 8)),
    Conv2d(
        name="gconv", in_channels=16, out_channels=32, kernel_hw=(3, 3), input_hw=(8, 8), groups=4
    ),
    Linear(name="fc", in_features=96, out_features=40),
]


@pytest.mark.parametrize("layer", STRUCTURED_LAYERS, ids=lambda lay: lay.name)
@pytest.mark.parametrize("structure", ["filter", "channel", "column"])
@pytest.mark.parametrize("density", [0.1, 0.5, 0.75])
def test_structured_masks_in_compact_have_no_index_and_no_fillers(layer, structure, density):
    mask = generate_mask(layer, Pruning(structure=structure, density=density, seed=3))
    stats = layer_storage(layer, mask, ["compact"], FormatParams())["compact"]
    assert stats.indices_bits == 0
    assert stats.fillers_bits == 0
    assert stats.entries == stats.nnz == mask.sum()
    assert 0 < stats.nnz < mask.size


@pytest.mark.parametrize(
    ("layer", "block"),
    [
        (Linear(name="fc", in_features=48, out_features=32), (4, 4)),
        (Linear(name="fc", in_features=48, out_features=32), (8, 2)),
        (
            Conv2d(name="conv", in_channels=8, out_channels=16, kernel_hw=(3, 3), input_hw=(6, 6)),
            (4, 9),
        ),
        (
            Conv2d(
                name="gconv",
                in_channels=8,
                out_channels=16,
                kernel_hw=(1, 1),
                input_hw=(6, 6),
                groups=2,
            ),
            (2, 2),
        ),
    ],
    ids=["fc-4x4", "fc-8x2", "conv-4x9", "gconv-2x2"],
)
@pytest.mark.parametrize("density", [0.1, 0.4])
def test_block_masks_in_bsr_index_tiles_only(layer, block, density):
    mask = generate_mask(layer, Pruning(structure="block", density=density, block=block, seed=1))
    g = layer.gemm
    assert g.rows % block[0] == 0 and g.cols % block[1] == 0
    stats = layer_storage(layer, mask, ["bsr"], FormatParams(block=block))["bsr"]
    gemm = mask.reshape(g.groups, g.rows // block[0], block[0], g.cols // block[1], block[1])
    tiles = int(gemm.any(axis=(2, 4)).sum())
    assert 0 < tiles < gemm.shape[0] * gemm.shape[1] * gemm.shape[3]
    assert stats.indices_bits == tiles * clog2(g.cols // block[1])
    assert stats.fillers_bits == 0
    assert stats.entries == stats.nnz == tiles * block[0] * block[1]


@pytest.mark.parametrize("nm", [(2, 4), (1, 4), (2, 8), (4, 8), (1, 2)])
@pytest.mark.parametrize("layer", STRUCTURED_LAYERS, ids=lambda lay: lay.name)
def test_nm_masks_in_nm_format(nm, layer):
    mask = generate_mask(layer, Pruning(structure="nm", nm=nm, seed=5))
    stats = layer_storage(layer, mask, ["nm"], FormatParams(nm=nm))["nm"]
    assert stats.representable
    # every group of M keeps N (a short last group keeps min(N, its length))
    g = layer.gemm
    full, rest = divmod(g.cols, nm[1])
    assert stats.nnz == g.groups * g.rows * (full * nm[0] + min(nm[0], rest))
    assert stats.indices_bits == stats.nnz * math.ceil(math.log2(nm[1]))
    assert stats.fillers_bits == 0


def test_non_nm_mask_is_not_representable():
    w = np.array([[1, 1, 1, 0, 0, 0, 0, 1]])  # 3 kept in the first group of 4
    stats = format_stats(profile_matrix(w), "nm", FormatParams(nm=(2, 4)))
    assert not stats.representable
    assert stats.total_bits == 0
    with pytest.raises(FormatError, match="2:4"):
        encode(w, "nm", nm=(2, 4))
    # the same mask is 3:4
    assert format_stats(profile_matrix(w), "nm", FormatParams(nm=(3, 4))).representable


def test_compact_encoding_by_hand():
    # 3 x 64, two kept in row 1: 1 of 3 rows (one 2-bit index < a 3-bit bitmap), 2 of
    # 64 columns (two 6-bit indices < 64 bits); values: the 1 x 2 surviving submatrix
    w = np.zeros((3, 64), dtype=np.int64)
    w[1, 5], w[1, 9] = 7, 2
    enc = encode(w, "compact")
    np.testing.assert_array_equal(enc.values, [7, 2])
    assert enc.extra.dtype == enc.indices.dtype == np.int64
    np.testing.assert_array_equal(enc.extra, [1])
    np.testing.assert_array_equal(enc.indices, [5, 9])
    # 3 of 4 rows: a 4-bit bitmap beats three 2-bit indices; every column survives
    w = np.array([[1, 0, 0, 0], [0, 0, 0, 0], [0, 2, 3, 0], [0, 0, 0, 4]])
    enc = encode(w, "compact")
    assert enc.extra.dtype == np.uint8 and enc.indices.size == 0
    np.testing.assert_array_equal(enc.extra, [1, 0, 1, 1])
    np.testing.assert_array_equal(enc.values, np.delete(w, 1, axis=0).ravel())
    bits = format_stats(profile_matrix(w), "compact", FormatParams(weight_bits=8)).total_bits
    assert bits == 12 * 8 + 4


def test_eie_worked_example():
    # Han et al., EIE (ISCA 2016), Fig. 2/3: one column, 4-bit relative index; a run of
    # 18 zeros needs a filler zero after 15 (16 positions), then index 2.
    col = np.array([0, 0, 1, 2] + [0] * 18 + [3])
    enc = encode(col[:, None], "csc-rel", index_bits=4)
    assert enc.values.tolist() == [1, 2, 0, 3]
    assert enc.indices.tolist() == [2, 0, 15, 2]
    assert enc.pointers.tolist() == [0, 4]
    stats = format_stats(
        profile_matrix(col[:, None]), "csc-rel", FormatParams(index_bits=4, weight_bits=4)
    )
    assert stats.entries == 4
    assert stats.fillers == 1
    assert stats.line_entries.tolist() == [4]
    # 4 entries of 4 + 4 bits, 2 pointers of ceil(log2 5) = 3 bits
    assert stats.total_bits == 4 * 8 + 2 * 3


# --- parameter validation ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"weight_bits": 0}, "weight bits"),
        ({"weight_bits": 65}, "weight bits"),
        ({"index_bits": 0}, "index bits"),
        ({"index_bits": 33}, "index bits"),
        ({"pointer_bits": 0}, "pointer bits"),
        ({"pointer_bits": 65}, "pointer bits"),
        ({"abs_index_bits": 0}, "abs index bits"),
        ({"block": (0, 4)}, "block"),
        ({"block": (4, -1)}, "block"),
        ({"nm": (3, 2)}, "N:M"),
        ({"nm": (0, 4)}, "N:M"),
    ],
)
def test_format_params_validation(kwargs, fragment):
    with pytest.raises(FormatError, match=fragment):
        FormatParams(**kwargs)


@pytest.mark.parametrize("kwargs", [{"weight_bits": 4.5}, {"index_bits": 2.5}])
def test_format_params_rejects_fractional_widths(kwargs):
    with pytest.raises(FormatError):
        FormatParams(**kwargs)


def test_format_params_lists_every_problem():
    with pytest.raises(FormatError) as err:
        FormatParams(weight_bits=0, index_bits=0, block=(0, 0), nm=(5, 4))
    text = str(err.value)
    for fragment in ("weight bits", "index bits", "block", "N:M"):
        assert fragment in text


def test_too_narrow_widths_raise():
    w = np.zeros((3, 8), int)
    w[0, :5] = 1  # 5 kept: pointers need ceil(log2 6) = 3 bits; 8 columns need 3-bit indices
    p = profile_matrix(w)
    with pytest.raises(FormatError, match="pointer"):
        format_stats(p, "csr", FormatParams(pointer_bits=2))
    with pytest.raises(FormatError, match="pointer"):
        format_stats(p, "csr-rel", FormatParams(pointer_bits=2))
    with pytest.raises(FormatError, match="index"):
        format_stats(p, "csr", FormatParams(abs_index_bits=2))
    with pytest.raises(FormatError, match="pointer"):
        format_stats(p, "bsr", FormatParams(pointer_bits=1, block=(1, 1)))  # 5 tiles
    # exactly wide enough, and wider: accepted and used
    assert (
        format_stats(
            p, "csr", FormatParams(pointer_bits=3, abs_index_bits=3, weight_bits=8)
        ).total_bits
        == 5 * 11 + 4 * 3
    )
    assert (
        format_stats(
            p, "csr", FormatParams(pointer_bits=16, abs_index_bits=10, weight_bits=8)
        ).total_bits
        == 5 * 18 + 4 * 16
    )
    # the 3 rows need only 2-bit row indices in CSC: 2 given is enough there
    assert format_stats(p, "csc", FormatParams(abs_index_bits=2)).indices_bits == 5 * 2


def test_unknown_format_and_bad_encode_input():
    p = profile_matrix(np.eye(3))
    with pytest.raises(FormatError, match="unknown format"):
        format_stats(p, "csr5", FormatParams())
    with pytest.raises(FormatError):
        encode(np.eye(3), "csr5")
    with pytest.raises(FormatError):
        encode(np.ones(4), "csr")


# --- the registry: a format registered in one place shows up everywhere ---------------------


@pytest.fixture
def registry():
    """The format registry, restored (contents and order) after the test."""
    saved = dict(FORMATS)
    yield FORMATS
    FORMATS.clear()
    FORMATS.update(saved)
    formulas.expected_format_bits.cache_clear()


def _toy_count(p, params: FormatParams) -> FormatStats:
    """Toy format: a 2-bit code per weight plus the kept values."""
    return FormatStats(
        format="toy",
        layer_name=p.layer_name,
        weight_bits=params.weight_bits,
        weights=p.weights,
        nnz=p.nnz,
        entries=p.nnz,
        values_bits=p.nnz * params.weight_bits,
        indices_bits=0,
        pointers_bits=0,
        fillers_bits=0,
        other_bits=2 * p.weights,
        line_axis="row",
        line_entries=p.row_nnz,
    )


def _register_toy():
    register(
        "toy",
        "a 2-bit code per weight plus the kept values",
        structured_for=("block",),
        encode=lambda a, params: Encoded(
            format="toy",
            values=a[a != 0],
            indices=np.zeros(0, np.int64),
            pointers=np.zeros(0, np.int64),
            extra=np.where(a != 0, 1, 0).astype(np.uint8).ravel(),
        ),
        closed_form=lambda p, params: 2 * p.weights + p.nnz * params.weight_bits,
        expected_bits=lambda *, groups, rows, cols, density, params: (
            groups * rows * cols * (2 + density * params.weight_bits)
        ),
    )(_toy_count)


def test_a_registered_format_shows_up_everywhere_and_leaves_no_trace(registry):
    before = (list(FORMATS), encodable_formats(), formulas.EXPECTED_FORMATS)
    structured_before = dict(storage.STRUCTURED_FORMAT)
    bsr = unregister("bsr")  # "block" pruning may have one format: the toy takes it over
    _register_toy()
    assert list(FORMATS)[-1] == "toy" and FORMATS["toy"].count is _toy_count
    w = np.array([[0, 3, 0, 0], [1, 0, 0, 2], [0, 0, 0, 0]])
    p, params = profile_matrix(w), FormatParams(weight_bits=4)
    # counted, and in every table of all formats
    assert format_stats(p, "toy", params).total_bits == 2 * 12 + 3 * 4
    net = Network(name="one", layers=(Linear(name="fc", in_features=4, out_features=3),))
    res = network_storage(net, Pruning(), params, masks={"fc": w != 0})
    assert res.formats[-1] == "toy" and "toy" in set(res.to_frame()["format"])
    # encoded
    assert "toy" in encodable_formats()
    np.testing.assert_array_equal(encode(w, "toy").values, [3, 1, 2])
    # its closed form and expected size
    assert FORMATS["toy"].closed_form(p, params) == 2 * 12 + 3 * 4
    assert formulas.EXPECTED_FORMATS[-1] == expected_formats()[-1] == "toy"
    assert formulas.expected_format_bits(
        "toy", groups=2, rows=4, cols=8, density=0.25, weight_bits=8
    ) == 64 * (2 + 2)
    # the structured pruning it declares: the storage break-even prices block pruning in it
    assert storage.STRUCTURED_FORMAT["block"] == structured_formats()["block"] == "toy"
    lenet = load_network("lenet5")
    be = storage.storage_breakeven(lenet, "block", 4.0, params, sparse_format="toy")
    mask_bits = sum(2 * layer.weight_count for layer in lenet.prunable_layers)
    assert be[-1].structured_bits >= mask_bits
    # unregistered: gone from every place again
    assert unregister("toy").count is _toy_count
    assert "toy" not in encodable_formats() and "toy" not in formulas.EXPECTED_FORMATS
    assert "block" not in storage.STRUCTURED_FORMAT
    with pytest.raises(ValueError, match="no expected-size model"):
        formulas.expected_format_bits("toy", groups=1, rows=1, cols=1, density=1, weight_bits=8)
    with pytest.raises(FormatError, match="unknown format"):
        encode(w, "toy")
    with pytest.raises(MaskError, match="structured pruning"):
        storage.storage_breakeven(lenet, "block", 4.0, params)
    register(
        bsr.name,
        bsr.description,
        bsr.structured_for,
        encode=bsr.encode,
        closed_form=bsr.closed_form,
        expected_bits=bsr.expected_bits,
    )(bsr.count)
    assert sorted(FORMATS) == sorted(before[0])
    assert (encodable_formats(), formulas.EXPECTED_FORMATS) == (
        (*(f for f in before[1] if f != "bsr"), "bsr"),
        before[2],
    )
    assert dict(storage.STRUCTURED_FORMAT) == structured_before


def test_the_registry_is_restored_after_a_test():
    # runs after the test above: the fixture put every format back, in order
    assert list(FORMATS) == list(ALL_FORMATS)
    assert list(storage.STRUCTURED_FORMAT) == [
        "dense",
        "filter",
        "channel",
        "column",
        "block",
        "nm",
    ]


@pytest.mark.parametrize(
    ("name", "structured_for", "fragment"),
    [
        ("csr", (), "already registered"),
        ("toy", ("random",), "not a structured pruning"),
        ("toy", ("filters",), "not a structured pruning"),
        ("toy", ("nm",), "already has 'nm'"),
    ],
)
def test_register_refuses_clashes_and_unknown_prunings(registry, name, structured_for, fragment):
    with pytest.raises(FormatError, match=fragment):
        register(name, "toy", structured_for)(_toy_count)
    assert "toy" not in FORMATS


def test_formats_without_a_part_say_so(registry):
    register("toy", "counted only")(_toy_count)
    assert FORMATS["toy"].encode is FORMATS["toy"].closed_form is None
    with pytest.raises(FormatError, match="has no encoder"):
        encode(np.eye(3), "toy")
    for fmt in ("toy", "nm"):
        with pytest.raises(ValueError, match="no expected-size model"):
            formulas.expected_format_bits(fmt, groups=1, rows=4, cols=4, density=0.5, weight_bits=8)
    unregister("toy")
    with pytest.raises(FormatError, match="unknown format"):
        unregister("toy")
