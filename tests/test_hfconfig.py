"""Hugging Face config.json files into networks: published parameter counts of the
built-in configs (each counted here by hand from the config's sizes), every family's
layer shapes on small synthetic configs, prefill and decode shapes, validation
errors, and the command line."""

from __future__ import annotations

import json

import pytest

from simulator.cli import main
from simulator.errors import ConfigError
from simulator.hfconfig import Phase, hf_config_from_dict
from simulator.layers import Linear
from simulator.workloads import builtin_configs, builtin_models, load_network

# --- built-in configs against published parameter counts ---------------------------------


def llama_params(*, v, h, i, n, heads, kv, tied=False):
    """Llama/Mistral by hand: embeddings, per layer q, k, v, o (k and v sized by the KV
    heads), gate, up, down and two RMS norm weights, final norm, untied head."""
    d = h // heads
    attn = h * h + 2 * h * (kv * d) + h * h
    mlp = 3 * h * i
    return v * h + n * (attn + mlp + 2 * h) + h + (0 if tied else v * h)


PUBLISHED = {
    # model card / sum(p.numel() for p in model.parameters()) of ...ForCausalLM
    "llama2_7b": 6_738_415_616,
    "llama3_8b": 8_030_261_248,
    "llama2_70b": 68_976_648_192,
    "opt_6_7b": 6_658_473_984,
    "mistral_7b": 7_241_732_096,
}


def test_builtin_configs_listed():
    assert set(builtin_configs()) == set(PUBLISHED)
    assert not set(builtin_configs()) & set(builtin_models())  # never run by default


def test_published_counts_by_hand():
    by_hand = {
        "llama2_7b": llama_params(v=32000, h=4096, i=11008, n=32, heads=32, kv=32),
        "llama3_8b": llama_params(v=128256, h=4096, i=14336, n=32, heads=32, kv=8),
        "llama2_70b": llama_params(v=32000, h=8192, i=28672, n=80, heads=64, kv=8),
        "mistral_7b": llama_params(v=32000, h=4096, i=14336, n=32, heads=32, kv=8),
        # OPT: token and position embeddings (2,048 + 2 offset positions), per layer
        # q, k, v, out with biases, fc1 and fc2 with biases, two layer norms (weight
        # and bias), final layer norm; head tied to the token embedding
        "opt_6_7b": 50272 * 4096
        + 2050 * 4096
        + 32 * (4 * (4096 * 4096 + 4096) + 2 * 4096 * 16384 + 16384 + 4096 + 2 * 2 * 4096)
        + 2 * 4096,
    }
    assert by_hand == PUBLISHED


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_builtin_config_param_count(name):
    net = load_network(name)
    assert net.param_count == PUBLISHED[name]
    assert net.name == name and net.source
    names = [layer.name for layer in net.layers]
    assert len(set(names)) == len(names)


def test_llama2_7b_layers():
    net = load_network("llama2_7b")
    # 32 x (q, k, v, scores, context, o, gate, up, down) + untied lm_head
    assert len(net.layers) == 32 * 9 + 1
    assert net.layer("model.layers.0.self_attn.k_proj").weight_shape == (4096, 4096)
    assert net.layer("model.layers.31.mlp.down_proj").weight_shape == (4096, 11008)
    assert net.layer("lm_head").weight_shape == (32000, 4096)
    # the layers hold every matrix but the token embedding; the rest is norms
    assert net.other_param_count == 32000 * 4096 + 32 * 2 * 4096 + 4096


def test_llama3_8b_grouped_query_attention():
    net = load_network("llama3_8b", phase=Phase(kind="decode", batch=4, context=1000))
    k = net.layer("model.layers.0.self_attn.k_proj")
    assert k.weight_shape == (8 * 128, 4096) and k.tokens == 4
    scores = net.layer("model.layers.0.self_attn.scores")
    # one product per KV head, the 4 query heads sharing it folded into the rows
    assert (scores.heads, scores.batch, scores.m, scores.k, scores.n) == (8, 4, 4, 128, 1000)
    assert scores.macs == 4 * 32 * 128 * 1000  # every query head against 1,000 keys
    # the cache operand: batch x KV heads x head_dim x context, K and V alike
    ctx = net.layer("model.layers.0.self_attn.context")
    assert (ctx.m, ctx.k, ctx.n) == (4, 1000, 128)
    cache = 4 * 8 * 128 * 1000
    assert scores.input_count == 4 * 8 * (4 * 128) + cache  # queries + K cache
    assert ctx.input_count == 4 * 8 * (4 * 1000) + cache  # probabilities + V cache


