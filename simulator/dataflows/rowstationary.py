"""Row-stationary (RS) execution, after Eyeriss v1 (Chen et al., ISCA 2016; JSSC 2017).

A convolution is cut into 1-D row convolutions. One PE keeps filter rows in its
filter scratch pad (spad), slides an ifmap row through its ifmap spad and
accumulates an ofmap row in its psum spad. A *logical PE set* of ``R x e`` PEs
(``R`` filter rows, ``e`` ofmap rows) computes ``e`` ofmap rows of a 2-D
convolution: filter rows are reused across a PE row, ifmap rows diagonally and
psums accumulate vertically.

**Mapping parameters** (named as in JSSC 2017 Table III). In one *pass* each PE
holds ``p`` filters x ``q`` channels of one filter row (``p*q*S`` filter entries,
``q*S`` ifmap entries, ``p`` psums) and works on ``n`` images; the array holds
``r x t`` PE sets, ``r`` on different channels and ``t`` on different filters; the
global buffer (GLB) holds the ifmap rows of ``q*r`` channels and the psums of ``m``
filters (``n`` images, ``e`` rows). Filters go from DRAM straight into the spads:
the GLB holds ifmaps and psums only (Table III allocates it to those two).

**Loop nest** (outermost first, per group; groups run one after another):
images ``n`` at a time; ofmap rows ``e`` at a time; filters ``m`` at a time (their
psums stay in the GLB); channels ``q*r`` at a time (that ifmap chunk is filled into
the GLB from DRAM); filters ``p*t`` at a time: one pass, its filters loaded into the
spads. A pass takes ``p*q*S*F*n`` cycles (one MAC per PE per cycle); with
``filter_load_stalls`` the array also waits while the pass's filters arrive at the
DRAM bandwidth.

**Placement.** A set with ``e`` up to the array's columns takes ``R`` rows x ``e``
columns; a wider set is folded into ``ceil(e/cols)`` strips stacked vertically
(CONV2 of AlexNet: 5 x 27 on 10 x 14); ``floor(rows/strip rows) x
floor(cols/strip cols)`` sets fit and ``r*t`` may not exceed it. A filter taller
than the array or wider than the ifmap spad is cut into row chunks, processed like
extra channels. A layer without spatial extent (linear, attention product) is a
1 x 1 convolution of a 1 x 1 ifmap over ``n_cols`` images.

**Counts** (elements unless stated; one group, times the groups):

- DRAM: filters ``M*C*R*S`` once per (image block, row block) at their stored width;
  ifmaps once per filter block ``ceil(M/m)``, rows of overlapping row blocks again;
  ofmaps written once. Activations are run-length coded (:func:`rlc_bits`).
- GLB: ifmap fills as the DRAM reads (decoded); ifmap reads once per pass over
  filters, multicast to the ``t`` sets; psums written once per channel chunk and read
  back for all but the first; outputs read once to DRAM. Partial sums are kept at the
  activation width (16-bit psums in Eyeriss's GLB allocation).
- spads: per MAC slot one ifmap read and one psum read and write; a filter read per
  MAC done; filter writes: each filter entry loaded into the ``e`` PEs of its set row;
  ifmap writes: each PE's row (``q`` channels, ``n`` images) once per pass.
- between PEs (a ``network`` memory level): each output of a pass moves through
  ``R*r - 1`` PEs while it accumulates.

**Zeros.** Zero activations gate the filter spad read and the MAC (energy, not
cycles) when ``compute.zero_gating``; zero weights are not detected: a
non-structured mask runs as dense. Structured pruning shrinks the filters and
channels the passes cover.

**Search** (:func:`rs_mapping`): ``e`` in ``ceil(E/j)`` (j = 1..8) and the array
width; ``p`` in 1, 2, 3, 4, 6, 8, 12, 16, 24 and ``M``; ``q`` in 1, 2, 3, 4, 6, 8, 12
and ``C``; ``t`` in 1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128 and the sets that
fit, with ``r`` the most channel sets left; ``n`` in powers of two and ``N``; all capped by
the layer and the spads. For each, ``m`` is the largest multiple of ``p*t`` (up to all
filters) whose psums fit in the GLB beside the ifmap chunk: a larger ``m`` only saves
ifmap re-reads. Mappings whose GLB share does not fit are dropped.
The mapping minimises the energy of the mapping-dependent counts (DRAM, GLB, spad
fills, PE-to-PE moves, static power over the latency), then cycles; vectorised with
NumPy and memoised per shape.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from simulator.dataflows.task import LayerTask
from simulator.formats import FormatParams, format_stats
from simulator.hwconfig import Platform
from simulator.layers import Conv2d
from simulator.traffic import Access, ExecutionCounts, ceil_div, utilization

PJ = 1e-12

P_CHOICES = (1, 2, 3, 4, 6, 8, 12, 16, 24)
Q_CHOICES = (1, 2, 3, 4, 6, 8, 12)
T_CHOICES = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128)
ROW_SPLITS = 8


def rlc_pairs(values: float, density: float, run_bits: int) -> float:
    """Expected (run, level) pairs coding ``values`` i.i.d. activations of nonzero
    fraction ``density``: one pair per nonzero, plus one pair (a full run and a zero
    level) per ``2**run_bits`` zeros a run holds beyond what one pair covers. With
    ``q = (1 - d)**(2**run_bits)`` that is ``d*L*(1 + q/(1 - q)) = d*L / (1 - q)``
    (long streams; an all-zero stream costs ``L / 2**run_bits``)."""
    if values <= 0:
        return 0.0
    span = 2**run_bits
    if density >= 1:
        return float(values)
    covered = -math.expm1(span * math.log1p(-density))  # 1 - (1 - d)**span
    return values * density / covered


def rlc_bits(
    values: float, density: float, *, run_bits: int, level_bits: int, word_bits: int
) -> float:
    """Bits of ``values`` activations run-length coded: pairs of a ``run_bits`` zero
    run and a ``level_bits`` value, as many as fit in a ``word_bits`` word beside
    its one-bit last-word flag (Eyeriss: 3 x (5 + 16) + 1 = 64)."""
    per_word = (word_bits - 1) // (run_bits + level_bits)
    if per_word < 1:
        raise ValueError(f"a {word_bits}-bit word holds no {run_bits + level_bits}-bit pair")
    return math.ceil(rlc_pairs(values, density, run_bits) / per_word) * word_bits


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


def rs_shape(task: LayerTask, rows: int, ifmap_spad: int) -> RSShape:
    """The shape the passes cover: structured pruning's surviving groups, filters and
    channels (a column mask keeps whole channel rows: ``ceil(cols / (R*S))``)."""
    layer, g = task.layer, task.effective_gemm()
    if isinstance(layer, Conv2d):
        r, s = layer.kernel_hw
        channels = max(1, ceil_div(g.cols, r * s))
        (h, w), (ph, pw) = layer.input_hw, layer.padding_hw
        shape = dict(
            images=layer.batch,
            out_hw=layer.output_hw,
            in_hw=(h + 2 * ph, w + 2 * pw),
            real_in_hw=(h, w),
            pad_top=ph,
            stride=layer.stride_hw[0],
            dilation=layer.dilation_hw[0],
        )
    else:
        r = s = 1
        channels = g.cols
        shape = dict(
            images=g.n_cols,
            out_hw=(1, 1),
            in_hw=(1, 1),
            real_in_hw=(1, 1),
            pad_top=0,
            stride=1,
            dilation=1,
        )
    cuts = ceil_div(r, rows) * ceil_div(s, ifmap_spad)
    return RSShape(
        groups=g.groups,
        filters=g.rows,
        channels=channels * cuts,
        kernel=(ceil_div(r, ceil_div(r, rows)), ceil_div(s, ceil_div(s, ifmap_spad))),
        row_chunks=cuts,
        **shape,
    )


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
    m = pt * np.clip(k, 1, kmax).astype(np.int64)
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


def rs_hardware(task: LayerTask, platform: Platform, weight_bits: float) -> RSHardware:
    """The array, spads, GLB, prices and the coded ifmap width a search sees for ``task``
    (``weight_bits``: stored bits per weight, metadata included)."""
    c, rs = platform.compute, platform.compute.row_stationary
    glb, dram = platform.level("sram"), platform.level("dram")
    spad, net = platform.level("regfile"), platform.level("network")
    ab = task.activation_bits
    inputs = max(1, task.input_count)
    in_bits = rlc_bits(
        inputs,
        task.activation_density,
        run_bits=rs.run_bits,
        level_bits=ab,
        word_bits=rs.word_bits,
    )
    return RSHardware(
        rows=c.array_rows,
        cols=c.array_cols,
        filter_spad=rs.filter_spad,
        ifmap_spad=rs.ifmap_spad,
        psum_spad=rs.psum_spad,
        glb_bits=8.0 * glb.size_bytes,
        activation_bits=ab,
        weight_bits=weight_bits,
        dram_bits_per_cycle=8 * dram.bandwidth_bytes_per_s / platform.clock_hz,
        filter_load_stalls=rs.filter_load_stalls,
        prices=(
            dram.read_pj_per_bit,
            glb.read_pj_per_bit,
            spad.read_pj_per_bit if spad is not None else 0.0,
            net.read_pj_per_bit if net is not None else 0.0,
            platform.static_w / platform.clock_hz / PJ,
            in_bits / inputs,
        ),
    )


def run_rowstationary(task: LayerTask, platform: Platform) -> ExecutionCounts:
    """Counts of one layer on a row-stationary array (``execution: rowstationary``)."""
    c, rs = platform.compute, platform.compute.row_stationary
    wb, ab = task.weight_bits, task.activation_bits
    full, g = task.gemm, task.effective_gemm()
    meta = 0.0
    if task.variant == "structured":
        meta = format_stats(task.profile, "compact", FormatParams(weight_bits=wb)).other_bits
    per_weight = wb + meta / max(1, g.groups * g.rows * g.cols)
    hw = rs_hardware(task, platform, per_weight)
    shape = rs_shape(task, c.array_rows, rs.ifmap_spad)
    mp = rs_mapping(shape, hw)
    slots = g.macs
    done = slots * task.activation_density if c.zero_gating else float(slots)
    dram, glb = platform.level("dram").name, platform.level("sram").name
    spad, net = platform.level("regfile"), platform.level("network")
    out_bits = rlc_bits(
        task.output_count,
        task.output_density or task.activation_density,
        run_bits=rs.run_bits,
        level_bits=ab,
        word_bits=rs.word_bits,
    )

    def access(level: str, operand: str, read: float, write: float) -> Access:
        return Access(level=level, operand=operand, read_bits=float(read), write_bits=float(write))

    accesses = [
        access(dram, "weights", mp.dram_weight_reads * wb, 0),
        access(dram, "metadata", mp.dram_weight_reads * (per_weight - wb), 0),
        access(dram, "inputs", mp.dram_input_elements * hw.prices[-1], 0),
        access(dram, "outputs", 0, out_bits),
        access(glb, "inputs", mp.glb_input_reads * ab, mp.glb_input_writes * ab),
        access(glb, "psums", mp.glb_psum_reads * ab, mp.glb_psum_writes * ab),
        access(glb, "outputs", mp.glb_output_reads * ab, 0),
    ]
    if spad is not None:
        accesses += [
            access(spad.name, "weights", done * wb, mp.spad_filter_writes * wb),
            access(spad.name, "inputs", slots * ab, mp.spad_ifmap_writes * ab),
            access(spad.name, "psums", slots * ab, slots * ab),
        ]
    if net is not None:
        accesses.append(access(net.name, "psums", mp.array_psum_moves * ab, 0))
    cycles = mp.compute_cycles + mp.stall_cycles
    rows, cols = c.array_rows, c.array_cols
    return ExecutionCounts(
        engine=f"row-stationary {rows}x{cols}",
        macs_dense=task.layer.macs,
        macs_done=float(done),
        macs_gated=float(slots - done),
        macs_skipped=float(max(0, full.macs - slots)),
        index_decodes=0.0,
        compute_cycles=float(cycles),
        pe_utilization=utilization(task.profile.nnz * full.n_cols, rows * cols, cycles),
        accesses=tuple(accesses),
        words={
            f"{a.level}_{a.operand}_{kind}_bits": bits
            for a in accesses
            for kind, bits in (("read", a.read_bits), ("write", a.write_bits))
            if bits
        },
        mapping=mp,
    )
