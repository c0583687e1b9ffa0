"""Predictions for the LLM inference references (registered in :data:`CHECKS` with
the others): a decode step or a whole generation of a built-in Hugging Face network
on a roofline profile, dense or N:M, with group-wise quantized weights; and an N:M
kernel's speed-up over dense on one GEMM shape.

Each layer runs as :mod:`simulator.simulate` runs it (weightless layers as dense work
at activation precision, their KV-cache operand at ``kv_bits``), with the task's
group-wise quantization set, so the scales and zero points move with the weights.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from simulator.cost import price
from simulator.dataflows import LayerTask
from simulator.errors import ConfigError
from simulator.formats import MaskProfile, all_kept_profile, profile_gemm
from simulator.hwconfig import Platform, load_platform
from simulator.layers import Layer, Linear
from simulator.simulate import engine
from simulator.validate.checks import Prediction, check, only_kernels, with_dram_bandwidth
from simulator.workloads import load_network

VARIANTS = ("dense", "nm")


def nm_profile(groups: int, rows: int, cols: int, n: int, m: int) -> MaskProfile:
    """The profile of the N:M mask that keeps the first ``n`` of every ``m`` weights
    along each row (the reduction axis): every N:M mask of a shape has the same counts
    (kept values, positions, groups) whichever slots it keeps."""
    pattern = np.zeros(m, dtype=np.uint8)
    pattern[:n] = 1
    row = np.tile(pattern, -(-cols // m))[:cols]
    gemm = np.ascontiguousarray(np.broadcast_to(row, (groups, rows, cols)))
    return profile_gemm(gemm, f"{n}:{m}")


def platform_for(tables: Mapping[str, Any], platform: str, memory: str | None) -> Platform:
    """The built-in ``platform``, or with its DRAM bandwidth replaced by the table value
    at the dotted path ``memory`` (bytes/s: another memory system for the same cores)."""
    if memory is None:
        return load_platform(platform)
    node: Any = tables
    for part in memory.split("."):
        if not isinstance(node, Mapping) or part not in node:
            raise ConfigError("references", f"no table entry {memory!r}")
        node = node[part]
    return with_dram_bandwidth(platform, f"{platform}_{memory.split('.')[-1]}", float(node))


@dataclass(frozen=True, kw_only=True)
class Quant:
    """Widths of one run (bits): weights, activations, KV cache; the N:M pattern of
    the ``nm`` variant; group-wise scales (``group_size`` None: none)."""

    weight_bits: int
    activation_bits: int
    kv_bits: int | None = None
    variant: str = "dense"
    nm: tuple[int, int] = (2, 4)
    group_size: int | None = None
    scale_bits: int = 16
    zero_point_bits: int = 0

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ConfigError("llm check", f"variant {self.variant!r}: one of {VARIANTS}")


@dataclass(frozen=True, kw_only=True)
class Pass:
    """One pass over a network: ``latency_s`` in all, ``overhead_s`` of it the per-layer
    fixed cost, ``dram_bytes`` moved, over ``layers`` layers; ``bounds``: the layers
    whose latency each bound set."""

    latency_s: float
    overhead_s: float
    dram_bytes: float
    layers: int
    bounds: tuple[tuple[str, int], ...]

    def describe(self) -> str:
        """One line: the time, the bytes and how the layers were bound."""
        bound = ", ".join(f"{n} {b}" for b, n in self.bounds)
        return (
            f"{self.latency_s * 1e3:.2f} ms: {self.dram_bytes / 1e9:.3f} GB from DRAM, "
            f"{self.layers} layers ({bound}), {self.overhead_s * 1e3:.2f} ms of it "
            "per-layer overhead"
        )


def layer_cost(
    layer: Layer, platform: Platform, q: Quant, profiles: dict
) -> tuple[float, float, float, str]:
    """(latency s, overhead s, DRAM bits, bound) of one layer under ``q``; N:M profiles
    are made once per shape in ``profiles``."""
    g = layer.gemm
    if layer.prunable:
        variant, wb = q.variant, q.weight_bits
        if variant == "nm":
            key = (g.groups, g.rows, g.cols, *q.nm)
            if key not in profiles:
                profiles[key] = nm_profile(g.groups, g.rows, g.cols, *q.nm)
            prof = profiles[key]
        else:
            prof = all_kept_profile(g.groups, g.rows, g.cols, layer.name)
    else:  # an attention product: dense work at activation precision
        variant, wb = "dense", q.activation_bits
        prof = all_kept_profile(g.groups, g.rows, g.cols, "activations")
    task = LayerTask(
        layer=layer,
        profile=prof,
        variant=variant,
        weight_bits=wb,
        index_bits=4,
        activation_bits=q.activation_bits,
        kv_bits=q.kv_bits,
        group_size=q.group_size if layer.prunable else None,
        scale_bits=q.scale_bits,
        zero_point_bits=q.zero_point_bits,
    )
    counts = engine(platform, variant)(task)
    cost = price(counts, platform, wb, q.activation_bits)
    drams = {lv.name for lv in platform.memory if lv.kind == "dram"}
    dram = sum(a.read_bits + a.write_bits for a in counts.accesses if a.level in drams)
    return cost.latency_s, counts.overhead_s, dram, cost.bound


def network_pass(network: str, platform: Platform, q: Quant, phase) -> Pass:
    """One pass (a prefill or a decode step) of the built-in ``network`` at ``phase``."""
    net = load_network(network, phase=phase)
    latency = overhead = dram = 0.0
    bounds: dict[str, int] = {}
    profiles: dict = {}
    for layer in net.layers:
        t, o, d, b = layer_cost(layer, platform, q, profiles)
        latency, overhead, dram = latency + t, overhead + o, dram + d
        bounds[b] = bounds.get(b, 0) + 1
    return Pass(
        latency_s=latency,
        overhead_s=overhead,
        dram_bytes=dram / 8,
        layers=len(net.layers),
        bounds=tuple(sorted(bounds.items())),
    )


def _quant(args: Mapping[str, Any]) -> Quant:
    nm = args.get("nm", (2, 4))
    return Quant(**{**args, "nm": tuple(nm)})


@check
def llm_decode(
    tables,
    *,
    network: str,
    platform: str,
    memory: str | None = None,
    batch: int = 1,
    context: int,
    over: Mapping[str, Any] | None = None,
    **quant: Any,
) -> Prediction:
    """Decode tokens/s (per sequence) of ``network`` on ``platform`` at ``batch`` and
    ``context`` under the widths ``quant`` (:class:`Quant`); ``over``: another set of
    widths, and the prediction is the ratio of the two tokens/s (this one over that)."""
    from simulator.hfconfig import Phase

    p = platform_for(tables, platform, memory)
    phase = Phase(kind="decode", batch=batch, context=context)
    step = network_pass(network, p, _quant(quant), phase)
    if over is None:
        return Prediction(predicted=1.0 / step.latency_s, detail=step.describe())
    base = network_pass(network, p, _quant(over), phase)
    return Prediction(
        predicted=base.latency_s / step.latency_s,
        detail=f"{step.describe()}; against {base.describe()}",
    )


@check
def llm_generate_ms(
    tables,
    *,
    network: str,
    platform: str,
    memory: str | None = None,
    prompt: int,
    output: int,
    **quant: Any,
) -> Prediction:
    """Latency (ms) of one generation at batch 1: the prefill of ``prompt`` tokens
    (which yields the first token) plus ``output - 1`` decode steps, each at the mean
    context of the generated part (prompt + output / 2)."""
    from simulator.hfconfig import Phase

    p = platform_for(tables, platform, memory)
    q = _quant(quant)
    first = network_pass(network, p, q, Phase(kind="prefill", seq_len=prompt, batch=1))
    step = network_pass(network, p, q, Phase(kind="decode", batch=1, context=prompt + output // 2))
    total = first.latency_s + (output - 1) * step.latency_s
    return Prediction(
        predicted=total * 1e3,
        detail=f"prefill {first.latency_s * 1e3:.1f} ms + {output - 1} steps of {step.describe()}",
    )


@check
def nm_kernel_speedup(
    tables,
    *,
    platform: str,
    kernel: str,
    rows: int,
    cols: int,
    batch: int,
    weight_bits: int,
    activation_bits: int,
    group_size: int | None = None,
    dense_bits: int = 16,
) -> Prediction:
    """An N:M kernel alone (no per-layer overhead) on one ``rows x cols`` weight matrix
    at ``batch`` columns: the time of the dense GEMM at ``dense_bits`` (weights and
    activations) over the kernel's time at ``weight_bits`` / ``activation_bits`` with
    fp16 group scales every ``group_size`` weights."""
    p = only_kernels(platform, kernel)
    nm = p.compute.nm_sparse
    if nm is None:
        raise ConfigError(f"platform {platform!r}", "has no N:M unit")
    layer = Linear(name="w", in_features=cols, out_features=rows, tokens=batch)
    dense = Quant(weight_bits=dense_bits, activation_bits=dense_bits)
    sparse = Quant(
        weight_bits=weight_bits,
        activation_bits=activation_bits,
        variant="nm",
        nm=(nm.n, nm.m),
        group_size=group_size,
    )
    profiles: dict = {}
    t_dense, _, _, _ = layer_cost(layer, p, dense, profiles)
    t_nm, _, _, bound = layer_cost(layer, p, sparse, profiles)
    return Prediction(
        predicted=t_dense / t_nm,
        detail=f"dense {t_dense * 1e6:.1f} us, {kernel} {t_nm * 1e6:.1f} us ({bound})",
    )


@check
def csr_kernel_speedup(
    tables,
    *,
    platform: str,
    kernel: str,
    rows: int,
    cols: int,
    batch: int,
    sparsity: float,
    bits: int = 16,
    dense_bits: int | None = None,
) -> Prediction:
    """A csr kernel alone (no per-layer overhead) on one ``rows x cols`` weight matrix at
    ``batch`` columns and ``sparsity`` (an i.i.d. mask), weights and activations at
    ``bits``: the dense GEMM's time (at ``dense_bits``, default ``bits``) over the
    kernel's."""
    from simulator.validate.checks import layer_latency_s

    p = only_kernels(platform, kernel)
    layer = Linear(name="w", in_features=cols, out_features=rows, tokens=batch)
    dense = layer_latency_s(layer, p, bits=dense_bits or bits)
    sparse = layer_latency_s(layer, p, "sparse", 1 - sparsity, bits=bits)
    return Prediction(
        predicted=dense / sparse,
        detail=f"dense {dense * 1e6:.1f} us, {kernel} {sparse * 1e6:.1f} us",
    )