def test_mistral_decode_reads_the_sliding_window():
    net = load_network("mistral_7b", phase=Phase(kind="decode", context=8192))
    assert net.layer("model.layers.3.self_attn.scores").n == 4096
    net = load_network("mistral_7b", phase=Phase(kind="decode", context=100))
    assert net.layer("model.layers.3.self_attn.scores").n == 100


# --- every family from a small synthetic config ---------------------------------------


def write(tmp_path, data, name="config.json"):
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


LLAMA = {
    "model_type": "llama",
    "hidden_size": 64,
    "intermediate_size": 176,
    "num_attention_heads": 8,
    "num_key_value_heads": 2,
    "num_hidden_layers": 2,
    "vocab_size": 1000,
    "max_position_embeddings": 256,
    "tie_word_embeddings": False,
    "rope_theta": 10000.0,  # keys prunesim does not use are ignored
}


def shapes(net):
    return {
        layer.name: layer.weight_shape if isinstance(layer, Linear) else (layer.heads, layer.m)
        for layer in net.layers
    }


def test_llama_family_shapes(tmp_path):
    net = load_network(write(tmp_path, LLAMA), phase=Phase(seq_len=16, batch=2))
    assert net.name == tmp_path.name  # a config.json takes its folder's name
    s = shapes(net)
    assert s["model.layers.1.self_attn.q_proj"] == (64, 64)
    assert s["model.layers.1.self_attn.k_proj"] == (16, 64)  # 2 KV heads x 8
    assert s["model.layers.1.self_attn.v_proj"] == (16, 64)
    assert s["model.layers.1.self_attn.o_proj"] == (64, 64)
    assert s["model.layers.1.mlp.gate_proj"] == (176, 64)
    assert s["model.layers.1.mlp.up_proj"] == (176, 64)
    assert s["model.layers.1.mlp.down_proj"] == (64, 176)
    assert s["lm_head"] == (1000, 64)
    assert s["model.layers.0.self_attn.scores"] == (2, 4 * 16)
    assert all(layer.tokens == 32 for layer in net.layers if isinstance(layer, Linear))
    layers = 64 * 64 * 2 + 2 * 16 * 64 + 3 * 64 * 176
    assert net.weight_count == 2 * layers + 1000 * 64
    assert net.param_count == net.weight_count + 1000 * 64 + 2 * 2 * 64 + 64
    # a folder holding config.json is read the same
    assert load_network(tmp_path, phase=Phase(seq_len=16, batch=2)) == net


def test_qwen2_has_qkv_biases(tmp_path):
    cfg = {**LLAMA, "model_type": "qwen2", "tie_word_embeddings": True}
    net = load_network(write(tmp_path, cfg, "q.json"))
    assert net.name == "q"
    assert "lm_head" not in {layer.name for layer in net.layers}  # tied: not a layer
    layers = 64 * 64 * 2 + 2 * 16 * 64 + 3 * 64 * 176
    assert net.weight_count == 2 * layers
    biases = 64 + 16 + 16
    assert net.param_count == 1000 * 64 + 2 * (layers + biases + 2 * 64) + 64
    with_head = load_network(write(tmp_path, cfg, "q.json"), phase=Phase(lm_head=True))
    assert with_head.layer("lm_head").weight_shape == (1000, 64)
    assert with_head.param_count == net.param_count  # the shared matrix counted once


def test_opt_family(tmp_path):
    cfg = {
        "model_type": "opt",
        "hidden_size": 32,
        "ffn_dim": 128,
        "num_attention_heads": 4,
        "num_hidden_layers": 3,
        "vocab_size": 500,
        "max_position_embeddings": 64,
    }
    net = load_network(write(tmp_path, cfg, "opt.json"), phase=Phase(seq_len=8))
    s = shapes(net)
    assert s["model.decoder.layers.2.self_attn.out_proj"] == (32, 32)
    assert s["model.decoder.layers.2.self_attn.k_proj"] == (32, 32)
    assert s["model.decoder.layers.2.fc1"] == (128, 32)
    assert s["model.decoder.layers.2.fc2"] == (32, 128)
    assert s["model.decoder.layers.2.self_attn.scores"] == (4, 8)
    assert "lm_head" not in s  # OPT ties its head by default
    block = 4 * (32 * 32 + 32) + 2 * 32 * 128 + 128 + 32 + 2 * 2 * 32
    assert net.param_count == 500 * 32 + 66 * 32 + 3 * block + 2 * 32


