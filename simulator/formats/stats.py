"""The format registry and :class:`FormatStats`: bit-exact storage of a mask.

Every format is a function ``(MaskProfile, FormatParams) -> FormatStats`` registered
by name with :func:`register`. Bits are split into values (kept weights), indices,
pointers, fillers (explicitly stored zeros: relative-index fillers, padding slots
and tiles, zeros inside a dense or compact matrix) and other metadata (bitmaps,
survivor lists). One compressed implementation serves CSR and CSC: CSC(W) is
CSR(W^T), picked by axis.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from simulator import kernels
from simulator.errors import FormatError
from simulator.formats import formulas as fx
from simulator.formats.profile import MaskProfile
from simulator.units import ceil_log2


def _is_int(v: object) -> bool:
    return isinstance(v, int | np.integer) and not isinstance(v, bool)


@dataclass(frozen=True, kw_only=True)
class FormatParams:
    """Parameters of the storage formats (bits unless said otherwise).

    ``pointer_bits`` and ``abs_index_bits`` of ``None`` mean "computed":
    ceil(log2(entries + 1)) and ceil(log2(line length)).
    """

    weight_bits: int = 8
    index_bits: int = 4
    pointer_bits: int | None = None
    abs_index_bits: int | None = None
    block: tuple[int, int] = (4, 4)
    nm: tuple[int, int] = (2, 4)

    def __post_init__(self) -> None:
        problems = []
        ints = {
            "weight_bits": self.weight_bits,
            "index_bits": self.index_bits,
            "pointer_bits": self.pointer_bits,
            "abs_index_bits": self.abs_index_bits,
            "block": self.block[0],
            "block ": self.block[1],
            "nm": self.nm[0],
            "nm ": self.nm[1],
        }
        bad = [k.strip() for k, v in ints.items() if v is not None and not _is_int(v)]
        if bad:
            raise FormatError(f"{', '.join(dict.fromkeys(bad))} must be whole numbers")
        if not 1 <= self.weight_bits <= 64:
            problems.append(f"weight bits must be in [1, 64], got {self.weight_bits}")
        if not 1 <= self.index_bits <= 32:
            problems.append(f"relative index bits must be in [1, 32], got {self.index_bits}")
        for key in ("pointer_bits", "abs_index_bits"):
            v = getattr(self, key)
            if v is not None and not 1 <= v <= 64:
                problems.append(f"{key.replace('_', ' ')} must be in [1, 64], got {v}")
        if min(self.block) < 1:
            problems.append(f"block size must be positive, got {self.block}")
        if not 1 <= self.nm[0] <= self.nm[1]:
            problems.append(f"N:M needs 1 <= N <= M, got {self.nm[0]}:{self.nm[1]}")
        if problems:
            raise FormatError("; ".join(problems))


@dataclass(frozen=True, kw_only=True, eq=False)
class FormatStats:
    """Storage of one layer's mask in one format, bit-exact.

    ``entries`` counts stored value slots (kept values plus explicit zeros);
    ``line_entries`` the stored entries per row (``line_axis="row"``) or per column,
    group-major, for the PE-load models. ``representable`` is false where the
    format cannot hold the mask (an N:M format and a mask with more than N kept in
    some group); its bit counts are then zero.
    """

    format: str
    layer_name: str
    weight_bits: int
    weights: int
    nnz: int
    entries: int
    values_bits: int
    indices_bits: int
    pointers_bits: int
    fillers_bits: int
    other_bits: int
    line_axis: str
    line_entries: np.ndarray
    representable: bool = True
    detail: str = ""

    @property
    def total_bits(self) -> int:
        return (
            self.values_bits
            + self.indices_bits
            + self.pointers_bits
            + self.fillers_bits
            + self.other_bits
        )

    @property
    def metadata_bits(self) -> int:
        """Everything but the kept values: indices, pointers, fillers, other."""
        return self.total_bits - self.values_bits

    @property
    def dense_bits(self) -> int:
        """The unpruned dense layer at the same weight bits."""
        return self.weights * self.weight_bits

    @property
    def compression(self) -> float:
        """Dense bits over this format's bits (> 1 means smaller than dense)."""
        return self.dense_bits / self.total_bits if self.total_bits else float("nan")

    @property
    def fillers(self) -> int:
        """Explicitly stored zero entries."""
        return self.entries - self.nnz


FormatFn = Callable[[MaskProfile, FormatParams], FormatStats]


