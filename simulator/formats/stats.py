"""The format registry: what a storage format is, and the dispatch to its parts.

A format is one :class:`FormatSpec`, registered by name with :func:`register` beside
its definition (:mod:`.builtin`): a counter ``(MaskProfile, FormatParams) ->
FormatStats``, and optionally an encoder (the actual arrays of a small matrix), a
closed form (its exact bits from the mask's counts), an i.i.d. expectation of its
size, and the structured prunings it is made for. Everything else is derived from
the registry: :func:`format_stats`, :func:`encode`, :func:`expected_format_bits`,
:func:`expected_formats` and :data:`STRUCTURED_FORMATS`.

:class:`FormatStats` splits bits into values (kept weights), indices, pointers,
fillers (explicitly stored zeros: relative-index fillers, padding slots and tiles,
zeros inside a dense or compact matrix) and other metadata (bitmaps, survivor lists).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from simulator.errors import FormatError
from simulator.formats.profile import MaskProfile
from simulator.masks import NON_STRUCTURED, STRUCTURES


def _is_int(v: object) -> bool:
    return isinstance(v, int | np.integer) and not isinstance(v, bool)


@dataclass(frozen=True, kw_only=True)
class FormatParams:
    """Parameters of the storage formats (bits unless said otherwise).

    ``pointer_bits`` and ``abs_index_bits`` of ``None`` mean "computed":
    ceil(log2(entries + 1)) and ceil(log2(line length)); the offsets of the tiled
    formats (``tiled-csl``, ``tca-bme``) take their shipped 32 bits unless
    ``pointer_bits`` states a width.

    Group-wise quantization (GPTQ/AWQ style): ``group_size`` weights of a row along
    the input (reduction) dimension share one ``scale_bits`` scale and, when
    ``zero_point_bits`` > 0 (asymmetric), one zero point. Every format then stores
    ceil(cols / group_size) of each per output row of the dense matrix, as GPTQ,
    AWQ and Marlin do (:func:`group_scale_bits`). ``group_size`` ``None`` or 0: no
    groups, no scales counted.
    """

    weight_bits: int = 8
    index_bits: int = 4
    pointer_bits: int | None = None
    abs_index_bits: int | None = None
    block: tuple[int, int] = (4, 4)
    nm: tuple[int, int] = (2, 4)
    group_size: int | None = None
    scale_bits: int = 16
    zero_point_bits: int = 0

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
            "group_size": self.group_size,
            "scale_bits": self.scale_bits,
            "zero_point_bits": self.zero_point_bits,
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
        if self.group_size is not None and self.group_size < 0:
            problems.append(
                f"quantization group size must be 0 or more (0: no groups), got {self.group_size}"
            )
        if not 1 <= self.scale_bits <= 64:
            problems.append(f"scale bits must be in [1, 64], got {self.scale_bits}")
        if not 0 <= self.zero_point_bits <= 64:
            problems.append(
                f"zero point bits must be in [0, 64] (0: symmetric), got {self.zero_point_bits}"
            )
        if problems:
            raise FormatError("; ".join(problems))


@dataclass(frozen=True, kw_only=True, eq=False)
class FormatStats:
    """Storage of one layer's mask in one format, bit-exact.

    ``entries`` counts stored value slots (kept values plus explicit zeros);
    ``line_entries`` the stored entries per row (``line_axis="row"``) or per column,
    group-major, for the PE-load models. ``representable`` is false where the
    format cannot hold the mask (an N:M format and a mask with more than N kept in
    some group); its bit counts are then zero. ``scales_bits`` holds the group-wise
    quantization scales and zero points (zero without quantization groups).
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
    scales_bits: int = 0

    @property
    def total_bits(self) -> int:
        return (
            self.values_bits
            + self.indices_bits
            + self.pointers_bits
            + self.fillers_bits
            + self.other_bits
            + self.scales_bits
        )

    @property
    def metadata_bits(self) -> int:
        """Everything but the kept values: indices, pointers, fillers, other, scales."""
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


@dataclass(frozen=True, kw_only=True, eq=False)
class Encoded:
    """A matrix in one format. ``values`` are the stored entries (every weight for
    ``dense``, the surviving submatrix for ``compact``); ``indices`` are relative
    (zero runs) for ``*-rel``, absolute otherwise; ``pointers`` start each line
    (length lines + 1); ``extra`` holds the bitmap (``bitmap``), row indices
    (``coo``) or N:M positions. ``compact`` keeps its survivor lists of columns in
    ``indices`` and of rows in ``extra``, each empty when all survive, else a
    uint8 bitmap or int64 indices, whichever is smaller."""

    format: str
    values: np.ndarray
    indices: np.ndarray
    pointers: np.ndarray
    extra: np.ndarray


CountFn = Callable[[MaskProfile, FormatParams], FormatStats]
EncodeFn = Callable[[np.ndarray, FormatParams], Encoded]
ClosedFormFn = Callable[[MaskProfile, FormatParams], int]


