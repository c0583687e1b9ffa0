"""The study's figures: object-oriented matplotlib (no pyplot, backend untouched),
labelled axes, legends outside the data, one colour per network, break-even labels,
PNG + SVG files, and no redrawing of a figure whose data did not change.

The tables here are synthetic, with values chosen so that the expected colours,
labels and files can be stated independently of the plotting code."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_hex

from simulator.plots import (
    COMPONENTS,
    figure_compute,
    figure_energy_breakdown,
    figure_storage,
    plot_compute,
    plot_energy_breakdown,
    plot_storage,
)
from simulator.study import StudyResult
from simulator.study.config import StudyConfig
from simulator.study.output import PLOT_INDEX, write_plots

NETWORKS = tuple(f"net{i:02d}" for i in range(14))
PLATFORMS = ("a100", "eie", "xeon_8380", "zcu102")  # classes gpu, asic, cpu, fpga
FAMILIES = {"a100": "gpu", "eie": "asic", "xeon_8380": "cpu", "zcu102": "fpga"}
WIDTHS = (4, 8)
RATES = (1.5, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def breakeven_rate(i: int, wb: int) -> float:
    """Network i's break-even rate at width wb: 28 rates spread over 2x..60x."""
    return round(2.0 * 30.0 ** ((2 * i + (wb == 8)) / 27), 1)


def tables(networks=NETWORKS, platforms=PLATFORMS) -> dict[str, pd.DataFrame]:
    sweep, be, curves, energy = [], [], [], []
    for i, net in enumerate(networks):
        for p in platforms:
            for wb in WIDTHS:
                slope = 0.3 + 0.05 * i + 0.1 * (wb == 8)
                for r in RATES:
                    speedup = r**slope / breakeven_rate(i, wb) ** slope
                    row = {"network": net, "platform": p, "weight_bits": wb, "kind": "sparse"}
                    row |= {"rate": r, "effective_rate": r, "layer": "(network)"}
                    row |= {"latency_s": 1.0, "energy_j": 1.0, "speedup": speedup}
                    sweep.append(row | {"energy_ratio": 1 / speedup})
                    sweep.append(row | {"layer": "conv1", "speedup": 99.0, "energy_ratio": 99.0})
                be.append(
                    {"network": net, "platform": p, "weight_bits": wb, "layer": "(network)"}
                    | {"latency_breakeven_rate": breakeven_rate(i, wb)}
                    | {"energy_breakeven_rate": breakeven_rate(i, wb) if i % 2 else np.inf}
                )
            for k, kind in enumerate(("dense", "filter", "sparse")):
                row = {"network": net, "platform": p, "weight_bits": 8, "kind": kind}
                row |= {"rate": 8.0, "latency_s": 1.0, "energy_j": 1.0 - 0.2 * k}
                row |= {col: (1.0 - 0.2 * k) / len(COMPONENTS) for col, _ in COMPONENTS}
                energy.append(row | {"layer": "(network)", "effective_rate": 8.0})
        for wb in (1, 4, 8):
            for r in np.geomspace(1, 1000, 20):
                row = {"network": net, "weight_bits": wb, "index_bits": 4, "rate": r}
                row |= {"effective_rate": r, "dense_bits": 1000}
                curves.append(
                    row | {"kind": "non-structured (csr-rel)", "bits": 1000 * (1 + 4 / wb) / r}
                )
                curves.append(row | {"kind": "filter (compact)", "bits": 1000 / r})  # fmt: skip
    return {
        "compute_sweep": pd.DataFrame(sweep),
        "compute_breakeven": pd.DataFrame(be),
        "storage_curves": pd.DataFrame(curves),
        "energy_breakdown": pd.DataFrame(energy),
    }


@pytest.fixture(scope="module")
def t():
    return tables()


