"""The one compressed-format implementation: CSR (``axis="row"``) and CSC
(``axis="col"``), with absolute or relative (zero-run) indices. CSC(W) is CSR(W^T).

:func:`parts` gives a compressed format's counter, encoder, closed form and i.i.d.
expectation, for its registration in :mod:`.builtin`.
"""

from __future__ import annotations

import numpy as np

from simulator.formats import formulas as fx
from simulator.formats.profile import MaskProfile
from simulator.formats.stats import (
    CountFn,
    Encoded,
    FormatParams,
    FormatStats,
    check_width,
    make_stats,
)
from simulator.units import ceil_log2


def name_of(axis: str, relative: bool) -> str:
    """``csr``, ``csc``, ``csr-rel`` or ``csc-rel``."""
    return ("csr" if axis == "row" else "csc") + ("-rel" if relative else "")


def _widths(p: MaskProfile, params: FormatParams, axis: str, relative: bool) -> tuple[int, int]:
    """Fillers and index width of the mask in this format (fillers first: one kernel
    pass gives the fillers and the counts)."""
    if relative:
        return int(p.line_fillers(axis, params.index_bits).sum()), params.index_bits
    needed = ceil_log2(p.line_length(axis))
    index_bits = check_width("index", params.abs_index_bits, needed, name_of(axis, relative), p)
    return 0, index_bits


def _pointer_width(p: MaskProfile, params: FormatParams, fmt: str, entries: int) -> int:
    return check_width("pointer", params.pointer_bits, fx.pointer_width(entries), fmt, p)


def _rel_line(line: np.ndarray, index_bits: int) -> tuple[list, list]:
    vals, idx = [], []
    limit = 2**index_bits - 1
    prev = -1
    for j in np.flatnonzero(line):
        gap = int(j) - prev - 1
        while gap > limit:
            vals.append(0)
            idx.append(limit)
            gap -= limit + 1
        vals.append(line[j])
        idx.append(gap)
        prev = int(j)
    return vals, idx


def parts(axis: str, relative: bool) -> tuple[CountFn, dict]:
    """The counter of one compressed format, and its encoder, closed form and i.i.d.
    expectation as keywords of :func:`simulator.formats.stats.register`."""
    fmt = name_of(axis, relative)

    def count(p: MaskProfile, params: FormatParams) -> FormatStats:
        fillers, index_bits = _widths(p, params, axis, relative)
        line_entries = p.line_nnz(axis)
        if relative:
            line_entries = line_entries + p.line_fillers(axis, index_bits)
        entries = p.nnz + fillers
        pw = _pointer_width(p, params, fmt, entries)
        wb = params.weight_bits
        return make_stats(
            p,
            fmt,
            params,
            entries=entries,
            values_bits=p.nnz * wb,
            indices_bits=p.nnz * index_bits,
            pointers_bits=p.groups * (p.lines(axis) + 1) * pw,
            fillers_bits=fillers * (wb + index_bits),
            other_bits=0,
            line_axis=axis,
            line_entries=line_entries,
            detail=f"index {index_bits} b, pointer {pw} b",
        )

    def encode(a: np.ndarray, params: FormatParams) -> Encoded:
        vals, idx, ptr = [], [], [0]
        for line in a if axis == "row" else a.T:
            if relative:
                v, i = _rel_line(line, params.index_bits)
            else:
                i = list(np.flatnonzero(line))
                v = list(line[i])
            vals += v
            idx += i
            ptr.append(len(vals))
        return Encoded(
            format=fmt,
            values=np.array(vals, dtype=a.dtype),
            indices=np.array(idx, dtype=np.int64),
            pointers=np.array(ptr, np.int64),
            extra=np.zeros(0, dtype=np.int64),
        )

    def closed_form(p: MaskProfile, params: FormatParams) -> int:
        fillers, index_bits = _widths(p, params, axis, relative)
        return fx.compressed_bits(
            nnz=p.nnz,
            fillers=fillers,
            groups=p.groups,
            lines=p.lines(axis),
            weight_bits=params.weight_bits,
            index_bits=index_bits,
            pointer_bits=_pointer_width(p, params, fmt, p.nnz + fillers),
        )

    def expected_bits(
        *, groups: int, rows: int, cols: int, density: float, params: FormatParams
    ) -> float:
        nnz = density * (groups * rows * cols)
        lines, length = (rows, cols) if axis == "row" else (cols, rows)
        if relative:
            fillers = groups * lines * fx.expected_line_fillers(length, density, params.index_bits)
            ib = params.index_bits
        else:
            fillers, ib = 0.0, _given_or(params.abs_index_bits, ceil_log2(length))
        return fx.compressed_bits(
            nnz=nnz,
            fillers=fillers,
            groups=groups,
            lines=lines,
            weight_bits=params.weight_bits,
            index_bits=ib,
            pointer_bits=_given_or(params.pointer_bits, fx.pointer_width(round(nnz + fillers))),
        )

    return count, {"encode": encode, "closed_form": closed_form, "expected_bits": expected_bits}


def _given_or(given: int | None, computed: int) -> int:
    return computed if given is None else given
