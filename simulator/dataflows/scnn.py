"""SCNN-style sparse CNN engine (Parashar et al., ISCA 2017, arXiv:1708.04485).

Convolutions run PT-IS-CP-sparse: the input plane of each channel is tiled over a
``pe_rows x pe_cols`` grid of PEs (planar tiling, input stationary); for each group of
``Kc`` output channels and each input channel, every PE takes the Cartesian product of
the channel's nonzero weights of the group (vectors of F) and its own nonzero
activations (vectors of I), one F x I product block per cycle. ``Kc`` is the most
output channels whose partial sums, halo included, fit the PE's accumulator banks.
PEs wait for the slowest at the end of each output-channel group, then exchange the
halo partial sums that belong to a neighbour. Strided convolutions split weights and
activations by stride phase, so that only pairs landing on an output are multiplied.

What is simulated from the masks: nonzero weights per (group, channel, phase) from the
layer's weight mask; nonzero activations per (PE, channel, phase) from an activation
mask drawn with the layer's seeded generator at the task's activation density (or
given, ``(C, H, W)`` or ``(batch, C, H, W)``); the MACs done (products that land on
an output, counted exactly by correlating the two masks); cycles, load balance and
utilisation (:func:`simulator.kernels.scnn_schedule`).

Accumulator-bank conflicts are a stated approximation: the n products of a block are
taken to hash uniformly into A banks, and the block takes E[max bank load] cycles
(:func:`bank_stalls`, exact for that assumption). Halo exchange takes one partial sum
per cycle per PE after each group (not overlapped). Products that land outside the
output plane (at its edges) use multiplier slots but are discarded.

The dense variant is SCNN's dense baseline (the paper's DCNN): the same array and
tiling on dense weights and activations, with no coordinate computation, no bank
conflicts and no compression metadata.

Fully connected and matrix-product layers: SCNN's input-stationary Cartesian product
has no weight reuse there; the paper runs them with only one activation per cycle
against F weights (25% of peak for 4 x 4). Modelled so: output rows interleaved over
the PEs, nonzero activations broadcast, PE ``p`` spends ``ceil(kept_p(c) / F)`` cycles
on each nonzero activation ``c``; PEs synchronise at the end of the layer.
"""

from __future__ import annotations

import functools
import math
import weakref
from dataclasses import replace

import numpy as np

from simulator import kernels
from simulator.dataflows.task import LayerTask
from simulator.errors import ConfigError
from simulator.hwconfig import Platform
from simulator.hwconfig.platform import ScnnArray
from simulator.masks import bernoulli, layer_rng
from simulator.traffic import Access, ExecutionCounts, dram_accesses

SAMPLED_IMAGES = 2
"""Images of a batch simulated (each with its own activation mask); the rest scale."""
SAMPLED_COLUMNS = 8
"""Input columns (tokens) of a fully connected layer simulated; the rest scale."""


@functools.cache
def bank_stalls(products: int, banks: int) -> np.ndarray:
    """Expected stall cycles of a product block, by its product count n = 0..products:
    E[max load] - 1 when n products hash uniformly and independently into ``banks``
    banks (one write per bank per cycle); 0 for n = 0. Exact: P(max <= m) is
    n! / A^n times the x^n coefficient of (sum_{j<=m} x^j / j!)^A."""
    out = np.zeros(products + 1)
    for n in range(1, products + 1):
        expected = 0.0
        for m in range(n):  # E[max] = sum_{m>=0} P(max > m)
            term = np.zeros(n + 1)
            term[: m + 1] = [1 / math.factorial(j) for j in range(m + 1)]
            poly = np.zeros(n + 1)
            poly[0] = 1.0
            for _ in range(banks):
                poly = np.convolve(poly, term)[: n + 1]
            p_le = poly[n] * math.factorial(n) / banks**n
            expected += 1.0 - p_le
        out[n] = expected - 1.0
    out.flags.writeable = False
    return out


SAMPLED_STEPS = 64
"""(output-channel group, channel, PE) steps whose product blocks are simulated bank by
bank to measure the stall per block (:func:`block_stalls`)."""
SAMPLED_PRODUCTS = 250_000
"""Products simulated bank by bank per layer at most (about 15,000 blocks of 16: the
mean stall of a block size is then known to a few per cent)."""


