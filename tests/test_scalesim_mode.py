"""SCALE-Sim mode (``compute.dram_model: scalesim``) and ``--platform FILE.cfg``
against SCALE-Sim v3.0.0's own numbers: per-layer cycles and DRAM words per operand.

References: tests/data/scalesim_v3_32x32.csv (177 layers, commands in
tests/data/scalesim_v3_32x32.md) and tests/data/scalesim/small3/ (non-square arrays,
small SRAMs; commands in its README.md). SCALE-Sim is not needed to run these tests.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import twins
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator import kernels
from simulator.cli import main
from simulator.dataflows import LayerTask, run_systolic
from simulator.errors import ConfigError
from simulator.formats import profile_gemm
from simulator.hwconfig import load_platform
from simulator.simulate import engine
from simulator.workloads import read_scalesim_topology

DATA = Path(__file__).resolve().parent / "data"
SS = DATA / "scalesim"
SMALL = SS / "small3"
REF = pd.read_csv(DATA / "scalesim_v3_32x32.csv")
FLOWS = {"ws": 0, "os": 1, "is": 2}


def _cfg(tmp_path: Path, base: Path, **subs: str) -> Path:
    """A copy of ``base`` with ``Key : value`` lines replaced."""
    lines = []
    for line in base.read_text().splitlines():
        key = line.split(":")[0].split("=")[0].strip()
        lines.append(f"{key} : {subs.pop(key)}" if key in subs else line)
    assert not subs, subs
    out = tmp_path / f"{base.stem}-{len(list(tmp_path.iterdir()))}.cfg"
    out.write_text("\n".join(lines) + "\n")
    return out


def _dense(layer) -> LayerTask:
    g = layer.gemm
    prof = profile_gemm(np.ones((g.groups, g.rows, g.cols), np.uint8))
    return LayerTask(
        layer=layer, profile=prof, variant="dense", weight_bits=8, index_bits=4, activation_bits=8
    )


def _run(platform, layers):
    run = engine(platform, "dense")
    out = []
    for layer in layers:
        c = run(_dense(layer))
        w = c.words
        out.append(
            (
                int(c.compute_cycles),
                w["dram_ifmap_words"],
                w["dram_filter_words"],
                w["dram_ofmap_words"],
            )
        )
    return out


@pytest.mark.parametrize("dataflow", ["ws", "os", "is"])
@pytest.mark.parametrize("topology", ["alexnet", "resnet50"])
def test_scalesim_cfg_reproduces_cycles_and_dram_words_exactly(tmp_path, topology, dataflow):
    platform = load_platform(_cfg(tmp_path, SS / "scale.cfg", Dataflow=dataflow))
    ref = REF[(REF["topology"] == topology) & (REF["dataflow"] == dataflow)]
    layers = read_scalesim_topology(SS / f"{topology}.csv").layers
    cols = ["compute_cycles", "dram_ifmap_reads", "dram_filter_reads", "dram_ofmap_writes"]
    expect = [tuple(int(x) for x in r) for r in ref[cols].itertuples(index=False)]
    assert len(expect) == len(layers) > 0
    assert _run(platform, layers) == expect


def _small_runs():
    for cfg in sorted(SMALL.glob("*.cfg")):
        yield pytest.param(cfg, id=cfg.stem)


@pytest.mark.parametrize("cfg", list(_small_runs()))
def test_other_shapes_and_sram_sizes_match_scalesim_runs(cfg):
    """Arrays 8x16, 16x8 (8 kB SRAMs) and 5x12 (1/2/1 kB), ws/os/is, a 3-layer topology."""
    comp = pd.read_csv(SMALL / f"{cfg.stem}_COMPUTE_REPORT.csv", skipinitialspace=True)
    acc = pd.read_csv(SMALL / f"{cfg.stem}_DETAILED_ACCESS_REPORT.csv", skipinitialspace=True)
    expect = [
        (int(c), int(i), int(f), int(o))
        for c, i, f, o in zip(
            comp["Total Cycles"],
            acc["DRAM IFMAP Reads"],
            acc["DRAM Filter Reads"],
            acc["DRAM OFMAP Writes"],
            strict=True,
        )
    ]
    layers = read_scalesim_topology(SMALL / "small3.csv").layers
    assert _run(load_platform(cfg), layers) == expect


def test_builtin_dense_arrays_are_mapped():
    """The built-in SCALE-Sim arrays map each layer as a loop nest over SCALE-Sim's
    three 64 KB SRAMs; SCALE-Sim's own counting is the opt-in mode above."""
    layer = read_scalesim_topology(SS / "alexnet.csv").layers[2]
    for flow in FLOWS:
        p = load_platform(f"scalesim_32x32_{flow}")
        assert p.dram_model == "mapped"
        assert p.scalesim_sram_bytes == {"ifmap": 65536, "filter": 65536, "ofmap": 65536}
        assert run_systolic(_dense(layer), p).mapping.dataflow == flow


