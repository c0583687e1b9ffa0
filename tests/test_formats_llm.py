"""Quantized sparse formats as LLM kernels ship them, against independent numbers:

(a) group-wise quantization scales and zero points (GPTQ/AWQ/Marlin layout) in every
    format, by hand and by their definition; none without groups;
(b) Sparse-Marlin 2:4 with 4-bit values: the buffer sizes of its ``Layer_2_4``;
(c) Flash-LLM tiled-CSL and SpInfer TCA-BME on matrices of several tiles: stats
    against the twin counts and the formats' definitions (test_formats.reference_stats),
    the encoded arrays (decoded back first), the closed forms, hand-computed examples,
    the i.i.d. expectation against Monte Carlo, bits monotone in the kept set;
(d) parameter validation.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import twins
from hypothesis import example, given, settings
from hypothesis import strategies as st
from test_formats import (
    ALL_FORMATS,
    Z,
    assert_stats_equal,
    decode,
    encoded_bits,
    params_st,
    reference_stats,
)

from simulator.errors import FormatError
from simulator.formats import (
    FormatParams,
    closed_form_bits,
    encode,
    format_stats,
    formulas,
    group_scale_bits,
    profile_gemm,
    profile_matrix,
)
from simulator.layers import Linear
from simulator.masks import Pruning, generate_mask

TILED = ("tiled-csl", "tca-bme")

group_params_st = st.builds(
    FormatParams,
    weight_bits=st.sampled_from([2, 4, 8, 16]),
    index_bits=st.integers(1, 8),
    block=st.tuples(st.integers(1, 6), st.integers(1, 6)),
    nm=st.sampled_from([(2, 4), (1, 4), (4, 8)]),
    group_size=st.sampled_from([1, 3, 8, 32, 128]),
    scale_bits=st.sampled_from([8, 16, 32]),
    zero_point_bits=st.sampled_from([0, 4, 8]),
)


@st.composite
def multi_tile_matrices(draw: st.DrawFn) -> np.ndarray:
    """Matrices of up to 3 x 3 Flash-LLM tiles (128 x 64), border tiles partial, at a
    random density, values 1..7."""
    rows = draw(st.integers(1, 300))
    cols = draw(st.integers(1, 180))
    density = draw(st.sampled_from([0.0, 0.003, 0.05, 0.3, 0.9, 1.0]))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    return (rng.random((rows, cols)) < density) * rng.integers(1, 8, (rows, cols))


# --- (a) group scales -------------------------------------------------------------------


def test_group_scales_by_hand():
    # a 4096 x 4096 projection (Llama-2-7B q_proj) at group size 128: 32 groups per row
    # of 4096 outputs; GPTQ 4-bit asymmetric: a 16-bit scale and a 4-bit zero per group
    p = FormatParams(weight_bits=4, group_size=128, scale_bits=16, zero_point_bits=4)
    assert group_scale_bits(1, 4096, 4096, p) == 4096 * 32 * 20
    # a row that does not divide: 100 inputs in groups of 32 -> 4 groups (the last short)
    assert group_scale_bits(2, 3, 100, FormatParams(group_size=32)) == 2 * 3 * 4 * 16
    for none in (None, 0):
        assert group_scale_bits(1, 8, 8, FormatParams(group_size=none)) == 0
    # in a format: 3 x 10, 5 kept, groups of 4 -> 3 per row, symmetric 16-bit scales
    w = np.zeros((3, 10), int)
    w[0, :5] = 1
    plain = format_stats(profile_matrix(w), "csr", FormatParams(weight_bits=4))
    grouped = format_stats(profile_matrix(w), "csr", FormatParams(weight_bits=4, group_size=4))
    assert grouped.scales_bits == 3 * 3 * 16
    assert grouped.total_bits == plain.total_bits + 3 * 3 * 16
    assert grouped.metadata_bits == plain.metadata_bits + 3 * 3 * 16
    assert plain.scales_bits == 0


@given(m=twins.gemm_masks(max_side=30), params=group_params_st, fmt=st.sampled_from(ALL_FORMATS))
def test_every_format_counts_the_group_scales(m, params, fmt):
    groups, rows, cols = m.shape
    p = profile_gemm(m)
    stats = format_stats(p, fmt, params)
    plain = FormatParams(
        weight_bits=params.weight_bits,
        index_bits=params.index_bits,
        block=params.block,
        nm=params.nm,
    )
    ref = reference_stats(m, fmt, plain)
    scales = (
        groups
        * rows
        * math.ceil(cols / params.group_size)
        * (params.scale_bits + params.zero_point_bits)
    )
    if not stats.representable:
        assert stats.total_bits == stats.scales_bits == 0
        assert closed_form_bits(p, fmt, params) == 0
        return
    # the format's own bits are unchanged; the scales come on top, in their own column
    assert_stats_equal(stats, ref)
    assert stats.scales_bits == scales
    assert stats.total_bits == format_stats(p, fmt, plain).total_bits + scales
    assert closed_form_bits(p, fmt, params) == stats.total_bits


@pytest.mark.parametrize("fmt", formulas.EXPECTED_FORMATS)
def test_expected_bits_add_the_group_scales(fmt):
    kw = dict(groups=2, rows=64, cols=200, density=0.2, weight_bits=4)
    plain = formulas.expected_format_bits(fmt, **kw)
    grouped = formulas.expected_format_bits(
        fmt, **kw, group_size=128, scale_bits=16, zero_point_bits=4
    )
    assert grouped - plain == pytest.approx(2 * 64 * 2 * 20)


@given(m=twins.gemm_masks(max_side=30), params=params_st, fmt=st.sampled_from(ALL_FORMATS))
def test_without_groups_nothing_changes(m, params, fmt):
    # the default: no groups, no scales; every number as before (the golden tables)
    assert params.group_size is None
    stats = format_stats(profile_gemm(m), fmt, params)
    assert stats.scales_bits == 0
    zero = FormatParams(
        weight_bits=params.weight_bits,
        index_bits=params.index_bits,
        block=params.block,
        nm=params.nm,
        group_size=0,
        zero_point_bits=8,
    )
    assert format_stats(profile_gemm(m), fmt, zero).total_bits == stats.total_bits


# --- (b) Sparse-Marlin 2:4 with 4-bit values --------------------------------------------


@pytest.mark.parametrize(("k", "n"), [(256, 512), (4096, 256)])
def test_sparse_marlin_2_4_equals_its_buffers(k, n):
    # IST-DASLab/Sparse-Marlin, marlin/__init__.py, Layer_2_4 with groupsize 128: k/2
    # kept 4-bit codes per output, meta int16 (n, k/16), scales float16 (k/128, n)
    layer = Linear(name="fc", in_features=k, out_features=n)
    mask = generate_mask(layer, Pruning(structure="nm", nm=(2, 4), seed=1))
    params = FormatParams(weight_bits=4, nm=(2, 4), group_size=128, scale_bits=16)
    stats = format_stats(profile_gemm(mask.astype(np.uint8)[None].copy()), "nm", params)
    values = (k // 2) * n * 4
    meta = n * (k // 16) * 16
    scales = (k // 128) * n * 16
    assert stats.values_bits == values
    assert stats.indices_bits == meta
    assert stats.scales_bits == scales
    assert stats.fillers_bits == stats.pointers_bits == stats.other_bits == 0
    assert stats.total_bits == values + meta + scales
    # 3.125 bits per dense weight
    assert stats.total_bits / (k * n) == pytest.approx(3.125)


# --- (c) tiled-CSL and TCA-BME -----------------------------------------------------------


_RNG = np.random.default_rng(14)
SEVERAL_TILES = (_RNG.random((300, 180)) < 0.3) * _RNG.integers(1, 8, (300, 180))


@settings(max_examples=40, deadline=None)
@given(w=multi_tile_matrices(), fmt=st.sampled_from(TILED), wb=st.sampled_from([4, 8, 16]))
@example(w=SEVERAL_TILES, fmt="tiled-csl", wb=16)  # 3 x 3 tiles, partial at the border
@example(w=SEVERAL_TILES, fmt="tca-bme", wb=16)  # 5 x 3 global tiles
def test_tiled_formats_bit_exact_on_several_tiles(w, fmt, wb):
    params = FormatParams(weight_bits=wb)
    p = profile_matrix(w)
    stats = format_stats(p, fmt, params)
    m = np.ascontiguousarray(w != 0, dtype=np.uint8)[None]
    assert_stats_equal(stats, reference_stats(m, fmt, params))
    enc = encode(w, fmt, params=params)
    np.testing.assert_array_equal(decode(enc, w.shape, 4, (4, 4), (2, 4)), w)
    assert stats.total_bits == encoded_bits(enc, w.shape, params)
    assert stats.total_bits == closed_form_bits(p, fmt, params)
    assert stats.entries == len(enc.values)


def test_tiled_csl_by_hand():
    # 256 x 128: 2 x 2 tiles of 128 x 64 holding 5, 0, 4 and 1 kept values; padded to
    # 8, 0, 4, 4 entries of 16 + 16 bits (fp16 value, short location); 4 + 2 offsets
    w = np.zeros((256, 128), np.float16)
    w[0, :5] = 1
    w[5, 70:74] = 2
    w[200, 100] = 3
    stats = format_stats(profile_matrix(w), "tiled-csl", FormatParams(weight_bits=16))
    assert stats.entries == 16 and stats.nnz == 10
    assert stats.total_bits == 16 * 32 + 6 * 32
    assert stats.fillers_bits == 6 * 32
    enc = encode(w, "tiled-csl", params=FormatParams(weight_bits=16))
    assert enc.pointers.tolist() == [0, 2, 3, 3, 4, 4]  # in units of 4 entries
    # tile (0, 0): row 0 keeps columns 0..4, padded at the first zeros (columns 5..7);
    # row 0 is not permuted (mask 0)
    assert enc.indices[:8].tolist() == list(range(8))
    assert enc.values[:8].tolist() == [1] * 5 + [0] * 3
    # tile (0, 1): row 5, columns 6..9 in the tile: location 5 * 64 + (c ^ 40)
    assert enc.indices[8:12].tolist() == [5 * 64 + (c ^ 40) for c in range(6, 10)]


def test_tca_bme_by_hand():
    # 64 x 64, 13 kept: one global tile; 13 values padded to 16, 64 bitmaps of 64 bits,
    # 4 median offsets, 2 global offsets and the max word, 32 bits each
    w = np.zeros((64, 64), np.float16)
    w[np.arange(13), np.arange(13) * 4] = 1
    stats = format_stats(profile_matrix(w), "tca-bme", FormatParams(weight_bits=16))
    assert stats.total_bits == 16 * 16 + 64 * 64 + 7 * 32
    assert stats.fillers_bits == 3 * 16
    enc = encode(w, "tca-bme", params=FormatParams(weight_bits=16))
    assert enc.pointers.tolist() == [0, 16, 16]
    # kept (i, 4i), i < 13: median tile 0 holds rows 0..15 -> all 13; others none
    assert enc.indices.tolist() == [0, 13, 13, 13]
    # the first local tile (rows 0..7, columns 0..7) keeps (0, 0) and (1, 4)
    assert int(enc.extra[0]) == (1 << 0) | (1 << (1 * 8 + 4))
    # its column-major neighbour in the 2 x 2 group is rows 8..15, columns 0..7: none
    assert int(enc.extra[1]) == 0
    # then rows 0..7, columns 8..15 keep (2, 8) and (3, 12)
    assert int(enc.extra[2]) == (1 << (2 * 8 + 0)) | (1 << (3 * 8 + 4))


@given(
    m=twins.gemm_masks(max_side=30),
    extra=st.integers(0, 2**16),
    fmt=st.sampled_from(TILED),
    params=group_params_st,
)
def test_tiled_bits_monotone_in_the_kept_set(m, extra, fmt, params):
    rng = np.random.default_rng(extra)
    more = np.ascontiguousarray(m | (rng.random(m.shape) < 0.2), dtype=np.uint8)
    a = format_stats(profile_gemm(m), fmt, params).total_bits
    b = format_stats(profile_gemm(more), fmt, params).total_bits
    assert a <= b


@pytest.mark.slow
@pytest.mark.parametrize("fmt", TILED)
@pytest.mark.parametrize(("shape", "density"), [((1, 200, 150), 0.3), ((2, 128, 64), 0.02)])
def test_tiled_expected_bits_vs_monte_carlo(fmt, shape, density):
    params = FormatParams(weight_bits=16)
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
        fmt, groups=groups, rows=rows, cols=cols, density=density, weight_bits=16
    )
    se = bits.std(ddof=1) / math.sqrt(n_masks)
    assert abs(bits.mean() - expected) <= Z * se, (bits.mean(), expected, se)


def test_expected_tile_padding_exact_sum():
    # one 2 x 2 tile at density 1/2, padded to 4: n ~ Binomial(4, 1/2) and (-n) mod 4
    # is 0, 3, 2, 1, 0 for n = 0..4 -> (0 + 4*3 + 6*2 + 4*1 + 0) / 16 = 28 / 16
    got = formulas.expected_tile_padding(
        groups=1, rows=2, cols=2, tile_rows=2, tile_cols=2, density=0.5, align=4
    )
    assert got == pytest.approx(28 / 16)
    # a 3 x 2 matrix in 2 x 2 tiles: a full tile and a 1 x 2 border tile
    # (n ~ Binomial(2, 1/2): (0 + 2*3 + 1*2) / 4 = 2)
    got = formulas.expected_tile_padding(
        groups=3, rows=3, cols=2, tile_rows=2, tile_cols=2, density=0.5, align=4
    )
    assert got == pytest.approx(3 * (28 / 16 + 2))


# --- (d) validation ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"group_size": -1}, "group size"),
        ({"scale_bits": 0}, "scale bits"),
        ({"scale_bits": 65}, "scale bits"),
        ({"zero_point_bits": -1}, "zero point bits"),
        ({"zero_point_bits": 65}, "zero point bits"),
        ({"group_size": 2.5}, "group_size"),
        ({"scale_bits": 16.0}, "scale_bits"),
    ],
)
def test_group_params_validation(kwargs, fragment):
    with pytest.raises(FormatError, match=fragment):
        FormatParams(**kwargs)


def test_tiled_widths_stated_too_narrow_raise():
    w = np.zeros((130, 70), int)
    w[0, :5] = 1
    p = profile_matrix(w)
    with pytest.raises(FormatError, match="tile offset"):
        format_stats(p, "tca-bme", FormatParams(pointer_bits=2))  # 8 entries: 4 bits
    with pytest.raises(FormatError, match="tile offset"):
        format_stats(p, "tiled-csl", FormatParams(pointer_bits=1))  # 2 vectors of 4: 2 bits
    # stated wide enough: used in place of the shipped 32 bits; the location stays 16
    # (and an absolute index width, a csr/csc setting, leaves it alone)
    stats = format_stats(p, "tiled-csl", FormatParams(abs_index_bits=12, pointer_bits=8))
    assert stats.total_bits == 8 * (8 + 16) + (4 + 2) * 8
    stats = format_stats(p, "tca-bme", FormatParams(pointer_bits=4))
    # 130 x 70 in 3 x 2 global tiles: 8 values, 6 x 4096 bitmap bits, 6 x 4 median
    # offsets, 6 + 1 global offsets and the max word
    assert stats.total_bits == 8 * 8 + 6 * 4096 + (24 + 6 + 2) * 4