def test_gpt2_family(tmp_path):
    cfg = {
        "model_type": "gpt2",
        "n_embd": 48,
        "n_layer": 2,
        "n_head": 4,
        "n_inner": None,  # 4 x n_embd
        "vocab_size": 300,
        "n_positions": 32,
    }
    net = load_network(write(tmp_path, cfg, "gpt2.json"), phase=Phase(seq_len=10, batch=3))
    s = shapes(net)
    assert s["transformer.h.1.attn.c_attn"] == (144, 48)  # fused q, k, v
    assert s["transformer.h.1.attn.c_proj"] == (48, 48)
    assert s["transformer.h.1.mlp.c_fc"] == (192, 48)
    assert s["transformer.h.1.mlp.c_proj"] == (48, 192)
    sc = net.layer("transformer.h.0.attn.scores")
    assert (sc.heads, sc.batch, sc.m, sc.k, sc.n) == (4, 3, 10, 12, 10)
    block = 2 * 48 + 48 * 144 + 144 + 48 * 48 + 48 + 2 * 48 + 48 * 192 + 192 + 192 * 48 + 48
    assert net.param_count == 300 * 48 + 32 * 48 + 2 * block + 2 * 48


def test_bert_family_is_an_encoder(tmp_path):
    cfg = {
        "model_type": "bert",
        "hidden_size": 768,
        "intermediate_size": 3072,
        "num_attention_heads": 12,
        "num_hidden_layers": 12,
        "vocab_size": 30522,
        "max_position_embeddings": 512,
        "type_vocab_size": 2,
    }
    path = write(tmp_path, cfg, "bert.json")
    net = load_network(path)
    yaml_net = load_network("bert_base")  # the model file: the same layers and shapes
    assert [(x.name, x.weight_shape, x.macs) for x in net.layers] == [
        (x.name, x.weight_shape, x.macs) for x in yaml_net.layers
    ]
    assert net.param_count == 109_482_240  # bert-base-uncased BertModel, pooler included
    with pytest.raises(ConfigError, match="encoder: expected phase prefill"):
        load_network(path, phase=Phase(kind="decode"))


# --- phases -----------------------------------------------------------------------------


def test_prefill_and_decode_shapes(tmp_path):
    path = write(tmp_path, LLAMA)
    pre = load_network(path, phase=Phase(kind="prefill", seq_len=100, batch=2))
    dec = load_network(path, phase=Phase(kind="decode", batch=2, context=100))
    q_pre, q_dec = (n.layer("model.layers.0.self_attn.q_proj") for n in (pre, dec))
    assert (q_pre.tokens, q_dec.tokens) == (200, 2)
    s_pre, s_dec = (n.layer("model.layers.0.self_attn.scores") for n in (pre, dec))
    assert (s_pre.m, s_pre.n, s_dec.m, s_dec.n) == (4 * 100, 100, 4, 100)
    # the weights and parameters do not depend on the phase
    assert pre.weight_count == dec.weight_count and pre.param_count == dec.param_count
    assert "decode of 1 token x batch 2 at context 100" in dec.description


def test_lm_head_can_be_left_out(tmp_path):
    path = write(tmp_path, LLAMA)
    full = load_network(path)
    bare = load_network(path, phase=Phase(lm_head=False))
    assert "lm_head" not in {layer.name for layer in bare.layers}
    assert bare.param_count == full.param_count  # its parameters still counted


def test_phase_beyond_the_positions(tmp_path):
    path = write(tmp_path, LLAMA)
    with pytest.raises(ConfigError, match=r"config\.json: seq_len=257 is more than .* 256"):
        load_network(path, phase=Phase(seq_len=257))
    with pytest.raises(ConfigError, match="context=300"):
        load_network(path, phase=Phase(kind="decode", context=300))
    load_network(path, phase=Phase(kind="decode", context=256, seq_len=999))  # unused


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "generate"}, "expected one of prefill, decode"),
        ({"batch": 0}, r"batch=0: expected an integer in \[1, 2\*\*31\]"),
        ({"seq_len": True}, "seq_len=True"),
        ({"lm_head": "yes"}, "lm_head"),
    ],
)
def test_phase_validation(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        Phase(**kwargs)


def test_phase_on_a_model_file_is_refused():
    with pytest.raises(ConfigError, match="applies to Hugging Face configs only"):
        load_network("resnet50", phase=Phase())


# --- validation -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "messages"),
    [
        ({"model_type": "mamba"}, ["model_type: expected one of bert, gpt2, llama"]),
        ({"model_type": None}, ["no model_type"]),
        (
            {"hidden_size": "64", "num_hidden_layers": 0, "tie_word_embeddings": "no"},
            [
                "hidden_size: expected a positive integer up to 2**31, got 64",
                "num_hidden_layers: expected a positive integer",
                "tie_word_embeddings: expected true or false",
            ],
        ),
        ({"vocab_size": 1.5}, ["vocab_size: expected a positive integer"]),
        ({"num_key_value_heads": 3}, ["num_key_value_heads: 3 does not divide"]),
        ({"num_attention_heads": 7}, ["num_attention_heads: 7 does not divide hidden_size"]),
    ],
)
def test_validation_names_file_and_key(tmp_path, change, messages):
    cfg = {**LLAMA, **change}
    path = write(tmp_path, cfg, "bad.json")
    with pytest.raises(ConfigError) as e:
        load_network(path)
    assert str(e.value).startswith(str(path))
    for m in messages:
        assert m in str(e.value)


