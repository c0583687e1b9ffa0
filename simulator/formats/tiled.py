"""Tiled formats of the unstructured-sparse LLM kernels, bit-exact to the layouts their
public code builds: Flash-LLM's tiled-CSL and SpInfer's TCA-BME bitmap tiles.

Rows are the outputs (M), columns the reduction (K), as in the kernels. Both kernels
require whole tiles (M and K multiples of the tile); a matrix with partial border
tiles is counted as if padded with zeros to whole tiles (padding adds no kept value,
only the fixed per-tile metadata of its tiles). Values take ``weight_bits`` (both
kernels ship float16); tiled-CSL's in-tile location keeps its shipped 16 bits, and
the offsets their shipped 32 bits unless ``FormatParams.pointer_bits`` states
another width, checked to hold what is needed.
"""

from __future__ import annotations

import numpy as np

from simulator import kernels
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

# --- Flash-LLM tiled-CSL -----------------------------------------------------------------
#
# AlibabaResearch/flash-llm, csrc/SpMM_API.cu, InitSparseMatrixA_API(_NoReorder) and
# csrc/TilingConfig.h (Xia et al., VLDB 2024): tiles of TILE_M = 128 rows by
# TILE_K = MMA_K * BLOCK_K_TENSORS = 64 columns; each kept value is one uint32 holding
# the float16 value and a 16-bit (short) in-tile location row * 64 + (col ^ ((row % 8)
# << 3)); each tile's entries are padded with zero values to a multiple of
# VECTOR_SIZE = 4; TileOffsets is an int array of (M / 128) * (K / 64) + 2 entries
# (PADDING_SIZE_FOR_TILEOFFSETS = 2: tiles + 1 offsets and an empty last tile), in
# units of 4 entries.

CSL_TILE = (128, 64)
CSL_ALIGN = 4
CSL_LOCATION_BITS = 16
CSL_OFFSET_BITS = 32


