"""Published accuracy of pruned LLMs (``simulator/study/llm_accuracy.yaml``): the file
parsed and validated (bad entries refused with the file and key named), every figure
found in the note that quotes its source, the structured rate at equal accuracy
counted by hand from the stated parameter counts and the config's shapes, and the
equal-accuracy columns of a tiny LLM study recomputed from ``estimate_network`` and a
head/channel-pruned run."""

from __future__ import annotations

import copy
import dataclasses
import json
import math

import pytest

from simulator.errors import ConfigError
from simulator.hfconfig import Phase
from simulator.hwconfig import load_platform
from simulator.llmprune import prune_heads_channels
from simulator.masks import Pruning
from simulator.simulate import estimate_network, simulate_network
from simulator.study.llm import LLMStudyConfig, build_workload, study_workload
from simulator.study.llm_accuracy import (
    ACCURACY_FILE,
    equal_accuracy,
    llm_accuracy,
    parse_accuracy,
)
from simulator.workloads import load_network
from simulator.yamlio import read_yaml

# Llama-3-8B by hand (models/hf/llama3_8b.json): vocabulary 128256, hidden 4096, 32
# blocks, untied embeddings; the stated counts are LLM-Pruner's (more_results README)
V3, H3, L3 = 128256, 4096, 32
LLAMA3_BEFORE, LLAMA3_AFTER = 8030261248, 6612586496


def _raw():
    return read_yaml(ACCURACY_FILE)


def test_the_file_parses_and_names_both_default_models():
    acc = llm_accuracy()
    assert set(acc) >= {"llama2_7b", "llama3_8b"}
    for m in acc.values():
        assert m.metric == "WikiText-2 perplexity"
        assert any(f.kind == "structured" for f in m.figures)


def test_every_figure_is_quoted_in_its_note_with_its_citation():
    for name, m in llm_accuracy().items():
        for f in m.figures:
            if not f.known:
                assert f.note.startswith("unknown"), (name, f.method)
                continue
            assert f.source and f.citation and f.url.startswith("https://"), (name, f.method)
            assert f"{f.perplexity:g}" in f.note, (name, f.method, f.perplexity)
            for count in (f.params_dense, f.params_pruned):
                if count is not None and f.kind == "structured":
                    assert str(count) in f.note, (name, f.method, count)
            assert f.seq_len is not None


def test_wanda_table_as_read():
    """The Wanda README's LLaMA-2 table, llama2-7b column (seq 4096)."""
    figs = {(f.kind, f.method, f.pattern): f for f in llm_accuracy()["llama2_7b"].figures}
    assert figs[("dense", "dense", "")].perplexity == 5.12
    assert figs[("unstructured", "SparseGPT", "")].perplexity == 6.51
    assert figs[("unstructured", "Wanda", "")].perplexity == 6.42
    assert figs[("nm", "SparseGPT", "2:4")].perplexity == 10.17
    assert figs[("nm", "Wanda", "2:4")].perplexity == 11.02
    assert {f.seq_len for f in figs.values() if f.known} == {4096}


@pytest.mark.parametrize(
    "edit, needle",
    [
        (lambda d: d["models"]["llama2_7b"]["figures"][1].update(perplexity=-1), "perplexity"),
        (lambda d: d["models"]["llama2_7b"]["figures"][1].update(source=""), "source"),
        (lambda d: d["models"]["llama2_7b"]["figures"][1].update(url=""), "url"),
        (lambda d: d["models"]["llama2_7b"]["figures"][1].update(seq_len=None), "seq_len"),
        (lambda d: d["models"]["llama2_7b"]["figures"][1].update(kind="pruned"), "kind"),
        (lambda d: d["models"]["llama2_7b"]["figures"][1].update(sparsity=1.5), "sparsity"),
        (lambda d: d["models"]["llama2_7b"]["figures"][1].update(colour="red"), "colour"),
        (lambda d: d["models"]["llama2_7b"]["figures"][1].pop("note"), "note: missing"),
        (lambda d: d["models"]["llama2_7b"]["figures"][3].update(pattern="4-8"), "pattern"),
        (lambda d: d["models"]["llama3_8b"]["figures"][1].update(params_pruned=9e9), "params"),
        (lambda d: d["models"]["llama3_8b"]["figures"][1].update(removes=" "), "removes"),
        (lambda d: d["models"]["llama3_8b"]["figures"][1].update(params_dense=True), "params"),
        (lambda d: d["models"]["llama3_8b"].pop("metric"), "llama3_8b"),
    ],
)
def test_bad_entries_are_refused_naming_the_key(edit, needle):
    data = copy.deepcopy(_raw())
    edit(data)
    with pytest.raises(ConfigError) as err:
        parse_accuracy(data, "acc.yaml")
    text = str(err.value)
    assert "acc.yaml" in text and needle in text
    assert "models." in text


