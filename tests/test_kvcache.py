"""The KV cache at its own precision: which layers read and write it, what each
engine charges for it, and the per-layer counts, against hand counts."""

from __future__ import annotations

import dataclasses
import json

import pandas as pd
import pytest

from simulator.cli import main
from simulator.errors import ConfigError, LayerError
from simulator.hfconfig import Phase, build_network, hf_config_from_dict
from simulator.hwconfig import builtin_platforms, load_platform
from simulator.layers import Linear, MatMul
from simulator.settings import Settings
from simulator.simulate import simulate_layer
from simulator.workloads import load_network

TINY = "tests/fixtures/tiny_llama"
# tiny_llama: hidden 256, 8 heads, 2 KV heads, head_dim 256 / 8 = 32, 2 layers
KV_HEADS, HEAD_DIM, N_LAYERS = 2, 32, 2
BATCH, CONTEXT = 2, 64


def decode_layers(context: int = CONTEXT, batch: int = BATCH) -> dict:
    net = load_network(TINY, phase=Phase(kind="decode", batch=batch, context=context))
    return {layer.name: layer for layer in net.layers}


def block(layers: dict, i: int = 0) -> dict:
    a = f"model.layers.{i}.self_attn."
    return {k: layers[a + k] for k in ("q_proj", "k_proj", "v_proj", "scores", "context")}


def stripped(layer):
    """The same layer with no KV cache (as layers were before they knew one)."""
    if isinstance(layer, MatMul):
        return dataclasses.replace(layer, kv_operand=False)
    if isinstance(layer, Linear):
        return dataclasses.replace(layer, kv_out_features=0)
    return layer


# --- which layers touch the cache -------------------------------------------------------


@pytest.mark.parametrize("kind", ["prefill", "decode"])
def test_llama_projections_write_and_products_read_the_cache(kind):
    phase = Phase(kind=kind, batch=BATCH, context=CONTEXT, seq_len=16)
    layers = {x.name: x for x in load_network(TINY, phase=phase).layers}
    b = block(layers, 1)
    assert b["k_proj"].kv_out_features == b["v_proj"].kv_out_features == KV_HEADS * HEAD_DIM
    assert b["q_proj"].kv_out_features == 0
    assert b["scores"].kv_operand and b["context"].kv_operand
    others = [x for x in layers.values() if x.name.split(".")[-1] not in ("k_proj", "v_proj")]
    assert all(x.kv_output_count == 0 for x in others)
    readers = [x for x in layers.values() if x.kv_input_count]
    assert {x.name.split(".")[-1] for x in readers} == {"scores", "context"}


def test_cache_elements_by_hand():
    b = block(decode_layers())
    per_step = BATCH * KV_HEADS * HEAD_DIM * CONTEXT  # the K (or V) cache of one layer
    assert b["scores"].kv_input_count == per_step
    assert b["context"].kv_input_count == per_step
    assert b["k_proj"].kv_output_count == BATCH * KV_HEADS * HEAD_DIM  # one new token
    assert b["v_proj"].kv_output_count == BATCH * KV_HEADS * HEAD_DIM


def test_gpt2_fused_projection_writes_its_k_and_v_thirds():
    cfg = hf_config_from_dict(
        {"model_type": "gpt2", "n_embd": 64, "n_head": 4, "n_layer": 1, "vocab_size": 100,
         "n_positions": 128},
        "gpt2.json",
    )  # fmt: skip
    layers = {
        x.name: x for x in build_network(cfg, Phase(kind="decode", batch=3, context=100)).layers
    }
    qkv = layers["transformer.h.0.attn.c_attn"]
    assert (qkv.out_features, qkv.kv_out_features) == (3 * 64, 2 * 64)
    assert qkv.kv_output_count == 3 * 2 * 64
    assert layers["transformer.h.0.attn.scores"].kv_operand


def test_an_encoder_has_no_cache():
    cfg = hf_config_from_dict(
        {"model_type": "bert", "hidden_size": 64, "intermediate_size": 128,
         "num_attention_heads": 4, "num_hidden_layers": 1, "vocab_size": 100,
         "max_position_embeddings": 128},
        "bert.json",
    )  # fmt: skip
    layers = build_network(cfg).layers
    assert not any(x.kv_input_count or x.kv_output_count for x in layers)


def test_layer_flags_are_validated():
    with pytest.raises(LayerError, match="kv_out_features"):
        Linear(name="k", in_features=8, out_features=4, kv_out_features=5)
    with pytest.raises(LayerError, match="kv_out_features"):
        Linear(name="k", in_features=8, out_features=4, kv_out_features=True)
    with pytest.raises(LayerError, match="kv_operand"):
        MatMul(name="s", m=1, k=2, n=3, kv_operand=1)
    assert Linear(name="k", in_features=8, out_features=4).kv_out_features == 0
    assert MatMul(name="s", m=1, k=2, n=3).kv_operand is False


# --- settings and the command line ------------------------------------------------------


@pytest.mark.parametrize("bad", [0, 65, -4, 2.5, "4", True])
def test_kv_bits_validated(bad):
    with pytest.raises(ConfigError, match="kv_bits"):
        Settings(kv_bits=bad)


@pytest.mark.parametrize("value", ["0", "65", "four"])
def test_cli_kv_bits_bad_value_exits_2(capsys, value):
    try:
        code = main(["estimate", TINY, "--platform", "a100", "--kv-bits", value])
    except SystemExit as e:  # argparse's usage error
        code = e.code
    assert code == 2
    assert "--kv-bits" in capsys.readouterr().err


