"""Structured pruning of transformer blocks: attention heads and MLP channels,
followed through each block's producer links (:class:`~simulator.hfconfig.DecoderBlock`).

**Heads.** With grouped-query attention a key/value head serves ``heads / kv_heads``
query heads, so heads are pruned by **KV group**: a removed group takes its KV head
(its ``head_dim`` rows of ``k`` and ``v``), all the query heads that share it (their
rows of ``q``), the matching input columns of ``o``, and its share of both attention
products (one product per KV head: the products run on the kept groups only, so
their MACs and the KV cache they read and the k/v projections write shrink by the
same share). With as many KV heads as query heads (multi-head attention) a group is
one head. Pruning single query heads of a group while keeping its KV head is not
modelled.

**MLP channels.** A removed intermediate channel removes its row of ``up`` (and of
``gate`` in a gated MLP) and its column of ``down``.

Per block, ``kept_units(kv_heads, d)`` KV groups and ``kept_units(intermediate, d)``
channels are kept at density ``d`` (round to nearest, at least one), chosen at
random from generators seeded by the seed and the block's layer names (the same
block is pruned alike whatever other blocks the network holds). Layers outside the
blocks (an LM head) keep every weight. What is left is a smaller dense problem:
every layer's mask is the product of kept rows and kept columns
(:func:`~simulator.formats.factored_profile`), run as structured work.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np

from simulator.errors import MaskError
from simulator.formats import MaskProfile, all_kept_profile, factored_profile
from simulator.hfconfig import DecoderBlock
from simulator.layers import Layer
from simulator.masks import kept_units, layer_rng
from simulator.workloads import Network

STRUCTURE = "heads+channels"
"""The name of this structured pruning in tables and reports."""


@dataclass(frozen=True, kw_only=True)
class BlockChoice:
    """What one block keeps: KV groups and intermediate channels (bool per unit)."""

    index: int
    groups: np.ndarray
    channels: np.ndarray


@dataclass(frozen=True, kw_only=True)
class HeadChannelPruning:
    """Structured pruning of a decoder network's heads and MLP channels.

    ``network``: the network as it runs once pruned, its attention products shrunk to
    the kept KV groups (the weight layers keep their shapes; their masks say what is
    kept); ``profiles``: the mask profile of every prunable layer, by name;
    ``choices``: what each block keeps; ``kept_weights`` / ``total_weights``
    (elements) over the prunable layers."""

    network: Network
    profiles: Mapping[str, MaskProfile]
    choices: tuple[BlockChoice, ...]
    kept_weights: int
    total_weights: int

    @property
    def rate(self) -> float:
        """All weights over kept ones (``inf`` if none is kept)."""
        return self.total_weights / self.kept_weights if self.kept_weights else math.inf


def _choose(n: int, density: float, seed: int, name: str) -> np.ndarray:
    """``kept_units(n, density)`` of ``n`` units chosen at random (bool per unit)."""
    keep = np.zeros(n, dtype=bool)
    score = layer_rng(seed, name).random(n)
    keep[np.argsort(-score, kind="stable")[: kept_units(n, density)]] = True
    return keep


def block_factors(
    block: DecoderBlock, groups: np.ndarray, channels: np.ndarray
) -> dict[str, tuple[np.ndarray, np.ndarray | None]]:
    """Kept rows and kept columns (``None``: all) of each weight layer of ``block`` when
    it keeps the KV groups ``groups`` and the MLP channels ``channels`` (bool per
    unit). Rows and columns as flat bool arrays in the layer's GEMM view."""
    per_group = block.heads // block.kv_heads
    d = block.head_dim
    q_rows = np.repeat(groups, per_group * d)  # query heads of group j are j*g .. j*g+g-1
    kv_rows = np.repeat(groups, d)
    out: dict[str, tuple[np.ndarray, np.ndarray | None]] = {}
    if block.qkv is not None:
        out[block.qkv] = (np.concatenate([q_rows, kv_rows, kv_rows]), None)
    else:
        out[block.q] = (q_rows, None)
        out[block.k] = (kv_rows, None)
        out[block.v] = (kv_rows, None)
    out[block.o] = (np.ones(0, dtype=bool), q_rows)  # rows: all (filled in by the caller)
    if block.gate is not None:
        out[block.gate] = (channels, None)
    out[block.up] = (channels, None)
    out[block.down] = (np.ones(0, dtype=bool), channels)
    return out


def prune_heads_channels(network: Network, density: float, seed: int = 0) -> HeadChannelPruning:
    """Prune the KV groups and MLP channels of every block of ``network`` (a network
    read from a Hugging Face config: :attr:`~simulator.workloads.Network.blocks`) to
    ``density`` (kept fraction, in (0, 1]), as the module docstring says."""
    if not network.blocks:
        raise MaskError(
            f"network {network.name!r} has no transformer blocks (head and MLP-channel "
            "pruning needs a network read from a Hugging Face config)"
        )
    if not 0 < density <= 1:
        raise MaskError(f"head and channel pruning: density must be in (0, 1], got {density}")
    factors: dict[str, tuple[np.ndarray, np.ndarray | None]] = {}
    kept_groups: dict[str, int] = {}
    choices = []
    for b in network.blocks:
        groups = _choose(b.kv_heads, density, seed, f"{b.o}#kv-groups")
        channels = _choose(b.intermediate, density, seed, f"{b.down}#channels")
        choices.append(BlockChoice(index=b.index, groups=groups, channels=channels))
        factors.update(block_factors(b, groups, channels))
        kept_groups[b.scores] = kept_groups[b.context] = int(groups.sum())
    profiles: dict[str, MaskProfile] = {}
    kept = total = 0
    for layer in network.prunable_layers:
        g = layer.gemm
        total += layer.weight_count
        if layer.name not in factors:
            profiles[layer.name] = all_kept_profile(g.groups, g.rows, g.cols, layer.name)
            kept += layer.weight_count
            continue
        rows, cols = factors[layer.name]
        rows = rows if rows.size else np.ones(g.rows, dtype=bool)
        cols = cols if cols is not None else np.ones(g.cols, dtype=bool)
        _check(layer, rows, cols)
        profiles[layer.name] = factored_profile(rows[None, :], cols[None, :], layer.name)
        kept += int(rows.sum()) * int(cols.sum())
    layers = tuple(
        replace(layer, heads=kept_groups[layer.name]) if layer.name in kept_groups else layer
        for layer in network.layers
    )
    return HeadChannelPruning(
        network=replace(network, layers=layers),
        profiles=profiles,
        choices=tuple(choices),
        kept_weights=kept,
        total_weights=total,
    )


def _check(layer: Layer, rows: np.ndarray, cols: np.ndarray) -> None:
    g = layer.gemm
    if g.groups != 1 or rows.size != g.rows or cols.size != g.cols:
        raise MaskError(
            f"layer {layer.name!r}: its block's sizes ({rows.size} rows, {cols.size} "
            f"columns) do not match its weights ({g.groups} x {g.rows} x {g.cols})"
        )