class ExpectedFn(Protocol):
    """Expected bits of an i.i.d. mask of ``density`` in ``groups`` matrices ``rows x cols``."""

    def __call__(
        self, *, groups: int, rows: int, cols: int, density: float, params: FormatParams
    ) -> float: ...


@dataclass(frozen=True, kw_only=True)
class FormatSpec:
    """Everything prunesim knows about one storage format.

    ``count`` gives the bit-exact :class:`FormatStats` of a profiled mask; ``encode``
    the arrays of a 2-D matrix (zeros pruned); ``closed_form`` the total bits from
    the mask's counts by the format's formula (it must equal ``count``'s
    ``total_bits``); ``expected_bits`` the expected bits of an i.i.d. mask of a
    density in ``groups`` matrices ``rows x cols`` (computed pointer and index
    widths unless ``params`` states them); ``structured_for`` the structured
    prunings the format is made for (they need no per-weight index). Parts a format
    does not have are ``None``.
    """

    name: str
    description: str
    count: CountFn
    encode: EncodeFn | None = None
    closed_form: ClosedFormFn | None = None
    expected_bits: ExpectedFn | None = None
    structured_for: tuple[str, ...] = ()


FORMATS: dict[str, FormatSpec] = {}
"""Registered formats by name, in registration order."""


def register(
    name: str,
    description: str,
    structured_for: tuple[str, ...] = (),
    *,
    encode: EncodeFn | None = None,
    closed_form: ClosedFormFn | None = None,
    expected_bits: ExpectedFn | None = None,
) -> Callable[[CountFn], CountFn]:
    """Decorator: register the counter it decorates, with the format's other parts,
    as format ``name``. A name is registered once; a structured pruning has one
    format made for it."""
    if name in FORMATS:
        raise FormatError(f"format {name!r} is already registered")
    claimed = structured_formats()
    for kind in structured_for:
        if kind not in STRUCTURES or kind in NON_STRUCTURED:
            raise FormatError(
                f"format {name!r}: {kind!r} is not a structured pruning "
                f"({', '.join(k for k in STRUCTURES if k not in NON_STRUCTURED)})"
            )
        if kind in claimed:
            raise FormatError(f"format {name!r}: {kind!r} pruning already has {claimed[kind]!r}")

    def deco(count: CountFn) -> CountFn:
        FORMATS[name] = FormatSpec(
            name=name,
            description=description,
            count=count,
            encode=encode,
            closed_form=closed_form,
            expected_bits=expected_bits,
            structured_for=tuple(structured_for),
        )
        expected_format_bits.cache_clear()
        return count

    return deco


def unregister(name: str) -> FormatSpec:
    """Remove format ``name`` from the registry and give its spec back."""
    spec = _spec(name)
    del FORMATS[name]
    expected_format_bits.cache_clear()
    return spec


def _unknown(fmt: str) -> FormatError:
    return FormatError(f"unknown format {fmt!r} (known: {', '.join(FORMATS)})")


def _spec(fmt: str) -> FormatSpec:
    try:
        return FORMATS[fmt]
    except KeyError:
        raise _unknown(fmt) from None


def format_stats(profile: MaskProfile, fmt: str, params: FormatParams) -> FormatStats:
    """Storage of a profiled mask in format ``fmt``, counted once per profile, format
    and parameters (the profile keeps it: every platform and bit width asks again)."""
    key = ("stats", fmt, params)
    known = profile._cache.get(key)
    if known is not None:
        return known
    try:  # the hot path: no helper call
        count = FORMATS[fmt].count
    except KeyError:
        raise _unknown(fmt) from None
    stats = count(profile, params)
    if params.group_size and stats.representable:
        scales = group_scale_bits(profile.groups, profile.rows, profile.cols, params)
        stats = dataclasses.replace(stats, scales_bits=stats.scales_bits + scales)
    profile._cache[key] = stats
    return stats


