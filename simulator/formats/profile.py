"""Mask statistics that do not depend on the format parameters or the hardware.

:func:`profile_mask` runs one kernel pass over a layer's mask and keeps what every
format (at any index width) and the later PE-load models need: per-row and
per-column kept counts and the histograms of zero runs along both axes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulator import kernels
from simulator.errors import MaskError
from simulator.layers import Layer
from simulator.masks import check_mask, gemm_view

AXES = ("row", "col")


@dataclass(frozen=True, kw_only=True, eq=False)
class MaskProfile:
    """Counts of one layer's mask in its GEMM view (``groups`` matrices ``rows x cols``).

    ``row_nnz`` has ``groups * rows`` entries (group-major), ``col_nnz`` has
    ``groups * cols``; ``row_gap_hist[k]`` counts kept entries preceded within their
    row by exactly ``k`` zeros (``col_gap_hist`` likewise along columns). ``gemm``
    is the mask itself as C-contiguous uint8 ``(groups, rows, cols)``.
    """

    layer_name: str
    groups: int
    rows: int
    cols: int
    nnz: int
    row_nnz: np.ndarray
    col_nnz: np.ndarray
    row_gap_hist: np.ndarray
    col_gap_hist: np.ndarray
    gemm: np.ndarray

    @property
    def weights(self) -> int:
        return self.groups * self.rows * self.cols

    @property
    def density(self) -> float:
        return self.nnz / self.weights

    def line_nnz(self, axis: str) -> np.ndarray:
        """Kept entries per row (``axis="row"``) or per column."""
        return self.row_nnz if axis == "row" else self.col_nnz

    def gap_hist(self, axis: str) -> np.ndarray:
        return self.row_gap_hist if axis == "row" else self.col_gap_hist

    def lines(self, axis: str) -> int:
        """Lines per group along an axis (rows for CSR, columns for CSC)."""
        return self.rows if axis == "row" else self.cols

    def line_length(self, axis: str) -> int:
        """Entries per line: columns for rows, rows for columns."""
        return self.cols if axis == "row" else self.rows

    def line_fillers(self, axis: str, index_bits: int) -> np.ndarray:
        """Relative-index filler entries per line at ``index_bits``."""
        return kernels.line_fillers(self.gemm, int(index_bits), axis == "col")

    def kept_rows(self) -> np.ndarray:
        """Per group, rows with at least one kept entry: ``(groups,)`` int64."""
        return (self.row_nnz.reshape(self.groups, self.rows) > 0).sum(1)

    def kept_cols(self) -> np.ndarray:
        return (self.col_nnz.reshape(self.groups, self.cols) > 0).sum(1)


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
    row_nnz, col_nnz, rgh, cgh = kernels.line_profile(gemm)
    groups, rows, cols = gemm.shape
    return MaskProfile(
        layer_name=layer_name, groups=groups, rows=rows, cols=cols, nnz=int(row_nnz.sum()),
        row_nnz=row_nnz, col_nnz=col_nnz, row_gap_hist=rgh, col_gap_hist=cgh, gemm=gemm,
    )


def profile_matrix(matrix: np.ndarray, name: str = "matrix") -> MaskProfile:
    """Profile a 2-D matrix (nonzero = kept) as one group."""
    m = np.asarray(matrix)
    if m.ndim != 2:
        raise MaskError(f"{name}: expected a 2-D matrix, got shape {m.shape}")
    return profile_gemm(np.ascontiguousarray(m != 0, dtype=np.uint8)[None], name)


def profile_mask(layer: Layer, mask: np.ndarray) -> MaskProfile:
    """Check a layer's mask and profile it (one kernel pass)."""
    return profile_gemm(as_gemm_uint8(layer, mask), layer.name)
