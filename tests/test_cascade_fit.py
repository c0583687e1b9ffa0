"""Cascaded filter pruning reaches the rate asked for: the common factor on every
layer's filter density, solved on a chain and a residual block where the kept weights
are counted by hand; on random small graphs against a brute-force search over every
factor with full masks; on the built-in networks within 1%; and ``cascade=False``
drawing each layer's mask at the density asked, as before."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.errors import MaskError
from simulator.masks import Pruning, generate_mask
from simulator.netmasks import (
    cascade_masks,
    effective_rate,
    fit_cascade,
    network_masks,
    network_profiles,
)
from simulator.workloads import load_network, network_from_dict


def conv(name, cin, cout, **extra):
    return {
        "name": name,
        "type": "conv2d",
        "in_channels": cin,
        "out_channels": cout,
        "kernel": 1,
        "input": 4,
        **extra,
    }


def kept(masks):
    return sum(int(np.count_nonzero(m)) for m in masks.values())


# a (3 -> 64, 1x1: 192 weights) -> b (64 -> 64, 1x1: 4096 weights); 4288 in all.
CHAIN = network_from_dict(
    {"name": "chain", "layers": [conv("a", 3, 64, inputs=["input"]), conv("b", 64, 64)]},
    "chain",
)


def test_chain_by_hand():
    """With k filters kept in both layers, a keeps 3k weights and b k filters of k
    inputs: 3k + k^2. Rate 4 asks for 4288 / 4 = 1072: k = 31 keeps 1054 (rate
    4.0683, 1.7% off), k = 32 keeps 1120 (3.8286, 4.4% off); 31 is nearest. Both
    layers keep round(64 * factor / 4) = round(16 * factor) filters: 31 from a factor
    just above 30.5 / 16 = 1.90625. Rate 2: k = 45 keeps 135 + 2025 = 2160 (rate
    1.98519, within 1%), k = 44 keeps 2068; 45 from 32 * factor > 44.5."""
    for rate, k, factor in ((4, 31, 30.5 / 16), (2, 45, 44.5 / 32)):
        pruning = Pruning(structure="filter", density=1 / rate)
        fit = fit_cascade(CHAIN, pruning)
        assert fit.factor == pytest.approx(factor, rel=1e-6)
        assert fit.factor > factor
        assert fit.kept_weights == 3 * k + k * k
        assert fit.rate_asked == rate
        assert fit.rate_reached == pytest.approx(4288 / (3 * k + k * k))
        masks = network_masks(CHAIN, pruning)
        assert kept(masks) == 3 * k + k * k
        assert int(masks["a"].reshape(64, -1).any(1).sum()) == k
    assert fit_cascade(CHAIN, Pruning(structure="filter", density=0.5)).rate_reached == (
        pytest.approx(1.985185, rel=1e-6)
    )


def test_per_layer_levels_keep_their_proportions():
    """a asked to keep 1/2, b 1/4: rate asked 4288 / (96 + 1024) = 3.8286. a keeps
    round(32 f) filters, b round(16 f), b reads a's: kept = ka (3 + kb). For f in
    (1.359375, 1.390625] ka = 44, kb = 22: 1100; just above 1.390625 (32 f > 44.5)
    ka = 45, kb = 22: 1125, the first to reach 1120 and the nearer (0.45% off)."""
    pruning = Pruning(structure="filter", density=1.0, per_layer={"a": 0.5, "b": 0.25})
    fit = fit_cascade(CHAIN, pruning)
    assert fit.rate_asked == pytest.approx(4288 / 1120)
    assert fit.factor == pytest.approx(44.5 / 32, rel=1e-6)
    assert fit.kept_weights == 45 * 25
    assert fit.rate_reached == pytest.approx(4288 / 1125)
    assert fit.densities["a"] == pytest.approx(2 * fit.densities["b"])
    assert kept(network_masks(CHAIN, pruning)) == 1125


def residual(a_ranking):
    """stem (3 -> 4), a (4 -> 4) reading stem, add(a, stem), head (4 -> 4) reading the
    add; 1x1 convs on 4x4 inputs: 12 + 16 + 16 = 44 weights. Weights rank filter 0
    first in stem and head; in a as ``a_ranking`` says (``"same"`` or ``"reversed"``)."""
    net = network_from_dict(
        {
            "name": "res",
            "layers": [
                conv("stem", 3, 4, inputs=["input"]),
                conv("a", 4, 4),
                conv("head", 4, 4, inputs=["add"]),
            ],
            "joins": [{"name": "add", "op": "add", "inputs": ["a", "stem"]}],
        },
        "res",
    )
    norms = np.array([4.0, 3.0, 2.0, 1.0])
    weights = {
        "stem": np.broadcast_to(norms[:, None, None, None], (4, 3, 1, 1)).copy(),
        "a": np.broadcast_to(
            (norms if a_ranking == "same" else norms[::-1])[:, None, None, None], (4, 4, 1, 1)
        ).copy(),
        "head": np.broadcast_to(norms[:, None, None, None], (4, 4, 1, 1)).copy(),
    }
    return net, weights


def test_residual_block_by_hand():
    """Rate 2 asks for 22 of 44 weights; every layer keeps round(4 * f / 2) = round(2 f)
    filters, the best by weight.

    a ranked the other way round: with k = 2, stem keeps {0, 1} (6 weights), a keeps
    filters {2, 3} of inputs {0, 1} (4); the add loses only channels both lost, {2, 3}
    and {0, 1}: none, so head keeps 2 filters x 4 inputs (8): 18 in all, rate 2.444.
    k = 3: 9 + 9 + 3 x 4 = 30, rate 1.467. 18 is nearer 22 (in log); k = 2 from
    2 f >= 1.5: factor 0.75, below 1, since the add gives back head's inputs.

    a ranked like stem: the add loses {k..3} and head keeps k x k. k = 2: 6 + 4 + 4 =
    14 (rate 3.14); k = 3: 9 + 9 + 9 = 27 (rate 1.630), the nearer; k = 3 from
    2 f > 2.5 (round(2.5) is 2): factor 1.25."""
    for ranking, total_kept, factor in (("reversed", 18, 0.75), ("same", 27, 1.25)):
        net, weights = residual(ranking)
        pruning = Pruning(structure="filter", density=0.5)
        fit = fit_cascade(net, pruning, weights)
        assert fit.kept_weights == total_kept
        assert fit.rate_reached == pytest.approx(44 / total_kept)
        assert fit.factor == pytest.approx(factor, rel=1e-6)
        assert kept(network_masks(net, pruning, weights)) == total_kept
        # per layer, 2 filters of each: 6 + 8 + 8 = 22, rate 2 exactly
        per_layer = network_masks(net, Pruning(structure="filter", density=0.5, cascade=False))
        assert kept(per_layer) == 22


def test_fit_refuses_a_pruning_that_does_not_cascade():
    with pytest.raises(MaskError, match="cascades"):
        fit_cascade(CHAIN, Pruning(structure="filter", density=0.5, cascade=False))
    with pytest.raises(MaskError, match="cascades"):
        fit_cascade(CHAIN, Pruning(structure="random", density=0.5))


def test_no_cascade_draws_each_layer_at_the_density_asked():
    net = load_network("resnet18")
    pruning = Pruning(structure="filter", density=0.25, seed=2, cascade=False)
    masks = network_masks(net, pruning)
    for layer in net.prunable_layers:
        np.testing.assert_array_equal(masks[layer.name], generate_mask(layer, pruning))


@st.composite
def small_graphs(draw):
    """A chain of 1x1 convs of random widths, with a residual add where two equal
    widths allow one, ending in a linear layer over the flattened output."""
    n = draw(st.integers(2, 5))
    widths = [draw(st.integers(2, 9)) for _ in range(n)]
    layers, joins = [], []
    prev, width = "input", 3
    for i, w in enumerate(widths):
        layers.append(conv(f"c{i}", width, w, inputs=[prev]))
        prev, width = f"c{i}", w
        if i >= 1 and widths[i - 1] == w and draw(st.booleans()):
            joins.append({"name": f"add{i}", "op": "add", "inputs": [f"c{i}", f"c{i - 1}"]})
            prev = f"add{i}"
    outs = draw(st.integers(2, 6))
    layers.append({"name": "fc", "type": "linear", "in_features": width * 16, "out_features": outs})
    layers[-1]["inputs"] = [prev]
    net = network_from_dict({"name": "g", "layers": layers, "joins": joins}, "g")
    per_layer = {
        f"c{i}": draw(st.sampled_from([1.0, 0.5, 0.25])) for i in range(n) if draw(st.booleans())
    }
    return net, per_layer


def brute_force_kept(net, pruning):
    """Kept weights of every state the factor can reach: each layer's filter count at
    every factor on a fine grid, then full masks (drawn per layer, cascaded)."""
    asked = {layer.name: pruning.density_of(layer.name) for layer in net.prunable_layers}
    out = set()
    seen = set()
    for f in np.geomspace(1e-3, 1.01 / min(asked.values()), 4000):
        dens = {n: min(1.0, f * d) for n, d in asked.items()}
        key = tuple(
            round(d * layer.weight_shape[0])
            for d, layer in zip(dens.values(), net.prunable_layers, strict=True)
        )
        if key in seen:
            continue
        seen.add(key)
        per = Pruning(structure="filter", per_layer=dens, seed=pruning.seed, cascade=False)
        masks = {layer.name: generate_mask(layer, per) for layer in net.prunable_layers}
        out.add(kept(cascade_masks(net, masks)))
    return out


@settings(max_examples=25)
@given(
    graph=small_graphs(),
    rate=st.floats(1.1, 12),
    seed=st.integers(0, 50),
)
def test_reached_rate_is_the_nearest_achievable(graph, rate, seed):
    net, per_layer = graph
    pruning = Pruning(structure="filter", density=1 / rate, per_layer=per_layer, seed=seed)
    fit = fit_cascade(net, pruning)
    total = net.weight_count
    states = brute_force_kept(net, pruning)
    target = total / fit.rate_asked
    best = min(abs(math.log(k / target)) for k in states if k)
    assert abs(math.log(fit.kept_weights / target)) <= best + 1e-12
    # the masks drawn at the solved densities keep what the channel counts said
    assert effective_rate(network_profiles(net, pruning)) == pytest.approx(fit.rate_reached)


@settings(max_examples=12)
@given(
    name=st.sampled_from(["resnet50", "resnet18", "mobilenetv2", "vgg16", "bert_base"]),
    rate=st.floats(1.5, 32),
    seed=st.integers(0, 1000),
)
def test_builtin_networks_reach_the_rate_within_one_percent(name, rate, seed):
    fit = fit_cascade(load_network(name), Pruning(structure="filter", density=1 / rate, seed=seed))
    assert fit.rate_asked == pytest.approx(rate)
    assert fit.rate_reached == pytest.approx(rate, rel=0.01)


@pytest.mark.parametrize("name", ["resnet18", "mobilenetv2", "lenet5", "minilm_l6"])
def test_generated_masks_equal_per_layer_masks_at_the_solved_densities_cascaded(name):
    """The cascaded masks are made in one step per layer; drawn per layer at the
    solved densities (a depthwise conv keeping every filter) and then cascaded mask by
    mask, they are the same."""
    from simulator.graph import follows_input

    net = load_network(name)
    pruning = Pruning(structure="filter", density=1 / 6, seed=5)
    fit = fit_cascade(net, pruning)
    at = Pruning(structure="filter", per_layer=fit.densities, seed=5, cascade=False)
    drawn = {
        layer.name: np.ones(layer.weight_shape, dtype=bool)
        if follows_input(layer)
        else generate_mask(layer, at)
        for layer in net.prunable_layers
    }
    expected = cascade_masks(net, drawn)
    got = network_masks(net, pruning)
    assert list(got) == list(expected)
    for n, m in expected.items():
        np.testing.assert_array_equal(got[n], m, err_msg=n)
    assert kept(got) == fit.kept_weights
