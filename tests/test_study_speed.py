"""The study's shortcuts give what the long way gives: the engine behind each run
found for every run at once, and the per-layer columns the tables are made from."""

from __future__ import annotations

import pandas as pd

from simulator.hwconfig import load_platform
from simulator.masks import Pruning
from simulator.netmasks import network_profiles
from simulator.settings import Settings
from simulator.simulate import simulate_network
from simulator.study.compare import _LAYER_COLUMNS, _add_rows, _main_engines
from simulator.study.verdict import main_engine
from simulator.workloads import load_network


def test_layer_rows_and_main_engines_equal_the_frames_of_each_run():
    network = load_network("lenet5")
    runs = {
        ("dense", 1.0): ("dense", network_profiles(network, Pruning(structure="dense"))),
        ("sparse", 8.0): ("sparse", network_profiles(network, Pruning(density=1 / 8))),
        ("filter", 8.0): (
            "structured",
            network_profiles(network, Pruning(structure="filter", density=1 / 8)),
        ),
    }
    rows = {c: [] for c in _LAYER_COLUMNS}
    frames, want = [], {}
    for name in ("eie", "a100", "zcu102", "eyeriss_v1"):
        p = load_platform(name)
        for (kind, rate), (variant, profs) in runs.items():
            est = simulate_network(network, p, {variant: profs}, Settings(), variants=[variant])
            reached = {n: 1.0 / pr.density if pr.nnz else float("inf") for n, pr in profs.items()}
            _add_rows(rows, est.layers, kind, rate, 8, reached)
            f = est.frame()
            f["kind"], f["rate"], f["weight_bits"] = kind, rate, 8
            f["effective_rate"] = f["layer"].map(reached)
            frames.append(f)
            want[(p.name, 8, kind, rate)] = main_engine(f)
    layers = pd.DataFrame(rows)
    long_way = pd.concat(frames, ignore_index=True)
    pd.testing.assert_frame_equal(layers, long_way[list(_LAYER_COLUMNS)], check_exact=True)
    assert _main_engines(layers) == want
