"""Closed forms: storage bits of every format from its counts, and expected counts
for an i.i.d. mask of density ``d``.

All sizes are bits; ``groups`` matrices of ``rows x cols`` each. Which formula a
format uses is declared with the format (:mod:`.builtin`); ``expected_format_bits``
and ``EXPECTED_FORMATS`` are kept importable from here and come from the registry.
"""

from __future__ import annotations

import math

import numpy as np

from simulator.formats.stats import expected_format_bits as expected_format_bits
from simulator.formats.stats import expected_formats
from simulator.units import ceil_log2


def pointer_width(entries: int) -> int:
    """Default pointer width: ceil(log2(entries + 1)) bits, enough to address every entry."""
    return ceil_log2(int(entries) + 1)


def fillers_from_gaps(gap_hist: np.ndarray, index_bits: int) -> int:
    """Filler entries of relative indexing from a histogram of zero-run lengths:
    a run of ``k`` zeros before an entry costs ``floor(k / 2**index_bits)`` fillers."""
    k = np.arange(gap_hist.size, dtype=np.int64)
    return int((gap_hist * (k >> index_bits)).sum())


def dense_bits(weights: int, weight_bits: int) -> int:
    """Every weight stored."""
    return weights * weight_bits


def compressed_bits(
    *,
    nnz: int,
    fillers: int,
    groups: int,
    lines: int,
    weight_bits: int,
    index_bits: int,
    pointer_bits: int,
) -> int:
    """CSR/CSC: ``(nnz + fillers) * (value + index) + groups * (lines + 1) * pointer``.

    Absolute indices: ``fillers = 0`` and ``index_bits = ceil(log2 line length)``;
    relative indices: ``index_bits`` given."""
    return (nnz + fillers) * (weight_bits + index_bits) + groups * (lines + 1) * pointer_bits


def coo_bits(*, nnz: int, rows: int, cols: int, weight_bits: int) -> int:
    """Each kept value with its row and column index."""
    return nnz * (weight_bits + ceil_log2(rows) + ceil_log2(cols))


def bitmap_bits(*, weights: int, nnz: int, weight_bits: int) -> int:
    """One bit per weight plus the kept values."""
    return weights + nnz * weight_bits