def test_a_yaml_profile_can_opt_in(tmp_path):
    """``extends: scalesim_32x32_is`` plus ``dram_model: scalesim``: the sram level in
    thirds gives SCALE-Sim's three 64 kB SRAMs, and its counts."""
    path = tmp_path / "p.yaml"
    path.write_text("extends: scalesim_32x32_is\nname: mine\ncompute:\n  dram_model: scalesim\n")
    ref = REF[(REF["topology"] == "alexnet") & (REF["dataflow"] == "is")]
    layers = read_scalesim_topology(SS / "alexnet.csv").layers
    got = [x[1:] for x in _run(load_platform(path), layers)]
    cols = ["dram_ifmap_reads", "dram_filter_reads", "dram_ofmap_writes"]
    assert got == [tuple(int(x) for x in r) for r in ref[cols].itertuples(index=False)]
    path.write_text("extends: eie\nname: x\ncompute:\n  dram_model: scalesim\n")
    with pytest.raises(ConfigError, match="needs a systolic profile"):
        load_platform(path)


def test_cfg_profile_fields():
    p = load_platform(SMALL / "s_16x8_os.cfg")
    c = p.compute
    assert (c.array_rows, c.array_cols, c.pes, c.dataflow) == (16, 8, 128, "os")
    assert p.dram_model == "scalesim"
    assert p.scalesim_sram_bytes == {"ifmap": 8192, "filter": 8192, "ofmap": 8192}
    assert p.weight_bits == (8,) and p.activation_bits == 8
    assert p.level("dram").bandwidth_bytes_per_s == 10 * 1e9
    assert "SCALE-Sim reports no energy" in p.source
    assert p.name == "s_16x8_os"


def test_scalesim_mode_never_stalls_on_bandwidth(tmp_path):
    """CALC mode: the DRAM bandwidth a layer needs is computed, latency is its cycles."""
    platform = load_platform(_cfg(tmp_path, SS / "scale.cfg", Bandwidth="1"))
    from simulator.cost import price

    layer = read_scalesim_topology(SS / "alexnet.csv").layers[1]
    counts = run_systolic(_dense(layer), platform)
    cost = price(counts, platform, 8, 8)
    assert cost.bound == "compute"
    assert cost.latency_s == counts.compute_cycles / platform.clock_hz
    assert dict(cost.memory_s)["dram"] > cost.latency_s  # the requirement, reported


def test_bad_cfg_lists_every_problem_with_file_and_key(tmp_path):
    bad = tmp_path / "bad.cfg"
    bad.write_text(
        (SS / "scale.cfg")
        .read_text()
        .replace("ArrayWidth:     32", "ArrayWidht: 32")
        .replace("Dataflow : ws", "Dataflow : rs")
        .replace("InterfaceBandwidth: CALC", "InterfaceBandwidth: USER")
        .replace("SparsitySupport : false", "SparsitySupport : true")
        .replace("IfmapSramSzkB:   64", "IfmapSramSzkB:   0")
        + "\n[extras]\nfoo = 1\n"
    )
    with pytest.raises(ConfigError) as err:
        load_platform(bad)
    text = str(err.value)
    assert str(bad) in text
    for part in (
        "ArrayWidht",
        "did you mean",
        "[architecture_presets] ArrayWidth: required",
        "Dataflow: expected ws, os or is",
        "InterfaceBandwidth: USER",
        "SparsitySupport: true is not modelled",
        "IfmapSramSzkB: expected 1",
        "[extras]: not a SCALE-Sim section",
    ):
        assert part in text, part


