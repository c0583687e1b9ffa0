"""Differential tests: every numba kernel equals its slow NumPy twin (tests/twins.py)."""

from __future__ import annotations

import numpy as np
import pytest
import twins
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from simulator import kernels

index_widths = st.integers(1, 8)
block_sides = st.integers(1, 9)


def tiny_masks() -> st.SearchStrategy[np.ndarray]:
    """Small masks drawn element by element, so hypothesis can shrink a failure."""
    shapes = hnp.array_shapes(min_dims=3, max_dims=3, min_side=1, max_side=7)
    return hnp.arrays(np.uint8, shapes, elements=st.sampled_from([0, 0, 0, 1, 7]))


def assert_profile_equal(m: np.ndarray) -> None:
    got = kernels.line_profile(m)
    want = twins.line_profile(m)
    for name, a, b in zip(("row_nnz", "col_nnz", "row_gap_hist", "col_gap_hist"), got, want,
                          strict=True):
        assert a.dtype == np.int64, name
        np.testing.assert_array_equal(a, b, err_msg=name)


# --- hand-made edge cases ----------------------------------------------------------------

EDGE_SHAPES = [(1, 1, 1), (1, 1, 37), (1, 37, 1), (3, 1, 5), (2, 5, 1), (1, 300, 2), (4, 6, 9)]


@pytest.mark.parametrize("shape", EDGE_SHAPES)
@pytest.mark.parametrize("fill", [0, 1])
def test_line_profile_empty_and_full(shape, fill):
    m = np.full(shape, fill, dtype=np.uint8)
    assert_profile_equal(m)
    row_nnz, col_nnz, rgh, cgh = kernels.line_profile(m)
    g, r, c = shape
    assert row_nnz.sum() == col_nnz.sum() == fill * g * r * c
    # full: every kept entry is preceded by 0 zeros; empty: no entries at all
    assert rgh[0] == cgh[0] == fill * g * r * c
    assert rgh[1:].sum() == cgh[1:].sum() == 0


@pytest.mark.parametrize("shape", EDGE_SHAPES)
@pytest.mark.parametrize("fill", [0, 1])
@pytest.mark.parametrize("by_column", [False, True])
def test_line_fillers_empty_and_full_have_none(shape, fill, by_column):
    m = np.full(shape, fill, dtype=np.uint8)
    for b in (1, 4, 8):
        out = kernels.line_fillers(m, b, by_column)
        assert out.shape == (shape[0] * (shape[2] if by_column else shape[1]),)
        assert not out.any()


def test_line_fillers_hand_counted_eie_column():
    # EIE (Han et al., ISCA 2016, Fig. 2 example): one column, 18 zeros before the 3rd
    # value; a 4-bit index spans 15 zeros, so one filler. As a row: the same.
    col = np.array([0, 0, 1, 2] + [0] * 18 + [3], dtype=np.uint8)
    m_col = np.ascontiguousarray(col[None, :, None])
    m_row = np.ascontiguousarray(col[None, None, :])
    assert kernels.line_fillers(m_col, 4, True).tolist() == [1]
    assert kernels.line_fillers(m_row, 4, False).tolist() == [1]
    # 3-bit index: runs 2, 0, 18 cost 0 + 0 + floor(18/8) = 2; 1-bit: 1 + 0 + 9 = 10
    assert kernels.line_fillers(m_col, 3, True).tolist() == [2]
    assert kernels.line_fillers(m_row, 1, False).tolist() == [10]


def test_block_counts_hand_counted():
    m = np.zeros((1, 5, 7), dtype=np.uint8)
    m[0, 0, 0] = m[0, 1, 6] = m[0, 4, 3] = 1  # 2x3 tiles: (0,0), (0,2), (2,1)
    assert kernels.block_counts(m, 2, 3).tolist() == [2, 0, 1]
    assert kernels.block_counts(m, 5, 7).tolist() == [1]
    assert kernels.block_counts(m, 1, 1).tolist() == [1, 1, 0, 0, 1]


def test_group_max_hand_counted():
    m = np.zeros((2, 2, 10), dtype=np.uint8)
    m[0, 0, [0, 1, 2]] = 1  # 3 in the first group of 4
    m[1, 1, [3, 4, 5, 8, 9]] = 1  # straddles groups of 4: 1 + 2 + 2
    assert kernels.group_max(m, 4) == 3
    assert kernels.group_max(m[1:].copy(), 4) == 2
    assert kernels.group_max(m, 10) == 5
    assert kernels.group_max(np.zeros((1, 3, 3), np.uint8), 2) == 0


# --- differential, hypothesis ------------------------------------------------------------


@given(m=twins.gemm_masks())
def test_line_profile_matches_twin(m):
    assert_profile_equal(m)


@given(m=tiny_masks())
def test_line_profile_matches_twin_tiny(m):
    assert_profile_equal(m)


@given(m=twins.gemm_masks(), b=index_widths, by_column=st.booleans())
def test_line_fillers_matches_twin(m, b, by_column):
    got = kernels.line_fillers(m, b, by_column)
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, twins.line_fillers(m, b, by_column))


@given(data=st.data(), b=index_widths, by_column=st.booleans())
def test_line_fillers_matches_twin_on_long_sparse_lines(data, b, by_column):
    # masks made to have zero runs of 2**b and more, so that fillers do occur
    m = data.draw(twins.masks_with_runs(b, by_column))
    want = twins.line_fillers(m, b, by_column)
    np.testing.assert_array_equal(kernels.line_fillers(m, b, by_column), want)
    # the profile's gap histograms give the same totals: sum_k hist[k] * floor(k / 2**b)
    _, _, rgh, cgh = kernels.line_profile(m)
    hist = cgh if by_column else rgh
    assert int((hist * (np.arange(hist.size) // 2**b)).sum()) == want.sum()


@given(m=tiny_masks(), b=st.integers(1, 3), by_column=st.booleans())
def test_line_fillers_matches_twin_tiny(m, b, by_column):
    np.testing.assert_array_equal(
        kernels.line_fillers(m, b, by_column), twins.line_fillers(m, b, by_column)
    )


@given(m=twins.gemm_masks(long_lines=False), br=block_sides, bc=block_sides)
def test_block_counts_matches_twin(m, br, bc):
    got = kernels.block_counts(m, br, bc)
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, twins.block_counts(m, br, bc))


@given(m=tiny_masks(), br=st.integers(1, 4), bc=st.integers(1, 4))
def test_block_counts_matches_twin_tiny(m, br, bc):
    np.testing.assert_array_equal(kernels.block_counts(m, br, bc), twins.block_counts(m, br, bc))


@given(m=twins.gemm_masks(), size=st.integers(1, 16))
def test_group_max_matches_twin(m, size):
    assert int(kernels.group_max(m, size)) == twins.group_max(m, size)


@given(m=tiny_masks(), size=st.integers(1, 8))
def test_group_max_matches_twin_tiny(m, size):
    assert int(kernels.group_max(m, size)) == twins.group_max(m, size)