@pytest.fixture(scope="module")
def figures(t):
    return {
        "compute": figure_compute(
            t["compute_sweep"], t["compute_breakeven"], "a100", networks=NETWORKS, family="gpu"
        ),
        "storage": figure_storage(t["storage_curves"], "net03", 4),
        "energy": figure_energy_breakdown(t["energy_breakdown"], "net03", families=FAMILIES),
    }


def result(t, out: Path, networks=NETWORKS, platforms=PLATFORMS) -> StudyResult:
    config = StudyConfig(
        networks=networks, platforms=platforms, weight_bits=WIDTHS, index_bits=(4,)
    )
    return StudyResult(config=config, tables=t, out_dir=out, networks=networks, platforms=platforms)


def test_plotting_leaves_the_backend_and_pyplot_alone(t, tmp_path):
    """In a fresh interpreter: drawing and writing every kind of figure neither
    imports pyplot nor changes the backend setting."""
    code = f"""
import sys, matplotlib
before = dict.__getitem__(matplotlib.rcParams, "backend")
sys.path.insert(0, {str(Path(__file__).parent)!r})
from test_plots import tables
from simulator.plots import plot_compute, plot_storage, plot_energy_breakdown
t = tables(networks=("a", "b"), platforms=("eie",))
out = __import__("pathlib").Path({str(tmp_path)!r})
plot_compute(t["compute_sweep"], t["compute_breakeven"], "eie", out / "c")
plot_storage(t["storage_curves"], "a", 4, out / "s")
plot_energy_breakdown(t["energy_breakdown"], "a", out / "e")
assert dict.__getitem__(matplotlib.rcParams, "backend") == before
print("pyplot" if "matplotlib.pyplot" in sys.modules else "no pyplot")
"""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "no pyplot"
    assert {p.name for p in tmp_path.iterdir()} == {
        f"{s}.{e}" for s in "cse" for e in ("png", "svg")
    }


def test_in_this_process_the_backend_and_pyplot_figures_are_unchanged(t, tmp_path):
    backend = matplotlib.get_backend()
    pyplot = sys.modules.get("matplotlib.pyplot")
    open_figures = pyplot.get_fignums() if pyplot else []
    plot_compute(t["compute_sweep"], t["compute_breakeven"], "eie", tmp_path / "c")
    assert matplotlib.get_backend() == backend
    pyplot = sys.modules.get("matplotlib.pyplot")
    assert (pyplot.get_fignums() if pyplot else []) == open_figures


def test_every_axes_is_labelled_with_units(figures):
    for name, fig in figures.items():
        for ax in fig.axes:
            assert ax.get_xlabel().strip() and ax.get_ylabel().strip(), name
            assert "(×" in ax.get_ylabel(), (name, ax.get_ylabel())
            if name != "energy":
                assert "pruning rate (×" in ax.get_xlabel(), (name, ax.get_xlabel())
    compute = figures["compute"].axes
    assert "speedup over dense" in compute[0].get_ylabel()
    assert "energy / dense energy" in compute[1].get_ylabel()


def test_legends_lie_outside_every_axes_and_everything_inside_the_figure(figures):
    for name, fig in figures.items():
        fig.draw_without_rendering()
        renderer = fig.canvas.get_renderer()
        legends = [*fig.legends, *(ax.get_legend() for ax in fig.axes if ax.get_legend())]
        assert legends, name
        for legend in legends:
            box = legend.get_window_extent(renderer)
            for ax in fig.axes:
                assert not box.overlaps(ax.get_window_extent(renderer)), name
            assert box.x1 <= fig.bbox.x1 + 1 and box.y0 >= -1 and box.y1 <= fig.bbox.y1 + 1
        for ax in fig.axes:  # tick labels, axis labels, titles: none cut off
            tight = ax.get_tightbbox(renderer)
            assert tight.x0 >= -1 and tight.y0 >= -1, (name, tight)
            assert tight.x1 <= fig.bbox.x1 + 1 and tight.y1 <= fig.bbox.y1 + 1, (name, tight)