@pytest.mark.parametrize(
    "text, message",
    [
        ("not an ini file", "not a SCALE-Sim configuration"),
        ("[general]\nrun_name = a\n[general]\nrun_name = b\n", "not a SCALE-Sim configuration"),
        ("[run_presets]\nUseRamulatorTrace: True\n", "UseRamulatorTrace: true is not modelled"),
        ("[layout]\nIfmapCustomLayout: maybe\n", "expected true or false"),
        ("[architecture_presets]\nArrayHeight: 3.5\n", "expected an integer"),
    ],
)
def test_cfg_refusals(tmp_path, text, message):
    path = tmp_path / "x.cfg"
    path.write_text(text)
    with pytest.raises(ConfigError, match=r"x\.cfg") as err:
        load_platform(path)
    assert message in str(err.value)


def test_missing_cfg_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="no such SCALE-Sim configuration"):
        load_platform(tmp_path / "none.cfg")


def test_estimate_prints_scalesims_cycles_and_dram_words(capsys, tmp_path):
    out_json = tmp_path / "e.json"
    args = ["estimate", str(SS / "alexnet.csv"), "--platform", str(SS / "scale.cfg")]
    assert main([*args, "--per-layer", "--json", str(out_json)]) == 0
    text = capsys.readouterr().out
    ref = REF[(REF["topology"] == "alexnet") & (REF["dataflow"] == "ws")]
    for r in ref.itertuples():
        nums = [r.compute_cycles, r.dram_ifmap_reads, r.dram_filter_reads, r.dram_ofmap_writes]
        line = next(x for x in text.splitlines() if x.startswith(f"{r.layer} ") and "dense" in x)
        assert line.split()[2:] == [f"{n:,}" for n in nums], line
    import json

    rows = [x for x in json.loads(out_json.read_text())["layers"] if x["variant"] == "dense"]
    assert [x["dram_ifmap_words"] for x in rows] == list(ref["dram_ifmap_reads"])


# --- the kernels against their twins (SCALE-Sim's code, ported as written) ---------------


@st.composite
def _layers(draw):
    fh, fw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    sh, sw = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    h, w = draw(st.integers(fh, 9)), draw(st.integers(fw, 9))
    c, k = draw(st.integers(1, 4)), draw(st.integers(1, 7))
    eh, ew = -(-(h - fh + sh) // sh), -(-(w - fw + sw) // sw)
    return np.array([h, w, c, fh, fw, sh, k, eh, ew, sw], dtype=np.int64)


@settings(max_examples=60, deadline=None)
@given(
    geom=_layers(),
    rows=st.integers(1, 6),
    cols=st.integers(1, 6),
    flow=st.sampled_from(list(FLOWS)),
    sram=st.sampled_from([100, 200, 300, 700, 4096]),
)
def test_kernels_match_scalesims_buffers(geom, rows, cols, flow, sram):
    ifmap, filt, ofmap = twins.scalesim_demands(geom, rows, cols, flow)
    epoch = 50 * (sram // 100)
    f = FLOWS[flow]
    assert kernels.scalesim_read_words(f, 0, geom, rows, cols, epoch) == (
        twins.scalesim_read_words(ifmap, sram)
    )
    assert kernels.scalesim_read_words(f, 1, geom, rows, cols, epoch) == (
        twins.scalesim_read_words(filt, sram)
    )
    words, _ = kernels.scalesim_ofmap_writes(f, geom, rows, cols, sram, cols)
    assert words == twins.scalesim_write_words(ofmap, sram, cols)
