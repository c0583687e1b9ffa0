"""Slow, obvious NumPy twins of the numba kernels in :mod:`simulator.kernels`.

Written from the kernels' *documented* meaning, not from their code: every line
(row or column of each group's matrix) is taken whole, its kept positions found
with ``np.flatnonzero`` and its zero runs with ``np.diff``. Inputs are the same
``(groups, rows, cols)`` uint8 arrays (nonzero = kept); outputs are int64.

Also holds the random-mask strategies shared by the kernel and format tests.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from hypothesis import strategies as st

# --- helpers ---------------------------------------------------------------------------


def _lines(m: np.ndarray, by_column: bool) -> Iterator[np.ndarray]:
    """Every line of every group, group-major: rows (CSR order) or columns (CSC order)."""
    for g in range(m.shape[0]):
        matrix = m[g].T if by_column else m[g]
        yield from matrix


def zero_runs(line: np.ndarray) -> np.ndarray:
    """For each kept entry of a 1-D line, the zeros before it since the line's start
    or the previous kept entry (trailing zeros belong to no entry)."""
    kept = np.flatnonzero(line)
    return np.diff(np.concatenate(([-1], kept))) - 1


# --- twins -----------------------------------------------------------------------------


def line_stats(
    m: np.ndarray, by_column: bool, index_bits: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Twin of ``kernels.line_stats``: per line (rows, or columns with ``by_column``) the
    kept entries and the relative-index fillers at ``index_bits``, and the histogram of
    zero runs before kept entries along that axis."""
    lines = list(_lines(m, by_column))
    length = m.shape[1] if by_column else m.shape[2]
    line_nnz = np.array([np.count_nonzero(line) for line in lines], dtype=np.int64)
    fillers = line_fillers(m, index_bits, by_column)
    gap_hist = np.zeros(max(length, 1), dtype=np.int64)
    for line in lines:
        for run in zero_runs(line):
            gap_hist[run] += 1
    return line_nnz, fillers, gap_hist


def pe_column_entries(m: np.ndarray, pes: int, index_bits: int) -> tuple[np.ndarray, np.ndarray]:
    """Twin of ``kernels.pe_column_entries`` (given the mask unpacked): row ``i`` on PE
    ``i % pes``; each PE's slice of each column (its local rows, in order) stored in
    relative-index CSC, so its entries are the kept ones plus a filler per ``2**b``
    zeros of each run before a kept one. Returns ``(entries[PE, g * cols + c], kept)``."""
    groups, rows, cols = m.shape
    entries = np.zeros((pes, groups * cols), dtype=np.int64)
    for g in range(groups):
        for k in range(min(pes, rows)):
            for c in range(cols):
                runs = zero_runs(m[g, k::pes, c])
                entries[k, g * cols + c] = runs.size + int((runs >> index_bits).sum())
    kept = np.count_nonzero(m, axis=1).ravel().astype(np.int64)
    return entries, kept


