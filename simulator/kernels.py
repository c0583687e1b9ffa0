"""numba kernels on plain arrays and ints.

Every kernel takes a C-contiguous ``uint8`` mask of shape ``(groups, rows, cols)``
(the GEMM view of a layer: one ``rows x cols`` weight matrix per group, nonzero =
kept) and returns int64 counts; :func:`pe_column_entries` takes the mask bit-packed
along its rows, the ``factored_*`` kernels a mask's two factors (kept rows, kept
columns); :func:`nm_keep` takes scores and returns a mask, the SCALE-Sim kernels
take a layer's geometry instead, and :func:`map_search` a dense layer's candidate
tilings (the loop-nest search of :mod:`simulator.mapping`). No package
imports, no globals, no fastmath.
Python wrappers in :mod:`simulator.formats` check and convert input; each kernel
has a slow NumPy twin in ``tests/twins.py``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def _row_positions(m, g, i, pos):
    """Write the column indices of row ``i`` of group ``g`` that are kept into
    ``pos`` (branch-free compaction) and return how many there are."""
    k = 0
    for j in range(m.shape[2]):
        pos[k] = j
        k += m[g, i, j] != 0
    return k


@njit(cache=True, nogil=True)
def line_stats(m, by_column, index_bits):
    """One pass: kept entries, relative-index fillers and zero-run histogram per line.

    Lines are rows (``by_column`` false: CSR) or columns (CSC). Returns
    ``(line_nnz, line_fillers, gap_hist)``:

    - ``line_nnz[g * lines + i]``: kept entries of line ``i`` of group ``g``;
    - ``line_fillers[...]``: filler entries of that line when a run of ``k`` zeros
      before a kept entry costs ``k >> index_bits`` fillers (EIE, Deep Compression);
    - ``gap_hist[k]``: kept entries preceded, within their line, by exactly ``k``
      zeros since the line's start or the previous kept entry (so the fillers at
      any other width ``b`` are ``sum_k gap_hist[k] * (k >> b)``).
    """
    n_groups, n_rows, n_cols = m.shape
    n_lines = n_cols if by_column else n_rows
    length = n_rows if by_column else n_cols
    line_nnz = np.zeros(n_groups * n_lines, dtype=np.int64)
    fillers = np.zeros(n_groups * n_lines, dtype=np.int64)
    gap_hist = np.zeros(max(length, 1), dtype=np.int64)
    last = np.empty(n_cols, dtype=np.int64)
    pos = np.empty(n_cols + 1, dtype=np.int64)
    for g in range(n_groups):
        for j in range(n_cols):
            last[j] = -1
        for i in range(n_rows):
            k = _row_positions(m, g, i, pos)
            if by_column:
                for t in range(k):
                    j = pos[t]
                    gap = i - last[j] - 1
                    gap_hist[gap] += 1
                    line_nnz[g * n_cols + j] += 1
                    fillers[g * n_cols + j] += gap >> index_bits
                    last[j] = i
            else:
                prev = -1
                total = 0
                for t in range(k):
                    j = pos[t]
                    gap = j - prev - 1
                    gap_hist[gap] += 1
                    total += gap >> index_bits
                    prev = j
                line_nnz[g * n_rows + i] = k
                fillers[g * n_rows + i] = total
    return line_nnz, fillers, gap_hist


@njit(cache=True, nogil=True)
def block_counts(m, block_rows, block_cols):
    """Tiles of ``block_rows x block_cols`` holding a kept entry, per block-row.

    Tiles start at (0, 0); those at the bottom and right border may be partial.
    Returns int64 of length ``groups * ceil(rows / block_rows)``.
    """
    n_groups, n_rows, n_cols = m.shape
    n_brows = (n_rows + block_rows - 1) // block_rows
    n_bcols = (n_cols + block_cols - 1) // block_cols
    out = np.zeros(n_groups * n_brows, dtype=np.int64)
    seen = np.zeros(n_bcols, dtype=np.int64)
    pos = np.empty(n_cols + 1, dtype=np.int64)
    for g in range(n_groups):
        for bi in range(n_brows):
            for bj in range(n_bcols):
                seen[bj] = 0
            for i in range(bi * block_rows, min(n_rows, (bi + 1) * block_rows)):
                k = _row_positions(m, g, i, pos)
                for t in range(k):
                    seen[pos[t] // block_cols] = 1
            count = 0
            for bj in range(n_bcols):
                count += seen[bj]
            out[g * n_brows + bi] = count
    return out


@njit(cache=True, nogil=True)
def tile_nnz(m, tile_rows, tile_cols):
    """Kept entries of every ``tile_rows x tile_cols`` tile, tiles starting at (0, 0)
    (those at the bottom and right border may be partial), row-major within each
    group. Returns int64 of length ``groups * ceil(rows / tile_rows) *
    ceil(cols / tile_cols)``.
    """
    n_groups, n_rows, n_cols = m.shape
    n_trows = (n_rows + tile_rows - 1) // tile_rows
    n_tcols = (n_cols + tile_cols - 1) // tile_cols
    out = np.zeros(n_groups * n_trows * n_tcols, dtype=np.int64)
    pos = np.empty(n_cols + 1, dtype=np.int64)
    for g in range(n_groups):
        for i in range(n_rows):
            base = (g * n_trows + i // tile_rows) * n_tcols
            k = _row_positions(m, g, i, pos)
            for t in range(k):
                out[base + pos[t] // tile_cols] += 1
    return out


@njit(cache=True, nogil=True)
def group_max(m, group_size):
    """Largest number of kept entries in one group of ``group_size`` consecutive
    columns of a row (groups start at column 0; the last one may be short)."""
    n_groups, n_rows, n_cols = m.shape
    best = 0
    for g in range(n_groups):
        for i in range(n_rows):
            for start in range(0, n_cols, group_size):
                kept = 0
                for j in range(start, min(start + group_size, n_cols)):
                    kept += m[g, i, j] != 0
                if kept > best:
                    best = kept
    return np.int64(best)


@njit(cache=True, nogil=True)
def nm_keep(score, n):
    """N:M selection: keep the ``n`` largest of each row of ``score`` (float64, or
    uint32, shape ``(groups, m)``), ties to the lower position, exactly as a stable descending sort
    ranks them. Returns ``uint8`` of ``score``'s shape (1 = kept)."""
    n_groups, m = score.shape
    out = np.zeros((n_groups, m), dtype=np.uint8)
    if m == 4:  # 2:4 and 1:4, the sparse tensor units' shape: the count below, unrolled
        for g in range(n_groups):
            a, b, c, d = score[g, 0], score[g, 1], score[g, 2], score[g, 3]
            out[g, 0] = np.int64(b > a) + np.int64(c > a) + np.int64(d > a) < n
            out[g, 1] = np.int64(a >= b) + np.int64(c > b) + np.int64(d > b) < n
            out[g, 2] = np.int64(a >= c) + np.int64(b >= c) + np.int64(d > c) < n
            out[g, 3] = np.int64(a >= d) + np.int64(b >= d) + np.int64(c >= d) < n
        return out
    if m <= 32:  # rank by counting (m*m branch-free comparisons), no sort
        for g in range(n_groups):
            row = score[g]
            for i in range(m):
                s = row[i]
                above = 0
                for j in range(i):  # earlier positions win ties
                    above += row[j] >= s
                for j in range(i + 1, m):
                    above += row[j] > s
                out[g, i] = above < n
        return out
    for g in range(n_groups):
        order = np.argsort(-score[g].astype(np.float64), kind="mergesort")  # stable
        for t in range(min(n, m)):
            out[g, order[t]] = 1
    return out


