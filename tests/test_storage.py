"""Whole-network storage and the storage break-even."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from simulator.errors import MaskError
from simulator.formats import FormatParams, format_stats, profile_mask
from simulator.layers import Linear
from simulator.masks import Pruning, generate_mask
from simulator.storage import network_storage, storage_breakeven
from simulator.units import ceil_log2
from simulator.workloads import Network, load_network

P44 = FormatParams(weight_bits=4, index_bits=4)


def test_totals_add_up_over_layers():
    net = load_network("lenet5")
    res = network_storage(net, Pruning(density=0.1), P44, ["dense", "csr", "csr-rel"])
    frame, totals = res.to_frame(), res.totals().set_index("format")
    assert set(frame["layer"]) == {layer.name for layer in net.prunable_layers}
    for fmt in ("dense", "csr", "csr-rel"):
        rows = frame[frame["format"] == fmt]
        assert totals.at[fmt, "total_bits"] == rows["total_bits"].sum()
        parts = (
            rows[["values_bits", "indices_bits", "pointers_bits", "fillers_bits", "other_bits"]]
            .to_numpy()
            .sum()
        )
        assert parts == totals.at[fmt, "total_bits"]
    # dense stores every weight at 4 bits: 430,500 x 4 (hand computation)
    assert totals.at["dense", "total_bits"] == 430_500 * 4
    assert totals.at["dense", "compression"] == 1.0


def test_given_masks_are_used_and_checked():
    layer = Linear(name="fc", in_features=8, out_features=4)
    net = Network(name="one", layers=(layer,))
    mask = np.zeros((4, 8), dtype=bool)
    mask[0, 0] = mask[3, 7] = True
    res = network_storage(net, Pruning(), P44, ["coo"], masks={"fc": mask})
    # 2 kept values x (4 value bits + 2 row bits + 3 column bits)
    assert res.stats["fc"]["coo"].total_bits == 2 * (4 + 2 + 3)
    with pytest.raises(MaskError, match="expected shape"):
        network_storage(net, Pruning(), P44, ["coo"], masks={"fc": mask.T})
    with pytest.raises(MaskError, match="no mask given"):
        network_storage(net, Pruning(), P44, ["coo"], masks={})


def test_breakeven_matches_exact_storage_of_a_real_mask():
    """At the break-even rate, an actual random mask costs what the structured one does."""
    layer = Linear(name="fc", in_features=2048, out_features=1024)
    net = Network(name="one", layers=(layer,))
    params = FormatParams(weight_bits=8, index_bits=4)
    (be, _) = storage_breakeven(net, "filter", 4, params, "csr-rel")
    # filter pruning at 4x keeps 256 of 1024 rows: 256 x 2048 x 8 bits + a survivor list
    # (the cheaper of 256 x 10-bit indices and a 1024-bit bitmap)
    assert be.structured_bits == 256 * 2048 * 8 + 1024
    assert 4 < be.nonstructured_rate < math.inf
    mask = generate_mask(layer, Pruning(density=1 / be.nonstructured_rate, seed=3))
    exact = format_stats(profile_mask(layer, mask), "csr-rel", params).total_bits
    assert exact == pytest.approx(be.structured_bits, rel=0.01)


def test_breakeven_ratio_follows_the_closed_form():
    """P_n / P_s = (1 + b_i/b_w)(1 + f), f = fillers per kept weight at break-even
    (pointers and the survivor list ignored: they are < 0.5% here)."""
    layer = Linear(name="fc", in_features=4096, out_features=4096)
    net = Network(name="one", layers=(layer,))
    for wb, ib, rate in ((8, 4, 4), (4, 4, 2), (8, 8, 8), (16, 5, 4)):
        params = FormatParams(weight_bits=wb, index_bits=ib)
        (be, _) = storage_breakeven(net, "filter", rate, params, "csr-rel")
        d = 1 / be.nonstructured_rate
        q = (1 - d) ** (2**ib)
        f = q / (1 - q)
        assert be.ratio == pytest.approx((1 + ib / wb) * (1 + f), rel=0.01), (wb, ib, rate)


def test_breakeven_never_when_pointers_alone_cost_more():
    """4096 rows of 4 weights, filter-pruned to one row: 4 x 4 value bits + a 12-bit
    survivor index = 28 bits; CSR needs 4097 pointers of at least 1 bit whatever the
    mask, so no non-structured rate breaks even, while absolute CSC does (one kept weight:
    4 + 12 index bits + 5 one-bit pointers = 21 bits)."""
    layer = Linear(name="fc", in_features=4, out_features=4096)
    net = Network(name="one", layers=(layer,))
    (be, total) = storage_breakeven(net, "filter", 4096, P44, "csr-rel")
    assert be.structured_bits == 4 * 4 + 12
    assert math.isinf(be.nonstructured_rate) and math.isinf(total.nonstructured_rate)
    (be_csc, _) = storage_breakeven(net, "filter", 4096, P44, "csc")
    assert math.isfinite(be_csc.nonstructured_rate)


def test_fillers_hold_storage_near_their_floor():
    """4-bit weights and indices, long rows: a run of 16 zeros costs an 8-bit filler, so
    storage stays near W/16 x 8 = W/2 bits until rows empty out; filter pruning at 8x
    costs W/8 x 4 = W/2, so break-even needs far more than the 2x of the index alone."""
    layer = Linear(name="fc", in_features=16384, out_features=256)
    net = Network(name="one", layers=(layer,))
    (be, _) = storage_breakeven(net, "filter", 8, P44, "csr-rel")
    assert be.ratio > 10


def test_network_breakeven_lies_between_layer_breakevens():
    net = load_network("lenet5")
    rows = storage_breakeven(net, "filter", 4, FormatParams(weight_bits=8, index_bits=5))
    layers, total = rows[:-1], rows[-1]
    assert total.layer == "(network)"
    rates = [r.nonstructured_rate for r in layers]
    assert min(rates) <= total.nonstructured_rate <= max(rates)
    assert total.structured_bits == sum(r.structured_bits for r in layers)


def test_nonstructured_storage_never_grows_as_the_rate_rises():
    """Magnitude masks of fixed weights are nested, so exact storage must not grow."""
    layer = Linear(name="fc", in_features=300, out_features=200)
    w = np.random.default_rng(0).standard_normal(layer.weight_shape)
    for fmt in ("csr", "csc", "csr-rel", "csc-rel", "coo", "bitmap"):
        bits = []
        for rate in (1, 1.5, 2, 3, 4, 8, 16, 32, 64, 128, 1000):
            mask = generate_mask(layer, Pruning(structure="magnitude", density=1 / rate), w)
            bits.append(format_stats(profile_mask(layer, mask), fmt, P44).total_bits)
        assert all(a >= b for a, b in itertools.pairwise(bits)), (fmt, bits)


def test_breakeven_rejects_nonstructured_reference():
    net = load_network("lenet5")
    with pytest.raises(MaskError, match="structured"):
        storage_breakeven(net, "random", 4, P44)
    with pytest.raises(MaskError, match="format"):
        storage_breakeven(net, "filter", 4, P44, sparse_format="bsr")


def test_structured_reference_storage_by_hand():
    """Channel pruning of a 3x3 conv in the compact format: kept channels x R x S per
    filter, and the survivor list of the channels."""
    net = Network(name="c", layers=(load_network("lenet5").layer("conv2"),))
    (be, _) = storage_breakeven(net, "channel", 4, FormatParams(weight_bits=8, index_bits=4))
    # conv2: 50 filters x 20 channels x 5 x 5; 4x keeps 5 channels = 125 GEMM columns of 500
    # survivor list: min(125 x ceil(log2 500) = 1125, 500) = 500 bits
    assert be.structured_bits == 50 * 125 * 8 + 500
    assert ceil_log2(500) == 9


def test_compact_names_the_surviving_groups():
    """A depthwise conv of 8 groups, 4 filters (groups) kept: the survivor list of the
    groups costs min(4 x 3 bits, an 8-bit bitmap) = 8 bits; nothing else is listed
    because each surviving group keeps its one row and all 9 columns."""
    from simulator.layers import Conv2d

    layer = Conv2d(
        name="dw",
        in_channels=8,
        out_channels=8,
        kernel_hw=(3, 3),
        input_hw=(8, 8),
        padding_hw=(1, 1),
        groups=8,
    )
    mask = np.zeros(layer.weight_shape, dtype=bool)
    mask[:4] = True
    s = format_stats(profile_mask(layer, mask), "compact", FormatParams(weight_bits=8))
    assert s.other_bits == 8
    assert s.values_bits == 4 * 9 * 8 and s.fillers_bits == 0
