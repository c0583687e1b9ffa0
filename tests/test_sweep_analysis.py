"""Reading a sweep back: the Pareto front against a brute-force one, break-even lines
on a grid whose crossing is known, and figures drawn without pyplot."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from simulator.cli import main
from simulator.errors import ConfigError
from simulator.sweep.analysis import breakeven_grid, breakeven_line, load_sweep, pareto_front

ROOT = Path(__file__).resolve().parents[1]


def rows(xs, ys, **extra) -> pd.DataFrame:
    n = len(xs)
    return pd.DataFrame(
        {
            "status": ["ok"] * n,
            "variant": ["sparse"] * n,
            "latency_s": np.asarray(xs, float),
            "energy_j": np.asarray(ys, float),
            **extra,
        }
    )


@given(st.lists(st.tuples(st.integers(0, 9), st.integers(0, 9)), min_size=1, max_size=40))
def test_the_pareto_front_is_what_no_row_dominates(pairs):
    table = rows(*zip(*pairs, strict=True))
    front = pareto_front(table, "latency_s", "energy_j")
    x, y = table["latency_s"].to_numpy(), table["energy_j"].to_numpy()
    dominated = [
        bool(((x <= x[i]) & (y <= y[i]) & ((x < x[i]) | (y < y[i]))).any()) for i in range(len(x))
    ]
    assert sorted(front.index) == [i for i, d in enumerate(dominated) if not d]
    assert front["latency_s"].is_monotonic_increasing


def test_the_front_keeps_valid_rows_of_the_variant_only():
    table = rows([1, 2, 3, 0.5], [3, 2, 1, 0.1])
    table.loc[3, "status"] = "invalid"
    table.loc[2, "variant"] = "dense"
    front = pareto_front(table, "latency_s", "energy_j", variant="sparse")
    assert list(front.index) == [0, 1]
    table.loc[0, "energy_j"] = math.nan
    assert list(pareto_front(table, "latency_s", "energy_j", variant="sparse").index) == [1]
    with pytest.raises(ConfigError, match="no column nope"):
        pareto_front(table, "latency_s", "nope")


def test_breakeven_grid_takes_the_best_cell_and_the_line_its_crossing():
    # speedup = bandwidth / 4e9 * rate / 8: it crosses 1 at bandwidth = 32e9 / rate
    recs = []
    for rate in (2, 4, 8, 16):
        for bw in (1e9, 2e9, 4e9, 8e9, 16e9, 32e9):
            for other in (0.5, 1.0):  # a third parameter: the best is kept
                recs.append((rate, bw, other * bw / 4e9 * rate / 8))
    t = pd.DataFrame(recs, columns=["pruning.rate", "bw", "speedup"])
    t["status"], t["variant"] = "ok", "sparse"
    grid = breakeven_grid(t, "pruning.rate", "bw")
    assert grid.shape == (6, 4) and grid.loc[32e9, 16] == pytest.approx(16)
    line = breakeven_line(grid)
    assert list(line["x"]) == [2, 4, 8, 16]
    assert np.allclose(line["y"], [32e9 / r for r in (2, 4, 8, 16)])
    assert line["wins_above"].all()
    t["energy_ratio"] = 1 / t["speedup"]
    energy = breakeven_line(
        breakeven_grid(t, "pruning.rate", "bw", metric="energy_ratio"), "energy_ratio"
    )
    pd.testing.assert_frame_equal(energy, line)


def test_sweep_figures_and_front_from_the_command_line(tmp_path, capsys):
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "network: lenet5\nplatform: eie\n"
        "sweep:\n  parameters:\n    pruning.rate: [2, 8, 32]\n"
        "    memory.dram.bandwidth_bytes_per_s: {log_range: [1e8, 1e10], num: 3}\n"
        "plots:\n  pareto: {x: latency_s, y: energy_j}\n"
        "  breakeven: {x: pruning.rate, y: memory.dram.bandwidth_bytes_per_s}\n"
    )
    out = tmp_path / "out"
    assert main(["sweep", str(spec), "--serial", "--out", str(out), "--format", "csv"]) == 0
    text = capsys.readouterr().out
    assert "plots:" in text
    pngs = sorted(p.name for p in (out / "plots").glob("*.png"))
    assert pngs == [
        "breakeven-pruning.rate-memory.dram.bandwidth_bytes_per_s-sparse-speedup.png",
        "pareto-latency_s-energy_j-sparse.png",
    ]
    assert len(list((out / "plots").glob("*.svg"))) == 2
    table = load_sweep(out)
    assert str(table["pruning.rate"].dtype) == "float64" and len(table) == 18
    assert (
        main(["plot-sweep", str(out), "--pareto", "energy_j,pruning.rate", "--variant", "dense"])
        == 0
    )
    printed = capsys.readouterr().out
    assert "Pareto front of energy_j and pruning.rate (dense, both minimised)" in printed
    assert main(["plot-sweep", str(out), "--pareto", "latency_s,nope"]) == 2
    assert "no column 'nope'" in capsys.readouterr().err
    assert main(["plot-sweep", str(tmp_path)]) == 2
    assert "holds no sweep" in capsys.readouterr().err
    # figures are drawn without pyplot or a global backend
    code = (
        "import sys; from simulator.cli import main; "
        f"main(['plot-sweep', {str(out)!r}, '--plots', {str(tmp_path / 'again')!r}]); "
        "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, capture_output=True)
    assert len(list((tmp_path / "again").glob("*.png"))) == 2
