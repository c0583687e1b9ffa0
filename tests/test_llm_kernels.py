"""LLM kernel terms of the roofline against hand arithmetic and published figures:
group-wise quantization scales moved with the weights, N:M kernels chosen by the
widths they run, Sparse-Marlin (2:4, INT4, fp16 scales) on the A100."""

from __future__ import annotations

import numpy as np
import pytest

from simulator.cost import price
from simulator.dataflows import LayerTask, run_roofline
from simulator.errors import ConfigError
from simulator.formats import all_kept_profile, profile_mask
from simulator.hwconfig import load_platform, platform_from_dict
from simulator.layers import Linear
from simulator.masks import Pruning, generate_mask
from simulator.validate import references
from simulator.validate.checks import only_kernels
from simulator.validate.llm import (
    Quant,
    csr_kernel_speedup,
    llm_decode,
    network_pass,
    nm_kernel_speedup,
    nm_profile,
)

A100_BW = 1555.0e9  # a100.yaml, 40 GB card
GEMV = 0.849  # a100.yaml dense_gemv_efficiency


@pytest.fixture(scope="module")
def tables():
    return references()["tables"]


def _task(layer, variant, wb, ab, **kw):
    g = layer.gemm
    prof = (
        nm_profile(g.groups, g.rows, g.cols, 2, 4)
        if variant == "nm"
        else all_kept_profile(g.groups, g.rows, g.cols)
    )
    return LayerTask(
        layer=layer,
        profile=prof,
        variant=variant,
        weight_bits=wb,
        index_bits=4,
        activation_bits=ab,
        **kw,
    )


def test_group_scales_and_zero_points_stream_with_dense_weights_by_hand():
    p = only_kernels("a100", "cusparselt")  # no per-layer overhead
    layer = Linear(name="fc", in_features=4096, out_features=1024, tokens=1)
    task = _task(layer, "dense", 4, 16, group_size=128, scale_bits=16, zero_point_bits=16)
    counts = run_roofline(task, p)
    meta = sum(
        a.read_bits for a in counts.accesses if a.level == "hbm2" and a.operand == "metadata"
    )
    # 1,024 rows x 4,096 / 128 = 32 groups a row, a 16-bit scale and a 16-bit zero each
    assert meta == 1024 * 32 * 32
    bits = 1024 * 4096 * 4 + 1024 * 32 * 32 + 4096 * 16 + 1024 * 16
    cost = price(counts, p, 4, 16)
    assert cost.bound == "hbm2"
    assert cost.latency_s == pytest.approx(bits / 8 / (A100_BW * GEMV), rel=1e-9)
    # without groups nothing is added
    plain = run_roofline(_task(layer, "dense", 4, 16), p)
    assert sum(a.read_bits for a in plain.accesses if a.operand == "metadata") == 0


def test_bad_group_size_is_a_config_error():
    layer = Linear(name="fc", in_features=64, out_features=8, tokens=1)
    with pytest.raises(ConfigError, match="group size"):
        _task(layer, "dense", 4, 16, group_size=-2)


def test_nm_kernel_runs_only_the_widths_it_lists():
    p = load_platform("a100")
    layer = Linear(name="fc", in_features=4096, out_features=4096, tokens=1)
    # Sparse-Marlin is W4A16 only; cuSPARSELt lists no widths and runs every one
    assert run_roofline(_task(layer, "nm", 4, 16), p).engine == "sparse-marlin (2:4)"
    assert run_roofline(_task(layer, "nm", 16, 16), p).engine == "cusparselt (2:4)"
    assert run_roofline(_task(layer, "nm", 4, 8), p).engine == "cusparselt (2:4)"


def test_compute_as_dense_is_only_for_csr_kernels():
    raw = dict(load_platform("a100").raw)
    roof = dict(raw["roofline"])
    nm = next(k for k in roof["kernels"] if k["name"] == "cusparselt")
    roof["kernels"] = [{**nm, "dense_macs_per_s": {"fp16": 1e13}}]
    raw["roofline"] = roof
    with pytest.raises(ConfigError, match=r"kernels\[0\].*dense_macs_per_s: only for a csr kernel"):
        platform_from_dict(raw)


