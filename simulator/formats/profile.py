"""Mask statistics that do not depend on the format parameters or the hardware.

A :class:`MaskProfile` holds a layer's mask and computes, once per axis and on
first use, what every format (at any index width) and the PE-load models need:
per-row and per-column kept counts, fillers and the histograms of zero runs.

Three forms hold no byte per weight, with the same counts: an all-kept mask
(:func:`all_kept_profile`), a mask of whole rows and columns kept from its two
factors (:func:`factored_profile`), and a mask kept bit-packed
(:func:`packed_profile`). Their ``gemm`` is built when an engine asks for it and not
kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from simulator import kernels
from simulator.errors import MaskError, shown
from simulator.layers import Layer
from simulator.masks import check_mask, gemm_view
from simulator.memory import require_bytes

AXES = ("row", "col")


@dataclass(frozen=True, kw_only=True, eq=False)
class MaskProfile:
    """One layer's mask in its GEMM view (``groups`` matrices ``rows x cols``) and the
    counts taken from it, computed on first use and kept.

    Per-line arrays are group-major: ``row_nnz`` has ``groups * rows`` entries,
    ``col_nnz`` ``groups * cols``. ``row_gap_hist[k]`` counts kept entries preceded
    within their row by exactly ``k`` zeros (``col_gap_hist`` likewise along
    columns). ``gemm`` is the mask as C-contiguous uint8 ``(groups, rows, cols)``.
    """

    layer_name: str
    gemm: np.ndarray
    _cache: dict = field(default_factory=dict, repr=False)

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(groups, rows, cols)``; forms that hold no ``gemm`` say it from what they
        hold."""
        return self.gemm.shape

    @property
    def groups(self) -> int:
        return self.shape[0]

    @property
    def rows(self) -> int:
        return self.shape[1]

    @property
    def cols(self) -> int:
        return self.shape[2]

    @property
    def weights(self) -> int:
        g, r, c = self.shape
        return g * r * c

    @property
    def nnz(self) -> int:
        known = self._cache.get("nnz")
        if known is None:
            known = self._cache["nnz"] = int(self.line_nnz("row").sum())
        return known

    @property
    def density(self) -> float:
        return self.nnz / self.weights if self.weights else 0.0

    def _pass(self, axis: str, index_bits: int) -> None:
        """One kernel pass along an axis; keeps the counts and the fillers at ``index_bits``."""
        if axis not in AXES:
            raise ValueError(f"axis must be one of {AXES}, got {axis!r}")
        line_nnz, fillers, hist = kernels.line_stats(self.gemm, axis == "col", index_bits)
        self._cache[(axis, "counts")] = (line_nnz, hist)
        self._cache[(axis, index_bits)] = fillers

    def _counts(self, axis: str) -> tuple[np.ndarray, np.ndarray]:
        if (axis, "counts") not in self._cache:
            self._pass(axis, 0)
        return self._cache[(axis, "counts")]

    def group_max(self, size: int) -> int:
        """Most kept entries in one group of ``size`` consecutive columns of a row
        (groups start at column 0; the last one may be short)."""
        key = ("group_max", int(size))
        if key not in self._cache:
            self._cache[key] = int(kernels.group_max(self.gemm, np.int64(size)))
        return self._cache[key]

    def line_nnz(self, axis: str) -> np.ndarray:
        """Kept entries per row (``axis="row"``) or per column."""
        return self._counts(axis)[0]

    def gap_hist(self, axis: str) -> np.ndarray:
        """Histogram of zero-run lengths before kept entries along an axis."""
        return self._counts(axis)[1]

    def line_fillers(self, axis: str, index_bits: int) -> np.ndarray:
        """Relative-index filler entries per line at ``index_bits``."""
        key = (axis, int(index_bits))
        if key not in self._cache:
            self._pass(axis, int(index_bits))
        return self._cache[key]

    @property
    def row_nnz(self) -> np.ndarray:
        return self.line_nnz("row")

    @property
    def col_nnz(self) -> np.ndarray:
        return self.line_nnz("col")

    @property
    def row_gap_hist(self) -> np.ndarray:
        return self.gap_hist("row")

    @property
    def col_gap_hist(self) -> np.ndarray:
        return self.gap_hist("col")

    def lines(self, axis: str) -> int:
        """Lines per group along an axis (rows for CSR, columns for CSC)."""
        return self.rows if axis == "row" else self.cols

    def line_length(self, axis: str) -> int:
        """Entries per line: columns for rows, rows for columns."""
        return self.cols if axis == "row" else self.rows

    def pe_column_entries(
        self, pes: int, index_bits: int, by_column: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        """Stored entries of each PE's slice of each column when rows are interleaved
        over ``pes`` PEs, each slice in relative-index CSC at ``index_bits``: see
        :func:`simulator.kernels.pe_column_entries` (``(PEs, columns)``, or ``(columns,
        PEs)`` with ``by_column``), and each column's kept entries."""
        return kernels.pe_column_entries(
            self._packed(),
            np.int64(self.cols),
            np.int64(pes),
            np.int64(index_bits),
            self.line_nnz("row"),
            by_column,
        )

    def _packed(self) -> np.ndarray:
        """The mask bit-packed along its rows."""
        return np.packbits(self.gemm, axis=-1)

    def kept_rows(self) -> np.ndarray:
        """Per group, rows with at least one kept entry: ``(groups,)`` int64 (read-only,
        computed once)."""
        return self._kept("row")

    def kept_cols(self) -> np.ndarray:
        """Per group, columns with at least one kept entry (read-only, computed once)."""
        return self._kept("col")

    def _kept(self, axis: str) -> np.ndarray:
        key = (axis, "kept")
        known = self._cache.get(key)
        if known is None:
            known = (self.line_nnz(axis).reshape(self.groups, self.lines(axis)) > 0).sum(1)
            known.setflags(write=False)
            self._cache[key] = known
        return known


def as_gemm_uint8(layer: Layer, mask: np.ndarray) -> np.ndarray:
    """A checked mask as C-contiguous uint8 ``(groups, rows, cols)``; no copy when the
    mask is already a contiguous bool or uint8 array."""
    m = check_mask(layer, mask)
    g = gemm_view(layer, m)
    if g.dtype == bool:
        g = g.view(np.uint8)
    return np.ascontiguousarray(g, dtype=np.uint8)


def profile_gemm(gemm: np.ndarray, layer_name: str = "matrix") -> MaskProfile:
    """Profile a ``(groups, rows, cols)`` uint8 array (nonzero = kept)."""
    if gemm.ndim != 3 or gemm.dtype != np.uint8 or not gemm.flags.c_contiguous:
        raise MaskError(f"{layer_name}: expected a C-contiguous uint8 (groups, rows, cols) array")
    return MaskProfile(layer_name=layer_name, gemm=gemm)


def profile_matrix(matrix: np.ndarray, name: str = "matrix") -> MaskProfile:
    """Profile a 2-D matrix (nonzero = kept) as one group."""
    m = np.asarray(matrix)
    if m.ndim != 2:
        raise MaskError(f"{name}: expected a 2-D matrix, got shape {m.shape}")
    return profile_gemm(np.ascontiguousarray(m != 0, dtype=np.uint8)[None], name)


def profile_mask(
    layer: Layer, mask: np.ndarray, *, nm: tuple[int, int] | None = None
) -> MaskProfile:
    """Check a layer's mask and profile it (one kernel pass). ``nm``: ``(n, m)`` of an
    N:M mask made to keep ``n`` of every ``m`` (a short last group as many as it has,
    up to ``n``), whose group maximum and kept entries are then known without
    counting."""
    profile = profile_gemm(as_gemm_uint8(layer, mask), layer.name)
    if nm is not None:
        _record_nm(profile, nm)
    return profile


class _DrawnProfile(MaskProfile):
    """A generated mask whose counts are known before it is drawn (an N:M mask made
    to keep ``n`` of every ``m``: its kept entries and group maximum): ``gemm`` is drawn
    from its seeded generator when first used (by an engine that reads the pattern)
    and kept; engines that need only the counts never draw it."""

    def __init__(self, *, layer_name: str, shape: tuple[int, int, int], draw):
        object.__setattr__(self, "layer_name", layer_name)
        object.__setattr__(self, "_shape", tuple(int(x) for x in shape))
        object.__setattr__(self, "_draw", draw)
        object.__setattr__(self, "_cache", {})

    def __repr__(self) -> str:
        return f"_DrawnProfile(layer_name={self.layer_name!r}, shape={self.shape})"

    @property
    def shape(self) -> tuple[int, int, int]:
        return self._shape

    @property
    def gemm(self) -> np.ndarray:  # type: ignore[override]
        """The mask as C-contiguous uint8 ``(groups, rows, cols)``, drawn once."""
        known = self._cache.get("gemm")
        if known is None:
            known = self._cache["gemm"] = self._draw()
            if known.shape != self._shape or known.dtype != np.uint8:
                raise MaskError(f"{self.layer_name}: drawn mask of shape {known.shape}")
        return known


def drawn_nm_profile(layer: Layer, nm: tuple[int, int], draw) -> MaskProfile:
    """The profile of an N:M mask of ``layer`` made to keep ``n`` of every ``m`` along
    its rows (a short last group as many as it has, up to ``n``), drawn by ``draw()``
    (its checked uint8 GEMM view, :func:`as_gemm_uint8`) only when an engine reads its
    pattern: the kept entries and group maximum are known without it (the same
    figures :func:`profile_mask` records with ``nm``)."""
    g = layer.gemm
    profile = _DrawnProfile(layer_name=layer.name, shape=(g.groups, g.rows, g.cols), draw=draw)
    _record_nm(profile, nm)
    return profile


def _record_nm(profile: MaskProfile, nm: tuple[int, int]) -> None:
    """The group maximum and kept entries of an N:M mask made to keep ``n`` of every
    ``m``, into the profile's counts."""
    n, m = int(nm[0]), int(nm[1])
    cols = profile.cols
    profile._cache[("group_max", m)] = min(n, m, cols)
    per_row = (cols // m) * min(n, m) + min(n, cols % m)
    profile._cache["nnz"] = profile.groups * profile.rows * per_row


class _AllKeptProfile(MaskProfile):
    """A mask that keeps everything, with closed-form counts: its ``gemm`` is a
    read-only broadcast view of one byte, so no mask-sized array is ever made."""

    def _pass(self, axis: str, index_bits: int) -> None:
        if axis not in AXES:
            raise ValueError(f"axis must be one of {AXES}, got {axis!r}")
        lines, length = self.groups * self.lines(axis), self.line_length(axis)
        hist = np.zeros(max(length, 1), dtype=np.int64)
        hist[0] = lines * length  # every entry kept, none after a zero
        self._cache[(axis, "counts")] = (np.full(lines, length, dtype=np.int64), hist)
        self._cache[(axis, index_bits)] = np.zeros(lines, dtype=np.int64)

    def pe_column_entries(
        self, pes: int, index_bits: int, by_column: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        rows = np.ones((self.groups, self.rows), dtype=np.uint8)
        cols = np.ones((self.groups, self.cols), dtype=np.uint8)
        return kernels.factored_pe_entries(
            rows, cols, np.int64(pes), np.int64(index_bits), by_column
        )


def all_kept_profile(groups: int, rows: int, cols: int, name: str = "matrix") -> MaskProfile:
    """The profile of an all-kept ``(groups, rows, cols)`` operand (a weightless
    layer's activations), without materialising it."""
    one = np.ones((1, 1, 1), dtype=np.uint8)
    return _AllKeptProfile(layer_name=name, gemm=np.broadcast_to(one, (groups, rows, cols)))


class _FactoredProfile(MaskProfile):
    """A mask that keeps whole rows and whole columns of each group's matrix: entry
    ``(g, i, j)`` is kept when ``row_kept[g, i]`` and ``col_kept[g, j]`` (filter, channel
    and column pruning, filter removals cascaded or not). Its counts come from the two
    factors (:func:`simulator.kernels.factored_line_stats` and
    :func:`simulator.kernels.factored_pe_entries`: the same integers as a pass over the
    whole mask), and ``gemm`` is built from them on each use and not kept, so no
    mask-sized array outlives its use."""

    def __init__(self, *, layer_name: str, row_kept: np.ndarray, col_kept: np.ndarray):
        g = row_kept.shape[0]
        if row_kept.ndim != 2 or col_kept.ndim != 2 or col_kept.shape[0] != g:
            raise MaskError(f"{layer_name}: factors must be (groups, rows) and (groups, cols)")
        rk = np.ascontiguousarray(row_kept, dtype=bool)
        ck = np.ascontiguousarray(col_kept, dtype=bool)
        rk.setflags(write=False)
        ck.setflags(write=False)
        object.__setattr__(self, "layer_name", layer_name)
        object.__setattr__(self, "row_kept", rk)
        object.__setattr__(self, "col_kept", ck)
        object.__setattr__(self, "_cache", {})

    def __repr__(self) -> str:
        return f"_FactoredProfile(layer_name={self.layer_name!r}, shape={self.shape})"

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.row_kept.shape[0], self.row_kept.shape[1], self.col_kept.shape[1])

    @property
    def gemm(self) -> np.ndarray:  # type: ignore[override]
        """The mask as C-contiguous uint8 ``(groups, rows, cols)``, built anew."""
        require_bytes(self.weights, f"the mask of layer {shown(self.layer_name)}")
        m = self.row_kept[:, :, None] & self.col_kept[:, None, :]
        return m.view(np.uint8)

    def _pass(self, axis: str, index_bits: int) -> None:
        if axis not in AXES:
            raise ValueError(f"axis must be one of {AXES}, got {axis!r}")
        # lines along ``axis`` are kept by ``own``; each kept one holds ``other``'s pattern
        own, other = (
            (self.row_kept, self.col_kept) if axis == "row" else (self.col_kept, self.row_kept)
        )
        line_nnz, fillers, hist = kernels.factored_line_stats(
            own.astype(np.uint8), other.astype(np.uint8), np.int64(index_bits)
        )
        self._cache[(axis, "counts")] = (line_nnz, hist)
        self._cache[(axis, index_bits)] = fillers

    def pe_column_entries(
        self, pes: int, index_bits: int, by_column: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        return kernels.factored_pe_entries(
            self.row_kept.astype(np.uint8),
            self.col_kept.astype(np.uint8),
            np.int64(pes),
            np.int64(index_bits),
            by_column,
        )


def factored_profile(
    row_kept: np.ndarray, col_kept: np.ndarray, name: str = "matrix"
) -> MaskProfile:
    """The profile of the mask ``row_kept[g, i] and col_kept[g, j]`` (bool factors
    ``(groups, rows)`` and ``(groups, cols)``), without building it: whole filters
    (rows) and input channels or columns (columns) pruned."""
    return _FactoredProfile(layer_name=name, row_kept=row_kept, col_kept=col_kept)


class _PackedProfile(MaskProfile):
    """A mask kept bit-packed (one bit per weight, rows padded to whole bytes: an
    eighth of the memory) and unpacked on each use of ``gemm``, not kept: profiles of
    every rate of a network can then be held at once. Its row counts are taken when
    it is packed, from the mask as given (see :func:`packed_profile`)."""

    def __init__(self, *, layer_name: str, packed: np.ndarray, cols: int):
        object.__setattr__(self, "layer_name", layer_name)
        object.__setattr__(self, "packed", packed)
        object.__setattr__(self, "_cols", int(cols))
        object.__setattr__(self, "_cache", {})

    def __repr__(self) -> str:
        return f"_PackedProfile(layer_name={self.layer_name!r}, shape={self.shape})"

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.packed.shape[0], self.packed.shape[1], self._cols)

    @property
    def gemm(self) -> np.ndarray:  # type: ignore[override]
        """The mask as C-contiguous uint8 ``(groups, rows, cols)``, unpacked anew."""
        require_bytes(self.weights, f"the mask of layer {shown(self.layer_name)}")
        return np.unpackbits(self.packed, axis=-1, count=self._cols)

    def _packed(self) -> np.ndarray:
        return self.packed


def packed_profile(layer: Layer, mask: np.ndarray) -> MaskProfile:
    """:func:`profile_mask`, the mask kept bit-packed: its row counts (kept entries,
    zero-run histogram) are taken now, from ``mask``; a later use of the profile's
    ``gemm`` unpacks it."""
    gemm = as_gemm_uint8(layer, mask)
    packed = np.packbits(gemm, axis=-1)
    profile = _PackedProfile(layer_name=layer.name, packed=packed, cols=gemm.shape[2])
    line_nnz, fillers, hist = kernels.line_stats(gemm, False, 0)
    profile._cache[("row", "counts")] = (line_nnz, hist)
    profile._cache[("row", 0)] = fillers
    return profile
