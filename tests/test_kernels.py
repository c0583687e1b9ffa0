"""Differential tests: every numba kernel equals its slow NumPy twin (tests/twins.py)."""

from __future__ import annotations

import numpy as np
import pytest
import twins
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from simulator import kernels

index_widths = st.integers(0, 8)  # 0 included: the profile's counting pass uses it
block_sides = st.integers(1, 9)


def tiny_masks() -> st.SearchStrategy[np.ndarray]:
    """Small masks drawn element by element, so hypothesis can shrink a failure."""
    shapes = hnp.array_shapes(min_dims=3, max_dims=3, min_side=1, max_side=7)
    return hnp.arrays(np.uint8, shapes, elements=st.sampled_from([0, 0, 0, 1, 7]))


def assert_line_stats_equal(m: np.ndarray, by_column: bool, index_bits: int) -> None:
    got = kernels.line_stats(m, by_column, index_bits)
    want = twins.line_stats(m, by_column, index_bits)
    for name, a, b in zip(("line_nnz", "line_fillers", "gap_hist"), got, want, strict=True):
        assert a.dtype == np.int64, name
        np.testing.assert_array_equal(a, b, err_msg=f"{name} (by_column={by_column})")


# --- hand-made edge cases ----------------------------------------------------------------

EDGE_SHAPES = [(1, 1, 1), (1, 1, 37), (1, 37, 1), (3, 1, 5), (2, 5, 1), (1, 300, 2), (4, 6, 9)]


@pytest.mark.parametrize("shape", EDGE_SHAPES)
@pytest.mark.parametrize("fill", [0, 1])
@pytest.mark.parametrize("by_column", [False, True])
def test_line_stats_empty_and_full(shape, fill, by_column):
    m = np.full(shape, fill, dtype=np.uint8)
    g, r, c = shape
    lines, length = (c, r) if by_column else (r, c)
    for b in (0, 1, 4, 8):
        assert_line_stats_equal(m, by_column, b)
        line_nnz, fillers, hist = kernels.line_stats(m, by_column, b)
        assert line_nnz.shape == fillers.shape == (g * lines,)
        assert hist.shape == (length,)
        assert (line_nnz == fill * length).all()
        assert not fillers.any()  # full: no zero runs; empty: no entries
        # full: every kept entry is preceded by 0 zeros; empty: no entries at all
        assert hist[0] == fill * m.size and not hist[1:].any()


def test_line_stats_hand_counted_eie_column():
    # EIE (Han et al., ISCA 2016, Fig. 2 example): one column, 18 zeros before the 3rd
    # value; a 4-bit index spans 15 zeros, so one filler. As a row: the same.
    col = np.array([0, 0, 1, 2] + [0] * 18 + [3], dtype=np.uint8)
    m_col = np.ascontiguousarray(col[None, :, None])
    m_row = np.ascontiguousarray(col[None, None, :])
    for m, by_column in ((m_col, True), (m_row, False)):
        line_nnz, fillers, hist = kernels.line_stats(m, by_column, 4)
        assert line_nnz.tolist() == [3]
        assert fillers.tolist() == [1]
        assert np.flatnonzero(hist).tolist() == [0, 2, 18]  # runs of 2, 0 and 18 zeros
        # 3-bit index: floor(2/8) + 0 + floor(18/8) = 2; 1-bit: 1 + 0 + 9 = 10; 0-bit: 20
        assert kernels.line_stats(m, by_column, 3)[1].tolist() == [2]
        assert kernels.line_stats(m, by_column, 1)[1].tolist() == [10]
        assert kernels.line_stats(m, by_column, 0)[1].tolist() == [20]


def test_line_stats_groups_are_separate_matrices():
    # a column's zero run does not continue from one group into the next
    m = np.zeros((2, 3, 1), dtype=np.uint8)
    m[0, 0, 0] = m[1, 2, 0] = 1
    line_nnz, fillers, hist = kernels.line_stats(m, True, 1)
    assert line_nnz.tolist() == [1, 1]
    assert fillers.tolist() == [0, 1]  # group 1: two zeros before its entry
    assert hist.tolist() == [1, 0, 1]


def test_block_counts_hand_counted():
    m = np.zeros((1, 5, 7), dtype=np.uint8)
    m[0, 0, 0] = m[0, 1, 6] = m[0, 4, 3] = 1  # 2x3 tiles: (0,0), (0,2), (2,1)
    assert kernels.block_counts(m, 2, 3).tolist() == [2, 0, 1]
    assert kernels.block_counts(m, 5, 7).tolist() == [1]
    assert kernels.block_counts(m, 1, 1).tolist() == [1, 1, 0, 0, 1]