def _sparse_task(layer, density, bits):
    mask = generate_mask(layer, Pruning(density=density))
    task = LayerTask(
        layer=layer,
        profile=profile_mask(layer, mask),
        variant="sparse",
        weight_bits=bits,
        index_bits=4,
        activation_bits=bits,
    )
    return int(mask.sum()), task


def test_flash_llm_computes_as_dense_by_hand():
    # 2,048 x 1,024 at 16 columns, 20 % kept, fp16: kept MACs at 1.042e13 plus every
    # dense MAC at 3.474e13 (a100.yaml); its DRAM traffic (32 bits a kept weight, a
    # 32-bit offset per row and one more, the fp16 inputs and outputs) takes less
    p = only_kernels("a100", "flash-llm")
    layer = Linear(name="fc", in_features=1024, out_features=2048, tokens=16)
    nnz, task = _sparse_task(layer, 0.2, 16)
    counts = run_roofline(task, p)
    assert counts.engine == "flash-llm (CSR)"
    compute = nnz * 16 / 1.042e13 + 2048 * 1024 * 16 / 3.474e13
    memory = (nnz * 32 + 2049 * 32 + (1024 + 2048) * 16 * 16) / 8 / A100_BW
    cost = price(counts, p, 16, 16)
    assert compute > memory and cost.bound == "compute"
    assert cost.latency_s == pytest.approx(compute, rel=1e-9)


def test_a_csr_kernel_runs_only_the_widths_it_lists():
    p = only_kernels("a100", "sputnik", "flash-llm")
    layer = Linear(name="fc", in_features=1024, out_features=2048, tokens=16)
    _, fp16 = _sparse_task(layer, 0.2, 16)
    _, int8 = _sparse_task(layer, 0.2, 8)
    assert run_roofline(fp16, p).engine == "flash-llm (CSR)"
    assert run_roofline(int8, p).engine == "sputnik (CSR)"  # flash-llm is fp16 only


def test_sparse_marlin_gemv_is_its_bytes_by_hand():
    # one 8,192 x 8,192 layer at batch 1: dense fp16 streams 16 bits a weight, Sparse-
    # Marlin 4-bit values and 2-bit positions for half the weights and a 16-bit scale
    # per 128 dense weights; both at the GEMV fraction, plus the fp16 input and output
    p = only_kernels("a100", "sparse-marlin")
    layer = Linear(name="fc", in_features=8192, out_features=8192, tokens=1)
    w = 8192 * 8192
    io = 2 * 8192 * 16
    dense = price(run_roofline(_task(layer, "dense", 16, 16), p), p, 16, 16)
    nm = price(run_roofline(_task(layer, "nm", 4, 16, group_size=128), p), p, 4, 16)
    sparse_bits = w // 2 * (4 + 2) + w // 128 * 16 + io
    assert nm.latency_s == pytest.approx(sparse_bits / 8 / (A100_BW * GEMV), rel=1e-9)
    assert dense.latency_s / nm.latency_s == pytest.approx((w * 16 + io) / sparse_bits)


def test_sparse_marlin_is_its_speedup_once_compute_bound():
    p = only_kernels("a100", "sparse-marlin")
    layer = Linear(name="fc", in_features=8192, out_features=8192, tokens=4096)
    dense = price(run_roofline(_task(layer, "dense", 16, 16), p), p, 16, 16)
    nm = price(run_roofline(_task(layer, "nm", 4, 16, group_size=128), p), p, 4, 16)
    assert nm.bound == dense.bound == "compute"
    assert dense.latency_s / nm.latency_s == pytest.approx(2.0)


@pytest.mark.parametrize("batch", [1, 16, 32])
def test_sparse_marlin_within_25_percent_of_its_published_speedup(tables, batch):
    # "near-optimal speedups of around 5.3x" over fp16, up to batch 32 (README)
    assert tables["sparse_marlin"]["speedup_over_fp16_b1_32"] == 5.3
    pred = nm_kernel_speedup(
        tables,
        platform="a100",
        kernel="sparse-marlin",
        rows=4096,
        cols=4096,
        batch=batch,
        weight_bits=4,
        activation_bits=16,
        group_size=128,
    ).predicted
    assert abs(pred / 5.3 - 1) <= 0.25