def block_stalls(sampled: tuple[np.ndarray, np.ndarray], f: int, i: int, banks: int) -> np.ndarray:
    """Mean stall cycles per product block by its size n (0..f*i), from
    :func:`bank_stall_samples`' (summed stalls, blocks seen); block sizes never seen
    take the uniform-hashing expectation (:func:`bank_stalls`)."""
    total, seen = sampled
    return np.where(seen > 0, total / np.maximum(seen, 1), bank_stalls(f * i, banks))


def array_of(platform: Platform, pes: int | None = None) -> ScnnArray:
    """The platform's SCNN array; with ``pes`` (an FPGA's sparse PEs that fit, each one
    multiplier lane) the lanes grouped F x I per PE on a near-square grid."""
    a = platform.scnn
    if pes is None:
        return a
    n = max(1, pes // a.multipliers)
    rows = max(1, math.isqrt(n))
    return replace(a, pe_rows=rows, pe_cols=max(1, n // rows))


# --- convolutions ----------------------------------------------------------------------


def conv_geometry(layer, array: ScnnArray) -> dict:
    """Tiling of a convolution on the array: input tile per PE, the accumulator
    footprint of one output channel (own outputs plus halo) and Kc."""
    h, w = layer.input_hw
    r, s = layer.kernel_hw
    sh, sw = layer.stride_hw
    dh, dw = layer.dilation_hw
    p, q = layer.output_hw
    th, tw = -(-h // array.pe_rows), -(-w // array.pe_cols)
    # outputs reachable from a tile of th x tw inputs: ceil((th + d(R-1)) / stride)
    acc_h = min(p, -(-(th + dh * (r - 1)) // sh))
    acc_w = min(q, -(-(tw + dw * (s - 1)) // sw))
    own = -(-p // array.pe_rows) * -(-q // array.pe_cols)
    kg = layer.out_channels // layer.groups
    kc = max(1, min(kg, array.accumulator_banks * array.bank_entries // (acc_h * acc_w)))
    return {
        "tile": (th, tw),
        "acc": acc_h * acc_w,
        "halo": max(0, acc_h * acc_w - own),
        "kc": kc,
        "phases": sh * sw,
    }


def activation_planes(task: LayerTask, n: int):
    """The ``(C, H, W)`` bool activation masks of the first ``n`` images."""
    layer = task.layer
    shape = (layer.in_channels, *layer.input_hw)
    m = task.activation_mask
    if m is not None and task.variant != "dense":
        m = np.asarray(m, dtype=bool)
        if m.shape == shape:
            m = m[None]
        if m.ndim != 4 or m.shape[1:] != shape:
            raise ConfigError(
                f"layer {task.layer.name!r}",
                f"scnn: activation_mask must have shape {shape} or (batch, *{shape}), "
                f"got {m.shape}",
            )
        for i in range(min(n, m.shape[0])):
            yield m[i]
        return
    for _, plane in _planes(task, n):
        yield plane


def _planes(task: LayerTask, n: int):
    """:func:`activation_planes`, each with a key that names it (the same key, the same
    plane: all ones, or the layer's seeded draw at a density), ``None`` for given ones."""
    layer = task.layer
    shape = (layer.in_channels, *layer.input_hw)
    if task.activation_mask is not None and task.variant != "dense":
        for plane in activation_planes(task, n):
            yield None, plane
        return
    if task.variant == "dense" or task.activation_density >= 1:
        for _ in range(n):
            yield (layer, "ones"), np.ones(shape, dtype=bool)
        return
    density = task.activation_density
    for k, plane in enumerate(_random_planes(layer.name, task.seed, density, shape, n)):
        yield (layer, task.seed, density, n, k), plane


@functools.lru_cache(maxsize=256)
def _random_planes(
    name: str, seed: int, density: float, shape: tuple[int, ...], n: int
) -> tuple[np.ndarray, ...]:
    """``n`` i.i.d. activation masks of a layer from its seeded generator (16-bit draws:
    the density rounded to a multiple of 1/65536, :func:`simulator.masks.bernoulli`),
    read-only and kept: every array and variant that runs the layer reads the same
    ones."""
    rng = layer_rng(seed, name + "/activations")
    planes = tuple(bernoulli(rng, shape, density) for _ in range(n))
    for p in planes:
        p.flags.writeable = False
    return planes


def weight_mask(task: LayerTask) -> np.ndarray:
    """The layer's weight mask as bool ``(K, C/g, R, S)`` (all ones for dense)."""
    layer = task.layer
    if task.variant == "dense":
        return np.ones(layer.weight_shape, dtype=bool)
    return task.profile.gemm.view(bool).reshape(layer.weight_shape)


def _u8(mask: np.ndarray) -> np.ndarray:
    """A 0/1 mask as C-contiguous uint8 for the kernels: a view of a contiguous bool
    mask, else a copy."""
    if mask.dtype == bool and mask.flags.c_contiguous:
        return mask.view(np.uint8)
    return np.ascontiguousarray(mask, dtype=np.uint8)


def conv_weights(layer, wm: np.ndarray, geo: dict) -> tuple[np.ndarray, np.ndarray]:
    """The weight side of a convolution, the same for every image: nonzero weights per
    conv group, output-channel group and (input channel x stride phase) ``(groups,
    n_kc, cg * phases)``, and per (input channel, r, s) over its group's output
    channels ``(C, R, S)`` (:func:`simulator.kernels.scnn_weight_counts`)."""
    r, s = layer.kernel_hw
    sh, sw = layer.stride_hw
    dh, dw = layer.dilation_hw
    # a weight's stride phase: ((r d) mod stride) in each direction
    wphase = ((np.arange(r) * dh) % sh)[:, None] * sw + ((np.arange(s) * dw) % sw)[None, :]
    return kernels.scnn_weight_counts(
        _u8(wm),
        layer.out_channels // layer.groups,
        geo["kc"],
        wphase.astype(np.int64),
        geo["phases"],
    )


def conv_steps(
    layer,
    wm: np.ndarray,
    am: np.ndarray,
    array: ScnnArray,
    geo: dict,
    weights: tuple[np.ndarray, np.ndarray] | None = None,
):
    """Every conv group's steps, for :func:`simulator.kernels.scnn_schedule`:
    ``w_steps[groups * n_kc, PE, step]`` (output-channel groups, conv group by conv
    group), ``a_steps[groups, PE, step]`` (steps are a group's input channels x stride
    phases) and ``a_of`` (the conv group of each barrier group); also the MACs that
    land on an output and ``n_kc``. ``weights`` is :func:`conv_weights` where known.
    (The engine itself gives the kernel the weight steps once for every PE:
    :func:`simulator.kernels.scnn_shared_schedule`.)"""
    w_nnz, wsum = weights if weights is not None else conv_weights(layer, wm, geo)
    by_step, windows, _ = conv_activations(layer, am, array, geo)
    w_shared, a_of, n_kc = _weight_steps(layer, w_nnz)
    w_steps = np.ascontiguousarray(
        np.broadcast_to(w_shared[:, None, :], (w_shared.shape[0], array.pes, w_shared.shape[1]))
    )
    a_steps = np.ascontiguousarray(by_step.transpose(0, 2, 1))
    return w_steps, a_steps, a_of, landed(wsum, windows), n_kc


def _weight_steps(layer, w_nnz: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """The weight steps shared by every PE, ``(groups * n_kc, step)``, the conv group of
    each barrier group and ``n_kc``."""
    groups, n_kc, steps = w_nnz.shape
    a_of = np.repeat(np.arange(groups, dtype=np.int64), n_kc)
    return np.ascontiguousarray(w_nnz.reshape(groups * n_kc, steps)), a_of, n_kc


def conv_activations(
    layer,
    am: np.ndarray,
    array: ScnnArray,
    geo: dict,
    *,
    ones: bool = False,
    windows: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, int]:
    """The activation side of a convolution, the same for every weight mask: nonzero
    activations per conv group, step (channel x stride phase) and PE (planar tile)
    ``[groups, step, PE]``; per kernel offset (r, s) and input channel the
    nonzero activations its window reads, ``(R, S, C)`` (to count the MACs that land
    on an output, :func:`landed`; :func:`window_counts`); and the nonzero
    activations. ``ones``: ``am`` is all ones (every channel counted as the first);
    ``windows``: the window counts where known (they do not depend on the array)."""
    sh, sw = layer.stride_hw
    ph, pw = layer.padding_hw
    h, w = layer.input_hw
    groups = layer.groups
    cg = layer.in_channels // groups
    nph = geo["phases"]
    pes = array.pes
    # activations: per PE (planar tile), channel and phase ((y + pad) mod stride)
    th, tw = geo["tile"]
    ys = np.arange(h)
    xs = np.arange(w)
    pe = (ys // th)[:, None] * array.pe_cols + (xs // tw)[None, :]
    aphase = ((ys + ph) % sh)[:, None] * sw + ((xs + pw) % sw)[None, :]
    channels = 1 if ones else layer.in_channels
    a_all = kernels.scnn_activation_counts(_u8(am), 0, channels, pe, aphase, pes, nph)
    if ones:
        a_all = np.tile(a_all, (layer.in_channels, 1))
    by_step = a_all.reshape(groups, cg * nph, pes)
    if windows is None:
        windows = window_counts(layer, am[:1] if ones else am)
        if ones:
            windows = np.broadcast_to(windows, (*windows.shape[:2], layer.in_channels))
    nnz = am.size if ones else int(np.count_nonzero(am))
    return by_step, windows, nnz


def window_counts(layer, am: np.ndarray) -> np.ndarray:
    """Per kernel offset (r, s) and channel of ``am`` (bool ``(C, H, W)``) the nonzero
    activations its window reads (the padded plane's strided window), ``(R, S, C)``
    int64, read-only (:func:`simulator.kernels.scnn_window_counts`)."""
    geom = np.array(
        (
            *layer.kernel_hw,
            *layer.stride_hw,
            *layer.dilation_hw,
            *layer.padding_hw,
            *layer.output_hw,
        ),
        dtype=np.int64,
    )
    windows = kernels.scnn_window_counts(_u8(am), geom)
    windows.setflags(write=False)
    return windows


def landed(wsum: np.ndarray, windows: np.ndarray) -> int:
    """MACs that land on an output: the weight and activation masks correlated, from
    the weights per (channel, r, s) (:func:`conv_weights`) and the activations each
    offset's window reads (:func:`conv_activations`)."""
    done = 0
    for i in range(windows.shape[0]):
        for j in range(windows.shape[1]):
            done += int(wsum[:, i, j] @ windows[i, j])
    return done


def bank_stall_samples(
    layer, wm: np.ndarray, am: np.ndarray, array: ScnnArray, geo: dict, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Stall cycles summed and blocks seen, by block size, over the product blocks of up
    to :data:`SAMPLED_STEPS` random (output-channel group, channel, PE) steps of conv
    group 0 in SCNN's order (:func:`simulator.kernels.scnn_bank_stalls`), at most
    :data:`SAMPLED_PRODUCTS` products."""
    cg = layer.in_channels // layer.groups
    kg = layer.out_channels // layer.groups
    n_kc = -(-kg // geo["kc"])
    bounds = np.array((n_kc, cg, array.pe_rows, array.pe_cols), dtype=np.int64)
    steps = rng.integers(0, bounds, size=(SAMPLED_STEPS, 4), dtype=np.int64)
    geom = np.array(
        (
            geo["kc"],
            *geo["tile"],
            *layer.stride_hw,
            *layer.dilation_hw,
            *layer.padding_hw,
            *layer.output_hw,
        ),
        dtype=np.int64,
    )
    return kernels.scnn_bank_stalls(
        _u8(wm),
        _u8(am),
        steps,
        geom,
        np.int64(array.weight_vector),
        np.int64(array.activation_vector),
        np.int64(array.accumulator_banks),
        np.int64(SAMPLED_PRODUCTS),
    )


def _conv(task: LayerTask, array: ScnnArray, stall: np.ndarray) -> dict:
    layer = task.layer
    geo = conv_geometry(layer, array)
    wm = None  # the weight mask, made when first needed
    n_img = layer.batch
    sampled = min(n_img, SAMPLED_IMAGES)
    f, i = array.weight_vector, array.activation_vector
    acc = {
        k: 0.0
        for k in (
            "cycles",
            "base",
            "slots",
            "products",
            "done",
            "halo_cycles",
            "halo_psums",
            "act_reads",
            "wfifo_reads",
            "nnz_in",
            "busy_sum",
            "busy_max",
        )
    }
    busy_total = np.zeros(array.pes)
    # the weight side of each conv group, once per mask and Kc (every array with that Kc)
    weights = _WEIGHTS.setdefault(task.profile, {})
    wkey = (layer, geo["kc"])
    if wkey not in weights:
        wm = weight_mask(task)
        w_nnz, wsum = conv_weights(layer, wm, geo)
        weights[wkey] = (*_weight_steps(layer, w_nnz), wsum)
    w_steps, a_of, n_kc, wsum = weights[wkey]
    for n, (key, am) in enumerate(_planes(task, sampled)):
        if n == 0 and task.variant != "dense":  # bank conflicts measured on the first image
            rng = layer_rng(task.seed, task.layer.name + "/banks")
            wm = weight_mask(task) if wm is None else wm
            measured = bank_stall_samples(layer, wm, am, array, geo, rng)
            stall = np.ascontiguousarray(block_stalls(measured, f, i, array.accumulator_banks))
        # the activation side, once per drawn plane and array (every weight mask)
        known = _ACTIVATIONS.get((key, array)) if key is not None else None
        if known is None:
            ones = key is not None and key[1] == "ones"
            windows = _WINDOWS.get(key) if key is not None else None
            a_steps, windows, nnz_in = conv_activations(
                layer, am, array, geo, ones=ones, windows=windows
            )
            if key is not None:
                _WINDOWS[key] = windows
            # with them, the activations and the vectors of I per step over the PEs
            a_total, vectors = kernels.scnn_activation_vectors(a_steps, np.int64(i))
            known = (a_steps, windows, nnz_in, int(a_total), vectors)
            if key is not None:
                _ACTIVATIONS[(key, array)] = known
        a_steps, windows, nnz_in, a_total, vectors = known
        acc["nnz_in"] += nnz_in
        done = landed(wsum, windows)
        cycles, busy, slots, products, base = kernels.scnn_shared_schedule(
            w_steps, a_steps, a_of, np.int64(f), np.int64(i), stall
        )
        kg = layer.out_channels // layer.groups
        halo_cycles = geo["halo"] * kg * layer.groups  # per conv group: halo x its Kc's
        acc["cycles"] += cycles + halo_cycles
        acc["halo_cycles"] += halo_cycles
        acc["halo_psums"] += halo_cycles * array.pes
        acc["base"] += int(base.sum())
        acc["slots"] += int(slots.sum())
        acc["products"] += int(products.sum())
        acc["done"] += done
        # activation vectors read once per output-channel group, weights once per
        # activation vector (input stationary)
        acc["act_reads"] += n_kc * a_total
        acc["wfifo_reads"] += int((w_steps * vectors[a_of]).sum())
        busy_total += busy
    scale = n_img / sampled
    out = {k: v * scale for k, v in acc.items()}
    out["busy_sum"] = float(busy_total.sum()) * scale
    out["busy_max"] = float(busy_total.max(initial=0)) * scale
    out["active_pes"] = int(np.count_nonzero(busy_total)) or 1
    # the weights stored: every one for dense, else the mask's kept ones
    out["stored_w"] = layer.weight_count if task.variant == "dense" else task.profile.nnz
    out["kc"] = geo["kc"]
    out["stall_full_block"] = float(stall[-1])
    return out


# --- fully connected and matrix-product layers ------------------------------------------


def _fc(task: LayerTask, array: ScnnArray, stall: np.ndarray) -> dict:
    g = task.gemm
    pes = min(array.pes, g.rows)
    n = g.groups * g.cols
    if task.variant == "dense":  # PE k holds ceil((rows - k) / pes) rows of every column
        per_pe = np.array([-(-(g.rows - k) // pes) for k in range(pes)], dtype=np.int64)
        columns = np.repeat(per_pe[None, :], n, axis=0)
        kept = np.full(n, g.rows, dtype=np.int64)
    else:  # by column: one row of PEs per activation
        columns, kept = task.profile.pe_column_entries(pes, 63, by_column=True)
    rng = layer_rng(task.seed, task.layer.name + "/activations")
    f, i = array.weight_vector, array.activation_vector
    sampled = min(g.n_cols, SAMPLED_COLUMNS)
    acc = dict.fromkeys(("cycles", "base", "slots", "products", "act_reads", "wfifo_reads"), 0.0)
    busy_total = np.zeros(pes)
    for _ in range(sampled):  # one barrier group, the layer; activations go to every PE
        if task.variant == "dense" or task.activation_density >= 1:
            active = np.ones(n, dtype=np.int64)
        else:
            active = (rng.random(n) < task.activation_density).astype(np.int64)
        cycles, busy, slots, products, base = kernels.scnn_row_schedule(
            columns, active, np.int64(f), np.int64(i), stall
        )
        acc["cycles"] += cycles
        acc["base"] += int(base.sum())
        acc["slots"] += int(slots.sum())
        acc["products"] += int(products.sum())
        acc["act_reads"] += int(active.sum())
        acc["wfifo_reads"] += int(kept @ active)
        busy_total += busy
    scale = g.n_cols / sampled
    out = {k: v * scale for k, v in acc.items()}
    out["done"] = out["products"]  # every product lands on an output
    out["halo_cycles"] = out["halo_psums"] = 0.0
    out["nnz_in"] = out["act_reads"]
    out["busy_sum"] = float(busy_total.sum()) * scale
    out["busy_max"] = float(busy_total.max(initial=0)) * scale
    out["active_pes"] = pes
    out["stored_w"] = int(kept.sum())
    out["kc"] = 0
    out["stall_full_block"] = float(stall[-1])
    return out


_SCHEDULES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_WEIGHTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_ACTIVATIONS: dict = {}
"""The activation side of a convolution (:func:`conv_activations`) by plane key and
array: every weight mask run on the same drawn activations reuses it."""
_WINDOWS: dict = {}
"""The window counts of a plane (:func:`window_counts`) by plane key: every array
reuses them."""


def clear_schedules() -> None:
    """Forget the simulated schedules and weight counts (kept per mask profile), the
    activation masks drawn and their counts."""
    _SCHEDULES.clear()
    _WEIGHTS.clear()
    clear_activations()


def clear_activations() -> None:
    """Forget the activation masks drawn and their counts (kept by layer: a caller done
    with a network's layers frees them)."""
    _ACTIVATIONS.clear()
    _WINDOWS.clear()
    _random_planes.cache_clear()


def schedule(task: LayerTask, array: ScnnArray) -> dict:
    """The simulated counts of one layer, kept per mask profile so that pricing at other
    bit widths does not simulate again."""
    sparse = task.variant != "dense"
    key = (
        task.variant,
        array,
        task.activation_density,
        task.seed,
        task.layer,
        id(task.activation_mask),
    )
    per_profile = _SCHEDULES.setdefault(task.profile, {})
    if key not in per_profile:
        stall = bank_stalls(array.multipliers, array.accumulator_banks)
        stall = np.ascontiguousarray(stall if sparse else np.zeros_like(stall))
        run = _conv if task.layer.kind == "conv2d" else _fc
        per_profile[key] = run(task, array, stall)
    return per_profile[key]


def run_scnn(task: LayerTask, platform: Platform, pes: int | None = None) -> ExecutionCounts:
    """Counts of one layer on an SCNN-style array: the profile's (``compute.scnn``), or
    ``pes`` multiplier lanes grouped F x I per PE (FPGA)."""
    array = array_of(platform, pes)
    sparse = task.variant != "dense"
    c = schedule(task, array)
    layer = task.layer
    wb = task.weight_bits
    # KV-cache elements among the inputs or outputs: the bit-weighted mean width
    iw, ow = task.input_width_bits, task.output_width_bits
    run = array.run_bits if sparse else 0
    f, i = array.weight_vector, array.activation_vector
    macs_dense = layer.macs
    done = c["done"]
    cycles = c["cycles"]
    out_density = task.output_density if task.output_density is not None else 1.0
    if sparse and task.output_density is None:
        out_density = task.activation_density
    out_words = task.output_count * out_density
    accesses = []
    level = {lv.kind: lv for lv in platform.memory}
    per_pe = [lv for lv in platform.memory if lv.per_pe and lv.kind == "sram"]
    act_ram = per_pe[0] if per_pe else level.get("sram")
    regs = [lv for lv in platform.memory if lv.kind == "regfile"]
    fifo = regs[0] if regs else None
    accum = regs[-1] if regs else None
    net = level.get("network")
    # the PE-local levels are read and written at the pace of the simulated schedule
    # (vectors of F weights and I activations per cycle): no separate bandwidth bound
    if act_ram is not None:
        accesses += [
            Access(
                level=act_ram.name,
                operand="inputs",
                read_bits=c["act_reads"] * (iw + run),
                write_bits=0.0,
                port=False,
            ),
            Access(
                level=act_ram.name,
                operand="outputs",
                read_bits=0.0,
                write_bits=out_words * (ow + run),
                port=False,
            ),
        ]
    if fifo is not None:
        # conv: each weight broadcast into every PE's FIFO; fc: each row's weights to its PE
        fills = c["stored_w"] * (c["active_pes"] if layer.kind == "conv2d" else 1)
        accesses += [
            Access(
                level=fifo.name,
                operand="weights",
                read_bits=c["wfifo_reads"] * wb,
                write_bits=fills * wb,
                port=False,
            ),
            Access(
                level=fifo.name,
                operand="metadata",
                read_bits=c["wfifo_reads"] * run,
                write_bits=fills * run,
                port=False,
            ),
        ]
    if accum is not None:
        accesses.append(
            Access(
                level=accum.name,
                operand="psums",
                read_bits=done * array.psum_bits,
                write_bits=done * array.psum_bits,
                port=False,
            )
        )
    if net is not None and c["halo_psums"]:
        bits = c["halo_psums"] * array.psum_bits
        accesses.append(
            Access(level=net.name, operand="psums", read_bits=bits, write_bits=bits, port=False)
        )
    dram = level.get("dram")
    if dram is not None:
        # weights stream in once, compressed (a value and a zero-run index per entry;
        # runs longer than 2^run_bits - 1 cost a filler entry, not counted here);
        # activations stay on chip unless they overflow the PEs' activation RAM
        in_bits = c["nnz_in"] * (iw + run) if sparse else task.input_bits
        capacity = act_ram.size_bytes * 8 * (array.pes if act_ram.per_pe else 1) if act_ram else 0.0
        spill = in_bits > capacity or out_words * (ow + run) > capacity
        accesses += dram_accesses(
            level=dram.name,
            weight_value_bits=c["stored_w"] * wb,
            weight_metadata_bits=c["stored_w"] * run,
            input_bits=in_bits if spill else 0.0,
            output_bits=out_words * (ow + run) if spill else 0.0,
        )
    lanes = array.pes * f * i
    return ExecutionCounts(
        engine=f"scnn {array.pe_rows}x{array.pe_cols} PE, {f}x{i} mult",
        macs_dense=macs_dense,
        macs_done=done,
        macs_gated=0.0,
        macs_skipped=max(0.0, macs_dense - done),
        index_decodes=c["products"] if sparse else 0.0,
        compute_cycles=cycles,
        pe_utilization=min(1.0, done / (lanes * cycles)) if cycles else 0.0,
        accesses=tuple(accesses),
        load_balance=c["busy_sum"] / (c["active_pes"] * c["busy_max"]) if c["busy_max"] else 1.0,
        words={
            "scnn_products": c["products"],
            "scnn_mult_slots": c["slots"],
            "scnn_stall_share": 1 - c["base"] / c["busy_sum"] if c["busy_sum"] else 0.0,
            "scnn_halo_cycles": c["halo_cycles"],
            "scnn_kc": c["kc"],
        },
    )