# --- counts and DRAM traffic against hand counts ----------------------------------------


def run(layer, platform, kv_bits, activation_bits=16):
    s = Settings(activation_bits=activation_bits, kv_bits=kv_bits)
    return simulate_layer(layer, platform, None, s)


@pytest.mark.parametrize("kv_bits", [4, 8, 16])
def test_kv_bits_counted_per_layer(kv_bits):
    a100 = load_platform("a100")
    b = block(decode_layers())
    cache = BATCH * KV_HEADS * HEAD_DIM * CONTEXT
    new = BATCH * KV_HEADS * HEAD_DIM
    got = {k: run(x, a100, kv_bits).record() for k, x in b.items()}
    assert got["scores"]["kv_read_bits"] == cache * kv_bits
    assert got["context"]["kv_read_bits"] == cache * kv_bits
    assert got["k_proj"]["kv_write_bits"] == new * kv_bits
    assert got["v_proj"]["kv_write_bits"] == new * kv_bits
    assert got["q_proj"]["kv_read_bits"] == got["q_proj"]["kv_write_bits"] == 0
    assert got["scores"]["kv_write_bits"] == got["k_proj"]["kv_read_bits"] == 0


def test_roofline_dram_traffic_moves_by_the_hand_computed_difference():
    """A roofline reads each input and writes each output once from DRAM: going from
    16-bit to 4-bit KV elements (16-bit activations) saves 12 bits per cache element
    read by the two products and per K and V element the projections write."""
    a100 = load_platform("a100")
    layers = list(decode_layers().values())
    dram = {kv: sum(run(x, a100, kv).dram_bits for x in layers) for kv in (4, 16)}
    cache = BATCH * KV_HEADS * HEAD_DIM * CONTEXT
    new = BATCH * KV_HEADS * HEAD_DIM
    by_hand = N_LAYERS * (2 * cache + 2 * new) * (16 - 4)
    assert dram[16] - dram[4] == by_hand
    b = block(decode_layers())
    assert run(b["scores"], a100, 16).dram_bits - run(b["scores"], a100, 4).dram_bits == (
        cache * 12
    )
    assert run(b["k_proj"], a100, 16).dram_bits - run(b["k_proj"], a100, 4).dram_bits == new * 12


def same_but_kv(a: dict, b: dict) -> bool:
    drop = ("kv_read_bits", "kv_write_bits")
    return {k: v for k, v in a.items() if k not in drop} == {
        k: v for k, v in b.items() if k not in drop
    }


@pytest.mark.parametrize("name", sorted(builtin_platforms()))
def test_unset_kv_bits_prices_as_before_on_every_platform(name):
    """kv_bits unset, or equal to the activation width, gives every number of a layer
    that knows no cache (the layers as built before the cache was modelled)."""
    platform = load_platform(name)
    ab = platform.activation_bits
    for layer in block(decode_layers(context=16)).values():
        before = run(stripped(layer), platform, None, activation_bits=None).record()
        unset = run(layer, platform, None, activation_bits=None).record()
        same = run(layer, platform, ab, activation_bits=None).record()
        assert same_but_kv(unset, before), (name, layer.name)
        assert same_but_kv(same, before), (name, layer.name)
        assert unset["kv_read_bits"] == layer.kv_input_count * ab
        assert unset["kv_write_bits"] == layer.kv_output_count * ab


@pytest.mark.parametrize("name", sorted(builtin_platforms()))
def test_narrower_cache_never_adds_dram_traffic(name):
    platform = load_platform(name)
    for layer in block(decode_layers(context=16)).values():
        wide = run(layer, platform, 16)
        narrow = run(layer, platform, 4)
        assert narrow.dram_bits <= wide.dram_bits, (name, layer.name)
        assert narrow.kv_read_bits * 4 == wide.kv_read_bits
        assert narrow.kv_write_bits * 4 == wide.kv_write_bits


def test_cli_json_and_csv_carry_kv_counts(tmp_path, capsys):
    out, csv = tmp_path / "e.json", tmp_path / "e.csv"
    argv = ["estimate", TINY, "--platform", "a100", "--phase", "decode", "--batch", "2",
            "--context", "64", "--kv-bits", "4", "--per-layer", "--json", str(out),
            "--csv", str(csv)]  # fmt: skip
    assert main(argv) == 0
    assert "KV-cache traffic per layer" in capsys.readouterr().out
    doc = json.loads(out.read_text())
    assert doc["settings"]["kv_bits"] == 4
    rows = {(r["layer"], r["variant"]): r for r in doc["layers"]}
    cache = BATCH * KV_HEADS * HEAD_DIM * CONTEXT
    assert rows[("model.layers.1.self_attn.context", "dense")]["kv_read_bits"] == cache * 4
    assert rows[("model.layers.1.self_attn.v_proj", "dense")]["kv_write_bits"] == 2 * 2 * 32 * 4
    dense = next(t for t in doc["totals"] if t["variant"] == "dense")
    assert dense["kv_read_bits"] == N_LAYERS * 2 * cache * 4
    assert dense["kv_write_bits"] == N_LAYERS * 2 * (BATCH * KV_HEADS * HEAD_DIM) * 4
    frame = pd.read_csv(csv)
    assert {"kv_read_bits", "kv_write_bits"} <= set(frame.columns)