def test_llama3_8b_sparse_marlin_bytes_are_the_published_model_size(tables):
    # torchao's table: 3.05 GB for the int4wo-64-sparse-marlin model (its linear
    # layers); a decode step also reads the KV cache (32 layers x 2 x 205 positions x
    # 1,024 (8 KV heads of 128) x 2 B) and moves activations (under 0.1 %)
    p = load_platform("a100")
    from simulator.hfconfig import Phase

    q = Quant(weight_bits=4, activation_bits=16, variant="nm", group_size=64, scale_bits=16)
    step = network_pass("llama3_8b", p, q, Phase(kind="decode", batch=1, context=205))
    kv = 32 * 2 * 205 * 1024 * 2
    assert step.dram_bytes - kv == pytest.approx(3.05e9, rel=0.01)


@pytest.mark.parametrize(
    ("key", "quant"),
    [
        ("bf16", {"weight_bits": 16, "activation_bits": 16}),
        (
            "int4wo_64",
            {
                "weight_bits": 4,
                "activation_bits": 16,
                "group_size": 64,
                "scale_bits": 16,
                "zero_point_bits": 16,
            },
        ),
        (
            "sparse_marlin",
            {
                "weight_bits": 4,
                "activation_bits": 16,
                "variant": "nm",
                "group_size": 64,
                "scale_bits": 16,
            },
        ),
    ],
)
def test_llama3_8b_decode_within_25_percent_of_torchao(tables, key, quant):
    measured = {"bf16": 95.64, "int4wo_64": 180.80, "sparse_marlin": 226.02}[key]
    assert tables["torchao_sparsity"]["llama3_8b_tokens_per_s"][key] == measured
    pred = llm_decode(
        tables,
        network="llama3_8b",
        platform="a100",
        memory="a100_80gb.sxm_bytes_per_s",
        context=205,
        **quant,
    ).predicted
    assert abs(pred / measured - 1) <= 0.25


@pytest.mark.parametrize(("sparsity", "published"), [(0.7, 1.4), (0.8, 1.7), (0.9, 2.1)])
def test_flash_llm_within_its_published_speedups(tables, sparsity, published):
    # 70 and 90 % give the entry's two rates; 80 % is held out (within 25 %, at -1.2 %)
    key = f"s{round(sparsity * 100)}"
    assert tables["flash_llm"]["speedup_over_cublas"][key] == published
    pred = csr_kernel_speedup(
        tables,
        platform="a100",
        kernel="flash-llm",
        rows=28672,
        cols=7168,
        batch=16,
        sparsity=sparsity,
    ).predicted
    assert abs(pred / published - 1) <= (0.25 if key == "s80" else 0.01)


