"""The actual arrays of each format for a small 2-D weight matrix (zeros are pruned).

Made for tests and documentation, not for speed: :func:`encode` walks the matrix
in plain Python. The counts in :mod:`simulator.formats.stats` must agree with the
lengths of these arrays.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulator.errors import FormatError


@dataclass(frozen=True, kw_only=True, eq=False)
class Encoded:
    """A matrix in one format. ``indices`` are relative (zero runs) for ``*-rel``,
    absolute otherwise; ``pointers`` start each line (length lines + 1); ``extra``
    holds the bitmap (``bitmap``), row indices (``coo``) or N:M positions."""

    format: str
    values: np.ndarray
    indices: np.ndarray
    pointers: np.ndarray
    extra: np.ndarray


def _rel_line(line: np.ndarray, index_bits: int) -> tuple[list, list]:
    vals, idx = [], []
    limit = 2**index_bits - 1
    prev = -1
    for j in np.flatnonzero(line):
        gap = int(j) - prev - 1
        while gap > limit:
            vals.append(0)
            idx.append(limit)
            gap -= limit + 1
        vals.append(line[j])
        idx.append(gap)
        prev = int(j)
    return vals, idx


def encode(
    matrix: np.ndarray,
    fmt: str,
    *,
    index_bits: int = 4,
    block: tuple[int, int] = (4, 4),
    nm: tuple[int, int] = (2, 4),
) -> Encoded:
    """Encode a 2-D matrix in ``fmt`` (csr, csc, csr-rel, csc-rel, coo, bitmap, nm, bsr).

    EIE's example: the column ``[0, 0, 1, 2, 0 x 18, 3]`` in ``csc-rel`` with 4-bit
    indices gives values ``[1, 2, 0, 3]`` and indices ``[2, 0, 15, 2]``.
    """
    a = np.asarray(matrix)
    if a.ndim != 2:
        raise FormatError(f"encode needs a 2-D matrix, got shape {a.shape}")
    empty = np.zeros(0, dtype=np.int64)
    if fmt in ("csr", "csc", "csr-rel", "csc-rel"):
        lines = a if fmt.startswith("csr") else a.T
        vals, idx, ptr = [], [], [0]
        for line in lines:
            if fmt.endswith("-rel"):
                v, i = _rel_line(line, index_bits)
            else:
                i = list(np.flatnonzero(line))
                v = list(line[i])
            vals += v
            idx += i
            ptr.append(len(vals))
        return Encoded(
            format=fmt,
            values=np.array(vals, dtype=a.dtype),
            indices=np.array(idx, dtype=np.int64),
            pointers=np.array(ptr, np.int64),
            extra=empty,
        )
    if fmt == "coo":
        r, c = np.nonzero(a)
        return Encoded(
            format=fmt,
            values=a[r, c],
            indices=c.astype(np.int64),
            pointers=empty,
            extra=r.astype(np.int64),
        )
    if fmt == "bitmap":
        return Encoded(
            format=fmt,
            values=a[a != 0],
            indices=empty,
            pointers=empty,
            extra=(a != 0).astype(np.uint8).ravel(),
        )
    if fmt == "nm":
        n, m = nm
        rows, cols = a.shape
        ngrp = -(-cols // m)
        padded = np.zeros((rows, ngrp * m), dtype=a.dtype)
        padded[:, :cols] = a
        vals, pos = [], []
        for row in padded.reshape(rows, ngrp, m):
            for grp in row:
                kept = list(np.flatnonzero(grp))
                if len(kept) > n:
                    raise FormatError(f"a group of {m} keeps {len(kept)} > {n}: not {n}:{m}")
                free = [p for p in range(m) if p not in kept]
                slots = sorted(kept + free[: n - len(kept)])
                vals += [grp[p] for p in slots]
                pos += slots
        return Encoded(
            format=fmt,
            values=np.array(vals, dtype=a.dtype),
            indices=empty,
            pointers=empty,
            extra=np.array(pos, dtype=np.int64),
        )
    if fmt == "bsr":
        br, bc = block
        rows, cols = a.shape
        nbr, nbc = -(-rows // br), -(-cols // bc)
        padded = np.zeros((nbr * br, nbc * bc), dtype=a.dtype)
        padded[:rows, :cols] = a
        vals, idx, ptr = [], [], [0]
        for bi in range(nbr):
            for bj in range(nbc):
                tile = padded[bi * br : (bi + 1) * br, bj * bc : (bj + 1) * bc]
                if tile.any():
                    vals += list(tile.ravel())
                    idx.append(bj)
            ptr.append(len(idx))
        return Encoded(
            format=fmt,
            values=np.array(vals, dtype=a.dtype),
            indices=np.array(idx, np.int64),
            pointers=np.array(ptr, np.int64),
            extra=empty,
        )
    raise FormatError(f"encode does not know format {fmt!r}")