@dataclass(frozen=True)
class FormatSpec:
    name: str
    fn: FormatFn
    description: str
    structured_for: tuple[str, ...]


FORMATS: dict[str, FormatSpec] = {}
"""Registered formats by name."""


def register(name: str, description: str, structured_for: tuple[str, ...] = ()):
    """Decorator: register a format function under ``name``. ``structured_for`` names
    the mask structures the format is made for (they need no per-weight index)."""

    def deco(fn: FormatFn) -> FormatFn:
        FORMATS[name] = FormatSpec(name, fn, description, structured_for)
        return fn

    return deco


def format_stats(profile: MaskProfile, fmt: str, params: FormatParams) -> FormatStats:
    """Storage of a profiled mask in format ``fmt``."""
    try:
        spec = FORMATS[fmt]
    except KeyError:
        raise FormatError(f"unknown format {fmt!r} (known: {', '.join(FORMATS)})") from None
    return spec.fn(profile, params)


def _stats(p: MaskProfile, fmt: str, params: FormatParams, **kw) -> FormatStats:
    return FormatStats(
        format=fmt,
        layer_name=p.layer_name,
        weight_bits=params.weight_bits,
        weights=p.weights,
        nnz=p.nnz,
        **kw,
    )


def _check_width(what: str, given: int | None, needed: int, fmt: str, p: MaskProfile) -> int:
    if given is None:
        return needed
    if given < needed:
        raise FormatError(
            f"{fmt} of layer {p.layer_name!r}: {given}-bit {what} cannot hold "
            f"the {needed} bits needed"
        )
    return given