def test_settings_group_scales_reach_weighted_layers_only():
    """``Settings.group_size`` reaches every layer with weights through
    :func:`simulate_layer` (one 16-bit scale per 128 inputs of each of the 1,024
    outputs, by hand) and no weightless product (its operands are activations)."""
    from simulator.layers import MatMul
    from simulator.settings import Settings
    from simulator.simulate import simulate_layer

    p = only_kernels("a100", "cusparselt")
    fc = Linear(name="fc", in_features=4096, out_features=1024, tokens=1)
    g = fc.gemm
    prof = all_kept_profile(g.groups, g.rows, g.cols)
    plain = simulate_layer(fc, p, prof, Settings(weight_bits=4, activation_bits=16))
    grouped = simulate_layer(
        fc, p, prof, Settings(weight_bits=4, activation_bits=16, group_size=128)
    )
    assert grouped.dram_bits - plain.dram_bits == 1024 * (4096 // 128) * 16
    mm = MatMul(name="scores", m=64, k=128, n=512, batch=32)
    s = Settings(weight_bits=4, activation_bits=16)
    a = simulate_layer(mm, p, None, s)
    b = simulate_layer(mm, p, None, Settings(weight_bits=4, activation_bits=16, group_size=128))
    assert a.dram_bits == b.dram_bits


@pytest.mark.parametrize(
    ("field", "value"), [("group_size", -1), ("scale_bits", 0), ("zero_point_bits", 65)]
)
def test_settings_refuse_bad_quantization(field, value):
    from simulator.settings import Settings

    with pytest.raises(ConfigError, match=field):
        Settings(**{field: value})


def test_csr_kernel_chosen_by_its_roofline_time_not_its_compute_alone():
    """Two csr kernels on the A100 (no launch cost): "wide" computes 10x faster but
    stores 32-bit indices, "narrow" 4-bit ones. On a memory-bound GEMV the narrow one
    takes less time (its bytes over the streaming bandwidth, by hand) and is chosen;
    on a compute-bound GEMM (many columns) the wide one is."""
    from simulator.dataflows.roofline import best_csr_kernel

    raw = dict(load_platform("a100").raw)
    roof = dict(raw["roofline"])
    common = {"format": "csr", "pointer_bits": 32, "source": "test"}
    roof["kernels"] = [
        {"name": "wide", "macs_per_s": {"fp32": 1e13}, "index_bits": 32, **common},
        {"name": "narrow", "macs_per_s": {"fp32": 1e12}, "index_bits": 4, **common},
    ]
    roof["layer_overhead_ns"] = 0
    raw["roofline"] = roof
    p = platform_from_dict(raw)
    gemv = Linear(name="fc", in_features=4096, out_features=4096, tokens=1)
    nnz = profile_mask(gemv, generate_mask(gemv, Pruning(density=0.5, seed=1))).nnz
    for tokens, want in ((1, "narrow"), (4096, "wide")):
        layer = Linear(name="fc", in_features=4096, out_features=4096, tokens=tokens)
        task = LayerTask(
            layer=layer,
            profile=profile_mask(layer, generate_mask(layer, Pruning(density=0.5, seed=1))),
            variant="sparse",
            weight_bits=16,
            index_bits=4,
            activation_bits=16,
        )
        assert best_csr_kernel(task, p)[0].name == want
    # by hand at one token: values, indices, 32-bit row pointers, 16-bit input and
    # output over the GEMV streaming bandwidth; the narrow kernel is memory-bound and
    # still shorter than the wide one's bytes
    io_bits = 4097 * 32 + 4096 * 16 * 2
    narrow_s = (nnz * (16 + 4) + io_bits) / 8 / (A100_BW * GEMV)
    wide_s = (nnz * (16 + 32) + io_bits) / 8 / (A100_BW * GEMV)
    assert nnz / 1e12 < narrow_s < wide_s


# --- SpInfer on the RTX 4090 (hwconfigs/rtx4090.yaml) -----------------------------------

RTX4090_BW = 1008.0e9  # rtx4090.yaml, GDDR6X
SPINFER_KEPT_RATE = 82.58e12 * 0.484  # the dense fp16 GEMM rate: peak x dense_gemm_efficiency
SPINFER_ENTRY_S = 1.996e-12  # rtx4090.yaml entry_ns


def test_spinfer_by_hand():
    # 2,048 x 1,024 at 16 columns, fp16, a checkerboard mask: every 8 x 8 tile keeps 32,
    # every 64 x 64 tile 2,048 (a multiple of 8: no padding values). Kept MACs at the
    # dense fp16 GEMM rate plus a fixed time per kept weight; its DRAM traffic in
    # TCA-BME (layout: tca-bme): 16-bit values, a 64-bit bitmap per 8 x 8 tile (one bit a
    # dense weight), 32-bit offsets, 4 per 64 x 64 tile (its 16 x 64 tiles), one per
    # 64 x 64 tile and 2 more (the last offset and max_nnz_intile), fp16 inputs, outputs
    p = only_kernels("rtx4090", "spinfer")
    layer = Linear(name="fc", in_features=1024, out_features=2048, tokens=16)
    rows, cols = np.indices((2048, 1024))
    mask = (rows + cols) % 2 == 0
    nnz = 2048 * 1024 // 2
    task = LayerTask(
        layer=layer,
        profile=profile_mask(layer, mask),
        variant="sparse",
        weight_bits=16,
        index_bits=4,
        activation_bits=16,
    )
    counts = run_roofline(task, p)
    assert counts.engine == "spinfer (tca-bme)"
    tiles = (2048 // 64) * (1024 // 64)
    meta_bits = 2048 * 1024 + (tiles * 4 + tiles + 2) * 32
    dram = {a.operand: a.read_bits for a in counts.accesses if a.level == "gddr6x"}
    assert (dram["weights"], dram["metadata"]) == (nnz * 16, meta_bits)
    compute = nnz * 16 / 3.997e13 + nnz * SPINFER_ENTRY_S
    memory = (nnz * 16 + meta_bits + (1024 + 2048) * 16 * 16) / 8 / RTX4090_BW
    cost = price(counts, p, 16, 16)
    assert cost.latency_s == pytest.approx(max(compute, memory), rel=1e-9)
    assert cost.bound == ("compute" if compute > memory else "gddr6x")


def test_spinfer_runs_fp16_only():
    p = only_kernels("rtx4090", "cusparse", "spinfer")
    layer = Linear(name="fc", in_features=1024, out_features=2048, tokens=16)
    _, fp16 = _sparse_task(layer, 0.5, 16)
    _, int8 = _sparse_task(layer, 0.5, 8)
    assert run_roofline(fp16, p).engine == "spinfer (tca-bme)"
    assert run_roofline(int8, p).engine == "cusparse (CSR)"


def test_spinfer_time_per_kept_weight_from_the_published_mean_by_hand():
    # The fit in rtx4090.yaml redone by hand: on 8,192 x 29,568 at N = 16 the dense fp16
    # GEMM is memory-bound (weights, inputs and outputs at 1,008 GB/s); SpInfer takes
    # that over the published 1.66x; its kept MACs (half the weights x 16 columns) at
    # the dense rate take part; the rest, per kept weight, is entry_ns
    m, k, n = 8192, 29568, 16
    dense = (m * k + k * n + m * n) * 2 / RTX4090_BW
    assert dense > m * k * n / SPINFER_KEPT_RATE  # memory-bound
    kept = m * k * 0.5
    entry_s = (dense / 1.66 - kept * n / SPINFER_KEPT_RATE) / kept
    assert entry_s == pytest.approx(SPINFER_ENTRY_S, rel=1e-3)
    # compute binds the kernel there: TCA-BME at least (16 bits a kept weight and one a
    # dense weight) streams in less time than the fitted kernel takes
    assert (kept * 16 + m * k) / 8 / RTX4090_BW < dense / 1.66
    p = load_platform("rtx4090")
    (spinfer,) = (x for x in p.roofline.kernels if x.name == "spinfer")
    assert spinfer.entry_ns * 1e-9 == pytest.approx(SPINFER_ENTRY_S, rel=1e-12)
    assert spinfer.rate_for(16, 16) == pytest.approx(SPINFER_KEPT_RATE, rel=1e-3)


def test_spinfer_is_chosen_over_sputnik_by_roofline_time():
    # on the whole rtx4090 profile Sputnik computes faster (1.115e13 MAC/s, no per-entry
    # time) but streams 32-bit indices: at one column its bytes (48 bits a kept fp16
    # weight) exceed SpInfer's TCA-BME (16 bits a kept weight and about one a dense one)
    p = load_platform("rtx4090")
    layer = Linear(name="fc", in_features=4096, out_features=4096, tokens=16)
    _, fp16 = _sparse_task(layer, 0.5, 16)
    assert run_roofline(fp16, p).engine == "spinfer (tca-bme)"


@pytest.mark.parametrize(
    ("sparsity", "batch", "published", "tolerance"),
    [(0.5, 16, 1.66, 0.01), (0.4, 8, 1.34, 0.25)],
)
def test_spinfer_within_its_published_speedups(tables, sparsity, batch, published, tolerance):
    # 50 % (the paper's mean over its RTX 4090 benchmark) gives the time per kept weight;
    # 40 % at N = 8 (a user's run of the artifact, issue 1) is held out (+10.5 %)
    t = tables["spinfer"]
    if sparsity == 0.5:
        assert t["speedup_over_cublas_s50_mean"] == published
    else:
        ms = t["rtx4090_issue1_8192x29568_n8_s40_ms"]
        assert ms["cublas_tc"] / ms["spinfer"] == pytest.approx(published, abs=0.005)
    pred = csr_kernel_speedup(
        tables,
        platform="rtx4090",
        kernel="spinfer",
        rows=8192,
        cols=29568,
        batch=batch,
        sparsity=sparsity,
    ).predicted
    assert abs(pred / published - 1) <= tolerance


def test_spinfer_beats_cublas_at_30_percent(tables):
    # "SpInfer outperforms highly optimized cuBLAS at sparsity levels as low as 30%"
    lo, hi = tables["spinfer"]["outperforms_cublas_s30"]
    pred = csr_kernel_speedup(
        tables, platform="rtx4090", kernel="spinfer", rows=8192, cols=29568, batch=16, sparsity=0.3
    ).predicted
    assert lo < pred < hi
