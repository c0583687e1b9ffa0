"""Loop-nest mapping of a dense GEMM on a systolic array with on-chip buffers
(``compute.dram_model: mapped``).

Per group, a layer is the GEMM ``O[M, N] += W[M, K] · I[K, N]``: M filters
(``GemmView.rows``), K the reduction (C/g·R·S), N the outputs (batch·P·Q). The
mapping tiles the three dimensions (tiles ``Mt, Kt, Nt``) and orders the three tile
loops (``m, n, k``; six orders); each innermost iteration runs one
``Mt x Kt x Nt`` GEMM tile on the array, from tiles held in the on-chip buffer(s).

**Space** (:func:`tile_candidates`). For a dimension D mapped onto an array side of
``a`` PEs (ws: K on rows, M on columns; os: N, M; is: K, N) the tiles are the
multiples of ``a`` up to D when there are at most :data:`EXHAUSTIVE` of them, else
``a·2^i`` and the equal splits ``ceil(D/j)`` rounded up to a multiple of ``a``
(j = 1..16); the streamed dimension uses ``a = 1``; everything capped at D, D itself
always included. With a convolution's :class:`Window`, N is tiled as whole images,
bands of whole output rows or pieces of one row (from the same rule over the images,
P and Q). The search is exhaustive over that space and the six orders, one numba
kernel (:func:`simulator.kernels.map_search`, about 1,000 points per layer), memoised
per GEMM shape; a larger Nt never costs more, so only the largest that fits is kept
for each (Mt, Kt).

**Fit.** The tiles held on chip are ``Mt·Kt`` weights at the weight width, the inputs
a (k, n) tile fetches (below) at the activation width and ``Mt·Nt`` outputs at the
partial-sum width
(``psum_bits``, 32 unless given), one copy each (no double buffering). They must fit
one shared buffer, or each its own buffer when the profile gives separate ifmap,
filter and ofmap sizes. When no tile fits, the smallest tiles are used and
``fits`` is False.

**DRAM** (the standard analytical model, e.g. Timeloop/ZigZag's temporal reuse).
An operand's tile is (re)fetched whenever one of the loops that index it moves;
so the operand crosses from DRAM ``size x`` the product of the trip counts of the
loops that do *not* index it and sit outside its innermost indexing loop (loops
with one trip are ignored: they never move). Weights are indexed by m, k; inputs by
k, n; outputs by m, n. A (k, n) tile of a convolution fetches the inputs its
windows read, for every channel its K range touches, or its im2col columns where
those are fewer over a sweep; of a GEMM, its ``Kt·Nt`` elements. With
``on_chip`` the layer's inputs and outputs live in the buffer: neither crosses from
DRAM, and partial sums never spill. For outputs the only other loop is
k: when a k loop with several trips sits outside the innermost output loop, each
output tile is visited ``T_k`` times, and every visit but the last writes its
partial sums to DRAM (``psum_bits``) and every visit but the first reads them back;
otherwise partial sums stay on chip and each output is written once, at the
activation width.

**Buffer** (counts of elements). Every MAC operand delivery from the buffer to the
array: an operand is read ``size x`` the product, over the dimensions that do not
index it, of that dimension's fold count (the number of array-sized pieces of all
its tiles: ``(D // Dt)·ceil(Dt/a) + ceil((D % Dt)/a)``; for the streamed dimension
its tile trips). So the stationary operand is read once per fold it is loaded into
and a streamed one once per use. Outputs are written into the buffer once per
reduction fold (``psum_bits``) and read back for every one but the first. The search
ranks candidates by the objective, then DRAM bits, then buffer bits
(:func:`simulator.kernels.map_search`). Fills from
DRAM are buffer writes; drains to DRAM buffer reads. **Register file** (per PE):
the stationary operand is written once per buffer delivery and read once per MAC.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
from dataclasses import dataclass

import numpy as np

from simulator import kernels

ORDERS: tuple[tuple[str, str, str], ...] = tuple(itertools.permutations("mnk"))
"""The six loop orders, outermost first."""

_INSIDE = {d: np.array([[e in o[o.index(d) + 1 :] for e in "mkn"] for o in ORDERS]) for d in "mkn"}
"""Per loop d: which loops (m, k, n) sit inside it, in each of the six orders."""

_INSIDE_ALL = np.stack([_INSIDE[d] for d in "mkn"]).astype(np.int64)
""":data:`_INSIDE` as one int64 array ``[d, order, e]`` (m, k, n = 0, 1, 2)."""

OBJECTIVES = ("dram", "energy", "latency")
EXHAUSTIVE = 16
"""A dimension with at most this many array-sized multiples tries all of them."""
SPLITS = 16
PSUM_BITS = 32
"""Default partial-sum width (int32 or fp32 accumulators)."""

# GEMM dimensions mapped onto (array rows, array columns); the third is streamed
ARRAY_DIMS = {"ws": ("k", "m"), "os": ("n", "m"), "is": ("k", "n")}
STATIONARY = {"ws": "weights", "os": "outputs", "is": "inputs"}
INDEXED = {"weights": "mk", "inputs": "kn", "outputs": "mn"}


@dataclass(frozen=True, kw_only=True)
class OperandTraffic:
    """One operand's traffic under a mapping, whole layer (all groups): DRAM in bits,
    buffer and register file in elements."""

    operand: str
    dram_read_bits: float
    dram_write_bits: float
    buffer_reads: int
    buffer_writes: int
    regfile_reads: int = 0
    regfile_writes: int = 0


@dataclass(frozen=True, kw_only=True)
class LoopNest:
    """The chosen mapping of one layer: loop order (outermost first), tile sizes,
    and the traffic per operand (``weights``, ``inputs``, ``outputs``, ``psums``)."""

    dataflow: str
    array: tuple[int, int]
    groups: int
    dims: tuple[int, int, int]
    """(M, K, N) per group."""
    tiles: tuple[int, int, int]
    """(Mt, Kt, Nt)."""
    order: tuple[str, str, str]
    fits: bool
    objective: str
    weight_refetch: int
    input_refetch: int
    output_visits: int
    psum_bits: int
    weight_bits: float = 0.0
    """Stored bits per weight (metadata included)."""
    activation_bits: float = 0.0
    windowed: bool = False
    """Inputs counted as the convolution windows read them (else the im2col K x N view)."""
    activations_on_chip: bool = False
    """The layer's inputs and outputs stay in the buffer: no DRAM traffic for them."""
    score: tuple[float, ...] = ()
    """What the search ranked it by, whole layer: (objective, DRAM bits, buffer bits)."""
    traffic: tuple[OperandTraffic, ...]

    def operand(self, name: str) -> OperandTraffic:
        return next(t for t in self.traffic if t.operand == name)

    @property
    def dram_bits(self) -> float:
        return sum(t.dram_read_bits + t.dram_write_bits for t in self.traffic)

    def loop_nest(self, indent: bool = False) -> str:
        """``for k in 0..K step Kt: for m in ...: tile`` (one line, or indented lines)."""
        size = dict(zip("mkn", self.dims, strict=True))
        step = dict(zip("mkn", self.tiles, strict=True))
        loops = [f"for {d} in 0..{size[d]} step {step[d]}" for d in self.order]
        rows, cols = self.array
        mt, kt, nt = self.tiles
        body = f"gemm {mt}x{kt}x{nt} on {rows}x{cols} {self.dataflow}"
        if self.groups > 1:
            loops.insert(0, f"for group in 0..{self.groups}")
        if self.activations_on_chip:
            body += " (activations on chip)"
        if not indent:
            return ": ".join([*loops, body])
        lines = [" " * (2 * i) + loop + ":" for i, loop in enumerate(loops)]
        return "\n".join([*lines, " " * (2 * len(loops)) + body])


