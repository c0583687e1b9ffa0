"""The row-stationary mapping of one layer: its shape, the hardware it must fit, the
counts of a mapping and the search over the stated space (see the package's
docstring)."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from simulator.traffic import ceil_div

P_CHOICES = (1, 2, 3, 4, 6, 8, 12, 16, 24)
Q_CHOICES = (1, 2, 3, 4, 6, 8, 12)
T_CHOICES = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128)
ROW_SPLITS = 8


@dataclass(frozen=True)
class RSShape:
    """A layer as Eyeriss sees it, per group: ``groups`` run one after another."""

    groups: int
    images: int
    filters: int
    channels: int
    kernel: tuple[int, int]
    out_hw: tuple[int, int]
    in_hw: tuple[int, int]
    """Padded ifmap extent (rows and columns the GLB holds)."""
    real_in_hw: tuple[int, int]
    """Unpadded ifmap extent (what DRAM holds)."""
    pad_top: int
    stride: int
    dilation: int
    row_chunks: int = 1
    """Filter chunks per (filter, channel): filters taller than the array or wider than
    the ifmap spad are cut; ``channels`` already counts each chunk."""


@dataclass(frozen=True)
class RSHardware:
    rows: int
    cols: int
    filter_spad: int
    ifmap_spad: int
    psum_spad: int
    glb_bits: float
    activation_bits: int
    weight_bits: float
    """Stored bits per weight, metadata included."""
    dram_bits_per_cycle: float
    filter_load_stalls: bool
    prices: tuple[float, float, float, float, float, float]
    """pJ per bit of DRAM, GLB, spad and PE-to-PE moves, static pJ per cycle and the
    DRAM bits per coded ifmap element (RLC, mapping independent)."""


@dataclass(frozen=True, kw_only=True)
class RSMapping:
    """The chosen row-stationary mapping of one layer and its counts (whole layer,
    all groups; elements unless named in bits)."""

    shape: RSShape
    array: tuple[int, int]
    m: int
    n: int
    e: int
    p: int
    q: int
    r: int
    t: int
    fits: bool
    passes: int
    active_pes: int
    compute_cycles: float
    stall_cycles: float
    glb_ifmap_bits: float
    glb_psum_bits: float
    dram_weight_reads: float
    dram_input_elements: float
    glb_input_writes: float
    glb_input_reads: float
    glb_psum_writes: float
    glb_psum_reads: float
    glb_output_reads: float
    spad_filter_writes: float
    spad_ifmap_writes: float
    array_psum_moves: float

    def loop_nest(self, indent: bool = False) -> str:
        """``for n in 0..N step n: ...: pass`` (one line, or indented lines)."""
        sh = self.shape
        (e_rows, _), (r, s) = sh.out_hw, sh.kernel
        loops = [
            f"for n in 0..{sh.images} step {self.n}",
            f"for e in 0..{e_rows} step {self.e}",
            f"for m in 0..{sh.filters} step {self.m}",
            f"for c in 0..{sh.channels} step {self.q * self.r}",
            f"for f in 0..{min(self.m, sh.filters)} step {self.p * self.t}",
        ]
        if sh.groups > 1:
            loops.insert(0, f"for group in 0..{sh.groups}")
        rows, cols = self.array
        body = (
            f"pass {r}x{self.e} sets x (r={self.r}, t={self.t}) on {rows}x{cols}, "
            f"{self.active_pes} PEs, each p={self.p} filters x q={self.q} channels x S={s}"
        )
        if not indent:
            return ": ".join([*loops, body])
        lines = [" " * (2 * i) + loop + ":" for i, loop in enumerate(loops)]
        return "\n".join([*lines, " " * (2 * len(loops)) + body])


def _rows_in(e: np.ndarray, sh: RSShape) -> np.ndarray:
    """Ifmap rows that ``e`` ofmap rows read."""
    reach = (sh.kernel[0] - 1) * sh.dilation + 1
    return np.minimum(sh.in_hw[0], (e - 1) * sh.stride + reach)


def _real_rows(e: np.ndarray, sh: RSShape) -> np.ndarray:
    """Unpadded ifmap rows read from DRAM over all row blocks of ``e`` ofmap rows
    (overlaps read again; padding and rows no output reads are not fetched)."""
    rows = e.ravel()
    blocks = -(-sh.out_hw[0] // rows)
    which = np.repeat(np.arange(rows.size), blocks)
    first = (np.arange(which.size) - np.repeat(np.cumsum(blocks) - blocks, blocks)) * rows[which]
    start = first * sh.stride
    end = start + _rows_in(np.minimum(rows[which], sh.out_hw[0] - first), sh)
    top, bottom = sh.pad_top, sh.pad_top + sh.real_in_hw[0]
    overlap = np.clip(np.minimum(end, bottom) - np.maximum(start, top), 0, None)
    return np.bincount(which, weights=overlap, minlength=rows.size).reshape(e.shape)


def _choices(base: tuple[int, ...], top: int, *extra: int) -> np.ndarray:
    vals = {v for v in base if v <= top} | {min(top, x) for x in extra if x >= 1}
    return np.array(sorted(vals), dtype=np.int64)


def _sets(e: np.ndarray, sh: RSShape, hw: RSHardware) -> np.ndarray:
    """PE sets ``e`` ofmap rows wide that fit the array (a wide set folded into strips)."""
    strip_rows = sh.kernel[0] * -(-e // hw.cols)
    fit = (hw.rows // strip_rows) * (hw.cols // np.minimum(e, hw.cols))
    return np.where(strip_rows <= hw.rows, fit, 0)


def _candidates(sh: RSShape, hw: RSHardware) -> dict[str, np.ndarray]:
    """The search space as broadcast arrays (axes e, p, q, t, n)."""
    big_e, s_k = sh.out_hw[0], sh.kernel[1]
    big_m, big_c, big_n = sh.filters, sh.channels, sh.images
    e = _choices((), big_e, *(ceil_div(big_e, j) for j in range(1, ROW_SPLITS + 1)), hw.cols)
    most = max(1, int(_sets(e, sh, hw).max()))
    p = _choices(P_CHOICES, min(hw.psum_spad, big_m), big_m)
    q = _choices(Q_CHOICES, min(max(1, hw.ifmap_spad // s_k), big_c), big_c)
    t = _choices(T_CHOICES, most, most)
    n = _choices(tuple(2**i for i in range(12)), big_n, big_n)
    e = e.reshape(-1, 1, 1, 1, 1)
    p, q = p.reshape(1, -1, 1, 1, 1), q.reshape(1, 1, -1, 1, 1)
    t, n = t.reshape(1, 1, 1, -1, 1), n.reshape(1, 1, 1, 1, -1)
    r = np.minimum(_sets(e, sh, hw) // t, -(-big_c // q))
    # m: the most filters whose psums fit beside the ifmap chunk (fewer ifmap
    # re-reads from DRAM, nothing else changes), a multiple of p*t, at least one pass
    pt = p * t
    kmax = -(-big_m // pt)
    room = hw.glb_bits - n * q * r * _rows_in(e, sh) * sh.in_hw[1] * hw.activation_bits
    k = np.floor_divide(np.maximum(room, 0), n * e * sh.out_hw[1] * hw.activation_bits * pt)
    m = np.minimum(pt * np.clip(k, 1, kmax).astype(np.int64), big_m)
    return {"e": e, "p": p, "q": q, "t": t, "n": n, "m": m, "r": r}


def _counts(sh: RSShape, hw: RSHardware, c: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Counts and energy of the mappings ``c`` (broadcast arrays of e, p, q, t, n, m, r)."""
    e, p, q, t, n, m, r = (c[k] for k in ("e", "p", "q", "t", "n", "m", "r"))
    big_e, f_cols = sh.out_hw
    r_k, s_k = sh.kernel
    big_m, big_c, big_n = sh.filters, sh.channels, sh.images
    sets = _sets(e, sh, hw)
    n_e = -(-big_e // e)
    rows_in = _rows_in(e, sh)
    sum_rows = (n_e - 1) * rows_in + _rows_in(big_e - (n_e - 1) * e, sh)
    pt = p * t
    n_m, f_pass = -(-big_m // m), -(-big_m // pt)
    n_c = -(-big_c // (q * np.maximum(r, 1)))
    n_n = -(-big_n // n)
    ab = hw.activation_bits
    glb_ifmap = n * q * r * rows_in * sh.in_hw[1] * ab
    glb_psum = np.minimum(m, big_m) * n * e * f_cols * ab
    ok = (
        (r >= 1)
        & (r * t <= sets)
        & (p <= hw.psum_spad)
        & (p * q * s_k <= hw.filter_spad)
        & (q * s_k <= hw.ifmap_spad)
        & (glb_ifmap + glb_psum <= hw.glb_bits)
    )
    g = sh.groups
    passes = g * n_n * n_e * f_pass * n_c
    compute = passes * (p * q * s_k * f_cols * n)
    stall = passes * (pt * q * r * r_k * s_k) * hw.weight_bits / hw.dram_bits_per_cycle
    if not hw.filter_load_stalls:
        stall = 0 * stall
    outputs = g * big_n * big_m * big_e * f_cols
    in_rows = g * big_n * big_c * sum_rows * sh.in_hw[1]
    dram_w = g * big_m * big_c * r_k * s_k * n_n * n_e
    dram_in = g * big_n * big_c * _real_rows(e, sh) * sh.real_in_hw[1] * n_m
    glb_in_w, glb_in_r = in_rows * n_m, in_rows * f_pass
    glb_ps_w, glb_ps_r = outputs * n_c, outputs * (n_c - 1)
    spad_fw = dram_w * np.minimum(e, big_e)
    spad_iw = passes * (r_k * e * r * t) * q * n * sh.in_hw[1]
    moves = passes * pt * n * e * f_cols * (r_k * r - 1)
    dram_pj, glb_pj, rf_pj, net_pj, static_pj, in_bits = hw.prices
    cycles = compute + stall
    dram_bits = dram_w * hw.weight_bits + dram_in * in_bits
    energy = (
        dram_bits * dram_pj
        + (glb_in_w + glb_in_r + glb_ps_w + glb_ps_r) * ab * glb_pj
        + (spad_fw + spad_iw) * ab * rf_pj
        + moves * ab * net_pj
        + np.maximum(cycles, dram_bits / hw.dram_bits_per_cycle) * static_pj
    )
    return {
        **c,
        "ok": ok,
        "energy": energy,
        "cycles": cycles,
        "passes": passes,
        "active_pes": r_k * e * r * t,
        "compute": compute,
        "stall": stall,
        "glb_ifmap": glb_ifmap,
        "glb_psum": glb_psum,
        "dram_w": dram_w,
        "dram_in": dram_in,
        "glb_in_w": glb_in_w,
        "glb_in_r": glb_in_r,
        "glb_ps_w": glb_ps_w,
        "glb_ps_r": glb_ps_r,
        "glb_out_r": outputs + 0 * ok,
        "spad_fw": spad_fw,
        "spad_iw": spad_iw,
        "moves": moves,
    }


def _mapping(sh: RSShape, hw: RSHardware, grid: dict[str, np.ndarray], at: tuple) -> RSMapping:
    def v(key: str) -> float:
        a = grid[key]
        return a[tuple(i if size > 1 else 0 for i, size in zip(at, a.shape, strict=True))].item()

    return RSMapping(
        shape=sh,
        array=(hw.rows, hw.cols),
        fits=bool(grid["ok"][at]),
        **{k: int(v(k)) for k in ("m", "n", "e", "p", "q", "r", "t", "passes", "active_pes")},
        compute_cycles=v("compute"),
        stall_cycles=v("stall"),
        glb_ifmap_bits=v("glb_ifmap"),
        glb_psum_bits=v("glb_psum"),
        dram_weight_reads=v("dram_w"),
        dram_input_elements=v("dram_in"),
        glb_input_writes=v("glb_in_w"),
        glb_input_reads=v("glb_in_r"),
        glb_psum_writes=v("glb_ps_w"),
        glb_psum_reads=v("glb_ps_r"),
        glb_output_reads=v("glb_out_r"),
        spad_filter_writes=v("spad_fw"),
        spad_ifmap_writes=v("spad_iw"),
        array_psum_moves=v("moves"),
    )


@functools.lru_cache(maxsize=1024)
def rs_mapping(sh: RSShape, hw: RSHardware) -> RSMapping:
    """The least-energy mapping of the search space (then fewest cycles); when none
    fits, the one that needs the least GLB, with ``fits`` False."""
    grid = _counts(sh, hw, _candidates(sh, hw))
    ok = grid["ok"]
    if ok.any():
        energy = np.where(ok, grid["energy"], np.inf)
        cycles = np.where(energy <= energy.min(), grid["cycles"], np.inf)
        best = np.unravel_index(int(np.argmin(cycles)), cycles.shape)
    else:
        need = np.broadcast_to(grid["glb_ifmap"] + grid["glb_psum"], ok.shape)
        best = np.unravel_index(int(np.argmin(need)), ok.shape)
    return _mapping(sh, hw, grid, best)


def evaluate_mapping(
    sh: RSShape, hw: RSHardware, *, m: int, n: int, e: int, p: int, q: int, r: int, t: int
) -> RSMapping:
    """The counts of one given mapping (a published one, say); ``fits`` says whether
    it respects the array, the spads and the GLB."""
    given = {"m": m, "n": n, "e": e, "p": p, "q": q, "r": r, "t": t}
    grid = _counts(sh, hw, {k: np.array([v], dtype=np.int64) for k, v in given.items()})
    return _mapping(sh, hw, grid, (0,))
