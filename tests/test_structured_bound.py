"""Structured pruning on a dense array: the speedup over dense never exceeds the ratio
of MACs removed, except where the smaller problem keeps its activations on chip (or
fits a buffer at all) and the dense one does not. Hand arithmetic: the bound is the
MAC count of the dense layer over that of the pruned one, within 0.1 %: a layer's
cycle count is its last cycle's index (SCALE-Sim's convention, the sum over folds
less one), which puts a dense layer of 8 folds a hair above 8x one fold."""

from __future__ import annotations

import pytest

from simulator.hwconfig import load_platform
from simulator.masks import Pruning
from simulator.simulate import prepare_profiles, simulate_layer
from simulator.workloads import load_network

DENSE_ARRAYS = (
    "scalesim_32x32_ws",
    "scalesim_32x32_os",
    "scalesim_32x32_is",
    "tpu_v1",
    "zcu102",
    "eyeriss_v1",
)


def excess(network: str, platform: str, rate: float = 8.0):
    """Per layer: (layer, speedup, MAC ratio, explained by a buffer fit) where the
    structured speedup exceeds the MAC ratio."""
    net = load_network(network)
    p = load_platform(platform)
    profiles = prepare_profiles(net, {"structured": Pruning(structure="filter", density=1 / rate)})
    out = []
    for layer in net.prunable_layers:
        runs = {
            v: simulate_layer(layer, p, profiles[v][layer.name], variant=v, weight_bits=8)
            for v in ("dense", "structured")
        }
        d, s = runs["dense"], runs["structured"]
        speedup = d.cost.latency_s / s.cost.latency_s
        macs = d.counts.macs_done / s.counts.macs_done
        if speedup > macs * (1 + 1e-3):
            dm, sm = d.counts.mapping, s.counts.mapping
            fit = (sm.activations_on_chip and not dm.activations_on_chip) or (
                sm.fits and not dm.fits
            )
            out.append((layer.name, speedup, macs, fit))
    return out


@pytest.mark.parametrize("platform", DENSE_ARRAYS)
@pytest.mark.parametrize("network", ["alexnet", "resnet18"])
def test_structured_speedup_is_bounded_by_the_macs_removed(network, platform):
    for name, speedup, macs, fit in excess(network, platform):
        assert fit, f"{network} {name} on {platform}: {speedup:.2f}x faster, {macs:.2f}x fewer MACs"