def line_profile(m: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Both axes at once: (row_nnz, col_nnz, row_gap_hist, col_gap_hist)."""
    row_nnz, _, row_gap_hist = line_stats(m, False, 0)
    col_nnz, _, col_gap_hist = line_stats(m, True, 0)
    return row_nnz, col_nnz, row_gap_hist, col_gap_hist


def line_fillers(m: np.ndarray, index_bits: int, by_column: bool) -> np.ndarray:
    """Per line, sum over kept entries of floor(zeros before it / 2**index_bits): a run
    of k zeros costs that many filler entries (EIE, Deep Compression)."""
    span = 2**index_bits
    return np.array(
        [int(np.sum(zero_runs(line) // span)) for line in _lines(m, by_column)], dtype=np.int64
    )


def block_counts(m: np.ndarray, block_rows: int, block_cols: int) -> np.ndarray:
    """Twin of ``kernels.block_counts``: per group and block-row, the tiles (starting at
    (0, 0), border tiles partial) that hold any kept entry."""
    groups, rows, cols = m.shape
    out = []
    for g in range(groups):
        for r0 in range(0, rows, block_rows):
            band = m[g, r0 : r0 + block_rows]
            out.append(
                sum(bool(band[:, c0 : c0 + block_cols].any()) for c0 in range(0, cols, block_cols))
            )
    return np.array(out, dtype=np.int64)


def tile_nnz(m: np.ndarray, tile_rows: int, tile_cols: int) -> np.ndarray:
    """Twin of ``kernels.tile_nnz``: kept entries of each tile (starting at (0, 0),
    border tiles partial), row-major within each group."""
    groups, rows, cols = m.shape
    out = []
    for g in range(groups):
        for r0 in range(0, rows, tile_rows):
            for c0 in range(0, cols, tile_cols):
                out.append(int(np.count_nonzero(m[g, r0 : r0 + tile_rows, c0 : c0 + tile_cols])))
    return np.array(out, dtype=np.int64)


def group_max(m: np.ndarray, group_size: int) -> int:
    """Twin of ``kernels.group_max``: the most kept entries in one run of ``group_size``
    consecutive columns of a row (runs start at column 0; the last may be short)."""
    best = 0
    for line in _lines(m, False):
        for c0 in range(0, line.size, group_size):
            best = max(best, int(np.count_nonzero(line[c0 : c0 + group_size])))
    return best


def nm_keep(score: np.ndarray, n: int) -> np.ndarray:
    """Twin of ``kernels.nm_keep``: a stable descending sort of each row; its first
    ``n`` positions are kept."""
    order = np.argsort(-score, axis=1, kind="stable")[:, :n]
    out = np.zeros(score.shape, dtype=np.uint8)
    np.put_along_axis(out, order, 1, axis=1)
    return out


# --- SCNN accumulator-bank stalls ------------------------------------------------------


def scnn_bank_of(k: np.ndarray, x: np.ndarray, y: np.ndarray, banks: int) -> np.ndarray:
    """Accumulator bank of output (k, x, y): DNNsim's SCNN mapping (isakedo/DNNsim,
    core/src/SCNN.cpp ``map_accumulator``): low bits of x, y and k interleaved so that
    neighbouring outputs of neighbouring channels fall in different banks."""
    return (
        (((k & 4) << 2) ^ ((x & 2) << 3) ^ ((y & 2) << 3))
        + ((x & 1) << 3)
        + ((y & 1) << 2)
        + (k & 3)
    ) % banks


def scnn_bank_stalls(
    layer, wm: np.ndarray, am: np.ndarray, array, geo: dict, steps: np.ndarray, budget: int
) -> tuple[np.ndarray, np.ndarray]:
    """Twin of ``kernels.scnn_bank_stalls`` in numpy, whole arrays per step: the product
    blocks of the given (output-channel group, channel, PE) steps of conv group 0, in
    SCNN's order: the step's nonzero weights (r, s, k order, output channel fastest, as
    DNNsim queues them) in vectors of F against the PE's nonzero activations
    (row-major) in vectors of I, per stride phase, until ``budget`` products. Returns
    (stall cycles summed, blocks seen) by block size."""
    sh, sw = layer.stride_hw
    dh, dw = layer.dilation_hw
    ph, pw = layer.padding_hw
    p, q = layer.output_hw
    th, tw = geo["tile"]
    f, i, banks = array.weight_vector, array.activation_vector, array.accumulator_banks
    sizes_out, loads_out = [np.zeros(0, dtype=np.int64)], [np.zeros((0, banks), dtype=np.int64)]
    for g, c, pr, pc in steps.tolist():
        r, s, k = np.nonzero(wm[g * geo["kc"] : (g + 1) * geo["kc"], c].transpose(1, 2, 0))
        k = k + g * geo["kc"]
        tile = am[c, pr * th : (pr + 1) * th, pc * tw : (pc + 1) * tw]
        y, x = np.nonzero(tile)
        y, x = y + pr * th, x + pc * tw
        if k.size == 0 or y.size == 0:
            continue
        wph = ((r * dh) % sh) * sw + (s * dw) % sw
        aph = ((y + ph) % sh) * sw + (x + pw) % sw
        for phase in np.intersect1d(wph, aph):
            wsel, asel = wph == phase, aph == phase
            kk, rr, ss = k[wsel], r[wsel], s[wsel]
            yy, xx = y[asel], x[asel]
            nw, na = kk.size, yy.size
            budget -= nw * na
            oy = (yy[None, :] + ph - rr[:, None] * dh) // sh
            ox = (xx[None, :] + pw - ss[:, None] * dw) // sw
            valid = (oy >= 0) & (oy < p) & (ox >= 0) & (ox < q)
            bank = scnn_bank_of(np.broadcast_to(kk[:, None], oy.shape), ox, oy, banks)
            n_ab = -(-na // i)
            block = (np.arange(nw) // f)[:, None] * n_ab + (np.arange(na) // i)[None, :]
            n_blocks = -(-nw // f) * n_ab
            loads = np.bincount((block * banks + bank)[valid], minlength=n_blocks * banks).reshape(
                n_blocks, banks
            )
            fb = np.minimum(f, nw - (np.arange(-(-nw // f)) * f))
            ib = np.minimum(i, na - (np.arange(n_ab) * i))
            sizes_out.append((fb[:, None] * ib[None, :]).ravel())
            loads_out.append(loads)
        if budget <= 0:
            break
    sizes, loads = np.concatenate(sizes_out), np.concatenate(loads_out)
    total, seen = np.zeros(f * i + 1), np.zeros(f * i + 1, dtype=np.int64)
    for n, row in zip(sizes.tolist(), loads, strict=True):  # block by block, plainly
        total[n] += max(1, int(row.max(initial=0))) - 1
        seen[n] += 1
    return total, seen


def scnn_activation_counts(am, first, channels, pe_map, phase_map, pes, phases) -> np.ndarray:
    """Twin of ``kernels.scnn_activation_counts``: the nonzero pixels listed, then binned."""
    c_idx, y_idx, x_idx = np.nonzero(am[first : first + channels])
    key = (c_idx * phases + phase_map[y_idx, x_idx]) * pes + pe_map[y_idx, x_idx]
    return np.bincount(key, minlength=pes * channels * phases).reshape(channels * phases, pes)


def scnn_window_counts(am, geom) -> np.ndarray:
    """Twin of ``kernels.scnn_window_counts``: the plane padded, each offset's strided
    window cut out and summed."""
    r, s, sh, sw, dh, dw, ph, pw, p, q = (int(v) for v in geom)
    c, h, w = am.shape
    padded = np.zeros((c, h + 2 * ph, w + 2 * pw), dtype=np.int64)
    padded[:, ph : ph + h, pw : pw + w] = am
    out = np.empty((r, s, c), dtype=np.int64)
    for i in range(r):
        for j in range(s):
            window = padded[
                :, i * dh : i * dh + (p - 1) * sh + 1 : sh, j * dw : j * dw + (q - 1) * sw + 1 : sw
            ]
            out[i, j] = window.sum(axis=(1, 2))
    return out


def scnn_weight_counts(wm, kg, kc, phase_map, phases):
    """Twin of ``kernels.scnn_weight_counts``: per conv group, segment sums over
    filters, then over the phases."""
    n_k, n_c = wm.shape[:2]
    out, sums = [], []
    for g in range(n_k // kg):
        wg = wm[g * kg : (g + 1) * kg].astype(np.int64)
        per_group = np.add.reduceat(wg, np.arange(0, kg, kc), axis=0)  # (n_kc, Cg, R, S)
        w = np.stack([per_group[:, :, phase_map == k].sum(axis=2) for k in range(phases)], -1)
        out.append(w.reshape(per_group.shape[0], n_c * phases))
        sums.append(wg.sum(axis=0))
    return np.stack(out), np.concatenate(sums)


# --- random masks for the tests ----------------------------------------------------------

DENSITIES = (0.0, 0.01, 0.05, 0.2, 0.5, 0.8, 0.97, 1.0)
"""Densities drawn by :func:`gemm_masks`: empty, very sparse, sparse, dense, full."""


def bernoulli(shape: tuple[int, ...], density: float, seed: int) -> np.ndarray:
    """An i.i.d. uint8 mask, C-contiguous."""
    rng = np.random.default_rng(seed)
    return np.ascontiguousarray(rng.random(shape) < density, dtype=np.uint8)


@st.composite
def gemm_masks(
    draw: st.DrawFn, max_groups: int = 4, max_side: int = 40, long_lines: bool = True
) -> np.ndarray:
    """A ``(groups, rows, cols)`` uint8 mask of random shape and density.

    Shapes include single rows, single columns and (with ``long_lines``) lines of a
    few hundred entries, so that runs longer than 2**8 occur at low density.
    """
    kind = draw(st.sampled_from(["any", "row", "col", "long"] if long_lines else ["any"]))
    groups = draw(st.integers(1, max_groups))
    if kind == "row":
        rows, cols = 1, draw(st.integers(1, max_side * 4))
    elif kind == "col":
        rows, cols = draw(st.integers(1, max_side * 4)), 1
    elif kind == "long":
        rows, cols = draw(st.integers(1, 4)), draw(st.integers(200, 700))
        if draw(st.booleans()):
            rows, cols = cols, rows
    else:
        rows, cols = draw(st.integers(1, max_side)), draw(st.integers(1, max_side))
    density = draw(st.sampled_from(DENSITIES) | st.floats(0.0, 1.0))
    seed = draw(st.integers(0, 2**32 - 1))
    m = bernoulli((groups, rows, cols), density, seed)
    if draw(st.booleans()):  # nonzero means kept, whatever the value
        m = m * np.uint8(draw(st.integers(1, 255)))
    return np.ascontiguousarray(m, dtype=np.uint8)


@st.composite
def small_matrices(draw: st.DrawFn, max_side: int = 24) -> np.ndarray:
    """A 2-D int matrix with random nonzero values (in 1..9) where kept."""
    rows, cols = draw(st.integers(1, max_side)), draw(st.integers(1, max_side))
    density = draw(st.sampled_from(DENSITIES) | st.floats(0.0, 1.0))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return np.where(rng.random((rows, cols)) < density, rng.integers(1, 10, (rows, cols)), 0)


@st.composite
def masks_with_runs(draw: st.DrawFn, index_bits: int, by_column: bool) -> np.ndarray:
    """A sparse mask whose lines (rows, or columns with ``by_column``) are long enough
    and sparse enough for zero runs of 2**index_bits and more, i.e. fillers."""
    span = 2**index_bits
    groups = draw(st.integers(1, 3))
    length = draw(st.integers(2 * span, 4 * span + 20))
    lines = draw(st.integers(2, 6))
    density = draw(st.floats(0.3 / span, 1.5 / span))
    shape = (groups, length, lines) if by_column else (groups, lines, length)
    return bernoulli(shape, density, draw(st.integers(0, 2**32 - 1)))


# --- SCALE-Sim v3: its demand matrices and buffers, ported as written -------------------


def _skew(m: np.ndarray) -> np.ndarray:
    rows, cols = m.shape
    out = np.full((rows + cols - 1, cols), -1, dtype=np.int64)
    for c in range(cols):
        out[c : c + rows, c] = m[:, c]
    return out


def _pad(m: np.ndarray, rows: int, cols: int) -> np.ndarray:
    out = np.full((rows, cols), -1, dtype=np.int64)
    out[: m.shape[0], : m.shape[1]] = m
    return out


def scalesim_operands(geom) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """SCALE-Sim's operand matrices (operand_matrix.py), offsets 0."""
    h, w, c, fh, fw, sh, k, eh, ew, sw = (int(x) for x in geom)
    i, j = np.meshgrid(np.arange(eh * ew), np.arange(fh * fw * c), indexing="ij")
    orow, ocol = np.divmod(i, ew)
    irow, icol = orow * sh, ocol * sw
    window = (irow * w + icol) * c
    crow, rest = np.divmod(j, fw * c)
    ccol, ch = np.divmod(rest, c)
    valid = (crow + irow < h) & (ccol + icol < w)
    ifmap = np.where(valid, (crow * w + ccol) * c + ch + window, -1)
    filt = np.arange(k)[None, :] * (fh * fw * c) + np.arange(fh * fw * c)[:, None]
    ofmap = np.arange(eh * ew)[:, None] * k + np.arange(k)[None, :]
    return ifmap.astype(np.int64), filt.astype(np.int64), ofmap.astype(np.int64)


