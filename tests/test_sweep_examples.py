"""The sweep examples of the README run as written and say what their comments say."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulator.cli import main
from simulator.sweep import load_spec
from simulator.sweep.analysis import breakeven_grid, breakeven_line, load_sweep, pareto_front

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """Each example run in full (serially: a few seconds each)."""
    out = tmp_path_factory.mktemp("sweeps")
    tables = {}
    for name in ("eie", "systolic", "breakeven", "fpga_lhs"):
        folder = out / name
        code = main(
            ["sweep", str(EXAMPLES / f"sweep_{name}.yaml"), "--serial", "--out", str(folder)]
        )
        assert code == 0
        assert len(list((folder / "plots").glob("*.png"))) == 1
        assert len(list((folder / "plots").glob("*.svg"))) == 1
        tables[name] = load_sweep(folder)
    return tables


def test_eie_design_space(swept):
    t = swept["eie"]
    assert load_spec(EXAMPLES / "sweep_eie.yaml").count() == 100 and len(t) == 200
    assert (t["status"] == "ok").all()
    assert set(t["network"]) == {"alexnet_fc.yaml"}  # as the spec names it
    front = pareto_front(t, "latency_s", "energy_j", variant="sparse")
    assert 2 <= len(front) < 100
    sparse = t[t["variant"] == "sparse"]
    assert (sparse["speedup"] > 1).all()  # EIE at 36x is always faster than its dense mode
    # 2-bit indices need a filler entry for every gap over 3: more entries, more time
    by_bits = sparse.groupby("settings.index_bits")["latency_s"].median()
    assert by_bits[2] > by_bits[4]


def test_systolic_shape_and_buffer(swept):
    t = swept["systolic"]
    assert load_spec(EXAMPLES / "sweep_systolic.yaml").count() == 16 and len(t) == 48
    assert (t["status"] == "ok").all()
    dense = t[t["variant"] == "dense"]
    assert (dense["compute.pes"] == dense["compute.array_rows"] ** 2).all()
    # a bigger buffer never moves more DRAM energy for the same array
    for _, g in dense.groupby("compute.array_rows"):
        g = g.sort_values("compute.scalesim_sram_bytes.filter")
        assert g["energy_dram_j"].is_monotonic_decreasing
    # the array computes the zeros: non-structured pruning gains nothing on it
    sparse = t[t["variant"] == "sparse"]
    assert (sparse["speedup"] == 1).all()


def test_a100_breakeven_falls_with_the_bandwidth(swept):
    t = swept["breakeven"]
    grid = breakeven_grid(t, "memory.hbm2.bandwidth_bytes_per_s", "pruning.rate")
    assert grid.shape == (7, 5)
    line = breakeven_line(grid)  # along the rate, one crossing per bandwidth
    assert len(line) == 5 and line["wins_above"].all()
    # at the profile's 1.56 TB/s (the middle) the CSR kernel needs 32-128x; with less
    # bandwidth dense layers turn DRAM-bound while the kernel streams fewer bytes, so
    # non-structured pruning breaks even at lower rates
    line = line.sort_values("x")
    assert 32 <= line["y"].iloc[2] <= 128
    assert line["y"].is_monotonic_increasing and line["y"].between(8, 128).all()


def test_fpga_latin_hypercube_has_invalid_devices_with_the_profiles_reason(swept):
    t = swept["fpga_lhs"]
    assert t["index"].nunique() == 48
    bad = t[t["status"] == "invalid"]
    assert 0 < bad["index"].nunique() < 48
    small = bad["fpga.device.dsp"] < 2130
    assert small.any()
    assert bad.loc[small, "reason"].str.contains("exceed the device's").all()
    assert bad["latency_s"].isna().all()
    ok = t[t["status"] == "ok"]
    assert (ok["fpga.device.dsp"] >= 2130).all() and (ok["fpga.device.bram36"] >= 765).all()


def test_fpga_sparse_engine_breaks_even_with_the_dense_array_at_some_rate(swept):
    t = swept["fpga_lhs"]
    sparse = t[(t["variant"] == "sparse") & (t["status"] == "ok")]
    assert (sparse.loc[sparse["pruning.rate"] < 3, "speedup"] < 1).all()
    assert (sparse.loc[sparse["pruning.rate"] > 40, "speedup"] > 1).all()
