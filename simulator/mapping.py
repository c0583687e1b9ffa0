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
always included. The search is exhaustive over that space and the six orders,
vectorised with NumPy (about 1,000 points per layer), memoised per GEMM shape.

**Fit.** The tiles held on chip are ``Mt·Kt`` weights at the weight width, ``Kt·Nt``
inputs at the activation width and ``Mt·Nt`` outputs at the partial-sum width
(``psum_bits``, 32 unless given), one copy each (no double buffering). They must fit
one shared buffer, or each its own buffer when the profile gives separate ifmap,
filter and ofmap sizes. When no tile fits, the smallest tiles are used and
``fits`` is False.

**DRAM** (the standard analytical model, e.g. Timeloop/ZigZag's temporal reuse).
An operand's tile is (re)fetched whenever one of the loops that index it moves;
so the operand crosses from DRAM ``size x`` the product of the trip counts of the
loops that do *not* index it and sit outside its innermost indexing loop (loops
with one trip are ignored: they never move). Weights are indexed by m, k; inputs by
k, n (the im2col K x N view: a convolution's overlapping windows are counted once
per window, as in the GEMM); outputs by m, n. For outputs the only other loop is
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
reduction fold (``psum_bits``) and read back for every one but the first. Fills from
DRAM are buffer writes; drains to DRAM buffer reads. **Register file** (per PE):
the stationary operand is written once per buffer delivery and read once per MAC.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass

import numpy as np

ORDERS: tuple[tuple[str, str, str], ...] = tuple(itertools.permutations("mnk"))
"""The six loop orders, outermost first."""

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
        if not indent:
            return ": ".join([*loops, body])
        lines = [" " * (2 * i) + loop + ":" for i, loop in enumerate(loops)]
        return "\n".join([*lines, " " * (2 * len(loops)) + body])


def tile_candidates(dim: int, unit: int) -> np.ndarray:
    """The stated tile sizes of a dimension of ``dim`` mapped on ``unit`` PEs (int64)."""
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
    return np.array(sorted(vals), dtype=np.int64)


def _folds(dim: int, tile: np.ndarray, unit: int) -> np.ndarray:
    """Array-sized pieces over all tiles of a dimension (tile trips when ``unit`` >= tile)."""
    full, rest = dim // tile, dim % tile
    return full * -(-tile // unit) + -(-rest // unit)


@dataclass(frozen=True, kw_only=True)
class Budget:
    """On-chip capacity in bits: one shared buffer (``shared``), or one per operand."""

    shared: float | None = None
    weights: float = 0.0
    inputs: float = 0.0
    outputs: float = 0.0


@dataclass(frozen=True, kw_only=True)
class Prices:
    """What the energy and latency objectives price (pJ/bit; s; bytes/s)."""

    dram_read_pj: float = 0.0
    dram_write_pj: float = 0.0
    buffer_read_pj: float = 0.0
    buffer_write_pj: float = 0.0
    compute_s: float = 0.0
    dram_bytes_per_s: float = float("inf")


def _evaluate(
    dims: tuple[int, int, int],
    array: tuple[int, int],
    dataflow: str,
    bits: tuple[float, float, float],
    psum_bits: int,
    mt: np.ndarray,
    kt: np.ndarray,
    nt: np.ndarray,
) -> dict[str, np.ndarray]:
    """Per-group counts of every candidate tile, for every order: arrays of shape
    (6, len(mt)) (rows in :data:`ORDERS`' order) or (len(mt),) when the order does
    not matter."""
    m, k, n = dims
    wb, ab, _ = bits
    trips = {"m": -(-m // mt), "k": -(-k // kt), "n": -(-n // nt)}
    moves = {d: t > 1 for d, t in trips.items()}

    def factor(operand: str) -> np.ndarray:
        # each operand is indexed by two dimensions; the third, d, multiplies its
        # traffic by its trips when an indexing loop that moves sits inside it
        (d,) = set("mkn") - set(INDEXED[operand])
        rows = []
        for order in ORDERS:
            inner = order[order.index(d) + 1 :]
            moving = np.zeros(mt.shape, dtype=bool)
            for e in inner:
                moving = moving | moves[e]
            rows.append(np.where(moving, trips[d], 1))
        return np.stack(rows)

    f_w, f_i, v_o = factor("weights"), factor("inputs"), factor("outputs")
    rows_dim, cols_dim = ARRAY_DIMS[dataflow]
    unit = {rows_dim: array[0], cols_dim: array[1]}
    size = {"m": m, "k": k, "n": n}
    tile = {"m": mt, "k": kt, "n": nt}
    folds = {d: _folds(size[d], tile[d], unit.get(d, size[d])) for d in "mkn"}
    w_n, i_n, o_n = m * k, k * n, m * n
    spill = (v_o - 1) * o_n
    return {
        "w_dram": w_n * f_w,
        "i_dram": i_n * f_i,
        "psum_dram": spill,  # elements written, and as many read back
        "w_buf": w_n * folds["n"],
        "i_buf": i_n * folds["m"],
        "o_buf_w": o_n * folds["k"],
        "f_w": f_w,
        "f_i": f_i,
        "v_o": v_o,
        "dram_bits": w_n * f_w * wb + i_n * f_i * ab + o_n * ab + 2 * spill * psum_bits,
    }


def fitting_tiles(
    dims: tuple[int, int, int],
    array: tuple[int, int],
    dataflow: str,
    bits: tuple[float, float, float],
    budget: Budget,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
    """(Mt, Kt, Nt) arrays of the candidate tiles searched, and whether any fits (if
    none, the smallest tiles). Bound: a larger tile never adds DRAM traffic (fewer
    trips, never a loop that starts moving), nor buffer traffic, so for each (Mt, Kt)
    only the largest fitting Nt is kept."""
    rows_dim, cols_dim = ARRAY_DIMS[dataflow]
    unit = {rows_dim: array[0], cols_dim: array[1]}
    cm, ck, cn = (
        tile_candidates(d, unit.get(name, 1)) for name, d in zip("mkn", dims, strict=True)
    )
    mt, kt = (a.ravel() for a in np.meshgrid(cm, ck, indexing="ij"))
    wb, ab, pb = bits
    if budget.shared is not None:
        room = budget.shared - mt * kt * wb
        cap = np.floor(room / (kt * ab + mt * pb))
    else:
        cap = np.minimum(np.floor(budget.inputs / (kt * ab)), np.floor(budget.outputs / (mt * pb)))
        cap = np.where(mt * kt * wb <= budget.weights, cap, -1)
    pick = np.searchsorted(cn, cap, side="right") - 1
    ok = pick >= 0
    if not np.any(ok):
        return cm[:1], ck[:1], cn[:1], False
    return mt[ok], kt[ok], cn[pick[ok]], True


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
) -> LoopNest:
    """The loop nest over the stated space that minimises ``objective`` (DRAM bits;
    energy of DRAM and buffer traffic; or latency = max(compute, DRAM / bandwidth),
    ties broken by DRAM bits), with its traffic for ``groups`` groups of the GEMM."""
    if dataflow not in ARRAY_DIMS:
        raise ValueError(f"dataflow {dataflow!r}: expected one of {sorted(ARRAY_DIMS)}")
    if objective not in OBJECTIVES:
        raise ValueError(f"objective {objective!r}: expected one of {OBJECTIVES}")
    m, k, n = (int(d) for d in dims)
    bits = (float(weight_bits), float(activation_bits), float(psum_bits))
    mt, kt, nt, fits = fitting_tiles((m, k, n), array, dataflow, bits, budget)
    c = _evaluate((m, k, n), array, dataflow, bits, psum_bits, mt, kt, nt)
    dram = c["dram_bits"].astype(np.float64)
    if objective == "dram":
        key = dram
    elif objective == "latency":
        key = np.maximum(prices.compute_s, dram / 8 / prices.dram_bytes_per_s)
    else:
        wb, ab, pb = bits
        reads = c["w_dram"] * wb + c["i_dram"] * ab + c["psum_dram"] * pb
        writes = m * n * ab + c["psum_dram"] * pb
        buf_r = c["w_buf"] * wb + c["i_buf"] * ab + (c["o_buf_w"] - m * n) * pb + writes
        buf_w = reads + c["o_buf_w"] * pb
        key = (
            reads * prices.dram_read_pj
            + writes * prices.dram_write_pj
            + buf_r * prices.buffer_read_pj
            + buf_w * prices.buffer_write_pj
        )
    key = np.broadcast_to(key, dram.shape).ravel()
    o, i = divmod(int(np.lexsort((dram.ravel(), key))[0]), len(mt))
    c = {name: (v[o] if np.ndim(v) == 2 else v) for name, v in c.items()}
    return _nest(
        groups,
        (m, k, n),
        array,
        dataflow,
        bits,
        psum_bits,
        objective,
        fits,
        ORDERS[o],
        c,
        i,
        (mt, kt, nt),
    )


def _nest(groups, dims, array, dataflow, bits, psum_bits, objective, fits, order, c, i, tiles):
    m, k, n = dims
    wb, ab, pb = bits
    g = int(groups)
    w_dram, i_dram, spill = (int(c[key][i]) * g for key in ("w_dram", "i_dram", "psum_dram"))
    w_buf, i_buf, o_buf = (int(c[key][i]) * g for key in ("w_buf", "i_buf", "o_buf_w"))
    outs = m * n * g
    macs = m * k * n * g
    stationary = STATIONARY[dataflow]
    buf = {"weights": w_buf, "inputs": i_buf, "outputs": o_buf}
    traffic = []
    for op, dram_r in (("weights", w_dram), ("inputs", i_dram)):
        rf = (macs, buf[op]) if op == stationary else (0, 0)
        traffic.append(
            OperandTraffic(
                operand=op,
                dram_read_bits=dram_r * (wb if op == "weights" else ab),
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
            dram_write_bits=outs * ab,
            buffer_reads=o_buf,  # o_buf - outs accumulate reads, plus outs drained
            buffer_writes=o_buf,
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
        tiles=tuple(int(t[i]) for t in tiles),
        order=order,
        fits=fits,
        objective=objective,
        weight_refetch=int(c["f_w"][i]),
        input_refetch=int(c["f_i"][i]),
        output_visits=int(c["v_o"][i]),
        psum_bits=int(pb),
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
) -> LoopNest:
    """The counts of one given nest (no search, no fit check): ``order`` is a
    permutation of ``"mnk"``, outermost first; ``tiles`` is (Mt, Kt, Nt)."""
    order = tuple(order)
    if order not in ORDERS:
        raise ValueError(f"order {order!r}: expected a permutation of m, n, k")
    m, k, n = (int(d) for d in dims)
    mt, kt, nt = (
        np.array([min(int(t), d)], dtype=np.int64) for t, d in zip(tiles, (m, k, n), strict=True)
    )
    bits = (float(weight_bits), float(activation_bits), float(psum_bits))
    c = _evaluate((m, k, n), array, dataflow, bits, psum_bits, mt, kt, nt)
    o = ORDERS.index(order)
    c = {name: (v[o] if np.ndim(v) == 2 else v) for name, v in c.items()}
    return _nest(
        groups,
        (m, k, n),
        array,
        dataflow,
        bits,
        psum_bits,
        "given",
        True,
        order,
        c,
        0,
        (mt, kt, nt),
    )