def test_tile_nnz_hand_counted():
    m = np.zeros((2, 5, 7), dtype=np.uint8)
    m[0, 0, 0] = m[0, 1, 6] = m[0, 4, 3] = m[0, 4, 4] = 1
    m[1, 3, 2] = 1
    # 2x3 tiles: 3 tile-rows x 3 tile-columns per group, border tiles partial
    assert (
        kernels.tile_nnz(m, 2, 3).tolist()
        == [1, 0, 1, 0, 0, 0, 0, 2, 0]
        + [0] * 3
        + [
            1,
            0,
            0,
        ]
        + [0] * 3
    )
    assert kernels.tile_nnz(m, 5, 7).tolist() == [4, 1]


def test_group_max_hand_counted():
    m = np.zeros((2, 2, 10), dtype=np.uint8)
    m[0, 0, [0, 1, 2]] = 1  # 3 in the first group of 4
    m[1, 1, [3, 4, 5, 8, 9]] = 1  # straddles groups of 4: 1 + 2 + 2
    assert kernels.group_max(m, 4) == 3
    assert kernels.group_max(m[1:].copy(), 4) == 2
    assert kernels.group_max(m, 10) == 5
    assert kernels.group_max(np.zeros((1, 3, 3), np.uint8), 2) == 0


# --- differential, hypothesis ------------------------------------------------------------


@given(m=twins.gemm_masks(), b=index_widths, by_column=st.booleans())
def test_line_stats_matches_twin(m, b, by_column):
    assert_line_stats_equal(m, by_column, b)


@given(m=tiny_masks(), b=st.integers(0, 3), by_column=st.booleans())
def test_line_stats_matches_twin_tiny(m, b, by_column):
    assert_line_stats_equal(m, by_column, b)