def test_every_problem_is_listed_at_once():
    data = copy.deepcopy(_raw())
    data["models"]["llama2_7b"]["figures"][1]["url"] = ""
    data["models"]["llama3_8b"]["figures"][0]["seq_len"] = 0
    with pytest.raises(ConfigError) as err:
        parse_accuracy(data, "acc.yaml")
    text = str(err.value)
    assert "models.llama2_7b.figures[1].url" in text
    assert "models.llama3_8b.figures[0].seq_len" in text


def test_equal_accuracy_of_the_default_models_as_published():
    """Llama-2-7B: no structured figure was read; Llama-3-8B: no unstructured 50 %
    figure was read. Neither is compared, and each says why."""
    acc = llm_accuracy()
    e2 = equal_accuracy(acc["llama2_7b"], 2.0, 6476005376)
    assert e2.status == "unknown structured rate" and not e2.known
    e3 = equal_accuracy(acc["llama3_8b"], 2.0, 6979321856)
    assert e3.status == "unknown non-structured accuracy" and not e3.known


def test_structured_rate_from_stated_counts_by_hand():
    """With an unstructured 50 % figure added at LLM-Pruner's sequence length, the
    Llama-3-8B match is LLM-Pruner's; its rate over the decoder blocks is the stated
    counts less embeddings, LM head and norms (2 V H + (2 L + 1) H), which the study
    leaves out."""
    m = llm_accuracy()["llama3_8b"]
    outside = 2 * V3 * H3 + (2 * L3 + 1) * H3
    blocks = LLAMA3_BEFORE - outside
    work = build_workload("llama3_8b", "decode", 1, LLMStudyConfig())
    assert work.network.weight_count * work.scale == blocks  # the study's weights
    sp = m.figures[1]
    for ppl, status in ((13.0, "matched"), (9.0, "structured less accurate")):
        u = dataclasses.replace(
            sp, kind="unstructured", method="x", sparsity=0.5, perplexity=ppl, params_dense=None
        )
        e = equal_accuracy(dataclasses.replace(m, figures=(*m.figures, u)), 2.0, blocks)
        assert e.status == status
        assert e.structured_rate == pytest.approx(blocks / (LLAMA3_AFTER - outside))
        assert e.structured_rate == pytest.approx(1.2549, abs=1e-4)
        assert e.published_rate == pytest.approx(1 / 0.823458, rel=1e-6)  # "82.3458%"
        assert e.perplexity_gap == pytest.approx(12.86 - ppl)
        assert e.source == "llmpruner2023" and e.seq_len == 2048
    # a figure at another sequence length is not compared
    u = dataclasses.replace(
        sp, kind="unstructured", sparsity=0.5, perplexity=13.0, seq_len=4096, params_dense=None
    )
    e = equal_accuracy(dataclasses.replace(m, figures=(*m.figures, u)), 2.0, blocks)
    assert e.status == "unknown structured rate at the same sequence length"
    assert equal_accuracy(None, 2.0, blocks).status.startswith("unknown accuracy")


# --- the study's equal-accuracy columns, recomputed ------------------------------------


def _tiny(tmp_path):
    """hidden 64, 4 heads of 16, 2 KV heads, MLP 128, 2 blocks, vocabulary 256."""
    cfg = {
        "model_type": "llama",
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 16,
        "num_hidden_layers": 2,
        "vocab_size": 256,
        "max_position_embeddings": 4096,
    }
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(cfg))
    return str(path)


def _figure(**kw):
    base = dict(
        kind="unstructured",
        method="m",
        sparsity=None,
        pattern="",
        removes="",
        params_dense=None,
        params_pruned=None,
        perplexity=None,
        seq_len=2048,
        source="s",
        citation="c",
        url="https://example.org",
        note="n",
    )
    return {**base, **kw}


