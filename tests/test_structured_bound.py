"""Structured pruning on a dense array: memory never makes it superlinear. Its
speedup over dense stays within what the array's own cycles give, the ratio of MACs
removed or, where the smaller problem fills the array's folds better, the ratio of
array cycles, except where the smaller problem holds in a buffer what the dense one
could not (activations kept on chip, any fitting mapping, an operand fetched fewer
times). Tolerance 0.1 %: a layer's cycle
count is its last cycle's index (SCALE-Sim's convention, the sum over folds less
one), which puts a dense layer of 8 folds a hair above 8x one fold.

Hand check of a fold gain (AlexNet conv2 on the ZCU102's 63 x 63 ws array of the
dense PEs that fit, its DPU design set aside; filter
pruning cascaded to 8x): per group 128 filters x 1,200 reductions take 3 x 20 = 60
folds; 47 x 425 take 1 x 7 = 7: 8.6x fewer folds for 7.7x fewer MACs."""

from __future__ import annotations

import pytest

from simulator.hwconfig import Platform, builtin_platforms, load_platform, platform_from_dict
from simulator.masks import Pruning
from simulator.simulate import prepare_profiles, simulate_layer
from simulator.workloads import load_network
from simulator.yamlio import read_yaml

DENSE_ARRAYS = (
    "scalesim_32x32_ws",
    "scalesim_32x32_os",
    "scalesim_32x32_is",
    "tpu_v1",
    "zcu102",
    "eyeriss_v1",
)
TOLERANCE = 1e-3


def _fits_better(dense, pruned) -> bool:
    """Whether the pruned layer's mapping holds in a buffer what the dense one could
    not: activations kept on chip, a mapping that fits at all, or an operand fetched
    fewer times (a whole tile of it fits)."""

    def get(nest, name, default):
        return getattr(nest, name, default)

    return (
        (get(pruned, "activations_on_chip", False) and not get(dense, "activations_on_chip", False))
        or (get(pruned, "fits", True) and not get(dense, "fits", True))
        or any(
            get(pruned, name, 1) < get(dense, name, 1)
            for name in ("input_refetch", "weight_refetch", "output_visits")
        )
    )


def layer_speedups(network: str, platform: str, rate: float = 8.0):
    """Per layer: (layer, speedup, MAC ratio, array-cycle ratio, buffer fit), filter
    pruning at ``rate`` against dense."""
    net = load_network(network)
    p = platform if isinstance(platform, Platform) else load_platform(platform)
    profiles = prepare_profiles(net, {"structured": Pruning(structure="filter", density=1 / rate)})
    for layer in net.prunable_layers:
        d, s = (
            simulate_layer(layer, p, profiles[v][layer.name], variant=v, weight_bits=8)
            for v in ("dense", "structured")
        )
        dm, sm = d.counts.mapping, s.counts.mapping
        fit = _fits_better(dm, sm)
        yield (
            layer.name,
            d.cost.latency_s / s.cost.latency_s,
            d.counts.macs_done / s.counts.macs_done,
            d.counts.compute_cycles / s.counts.compute_cycles,
            fit,
        )


@pytest.mark.parametrize("platform", DENSE_ARRAYS)
@pytest.mark.parametrize("network", ["alexnet", "resnet18"])
def test_structured_speedup_is_bounded_by_the_array(network, platform):
    for name, speedup, macs, cycles, fit in layer_speedups(network, platform):
        bound = max(macs, cycles) * (1 + TOLERANCE)
        assert speedup <= bound or fit, (
            f"{network} {name} on {platform}: {speedup:.2f}x faster, "
            f"{macs:.2f}x fewer MACs, {cycles:.2f}x fewer array cycles"
        )


def test_fold_gain_by_hand():
    """The docstring's hand count: AlexNet conv2 on the ZCU102's dense array."""
    raw = read_yaml(builtin_platforms()["zcu102"])
    raw["fpga"].pop("dense_design")  # the square array of the dense PEs that fit
    p = platform_from_dict(raw)
    row = next(r for r in layer_speedups("alexnet", p) if r[0] == "conv2")
    _, speedup, macs, cycles, _ = row
    assert cycles == pytest.approx(60 / 7, rel=0.02)
    assert macs < cycles and speedup <= cycles * (1 + TOLERANCE)
