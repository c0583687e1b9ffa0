"""Pruning levels, seeded mask generators and mask checks.

A mask has the weight tensor's own shape and dtype ``bool`` (True = kept).
Generators are deterministic: the same seed and layer name give the same mask,
whatever order the layers are generated in. Structured generators keep whole
filters (output channels), input channels, GEMM columns, ``b x b`` tiles of the
GEMM matrix, or N of every M consecutive weights along the reduction axis.
Structured levels are rounded to whole units, and at least one unit is always
kept; the achieved density is what the mask says.
"""

from __future__ import annotations

import dataclasses
import math
import re
import sys
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from simulator import kernels
from simulator.errors import ConfigError, MaskError, shown
from simulator.layers import Layer
from simulator.memory import require_bytes
from simulator.units import rate_to_density, sparsity_to_density
from simulator.yamlio import read_yaml

STRUCTURES = ("dense", "random", "magnitude", "filter", "channel", "column", "block", "nm")
"""Mask kinds: ``random`` and ``magnitude`` are non-structured."""
NON_STRUCTURED = ("random", "magnitude")
MAX_UNIT = 2**31
"""Largest block side and N:M group size accepted (elements)."""


def density_from(
    *,
    rate: float | None = None,
    sparsity: float | None = None,
    density: float | None = None,
    where: str = "pruning level",
) -> float:
    """Kept density from exactly one of a rate (8 = keep 1/8), a sparsity (0.875) or a density.

    Raises :class:`MaskError` naming ``where`` for anything else.
    """
    given = {
        k: v
        for k, v in (("rate", rate), ("sparsity", sparsity), ("density", density))
        if v is not None
    }
    if len(given) != 1:
        raise MaskError(
            f"{where}: give exactly one of rate, sparsity or density, got "
            f"{', '.join(given) or 'none'}"
        )
    ((key, value),) = given.items()
    if isinstance(value, bool):
        raise MaskError(f"{where}: {key} must be a number, got {shown(value)}")
    try:
        value = float(value)
    except (TypeError, ValueError, OverflowError):
        raise MaskError(f"{where}: {key} must be a number, got {shown(value)}") from None
    if key == "rate":
        if not value >= 1 or math.isinf(value):
            raise MaskError(
                f"{where}: rate must be a finite number >= 1 (8 keeps 1/8), got {value}"
            )
        return rate_to_density(value)
    if key == "sparsity":
        if not 0 <= value < 1:
            raise MaskError(f"{where}: sparsity must be in [0, 1), got {value}")
        return sparsity_to_density(value)
    if not 0 < value <= 1:
        raise MaskError(f"{where}: density must be in (0, 1], got {value}")
    return value


def parse_nm(text: str) -> tuple[int, int]:
    """``"2:4"`` -> (2, 4); N must be in [1, M] and M at most :data:`MAX_UNIT`.

    A group longer than a layer's rows is allowed here: :func:`generate_mask` clamps
    it to the layer (the same mask, see :func:`clamp_to_layer`)."""
    text = str(text)
    parts = text.split(":")
    if len(parts) != 2 or not all(re.fullmatch(r"\s*[0-9]{1,12}\s*", p) for p in parts):
        raise MaskError(f"N:M pattern must look like 2:4, got '{shown(text, 40)}'")
    n, m = (int(x) for x in parts)
    if not 1 <= n <= m:
        raise MaskError(f"N:M pattern needs 1 <= N <= M, got {n}:{m}")
    if m > MAX_UNIT:
        raise MaskError(f"N:M pattern: M must be at most 2**31, got {m}")
    return n, m