def scalesim_demands(geom, rows: int, cols: int, flow: str) -> list[np.ndarray]:
    """SCALE-Sim's ifmap, filter and ofmap demand matrices (systolic_compute_*.py)."""
    ifm, fil, ofm = scalesim_operands(geom)
    gap = lambda n, w: np.full((n, w), -1, dtype=np.int64)  # noqa: E731
    out: list[list[np.ndarray]] = [[], [], []]
    if flow == "ws":
        sr, sc, t = ifm.shape[1], fil.shape[1], ifm.shape[0]
    elif flow == "os":
        sr, sc, t = ifm.shape[0], fil.shape[1], ifm.shape[1]
    else:
        sr, sc, t = ifm.shape[1], ifm.shape[0], fil.shape[1]
    rf, cf = -(-sr // rows), -(-sc // cols)
    for fc in range(cf):
        for fr in range(rf):
            r0, c0 = fr * rows, fc * cols
            if flow == "ws":
                a = _pad(ifm[:, r0 : r0 + rows], t, rows)
                a = _skew(np.vstack([gap(rows, rows), a, gap(cols - 1, rows)]))
                b = np.flip(_pad(fil[r0 : r0 + rows, c0 : c0 + cols], rows, cols), 0)
                b = np.vstack([b, gap(rows + cols + t - 2, cols)])
                o = _pad(ofm[:, c0 : c0 + cols], t, cols)
                o = _skew(np.vstack([gap(2 * rows - 1, cols), o]))
            elif flow == "os":
                a = _skew(np.vstack([_pad(ifm.T[:, r0 : r0 + rows], t, rows), gap(cols - 1, rows)]))
                b = _skew(np.vstack([_pad(fil[:, c0 : c0 + cols], t, cols), gap(rows - 1, cols)]))
                o = np.flip(_pad(ofm[r0 : r0 + rows, c0 : c0 + cols], rows, cols), 0)
                o = _skew(np.vstack([gap(t - 1, cols), o]))
            else:
                a = np.flip(_pad(ifm.T[r0 : r0 + rows, c0 : c0 + cols], rows, cols), 0)
                a = np.vstack([a, gap(rows + cols + t - 2, cols)])
                b = _pad(fil[r0 : r0 + rows, :].T, t, rows)
                b = _skew(np.vstack([gap(rows, rows), b, gap(cols - 1, rows)]))
                o = _pad(ofm[c0 : c0 + cols, :].T, t, cols)
                o = _skew(np.vstack([gap(2 * rows - 1, cols), o]))
            for lst, m in zip(out, (a, b, o), strict=True):
                lst.append(m)
    return [np.vstack(lst) for lst in out]


def scalesim_read_words(demand: np.ndarray, total_bytes: int) -> int:
    """DRAM words of ReadBufferEstimateBw (read_buffer_estimate_bw.py), word size 1,
    active fraction 0.5: its sets, window and prefetch counts, without cycles."""
    per_set = total_bytes // 100
    n_active, n_prefetch = 50, 50
    sets: list[set | None] = []
    current: set = set()
    set_id, start, end = 0, 0, n_active - 1
    pf_start = pf_end = -1
    done = False
    words = 0
    for addr in demand.ravel():
        if addr == -1:
            continue
        if any(addr in sets[i] for i in range(start, min(set_id, end + 1))):
            continue
        if addr in current:
            continue
        current.add(addr)
        if len(current) == per_set:
            sets.append(current)
            current = set()
            set_id += 1
            if set_id == end + 1:
                if not done:
                    words += sum(len(sets[i]) for i in range(n_active))
                    pf_start, pf_end = end + 1, end + n_prefetch
                    done = True
                else:
                    words += sum(len(sets[i]) for i in range(pf_start, pf_end + 1))
                    pf_start += n_prefetch
                    pf_end += n_prefetch
                start += n_prefetch
                end += n_prefetch
    if current:
        sets.append(current)
    else:
        set_id -= 1
    first = 0 if not done else pf_start
    words += sum(len(sets[i]) for i in range(first, set_id + 1))
    return words


def scalesim_write_words(demand: np.ndarray, total_bytes: int, line: int) -> int:
    """DRAM words of write_buffer (write_buffer.py), word size 1, active fraction 0.5,
    write-port latency 0, one demand row per cycle plus the stalls it causes."""
    total = total_bytes
    active = -(-total // 2)
    drain = total - active
    trace: list[list[int]] = []
    cache: list[list[int]] = []
    cur_line: list[int] = []
    free, drain_end, start, words, stalls = total, 0, 0, 0, 0

    def flush(force: bool) -> None:
        nonlocal cur_line
        if force and cur_line:
            cache.append(cur_line + [-1] * (line - len(cur_line)))
            cur_line = []
        trace.extend(cache)
        cache.clear()

    def drain_once(at: int) -> int:
        nonlocal start, words, free
        end = min(start + -(-drain // line), len(trace))
        chunk = trace[start:end]
        n = len(chunk) * line - chunk[-1].count(-1)
        words += n
        free += n
        start = end
        return at + len(chunk) - 1

    for i, row in enumerate(demand):
        cycle = i + stalls
        offset = 0
        for elem in row:
            if elem == -1:
                continue
            cur_line.append(int(elem))
            free -= 1
            if len(cur_line) == line:
                cache.append(cur_line)
                cur_line = []
                if len(cache) >= 1024:
                    flush(False)
            now = cycle + offset
            if now < drain_end:
                if free <= 0:
                    offset += max(drain_end - now, 0)
            elif free < total - drain:
                flush(True)
                drain_end = drain_once(now)
        stalls += offset
    flush(True)
    while start < len(trace):
        drain_once(0)
    return words


# --- SCNN ------------------------------------------------------------------------------


def scnn_schedule(
    w_nnz: np.ndarray, a_nnz: np.ndarray, a_of: np.ndarray, f: int, i: int, stall: np.ndarray
):
    """Twin of ``kernels.scnn_schedule``, block by block: every PE walks its steps,
    splitting ``w`` weights into vectors of ``f`` and ``a`` activations into vectors of
    ``i``; a vector pair of ``n`` products takes ``1 + stall[n]`` cycles; each barrier
    group lasts as long as its slowest PE."""
    groups, pes, steps = w_nnz.shape
    busy = np.zeros(pes)
    slots = np.zeros(pes, dtype=np.int64)
    products = np.zeros(pes, dtype=np.int64)
    base = np.zeros(pes, dtype=np.int64)
    total = 0.0
    for g in range(groups):
        times = []
        for p in range(pes):
            t = 0.0
            for c in range(steps):
                w, a = int(w_nnz[g, p, c]), int(a_nnz[a_of[g], p, c])
                wv = [min(f, w - s) for s in range(0, w, f)]
                av = [min(i, a - s) for s in range(0, a, i)]
                for x in wv:
                    for y in av:
                        t += 1 + stall[x * y]
                        base[p] += 1
                        slots[p] += f * i
                products[p] += w * a
            busy[p] += t
            times.append(t)
        total += max(times)
    return total, busy, slots, products, base


def effectual_macs(weights: np.ndarray, acts: np.ndarray, stride, padding, dilation) -> int:
    """MACs of a convolution whose weight and activation are both nonzero, by direct
    convolution of the masks: ``weights`` (K, C, R, S), ``acts`` (C, H, W), one group."""
    r, s = weights.shape[2:]
    _, h, w = acts.shape
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    p = (h + 2 * ph - dh * (r - 1) - 1) // sh + 1
    q = (w + 2 * pw - dw * (s - 1) - 1) // sw + 1
    total = 0
    for oy in range(p):
        for ox in range(q):
            for i in range(r):
                for j in range(s):
                    y, x = oy * sh + i * dh - ph, ox * sw + j * dw - pw
                    if 0 <= y < h and 0 <= x < w:
                        total += int((weights[:, :, i, j].astype(np.int64) @ acts[:, y, x]).sum())
    return total


# --- loop-nest search ------------------------------------------------------------------


def map_search(dims, tilings, bits, budget, on_chip, groups, objective, prices):
    """Twin of ``kernels.map_search``, in arrays: every (Mt, Kt, Nt) checked against the
    budget, the largest fitting Nt kept per (Mt, Kt) (none fitting: the smallest
    tiles), the counts of every kept candidate in every order
    (``mapping._evaluate``), the ranking keys as arrays, and ``np.lexsort``'s first.
    Returns ``(order, im, ik, in, fits)`` and the keys of that one."""
    from simulator.mapping import _evaluate

    m, k, n = dims
    tm, tk, tn = tilings
    wb, ab, pb = bits
    im, ik = (
        a.ravel()
        for a in np.meshgrid(np.arange(len(tm.tile)), np.arange(len(tk.tile)), indexing="ij")
    )
    i_n = np.arange(len(tn.tile))[None, :]
    windowed = tk.per_pass[ik][:, None] * tn.per_pass[i_n] <= tk.dim * tn.dim
    held_i = np.where(
        windowed,
        tk.per_tile[ik][:, None] * tn.per_tile[i_n],
        tk.tile[ik][:, None] * tn.tile[i_n],
    ) * (0.0 if on_chip else ab)
    held_w = tm.tile[im] * tk.tile[ik] * wb
    held_o = tm.tile[im][:, None] * tn.tile[None, :] * pb
    if budget.shared is not None:
        ok = held_w[:, None] + held_i + held_o <= budget.shared
    else:
        ok = (
            (held_w <= budget.weights)[:, None]
            & (held_i <= budget.inputs)
            & (held_o <= budget.outputs)
        )
    last = ok.shape[1] - 1 - np.argmax(ok[:, ::-1], axis=1)
    rows = ok.any(axis=1)
    fits = bool(rows.any())
    if fits:
        pick = (im[rows], ik[rows], last[rows])
    else:
        pick = (np.zeros(1, dtype=np.int64),) * 3
    c = _evaluate((m, k, n), tilings, pick, on_chip)
    outs = m * n
    reads = c["w_dram"] * wb + c["i_dram"] * ab + c["psum_dram"] * pb
    writes = c["o_dram"] * ab + c["psum_dram"] * pb
    accumulate = (c["o_buf_w"] - outs) * pb
    port = c["w_buf"] * wb + c["i_buf"] * ab + outs * ab + reads + writes
    dram = groups * (reads + writes).astype(np.float64)
    buffer = groups * (port + 2 * accumulate).astype(np.float64)
    if objective == "dram":
        key = dram
    elif objective == "latency":
        key = np.maximum(
            np.maximum(prices.compute_s, dram / 8 / prices.dram_bytes_per_s),
            groups * port / prices.buffer_bits_per_s,
        )
    else:
        key = groups * (
            reads * prices.dram_read_pj
            + writes * prices.dram_write_pj
            + (port - reads) * prices.buffer_read_pj
            + (reads + outs * ab) * prices.buffer_write_pj
            + accumulate * (prices.buffer_read_pj + prices.buffer_write_pj)
        )
    keys = [np.broadcast_to(x, (6, len(pick[0]))).ravel() for x in (key, dram, buffer)]
    first = int(np.lexsort(keys[::-1])[0])
    o, i = divmod(first, len(pick[0]))
    return (o, *(int(p[i]) for p in pick), int(fits)), [float(x[first]) for x in keys]