def _csl_widths(p: MaskProfile, params: FormatParams, entries: int) -> tuple[int, int]:
    """In-tile location width (the shipped 16 bits: the layout fixes it; the 13 bits a
    128 x 64 tile needs would not be byte-aligned) and tile-offset width (shipped 32)."""
    off_needed = fx.pointer_width(entries // CSL_ALIGN)
    off = check_width("tile offset", params.pointer_bits, off_needed, "tiled-csl", p)
    if params.pointer_bits is None:
        off = max(CSL_OFFSET_BITS, off_needed)
    return CSL_LOCATION_BITS, off


def _csl_tiles(p: MaskProfile) -> tuple[np.ndarray, int]:
    """Kept entries per tile (group-major, row-major) and tiles per group."""
    per_tile = kernels.tile_nnz(p.gemm, *CSL_TILE)
    tiles = -(-p.rows // CSL_TILE[0]) * -(-p.cols // CSL_TILE[1])
    return per_tile, tiles


def _expected_entries(
    groups: int, rows: int, cols: int, density: float, tile: tuple[int, int], align: int
) -> tuple[float, float]:
    """Expected kept entries of an i.i.d. mask at ``density``, and the padding that
    rounds each ``tile``'s entries up to a multiple of ``align``
    (:func:`~simulator.formats.formulas.expected_tile_padding`)."""
    padding = fx.expected_tile_padding(
        groups=groups,
        rows=rows,
        cols=cols,
        tile_rows=tile[0],
        tile_cols=tile[1],
        density=density,
        align=align,
    )
    return density * groups * rows * cols, padding


def _csl_closed_form(p: MaskProfile, params: FormatParams) -> int:
    per_tile, tiles = _csl_tiles(p)
    loc, off = _csl_widths(p, params, fx.padded_entries(per_tile, CSL_ALIGN))
    return fx.tiled_csl_bits(
        tile_nnz=per_tile,
        groups=p.groups,
        tiles=tiles,
        align=CSL_ALIGN,
        weight_bits=params.weight_bits,
        location_bits=loc,
        offset_bits=off,
    )


def _csl_expected(
    *, groups: int, rows: int, cols: int, density: float, params: FormatParams
) -> float:
    nnz, padding = _expected_entries(groups, rows, cols, density, CSL_TILE, CSL_ALIGN)
    loc = CSL_LOCATION_BITS
    needed = fx.pointer_width(round(nnz + padding) // CSL_ALIGN)
    off = max(CSL_OFFSET_BITS, needed) if params.pointer_bits is None else params.pointer_bits
    tiles = -(-rows // CSL_TILE[0]) * -(-cols // CSL_TILE[1])
    return (nnz + padding) * (params.weight_bits + loc) + groups * (tiles + 2) * off


def _csl_encode(a: np.ndarray, params: FormatParams) -> Encoded:
    """The NoReorder layout: per tile (row-major over tiles), its kept values in
    row-major order, padding zeros taken at the tile's first zero positions; indices
    are the permuted in-tile locations, pointers the TileOffsets (units of 4)."""
    tr, tc = CSL_TILE
    rows, cols = a.shape
    nbr, nbc = -(-rows // tr), -(-cols // tc)
    padded = np.zeros((nbr * tr, nbc * tc), dtype=a.dtype)
    padded[:rows, :cols] = a
    vals, locs, offsets = [], [], [0]
    for bi in range(nbr):
        for bj in range(nbc):
            tile = padded[bi * tr : (bi + 1) * tr, bj * tc : (bj + 1) * tc]
            pad = -int(np.count_nonzero(tile)) % CSL_ALIGN
            for r in range(tr):
                for c in range(tc):
                    v = tile[r, c]
                    if v == 0:
                        if not pad:
                            continue
                        pad -= 1
                    vals.append(v)
                    locs.append(r * tc + (c ^ ((r % 8) << 3)))
            offsets.append(len(vals) // CSL_ALIGN)
    offsets.append(len(vals) // CSL_ALIGN)  # the empty tile after the last
    return Encoded(
        format="tiled-csl",
        values=np.array(vals, dtype=a.dtype),
        indices=np.array(locs, dtype=np.int64),
        pointers=np.array(offsets, dtype=np.int64),
        extra=np.zeros(0, dtype=np.int64),
    )


@register(
    "tiled-csl",
    "Flash-LLM tiled-CSL: per 128 x 64 tile, (value, 16-bit in-tile location) pairs "
    "padded to a multiple of 4, plus 32-bit tile offsets",
    encode=_csl_encode,
    closed_form=_csl_closed_form,
    expected_bits=_csl_expected,
)
def _tiled_csl(p: MaskProfile, params: FormatParams) -> FormatStats:
    per_tile, tiles = _csl_tiles(p)
    entries = fx.padded_entries(per_tile, CSL_ALIGN)
    loc, off = _csl_widths(p, params, entries)
    wb = params.weight_bits
    return make_stats(
        p,
        "tiled-csl",
        params,
        entries=entries,
        values_bits=p.nnz * wb,
        indices_bits=p.nnz * loc,
        pointers_bits=p.groups * (tiles + 2) * off,
        fillers_bits=(entries - p.nnz) * (wb + loc),
        other_bits=0,
        line_axis="row",
        line_entries=p.row_nnz,
        detail=f"{CSL_TILE[0]}x{CSL_TILE[1]} tiles, location {loc} b, offset {off} b",
    )


# --- SpInfer TCA-BME ----------------------------------------------------------------------
#
# SpInfer (Fan et al., EuroSys 2025), quaternior/SpInfer_EuroSys25,
# kernel_benchmark/spmm_test_utils.h, InitSparseMatrixA_bitmap_v6, called by
# kernel_benchmark/spmm_test.cu with tiles (8, 16, 64) x (8, 64, 64): global tiles of
# 64 x 64, each of 4 median tiles of 16 x 64, each of 16 local tiles of 8 x 8. Every
# local tile has a uint64 bitmap (bit row * 8 + col); values (half) are packed per
# global tile (its median tiles in row order; within a median tile, 2 x 2 groups of
# local tiles left to right, each group column-major; within a local tile row-major)
# and padded with zeros to a multiple of 8 per global tile; TileOffsets_median holds
# one int per median tile (0 for the first, then cumulative within its global tile),
# TileOffsets_global (global tiles + 1) ints. The FasterTransformer integration
# (third_party/ft_spinfer.patch) ships those three arrays, the values and one
# max_nnz_intile int per matrix; the per-local-tile counts the function also returns
# are not shipped and not counted.

BME_LOCAL = (8, 8)
BME_MEDIAN = (16, 64)
BME_GLOBAL = (64, 64)
BME_ALIGN = 8
BME_OFFSET_BITS = 32
_BME_MEDIANS = (BME_GLOBAL[0] // BME_MEDIAN[0]) * (BME_GLOBAL[1] // BME_MEDIAN[1])
_BME_TILE_WEIGHTS = BME_GLOBAL[0] * BME_GLOBAL[1]


def _bme_tiles(p: MaskProfile) -> tuple[np.ndarray, int]:
    """Kept entries per global tile (group-major) and global tiles per group."""
    per_tile = kernels.tile_nnz(p.gemm, *BME_GLOBAL)
    return per_tile, -(-p.rows // BME_GLOBAL[0]) * -(-p.cols // BME_GLOBAL[1])


def _bme_offset_width(p: MaskProfile, params: FormatParams, entries: int) -> int:
    needed = fx.pointer_width(entries)
    off = check_width("tile offset", params.pointer_bits, needed, "tca-bme", p)
    return max(BME_OFFSET_BITS, needed) if params.pointer_bits is None else off


def _bme_closed_form(p: MaskProfile, params: FormatParams) -> int:
    per_tile, tiles = _bme_tiles(p)
    off = _bme_offset_width(p, params, fx.padded_entries(per_tile, BME_ALIGN))
    return fx.tca_bme_bits(
        global_nnz=per_tile,
        groups=p.groups,
        global_tiles=tiles,
        tile_weights=_BME_TILE_WEIGHTS,
        median_per_global=_BME_MEDIANS,
        align=BME_ALIGN,
        weight_bits=params.weight_bits,
        offset_bits=off,
    )


def _bme_expected(
    *, groups: int, rows: int, cols: int, density: float, params: FormatParams
) -> float:
    nnz, padding = _expected_entries(groups, rows, cols, density, BME_GLOBAL, BME_ALIGN)
    needed = fx.pointer_width(round(nnz + padding))
    off = max(BME_OFFSET_BITS, needed) if params.pointer_bits is None else params.pointer_bits
    tiles = -(-rows // BME_GLOBAL[0]) * -(-cols // BME_GLOBAL[1])
    offsets = groups * (tiles * _BME_MEDIANS + tiles + 2)
    return (nnz + padding) * params.weight_bits + groups * tiles * _BME_TILE_WEIGHTS + offsets * off


def _bme_local_order() -> list[tuple[int, int]]:
    """(row, col) of each local tile's corner within a global tile, in value order."""
    order = []
    for mr in range(BME_GLOBAL[0] // BME_MEDIAN[0]):
        for mc in range(BME_GLOBAL[1] // BME_MEDIAN[1]):
            for lm in range(0, BME_MEDIAN[0] // BME_LOCAL[0], 2):
                for lk in range(0, BME_MEDIAN[1] // BME_LOCAL[1], 2):
                    for j in range(2):  # 2 x 2 local tiles, column-major
                        for i in range(2):
                            order.append(
                                (
                                    mr * BME_MEDIAN[0] + (lm + i) * BME_LOCAL[0],
                                    mc * BME_MEDIAN[1] + (lk + j) * BME_LOCAL[1],
                                )
                            )
    return order


def _bme_encode(a: np.ndarray, params: FormatParams) -> Encoded:
    """Values (padded per global tile), ``extra`` the uint64 bitmaps of the local
    tiles in value order, ``indices`` the median offsets, ``pointers`` the global
    offsets followed by the one max-count word (the largest padded global tile)."""
    gr, gc = BME_GLOBAL
    lr, lc = BME_LOCAL
    rows, cols = a.shape
    nbr, nbc = -(-rows // gr), -(-cols // gc)
    padded = np.zeros((nbr * gr, nbc * gc), dtype=a.dtype)
    padded[:rows, :cols] = a
    order = _bme_local_order()
    local_per_median = len(order) // _BME_MEDIANS
    vals, bitmaps, medians, globals_ = [], [], [], [0]
    biggest = 0
    for bi in range(nbr):
        for bj in range(nbc):
            start = len(vals)
            for t, (r0, c0) in enumerate(order):
                if t % local_per_median == 0:
                    medians.append(len(vals) - start)
                bits = 0
                tile = padded[bi * gr + r0 : bi * gr + r0 + lr, bj * gc + c0 : bj * gc + c0 + lc]
                for r in range(lr):
                    for c in range(lc):
                        if tile[r, c] != 0:
                            bits |= 1 << (r * lc + c)
                            vals.append(tile[r, c])
                bitmaps.append(bits)
            vals += [0] * (-(len(vals) - start) % BME_ALIGN)
            biggest = max(biggest, len(vals) - start)
            globals_.append(len(vals))
    return Encoded(
        format="tca-bme",
        values=np.array(vals, dtype=a.dtype),
        indices=np.array(medians, dtype=np.int64),
        pointers=np.array([*globals_, biggest], dtype=np.int64),
        extra=np.array(bitmaps, dtype=np.uint64),
    )


@register(
    "tca-bme",
    "SpInfer TCA-BME: 64-bit bitmap per 8 x 8 tile, values packed per 64 x 64 tile "
    "(padded to 8), 32-bit offsets per 16 x 64 and 64 x 64 tile",
    encode=_bme_encode,
    closed_form=_bme_closed_form,
    expected_bits=_bme_expected,
)
def _tca_bme(p: MaskProfile, params: FormatParams) -> FormatStats:
    per_tile, tiles = _bme_tiles(p)
    entries = fx.padded_entries(per_tile, BME_ALIGN)
    off = _bme_offset_width(p, params, entries)
    wb = params.weight_bits
    return make_stats(
        p,
        "tca-bme",
        params,
        entries=entries,
        values_bits=p.nnz * wb,
        indices_bits=0,
        pointers_bits=p.groups * (tiles * _BME_MEDIANS + tiles + 2) * off,
        fillers_bits=(entries - p.nnz) * wb,
        other_bits=p.groups * tiles * _BME_TILE_WEIGHTS,
        line_axis="row",
        line_entries=p.row_nnz,
        detail=f"{tiles} global tiles per group, offset {off} b",
    )