@njit(cache=True, nogil=True)
def eie_schedule(entries, active, fifo_depth):
    """Cycle count of an EIE-style PE array working through broadcast activations.

    ``entries[k, c]`` is what PE ``k`` stores of column ``c`` (kept values and
    fillers); ``active`` lists the columns whose activation is nonzero, in
    broadcast order. PE ``k`` spends ``max(1, entries[k, c])`` cycles on column
    ``c`` (the pointer read takes the cycle when it stores nothing). Activations
    are pushed in order, at most one per cycle, into every PE's FIFO of
    ``fifo_depth`` entries; a push waits until every FIFO has room (the item
    ``fifo_depth`` earlier has been started). A PE starts an item the cycle after
    it was pushed and after finishing the previous one.
    Returns ``(total_cycles, busy_cycles_per_pe)``. The work is done by
    :func:`eie_schedule_columns` on the transposed entries.
    """
    return eie_schedule_columns(np.ascontiguousarray(entries.T), active, fifo_depth)


@njit(cache=True, nogil=True)
def eie_schedule_columns(columns, active, fifo_depth):
    """:func:`eie_schedule` with the entries by column: ``columns[c, k]`` is what PE
    ``k`` stores of column ``c`` (C-contiguous, so that each activation reads one
    contiguous row; the FIFO start times are kept slot by slot likewise)."""
    n_pe = columns.shape[1]
    n_act = active.shape[0]
    finish = np.zeros(n_pe, dtype=np.int64)
    busy = np.zeros(n_pe, dtype=np.int64)
    started = np.zeros((fifo_depth, n_pe), dtype=np.int64)
    t_push = -1
    for j in range(n_act):
        t = t_push + 1
        slot = started[j % fifo_depth]
        if j >= fifo_depth:
            for k in range(n_pe):
                if slot[k] > t:
                    t = slot[k]
        t_push = t
        work = columns[active[j]]
        for k in range(n_pe):
            s = finish[k]
            if t_push + 1 > s:
                s = t_push + 1
            slot[k] = s
            w = work[k]
            if w < 1:
                w = 1
            finish[k] = s + w
            busy[k] += w
    total = np.int64(0)
    for k in range(n_pe):
        if finish[k] > total:
            total = finish[k]
    return total, busy


@njit(cache=True, nogil=True)
def _packed_row_positions(p, g, i, pos):
    """Write the column indices of the kept entries of row ``i`` of group ``g`` of a
    bit-packed mask into ``pos`` (at least 8 per byte of a row) and return how many
    there are; bytes that keep nothing are skipped whole."""
    k = 0
    for jb in range(p.shape[2]):
        b = p[g, i, jb]
        if b != 0:
            j = jb * 8
            for t in range(8):
                pos[k] = j + t
                k += (b >> (7 - t)) & 1
    return k


@njit(cache=True, nogil=True)
def pe_column_entries(p, n_cols, pes, index_bits, row_nnz, by_column):
    """Stored entries of each PE's slice of each column, rows interleaved over PEs.

    ``p`` is the mask bit-packed along its rows (``numpy.packbits(m, axis=-1)``: uint8
    ``(groups, rows, ceil(n_cols / 8))``, first column in the high bit). Row ``i`` of
    every group belongs to PE ``i % pes`` as its local row ``i // pes``; each PE stores
    its slice of each column in relative-index CSC (a run of ``k`` zeros of its local
    rows before a kept entry costs ``k >> index_bits`` fillers). Returns ``(entries,
    kept)``: ``entries[k, g * n_cols + c]`` counts PE ``k``'s kept values and fillers
    in column ``c`` of group ``g`` (``entries[g * n_cols + c, k]`` with
    ``by_column``); ``kept[g * n_cols + c]`` the column's kept values over all PEs.
    ``row_nnz[g * rows + i]`` (the mask's kept entries per row) lets rows that keep
    nothing be skipped unread.
    """
    n_groups, n_rows, n_bytes = p.shape
    n = n_groups * n_cols
    entries = np.zeros((n, pes) if by_column else (pes, n), dtype=np.int64)
    kept = np.zeros(n, dtype=np.int64)
    last = np.empty(n_cols, dtype=np.int64)
    pos = np.empty(8 * n_bytes + 8, dtype=np.int64)
    block = 8  # PEs counted at a time: with by_column, one cache line of each column
    buf = np.empty((block, n_cols), dtype=np.int64)
    n_pe = min(pes, n_rows)
    for g in range(n_groups):
        base = g * n_cols
        for k0 in range(0, n_pe, block):
            k1 = min(k0 + block, n_pe)
            for k in range(k0, k1):  # PE by PE: its row of entries stays in cache
                row = buf[k - k0]
                for c in range(n_cols):
                    row[c] = 0
                    last[c] = -1
                local = 0
                for i in range(k, n_rows, pes):
                    if row_nnz[g * n_rows + i] == 0:  # e.g. a pruned filter
                        local += 1
                        continue
                    count = _packed_row_positions(p, g, i, pos)
                    for t in range(count):
                        c = pos[t]
                        gap = local - last[c] - 1
                        row[c] += 1 + (gap >> index_bits)
                        kept[base + c] += 1
                        last[c] = local
                    local += 1
                if not by_column:
                    for c in range(n_cols):
                        entries[k, base + c] = row[c]
            if by_column:
                for c in range(n_cols):
                    for b in range(k1 - k0):
                        entries[base + c, k0 + b] = buf[b, c]
    return entries, kept


@njit(cache=True, nogil=True)
def factored_pe_entries(rows_kept, cols_kept, pes, index_bits, by_column):
    """:func:`pe_column_entries` of the mask ``rows_kept[g, i] and cols_kept[g, c]``
    (uint8 factors ``(groups, rows)`` and ``(groups, cols)``: whole filters and input
    columns kept), from the factors: PE ``k`` stores in every kept column of group
    ``g`` the entries of its local rows' pattern ``rows_kept[g, k::pes]``."""
    n_groups, n_rows = rows_kept.shape
    n_cols = cols_kept.shape[1]
    n = n_groups * n_cols
    entries = np.zeros((n, pes) if by_column else (pes, n), dtype=np.int64)
    kept = np.zeros(n, dtype=np.int64)
    for g in range(n_groups):
        base = g * n_cols
        rows = 0
        for i in range(n_rows):
            rows += rows_kept[g, i] != 0
        for k in range(min(pes, n_rows)):
            e = 0
            last = -1
            local = 0
            for i in range(k, n_rows, pes):
                if rows_kept[g, i] != 0:
                    e += 1 + ((local - last - 1) >> index_bits)
                    last = local
                local += 1
            for c in range(n_cols):
                if cols_kept[g, c] != 0:
                    if by_column:
                        entries[base + c, k] = e
                    else:
                        entries[k, base + c] = e
        for c in range(n_cols):
            if cols_kept[g, c] != 0:
                kept[base + c] = rows
    return entries, kept