def test_equal_accuracy_columns_of_a_tiny_study_against_estimate(tmp_path):
    """Tiny model: blocks hold 2 x (64*64*2 + 64*32*2 + 3*64*128) = 73728 weights;
    embeddings, LM head and norms 2*256*64 + 5*64 = 33088. A structured figure
    removing 18432 parameters is rate 73728 / 55296 = 4/3 over the blocks; its
    perplexity 7.5 against the better unstructured 50 % figure 7.6 is a match.
    Non-structured at 2x (estimate_network) over head/channel pruning at 4/3."""
    model = _tiny(tmp_path)
    stated = 73728 + 33088
    doc = {
        "models": {
            "tiny": {
                "metric": "WikiText-2 perplexity",
                "note": "made up for the test",
                "figures": [
                    _figure(sparsity=0.5, perplexity=7.6),
                    _figure(sparsity=0.5, perplexity=7.9, method="other"),
                    _figure(
                        kind="structured",
                        removes="heads and channels",
                        params_dense=stated,
                        params_pruned=stated - 18432,
                        perplexity=7.5,
                        source="tinypaper",
                    ),
                    _figure(
                        kind="structured",
                        removes="heads and channels",
                        params_dense=stated,
                        params_pruned=stated - 36864,
                        perplexity=9.0,
                    ),
                ],
            }
        }
    }
    acc = parse_accuracy(doc, "test")
    cfg = LLMStudyConfig(
        models=(model,), phases=("decode",), batches=(8,), weight_bits=(8,), blocks=0, context=64
    )
    work = build_workload(model, "decode", 8, cfg)
    platforms = [load_platform(n) for n in ("a100", "xeon_8380")]
    tables = study_workload(work, platforms, cfg, accuracy=acc)
    v = tables["structured_vs_nonstructured"]
    assert len(v) == 2
    net = load_network(model, phase=Phase(kind="decode", batch=8, context=64, lm_head=False))
    assert net.weight_count == 73728
    settings = cfg.settings(8)
    est = estimate_network(net, platforms, Pruning(density=0.5), settings).totals()
    est = est.set_index(["platform", "variant"])
    s = prune_heads_channels(net, 3 / 4)
    for p in platforms:
        row = v[v["platform"] == p.name].iloc[0]
        assert row["equal_accuracy"] == "compared"
        assert row["structured_rate_no_loss"] == pytest.approx(4 / 3)
        assert row["structured_rate_published"] == pytest.approx(stated / (stated - 18432))
        assert row["structured_no_loss_source"] == "tinypaper"
        assert row["accuracy_metric"] == "WikiText-2 perplexity (seq 2048)"
        assert row["nonstructured_perplexity"] == 7.6
        assert row["structured_perplexity"] == 7.5
        assert row["perplexity_gap"] == pytest.approx(-0.1)
        st = simulate_network(s.network, p, {"structured": s.profiles}, settings)
        st_lat = sum(r.cost.latency_s for r in st.layers)
        st_en = sum(r.cost.energy_j for r in st.layers)
        assert row["latency_vs_structured_equal_accuracy"] == pytest.approx(
            est.loc[(p.name, "sparse"), "latency_s"] / st_lat
        )
        assert row["energy_vs_structured_equal_accuracy"] == pytest.approx(
            est.loc[(p.name, "sparse"), "energy_j"] / st_en
        )
        kept = sum(pr.nnz for pr in s.profiles.values())
        assert row["structured_effective_rate_equal_accuracy"] == pytest.approx(73728 / kept)
    verdict = tables["verdict"]
    assert verdict["beats_structured_at_equal_accuracy_latency"].notna().all()
    # the default data: tiny is not in it, so nothing is compared
    plain = study_workload(work, platforms, cfg)["structured_vs_nonstructured"]
    assert set(plain["equal_accuracy"]) == {"unknown accuracy (model not in the accuracy file)"}
    assert plain["latency_vs_structured_equal_accuracy"].isna().all()
    assert not math.isnan(plain["latency_vs_structured_same_rate"].iloc[0])


def test_accuracy_sentences_quote_the_file_and_the_verdict_status():
    """The report's sentence per model carries the file's figures at the verdict's
    sparsity and N:M pattern, with the source, and the verdict's equal-accuracy
    status; a model the file lacks says so."""
    import pandas as pd

    from simulator.study.llm_accuracy import llm_accuracy
    from simulator.study.llmreport import accuracy_sentences

    v = pd.DataFrame(
        {
            "network": ["llama2_7b decode b1", "llama2_7b prefill b1", "mystery decode b1"],
            "nonstructured_rate": [2.0, 2.0, 2.0],
            "equal_accuracy": ["unknown structured rate"] * 2 + ["unknown accuracy"],
        }
    )
    got = accuracy_sentences(v, (2, 4))
    assert len(got) == 2
    figs = llm_accuracy()["llama2_7b"].figures
    dense = next(f for f in figs if f.kind == "dense")
    wanda = next(f for f in figs if f.kind == "unstructured" and f.method == "Wanda")
    marlin = next(f for f in figs if f.kind == "nm" and f.pattern == "2:4")
    for f in (dense, wanda, marlin):
        assert f"{f.perplexity:g}" in got[0]
    assert f"at {dense.seq_len} tokens" in got[0] and dense.url in got[0]
    assert got[0].endswith("not compared at equal accuracy: unknown structured rate.")
    assert got[1].startswith("mystery: no published accuracy")
