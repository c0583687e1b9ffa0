"""Totals of an estimate (:meth:`NetworkEstimate.totals`, :meth:`Estimate.totals`)
against a twin written from their documented meaning with pandas alone (a frame of
every layer, groupby sums, latency-weighted utilization, the most common engine by
``mode``, the bound with the most latency by ``idxmax``), equal to the last bit, and
against a hand-checked case."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
import pytest

from simulator.errors import ConfigError
from simulator.hwconfig import load_platform
from simulator.masks import Pruning
from simulator.simulate import (
    ENERGY_COLUMNS,
    NetworkEstimate,
    estimate_network,
    prepare_profiles,
    simulate_network,
)
from simulator.workloads import load_network


def pandas_totals(est: NetworkEstimate) -> pd.DataFrame:
    """The twin: every total from a groupby over the layers' frame."""
    df = est.frame()
    sums = df.groupby("variant", sort=False)[
        [
            "latency_s",
            *ENERGY_COLUMNS,
            "macs_dense",
            "macs_done",
            "dram_bits",
            "kv_read_bits",
            "kv_write_bits",
        ]
    ].sum()
    w = df["latency_s"]
    sums["pe_utilization"] = (df["pe_utilization"] * w).groupby(df["variant"]).sum() / sums[
        "latency_s"
    ]
    dense = sums.loc["dense"]
    sums["speedup"] = dense["latency_s"] / sums["latency_s"]
    sums["energy_ratio"] = sums["energy_j"] / dense["energy_j"]
    by_variant = df.groupby("variant", sort=False)
    sums["engine"] = by_variant["engine"].agg(lambda e: e.mode().iloc[0])
    bound_s = df.groupby(["variant", "bound"], sort=False)["latency_s"].sum()
    sums["main_bound"] = bound_s.groupby(level="variant", sort=False).idxmax().str[1]
    sums.insert(0, "platform", est.platform)
    sums.insert(0, "network", est.network)
    return sums.reset_index()


def _same(fast: pd.DataFrame, twin: pd.DataFrame) -> None:
    """Equal to the last bit: columns, dtypes, index and values (NaN where NaN)."""
    pd.testing.assert_frame_equal(fast, twin, check_exact=True)


@pytest.mark.parametrize(
    "network, platform",
    [
        ("resnet50", "scnn"),
        ("resnet50", "a100"),
        ("resnet50", "zcu102"),
        ("alexnet", "eie"),
        ("alexnet", "eyeriss_v1"),
        ("lenet5", "scalesim_32x32_ws"),
        ("minilm_l6", "cortex_a72"),
    ],
)
def test_totals_match_a_pandas_groupby(network, platform):
    net = load_network(network)
    p = load_platform(platform)
    specs = {
        "structured": Pruning(structure="filter", density=0.25),
        "sparse": Pruning(density=0.25),
    }
    if p.compute.nm_sparse is not None:
        specs["nm"] = Pruning(structure="nm", nm=(p.compute.nm_sparse.n, p.compute.nm_sparse.m))
    est = simulate_network(net, p, prepare_profiles(net, specs), weight_bits=4)
    _same(est.totals(), pandas_totals(est))


def test_estimate_frame_and_totals_match_per_platform_twins():
    """Platforms whose rows carry different columns (SCALE-Sim words, loop nests, SCNN
    counts, weights from DRAM): one frame of every row equals the platforms' frames
    concatenated."""
    net = load_network("lenet5")
    names = ("a100", "eie", "tpu_v1", "zcu102", "scalesim_32x32_ws", "scnn", "eyeriss_v1")
    platforms = [load_platform(n) for n in names]
    est = estimate_network(net, platforms, Pruning(density=1 / 8))
    frames = pd.concat([e.frame() for e in est.estimates], ignore_index=True)
    _same(est.frame(), frames)
    twin = pd.concat([pandas_totals(e) for e in est.estimates], ignore_index=True)
    twin["effective_rate"] = [
        est.effective_rates[p][v] for p, v in zip(twin["platform"], twin["variant"], strict=True)
    ]
    _same(est.totals(), twin)


def _hand_case() -> NetworkEstimate:
    """lenet5 on the TPU, dense and sparse, three layers each, with latencies,
    energies, bounds, utilizations and engine names replaced by hand-picked values
    (sums exact in binary, whatever the order of addition)."""
    net = load_network("lenet5")
    est = simulate_network(
        net, load_platform("tpu_v1"), prepare_profiles(net, {"sparse": Pruning(density=0.5)})
    )
    dense = [r for r in est.layers if r.variant == "dense"][:3]
    sparse = [r for r in est.layers if r.variant == "sparse"][:3]
    # latency s, energy J, bound, PE utilization (as record() reports it: compute_s is
    # the latency), engine
    picks = {
        "dense": [
            (2.0, 4.0, "dram", 0.5, "b"),
            (1.0, 2.0, "compute", 0.5, "a"),
            (1.0, 2.0, "compute", 0.5, "b"),
        ],
        "sparse": [
            (2.0, 1.0, "compute", 0.25, "z"),
            (2.0, 1.0, "dram", 1.0, "y"),
            (1.0, 1.0, "dram", 0.0, "x"),
        ],
    }
    layers = []
    for v, rows in (("dense", dense), ("sparse", sparse)):
        for r, (lat, en, bound, util, eng) in zip(rows, picks[v], strict=True):
            cost = replace(r.cost, latency_s=lat, compute_s=lat, energy_j=en, bound=bound)
            counts = replace(r.counts, pe_utilization=util, engine=eng)
            layers.append(replace(r, cost=cost, counts=counts))
    return replace(est, layers=tuple(layers))


def test_totals_by_hand():
    t = _hand_case().totals().set_index("variant")
    assert t.at["dense", "latency_s"] == 4.0 and t.at["sparse", "latency_s"] == 5.0
    assert t.at["dense", "energy_j"] == 8.0 and t.at["sparse", "energy_j"] == 3.0
    assert t.at["dense", "speedup"] == 1.0 and t.at["sparse", "speedup"] == 4.0 / 5.0
    assert t.at["sparse", "energy_ratio"] == 3.0 / 8.0
    # latency-weighted: (2 * 0.25 + 2 * 1 + 1 * 0) / 5 and (4 * 0.5) / 4
    assert t.at["sparse", "pe_utilization"] == 0.5 and t.at["dense", "pe_utilization"] == 0.5
    # dense: dram 2 s ties compute 2 s, the first seen wins; sparse: dram 3 s > compute 2 s
    assert t.at["dense", "main_bound"] == "dram"
    assert t.at["sparse", "main_bound"] == "dram"
    # dense: b twice; sparse: one each, the first in sorted order
    assert t.at["dense", "engine"] == "b" and t.at["sparse", "engine"] == "x"
    assert list(t.index) == ["dense", "sparse"]


def test_totals_need_dense():
    est = _hand_case()
    only_sparse = replace(est, layers=tuple(r for r in est.layers if r.variant == "sparse"))
    with pytest.raises(ConfigError, match="dense"):
        only_sparse.totals()