@njit(cache=True, nogil=True)
def factored_line_stats(own, other, index_bits):
    """:func:`line_stats` of the mask ``own[g, i] and other[g, j]`` (uint8 factors)
    along ``own``'s lines (its rows; pass the column factor as ``own`` for columns):
    each kept line of group ``g`` holds ``other[g]``'s pattern, so the counts come
    from that pattern, the histogram weighted by the kept lines. Returns
    ``(line_nnz, line_fillers, gap_hist)`` as :func:`line_stats` does."""
    n_groups, n_lines = own.shape
    length = other.shape[1]
    line_nnz = np.zeros(n_groups * n_lines, dtype=np.int64)
    fillers = np.zeros(n_groups * n_lines, dtype=np.int64)
    gap_hist = np.zeros(max(length, 1), dtype=np.int64)
    for g in range(n_groups):
        lines = 0
        for i in range(n_lines):
            lines += own[g, i] != 0
        nnz = 0
        fill = 0
        prev = -1
        for j in range(length):
            if other[g, j] != 0:
                gap = j - prev - 1
                gap_hist[gap] += lines
                fill += gap >> index_bits
                nnz += 1
                prev = j
        for i in range(n_lines):
            if own[g, i] != 0:
                line_nnz[g * n_lines + i] = nnz
                fillers[g * n_lines + i] = fill
    return line_nnz, fillers, gap_hist


@njit(cache=True, nogil=True)
def scnn_weight_counts(wm, kg, kc, phase_map, phases):
    """Nonzero weights of ``wm`` (uint8 ``(K, Cg, R, S)``, conv groups of ``kg``
    filters each): per conv group, output-channel group of ``kc`` filters and (channel x
    stride phase ``phase_map[r, s]``), int64 ``(K / kg, ceil(kg / kc), Cg * phases)``;
    and per (channel of the whole layer, r, s) over its group's filters, int64
    ``(K / kg * Cg, R, S)``."""
    n_k, n_c, n_r, n_s = wm.shape
    groups = n_k // kg
    n_kc = (kg + kc - 1) // kc
    w_nnz = np.zeros((groups, n_kc, n_c * phases), dtype=np.int64)
    wsum = np.zeros((groups * n_c, n_r, n_s), dtype=np.int64)
    crs = n_c * n_r * n_s
    flat = wm.reshape(n_k, crs)
    per_group = np.zeros(crs, dtype=np.int64)
    for g in range(groups):
        for gk in range(n_kc):
            per_group[:] = 0
            for k in range(g * kg + gk * kc, g * kg + min(kg, (gk + 1) * kc)):
                for j in range(crs):  # a filter's weights, contiguous: vectorised adds
                    per_group[j] += flat[k, j]
            for c in range(n_c):
                for r in range(n_r):
                    for s in range(n_s):
                        v = per_group[(c * n_r + r) * n_s + s]
                        w_nnz[g, gk, c * phases + phase_map[r, s]] += v
                        wsum[g * n_c + c, r, s] += v
    return w_nnz, wsum


@njit(cache=True, nogil=True)
def scnn_activation_counts(am, first, channels, pe_map, phase_map, pes, phases):
    """Nonzero activations per (channel x stride phase, PE) of channels ``first ..
    first + channels - 1`` of ``am`` (uint8 ``(C, H, W)``): pixel (y, x) belongs to PE
    ``pe_map[y, x]`` and phase ``phase_map[y, x]``. Returns int64 ``(channels *
    phases, pes)``. Each row is cut once into runs of pixels of one (PE, phase) (a
    tile's width at a unit stride), and a channel's run is summed as a slice."""
    _, n_h, n_w = am.shape
    out = np.zeros((channels * phases, pes), dtype=np.int64)
    # the runs of equal (phase, PE) along each row: row, first and end column, slot
    run_y = np.empty(n_h * n_w, dtype=np.int64)
    run_x = np.empty(n_h * n_w + 1, dtype=np.int64)
    run_end = np.empty(n_h * n_w, dtype=np.int64)
    run_slot = np.empty(n_h * n_w, dtype=np.int64)
    n_runs = 0
    for y in range(n_h):
        x = 0
        while x < n_w:
            slot = phase_map[y, x] * pes + pe_map[y, x]
            end = x + 1
            while end < n_w and phase_map[y, end] * pes + pe_map[y, end] == slot:
                end += 1
            run_y[n_runs] = y
            run_x[n_runs] = x
            run_end[n_runs] = end
            run_slot[n_runs] = slot
            n_runs += 1
            x = end
    acc = np.zeros(phases * pes, dtype=np.int64)
    for c in range(channels):
        acc[:] = 0
        plane = am[first + c]
        for k in range(n_runs):
            row = plane[run_y[k]]
            total = 0
            for x in range(run_x[k], run_end[k]):
                total += row[x]
            acc[run_slot[k]] += total
        for ph in range(phases):
            for pe in range(pes):
                out[c * phases + ph, pe] = acc[ph * pes + pe]
    return out


@njit(cache=True, nogil=True)
def scnn_activation_vectors(a_steps, i):
    """The nonzero activations of ``a_steps`` (int64 ``(groups, steps, PEs)``) in all,
    and per conv group and step the vectors of ``i`` they fill over the PEs,
    ``sum over PEs of ceil(a / i)``: ``(total, (groups, steps))``."""
    n_g, n_c, n_pe = a_steps.shape
    vectors = np.zeros((n_g, n_c), dtype=np.int64)
    total = 0
    shift = -1  # a power-of-two I divides by a shift
    if i & (i - 1) == 0:
        shift = 0
        while (1 << shift) < i:
            shift += 1
    for g in range(n_g):
        for c in range(n_c):
            v = 0
            s = 0
            for p in range(n_pe):
                a = a_steps[g, c, p]
                s += a
                v += ((a + i - 1) >> shift) if shift >= 0 else (a + i - 1) // i
            total += s
            vectors[g, c] = v
    return total, vectors


@njit(cache=True, nogil=True)
def k_window_counts(dim, taps, tiles):
    """For each K tile size of ``tiles`` over ``dim`` = channels x ``taps`` (tiles
    ``[s, min(s + t, dim))`` from 0): the channels the tiles touch, summed over the
    tiles and at most in one, ``(visits, most)`` int64 (a tile touches ``(end - 1) //
    taps - start // taps + 1`` channels)."""
    n = tiles.shape[0]
    visits = np.zeros(n, dtype=np.int64)
    most = np.zeros(n, dtype=np.int64)
    for j in range(n):
        t = tiles[j]
        total = 0
        top = 0
        for start in range(0, dim, t):
            end = min(start + t, dim)
            ch = (end - 1) // taps - start // taps + 1
            total += ch
            if ch > top:
                top = ch
        visits[j] = total
        most[j] = top
    return visits, most


