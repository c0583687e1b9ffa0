"""What structure a mask has, told from the mask alone.

Checked on the layer's GEMM view (``groups x rows x cols``; rows are filters or
output neurons, columns the reduction axis), in this order; the first that holds is
reported:

- ``dense`` (all kept), ``empty`` (nothing kept);
- ``filter``: every row (output channel / neuron) kept whole or removed whole;
- ``channel``: every input channel (dim 1 of the weight; the input features of a
  linear layer) kept whole or removed whole, the same in every group;
- ``filter+channel``: both at once (rows removed, and the kept rows share one set of
  whole input channels) -- what removing a filter and the next layer's channel gives;
- ``column``: every GEMM column (one weight position of every filter) kept whole or
  removed whole; ``filter+column`` likewise among the kept rows;
- ``kernel``: conv only, every R x S kernel of a (filter, channel) pair whole or gone;
- ``N:M``: along the reduction axis, every group of M consecutive weights keeps at
  most N and (nearly) all keep exactly N -- ``2:4`` as NVIDIA's sparse tensor cores
  want; ``N:M (channels)`` when the groups run along the input channels of a conv
  (as NVIDIA ASP prunes convolutions) rather than along the flattened reduction axis;
- ``block RxC``: the GEMM matrix tiled in R x C blocks, each kept whole or removed
  whole (largest block area found);
- otherwise ``non-structured``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from simulator.errors import shown
from simulator.layers import Conv2d, Layer
from simulator.memory import require_bytes

NM_GROUPS = (2, 4, 8, 16)
"""Group sizes M tried for N:M patterns."""
NM_EXACT_FRACTION = 0.99
"""Share of groups that must keep exactly N (weights that are zero by chance in a
kept slot make a few groups keep fewer)."""
_SIDES = (32, 16, 8, 4, 2, 1)
BLOCKS = tuple(
    sorted(
        {(r, c) for r in _SIDES for c in _SIDES if (r == c or 1 in (r, c)) and r * c > 1},
        key=lambda rc: (-rc[0] * rc[1], abs(rc[0] - rc[1])),
    )
)
"""Block shapes tried, largest area first (squares, then 1 x n and n x 1 strips)."""


STRUCTURED_KINDS = frozenset(
    {"dense", "empty", "filter", "channel", "column", "filter+channel", "filter+column"}
)
"""Structures that leave a smaller dense problem (the ``structured`` variant)."""


def structure_variant(structure: str) -> str:
    """The simulation variant one :func:`detect_structure` result runs as: ``dense``
    for ``dense``; ``structured`` for the other :data:`STRUCTURED_KINDS` (``empty``
    included); ``nm`` for ``N:M`` and ``N:M (channels)``; ``sparse`` for everything
    else (``kernel``, ``block RxC``, ``non-structured``: no structured engine runs them
    as a smaller dense problem, so they are simulated as non-structured masks)."""
    if structure == "dense":
        return "dense"
    if structure in STRUCTURED_KINDS:
        return "structured"
    head = structure.split(" ", 1)[0].split(":")
    if len(head) == 2 and all(part.isdigit() for part in head):
        return "nm"
    return "sparse"


@dataclass(frozen=True, kw_only=True)
class MaskVariant:
    """Which variant a checkpoint's masks are, typed (see ``Checkpoint.variant``).

    ``variant`` is one of :data:`simulator.settings.VARIANTS`; ``structures`` the
    distinct structures of
    its layers in network order; ``density`` the kept fraction of all prunable weights
    (0..1); ``per_layer_density`` layer name -> kept fraction of each matched layer;
    ``note`` one printable line for people, e.g. ``masks of x.pt: filter pruning
    (structured), density 0.227``.
    """

    variant: str
    structures: tuple[str, ...]
    density: float
    per_layer_density: Mapping[str, float]
    note: str


def _whole(a: np.ndarray, axes: tuple[int, ...]) -> bool:
    """Whether ``a`` is constant along ``axes`` (each slice kept whole or removed)."""
    return bool((a.any(axis=axes) == a.all(axis=axes)).all())


def _nm(lines: np.ndarray) -> str | None:
    """N:M along the last axis of a 2-D bool array, smallest M first. A short last
    group (the length not a multiple of M) may keep at most N."""
    cols = lines.shape[-1]
    density = np.count_nonzero(lines) / lines.size
    for m in NM_GROUPS:
        if cols < 2 * m:
            break
        if round(density * m) < 1 or abs(density * m - round(density * m)) > 0.02 * m:
            continue  # an N:M mask has density N/M (a few short groups aside): fast exit
        full = cols - cols % m
        counts = lines[:, :full].reshape(-1, m).sum(axis=1)
        n = int(counts.max())
        if not (0 < n < m and np.mean(counts == n) >= NM_EXACT_FRACTION):
            continue
        if full < cols and lines[:, full:].sum(axis=1).max() > n:
            continue
        return f"{n}:{m}"
    return None


def _tiles_whole(gm: np.ndarray, br: int, bc: int) -> bool:
    """Whether every aligned br x bc tile (edge tiles clipped) is kept or removed whole."""
    g, rows, cols = gm.shape
    nr, nc = -(-rows // br), -(-cols // bc)
    any_ = np.zeros((g, nr * br, nc * bc), dtype=bool)
    all_ = np.ones((g, nr * br, nc * bc), dtype=bool)
    any_[:, :rows, :cols] = gm
    all_[:, :rows, :cols] = gm
    t_any = any_.reshape(g, nr, br, nc, bc).any(axis=(2, 4))
    t_all = all_.reshape(g, nr, br, nc, bc).all(axis=(2, 4))
    return bool((t_any == t_all).all())


def _blocks(gm: np.ndarray) -> str | None:
    _, rows, cols = gm.shape
    # every block shape tried has a side of 2 or more, and aligned power-of-two tiles
    # hold whole 1x2 or 2x1 pairs: a mask with neither is no block mask (fast exit)
    c2, r2 = cols - cols % 2, rows - rows % 2
    wide = cols >= 4 and bool((gm[:, :, 0:c2:2] == gm[:, :, 1:c2:2]).all())
    tall = rows >= 4 and bool((gm[:, 0:r2:2, :] == gm[:, 1:r2:2, :]).all())
    for br, bc in BLOCKS:
        if (br > 1 and rows < 2 * br) or (bc > 1 and cols < 2 * bc):
            continue  # blocks as large as the matrix say nothing
        if (bc > 1 and not wide) or (br > 1 and not tall):
            continue
        if _tiles_whole(gm, br, bc):
            return f"block {br}x{bc}"
    return None


def detect_structure(layer: Layer, mask: np.ndarray) -> str:
    """The structure of ``mask`` (weight-shaped, True = kept) on ``layer``: one of
    ``dense``, ``empty``, ``filter``, ``channel``, ``filter+channel``, ``column``,
    ``filter+column``, ``kernel``, ``N:M`` (e.g. ``2:4``), ``N:M (channels)``,
    ``block RxC`` or ``non-structured`` (see the module docstring)."""
    m = np.asarray(mask, dtype=bool).reshape(layer.weight_shape)
    if m.all():
        return "dense"
    if not m.any():
        return "empty"
    what = f"telling the structure of the mask of layer {shown(layer.name)}"
    hint = "map the checkpoint onto a network with smaller layers"

    def view(shape: tuple[int, ...]) -> np.ndarray:
        """``m`` reshaped; a broadcast (zero-stride) mask may need a copy: budget first."""
        try:
            return m.reshape(shape, copy=False)
        except ValueError:
            require_bytes(m.size, what, hint)
            return m.reshape(shape)

    g = layer.gemm
    k = m.shape[0]
    rows = view((k, -1))
    if _whole(rows, (1,)):
        return "filter"
    per_channel = view((k, m.shape[1], -1))
    if _whole(per_channel, (0, 2)):
        return "channel"
    # the checks below make temporaries of up to a few bytes per weight; a broadcast
    # (zero-stride) mask owns far less memory than that, so check the budget first
    require_bytes(6 * m.size, what, hint)
    kept = rows.any(axis=1)
    if _whole(per_channel[kept], (0, 2)):
        return "filter+channel"
    gm = m.reshape(g.groups, g.rows, g.cols)
    if _whole(gm, (0, 1)):
        return "column"
    gk = kept.reshape(g.groups, g.rows)
    cols_kept = gm[gk]
    if len(cols_kept) and _whole(cols_kept, (0,)):
        return "filter+column"
    if isinstance(layer, Conv2d) and per_channel.shape[2] > 1 and _whole(per_channel, (2,)):
        return "kernel"
    nm = _nm(gm.reshape(-1, g.cols))
    if nm:
        return nm
    if isinstance(layer, Conv2d):
        by_channel = np.moveaxis(m, 1, -1).reshape(-1, m.shape[1])
        nm = _nm(by_channel)
        if nm:
            return f"{nm} (channels)"
    return _blocks(gm) or "non-structured"
