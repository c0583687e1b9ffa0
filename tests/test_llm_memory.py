"""Estimates in bounded memory: layer-by-layer profiles give the results of profiles
held all at once, and a model whose masks would not fit together runs under a memory
cap that holds its largest layer, while a layer too large for the cap is refused in
one line."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from simulator.hfconfig import Phase
from simulator.hwconfig import load_platform
from simulator.masks import Pruning
from simulator.simulate import (
    estimate_network,
    estimate_variants,
    prepare_profiles,
    simulate_network,
)
from simulator.workloads import load_network
from tests.hostile.run import GIB, run_cli

TINY = "tests/fixtures/tiny_llama"
PLATFORMS = ("a100", "xeon_8380", "eie", "zcu102", "scnn", "scalesim_32x32_ws")


@pytest.mark.parametrize(
    ("model", "phase"),
    [
        (TINY, Phase(kind="decode", batch=2, context=64)),
        (TINY, Phase(kind="prefill", seq_len=16)),
        ("resnet18", None),
    ],
)
def test_streamed_estimate_equals_profiles_held_at_once(model, phase):
    """estimate_network makes each layer's masks when it reaches the layer and drops
    them after; the twin profiles every variant of the network first
    (prepare_profiles) and simulates each platform on the held profiles."""
    net = load_network(model, phase=phase) if phase else load_network(model)
    platforms = [load_platform(n) for n in PLATFORMS]
    pruning = Pruning(density=0.3, seed=3)
    got = estimate_network(net, platforms, pruning)
    frames = []
    for p in platforms:
        variants = {v: s for v, s in estimate_variants(p, pruning, "filter").items()}
        profiles = prepare_profiles(net, variants)
        frames.append(simulate_network(net, p, profiles).frame())
    want = pd.concat(frames, ignore_index=True)
    pd.testing.assert_frame_equal(got.frame(), want)
    for p in platforms:
        profiles = prepare_profiles(net, estimate_variants(p, pruning, "filter"))
        for variant, profs in profiles.items():
            kept = sum(q.nnz for q in profs.values())
            total = sum(q.weights for q in profs.values())
            assert got.effective_rates[p.name][variant] == total / kept


def _config(tmp_path, **shape) -> str:
    cfg = {
        "model_type": "llama",
        "hidden_size": 2048,
        "intermediate_size": 8192,
        "num_attention_heads": 16,
        "num_key_value_heads": 16,
        "num_hidden_layers": 8,
        "vocab_size": 32000,
        "max_position_embeddings": 4096,
        "tie_word_embeddings": False,
        **shape,
    }
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    return str(tmp_path)


@pytest.fixture
def _real_streams(capsys):
    with capsys.disabled():
        yield


@pytest.mark.slow
@pytest.mark.usefixtures("_real_streams")
def test_a_model_larger_than_the_cap_runs_layer_by_layer(tmp_path):
    """600 M weights (8 blocks of 67 M and a 65.5 M-weight LM head) under an
    address-space cap of 0.6 GiB above the process's own: the N:M masks alone, held
    for the whole network at a byte per weight, would need 0.6 GB; one layer's masks
    need a fraction of it."""
    model = _config(tmp_path)
    out = run_cli(
        ["estimate", model, "--platform", "a100", "--phase", "decode", "--rate", "2", "--totals"],
        timeout_s=600,
        hard_cap_bytes=int(0.6 * GIB),
    )
    assert out.rc == 0, out.stderr[-2000:]
    assert "nm" in out.stdout and "sparse" in out.stdout
    weights = 8 * (4 * 2048 * 2048 + 3 * 2048 * 8192) + 32000 * 2048
    assert weights > 0.6e9


@pytest.mark.usefixtures("_real_streams")
@pytest.mark.parametrize("command", ["estimate", "storage"])
def test_a_layer_larger_than_the_cap_is_refused_in_one_line(tmp_path, command):
    """A 40 G-weight projection (hidden size 200,000) under a 2 GiB address-space cap,
    no --max-memory: the limit follows the cap, and the refusal is one line, exit 2."""
    model = _config(tmp_path, hidden_size=200_000, intermediate_size=400_000, num_hidden_layers=1)
    argv = [command, model, "--rate", "2"] + (
        ["--platform", "a100"] if command == "estimate" else []
    )
    out = run_cli(argv, timeout_s=120, hard_cap_bytes=2 * GIB)
    assert out.clean_refusal, (out.rc, out.stderr[-2000:])
    assert "memory" in out.stderr
    assert np.isfinite(out.seconds)