@njit(cache=True, nogil=True)
def _window_span(first, stride, n_out, n_in):
    """The first and last input a kernel offset reads along one axis: inputs ``first +
    a * stride`` for ``a < n_out`` inside ``0 .. n_in - 1``; ``(-1, -1)`` when none."""
    a_lo = 0 if first >= 0 else (-first + stride - 1) // stride
    a_hi = min(n_out - 1, (n_in - 1 - first) // stride) if n_in - 1 - first >= 0 else -1
    if a_lo > a_hi:
        return -1, -1
    return first + a_lo * stride, first + a_hi * stride


@njit(cache=True, nogil=True)
def scnn_window_counts(am, geom):
    """Nonzero activations each kernel offset (r, s) of a convolution reads, per input
    channel: ``(R, S, C)`` int64 from ``am`` (uint8 ``(C, H, W)``) and ``geom`` =
    ``(R, S, stride_h, stride_w, dil_h, dil_w, pad_h, pad_w, out_h, out_w)``. Offset
    (r, s) reads the inputs (r dh - ph + a sh, s dw - pw + b sw) for a < out_h, b <
    out_w that lie inside the plane: sums over arithmetic progressions, taken from
    prefix sums along each stride class (rows, then the row sums by column offset;
    at a unit column stride a row's sum less the columns outside the window), so
    each channel costs about H x W + H x S + R x S additions."""
    n_r, n_s, sh, sw = geom[0], geom[1], geom[2], geom[3]
    dh, dw, ph, pw, p, q = geom[4], geom[5], geom[6], geom[7], geom[8], geom[9]
    n_c, n_h, n_w = am.shape
    out = np.zeros((n_r, n_s, n_c), dtype=np.int64)
    # the columns (first, last) of offset s and the rows of offset r, -1 when none
    x_lo = np.full(n_s, -1, dtype=np.int64)
    x_hi = np.full(n_s, -1, dtype=np.int64)
    for s in range(n_s):
        x_lo[s], x_hi[s] = _window_span(s * dw - pw, sw, q, n_w)
    y_lo = np.full(n_r, -1, dtype=np.int64)
    y_hi = np.full(n_r, -1, dtype=np.int64)
    for r in range(n_r):
        y_lo[r], y_hi[r] = _window_span(r * dh - ph, sh, p, n_h)
    pre = np.zeros(n_w, dtype=np.int64)
    rows = np.zeros((n_h, n_s), dtype=np.int64)  # per row: the inputs offset s reads
    for c in range(n_c):
        for y in range(n_h):
            line = am[c, y]
            if sw == 1:  # offset s reads columns x_lo .. x_hi: the row less its ends
                total = 0
                for x in range(n_w):
                    total += line[x]
                for s in range(n_s):
                    if x_lo[s] < 0:
                        rows[y, s] = 0
                        continue
                    cut = 0
                    for x in range(x_lo[s]):
                        cut += line[x]
                    for x in range(x_hi[s] + 1, n_w):
                        cut += line[x]
                    rows[y, s] = total - cut
                continue
            for x in range(n_w):
                v = np.int64(line[x])
                pre[x] = v + pre[x - sw] if x >= sw else v
            for s in range(n_s):
                if x_lo[s] < 0:
                    rows[y, s] = 0
                else:
                    below = pre[x_lo[s] - sw] if x_lo[s] >= sw else 0
                    rows[y, s] = pre[x_hi[s]] - below
        for y in range(sh, n_h):  # prefix sums of the row sums along each row class
            for s in range(n_s):
                rows[y, s] += rows[y - sh, s]
        for r in range(n_r):
            if y_lo[r] < 0:
                continue
            for s in range(n_s):
                below = rows[y_lo[r] - sh, s] if y_lo[r] >= sh else 0
                out[r, s, c] = rows[y_hi[r], s] - below
    return out


@njit(cache=True, nogil=True)
def scnn_bank_stalls(wm, am, steps, geom, f, i, banks, budget):
    """Accumulator-bank stalls of SCNN product blocks (Parashar et al., ISCA 2017),
    measured on sampled steps of a convolution (conv group 0).

    ``wm``: uint8 weight mask ``(K, C, R, S)``; ``am``: uint8 activation mask
    ``(C, H, W)``; ``steps[t] = (kc_group, channel, pe_row, pe_col)``; ``geom`` =
    ``(kc, tile_h, tile_w, stride_h, stride_w, dil_h, dil_w, pad_h, pad_w, out_h,
    out_w)``. Each step takes the channel's nonzero weights of the output-channel group
    (r, s, k order, k fastest) and the PE tile's nonzero activations (row-major), per
    stride phase, in vectors of ``f`` weights and ``i`` activations; a product that
    lands on output (k, x, y) goes to bank ``bank(k, x, y)`` (DNNsim's SCNN map), and a
    block takes max(1, most products in one bank) cycles. Steps run until ``budget``
    products have been simulated. Returns ``(total, seen)`` by block size 0..f*i:
    summed stall cycles (float64) and blocks seen (int64).
    """
    kc, th, tw, sh, sw = geom[0], geom[1], geom[2], geom[3], geom[4]
    dh, dw, ph, pw, p, q = geom[5], geom[6], geom[7], geom[8], geom[9], geom[10]
    n_k, _, n_r, n_s = wm.shape
    _, n_h, n_w = am.shape
    nph = sh * sw
    total = np.zeros(f * i + 1, dtype=np.float64)
    seen = np.zeros(f * i + 1, dtype=np.int64)
    wr = np.empty(kc * n_r * n_s, dtype=np.int64)
    ws = np.empty(kc * n_r * n_s, dtype=np.int64)
    wk = np.empty(kc * n_r * n_s, dtype=np.int64)
    ay = np.empty(th * tw, dtype=np.int64)
    ax = np.empty(th * tw, dtype=np.int64)
    sel_w = np.empty(kc * n_r * n_s, dtype=np.int64)
    sel_a = np.empty(th * tw, dtype=np.int64)
    a_vec = np.empty(th * tw, dtype=np.int64)
    unit = sh == 1 and sw == 1  # no division for a unit stride
    pow2 = (banks & (banks - 1)) == 0  # a mask for a power-of-two bank count
    mask = banks - 1
    for t in range(steps.shape[0]):
        g, c, pr, pc = steps[t, 0], steps[t, 1], steps[t, 2], steps[t, 3]
        nw = 0
        for r in range(n_r):
            for s in range(n_s):
                for k in range(g * kc, min((g + 1) * kc, n_k)):
                    if wm[k, c, r, s]:
                        wr[nw] = r
                        ws[nw] = s
                        wk[nw] = k
                        nw += 1
        na = 0
        for y in range(pr * th, min((pr + 1) * th, n_h)):
            for x in range(pc * tw, min((pc + 1) * tw, n_w)):
                if am[c, y, x]:
                    ay[na] = y
                    ax[na] = x
                    na += 1
        if nw == 0 or na == 0:
            continue
        for phase in range(nph):
            mw = 0
            for a in range(nw):
                if ((wr[a] * dh) % sh) * sw + (ws[a] * dw) % sw == phase:
                    sel_w[mw] = a
                    mw += 1
            ma = 0
            for b in range(na):
                if ((ay[b] + ph) % sh) * sw + (ax[b] + pw) % sw == phase:
                    sel_a[ma] = b
                    ma += 1
            if mw == 0 or ma == 0:
                continue
            budget -= mw * ma
            n_fb = (mw + f - 1) // f
            n_ab = (ma + i - 1) // i
            loads = np.zeros((n_fb * n_ab, banks), dtype=np.int64)
            for v in range(ma):  # the activation vector of each activation
                a_vec[v] = v // i
            for u in range(mw):
                a = sel_w[u]
                dy, dx, k = wr[a] * dh - ph, ws[a] * dw - pw, wk[a]
                k_hi, k_lo = (k & 4) << 2, k & 3
                row = (u // f) * n_ab
                for v in range(ma):
                    b = sel_a[v]
                    oy = ay[b] - dy
                    ox = ax[b] - dx
                    if not unit:
                        oy = oy // sh
                        ox = ox // sw
                    if oy < 0 or oy >= p or ox < 0 or ox >= q:
                        continue
                    bank = (k_hi ^ ((ox & 2) << 3) ^ ((oy & 2) << 3)) + ((ox & 1) << 3)
                    bank += ((oy & 1) << 2) + k_lo
                    bank = bank & mask if pow2 else bank % banks
                    loads[row + a_vec[v], bank] += 1
            for bf in range(n_fb):
                fb = min(f, mw - bf * f)
                for bi in range(n_ab):
                    ib = min(i, ma - bi * i)
                    most = 0
                    for bank in range(banks):
                        if loads[bf * n_ab + bi, bank] > most:
                            most = loads[bf * n_ab + bi, bank]
                    total[fb * ib] += max(1, most) - 1
                    seen[fb * ib] += 1
        if budget <= 0:
            break
    return total, seen


@njit(cache=True, nogil=True)
def _divmod_small(n, d):
    """``(n // d, n % d)`` of counts ``n >= 0``, ``d >= 1``, without a division when
    ``n < d`` (most vectors of a sparse step are short)."""
    if n < d:
        return 0, n
    q = n // d
    return q, n - q * d


@njit(cache=True, nogil=True)
def scnn_schedule(w_nnz, a_nnz, a_of, f, i, stall):
    """Cycles of an SCNN-style PE array (Parashar et al., ISCA 2017) over barrier groups.

    ``w_nnz[g, p, c]``: nonzero weights PE ``p`` multiplies in step ``c`` of barrier
    group ``g`` (for a convolution, the same for every PE: an output-channel group's
    weights of one input channel and stride phase); ``a_nnz[a_of[g], p, c]``: the
    nonzero activations PE ``p`` holds for step ``c`` of barrier group ``g`` (a conv
    group's channels, shared by its output-channel groups). A PE takes the Cartesian product of
    vectors of ``f`` weights and ``i`` activations, one pair of vectors per cycle:
    ``ceil(w / f) * ceil(a / i)`` cycles, plus ``stall[n]`` cycles for each pair whose
    product count is ``n`` (accumulator-bank conflicts; ``stall`` has ``f * i + 1``
    entries). All PEs wait for the slowest at the end of each group.
    Returns ``(cycles, busy, slots, products, base)``: total cycles (the sum over groups
    of the slowest PE's time), each PE's busy cycles, multiplier slots issued (vector
    pairs x ``f * i``), products (``w * a`` summed) and cycles without stalls, the
    last three int64 per PE.
    """
    n_g, n_pe, n_c = w_nnz.shape
    busy = np.zeros(n_pe, dtype=np.float64)
    slots = np.zeros(n_pe, dtype=np.int64)
    products = np.zeros(n_pe, dtype=np.int64)
    base = np.zeros(n_pe, dtype=np.int64)
    total = 0.0
    for g in range(n_g):
        slowest = 0.0
        for p in range(n_pe):
            t = 0.0
            for c in range(n_c):
                w = w_nnz[g, p, c]
                a = a_nnz[a_of[g], p, c]
                if w == 0 or a == 0:
                    continue
                qf, rf = _divmod_small(w, f)
                qi, ri = _divmod_small(a, i)
                nf = qf + (rf > 0)
                ni = qi + (ri > 0)
                pairs = nf * ni
                t += pairs
                base[p] += pairs
                slots[p] += pairs * f * i
                products[p] += w * a
                t += qf * qi * stall[f * i]
                if ri > 0:
                    t += qf * stall[f * ri]
                if rf > 0:
                    t += qi * stall[rf * i]
                    if ri > 0:
                        t += stall[rf * ri]
            busy[p] += t
            if t > slowest:
                slowest = t
        total += slowest
    return total, busy, slots, products, base


@njit(cache=True, nogil=True)
def scnn_shared_schedule(w_nnz, a_nnz, a_of, f, i, stall):
    """:func:`scnn_schedule` where every PE multiplies the same weights in a step (a
    convolution: an output-channel group's weights of one input channel and stride
    phase are broadcast to the whole array): ``w_nnz[g, c]`` for every PE, and the
    activations by step, ``a_nnz[a_of[g], c, p]``. Same results, each PE's additions
    in the same order (step by step), without the ``(groups, PEs, steps)`` copy; the
    PEs of a step are taken together (their sums are independent), a step's weight
    vectors are counted once for all of them and a conv group's activation vectors
    once for all its output-channel groups."""
    n_g, n_c = w_nnz.shape
    n_pe = a_nnz.shape[2]
    busy = np.zeros(n_pe, dtype=np.float64)
    products = np.zeros(n_pe, dtype=np.int64)
    base = np.zeros(n_pe, dtype=np.int64)
    t = np.empty(n_pe, dtype=np.float64)
    full = stall[f * i]
    # per (step, PE) of the current conv group: a's vectors of I, whole and partial,
    # and the stall of its partial vector against a full weight vector
    qi_of = np.zeros((n_c, n_pe), dtype=np.int64)
    ri_of = np.zeros((n_c, n_pe), dtype=np.int64)
    s_of = np.zeros((n_c, n_pe), dtype=np.float64)
    current = -1
    total = 0.0
    for g in range(n_g):
        t[:] = 0.0
        acts = a_nnz[a_of[g]]
        if a_of[g] != current:
            current = a_of[g]
            for c in range(n_c):
                for p in range(n_pe):
                    qi, ri = _divmod_small(acts[c, p], i)
                    qi_of[c, p] = qi
                    ri_of[c, p] = ri
                    s_of[c, p] = stall[f * ri] if ri > 0 else 0.0
        for c in range(n_c):
            w = w_nnz[g, c]
            if w == 0:
                continue
            qf, rf = _divmod_small(w, f)
            nf = qf + (rf > 0)
            s_rf = stall[rf * i]
            row = acts[c]
            for p in range(n_pe):
                a = row[p]
                if a == 0:
                    continue
                qi = qi_of[c, p]
                ri = ri_of[c, p]
                pairs = nf * (qi + (ri > 0))
                x = t[p] + pairs
                base[p] += pairs
                products[p] += w * a
                x += qf * qi * full
                if ri > 0:
                    x += qf * s_of[c, p]
                if rf > 0:
                    x += qi * s_rf
                    if ri > 0:
                        x += stall[rf * ri]
                t[p] = x
        slowest = 0.0
        for p in range(n_pe):
            busy[p] += t[p]
            if t[p] > slowest:
                slowest = t[p]
        total += slowest
    slots = base * (f * i)  # every pair of vectors occupies the F x I multipliers
    return total, busy, slots, products, base


@njit(cache=True, nogil=True)
def scnn_row_schedule(columns, active, f, i, stall):
    """:func:`scnn_schedule` of one barrier group whose activations are the same for
    every PE and are 0 or 1 (a fully connected layer: each nonzero activation broadcast
    to the PEs holding its column's rows): ``w_nnz[0, p, c] = columns[c, p]`` and
    ``a_nnz[0, p, c] = active[c]``. Same results, each PE's additions in the same
    order, without the ``(PEs, steps)`` copy of ``active``. With one activation, a
    step of ``w`` weights adds ``nf = ceil(w / f)`` cycles, then ``(w // f) *
    stall[f]``, then ``stall[w % f]`` if ``w % f``: those three are looked up by
    ``w`` (additions of zero left out change nothing), and the PEs of a step taken
    together (their sums are independent)."""
    n_c, n_pe = columns.shape
    most = 0
    for c in range(n_c):
        if active[c] != 0:
            for p in range(n_pe):
                if columns[c, p] > most:
                    most = columns[c, p]
    # per weight count w: the step's cycles without stalls and its two stall terms
    nf = np.zeros(most + 1, dtype=np.int64)
    stall_full = np.zeros(most + 1, dtype=np.float64)
    stall_part = np.zeros(most + 1, dtype=np.float64)
    for w in range(1, most + 1):
        qf, rf = _divmod_small(w, f)
        nf[w] = qf + (rf > 0)
        # a = 1: qi, ri = 1, 0 when i == 1 (the first stall term is qf * 1 * stall[f]),
        # else 0, 1 (the second is qf * stall[f * 1]): qf * stall[f] either way
        stall_full[w] = qf * stall[f]
        if rf > 0:
            stall_part[w] = stall[rf]
    busy = np.zeros(n_pe, dtype=np.float64)
    slots = np.zeros(n_pe, dtype=np.int64)
    products = np.zeros(n_pe, dtype=np.int64)
    base = np.zeros(n_pe, dtype=np.int64)
    t = np.zeros(n_pe, dtype=np.float64)
    for c in range(n_c):
        a = active[c]
        if a == 0:
            continue
        if a != 1:  # not one activation: the general step
            for p in range(n_pe):
                w = columns[c, p]
                if w == 0:
                    continue
                qf, rf = _divmod_small(w, f)
                qi, ri = _divmod_small(a, i)
                pairs = (qf + (rf > 0)) * (qi + (ri > 0))
                x = t[p] + pairs
                base[p] += pairs
                slots[p] += pairs * f * i
                products[p] += w * a
                x += qf * qi * stall[f * i]
                if ri > 0:
                    x += qf * stall[f * ri]
                if rf > 0:
                    x += qi * stall[rf * i]
                    if ri > 0:
                        x += stall[rf * ri]
                t[p] = x
            continue
        row = columns[c]
        for p in range(n_pe):
            w = row[p]
            n = nf[w]
            t[p] = ((t[p] + n) + stall_full[w]) + stall_part[w]
            base[p] += n
            slots[p] += n * f * i
            products[p] += w
    slowest = 0.0
    for p in range(n_pe):
        busy[p] += t[p]
        if t[p] > slowest:
            slowest = t[p]
    total = 0.0
    total += slowest
    return total, busy, slots, products, base


@njit(cache=True, nogil=True)
def _before(a, b):
    """``a`` sorts before ``b`` (NaN last, NaNs equal), as NumPy sorts floats."""
    if a != a:
        return False
    if b != b:
        return True
    return a < b


@njit(cache=True, nogil=True)
def _maximum(a, b):
    """``np.maximum`` of two floats (NaN if either is)."""
    if a != a or b != b:
        return np.nan
    return a if a >= b else b


@njit(cache=True, nogil=True, error_model="numpy")  # x / 0 is inf or NaN, as in NumPy
def map_search(dims, tm, tk, tn, inside, bits, budget, on_chip, groups, objective, prices):
    """The loop-nest search of :func:`simulator.mapping.map_gemm` over its candidates.

    ``dims`` = (M, K, N); ``tm``, ``tk``, ``tn``: int64 ``(5, candidates)`` per
    dimension, rows tile, trips, folds, inputs per pass, inputs per largest tile;
    ``inside[d, o, e]``: loop e sits inside loop d in order o (m, k, n = 0, 1, 2);
    ``bits`` = (weight, activation, partial sum); ``budget`` = (shared, weights,
    inputs, outputs) in bits, shared NaN when each operand has its own; ``on_chip``
    0/1; ``objective`` 0 DRAM bits, 1 energy, 2 latency; ``prices`` = (DRAM read,
    DRAM write, buffer read, buffer write pJ/bit, compute s, DRAM bytes/s, buffer
    bits/s). For each (Mt, Kt), the largest Nt whose tiles fit; each such candidate
    in every order is ranked by (objective, DRAM bits, buffer bits), ties to the
    lower order, then the earlier candidate; none fitting: the smallest tiles.
    Returns int64 ``(order, im, ik, in, fits)`` and the float64 ranking keys; every
    count and key is formed as the NumPy search forms it, operation by operation."""
    m, k, n = dims[0], dims[1], dims[2]
    wb, ab, pb = bits[0], bits[1], bits[2]
    shared = budget[0]
    held_ab = 0.0 if on_chip else ab
    outs = m * n
    w_n = m * k
    o_n = m * n
    g = np.float64(groups)
    best = np.zeros(5, dtype=np.int64)
    keys = np.full(3, np.nan)
    found = False
    fits = False
    trips = np.zeros(3, dtype=np.int64)
    for phase in range(2):  # the fitting candidates; if none, the smallest tiles
        if phase == 1 and fits:
            break
        for im in range(tm.shape[1] if phase == 0 else 1):
            for ik in range(tk.shape[1] if phase == 0 else 1):
                last = -1
                if phase == 0:
                    held_w = np.float64(tm[0, im] * tk[0, ik]) * wb
                    for i_n in range(tn.shape[1]):
                        if tk[3, ik] * tn[3, i_n] <= k * n:
                            held_i = tk[4, ik] * tn[4, i_n]
                        else:
                            held_i = tk[0, ik] * tn[0, i_n]
                        f_i = np.float64(held_i) * held_ab
                        f_o = np.float64(tm[0, im] * tn[0, i_n]) * pb
                        if shared == shared:
                            ok = held_w + f_i + f_o <= shared
                        else:
                            ok = held_w <= budget[1] and f_i <= budget[2] and f_o <= budget[3]
                        if ok:
                            last = i_n
                    if last < 0:
                        continue
                    fits = True
                else:
                    last = 0
                trips[0], trips[1], trips[2] = tm[1, im], tk[1, ik], tn[1, last]
                if on_chip:
                    i_pass = 0
                else:
                    i_pass = min(tk[3, ik] * tn[3, last], k * n)
                for o in range(6):
                    f = np.ones(3, dtype=np.int64)  # refetch of weights, inputs; output visits
                    for op, d in ((0, 2), (1, 0), (2, 1)):  # the dimension not indexing it
                        moving_inside = False
                        for e in range(3):
                            if inside[d, o, e] and trips[e] > 1:
                                moving_inside = True
                        if moving_inside:
                            f[op] = trips[d]
                    w_dram = w_n * f[0]
                    i_dram = i_pass * f[1]
                    spill = 0 if on_chip else (f[2] - 1) * o_n
                    written = 0 if on_chip else o_n
                    w_buf = w_n * tn[2, last]
                    i_buf = k * n * tm[2, im]
                    o_buf_w = o_n * tk[2, ik]
                    reads = w_dram * wb + i_dram * ab + spill * pb
                    writes = written * ab + spill * pb
                    accumulate = (o_buf_w - outs) * pb
                    port = w_buf * wb + i_buf * ab + outs * ab + reads + writes
                    dram = g * (reads + writes)
                    buffer = g * (port + 2 * accumulate)
                    if objective == 0:
                        key = dram
                    elif objective == 2:
                        key = _maximum(
                            _maximum(prices[4], dram / 8 / prices[5]), g * port / prices[6]
                        )
                    else:
                        key = g * (
                            reads * prices[0]
                            + writes * prices[1]
                            + (port - reads) * prices[2]
                            + (reads + outs * ab) * prices[3]
                            + accumulate * (prices[2] + prices[3])
                        )
                    better = not found
                    if found:
                        decided = False
                        for a, b in ((key, keys[0]), (dram, keys[1]), (buffer, keys[2])):
                            if not decided and _before(a, b):
                                better = decided = True
                            elif not decided and _before(b, a):
                                decided = True
                        if not decided:  # equal keys: the lower order wins, then the earlier
                            better = o < best[0]
                    if better:
                        found = True
                        best[0], best[1], best[2], best[3] = o, im, ik, last
                        keys[0], keys[1], keys[2] = key, dram, buffer
    best[4] = 1 if fits else 0
    return best, keys


def on_first_compile(callback: Callable[[], None]) -> None:
    """Call ``callback`` once, just before numba first compiles a kernel in this
    process (a cold cache: the first use after an install, seconds). Loading a
    compiled kernel from the cache calls nothing."""
    from numba.core import event

    class _Once(event.Listener):
        def __init__(self) -> None:
            self.done = False

        def on_start(self, ev: event.Event) -> None:
            if not self.done:
                self.done = True
                callback()

        def on_end(self, ev: event.Event) -> None:
            pass

    event.register("numba:compile", _Once())


def warm_up() -> None:
    """Compile (or load from the cache) every kernel for the argument types the package
    uses, on tiny inputs: a parent process calls this before starting workers, so
    that they load compiled kernels instead of each compiling its own."""
    m = np.ones((1, 2, 2), dtype=np.uint8)
    four = np.int64(4)
    line_stats(m, False, four)
    block_counts(m, np.int64(2), np.int64(2))
    group_max(m, np.int64(2))
    nm_keep(np.zeros((1, 2)), np.int64(1))
    nm_keep(np.zeros((1, 2), dtype=np.uint32), np.int64(1))
    packed = np.full((1, 2, 1), 192, dtype=np.uint8)
    for by_column in (False, True):
        pe_column_entries(packed, np.int64(2), np.int64(1), four, np.full(2, 2), by_column)
        factored_pe_entries(m[0], m[0], np.int64(1), four, by_column)
    factored_line_stats(m[0], m[0], four)
    entries, _ = pe_column_entries(packed, np.int64(2), np.int64(1), four, np.full(2, 2), False)
    eie_schedule(entries, np.arange(entries.shape[1], dtype=np.int64), np.int64(2))
    eie_schedule_columns(
        np.ascontiguousarray(entries.T), np.arange(entries.shape[1], dtype=np.int64), np.int64(2)
    )
    one = np.zeros((1, 1), dtype=np.int64)
    scnn_weight_counts(np.ones((1, 1, 1, 1), dtype=np.uint8), 1, 1, one, 1)
    scnn_activation_counts(np.ones((1, 1, 1), dtype=np.uint8), 0, 1, one, one, 1, 1)
    scnn_window_counts(np.ones((1, 1, 1), dtype=np.uint8), np.ones(10, dtype=np.int64))
    scnn_activation_vectors(np.ones((1, 1, 1), dtype=np.int64), four)
    k_window_counts(four, np.int64(2), np.ones(1, dtype=np.int64))
    scnn_bank_stalls(
        np.ones((1, 1, 1, 1), dtype=np.uint8),
        np.ones((1, 1, 1), dtype=np.uint8),
        np.zeros((1, 4), dtype=np.int64),
        np.ones(11, dtype=np.int64),
        four,
        four,
        four,
        four,
    )
    scnn_schedule(
        np.ones((1, 1, 1), dtype=np.int64),
        np.ones((1, 1, 1), dtype=np.int64),
        np.zeros(1, dtype=np.int64),
        four,
        four,
        np.zeros(17),
    )
    scnn_shared_schedule(
        np.ones((1, 1), dtype=np.int64),
        np.ones((1, 1, 1), dtype=np.int64),
        np.zeros(1, dtype=np.int64),
        four,
        four,
        np.zeros(17),
    )
    scnn_row_schedule(
        np.ones((1, 1), dtype=np.int64), np.ones(1, dtype=np.int64), four, four, np.zeros(17)
    )
    tiling = np.ones((5, 1), dtype=np.int64)
    map_search(
        np.ones(3, dtype=np.int64),
        tiling,
        tiling,
        tiling,
        np.zeros((3, 6, 3), dtype=np.int64),
        np.ones(3),
        np.full(4, np.nan),
        False,
        1,
        0,
        np.ones(7),
    )
    geom = np.array((2, 2, 1, 1, 1, 1, 1, 2, 2, 1), dtype=np.int64)  # a 1x1 conv, 2x2 input
    for flow in (0, 1, 2):
        scalesim_read_words(flow, 0, geom, 2, 2, 50)
        scalesim_ofmap_writes(flow, geom, 2, 2, 100, 2)


# --- SCALE-Sim v3 memory model (CALC interface bandwidth) ------------------------------
# geom = (ifmap_h, ifmap_w, channels, filter_h, filter_w, stride_h, filters, ofmap_h,
# ofmap_w, stride_w) as SCALE-Sim's topology gives them; flow 0 = ws, 1 = os, 2 = is.


@njit(cache=True, nogil=True)
def _ss_tables(geom):
    """SCALE-Sim's im2col ifmap addresses (``operand_matrix.calc_ifmap_elem_addr``,
    offset 0) as tables: per ofmap pixel its window's first ifmap row and column, per
    window element its row, column and channel offsets (:func:`_ss_addr`)."""
    p = geom[7] * geom[8]
    rw = geom[3] * geom[4] * geom[2]
    c, fw, ew = geom[2], geom[4], geom[8]
    pr = np.empty(p, dtype=np.int64)
    pc = np.empty(p, dtype=np.int64)
    for i in range(p):
        pr[i] = (i // ew) * geom[5]
        pc[i] = (i % ew) * geom[9]
    wr = np.empty(rw, dtype=np.int64)
    wc = np.empty(rw, dtype=np.int64)
    wch = np.empty(rw, dtype=np.int64)
    for j in range(rw):
        wr[j] = j // (fw * c)
        rest = j % (fw * c)
        wc[j] = rest // c
        wch[j] = rest % c
    return pr, pc, wr, wc, wch


@njit(cache=True, nogil=True)
def _ss_addr(i, j, h, w, c, pr, pc, wr, wc, wch):
    # address of ifmap operand element (ofmap pixel i, window element j); -1 where the
    # window leaves the ifmap
    r = pr[i] + wr[j]
    q = pc[i] + wc[j]
    if r < h and q < w:
        return (r * w + q) * c + wch[j]
    return -1


@njit(cache=True, nogil=True)
def _ss_visit(a, seen, state, epoch_words):
    # state: current epoch, distinct words in it, DRAM words read
    if a < 0 or seen[a] == state[0]:
        return
    seen[a] = state[0]
    state[2] += 1
    state[1] += 1
    if state[1] == epoch_words:
        state[0] += 1
        state[1] = 0


@njit(cache=True, nogil=True)
def _ss_dims(flow, geom):
    p = geom[7] * geom[8]
    rw = geom[3] * geom[4] * geom[2]
    if flow == 0:
        return rw, geom[6], p
    if flow == 1:
        return p, geom[6], rw
    return rw, p, geom[6]


@njit(cache=True, nogil=True)
def scalesim_read_words(flow, operand, geom, rows, cols, epoch_words):
    """DRAM words SCALE-Sim v3 reads for one operand (0 ifmap, 1 filter) of a layer.

    Its read buffer in CALC mode keeps the distinct addresses of the demand stream in
    sets of ``total / 100`` words; when 50 sets (the active half, ``epoch_words``) are
    full it prefetches and forgets them all. So a word costs one DRAM read each time
    it first appears in an epoch of ``epoch_words`` distinct words (0: unbounded).
    The stream is SCALE-Sim's demand matrices in order: folds column-major (column
    fold outer), each streamed operand skewed one cycle per array column/row, each
    stationary one read in reverse row order.
    """
    sr, sc, t = _ss_dims(flow, geom)
    p = geom[7] * geom[8]
    rw = geom[3] * geom[4] * geom[2]
    size = geom[0] * geom[1] * geom[2] if operand == 0 else rw * geom[6]
    seen = np.full(max(size, 1), -1, dtype=np.int32)  # epoch labels (< 2**31 epochs)
    state = np.zeros(3, dtype=np.int64)
    rf = (sr + rows - 1) // rows
    cf = (sc + cols - 1) // cols
    h, w, c = geom[0], geom[1], geom[2]
    pr, pc, wr, wc, wch = _ss_tables(geom)
    stationary = (flow == 0 and operand == 1) or (flow == 2 and operand == 0)
    if stationary:
        for fc in range(cf):
            for fr in range(rf):
                for r in range(rows - 1, -1, -1):
                    j = fr * rows + r
                    if j >= rw:
                        continue
                    for kk in range(cols):
                        n = fc * cols + kk
                        if flow == 0:
                            a = n * rw + j if n < geom[6] else -1
                        else:
                            a = _ss_addr(n, j, h, w, c, pr, pc, wr, wc, wch) if n < p else -1
                        _ss_visit(a, seen, state, epoch_words)
        return state[2]
    width = rows
    if flow == 1 and operand == 1:
        width = cols
    # Repeats: a stream that depends on fr only repeats whole column-fold blocks; os
    # filters repeat each fold over fr. A block or fold that read nothing from DRAM
    # left the buffer as it was, so its repeats read nothing either: skipped.
    blocks_repeat = not (flow == 1 and operand == 1)
    block_words = fold_words = -1
    for fc in range(cf):
        if blocks_repeat and block_words == 0:
            break
        block_start = state[2]
        fold_words = -1
        for fr in range(rf):
            if not blocks_repeat and fold_words == 0:
                break
            fold_start = state[2]
            for d in range(t + width - 1):
                for kk in range(max(0, d - t + 1), min(width, d + 1)):
                    src = d - kk
                    a = -1
                    if flow == 0:
                        j = fr * rows + kk
                        if j < rw:
                            a = _ss_addr(src, j, h, w, c, pr, pc, wr, wc, wch)
                    elif flow == 1 and operand == 0:
                        i = fr * rows + kk
                        if i < p:
                            a = _ss_addr(i, src, h, w, c, pr, pc, wr, wc, wch)
                    elif flow == 1:
                        n = fc * cols + kk
                        if n < geom[6]:
                            a = n * rw + src
                    else:
                        j = fr * rows + kk
                        if j < rw:
                            a = src * rw + j
                    _ss_visit(a, seen, state, epoch_words)
            fold_words = state[2] - fold_start
        block_words = state[2] - block_start
    return state[2]


@njit(cache=True, nogil=True)
def scalesim_ofmap_writes(flow, geom, rows, cols, total_words, line_words):
    """DRAM words SCALE-Sim v3 writes for the ofmap of a layer (``write_buffer``).

    Words enter lines of ``line_words`` (the array width in CALC mode) as the array
    emits them, one demand row per cycle. When the active part (half the buffer) is
    full and no drain is running, the partial line is closed and the next
    ``ceil(drain / line)`` finished lines are drained; SCALE-Sim counts every slot of
    a drained line but the empty slots of the last one. Lines reach the drainable
    trace only in batches of 1024 or when a line is closed. The last drain empties
    everything. Returns (words written, stall cycles); -1 words if the line ring
    overflowed (never seen).
    """
    sr, sc, t = _ss_dims(flow, geom)
    rf = (sr + rows - 1) // rows
    cf = (sc + cols - 1) // cols
    active = (total_words + 1) // 2
    drain = total_words - active
    per_drain = (drain + line_words - 1) // line_words
    cap = 2 * total_words + 4 * line_words + 4 * per_drain + 4096
    valid = np.zeros(cap, dtype=np.int64)
    n_lines = 0
    trace_len = 0
    start = 0
    line_idx = 0
    free = total_words
    drain_end = 0
    words = 0
    stalls = 0
    row = 0
    for fc in range(cf):
        v = min(cols, sc - fc * cols)
        for fr in range(rf):
            if flow == 1:
                prefix = t - 1
                height = rows
                lo = rows - min(rows, sr - fr * rows)
            else:
                prefix = 2 * rows - 1
                height = t
                lo = 0
            for tt in range(prefix + height + cols - 1):
                u = tt - prefix
                k0 = max(0, u - height + 1)
                k1 = min(v - 1, u - lo)
                n = k1 - k0 + 1 if k1 >= k0 else 0
                cur = row + stalls
                offset = 0
                for _ in range(n):
                    line_idx += 1
                    free -= 1
                    if line_idx == line_words:
                        valid[n_lines % cap] = line_words
                        n_lines += 1
                        line_idx = 0
                        if n_lines - trace_len >= 1024:
                            trace_len = n_lines
                    if cur < drain_end:
                        if free <= 0:
                            offset += max(drain_end - cur, 0)
                            cur = drain_end
                    elif free < active:
                        if line_idx != 0:
                            valid[n_lines % cap] = line_idx
                            n_lines += 1
                            line_idx = 0
                        trace_len = n_lines
                        end = min(start + per_drain, trace_len)
                        if end <= start:
                            return -1, stalls
                        moved = (end - start) * line_words - (line_words - valid[(end - 1) % cap])
                        words += moved
                        free += moved
                        drain_end = cur + end - start - 1
                        start = end
                    if n_lines - start >= cap:
                        return -1, stalls
                stalls += offset
                row += 1
    if line_idx != 0:
        valid[n_lines % cap] = line_idx
        n_lines += 1
    trace_len = n_lines
    while start < trace_len:
        end = min(start + per_drain, trace_len)
        words += (end - start) * line_words - (line_words - valid[(end - 1) % cap])
        start = end
    return words, stalls
