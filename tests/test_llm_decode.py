"""Dense LLM decode on the roofline against hand arithmetic and published A100
measurements (simulator.validate.checks.llm_decode_tokens_per_s)."""

from __future__ import annotations

import pytest

from simulator.validate import references
from simulator.validate.checks import (
    dense_decode_step,
    llm_decode_tokens_per_s,
    with_dram_bandwidth,
)

# Llama-2-7B (Hugging Face config): 6,738,415,616 parameters, of which the token
# embedding (32,000 x 4,096) and the 65 RMSNorm weight vectors (4,096 each) are not
# layers; the LM head is a layer. 32 decoder layers x (4 attention projections +
# 3 MLP matrices + 2 attention products) + the LM head = 289 layers.
LLAMA2_7B_PARAMS = 6_738_415_616
LAYER_WEIGHTS = LLAMA2_7B_PARAMS - 32_000 * 4_096 - 65 * 4_096
# K and V read once per step: 32 layers x 2 x context x 4,096 x 2 bytes
CONTEXT = 205


def _hand_seconds(bandwidth: float) -> float:
    weight_bytes = LAYER_WEIGHTS * 2 + 32 * 2 * CONTEXT * 4_096 * 2
    gemv = 0.849  # a100.yaml dense_gemv_efficiency (EIE Table IV, Titan X)
    overhead = 289 * 8_090e-9  # a100.yaml layer_overhead_ns x layers
    return weight_bytes / (bandwidth * gemv) + overhead


@pytest.fixture(scope="module")
def tables():
    return references()["tables"]


def test_decode_step_equals_hand_arithmetic_on_the_80gb_card(tables):
    bw = tables["a100_80gb"]["sxm_bytes_per_s"]
    assert bw == 2.039e12  # datasheet, SXM4 80 GB
    p = with_dram_bandwidth("a100", "a100_80gb_sxm", bw)
    step = dense_decode_step("llama2_7b", p, batch=1, context=CONTEXT, bits=16)
    assert step.layers == 289
    assert step.overhead_s == pytest.approx(289 * 8_090e-9, rel=1e-9)
    # activations add well under 0.1 % to the weight and KV bytes
    assert step.latency_s == pytest.approx(_hand_seconds(bw), rel=2e-3)


def test_only_the_dram_bandwidth_changes_in_the_memory_variant():
    p = with_dram_bandwidth("a100", "a100_80gb_sxm", 2.039e12)
    base = with_dram_bandwidth("a100", "a100", 1555.0e9)
    assert p.level("dram").bandwidth_bytes_per_s == 2.039e12
    assert p.roofline == base.roofline and p.compute == base.compute


@pytest.mark.parametrize("source", ["gpt_fast", "torchao"])
def test_llama2_7b_decode_within_25_percent_of_published_a100_80gb(tables, source):
    pred = llm_decode_tokens_per_s(
        tables,
        network="llama2_7b",
        platform="a100",
        memory="a100_80gb.sxm_bytes_per_s",
        context=CONTEXT,
    ).predicted
    measured = {"gpt_fast": 104.9, "torchao": 107.38}[source]  # tokens/s, READMEs
    assert tables[source]["llama2_7b_bf16_tokens_per_s"] == measured
    assert abs(pred / measured - 1) <= 0.25