def test_each_network_has_its_own_colour_and_each_width_its_own_style(figures):
    for ax in figures["compute"].axes:
        data = [line for line in ax.get_lines() if len(line.get_xdata()) == len(RATES)]
        assert len(data) == len(NETWORKS) * len(WIDTHS)
        colours = {to_hex(line.get_color()) for line in data}
        assert len(colours) == len(NETWORKS)
        for c in colours:  # one network: its two widths differ in style, not colour
            lines = [line for line in data if to_hex(line.get_color()) == c]
            assert len({(str(line.get_linestyle()), line.get_marker()) for line in lines}) == 2


def test_break_even_lines_are_labelled_in_place_without_overlap(figures):
    fig = figures["compute"]
    fig.draw_without_rendering()
    renderer = fig.canvas.get_renderer()
    latency, energy = fig.axes
    labels = {t.get_text(): t for t in latency.texts}
    # every network at both widths, rate written as in the table (2 significant digits)
    assert "net00 4b 2×" in labels and "net00 8b 2.3×" in labels
    assert "net13 8b 60×" in labels and "net06 4b 9.1×" in labels
    assert len(labels) == len(NETWORKS) * len(WIDTHS)
    # energy: odd networks only (the others never break even, as the title says)
    assert {t.get_text().split()[0] for t in energy.texts} == set(NETWORKS[1::2])
    assert latency.get_title() == "latency"
    assert energy.get_title() == "energy (14 of 28 lines never break even)"
    for ax in (latency, energy):
        boxes = [t.get_window_extent(renderer) for t in ax.texts]
        inside = ax.get_window_extent(renderer)
        for i, a in enumerate(boxes):
            assert inside.x0 <= a.x0 and a.x1 <= inside.x1 and inside.y0 <= a.y0 <= inside.y1
            assert not any(a.overlaps(b) for b in boxes[i + 1 :]), ax.texts[i].get_text()


def test_energy_platforms_are_grouped_by_class(figures):
    ax = figures["energy"].axes[0]
    ticks = [t.get_text().split()[0] for t in ax.get_xticklabels()]
    assert ticks == ["xeon_8380", "a100", "zcu102", "eie"]  # cpu, gpu, fpga, asic
    assert {"CPU", "GPU", "FPGA", "ASIC"} <= {t.get_text() for t in ax.texts}
    assert len({to_hex(t.get_color()) for t in ax.get_xticklabels()}) == 4


def test_png_and_svg_are_written_and_parse(t, tmp_path):
    paths = plot_compute(t["compute_sweep"], t["compute_breakeven"], "eie", tmp_path / "c")
    paths += plot_storage(t["storage_curves"], "net01", 4, tmp_path / "s")
    paths += plot_energy_breakdown(t["energy_breakdown"], "net01", tmp_path / "e")
    assert [p.name for p in paths] == ["c.png", "c.svg", "s.png", "s.svg", "e.png", "e.svg"]
    for png in paths[::2]:
        assert png.read_bytes()[:8] == PNG_MAGIC and png.stat().st_size > 5000
    for svg in paths[1::2]:
        root = ET.parse(svg).getroot()
        assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert "net01" in paths[3].read_text()  # text stays text in the SVG
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in paths)


def _stamp(folder: Path) -> dict[str, int]:
    """Set every file's mtime far in the past; returns the names."""
    for p in folder.iterdir():
        os.utime(p, ns=(10**18, 10**18))
    return {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}


def _rewritten(folder: Path, before: dict[str, int]) -> set[str]:
    now = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    return {n for n in now if before.get(n) != now[n]} | (set(before) - set(now))