@dataclass(frozen=True, kw_only=True)
class Pruning:
    """How to prune a network: a structure, a global density and per-layer overrides.

    ``density`` is the kept fraction (rate 8 = 0.125). For ``nm`` the density is
    N/M and ``density`` is ignored; for ``dense`` nothing is pruned.
    """

    structure: str = "random"
    density: float = 1.0
    per_layer: Mapping[str, float] = field(default_factory=dict)
    block: tuple[int, int] = (4, 4)
    nm: tuple[int, int] = (2, 4)
    seed: int = 0
    cascade: bool = True
    """Filter pruning on a network with a graph: a removed filter also removes the
    input channels that read it (see :mod:`simulator.graph`), and every layer's
    density is multiplied by one common factor so that the network keeps the share of
    weights asked for (:func:`simulator.netmasks.fit_cascade`); ``False`` prunes each
    layer on its own at the density asked."""

    def __post_init__(self) -> None:
        if self.structure not in STRUCTURES:
            raise MaskError(f"structure {self.structure!r} is not one of {', '.join(STRUCTURES)}")
        if not all(isinstance(b, int) and 1 <= b <= MAX_UNIT for b in self.block):
            raise MaskError(f"block sides must be integers in [1, 2**31], got {self.block}")
        parse_nm(f"{self.nm[0]}:{self.nm[1]}")
        for name, d in {"(global)": self.density, **self.per_layer}.items():
            if not 0 < d <= 1:
                raise MaskError(f"density of {name} must be in (0, 1], got {d}")

    def density_of(self, layer_name: str) -> float:
        """Target kept density of a layer."""
        if self.structure == "dense":
            return 1.0
        if self.structure == "nm":
            return self.nm[0] / self.nm[1]
        return self.per_layer.get(layer_name, self.density)

    @property
    def label(self) -> str:
        if self.structure == "dense":
            return "dense"
        if self.structure == "nm":
            return f"nm {self.nm[0]}:{self.nm[1]}"
        extra = f" {self.block[0]}x{self.block[1]}" if self.structure == "block" else ""
        lvl = f"{1 / self.density:g}x" + (" (+per-layer)" if self.per_layer else "")
        return f"{self.structure}{extra} {lvl}"


def load_levels(path: str | Path) -> dict[str, float]:
    """Read per-layer levels from YAML: ``layer: {rate: 8}`` (or ``sparsity``/``density``).

    Returns layer name -> kept density; every problem is reported at once.
    """
    path = Path(path)
    data = read_yaml(path)
    if not isinstance(data, dict) or not data:
        raise ConfigError(
            str(path), "expected a mapping of layer name -> {rate|sparsity|density: x}"
        )
    out, problems = {}, []
    for name, spec in data.items():
        if not isinstance(spec, dict) or not set(spec) <= {"rate", "sparsity", "density"}:
            got = (
                f"keys {', '.join(shown(k, 20) for k in list(spec)[:5])}"
                if isinstance(spec, dict)
                else shown(spec)
            )
            problems.append(
                f"{shown(name)}: expected {{rate: R}}, {{sparsity: S}} or {{density: D}}, got {got}"
            )
            continue
        try:
            out[str(name)] = density_from(**spec, where=shown(name))
        except MaskError as e:
            problems.append(str(e))
    if problems:
        raise ConfigError(str(path), problems)
    return out


def layer_rng(seed: int, layer_name: str) -> np.random.Generator:
    """The generator used for one layer: depends on the seed and the layer's name only."""
    return np.random.default_rng([seed, zlib.crc32(layer_name.encode())])


def kept_units(n: int, density: float) -> int:
    """Units kept out of n at a density: round to nearest, at least 1."""
    return min(n, max(1, round(density * n)))