@given(data=st.data(), b=index_widths, by_column=st.booleans())
def test_line_stats_matches_twin_on_long_sparse_lines(data, b, by_column):
    # masks made to have zero runs of 2**b and more, so that fillers do occur
    m = data.draw(twins.masks_with_runs(b, by_column))
    assert_line_stats_equal(m, by_column, b)
    # the histogram gives the same total at any width: sum_k hist[k] * floor(k / 2**b)
    hist = kernels.line_stats(m, by_column, b)[2]
    for width in range(9):
        want = twins.line_fillers(m, width, by_column).sum()
        assert int((hist * (np.arange(hist.size) // 2**width)).sum()) == want


@given(m=twins.gemm_masks(long_lines=False), br=block_sides, bc=block_sides)
def test_block_counts_matches_twin(m, br, bc):
    got = kernels.block_counts(m, br, bc)
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, twins.block_counts(m, br, bc))


@given(m=twins.gemm_masks(long_lines=False), br=block_sides, bc=block_sides)
def test_tile_nnz_matches_twin(m, br, bc):
    got = kernels.tile_nnz(m, br, bc)
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, twins.tile_nnz(m, br, bc))
    assert got.sum() == np.count_nonzero(m)


@given(m=tiny_masks(), br=st.integers(1, 4), bc=st.integers(1, 4))
def test_block_counts_matches_twin_tiny(m, br, bc):
    np.testing.assert_array_equal(kernels.block_counts(m, br, bc), twins.block_counts(m, br, bc))


@given(m=twins.gemm_masks(), size=st.integers(1, 16))
def test_group_max_matches_twin(m, size):
    assert int(kernels.group_max(m, size)) == twins.group_max(m, size)


@given(m=tiny_masks(), size=st.integers(1, 8))
def test_group_max_matches_twin_tiny(m, size):
    assert int(kernels.group_max(m, size)) == twins.group_max(m, size)


def test_nm_keep_hand_ranked():
    # 2 of 4: the two largest; a tie at the threshold goes to the lower position
    score = np.array([[0.1, 0.9, 0.5, 0.3], [0.5, 0.2, 0.5, 0.5], [-np.inf, 1.0, -np.inf, 0.0]])
    want = [[0, 1, 1, 0], [1, 0, 1, 0], [0, 1, 0, 1]]
    assert kernels.nm_keep(score, np.int64(2)).tolist() == want


@given(
    data=st.data(),
    m=st.sampled_from([1, 2, 3, 4, 8, 16, 31, 32, 33, 64]),
    levels=st.sampled_from([2, 5, 1000]),
)
def test_nm_keep_matches_stable_sort(data, m, levels):
    """Every branch (4 unrolled, ranking by counting up to 32, sorting above) against the twin,
    with many ties (few distinct levels) and -inf padding."""
    rows = data.draw(st.integers(1, 30))
    n = data.draw(st.integers(0, m + 1))
    seed = data.draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    score = rng.integers(0, levels, size=(rows, m)).astype(np.float64)
    score[rng.random(score.shape) < 0.1] = -np.inf
    got = kernels.nm_keep(score, np.int64(n))
    assert np.array_equal(got, twins.nm_keep(score, n))


@given(
    data=st.data(),
    m=st.sampled_from([1, 3, 4, 8, 32, 33, 64]),
    levels=st.sampled_from([2, 1000, 2**32]),
)
def test_nm_keep_of_uint32_draws_matches_stable_sort(data, m, levels):
    """Unsigned 32-bit scores (the random generator's), every branch, against the twin
    on the same values as float64 (exact below 2**53), ties and the largest draws
    included."""
    rows = data.draw(st.integers(1, 30))
    n = data.draw(st.integers(0, m + 1))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    score = rng.integers(0, levels, size=(rows, m), dtype=np.uint64).astype(np.uint32)
    score[rng.random(score.shape) < 0.1] = 2**32 - 1
    got = kernels.nm_keep(score, np.int64(n))
    assert np.array_equal(got, twins.nm_keep(score.astype(np.float64), n))


@given(seed=st.integers(0, 2**32 - 1), n=st.integers(0, 5))
def test_nm_keep_of_four_as_counted(seed, n):
    """The unrolled 4-wide branch against the counting branch (the same rows with a
    fifth column of -inf, which is above none of them), NaN included."""
    rng = np.random.default_rng(seed)
    score = rng.integers(0, 3, size=(40, 4)).astype(np.float64)
    score[rng.random(score.shape) < 0.1] = -np.inf
    score[rng.random(score.shape) < 0.1] = np.nan
    padded = np.concatenate([score, np.full((40, 1), -np.inf)], axis=1)
    got = kernels.nm_keep(score, np.int64(n))
    assert np.array_equal(got, kernels.nm_keep(padded, np.int64(n))[:, :4])


@given(twins.gemm_masks(max_side=30, long_lines=False), st.integers(1, 9), index_widths)
def test_pe_column_entries_match_twin(m, pes, b):
    """Packed input, either layout of the output; the factored and all-kept forms where
    the mask is one (its rows' and columns' outer product)."""
    want, want_kept = twins.pe_column_entries(m, pes, b)
    packed = np.packbits(m != 0, axis=-1)
    row_nnz = np.count_nonzero(m, axis=2).ravel().astype(np.int64)
    args = (np.int64(m.shape[2]), np.int64(pes), np.int64(b), row_nnz)
    got, kept = kernels.pe_column_entries(packed, *args, False)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(kept, want_kept)
    by_column, kept = kernels.pe_column_entries(packed, *args, True)
    np.testing.assert_array_equal(by_column, want.T)
    assert by_column.flags.c_contiguous and by_column.dtype == np.int64
    rows, cols = m.any(axis=2), m.any(axis=1)
    outer = rows[:, :, None] & cols[:, None, :]
    want, want_kept = twins.pe_column_entries(outer.view(np.uint8), pes, b)
    for by_column in (False, True):
        got, kept = kernels.factored_pe_entries(
            rows.view(np.uint8), cols.view(np.uint8), np.int64(pes), np.int64(b), by_column
        )
        np.testing.assert_array_equal(got, want.T if by_column else want)
        np.testing.assert_array_equal(kept, want_kept)


@given(twins.gemm_masks(max_side=30, long_lines=False), index_widths)
def test_factored_line_stats_match_twin(m, b):
    rows, cols = m.any(axis=2), m.any(axis=1)
    outer = np.ascontiguousarray(rows[:, :, None] & cols[:, None, :]).view(np.uint8)
    for by_column, own, other in ((False, rows, cols), (True, cols, rows)):
        got = kernels.factored_line_stats(own.view(np.uint8), other.view(np.uint8), np.int64(b))
        for g, w in zip(got, twins.line_stats(outer, by_column, b), strict=True):
            np.testing.assert_array_equal(g, w)
            assert g.dtype == np.int64