def _compressed(p: MaskProfile, params: FormatParams, axis: str, relative: bool) -> FormatStats:
    """CSR (axis="row") or CSC (axis="col"), absolute or relative indices."""
    fmt = ("csr" if axis == "row" else "csc") + ("-rel" if relative else "")
    if relative:
        index_bits = params.index_bits
        per_line_fillers = p.line_fillers(axis, index_bits)  # first: one pass gives both
        line_nnz = p.line_nnz(axis)
        fillers = int(per_line_fillers.sum())
        line_entries = line_nnz + per_line_fillers
    else:
        line_nnz = p.line_nnz(axis)
        index_bits = _check_width(
            "index", params.abs_index_bits, ceil_log2(p.line_length(axis)), fmt, p
        )
        fillers = 0
        line_entries = line_nnz
    entries = p.nnz + fillers
    pw = _check_width("pointer", params.pointer_bits, fx.pointer_width(entries), fmt, p)
    wb = params.weight_bits
    return _stats(
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


@register("dense", "every weight stored, zeros included")
def _dense(p: MaskProfile, params: FormatParams) -> FormatStats:
    wb = params.weight_bits
    return _stats(
        p,
        "dense",
        params,
        entries=p.weights,
        values_bits=p.nnz * wb,
        indices_bits=0,
        pointers_bits=0,
        fillers_bits=(p.weights - p.nnz) * wb,
        other_bits=0,
        line_axis="row",
        line_entries=np.full(p.groups * p.rows, p.cols, np.int64),
    )


@register("csr", "compressed rows, absolute column index of ceil(log2 cols) bits")
def _csr(p: MaskProfile, params: FormatParams) -> FormatStats:
    return _compressed(p, params, "row", relative=False)


@register("csc", "compressed columns, absolute row index of ceil(log2 rows) bits")
def _csc(p: MaskProfile, params: FormatParams) -> FormatStats:
    return _compressed(p, params, "col", relative=False)


@register("csr-rel", "compressed rows, relative index (zero run) with filler entries")
def _csr_rel(p: MaskProfile, params: FormatParams) -> FormatStats:
    return _compressed(p, params, "row", relative=True)


@register("csc-rel", "compressed columns, relative index with fillers (EIE)")
def _csc_rel(p: MaskProfile, params: FormatParams) -> FormatStats:
    return _compressed(p, params, "col", relative=True)


@register("coo", "each kept value with its absolute row and column index")
def _coo(p: MaskProfile, params: FormatParams) -> FormatStats:
    ib = ceil_log2(p.rows) + ceil_log2(p.cols)
    return _stats(
        p,
        "coo",
        params,
        entries=p.nnz,
        values_bits=p.nnz * params.weight_bits,
        indices_bits=p.nnz * ib,
        pointers_bits=0,
        fillers_bits=0,
        other_bits=0,
        line_axis="row",
        line_entries=p.row_nnz,
        detail=f"index {ib} b",
    )


@register("bitmap", "one presence bit per weight plus the kept values")
def _bitmap(p: MaskProfile, params: FormatParams) -> FormatStats:
    return _stats(
        p,
        "bitmap",
        params,
        entries=p.nnz,
        values_bits=p.nnz * params.weight_bits,
        indices_bits=0,
        pointers_bits=0,
        fillers_bits=0,
        other_bits=p.weights,
        line_axis="row",
        line_entries=p.row_nnz,
    )


@register(
    "nm",
    "N:M along the reduction axis: N slots of value + ceil(log2 M)-bit position per M weights",
    structured_for=("nm",),
)
def _nm(p: MaskProfile, params: FormatParams) -> FormatStats:
    n, m = params.nm
    ib = ceil_log2(m)
    slots_per_row = -(-p.cols // m) * n
    entries = p.groups * p.rows * slots_per_row
    wb = params.weight_bits
    worst = int(kernels.group_max(p.gemm, m))
    detail = f"{n}:{m}, position {ib} b"
    if worst > n:
        return _stats(
            p,
            "nm",
            params,
            entries=0,
            values_bits=0,
            indices_bits=0,
            pointers_bits=0,
            fillers_bits=0,
            other_bits=0,
            line_axis="row",
            line_entries=np.zeros(p.groups * p.rows, np.int64),
            representable=False,
            detail=f"{detail}; not representable: a group of {m} keeps {worst} > {n}",
        )
    return _stats(
        p,
        "nm",
        params,
        entries=entries,
        values_bits=p.nnz * wb,
        indices_bits=p.nnz * ib,
        pointers_bits=0,
        fillers_bits=(entries - p.nnz) * (wb + ib),
        other_bits=0,
        line_axis="row",
        line_entries=np.full(p.groups * p.rows, slots_per_row, np.int64),
        detail=detail,
    )


@register(
    "bsr",
    "block-CSR: nonzero b x b tiles stored dense with a block-column index",
    structured_for=("block",),
)
def _bsr(p: MaskProfile, params: FormatParams) -> FormatStats:
    br, bc = params.block
    per_brow = kernels.block_counts(p.gemm, br, bc)
    blocks = int(per_brow.sum())
    n_brows, n_bcols = -(-p.rows // br), -(-p.cols // bc)
    entries = blocks * br * bc
    pw = _check_width("pointer", params.pointer_bits, fx.pointer_width(blocks), "bsr", p)
    ib = ceil_log2(n_bcols)
    wb = params.weight_bits
    # per row: every row of a block-row stores bc entries per tile of that block-row
    line_entries = np.repeat(per_brow.reshape(p.groups, n_brows) * bc, br, axis=1)[:, : p.rows]
    return _stats(
        p,
        "bsr",
        params,
        entries=entries,
        values_bits=p.nnz * wb,
        indices_bits=blocks * ib,
        pointers_bits=p.groups * (n_brows + 1) * pw,
        fillers_bits=(entries - p.nnz) * wb,
        other_bits=0,
        line_axis="row",
        line_entries=line_entries.ravel(),
        detail=f"{br}x{bc} tiles, {blocks} kept, index {ib} b, pointer {pw} b",
    )


@register(
    "compact",
    "dense submatrix of the surviving rows and columns plus survivor lists "
    "(filter, channel and column pruning)",
    structured_for=("filter", "channel", "column"),
)
def _compact(p: MaskProfile, params: FormatParams) -> FormatStats:
    kr, kc = p.kept_rows(), p.kept_cols()
    entries = int((kr * kc).sum())
    live = kr > 0
    # which groups survive, then within each surviving group which rows and columns
    other = fx.survivor_list_bits(int(live.sum()), p.groups) + sum(
        fx.survivor_list_bits(int(r), p.rows) + fx.survivor_list_bits(int(c), p.cols)
        for r, c in zip(kr[live], kc[live], strict=True)
    )
    wb = params.weight_bits
    alive = p.row_nnz.reshape(p.groups, p.rows) > 0
    line_entries = (alive * kc[:, None]).ravel().astype(np.int64)
    return _stats(
        p,
        "compact",
        params,
        entries=entries,
        values_bits=p.nnz * wb,
        indices_bits=0,
        pointers_bits=0,
        fillers_bits=(entries - p.nnz) * wb,
        other_bits=other,
        line_axis="row",
        line_entries=line_entries,
        detail=f"{int(live.sum())} of {p.groups} groups kept, {int(kr.sum())} rows in all",
    )