def test_write_plots_redraws_only_what_changed(tmp_path):
    nets, platforms = NETWORKS[:3], ("eie", "a100")
    t = tables(nets, platforms)
    out = tmp_path / "study"
    plots = write_plots(result(t, out, nets, platforms))
    folder = out / "plots"
    stems = {"compute_a100", "compute_eie"} | {
        f"{k}_{n}" for k in ("storage", "energy") for n in nets
    }
    assert {p.name for p in folder.iterdir()} == {
        f"{s}.{e}" for s in stems for e in ("png", "svg")
    } | {PLOT_INDEX}
    assert [p.name for p in plots["compute"]] == ["compute_a100.png", "compute_eie.png"]
    assert [p.name for p in plots["storage"]] == [f"storage_{n}.png" for n in nets]
    assert set(json.loads((folder / PLOT_INDEX).read_text())) == stems

    before = _stamp(folder)  # the same tables again: nothing drawn, nothing written
    write_plots(result(t, out, nets, platforms))
    assert _rewritten(folder, before) == set()

    changed = dict(t)  # one network's storage curve: only its storage figure
    curves = t["storage_curves"].copy()
    curves.loc[curves["network"] == "net01", "bits"] *= 2
    changed["storage_curves"] = curves
    before = _stamp(folder)
    write_plots(result(changed, out, nets, platforms))
    assert _rewritten(folder, before) == {"storage_net01.png", "storage_net01.svg", PLOT_INDEX}

    sweep = t["compute_sweep"].copy()  # one platform's sweep: only its compute figure
    sweep.loc[(sweep["platform"] == "eie") & (sweep["rate"] == 4.0), "speedup"] *= 1.5
    changed["compute_sweep"] = sweep
    before = _stamp(folder)
    write_plots(result(changed, out, nets, platforms))
    assert _rewritten(folder, before) == {"compute_eie.png", "compute_eie.svg", PLOT_INDEX}

    (folder / "energy_net02.svg").unlink()  # a file gone: that figure is redrawn
    before = _stamp(folder)
    write_plots(result(changed, out, nets, platforms))
    assert _rewritten(folder, before) == {"energy_net02.png", "energy_net02.svg", PLOT_INDEX}


def test_write_plots_removes_figures_no_longer_studied(tmp_path):
    t = tables(NETWORKS[:2], ("eie", "a100"))
    out = tmp_path / "study"
    write_plots(result(t, out, NETWORKS[:2], ("eie", "a100")))
    (out / "plots" / "storage_gone.svg").write_text("<svg/>")
    t = tables(NETWORKS[:1], ("eie",))
    write_plots(result(t, out, NETWORKS[:1], ("eie",)))
    assert {p.name for p in (out / "plots").iterdir()} == {
        f"{s}.{e}" for s in ("compute_eie", "storage_net00", "energy_net00") for e in ("png", "svg")
    } | {PLOT_INDEX}
    index = json.loads((out / "plots" / PLOT_INDEX).read_text())
    assert set(index) == {"compute_eie", "storage_net00", "energy_net00"}


def test_a_damaged_index_redraws_everything(tmp_path):
    t = tables(NETWORKS[:1], ("eie",))
    out = tmp_path / "study"
    write_plots(result(t, out, NETWORKS[:1], ("eie",)))
    (out / "plots" / PLOT_INDEX).write_text("{not json")
    before = _stamp(out / "plots")
    write_plots(result(t, out, NETWORKS[:1], ("eie",)))
    assert _rewritten(out / "plots", before) == set(before)


def test_a_resumed_write_plots_does_not_import_matplotlib(tmp_path):
    """Nothing to draw, nothing to import: a second write_plots, in a fresh
    interpreter, leaves matplotlib unimported."""
    nets, platforms = NETWORKS[:2], ("eie",)
    study = result(tables(nets, platforms), tmp_path / "study", nets, platforms)
    write_plots(study)
    (tmp_path / "result.pickle").write_bytes(pickle.dumps(study))
    code = f"""
import pickle, sys
from pathlib import Path
from simulator.study.output import write_plots
write_plots(pickle.loads(Path({str(tmp_path / "result.pickle")!r}).read_bytes()))
print(sorted(m for m in ("matplotlib", "matplotlib.pyplot") if m in sys.modules))
"""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