def test_missing_keys_all_reported(tmp_path):
    cfg = {k: v for k, v in LLAMA.items() if k not in ("hidden_size", "vocab_size")}
    with pytest.raises(ConfigError) as e:
        load_network(write(tmp_path, cfg, "bad.json"))
    assert e.value.problems == [
        "hidden_size: missing (required for model_type llama)",
        "vocab_size: missing (required for model_type llama)",
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "not valid JSON"),
        ("[1, 2]", r"expected a JSON object \(a config\.json\), got a list"),
        ('{"model_type": "llama", "hidden_size": NaN}', "NaN is not a number allowed"),
        ('{"model_type": "llama", "vocab_size": 1e400}', "finite"),
    ],
)
def test_unreadable_configs(tmp_path, text, message):
    path = tmp_path / "x.json"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_network(path)


def test_opt_projection_dim_refused():
    cfg = {
        "model_type": "opt",
        "hidden_size": 1024,
        "ffn_dim": 4096,
        "num_attention_heads": 16,
        "num_hidden_layers": 24,
        "vocab_size": 50272,
        "max_position_embeddings": 2048,
        "word_embed_proj_dim": 512,
    }
    with pytest.raises(ConfigError, match="word_embed_proj_dim: 512 differs"):
        hf_config_from_dict(cfg, "opt-350m")


def test_missing_file_and_empty_folder(tmp_path):
    with pytest.raises(ConfigError, match="cannot read file"):
        load_network(tmp_path / "nothing.json")


# --- command line -----------------------------------------------------------------------


def test_models_lists_the_configs(capsys):
    assert main(["models"]) == 0
    rows = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines()}
    for name, params in PUBLISHED.items():
        assert rows[name][6] == f"{params:,}"


def test_storage_of_a_config_in_decode(tmp_path, capsys):
    path = write(tmp_path, LLAMA)
    argv = ["storage", str(path), "--phase", "decode", "--batch", "4", "--context", "64"]
    assert main([*argv, "--rate", "2", "--totals"]) == 0
    assert "csr-rel" in capsys.readouterr().out


def test_estimate_of_a_config_in_decode(tmp_path, capsys):
    path = write(tmp_path, {**LLAMA, "num_hidden_layers": 1})
    argv = ["estimate", str(path), "--phase", "decode", "--context", "64", "--totals"]
    assert main([*argv, "--platform", "a100"]) == 0
    assert "a100" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["llama2_7b", "--phase", "decode", "--seq-len", "8"], "--seq-len: applies to"),
        (["llama2_7b", "--context", "8"], "--context: applies to --phase decode"),
        (["llama2_7b", "--seq-len", "9999"], "seq_len=9999 is more than"),
        (["resnet50", "--batch", "4"], "applies to Hugging Face configs only"),
        (["--phase", "decode"], "name the model it applies to"),
        (["llama2_7b", "--batch", "0"], "--batch: must be in"),
        (["llama2_7b", "--phase", "train"], "--phase: invalid choice"),
    ],
)
def test_bad_phase_options_exit_2(argv, message, capsys):
    with pytest.raises(SystemExit) as e:
        code = main(["storage", *argv])
        raise SystemExit(code)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_builtin_config_by_a_loose_name():
    net = load_network("Llama-2-7B", phase=Phase(kind="decode", batch=2))
    assert net.name == "llama2_7b"
    assert net.layer("lm_head").tokens == 2
    with pytest.raises(ConfigError, match="did you mean llama2_7b"):
        load_network("llama2_7")
