"""Profiles that hold no mask-sized array of bytes: masks that keep whole rows and
columns (filter, channel and column pruning, cascaded or not) profiled from their two
factors, and generated non-structured masks kept bit-packed. Every count equals the
kernel's pass over the mask itself, and so does every format's storage."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.formats import (
    FORMATS,
    FormatParams,
    all_kept_profile,
    factored_profile,
    format_stats,
    packed_profile,
    profile_gemm,
    profile_mask,
)
from simulator.layers import Linear
from simulator.masks import Pruning, generate_mask, line_factors
from simulator.netmasks import network_masks, network_profiles
from simulator.workloads import load_network

WIDTHS = (0, 1, 2, 4, 8)


def assert_same_counts(got, want) -> None:
    assert (got.groups, got.rows, got.cols, got.weights) == (
        want.groups,
        want.rows,
        want.cols,
        want.weights,
    )
    assert got.nnz == want.nnz
    for axis in ("row", "col"):
        np.testing.assert_array_equal(got.line_nnz(axis), want.line_nnz(axis))
        np.testing.assert_array_equal(got.gap_hist(axis), want.gap_hist(axis))
        for b in WIDTHS:
            np.testing.assert_array_equal(got.line_fillers(axis, b), want.line_fillers(axis, b))
            assert got.line_fillers(axis, b).dtype == np.int64
        assert got.line_nnz(axis).dtype == got.gap_hist(axis).dtype == np.int64
    np.testing.assert_array_equal(got.kept_rows(), want.kept_rows())
    np.testing.assert_array_equal(got.kept_cols(), want.kept_cols())
    np.testing.assert_array_equal(got.gemm, want.gemm)
    assert got.gemm.dtype == np.uint8 and got.gemm.flags.c_contiguous


def assert_same_storage(got, want) -> None:
    for params in (FormatParams(weight_bits=4, index_bits=2), FormatParams(weight_bits=8)):
        for fmt in FORMATS:
            a, b = format_stats(got, fmt, params), format_stats(want, fmt, params)
            assert a.total_bits == b.total_bits, fmt
            assert a.entries == b.entries and a.representable == b.representable, fmt
            np.testing.assert_array_equal(a.line_entries, b.line_entries)


@st.composite
def factors(draw):
    g, rows, cols = draw(st.integers(1, 3)), draw(st.integers(1, 40)), draw(st.integers(1, 40))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    dr, dc = draw(st.sampled_from([0.0, 0.05, 0.5, 1.0])), draw(st.sampled_from([0.0, 0.1, 0.7]))
    return rng.random((g, rows)) >= dr, rng.random((g, cols)) >= dc


@settings(max_examples=80, deadline=None)
@given(factors())
def test_factored_counts_equal_the_pass_over_the_built_mask(case):
    rows, cols = case
    built = np.ascontiguousarray(rows[:, :, None] & cols[:, None, :]).view(np.uint8)
    got, want = factored_profile(rows, cols, "x"), profile_gemm(built, "x")
    assert_same_counts(got, want)
    assert_same_storage(factored_profile(rows, cols, "x"), profile_gemm(built.copy(), "x"))


@pytest.mark.parametrize("structure", ["filter", "channel", "column"])
@pytest.mark.parametrize("density", [0.3, 1.0])
def test_line_factors_make_generate_mask(structure, density):
    for layer in load_network("mobilenetv2").prunable_layers[:6]:
        pruning = Pruning(structure=structure, density=density, seed=3)
        rows, cols = line_factors(layer, pruning)
        mask = generate_mask(layer, pruning)
        built = (rows[:, :, None] & cols[:, None, :]).reshape(layer.weight_shape)
        np.testing.assert_array_equal(built, mask)


@pytest.mark.parametrize("name", ["lenet5", "resnet18", "mobilenetv2"])
@pytest.mark.parametrize("cascade", [True, False])
def test_network_profiles_of_filter_pruning_equal_those_of_its_masks(name, cascade):
    network = load_network(name)
    pruning = Pruning(structure="filter", density=1 / 4, seed=1, cascade=cascade)
    got = network_profiles(network, pruning)
    masks = network_masks(network, pruning)
    assert list(got) == list(masks)
    for layer in network.prunable_layers:
        want = profile_mask(layer, masks[layer.name])
        assert_same_counts(got[layer.name], want)


def test_dense_network_profiles_keep_everything_without_a_mask():
    network = load_network("alexnet")
    for layer in network.prunable_layers:
        got = network_profiles(network, Pruning(structure="dense"))[layer.name]
        g = layer.gemm
        assert got.nnz == got.weights == layer.weight_count
        assert got.gemm.base is not None and got.gemm.base.nbytes == 1  # never built
        want = all_kept_profile(g.groups, g.rows, g.cols, layer.name)
        np.testing.assert_array_equal(got.line_nnz("col"), want.line_nnz("col"))


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_packed_profiles_count_what_the_mask_holds(data):
    g, rows, cols = (data.draw(st.integers(1, n)) for n in (3, 30, 45))
    density = data.draw(st.sampled_from([0.0, 0.02, 0.3, 0.9, 1.0]))
    seed = data.draw(st.integers(0, 2**32 - 1))
    mask = np.random.default_rng(seed).random((g * rows, cols)) < density
    layer = Linear(name="fc", in_features=cols, out_features=g * rows)
    got, want = packed_profile(layer, mask), profile_mask(layer, mask)
    assert got.packed.nbytes == g * rows * -(-cols // 8)
    assert_same_counts(got, want)
    assert_same_storage(packed_profile(layer, mask), profile_mask(layer, mask))


def test_generated_random_network_profiles_are_packed():
    network = load_network("resnet18")
    pruning = Pruning(density=1 / 8, seed=2)
    got = network_profiles(network, pruning)
    masks = network_masks(network, pruning)
    for layer in network.prunable_layers:
        assert got[layer.name].packed.nbytes <= -(-layer.weight_count // 8) + layer.gemm.rows
        assert_same_counts(got[layer.name], profile_mask(layer, masks[layer.name]))
