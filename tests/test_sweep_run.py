"""Evaluating sweep points: the same totals as a network estimate, invalid points as
rows with their reason, rows independent of their batch, chunks that resume."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.errors import ConfigError
from simulator.hwconfig import load_platform
from simulator.masks import Pruning
from simulator.settings import Settings
from simulator.simulate import estimate_variants, prepare_profiles, simulate_network
from simulator.sweep import load_spec, spec_from_dict
from simulator.sweep.evaluate import Context, _totals, evaluate
from simulator.sweep.runner import plan, run_sweep
from simulator.sweep.store import read_table
from simulator.workloads import load_network


def make(parameters, **top):
    data = {"network": "lenet5", "platform": "eie", "pruning": {"rate": 8}, **top}
    data["sweep"] = {"parameters": parameters}
    return spec_from_dict(data, "test.yaml")


@pytest.mark.parametrize("name", ["eie", "a100", "zcu102", "xeon_8380", "scalesim_32x32_ws"])
def test_totals_are_the_network_estimates(name):
    net = load_network("lenet5")
    platform = load_platform(name)
    variants = {
        k: v
        for k, v in estimate_variants(platform, Pruning(density=1 / 8), "filter").items()
        if k != "nm"
    }
    profiles = prepare_profiles(net, variants)
    est = simulate_network(net, platform, profiles, Settings(weight_bits=8))
    expected = est.totals().set_index("variant")
    for v in profiles:
        got = _totals([r.record() for r in est.layers if r.variant == v])
        row = expected.loc[v]
        for column, value in got.items():
            if isinstance(value, str):
                assert value == row[column], column
            else:
                assert value == pytest.approx(row[column], rel=1e-12), column


def test_rows_carry_parameters_outputs_and_speedups():
    spec = make({"compute.pes": [16, 64]}, variants=["structured", "sparse"])
    table = evaluate(spec, spec.points())
    assert list(table["variant"]) == ["dense", "structured", "sparse"] * 2
    assert (table["status"] == "ok").all() and (table["reason"] == "").all()
    assert list(table["compute.pes"]) == [16] * 3 + [64] * 3
    assert list(table["pes"]) == [16] * 3 + [64] * 3
    dense = table[table["variant"] == "dense"]
    assert (dense["speedup"] == 1).all() and (dense["energy_ratio"] == 1).all()
    sparse = table[table["variant"] == "sparse"].reset_index(drop=True)
    assert np.allclose(
        sparse["speedup"], dense["latency_s"].to_numpy() / sparse["latency_s"].to_numpy()
    )
    assert sparse["effective_rate"].between(7.5, 8.5).all()
    assert table["point"].str.len().eq(16).all()
    assert str(table["compute.pes"].dtype) == "int64"
    assert str(table["latency_s"].dtype) == "float64"


def test_a_point_that_makes_no_hardware_sense_is_a_row_with_the_profiles_reason():
    spec = spec_from_dict(
        {
            "network": "lenet5",
            "platform": "zcu102",
            "variants": ["sparse", "nm"],
            "sweep": {"mode": "zip", "parameters": {"fpga.device.dsp": [2520, 100]}},
        },
        "x",
    )
    table = evaluate(spec, spec.points())
    ok, bad = table[table["index"] == 0], table[table["index"] == 1]
    assert list(ok["status"]) == ["ok", "ok", "invalid"]
    assert list(ok["reason"])[2] == "the platform has no N:M unit (compute.nm_sparse)"
    assert (bad["status"] == "invalid").all()
    assert "exceed the device's 100 (fpga.device.dsp)" in bad["reason"].iloc[0]
    assert bad["latency_s"].isna().all() and bad["pes"].isna().all()
    rate = make({"pruning.rate": [0.5, 2]})
    table = evaluate(rate, rate.points())
    assert list(table["status"]) == ["invalid", "invalid", "ok", "ok"]
    assert "rate must be a finite number >= 1" in table["reason"].iloc[0]
    bits = make({"settings.weight_bits": [0]})
    assert "weight_bits: must be in [1, 64], got 0" in evaluate(bits, bits.points())["reason"][0]
    scnn = spec_from_dict(
        {
            "network": "lenet5",
            "platform": "scnn",
            "sweep": {"parameters": {"compute.scnn.pe_rows": [4]}},
        },
        "x",
    )
    reason = evaluate(scnn, scnn.points())["reason"][0]
    assert "compute.pes: 64 PEs, but the scnn grid is 4 x 8 = 32" in reason


def test_each_mask_is_made_once_per_workload():
    spec = make({"pruning.rate": [4, 8], "compute.pes": [16, 32, 64]})
    context = Context()
    batches = plan(spec.points(), 100, 1)
    assert [len(b) for b in batches] == [3, 3]  # grouped by workload
    for batch in batches:
        evaluate(spec, batch, context)
    assert context.masks_made == 3  # dense, and sparse at two rates


POINTS = make(
    {
        "compute.pes": [8, 64],
        "compute.fifo_depth": [2, 8],
        "pruning.rate": [4, 16],
        "settings.activation_density": [0.5, 1.0],
        "clock_hz": [4e8, 8e8],  # price-only on EIE: points share counts
    },
    variants=["structured", "sparse"],
)
ALONE = {p.key: evaluate(POINTS, [p]) for p in POINTS.points()}


@settings(max_examples=15)
@given(st.permutations(POINTS.points()), st.integers(1, 32))
def test_a_points_rows_do_not_depend_on_its_batch(order, size):
    context = Context()
    rows = pd.concat(
        [evaluate(POINTS, order[i : i + size], context) for i in range(0, len(order), size)],
        ignore_index=True,
    )
    for p in order:
        got = rows[rows["point"] == p.key].reset_index(drop=True)
        pd.testing.assert_frame_equal(got, ALONE[p.key])


def test_folder_resume_and_refusals(tmp_path):
    spec = make({"compute.pes": [8, 16, 32, 64], "compute.fifo_depth": [2, 4]})
    out = tmp_path / "out"
    full = run_sweep(spec, out, engine="serial", fmt="csv", batch_size=2)
    assert full.computed == 8 and full.reused == 0 and len(full.table) == 16
    assert full.results == out / "results.csv"
    about = json.loads((out / "sweep.json").read_text())
    assert about["points"] == 8 and about["columns"]["compute.pes"] == "int64"
    with pytest.raises(ConfigError, match="--resume continues it, --force starts it over"):
        run_sweep(spec, out, engine="serial", fmt="csv")
    again = run_sweep(spec, out, engine="serial", fmt="csv", resume=True)
    assert again.computed == 0 and again.reused == 8
    pd.testing.assert_frame_equal(again.table, full.table)
    # a damaged chunk, a data file without its manifest and a temporary file
    chunks = sorted((out / "chunks").glob("chunk-*.csv"))
    chunks[0].write_text(chunks[0].read_text()[:-20])
    chunks[1].with_suffix(".json").unlink()
    (out / "chunks" / ".chunk-x.tmp1.csv").write_text("half")
    resumed = run_sweep(spec, out, engine="serial", fmt="csv", resume=True, batch_size=2)
    assert resumed.computed == 4 and resumed.reused == 4
    assert len(resumed.notes) == 1 and "damaged" in resumed.notes[0]
    pd.testing.assert_frame_equal(resumed.table, full.table)
    assert not list((out / "chunks").glob(".*"))
    on_disk = read_table(out / "results.csv", dict(full.table.dtypes.astype(str)))
    pd.testing.assert_frame_equal(on_disk, full.table)
    other = make({"compute.pes": [8, 16]})
    with pytest.raises(ConfigError, match="holds a sweep of another spec"):
        run_sweep(other, out, engine="serial", fmt="csv", resume=True)
    with pytest.raises(ConfigError, match="format csv, not parquet"):
        run_sweep(spec, out, engine="serial", fmt="parquet", resume=True)
    forced = run_sweep(other, out, engine="serial", fmt="csv", force=True)
    assert forced.computed == 2 and len(list((out / "chunks").glob("*.json"))) == 1
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="is not empty and holds no sweep"):
        run_sweep(spec, tmp_path / "busy", engine="serial", fmt="csv")


def test_limit_and_repeated_points(tmp_path):
    spec = spec_from_dict(
        {
            "network": "lenet5",
            "platform": "eie",
            "sweep": {
                "mode": "random",
                "samples": 12,
                "seed": 1,
                "parameters": {"compute.pes": [8, 16]},
            },
        },
        "x",
    )
    points = spec.points()
    assert len({p.key for p in points}) == 2  # twelve draws of two values
    result = run_sweep(spec, tmp_path / "r", engine="serial", fmt="parquet")
    assert result.computed == 2 and len(result.table) == 24
    assert list(result.table["index"]) == [i for i in range(12) for _ in range(2)]
    limited = run_sweep(spec, tmp_path / "l", engine="serial", fmt="parquet", limit=3)
    assert limited.points == 3 and len(limited.table) == 6
    pd.testing.assert_frame_equal(limited.table, result.table.iloc[:6])


FIXTURES = Path(__file__).resolve().parent / "fixtures"


def test_a_checkpoints_masks_run_at_every_point(tmp_path):
    (tmp_path / "ckpt.pt").write_bytes((FIXTURES / "lenet5_ns_prune.pt").read_bytes())
    data = {
        "network": "lenet5",
        "platform": "eie",
        "checkpoint": "ckpt.pt",
        "variants": ["structured", "sparse"],
        "sweep": {"parameters": {"compute.pes": [8, 32], "clock_hz": [4e8, 8e8]}},
    }
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(data))
    spec = load_spec(path)
    assert spec.checkpoint_variant == "sparse"
    assert dict(spec.fixed)["pruning.density"] == pytest.approx(0.1)  # the checkpoint's
    table = evaluate(spec, spec.points())
    assert (table["status"] == "ok").all()
    sparse = table[table["variant"] == "sparse"]
    assert sparse["effective_rate"].to_numpy() == pytest.approx(10.0)
    without = {k: v for k, v in data.items() if k != "checkpoint"}
    generated = spec_from_dict({**without, "pruning": {"density": 0.1}}, "x")
    iid = evaluate(generated, generated.points()[:1])
    assert iid["latency_s"].iloc[1] != sparse["latency_s"].iloc[0]  # other masks, other counts
    # its contents are in the points' hashes
    first = {p.key for p in spec.points()}
    (tmp_path / "ckpt.pt").write_bytes((FIXTURES / "lenet5_ns_legacy.pt").read_bytes())
    assert first != {p.key for p in load_spec(path).points()}
    with pytest.raises(ConfigError, match="list sparse in variants"):
        spec_from_dict({**data, "variants": ["structured"]}, "x", tmp_path)
    with pytest.raises(ConfigError, match="give network once"):
        spec_from_dict(
            {**data, "sweep": {"parameters": {"network": ["lenet5"], "compute.pes": [8]}}},
            "x",
            tmp_path,
        )


def test_kv_bits_and_group_scales_are_sweep_settings():
    """``settings.group_size`` and ``settings.kv_bits`` as swept parameters: each row is
    the estimate with those settings (a tiny Llama prefill on the A100), so a 16-bit
    scale per 64 inputs adds exactly the scales' bits to dense DRAM traffic and a
    4-bit KV cache moves fewer bits than a 16-bit one."""
    model = str(Path(__file__).parent / "fixtures" / "tiny_llama")
    spec = spec_from_dict(
        {
            "network": model,
            "platform": "a100",
            "pruning": {"rate": 2},
            "settings": {"weight_bits": 4, "activation_bits": 16},
            "sweep": {
                "mode": "grid",
                "parameters": {"settings.group_size": [0, 64], "settings.kv_bits": [4, 16]},
            },
        },
        "test.yaml",
    )
    table = evaluate(spec, spec.points())
    assert (table["status"] == "ok").all()
    net = load_network(model)
    p = load_platform("a100")
    dense = table[table["variant"] == "dense"].set_index(
        ["settings.group_size", "settings.kv_bits"]
    )["dram_bits"]
    for g, kv in ((0, 4), (64, 4), (0, 16), (64, 16)):
        s = Settings(weight_bits=4, activation_bits=16, group_size=g, kv_bits=kv)
        prof = prepare_profiles(net, {})
        est = simulate_network(net, p, prof, s, variants=["dense"])
        assert dense[(g, kv)] == pytest.approx(sum(r.dram_bits for r in est.layers), rel=1e-12)
    scales = sum(
        layer.gemm.groups * layer.gemm.rows * -(-layer.gemm.cols // 64) * 16
        for layer in net.prunable_layers
    )
    assert dense[(64, 4)] - dense[(0, 4)] == pytest.approx(scales)
    assert dense[(0, 4)] < dense[(0, 16)]
