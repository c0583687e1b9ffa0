"""The LLM study (``prunesim study --suite llm``) and the structured pruning of heads
and MLP channels it needs: weight and MAC counts of head/channel pruning counted by
hand on a tiny config, the block-scaling rule against a run of every block, an
end-to-end run on a tiny config and two platforms checked against
``estimate_network`` and against a dense run of the smaller model that head/channel
pruning leaves, and the options' validation (one line, exit code 2)."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from simulator.cli import main
from simulator.errors import ConfigError, MaskError
from simulator.hfconfig import Phase
from simulator.hwconfig import load_platform
from simulator.llmprune import prune_heads_channels
from simulator.masks import Pruning
from simulator.netmasks import network_profiles
from simulator.settings import Settings
from simulator.simulate import estimate_network, simulate_network
from simulator.study.llm import LLMStudyConfig, build_workload, study_workload
from simulator.study.llmrun import run_llm_study
from simulator.workloads import load_network

H, HEADS, KV, D, MLP = 64, 4, 2, 16, 128  # hidden, heads, KV heads, head_dim, intermediate


def tiny(tmp_path, layers=2, name="tiny", **over):
    """A Llama-family config.json: hidden 64, 4 heads of 16, 2 KV heads, MLP 128."""
    cfg = {
        "model_type": "llama",
        "hidden_size": H,
        "intermediate_size": MLP,
        "num_attention_heads": HEADS,
        "num_key_value_heads": KV,
        "head_dim": D,
        "num_hidden_layers": layers,
        "vocab_size": 256,
        "max_position_embeddings": 4096,
        **over,
    }
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(cfg))
    return str(path)


# --- head and channel pruning by hand ---------------------------------------------------


def test_head_and_channel_pruning_counted_by_hand(tmp_path):
    """Rate 2 keeps 1 of 2 KV groups (its KV head and its 2 query heads) and 64 of 128
    MLP channels in each block."""
    ctx = 16
    net = load_network(
        tiny(tmp_path), phase=Phase(kind="decode", batch=1, context=ctx, lm_head=False)
    )
    s = prune_heads_channels(net, 0.5, seed=3)
    # per block, all weights: q 64x64, k and v 32x64, o 64x64, gate and up 128x64, down 64x128
    full = 64 * 64 + 2 * 32 * 64 + 64 * 64 + 3 * 128 * 64
    assert full == 36_864 and s.total_weights == 2 * full
    # kept: q 32x64, k and v 16x64, o 64x32, gate and up 64x64, down 64x64
    kept = 32 * 64 + 2 * 16 * 64 + 64 * 32 + 3 * 64 * 64
    assert kept == 18_432 and s.kept_weights == 2 * kept and s.rate == 2.0
    for choice in s.choices:
        assert choice.groups.sum() == 1 and choice.channels.sum() == 64
        j = int(np.flatnonzero(choice.groups)[0])
        p = f"model.layers.{choice.index}."
        prof = {n.removeprefix(p): s.profiles[n] for n in s.profiles if n.startswith(p)}
        q = prof["self_attn.q_proj"].gemm[0]
        # group j's query heads 2j and 2j+1: rows 32j .. 32j+31, every column
        assert np.flatnonzero(q.any(axis=1)).tolist() == list(range(32 * j, 32 * j + 32))
        assert q.all(axis=1).sum() == 32
        k = prof["self_attn.k_proj"].gemm[0]
        assert np.flatnonzero(k.any(axis=1)).tolist() == list(range(16 * j, 16 * j + 16))
        o = prof["self_attn.o_proj"].gemm[0]
        assert np.flatnonzero(o.any(axis=0)).tolist() == list(range(32 * j, 32 * j + 32))
        gate, up = prof["mlp.gate_proj"].gemm[0], prof["mlp.up_proj"].gemm[0]
        down = prof["mlp.down_proj"].gemm[0]
        ch = np.flatnonzero(choice.channels)
        assert np.array_equal(np.flatnonzero(gate.any(axis=1)), ch)
        assert np.array_equal(np.flatnonzero(up.any(axis=1)), ch)
        assert np.array_equal(np.flatnonzero(down.any(axis=0)), ch)
    # the attention products run on the kept KV group only: heads 2 -> 1
    products = {layer.name: layer for layer in s.network.layers if not layer.prunable}
    assert {layer.heads for layer in products.values()} == {1}
    # MACs at decode, batch 1: the kept weights once each, plus per block scores and
    # context of one KV head: (2 query heads x 1 token) x 16 x 16 each
    attn = 2 * (2 * 1 * D * ctx)
    macs = 2 * kept + 2 * attn
    est = simulate_network(
        s.network,
        load_platform("a100"),
        {"structured": s.profiles},
        Settings(kv_bits=16),
        variants=["structured"],
    )
    assert sum(r.counts.macs_done for r in est.layers) == macs
    # the KV cache at 16 bits: k and v write 16 elements each per block (half of 32), the
    # products read 1 KV head x 16 x 16 each
    assert sum(r.kv_write_bits for r in est.layers) == 2 * 2 * 16 * 16
    assert sum(r.kv_read_bits for r in est.layers) == 2 * 2 * (16 * ctx) * 16


def test_multi_head_attention_prunes_single_heads_and_rounds_to_whole_units(tmp_path):
    net = load_network(tiny(tmp_path, num_key_value_heads=4), phase=Phase(lm_head=False))
    s = prune_heads_channels(net, 0.3)
    # 4 heads at 0.3 keep round(1.2) = 1; 128 channels keep round(38.4) = 38
    assert all(c.groups.sum() == 1 and c.channels.sum() == 38 for c in s.choices)
    q = 16 * 64
    block = q + 2 * 16 * 64 + 64 * 16 + 3 * 38 * 64
    assert s.kept_weights == 2 * block


def test_head_pruning_needs_blocks():
    with pytest.raises(MaskError, match="no transformer blocks"):
        prune_heads_channels(load_network("lenet5"), 0.5)


def test_structured_run_equals_dense_run_of_the_smaller_model(tmp_path):
    """Head/channel pruning at rate 2 leaves the model with 2 heads, 1 KV head and 64
    channels: a dense run of that config costs what the structured run costs on a
    roofline (a smaller dense GEMM), layer by layer: the same MACs, and latency but for
    the survivor lists structured execution reads (a few bytes per kept row)."""
    phase = Phase(kind="decode", batch=8, context=64, lm_head=False)
    net = load_network(tiny(tmp_path), phase=phase)
    small = load_network(
        tiny(
            tmp_path,
            name="small",
            num_attention_heads=2,
            num_key_value_heads=1,
            intermediate_size=64,
        ),
        phase=phase,
    )
    s = prune_heads_channels(net, 0.5)
    dense = network_profiles(small, Pruning(structure="dense"))
    for name in ("a100", "xeon_8380"):
        p = load_platform(name)
        st = simulate_network(s.network, p, {"structured": s.profiles}, variants=["structured"])
        de = simulate_network(small, p, {"dense": dense}, variants=["dense"])
        assert [r.counts.macs_done for r in st.layers] == [r.counts.macs_done for r in de.layers]
        a = [r.cost.latency_s for r in st.layers]
        b = [r.cost.latency_s for r in de.layers]
        assert a == pytest.approx(b, rel=1e-2), name  # survivor lists: under 1 % here


# --- the block-scaling rule ---------------------------------------------------------------


def test_scaled_blocks_match_every_block(tmp_path):
    """8 blocks: 2 simulated and scaled by 4 against all 8. Dense exactly (every block
    is the same: to rounding); random masks within 1 % on the rooflines (their spread
    between blocks), within 5 % on EIE, which keeps weights on chip across inferences
    (the chip's weight memory counted once per simulated block; 3.1 % here, where the
    tiny model's weights fill a good share of it)."""
    model = tiny(tmp_path, layers=8)
    platforms = [load_platform(n) for n in ("a100", "xeon_8380", "eie")]
    kw = dict(models=(model,), phases=("decode",), batches=(8,), weight_bits=(4, 8), context=256)
    scaled_cfg = LLMStudyConfig(blocks=2, **kw)
    scaled = study_workload(build_workload(model, "decode", 8, scaled_cfg), platforms, scaled_cfg)
    full_cfg = LLMStudyConfig(blocks=0, **kw)
    work = build_workload(model, "decode", 8, full_cfg)
    assert work.simulated_blocks == work.total_blocks == 8 and work.scale == 1
    full = study_workload(work, platforms, full_cfg)

    def totals(t):
        s = t["compute_sweep"]
        s = s[s["layer"] == "(network)"].set_index(["platform", "kind", "rate", "weight_bits"])
        return s[["latency_s", "energy_j"]].sort_index()

    a, b = totals(scaled), totals(full)
    roofline = a.index.get_level_values("platform") != "eie"
    dense = (a.index.get_level_values("kind") == "dense") & roofline
    # dense: equal but for the order of a floating-point sum (16 terms x 4 against 64)
    assert a[dense].to_numpy() == pytest.approx(b[dense].to_numpy(), rel=1e-12)
    assert a[roofline].to_numpy() == pytest.approx(b[roofline].to_numpy(), rel=0.01)
    assert a[~roofline].to_numpy() == pytest.approx(b[~roofline].to_numpy(), rel=0.05)
    v = scaled["verdict"]
    assert set(v["blocks_simulated"]) == {2} and set(v["blocks"]) == {8}


# --- end to end -----------------------------------------------------------------------


def test_end_to_end_tiny_llm_study_against_estimate(tmp_path, capsys):
    model = tiny(tmp_path)
    out = tmp_path / "out"
    argv = [
        "study", "--suite", "llm", "--networks", model, "--platforms", "a100,xeon_8380",
        "--batches", "1,8", "--seq-len", "32", "--context", "64", "--weight-bits", "8",
        "--out", str(out),
    ]  # fmt: skip
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "every block simulated" in printed
    assert "unstructured sparsity runs faster than dense" in printed
    for f in ("report.md", "report.html", "tables/verdict.csv", "tables/compute_breakeven.csv"):
        assert (out / f).is_file(), f
    report = (out / "report.md").read_text()
    assert report.startswith("# Is unstructured sparsity beneficial for LLM inference")
    v = pd.read_csv(out / "tables" / "verdict.csv")
    assert len(v) == 2 * 2 * 2  # phases x batches x platforms
    # the answer counts the verdict's wins
    wins = int((v["speedup_vs_dense"] > 1.05).sum())
    assert f"by more than 5 % in {wins} of 8 workload/platform pairs" in printed
    gpu = v[v["platform"] == "a100"]["speedup_vs_dense"]
    assert (
        f"speedup {gpu.min():.2f}-{gpu.max():.2f}x at 2x"
        in printed.split("GPUs (a100)")[1].split("\n")[0]
    )
    for phase in ("prefill", "decode"):
        for batch in (1, 8):
            net = load_network(
                model,
                phase=Phase(kind=phase, batch=batch, seq_len=32, context=64, lm_head=False),
            )
            platforms = [load_platform(n) for n in ("a100", "xeon_8380")]
            # the suite's weight-only quantization: 16-bit activations (8-bit weights carry
            # no group scales)
            s = Settings(weight_bits=8, index_bits=4, activation_bits=16)
            est = estimate_network(net, platforms, Pruning(density=0.5), s)
            tot = est.totals().set_index(["platform", "variant"])
            for p in platforms:
                row = v[(v["network"] == f"tiny {phase} b{batch}") & (v["platform"] == p.name)]
                assert len(row) == 1
                row = row.iloc[0]
                assert row["speedup_vs_dense"] == pytest.approx(
                    tot.loc[(p.name, "sparse"), "speedup"]
                )
                assert row["energy_ratio_vs_dense"] == pytest.approx(
                    tot.loc[(p.name, "sparse"), "energy_ratio"]
                )
                assert row["beats_dense_latency"] == (row["speedup_vs_dense"] > 1.05)
                if p.compute.nm_sparse is not None:  # 2:4 on the N:M unit, as estimate runs it
                    assert row["nm_speedup_vs_dense"] == pytest.approx(
                        tot.loc[(p.name, "nm"), "speedup"]
                    )
    # the break-even is where the whole-network speedup first passes 1
    ce = pd.read_csv(out / "tables" / "compute_breakeven.csv")
    ce = ce[ce["layer"] == "(network)"]
    assert len(ce) == 2 * 2 * 2
    # a rerun reuses every part
    assert main(argv) == 0
    assert "reused earlier results for: tiny prefill b1" in capsys.readouterr().out


def test_resume_is_per_workload(tmp_path):
    model = tiny(tmp_path)
    cfg = LLMStudyConfig(
        models=(model,), platforms=("a100",), phases=("decode",), batches=(1, 8),
        weight_bits=(8,), context=64,
    )  # fmt: skip
    first = run_llm_study(cfg, tmp_path / "o")
    assert first.resumed == ()
    parts = sorted((tmp_path / "o" / "parts").iterdir())
    assert len(parts) == 2
    import shutil

    shutil.rmtree(parts[0])
    again = run_llm_study(cfg, tmp_path / "o")
    assert len(again.resumed) == 1
    pd.testing.assert_frame_equal(first.tables["verdict"], again.tables["verdict"])


def test_default_platforms_are_gpus_cpus_and_eie_style_asics():
    names = LLMStudyConfig().platform_names()
    classes = {n: load_platform(n) for n in names}
    assert {"a100", "xeon_8380", "eie"} <= set(names)
    for p in classes.values():
        assert p.platform_class in ("gpu", "cpu") or p.execution == "eie"


# --- options ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--suite", "gpu"], "--suite"),
        (["--suite", "llm", "--structure", "filter"], "--structure applies to --suite cnn only"),
        (["--suite", "llm", "--rate", "alexnet=8"], "--rate applies to --suite cnn only"),
        (["--suite", "llm", "--no-cascade"], "--no-cascade applies to --suite cnn only"),
        (["--batches", "1"], "--batches applies to --suite llm only"),
        (["--suite", "cnn", "--blocks", "2"], "--blocks applies to --suite llm only"),
        (["--suite", "llm", "--networks", "resnet50"], "not a Hugging Face config"),
        (["--suite", "llm", "--sweep-rates", "2,4", "--verdict-rate", "3"], "verdict_rate"),
        (["--suite", "llm", "--sweep-rates", "1,2"], "rates"),
        (["--suite", "llm", "--breakeven-rates", "0.5"], "breakeven_rates"),
        (["--breakeven-rates", "10"], "--breakeven-rates applies to --suite llm only"),
        (["--suite", "llm", "--batches", "0"], "batches"),
        (["--suite", "llm", "--blocks", "-1"], "--blocks"),
        (["--suite", "llm", "--phases", "train"], "--phases"),
        (["--suite", "llm", "--weight-bits", "0"], "weight_bits"),
        (["--activation-bits", "16"], "--activation-bits applies to --suite llm only"),
        (["--group-size", "64"], "--group-size applies to --suite llm only"),
        (["--suite", "llm", "--activation-bits", "0"], "--activation-bits"),
        (["--suite", "llm", "--group-size", "-1"], "--group-size"),
    ],
)
def test_bad_options_one_line_exit_2(argv, needle, capsys, tmp_path):
    code = main(["study", *argv, "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert needle in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_two_models_of_one_name_are_refused(tmp_path, capsys):
    a = tiny(tmp_path)
    (tmp_path / "b").mkdir()
    b = tiny(tmp_path / "b")
    code = main(["study", "--suite", "llm", "--networks", f"{a},{b}", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "two models share a name (tiny decode b1" in err
    assert len(err.splitlines()) == 1


def test_config_validation_lists_every_problem():
    with pytest.raises(ConfigError) as e:
        LLMStudyConfig(rates=(2.0,), verdict_rate=3.0, batches=(0,), blocks=-1, seed=-1)
    text = str(e.value)
    for key in ("verdict_rate", "batches", "blocks", "seed"):
        assert key in text
    assert math.isclose(LLMStudyConfig().verdict_rate, 2.0)


def test_computing_a_workload_uses_no_presentation_code(tmp_path):
    """Parts are vouched for by a code hash that leaves out the presentation files
    (the report, plots, CLI): computing a workload must not use them."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from simulator.study.runner import PRESENTATION

    modules = [
        "simulator." + p.removesuffix("/").removesuffix(".py").replace("/", ".")
        for p in PRESENTATION
    ]
    model = tiny(tmp_path)
    code = (
        "import sys\n"
        "from simulator.hwconfig import load_platform\n"
        "from simulator.study.llm import LLMStudyConfig, build_workload, study_workload\n"
        f"cfg = LLMStudyConfig(models=({model!r},), phases=('decode',), batches=(1,),\n"
        "                     weight_bits=(8,), context=64)\n"
        f"work = build_workload({model!r}, 'decode', 1, cfg)\n"
        "study_workload(work, [load_platform('a100'), load_platform('eie')], cfg)\n"
        f"print([m for m in {modules!r} if m in sys.modules])\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_the_cnn_study_stays_the_default():
    from simulator.cli.study import build_parser

    assert build_parser().parse_args([]).suite == "cnn"
    assert build_parser().parse_args(["--suite", "LLM"]).suite == "llm"


def test_masks_beyond_the_held_budget_are_drawn_per_run(tmp_path, monkeypatch):
    """Masks that would pass the held budget are drawn layer by layer for each run:
    the same tables, nothing held."""
    import simulator.study.llm as llm

    model = tiny(tmp_path)
    cfg = LLMStudyConfig(
        models=(model,), phases=("decode",), batches=(1,), weight_bits=(8,), context=64
    )
    work = build_workload(model, "decode", 1, cfg)
    platforms = [load_platform("a100")]
    held = llm.MaskCache()
    a = study_workload(work, platforms, cfg, held)
    # 5 rates (3 compared, 2 for the break-even) and 2:4
    assert held.held_bytes == 6 * (work.network.weight_count // 8)
    monkeypatch.setattr(llm, "HELD_PROFILE_BYTES", 0)
    streamed = llm.MaskCache()
    b = study_workload(work, platforms, cfg, streamed)
    assert streamed.held_bytes == 0
    pd.testing.assert_frame_equal(a["verdict"], b["verdict"])
    pd.testing.assert_frame_equal(a["compute_sweep"], b["compute_sweep"])


def test_fused_qkv_and_ungated_mlp_counted_by_hand(tmp_path):
    """GPT-2: one fused c_attn (rows q | k | v) and a two-matrix MLP. Hidden 64, 4
    heads of 16, MLP 128, one block, at rate 2: 2 heads and 64 channels kept."""
    cfg = {
        "model_type": "gpt2", "n_embd": 64, "n_head": 4, "n_layer": 1, "n_inner": 128,
        "vocab_size": 256, "n_positions": 1024,
    }  # fmt: skip
    path = tmp_path / "gpt.json"
    path.write_text(json.dumps(cfg))
    s = prune_heads_channels(load_network(str(path), phase=Phase(lm_head=False)), 0.5)
    kept = {n.rsplit(".", 2)[-2] + "." + n.rsplit(".", 1)[-1]: p.nnz for n, p in s.profiles.items()}
    assert kept == {
        "attn.c_attn": 3 * 32 * 64,  # the kept heads' rows in each of q, k and v
        "attn.c_proj": 64 * 32,  # their columns of the output projection
        "mlp.c_fc": 64 * 64,
        "mlp.c_proj": 64 * 64,
    }
    (choice,) = s.choices
    j = np.flatnonzero(choice.groups)
    rows = np.flatnonzero(s.profiles["transformer.h.0.attn.c_attn"].gemm[0].any(axis=1))
    want = [t * 64 + h * 16 + i for t in range(3) for h in j for i in range(16)]
    assert rows.tolist() == sorted(want)
    assert s.rate == 2.0


def test_weight_only_quantization_widths_and_settings():
    """Every CPU and GPU runs both weight widths (weight-only quantization); an
    accelerator its own; 4-bit weights carry the group scales, 8-bit ones none, both
    with 16-bit activations."""
    c = LLMStudyConfig()
    for name in ("a100", "v100", "xeon_8380", "cortex_a72"):
        assert c.weight_widths(load_platform(name)) == (4, 8)
        assert c.verdict_width(load_platform(name)) == 8
    eie = load_platform("eie")
    assert c.weight_widths(eie) == tuple(w for w in (4, 8) if w in eie.weight_bits)
    four, eight = c.settings(4), c.settings(8)
    assert (four.group_size, four.scale_bits, four.activation_bits) == (128, 16, 16)
    assert (eight.group_size, eight.activation_bits) == (None, 16)
    assert LLMStudyConfig(group_size=0).settings(4).group_size == 0
    with pytest.raises(ConfigError, match="group_size"):
        LLMStudyConfig(group_size=-2)


def test_four_bit_rows_are_estimates_with_group_scales(tmp_path, capsys):
    """A tiny study at 4-bit weights on the A100 and the Xeon: each row's speedup and
    energy ratio are those of ``estimate_network`` with 16-bit activations and a 16-bit
    scale per 128 inputs (the suite's defaults), computed here independently."""
    model = tiny(tmp_path)
    out = tmp_path / "out"
    argv = [
        "study", "--suite", "llm", "--networks", model, "--platforms", "a100,xeon_8380",
        "--batches", "1", "--phases", "decode", "--context", "64", "--weight-bits", "4",
        "--out", str(out),
    ]  # fmt: skip
    assert main(argv) == 0
    capsys.readouterr()
    t = pd.read_csv(out / "tables" / "structured_vs_nonstructured.csv")
    net = load_network(model, phase=Phase(kind="decode", batch=1, context=64, lm_head=False))
    platforms = [load_platform(n) for n in ("a100", "xeon_8380")]
    s = Settings(weight_bits=4, index_bits=4, activation_bits=16, group_size=128)
    tot = estimate_network(net, platforms, Pruning(density=0.5), s).totals()
    tot = tot.set_index(["platform", "variant"])
    for p in platforms:
        row = t[(t["platform"] == p.name) & (t["weight_bits"] == 4)]
        assert len(row) == 1
        assert row.iloc[0]["speedup_vs_dense"] == pytest.approx(
            tot.loc[(p.name, "sparse"), "speedup"]
        )
        assert row.iloc[0]["energy_ratio_vs_dense"] == pytest.approx(
            tot.loc[(p.name, "sparse"), "energy_ratio"]
        )