def group_scale_bits(groups: int, rows: int, cols: int, params: FormatParams) -> int:
    """Bits of the group-wise quantization scales and zero points of ``groups``
    matrices ``rows x cols`` (rows = outputs, cols = the input/reduction dimension):
    ceil(cols / group_size) groups per row, each one ``scale_bits`` scale plus one
    ``zero_point_bits`` zero point; 0 without groups.

    The layout GPTQ, AWQ and Marlin store, over the dense row whatever the sparsity:
    AutoGPTQ's ``QuantLinear`` holds ``scales`` of shape (ceil(in / group_size), out)
    in float16 and ``qzeros`` (ceil(in / group_size), out * bits / 32) in int32 (one
    ``bits``-wide zero point per group and output); Marlin and Sparse-Marlin
    (IST-DASLab/Sparse-Marlin, ``marlin/__init__.py``, ``Layer``/``Layer_2_4``) hold
    ``s`` of shape (k / groupsize, n) in float16, symmetric (no zero points), with k
    the dense input dimension also for 2:4 weights.
    """
    if not params.group_size:
        return 0
    per_row = -(-cols // params.group_size)
    return groups * rows * per_row * (params.scale_bits + params.zero_point_bits)


def closed_form_bits(profile: MaskProfile, fmt: str, params: FormatParams) -> int:
    """Total bits of a profiled mask in ``fmt`` by the format's closed form, group
    scales included (0 where the format cannot hold the mask); raises if ``fmt``
    declares none."""
    spec = _spec(fmt)
    if spec.closed_form is None:
        raise FormatError(f"format {fmt!r} declares no closed form")
    bits = spec.closed_form(profile, params)
    # the scales are stored where the format holds the mask (its counter says whether)
    if params.group_size and format_stats(profile, fmt, params).representable:
        bits += group_scale_bits(profile.groups, profile.rows, profile.cols, params)
    return bits


def encode(
    matrix: np.ndarray,
    fmt: str,
    *,
    index_bits: int = 4,
    block: tuple[int, int] = (4, 4),
    nm: tuple[int, int] = (2, 4),
    params: FormatParams | None = None,
) -> Encoded:
    """Encode a 2-D matrix (zeros are pruned) in ``fmt``, with ``params`` or with the
    given index width, block and N:M shapes.

    Made for tests and documentation, not for speed: the encoders walk the matrix
    in plain Python. EIE's example: the column ``[0, 0, 1, 2, 0 x 18, 3]`` in
    ``csc-rel`` with 4-bit indices gives values ``[1, 2, 0, 3]`` and indices
    ``[2, 0, 15, 2]``.
    """
    a = np.asarray(matrix)
    if a.ndim != 2:
        raise FormatError(f"encode needs a 2-D matrix, got shape {a.shape}")
    spec = _spec(fmt)
    if spec.encode is None:
        raise FormatError(f"format {fmt!r} has no encoder (have: {', '.join(encodable_formats())})")
    if params is None:
        params = FormatParams(index_bits=index_bits, block=block, nm=nm)
    return spec.encode(a, params)


@functools.lru_cache(maxsize=65536)
def expected_format_bits(
    fmt: str,
    *,
    groups: int,
    rows: int,
    cols: int,
    density: float,
    weight_bits: int,
    index_bits: int = 4,
    group_size: int | None = None,
    scale_bits: int = 16,
    zero_point_bits: int = 0,
) -> float:
    """Expected bits of a ``groups x rows x cols`` i.i.d. mask of kept ``density`` in
    ``fmt`` (computed pointer and absolute-index widths), group-wise quantization
    scales included (:func:`group_scale_bits`)."""
    spec = FORMATS.get(fmt)
    if spec is None or spec.expected_bits is None:
        raise ValueError(
            f"no expected-size model for format {fmt!r} (have: {', '.join(expected_formats())})"
        )
    params = FormatParams(
        weight_bits=weight_bits,
        index_bits=index_bits,
        group_size=group_size,
        scale_bits=scale_bits,
        zero_point_bits=zero_point_bits,
    )
    bits = spec.expected_bits(groups=groups, rows=rows, cols=cols, density=density, params=params)
    return bits + group_scale_bits(groups, rows, cols, params)


def expected_formats() -> tuple[str, ...]:
    """Formats with an expected-size model for i.i.d. masks."""
    return tuple(name for name, spec in FORMATS.items() if spec.expected_bits is not None)


def encodable_formats() -> tuple[str, ...]:
    """Formats with an encoder."""
    return tuple(name for name, spec in FORMATS.items() if spec.encode is not None)


def structured_formats() -> dict[str, str]:
    """The format made for each structured pruning, in the order of
    :data:`simulator.masks.STRUCTURES`."""
    made_for = {kind: spec.name for spec in FORMATS.values() for kind in spec.structured_for}
    return {kind: made_for[kind] for kind in STRUCTURES if kind in made_for}


class _LiveMap(Mapping[str, str]):
    """A read-only mapping rebuilt from the registry on every use."""

    def __init__(self, build: Callable[[], dict[str, str]]) -> None:
        self._build = build

    def __getitem__(self, key: str) -> str:
        return self._build()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._build())

    def __len__(self) -> int:
        return len(self._build())

    def __repr__(self) -> str:
        return repr(self._build())


STRUCTURED_FORMATS: Mapping[str, str] = _LiveMap(structured_formats)
"""Structured pruning -> the format made for it (a live view of the registry)."""


# --- helpers for format definitions ----------------------------------------------------


def make_stats(p: MaskProfile, fmt: str, params: FormatParams, **kw) -> FormatStats:
    """A :class:`FormatStats` of profile ``p`` in ``fmt``; ``kw`` gives the rest."""
    return FormatStats(
        format=fmt,
        layer_name=p.layer_name,
        weight_bits=params.weight_bits,
        weights=p.weights,
        nnz=p.nnz,
        **kw,
    )


def check_width(what: str, given: int | None, needed: int, fmt: str, p: MaskProfile) -> int:
    """A stated width (``given``), checked to hold ``needed`` bits; ``needed`` if none."""
    if given is None:
        return needed
    if given < needed:
        raise FormatError(
            f"{fmt} of layer {p.layer_name!r}: {given}-bit {what} cannot hold "
            f"the {needed} bits needed"
        )
    return given