def nm_bits(*, groups: int, rows: int, cols: int, n: int, m: int, weight_bits: int) -> int:
    """N:M: N slots (value + ceil(log2 M)-bit position) per group of M along each row;
    a row is padded to a multiple of M."""
    return groups * rows * (-(-cols // m)) * n * (weight_bits + ceil_log2(m))


def bsr_bits(
    *,
    blocks: int,
    groups: int,
    rows: int,
    cols: int,
    block_rows: int,
    block_cols: int,
    weight_bits: int,
    pointer_bits: int,
) -> int:
    """Block-CSR: each nonzero tile stores ``block_rows * block_cols`` values and a
    block-column index; one pointer per block-row plus one, per group."""
    n_bcols = -(-cols // block_cols)
    n_brows = -(-rows // block_rows)
    return (
        blocks * (block_rows * block_cols * weight_bits + ceil_log2(n_bcols))
        + groups * (n_brows + 1) * pointer_bits
    )


def padded_entries(tile_nnz: np.ndarray, align: int) -> int:
    """Entries of tiles whose kept values are padded with zeros to a multiple of
    ``align``: sum of ceil(n / align) * align."""
    n = np.asarray(tile_nnz, dtype=np.int64)
    return int(((n + align - 1) // align * align).sum())


def tiled_csl_bits(
    *,
    tile_nnz: np.ndarray,
    groups: int,
    tiles: int,
    align: int,
    weight_bits: int,
    location_bits: int,
    offset_bits: int,
) -> int:
    """Flash-LLM tiled-CSL: each tile's kept values, padded to a multiple of ``align``
    entries, as (value, in-tile location) pairs, plus ``tiles + 2`` tile offsets per
    group (``tiles`` per group)."""
    entries = padded_entries(tile_nnz, align)
    return entries * (weight_bits + location_bits) + groups * (tiles + 2) * offset_bits


def tca_bme_bits(
    *,
    global_nnz: np.ndarray,
    groups: int,
    global_tiles: int,
    tile_weights: int,
    median_per_global: int,
    align: int,
    weight_bits: int,
    offset_bits: int,
) -> int:
    """SpInfer TCA-BME: the kept values of each global tile padded to a multiple of
    ``align``, one presence bit per weight of every (padded) global tile of
    ``tile_weights`` weights (the 64-bit bitmaps of its small tiles), one offset per
    median tile, ``global_tiles + 1`` global offsets and one max-count word per
    group."""
    entries = padded_entries(global_nnz, align)
    offsets = groups * (global_tiles * median_per_global + global_tiles + 2)
    return entries * weight_bits + groups * global_tiles * tile_weights + offsets * offset_bits


def expected_tile_padding(
    *,
    groups: int,
    rows: int,
    cols: int,
    tile_rows: int,
    tile_cols: int,
    density: float,
    align: int,
) -> float:
    """Expected zero entries that pad each tile's kept values (i.i.d. at ``density``)
    to a multiple of ``align``: per tile of ``s`` weights (border tiles smaller), the
    exact sum over the binomial(s, density) count ``n`` of ``(-n) mod align``."""
    from scipy.stats import binom  # lazily: scipy is slow to import

    total = 0.0
    for h, nh in _tile_sizes(rows, tile_rows):
        for w, nw in _tile_sizes(cols, tile_cols):
            size = h * w
            n = np.arange(size + 1)
            pmf = binom.pmf(n, size, density)
            total += nh * nw * float((pmf * ((-n) % align)).sum())
    return groups * total


def survivor_list_bits(kept: int, total: int) -> int:
    """Bits to name ``kept`` survivors out of ``total``: nothing if all survive, else
    the cheaper of an index list and a bitmap."""
    return 0 if kept == total else min(kept * ceil_log2(total), total)


def survivor_lists_bits(
    kept_rows: np.ndarray, kept_cols: np.ndarray, *, rows: int, cols: int
) -> int:
    """Survivor lists of a compact matrix: which of the ``len(kept_rows)`` groups
    survive, then within each surviving group which rows and which columns."""
    live = kept_rows > 0

    def lists(kept: np.ndarray, total: int) -> int:  # survivor_list_bits of each group
        kept = kept[live].astype(np.int64)
        return int(np.where(kept == total, 0, np.minimum(kept * ceil_log2(total), total)).sum())

    return (
        survivor_list_bits(int(live.sum()), len(kept_rows))
        + lists(kept_rows, rows)
        + lists(kept_cols, cols)
    )


def compact_bits(
    *, kept_rows: np.ndarray, kept_cols: np.ndarray, rows: int, cols: int, weight_bits: int
) -> int:
    """Compact (filter, channel, column pruning): per group the dense submatrix of its
    ``kept_rows x kept_cols`` survivors, plus the survivor lists."""
    entries = int((kept_rows * kept_cols).sum())
    return entries * weight_bits + survivor_lists_bits(kept_rows, kept_cols, rows=rows, cols=cols)


# --- expected values for an i.i.d. (Bernoulli) mask of density d -------------------


def filler_q(density: float, index_bits: int) -> float:
    """q = (1 - d)**(2**b): probability that a given span of 2**b weights is all zero."""
    return (1.0 - density) ** (2**index_bits)


def fillers_per_nonzero_limit(density: float, index_bits: int) -> float:
    """Fillers per kept entry on infinitely long lines: q / (1 - q)."""
    if density <= 0:
        return math.inf
    q = filler_q(density, index_bits)
    return q / (1.0 - q)


def expected_line_fillers(length: int, density: float, index_bits: int) -> float:
    """Expected filler entries on one line of ``length`` i.i.d. weights, exactly:

    d * sum_{k=1}^{floor((L-1)/B)} q**k * (L - k*B), with B = 2**b and q = (1-d)**B
    (a kept entry at position j is preceded by at least k*B zeros with probability
    q**k when k*B <= j; runs are cut at the line start; trailing zeros cost nothing).
    """
    span = 2**index_bits
    kmax = (length - 1) // span
    if kmax < 1 or density <= 0:
        return 0.0
    q = filler_q(density, index_bits)
    if q < 0.999 and kmax > 8:
        # closed forms of sum q^k and sum k q^k for k = 1..K
        qk = q**kmax
        s1 = q * (1.0 - qk) / (1.0 - q)
        s2 = q * (1.0 - (kmax + 1) * qk + kmax * qk * q) / (1.0 - q) ** 2
        return float(density * (length * s1 - span * s2))
    k = np.arange(1, kmax + 1, dtype=np.float64)
    return float(density * np.sum(q**k * (length - k * span)))


def expected_nonzero_blocks(
    *, groups: int, rows: int, cols: int, block_rows: int, block_cols: int, density: float
) -> float:
    """Expected tiles holding a kept entry (border tiles are smaller)."""
    total = 0.0
    for h, nh in _tile_sizes(rows, block_rows):
        for w, nw in _tile_sizes(cols, block_cols):
            total += nh * nw * (1.0 - (1.0 - density) ** (h * w))
    return groups * total


def _tile_sizes(n: int, b: int) -> list[tuple[int, int]]:
    full, rest = divmod(n, b)
    return [(b, full)] + ([(rest, 1)] if rest else [])


def __getattr__(name: str):
    # EXPECTED_FORMATS: the formats that declare an expected size, read from the
    # registry when asked (kept importable here; see stats.expected_formats)
    if name == "EXPECTED_FORMATS":
        return expected_formats()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