def _top(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k largest scores in O(n); ties at the threshold go to the lower
    indices, so the choice is deterministic."""
    n = scores.size
    if k >= n:
        return np.arange(n)
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    threshold = np.partition(scores, n - k)[n - k]
    above = np.flatnonzero(scores > threshold)
    ties = np.flatnonzero(scores == threshold)[: k - above.size]
    return np.concatenate([above, ties])


RANDOM_CHUNK = 1 << 21
"""32-bit draws made at a time by the random mask generator (8 MiB)."""


def _uint32_draws(rng: np.random.Generator, size: int) -> np.ndarray:
    """``rng.integers(0, 2**32, size, dtype=np.uint32)``: the same numbers, and the
    generator left in a state that draws the same numbers after. A PCG64 generator
    (``default_rng``'s) with no 32-bit half held back makes each pair of them from one
    64-bit output, low half first, so on a little-endian machine they are its raw
    outputs read as uint32, drawn several times faster; an odd last one is drawn as
    usual (its high half held back as ``integers`` holds it)."""
    bits = rng.bit_generator
    if (
        size < 2
        or sys.byteorder != "little"
        or type(bits) is not np.random.PCG64
        or bits.state["has_uint32"]
    ):
        return rng.integers(0, 2**32, size=size, dtype=np.uint32)
    pairs = bits.random_raw(size // 2).view(np.uint32)
    if size % 2 == 0:
        return pairs
    return np.concatenate([pairs, rng.integers(0, 2**32, size=1, dtype=np.uint32)])


def bernoulli(rng: np.random.Generator, shape: tuple[int, ...], density: float) -> np.ndarray:
    """An i.i.d. bool array of ``shape``, each entry True with probability ``density``
    rounded to a multiple of 1/65536: a 16-bit draw per entry (two from each 32-bit
    draw of the generator, :func:`_uint32_draws`) below ``round(65536 * density)``.
    Drawn in chunks; the generator's stream and its state after are those of one
    draw."""
    n = int(np.prod(shape))
    threshold = round(65536 * min(1.0, max(0.0, density)))
    if threshold >= 65536:
        return np.ones(shape, dtype=bool)
    flat = np.empty(n, dtype=bool)
    words = (n + 1) // 2
    for start in range(0, words, RANDOM_CHUNK):
        size = min(RANDOM_CHUNK, words - start)
        draws = _uint32_draws(rng, size).view(np.uint16)
        stop = min(n, 2 * (start + size))
        np.less(draws[: stop - 2 * start], np.uint16(threshold), out=flat[2 * start : stop])
    return flat.reshape(shape)


def _random_exact(n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """A flat bool mask with exactly k of n kept, uniform over all k-subsets.

    Draws i.i.d. Bernoulli positions at about k/n (16-bit random draws), then adds or
    removes uniformly chosen positions to reach k: both steps treat every position
    alike, so every k-subset is equally likely."""
    # the 16-bit draws of rng.bytes(2 * n), without its copy through bytes
    flat = bernoulli(rng, (n,), min(65535, round(65536 * k / n)) / 65536)
    have = int(np.count_nonzero(flat))
    grow = have < k
    need = abs(k - have)
    if need and (n - have if grow else have) < 0.05 * n:  # few candidates: list them
        pool = np.flatnonzero(~flat if grow else flat)
        flat[rng.choice(pool, need, replace=False)] = grow
        need = 0
    while need:  # rejection sampling: uniform positions, kept only where they flip
        cand = np.unique(rng.integers(0, n, size=2 * need + 16))
        cand = cand[flat[cand] != grow]
        cand = rng.permutation(cand)[:need]
        flat[cand] = grow
        need -= cand.size
    return flat


def gemm_view(layer: Layer, array: np.ndarray) -> np.ndarray:
    """A weight-shaped array as ``(groups, rows, cols)`` (a view when possible)."""
    g = layer.gemm
    return array.reshape(g.groups, g.rows, g.cols)


def clamp_to_layer(layer: Layer, pruning: Pruning) -> Pruning:
    """``pruning`` with its block no larger than the layer's GEMM matrix (rows x cols)
    and its N:M group no longer than a row (N clamped alike).

    The mask is the same either way: a block taller than the matrix is padded to one
    tile row, and an N:M group longer than a row keeps the row's N largest; clamping
    only avoids allocating the padding (``--block 100000x100000`` on LeNet-5).
    """
    if not layer.prunable:
        return pruning
    g = layer.gemm
    block = (min(pruning.block[0], g.rows), min(pruning.block[1], g.cols))
    n, m = pruning.nm
    nm = (min(n, g.cols), min(m, g.cols)) if m > g.cols else (n, m)
    if block == pruning.block and nm == pruning.nm:
        return pruning
    return dataclasses.replace(pruning, block=block, nm=nm)


def mask_bytes_needed(layer: Layer, pruning: Pruning, with_weights: bool = False) -> int:
    """Peak bytes :func:`generate_mask` allocates for ``layer`` (the mask and its
    temporaries, scores as float64), with ``pruning`` already clamped to the layer."""
    g = layer.gemm
    w = layer.weight_count
    kind = pruning.structure
    scores = 8 * w if with_weights else 0  # |weights| as float64
    if kind == "dense" or (pruning.density_of(layer.name) >= 1 and kind != "nm"):
        return w
    if kind in NON_STRUCTURED:
        # the flat mask and a chunk of 32-bit draws (2 weights each, and the comparison);
        # with weights: |w|, the partitioned copy and kept indices
        chunk = 6 * min(RANDOM_CHUNK, (w + 1) // 2)
        return w + chunk if not with_weights else w + 3 * 8 * w
    if kind == "block":
        br, bc = pruning.block
        padded = g.groups * -(-g.rows // br) * br * -(-g.cols // bc) * bc
        tiles = 16 * padded // (br * bc)  # a score (float64) and more per tile
        return w + padded + padded // bc + tiles + scores + (8 * padded if with_weights else 0)
    if kind == "nm":  # the mask, and a chunk of scores (float64 at most) padded and selected
        m = pruning.nm[1]
        chunk = max(1, NM_CHUNK // g.cols) * -(-g.cols // m) * m
        return w + 19 * min(chunk, g.groups * g.rows * -(-g.cols // m) * m) + scores
    return 2 * w + scores  # filter, channel, column: the mask and a broadcast copy


def filter_scores(
    layer: Layer, rng: np.random.Generator, magnitudes: np.ndarray | None = None
) -> np.ndarray:
    """A score per filter (output channel): the L1 norm of its weights' ``magnitudes``
    where given, else a uniform draw from ``rng`` (the layer's generator). Filter
    pruning keeps the k best, ties to the lower index: at a lower density the kept
    filters are a subset of those kept at a higher one."""
    k_all = layer.gemm.groups * layer.gemm.rows
    return magnitudes.reshape(k_all, -1).sum(1) if magnitudes is not None else rng.random(k_all)


def filter_order(layer: Layer, pruning: Pruning, weights: np.ndarray | None = None) -> np.ndarray:
    """The layer's filters, best first, as :func:`generate_mask` chooses them for
    filter pruning: the first ``kept_units(filters, density)`` are those it keeps."""
    a = np.abs(check_weights(layer, weights)) if weights is not None else None
    score = filter_scores(layer, layer_rng(pruning.seed, layer.name), a)
    return np.argsort(-score, kind="stable")


LINE_STRUCTURES = ("filter", "channel", "column")
"""Structured prunings that keep whole rows (filters) or whole columns (input channels,
GEMM columns) of each group's matrix: their masks are products of two factors."""


def _line_factors(
    layer: Layer, kind: str, density: float, rng: np.random.Generator, a: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """The kept rows ``(groups, rows)`` and kept columns ``(groups, cols)`` of a line
    structure's mask at ``density`` (< 1), ranked by the magnitudes ``a`` where given,
    else drawn from ``rng``."""
    g = layer.gemm
    shape = layer.weight_shape
    rows = np.ones((g.groups, g.rows), dtype=bool)
    cols = np.ones((g.groups, g.cols), dtype=bool)
    if kind == "filter":  # whole output channels (rows of the GEMM matrix)
        k_all = g.groups * g.rows
        score = filter_scores(layer, rng, a)
        keep = np.zeros(k_all, dtype=bool)
        keep[_top(score, kept_units(k_all, density))] = True
        rows = keep.reshape(g.groups, g.rows)
    elif kind == "channel":  # whole input channels: dim 1 of the weight (per group)
        c = shape[1] if len(shape) > 1 else g.cols
        score = a.reshape(shape[0], c, -1).sum((0, 2)) if a is not None else rng.random(c)
        keep = np.zeros(c, dtype=bool)
        keep[_top(score, kept_units(c, density))] = True
        cols[:] = np.repeat(keep, g.cols // c)[None, :]
    elif kind == "column":  # whole GEMM columns (one weight position of every filter)
        score = gemm_view(layer, a).sum((0, 1)) if a is not None else rng.random(g.cols)
        keep = np.zeros(g.cols, dtype=bool)
        keep[_top(score, kept_units(g.cols, density))] = True
        cols[:] = keep[None, :]
    else:
        raise MaskError(f"{kind!r} pruning does not keep whole rows or columns")
    return rows, cols


def line_factors(
    layer: Layer, pruning: Pruning, weights: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The two factors of the mask :func:`generate_mask` makes for a line structure
    (:data:`LINE_STRUCTURES`): kept rows ``(groups, rows)`` and kept columns ``(groups,
    cols)``; the mask keeps ``(g, i, j)`` where both do. Nothing weight-sized is made
    (the weights' magnitudes aside, where given)."""
    if not layer.prunable:
        raise MaskError(f"layer {layer.name!r} has no weights to prune")
    if pruning.structure not in LINE_STRUCTURES:
        raise MaskError(f"{pruning.structure!r} pruning does not keep whole rows or columns")
    g = layer.gemm
    density = pruning.density_of(layer.name)
    if density >= 1:
        return np.ones((g.groups, g.rows), dtype=bool), np.ones((g.groups, g.cols), dtype=bool)
    if weights is not None:
        weights = check_weights(layer, weights)
    a = np.abs(weights) if weights is not None else None
    return _line_factors(layer, pruning.structure, density, layer_rng(pruning.seed, layer.name), a)


NM_CHUNK = 1 << 22
"""Scores ranked at a time by the N:M mask generator (32 MiB of |weights| as float64;
half that of random 32-bit draws)."""


def _nm_rows(score: np.ndarray, n: int, m: int) -> np.ndarray:
    """The N:M selection of a ``(lines, cols)`` block of scores (float64, or uint32
    draws): the ``n`` largest of every ``m`` consecutive entries of each line, ties to
    the lower position (a short last group keeps its ``n`` largest among those it
    has: padded with the lowest score, which loses every tie to the real ones before
    it), as bool."""
    lines, cols = score.shape
    ngrp = -(-cols // m)
    if ngrp * m == cols:  # whole groups: rank in place, no padding
        return (
            kernels.nm_keep(np.ascontiguousarray(score).reshape(-1, m), np.int64(n))
            .view(bool)
            .reshape(lines, cols)
        )
    lowest = -np.inf if score.dtype.kind == "f" else 0
    padded = np.full((lines, ngrp * m), lowest, dtype=score.dtype)
    padded[:, :cols] = score
    sel = kernels.nm_keep(padded.reshape(-1, m), np.int64(n)).view(bool)
    return sel.reshape(lines, ngrp * m)[:, :cols]


def generate_mask(layer: Layer, pruning: Pruning, weights: np.ndarray | None = None) -> np.ndarray:
    """A boolean mask of the layer's weight shape for ``pruning``.

    With ``weights`` given, units are ranked by magnitude (L1 norm for structured
    units); without, they are chosen at random from the layer's seeded generator.
    ``magnitude`` needs weights.
    """
    if not layer.prunable:
        raise MaskError(f"layer {layer.name!r} has no weights to prune")
    pruning = clamp_to_layer(layer, pruning)
    require_bytes(
        mask_bytes_needed(layer, pruning, weights is not None),
        f"the {pruning.structure} mask of layer {shown(layer.name)} "
        f"({layer.weight_count:,} weights)",
        "prune a smaller layer, or stream it in parts",
    )
    shape = layer.weight_shape
    if weights is not None:
        weights = check_weights(layer, weights)
    kind = pruning.structure
    density = pruning.density_of(layer.name)
    rng = layer_rng(pruning.seed, layer.name)
    g = layer.gemm
    if kind == "dense" or (density >= 1 and kind != "nm"):
        return np.ones(shape, dtype=bool)
    if kind == "magnitude" and weights is None:
        raise MaskError(
            f"layer {layer.name!r}: magnitude pruning needs the weights "
            "(give a checkpoint, or use 'random')"
        )
    if kind in ("random", "magnitude"):
        n = int(np.prod(shape))
        k = min(n, round(density * n))
        if weights is None:
            return _random_exact(n, k, rng).reshape(shape)
        flat = np.zeros(n, dtype=bool)
        flat[_top(np.abs(weights).ravel(), k)] = True
        return flat.reshape(shape)
    a = np.abs(weights) if weights is not None else None
    mask = np.zeros((g.groups, g.rows, g.cols), dtype=bool)
    if kind in LINE_STRUCTURES:
        rows, cols = _line_factors(layer, kind, density, rng, a)
        mask[:] = rows[:, :, None] & cols[:, None, :]
    elif kind == "block":
        br, bc = pruning.block
        nbr, nbc = -(-g.rows // br), -(-g.cols // bc)
        if a is not None:
            pad = np.zeros((g.groups, nbr * br, nbc * bc))
            pad[:, : g.rows, : g.cols] = gemm_view(layer, a)
            score = pad.reshape(g.groups, nbr, br, nbc, bc).sum((2, 4)).ravel()
        else:
            score = rng.random(g.groups * nbr * nbc)
        keep = np.zeros(score.size, dtype=bool)
        keep[_top(score, kept_units(score.size, density))] = True
        tiles = keep.reshape(g.groups, nbr, nbc)
        full = np.repeat(np.repeat(tiles, br, axis=1), bc, axis=2)
        mask[:] = full[:, : g.rows, : g.cols]
    elif kind == "nm":
        n, m = pruning.nm
        lines = mask.reshape(-1, g.cols)  # every group's rows, in order
        source = gemm_view(layer, a).reshape(-1, g.cols) if a is not None else None
        step = max(1, NM_CHUNK // g.cols)
        step -= step % 2 if step > 1 else 0  # even draws keep _uint32_draws' fast path
        for start in range(0, lines.shape[0], step):
            stop = min(lines.shape[0], start + step)
            # without weights, a uniformly random pattern per group: it ranks uniform
            # 32-bit draws (a tie, about 1 in 10^9 per pair, goes to the lower
            # position), drawn a few rows at a time: the generator's stream is the same
            # as in one draw of the whole layer's
            if source is not None:
                score = np.asarray(source[start:stop], dtype=np.float64)
            else:
                score = _uint32_draws(rng, (stop - start) * g.cols).reshape(-1, g.cols)
            lines[start:stop] = _nm_rows(score, n, m)
    return mask.reshape(shape)


def check_weights(layer: Layer, weights: Any, source: str = "weights") -> np.ndarray:
    """Weights of the layer's shape, finite; returned as a float array."""
    w = np.asarray(weights)
    if w.shape != tuple(layer.weight_shape):
        raise MaskError(
            f"{source} for layer {layer.name!r}: expected shape "
            f"{tuple(layer.weight_shape)}, got {w.shape}"
        )
    if not (np.issubdtype(w.dtype, np.floating) or np.issubdtype(w.dtype, np.integer)):
        raise MaskError(f"{source} for layer {layer.name!r}: expected numbers, got {w.dtype}")
    if not np.isfinite(w).all():
        raise MaskError(
            f"{source} for layer {layer.name!r}: {int((~np.isfinite(w)).sum())} non-finite value(s)"
        )
    return w


def check_mask(layer: Layer, mask: Any, source: str = "mask") -> np.ndarray:
    """A given mask, checked against its layer: the weight shape, finite, only 0 and 1.

    Returns it as ``bool``. Raises :class:`MaskError` naming ``source`` and the layer.
    """
    m = np.asarray(mask)
    where = f"{source} for layer {layer.name!r}"
    if m.shape != tuple(layer.weight_shape):
        raise MaskError(f"{where}: expected shape {tuple(layer.weight_shape)}, got {m.shape}")
    if m.dtype == bool:
        return m
    # temporaries of the checks below: finite flags, two comparisons, the result
    require_bytes(4 * m.size, f"checking the {source} of layer {shown(layer.name)}")
    if not (np.issubdtype(m.dtype, np.number)):
        raise MaskError(f"{where}: expected booleans or 0/1 numbers, got dtype {m.dtype}")
    if np.issubdtype(m.dtype, np.floating) and not np.isfinite(m).all():
        raise MaskError(f"{where}: {int((~np.isfinite(m)).sum())} non-finite value(s)")
    bad = (m != 0) & (m != 1)
    if bad.any():
        raise MaskError(
            f"{where}: expected only 0 and 1, found {int(bad.sum())} other value(s), "
            f"e.g. {m[bad].ravel()[0]!r}"
        )
    return m != 0


def density(mask: np.ndarray) -> float:
    """Kept fraction of a mask."""
    return float(np.count_nonzero(mask)) / mask.size if mask.size else 0.0