@functools.lru_cache(maxsize=4096)
def tile_candidates(dim: int, unit: int) -> np.ndarray:
    """The stated tile sizes of a dimension of ``dim`` mapped on ``unit`` PEs (int64,
    memoised: do not modify)."""
    dim, unit = int(dim), max(1, int(unit))
    if dim <= 0:
        raise ValueError(f"dimension {dim} must be positive")
    if -(-dim // unit) <= EXHAUSTIVE:
        vals = set(range(unit, dim + 1, unit))
    else:
        vals = {unit << i for i in range(dim.bit_length() + 1) if unit << i <= dim}
        for j in range(1, SPLITS + 1):
            split = -(-dim // j)
            vals.add(-(-split // unit) * unit)
    vals = {min(v, dim) for v in vals} | {dim}
    out = np.array(sorted(vals), dtype=np.int64)
    out.flags.writeable = False
    return out


def _folds(dim: int, tile: np.ndarray, unit: int) -> np.ndarray:
    """Array-sized pieces over all tiles of a dimension (tile trips when ``unit`` >= tile)."""
    full, rest = dim // tile, dim % tile
    return full * -(-tile // unit) + -(-rest // unit)


@dataclass(frozen=True, kw_only=True)
class Window:
    """The convolution behind a GEMM's K x N input view, per group: ``channels`` input
    channels of ``kernel`` (R, S) taps, K = channels·R·S in (channel, r, s) order; N =
    ``images``·P·Q outputs in raster order over ``output_hw`` (P, Q), read from inputs
    of ``input_hw`` (H, W, unpadded) at ``stride``, ``padding`` and ``dilation``."""

    channels: int
    kernel: tuple[int, int]
    input_hw: tuple[int, int]
    output_hw: tuple[int, int]
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    images: int = 1

    def touched(self, axis: int) -> np.ndarray:
        """Boolean (outputs x inputs) along one axis (0: rows, 1: columns): which input
        rows (columns) each output row (column) reads; padding is not an input."""
        out, size = self.output_hw[axis], self.input_hw[axis]
        taps = self.kernel[axis]
        pos = (
            np.arange(out)[:, None] * self.stride[axis]
            - self.padding[axis]
            + np.arange(taps)[None, :] * self.dilation[axis]
        )
        hit = np.zeros((out, size + 1), dtype=bool)
        np.put_along_axis(hit, np.where((pos >= 0) & (pos < size), pos, size), True, axis=1)
        return hit[:, :size]


@dataclass(frozen=True, kw_only=True)
class _Tiling:
    """Candidate tilings of one GEMM dimension (arrays over the candidates). ``tile``:
    the largest tile (elements of the dimension); ``trips``: tiles; ``folds``: array-
    sized pieces over all tiles. Input fetch, whose product over K and N gives the input
    elements one sweep over every (k, n) tile fetches as the windows read them:
    ``per_pass`` (K: channel visits, N: elements per channel) and ``per_tile`` (the same
    for the largest tile); for a plain dimension, its size and the tile."""

    dim: int
    tile: np.ndarray
    trips: np.ndarray
    folds: np.ndarray
    per_pass: np.ndarray
    per_tile: np.ndarray


def _plain(dim: int, tiles: np.ndarray, unit: int) -> _Tiling:
    """A dimension whose tiles fetch exactly their elements (M; K and N of a GEMM)."""
    return _Tiling(
        dim=dim,
        tile=tiles,
        trips=-(-dim // tiles),
        folds=_folds(dim, tiles, unit),
        per_pass=np.full(tiles.shape, dim, dtype=np.int64),
        per_tile=tiles,
    )


@functools.lru_cache(maxsize=4096)
def _k_window(dim: int, taps: int, candidates: tuple[int, ...], unit: int) -> _Tiling:
    """K = channels x taps: a K tile fetches the inputs of every channel it touches."""
    tiles = np.array(candidates, dtype=np.int64)
    visits, most = kernels.k_window_counts(np.int64(dim), np.int64(taps), tiles)
    base = _plain(dim, tiles, unit)
    return _Tiling(
        dim=dim,
        tile=tiles,
        trips=base.trips,
        folds=base.folds,
        per_pass=visits,
        per_tile=most,
    )


def _band_counts(hit: np.ndarray, sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each band size: (sum, max) over the bands of that many consecutive outputs
    (the last one shorter) of the inputs a band reads, given ``hit`` (outputs x
    inputs). Exact for any stride and dilation: an input is read by a band when the
    first output at or after the band's start that reads it lies inside the band."""
    n_out = hit.shape[0]
    sizes = np.asarray(sizes, dtype=np.int64)
    first = np.where(hit, np.arange(n_out)[:, None], n_out)
    first = np.minimum.accumulate(first[::-1], axis=0)[::-1]
    counts = -(-n_out // sizes)
    starts = np.concatenate([np.arange(0, n_out, s) for s in sizes.tolist()])
    ends = np.minimum(starts + np.repeat(sizes, counts), n_out)
    per = (first[starts] < ends[:, None]).sum(axis=1)
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]])
    return np.add.reduceat(per, offsets), np.maximum.reduceat(per, offsets)


@functools.lru_cache(maxsize=4096)
def _n_window(w: Window, candidates: tuple[int, ...], unit: int | None) -> _Tiling:
    """N = images x P x Q, tiled as whole images, bands of whole output rows, or bands
    of one row's columns; a tile fetches exactly the inputs its outputs read (the rows
    its band reads times the columns). ``candidates`` snap down to those shapes;
    ``unit`` None: N is streamed (folds are trips)."""
    b = w.images
    p, q = w.output_hw
    rows, cols = w.touched(0), w.touched(1)
    all_rows, all_cols = int(rows.any(axis=0).sum()), int(cols.any(axis=0).sum())
    t = np.array(candidates, dtype=np.int64)

    def pieces(count: np.ndarray, size: np.ndarray) -> np.ndarray:
        return count if unit is None else count * -(-size // unit)

    parts = []
    images = t[t >= p * q]
    if images.size:
        i = np.minimum(b, images // (p * q))
        rest = b % i
        fold = pieces(b // i, i * p * q) + pieces(rest > 0, rest * p * q)
        one = all_rows * all_cols
        parts.append((i * p * q, -(-b // i), fold, np.full(i.shape, b * one), i * one))
    bands = t[(t >= q) & (t < p * q)] // q
    if bands.size:
        band_sum, band_max = _band_counts(rows, bands)
        rest = p % bands
        fold = pieces(p // bands, bands * q) + pieces(rest > 0, rest * q)
        parts.append(
            (bands * q, b * -(-p // bands), b * fold, b * band_sum * all_cols, band_max * all_cols)
        )
    cut = t[t < q]
    if cut.size:
        (row_sum,), (row_max,) = _band_counts(rows, np.ones(1, dtype=np.int64))
        col_sum, col_max = _band_counts(cols, cut)
        rest = q % cut
        fold = pieces(q // cut, cut) + pieces(rest > 0, rest)
        parts.append(
            (cut, b * p * -(-q // cut), b * p * fold, b * row_sum * col_sum, row_max * col_max)
        )
    tile, trips, folds, per_pass, per_tile = (
        np.concatenate([np.asarray(x[j], dtype=np.int64) for x in parts]) for j in range(5)
    )
    _, keep = np.unique(tile, return_index=True)
    return _Tiling(
        dim=b * p * q,
        tile=tile[keep],
        trips=trips[keep],
        folds=folds[keep],
        per_pass=per_pass[keep],
        per_tile=per_tile[keep],
    )


def clear_memo() -> None:
    """Forget every memoised search and tiling (for timing a search afresh)."""
    for fn in (map_gemm, _search_space, _n_window, _k_window, tile_candidates):
        fn.cache_clear()


def _tilings(
    dims: tuple[int, int, int],
    array: tuple[int, int],
    dataflow: str,
    window: Window | None,
    given: tuple[int, int, int] | None = None,
) -> tuple[_Tiling, _Tiling, _Tiling]:
    """The candidate tilings of M, K and N (``given``: one stated tile each)."""
    rows_dim, cols_dim = ARRAY_DIMS[dataflow]
    unit = {rows_dim: array[0], cols_dim: array[1]}
    cand = {}
    for name, d in zip("mkn", dims, strict=True):
        if given is not None:
            cand[name] = np.array([min(int(given["mkn".index(name)]), d)], dtype=np.int64)
        else:
            cand[name] = tile_candidates(d, unit.get(name, 1))
    m, k, n = dims
    tm = _plain(m, cand["m"], unit.get("m", m))
    if window is None:
        return tm, _plain(k, cand["k"], unit.get("k", k)), _plain(n, cand["n"], unit.get("n", n))
    taps = window.kernel[0] * window.kernel[1]
    tk = _k_window(k, taps, tuple(cand["k"].tolist()), unit.get("k", k))
    if given is None:
        p, q = window.output_hw
        cand["n"] = np.unique(
            np.concatenate(
                [
                    tile_candidates(window.images, 1) * p * q,
                    tile_candidates(p, 1) * q,
                    tile_candidates(q, unit.get("n", 1)),
                ]
            )
        )
    # the N tiling does not depend on the channels: one memo entry for every K
    plane = dataclasses.replace(window, channels=1)
    return tm, tk, _n_window(plane, tuple(cand["n"].tolist()), unit.get("n"))


@functools.lru_cache(maxsize=4096)
def _search_space(
    dims: tuple[int, int, int], array: tuple[int, int], dataflow: str, window: Window | None
) -> tuple[tuple[_Tiling, _Tiling, _Tiling], tuple[np.ndarray, ...]]:
    """The candidate tilings of a search (:func:`_tilings`) and their rows as the
    search kernel reads them (:func:`_rows`), kept: a layer's searches on one array
    under other budgets and prices (activations on chip or not, other variants) share
    them."""
    tilings = _tilings(dims, array, dataflow, window)
    return tilings, tuple(_rows(t) for t in tilings)


def _input_pass(tk: _Tiling, tn: _Tiling, ik: np.ndarray, i_n: np.ndarray) -> np.ndarray:
    """Input elements one sweep over every (k, n) tile fetches: as the windows read
    them, or as im2col columns (K·N) where that is fewer (a K tile holding a few taps
    of each channel reads fewer inputs as columns)."""
    return np.minimum(tk.per_pass[ik] * tn.per_pass[i_n], tk.dim * tn.dim)


@dataclass(frozen=True, kw_only=True)
class Budget:
    """On-chip capacity in bits: one shared buffer (``shared``), or one per operand."""

    shared: float | None = None
    weights: float = 0.0
    inputs: float = 0.0
    outputs: float = 0.0


@dataclass(frozen=True, kw_only=True)
class Prices:
    """What the energy and latency objectives price (pJ/bit; s; bytes/s; bits/s).
    ``compute_s`` is the whole layer's."""

    dram_read_pj: float = 0.0
    dram_write_pj: float = 0.0
    buffer_read_pj: float = 0.0
    buffer_write_pj: float = 0.0
    compute_s: float = 0.0
    dram_bytes_per_s: float = float("inf")
    buffer_bits_per_s: float = float("inf")


def _evaluate(
    dims: tuple[int, int, int],
    tilings: tuple[_Tiling, _Tiling, _Tiling],
    pick: tuple[np.ndarray, np.ndarray, np.ndarray],
    on_chip: bool,
) -> dict[str, np.ndarray]:
    """Per-group counts of the candidates ``pick`` (indices into each tiling), for
    every order: arrays of shape (6, len(pick[0])) (rows in :data:`ORDERS`' order) or
    (len(pick[0]),) when the order does not matter. ``on_chip``: inputs and outputs
    live on chip (no DRAM traffic, no partial-sum spills)."""
    m, k, n = dims
    tm, tk, tn = tilings
    im, ik, i_n = pick
    trips = {"m": tm.trips[im], "k": tk.trips[ik], "n": tn.trips[i_n]}
    moves = {d: t > 1 for d, t in trips.items()}

    moving = np.stack([moves[d] for d in "mkn"])  # (3, candidates)

    def factor(operand: str) -> np.ndarray:
        # each operand is indexed by two dimensions; the third, d, multiplies its
        # traffic by its trips when an indexing loop that moves sits inside it
        (d,) = set("mkn") - set(INDEXED[operand])
        inside = (_INSIDE[d].astype(np.int64) @ moving) > 0  # (6, candidates)
        return np.where(inside, trips[d], 1)

    f_w, f_i, v_o = factor("weights"), factor("inputs"), factor("outputs")
    folds = {"m": tm.folds[im], "k": tk.folds[ik], "n": tn.folds[i_n]}
    w_n, o_n = m * k, m * n
    i_pass = 0 if on_chip else _input_pass(tk, tn, ik, i_n)
    spill = 0 * v_o if on_chip else (v_o - 1) * o_n
    written = 0 if on_chip else o_n
    return {
        "w_dram": w_n * f_w,
        "i_dram": i_pass * f_i,
        "o_dram": np.full(im.shape, written, dtype=np.int64),
        "psum_dram": spill,  # elements written, and as many read back
        "w_buf": w_n * folds["n"],
        "i_buf": k * n * folds["m"],
        "o_buf_w": o_n * folds["k"],
        "f_w": f_w,
        "f_i": f_i,
        "v_o": v_o,
    }


def _counts_of(
    dims: tuple[int, int, int],
    tilings: tuple[_Tiling, _Tiling, _Tiling],
    pick: tuple[int, int, int],
    order: int,
    on_chip: bool,
) -> dict[str, int]:
    """:func:`_evaluate` of one candidate under one order, in Python integers (the
    same counts as ``_one(_evaluate(...), order, 0)``, without NumPy's cost on
    one-element arrays)."""
    m, k, n = dims
    tm, tk, tn = tilings
    im, ik, i_n = pick
    trips = {"m": int(tm.trips[im]), "k": int(tk.trips[ik]), "n": int(tn.trips[i_n])}
    loops = ORDERS[order]

    def factor(operand: str) -> int:
        (d,) = set("mkn") - set(INDEXED[operand])
        inside = loops[loops.index(d) + 1 :]
        return trips[d] if any(trips[e] > 1 for e in inside) else 1

    f_w, f_i, v_o = factor("weights"), factor("inputs"), factor("outputs")
    w_n, o_n = m * k, m * n
    if on_chip:
        i_pass = spill = written = 0
    else:
        i_pass = min(int(tk.per_pass[ik]) * int(tn.per_pass[i_n]), tk.dim * tn.dim)
        spill = (v_o - 1) * o_n
        written = o_n
    return {
        "w_dram": w_n * f_w,
        "i_dram": i_pass * f_i,
        "o_dram": written,
        "psum_dram": spill,
        "w_buf": w_n * int(tn.folds[i_n]),
        "i_buf": k * n * int(tm.folds[im]),
        "o_buf_w": o_n * int(tk.folds[ik]),
        "f_w": f_w,
        "f_i": f_i,
        "v_o": v_o,
    }


def _rows(t: _Tiling) -> np.ndarray:
    """A tiling as :func:`simulator.kernels.map_search` takes it: int64 rows tile,
    trips, folds, inputs per pass, inputs per largest tile."""
    return np.ascontiguousarray(
        np.stack([t.tile, t.trips, t.folds, t.per_pass, t.per_tile]), dtype=np.int64
    )


def _one(c: dict[str, np.ndarray], order: int, candidate: int) -> dict[str, int]:
    """One candidate's counts, for one loop order, out of :func:`_evaluate`'s arrays."""
    return {name: int((v[order] if np.ndim(v) == 2 else v)[candidate]) for name, v in c.items()}


@functools.lru_cache(maxsize=8192)
def map_gemm(
    *,
    groups: int,
    dims: tuple[int, int, int],
    array: tuple[int, int],
    dataflow: str,
    weight_bits: float,
    activation_bits: float,
    budget: Budget,
    psum_bits: int = PSUM_BITS,
    objective: str = "dram",
    prices: Prices = Prices(),
    window: Window | None = None,
    on_chip: bool = False,
) -> LoopNest:
    """The loop nest over the stated space that minimises ``objective`` (DRAM bits;
    energy of DRAM and buffer traffic; or latency = max(compute, DRAM / bandwidth)),
    ties broken by DRAM bits, then by buffer bits (every array delivery and partial-
    sum visit), with its traffic for ``groups`` groups of the GEMM.
    ``window``: the convolution behind the GEMM (inputs fetched once per tile that
    reads them, not once per im2col column); ``on_chip``: the layer's input and output
    activations stay in the buffer (the caller reserves their room in ``budget``)."""
    if dataflow not in ARRAY_DIMS:
        raise ValueError(f"dataflow {dataflow!r}: expected one of {sorted(ARRAY_DIMS)}")
    if objective not in OBJECTIVES:
        raise ValueError(f"objective {objective!r}: expected one of {OBJECTIVES}")
    m, k, n = (int(d) for d in dims)
    bits = (float(weight_bits), float(activation_bits), float(psum_bits))
    tilings, rows = _search_space((m, k, n), tuple(array), dataflow, window)
    (o, *pick, fits), keys = kernels.map_search(
        np.array((m, k, n), dtype=np.int64),
        *rows,
        _INSIDE_ALL,
        np.array(bits),
        np.array(
            (
                np.nan if budget.shared is None else budget.shared,
                budget.weights,
                budget.inputs,
                budget.outputs,
            ),
            dtype=np.float64,
        ),
        on_chip,
        int(groups),
        OBJECTIVES.index(objective),
        np.array(
            (
                prices.dram_read_pj,
                prices.dram_write_pj,
                prices.buffer_read_pj,
                prices.buffer_write_pj,
                prices.compute_s,
                prices.dram_bytes_per_s,
                prices.buffer_bits_per_s,
            ),
            dtype=np.float64,
        ),
    )
    score = tuple(float(x) for x in keys)
    chosen = tuple(t.tile[i] for t, i in zip(tilings, pick, strict=True))
    counts = _counts_of((m, k, n), tilings, tuple(int(i) for i in pick), int(o), on_chip)
    fits = bool(fits)
    return _nest(
        groups,
        (m, k, n),
        array,
        dataflow,
        bits,
        objective,
        fits,
        ORDERS[int(o)],
        counts,
        chosen,
        window,
        on_chip,
        score,
    )


def _nest(
    groups, dims, array, dataflow, bits, objective, fits, order, c, tiles, window, on_chip, score=()
):
    """The :class:`LoopNest` of one chosen candidate (``c``: its per-group counts)."""
    m, k, n = dims
    wb, ab, pb = bits
    g = int(groups)
    w_dram, i_dram, o_dram, spill = (
        c[key] * g for key in ("w_dram", "i_dram", "o_dram", "psum_dram")
    )
    buf = {
        op: c[key] * g
        for op, key in (("weights", "w_buf"), ("inputs", "i_buf"), ("outputs", "o_buf_w"))
    }
    macs = m * k * n * g
    stationary = STATIONARY[dataflow]
    traffic = []
    for op, dram_r, width in (("weights", w_dram, wb), ("inputs", i_dram, ab)):
        rf = (macs, buf[op]) if op == stationary else (0, 0)
        traffic.append(
            OperandTraffic(
                operand=op,
                dram_read_bits=dram_r * width,
                dram_write_bits=0.0,
                buffer_reads=buf[op],
                buffer_writes=dram_r,
                regfile_reads=rf[0],
                regfile_writes=rf[1],
            )
        )
    rf = (macs, macs) if stationary == "outputs" else (0, 0)
    traffic.append(
        OperandTraffic(
            operand="outputs",
            dram_read_bits=0.0,
            dram_write_bits=o_dram * ab,
            buffer_reads=buf[
                "outputs"
            ],  # accumulate reads (one per fold but the first), plus the drain
            buffer_writes=buf["outputs"],
            regfile_reads=rf[0],
            regfile_writes=rf[1],
        )
    )
    traffic.append(
        OperandTraffic(
            operand="psums",
            dram_read_bits=spill * pb,
            dram_write_bits=spill * pb,
            buffer_reads=spill,
            buffer_writes=spill,
        )
    )
    return LoopNest(
        dataflow=dataflow,
        array=(int(array[0]), int(array[1])),
        groups=g,
        dims=(m, k, n),
        tiles=tuple(int(t) for t in tiles),
        order=order,
        fits=fits,
        objective=objective,
        weight_refetch=c["f_w"],
        input_refetch=c["f_i"],
        output_visits=c["v_o"],
        psum_bits=int(pb),
        weight_bits=wb,
        activation_bits=ab,
        windowed=window is not None,
        activations_on_chip=on_chip,
        score=tuple(score),
        traffic=tuple(traffic),
    )


def evaluate_nest(
    *,
    dims: tuple[int, int, int],
    tiles: tuple[int, int, int],
    order: tuple[str, str, str],
    array: tuple[int, int],
    dataflow: str,
    weight_bits: float,
    activation_bits: float,
    psum_bits: int = PSUM_BITS,
    groups: int = 1,
    window: Window | None = None,
    on_chip: bool = False,
) -> LoopNest:
    """The counts of one given nest (no search, no fit check): ``order`` is a
    permutation of ``"mnk"``, outermost first; ``tiles`` is (Mt, Kt, Nt) (with a
    ``window``, Nt snaps down to whole images, whole output rows or part of one row)."""
    order = tuple(order)
    if order not in ORDERS:
        raise ValueError(f"order {order!r}: expected a permutation of m, n, k")
    if dataflow not in ARRAY_DIMS:
        raise ValueError(f"dataflow {dataflow!r}: expected one of {sorted(ARRAY_DIMS)}")
    m, k, n = (int(d) for d in dims)
    bits = (float(weight_bits), float(activation_bits), float(psum_bits))
    tilings = _tilings((m, k, n), array, dataflow, window, given=tuple(tiles))
    zero = np.zeros(1, dtype=np.int64)
    c = _evaluate((m, k, n), tilings, (zero, zero, zero), on_chip)
    o = ORDERS.index(order)
    counts = _one(c, o, 0)
    chosen = tuple(t.tile[0] for t in tilings)
    return _nest(
        groups,
        (m, k, n),
        array,
        dataflow,
        bits,
        "given",
        True,
        order,
        counts,
        chosen,
        window,
        on_chip,
    )
