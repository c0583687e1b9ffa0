"""Storage of whole networks in every format, and the storage break-even between
structured and non-structured pruning.

``network_storage`` profiles each layer's mask once and tabulates every format;
``storage_breakeven`` finds, per layer and for the whole network, the
non-structured pruning rate whose storage (values, indices, fillers, pointers)
equals that of a structured pruning at a given rate.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, replace

import numpy as np
import pandas as pd

from simulator.errors import MaskError
from simulator.formats import (
    FORMATS,
    STRUCTURED_FORMATS,
    FormatParams,
    FormatSpec,
    FormatStats,
    MaskProfile,
    expected_formats,
    format_stats,
    group_scale_bits,
    profile_mask,
)
from simulator.masks import Pruning
from simulator.netmasks import cascades, effective_rate, iter_masks, network_profiles
from simulator.workloads import Network

STRUCTURED_FORMAT = STRUCTURED_FORMATS
"""The format made for each structured pruning (no per-weight index): a live view of
the formats' ``structured_for`` (:data:`simulator.formats.STRUCTURED_FORMATS`)."""

STAT_COLUMNS = (
    "weights",
    "nnz",
    "entries",
    "values_bits",
    "indices_bits",
    "pointers_bits",
    "fillers_bits",
    "other_bits",
    "scales_bits",
    "total_bits",
)


@dataclass(frozen=True, kw_only=True)
class StorageResult:
    """Per-layer storage of a network in several formats; ``stats[layer][format]``.
    ``cascaded``: filter removals were cascaded through the network's graph;
    ``rate_asked``: all weights over those the pruning asked to keep (its per-layer
    densities, or the given masks before any cascade; ``nan`` if not given), to set
    beside :attr:`effective_rate`, the rate reached."""

    network: str
    pruning: str
    params: FormatParams
    formats: tuple[str, ...]
    stats: Mapping[str, Mapping[str, FormatStats]]
    cascaded: bool = False
    rate_asked: float = math.nan

    @property
    def effective_rate(self) -> float:
        """All weights over the kept ones (``inf`` if none is kept): the rate reached."""
        first = [next(iter(by_fmt.values())) for by_fmt in self.stats.values()]
        kept = sum(s.nnz for s in first)
        return sum(s.weights for s in first) / kept if kept else math.inf

    def to_frame(self) -> pd.DataFrame:
        """Long table: one row per (layer, format), bits split by kind."""
        rows = []
        for layer, by_fmt in self.stats.items():
            for fmt, s in by_fmt.items():
                rows.append(
                    {
                        "network": self.network,
                        "layer": layer,
                        "format": fmt,
                        "pruning": self.pruning,
                        "weight_bits": s.weight_bits,
                        **{c: getattr(s, c) for c in STAT_COLUMNS},
                        "density": s.nnz / s.weights,
                        "dense_bits": s.dense_bits,
                        "compression": s.compression,
                        "representable": s.representable,
                        "detail": s.detail,
                    }
                )
        return pd.DataFrame(rows)

    def totals(self) -> pd.DataFrame:
        """One row per format: bits summed over layers, compression against dense, and
        the ``effective_rate`` reached (all weights over kept ones)."""
        df = self.to_frame()
        out = df.groupby("format", sort=False)[[*STAT_COLUMNS, "dense_bits"]].sum()
        out["representable"] = df.groupby("format", sort=False)["representable"].all()
        out["density"] = out["nnz"] / out["weights"]
        out["effective_rate"] = out["weights"] / out["nnz"].where(out["nnz"] > 0)
        out["compression"] = out["dense_bits"] / out["total_bits"].where(out["representable"])
        out.insert(0, "network", self.network)
        return out.reset_index()


def network_storage(
    network: Network,
    pruning: Pruning,
    params: FormatParams,
    formats: Iterable[str] | None = None,
    masks: Mapping[str, np.ndarray] | None = None,
    on_layer: Callable[[str], None] | None = None,
) -> StorageResult:
    """Storage of every prunable layer in each format (default: every registered
    format). Masks are generated from ``pruning`` unless given (then they are checked
    against their layers); filter removals are cascaded through the graph where
    ``pruning`` asks for that (see :func:`~simulator.netmasks.iter_masks`)."""
    if not network.prunable_layers:
        raise MaskError(f"network {network.name!r} has no layers with weights to store")
    formats = tuple(FORMATS if formats is None else formats)
    stats: dict[str, dict[str, FormatStats]] = {}
    for layer, mask in iter_masks(network, pruning, masks=masks):
        profile = profile_mask(layer, mask)
        stats[layer.name] = {fmt: format_stats(profile, fmt, params) for fmt in formats}
        if on_layer:
            on_layer(layer.name)
    layers = network.prunable_layers
    total = sum(layer.weight_count for layer in layers)
    if masks is not None:  # checked above: the weight shape, only 0 and 1
        asked = sum(int(np.count_nonzero(masks[layer.name])) for layer in layers)
    else:
        asked = sum(pruning.density_of(layer.name) * layer.weight_count for layer in layers)
    return StorageResult(
        network=network.name,
        pruning=pruning.label,
        params=params,
        formats=formats,
        stats={layer.name: stats[layer.name] for layer in network.prunable_layers},
        cascaded=cascades(network, pruning),
        rate_asked=total / asked if asked else math.inf,
    )


@dataclass(frozen=True, kw_only=True)
class BreakEven:
    """Non-structured rate whose storage equals a structured pruning's.

    ``nonstructured_rate`` is ``inf`` where no non-structured rate breaks even
    ("never": a single kept weight already needs more bits, its pointers alone).
    ``structured_effective_rate`` is the rate the structured masks reach (all weights
    over kept ones), ``structured_rate`` the one asked for: whole filters, and in one
    layer the common factor of cascaded filter pruning, keep them apart by a little
    (per layer, by more); ``ratio`` = non-structured rate / that reached rate: how much
    sparser a non-structured mask must be than the structured one, kept weight for
    kept weight.
    """

    network: str
    layer: str
    structure: str
    structured_rate: float
    structured_effective_rate: float
    structured_bits: int
    sparse_format: str
    weight_bits: int
    index_bits: int
    nonstructured_rate: float
    nonstructured_bits: float

    @property
    def ratio(self) -> float:
        return self.nonstructured_rate / self.structured_effective_rate

    def as_dict(self) -> dict:
        return {**asdict(self), "ratio": self.ratio}


def _solve_density(bits_at: Callable[[float], float], target: float, d_min: float) -> float:
    """Largest density in [d_min, 1] with bits_at(d) <= target (bits_at non-decreasing);
    0 if even d_min costs more. Bisection on log density to a relative 1e-9."""
    if bits_at(d_min) > target:
        return 0.0
    if bits_at(1.0) <= target:
        return 1.0
    lo, hi = math.log(d_min), 0.0
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if bits_at(math.exp(mid)) <= target:
            lo = mid
        else:
            hi = mid
    return math.exp(lo)


def storage_breakeven(
    network: Network,
    structure: str,
    structured_rate: float,
    params: FormatParams,
    sparse_format: str = "csr-rel",
    seed: int = 0,
    structured_profiles: Mapping[str, MaskProfile] | None = None,
    cascade: bool = True,
) -> list[BreakEven]:
    """Per prunable layer, then the whole network (layer ``"(network)"``, one uniform
    rate): the non-structured rate in ``sparse_format`` whose expected storage on an
    i.i.d. mask equals the storage of ``structure`` pruning at ``structured_rate``
    in the format made for it (exact, from the generated structured masks, filter
    removals cascaded through the graph unless ``cascade`` is false, or from
    ``structured_profiles`` of those masks when given)."""
    made_for = dict(STRUCTURED_FORMAT)
    if structure not in made_for:
        raise MaskError(
            f"break-even needs a structured pruning ({', '.join(made_for)}), got {structure!r}"
        )
    if sparse_format not in (have := expected_formats()):
        raise MaskError(
            f"break-even format must be one of {', '.join(have)}, got {sparse_format!r}"
        )
    pruning = Pruning(
        structure=structure,
        density=1.0 / structured_rate,
        seed=seed,
        block=params.block,
        nm=params.nm,
        cascade=cascade,
    )
    layers = network.prunable_layers
    if structured_profiles is None:
        structured_profiles = network_profiles(network, pruning)
    s_bits, bits_fns, shapes = [], [], []
    for layer in layers:
        stats = format_stats(structured_profiles[layer.name], made_for[structure], params)
        s_bits.append(stats.total_bits)
        g = layer.gemm
        shape = (g.groups, g.rows, g.cols)
        shapes.append(shape)
        bits_fns.append(_expected_bits_fn(FORMATS[sparse_format], shape, params))
    out = []

    def record(
        name: str,
        target: int,
        fn: Callable[[float], float],
        weights: int,
        reached: float,
        shape: tuple[int, int, int] | None = None,
    ) -> None:
        if shape is not None:  # a layer: the same solve for every layer of its shape
            spec = FORMATS[sparse_format]
            quant = (params.group_size, params.scale_bits, params.zero_point_bits)
            d = _solve_layer(spec, shape, params.weight_bits, params.index_bits, target, quant)
        else:
            d = _solve_density(fn, target, 1.0 / weights)
        out.append(
            BreakEven(
                network=network.name,
                layer=name,
                structure=structure,
                structured_rate=float(structured_rate),
                structured_effective_rate=float(reached),
                structured_bits=int(target),
                sparse_format=sparse_format,
                weight_bits=params.weight_bits,
                index_bits=params.index_bits,
                nonstructured_rate=math.inf if d == 0 else 1.0 / d,
                nonstructured_bits=fn(d) if d > 0 else fn(1.0 / weights),
            )
        )

    for layer, target, fn, shape in zip(layers, s_bits, bits_fns, shapes, strict=True):
        prof = structured_profiles[layer.name]
        record(layer.name, target, fn, layer.weight_count, effective_rate({0: prof}), shape)
    # the network: each distinct shape's bits once per density, summed in layer order
    fn_of = dict(zip(shapes, bits_fns, strict=True))

    def network_bits(d: float) -> float:
        each = {shape: f(d) for shape, f in fn_of.items()}
        return sum(each[shape] for shape in shapes)

    record(
        "(network)",
        sum(s_bits),
        network_bits,
        min(layer.weight_count for layer in layers),
        effective_rate(structured_profiles),
    )
    return out


def _expected_bits_fn(
    spec: FormatSpec, shape: tuple[int, int, int], params: FormatParams
) -> Callable[[float], float]:
    """Density -> :func:`~simulator.formats.expected_format_bits` of an i.i.d. mask of
    ``shape`` (groups, rows, cols) in the format ``spec`` at ``params``' weight and index
    widths: the same computation, without its cache and a new parameter object at
    every density; group-wise quantization scales included, as in the counted bits)."""
    at = FormatParams(weight_bits=params.weight_bits, index_bits=params.index_bits)
    groups, rows, cols = shape
    scales = group_scale_bits(groups, rows, cols, params)

    def bits(d: float) -> float:
        return (
            spec.expected_bits(groups=groups, rows=rows, cols=cols, density=d, params=at) + scales
        )

    return bits


@functools.lru_cache(maxsize=65536)
def _solve_layer(
    spec: FormatSpec,
    shape: tuple[int, int, int],
    weight_bits: int,
    index_bits: int,
    target: int,
    quant: tuple[int | None, int, int] = (None, 16, 0),
) -> float:
    """:func:`_solve_density` for one layer's expected bits in the format ``spec`` (kept
    by the format's registration itself, so a format registered anew solves anew:
    layers of one shape and target, in a network or across calls, solve once). ``quant``:
    group size, scale and zero-point bits."""
    group_size, scale_bits, zero_point_bits = quant
    params = FormatParams(
        weight_bits=weight_bits,
        index_bits=index_bits,
        group_size=group_size,
        scale_bits=scale_bits,
        zero_point_bits=zero_point_bits,
    )
    fn = _expected_bits_fn(spec, shape, params)
    return _solve_density(fn, target, 1.0 / (shape[0] * shape[1] * shape[2]))


@dataclass(frozen=True, kw_only=True)
class StorageReport:
    """A network's storage in several formats and, beside it, the storage break-even
    of ``structure`` pruning at ``structured_rate`` against non-structured pruning in
    ``sparse_format``."""

    storage: StorageResult
    breakeven: tuple[BreakEven, ...]
    structure: str
    structured_rate: float
    sparse_format: str

    def breakeven_frame(self) -> pd.DataFrame:
        """One row per layer and one for the network (``layer == "(network)"``)."""
        return pd.DataFrame([b.as_dict() for b in self.breakeven])


def storage_report(
    network: Network,
    pruning: Pruning,
    params: FormatParams,
    formats: Iterable[str] | None = None,
    *,
    masks: Mapping[str, np.ndarray] | None = None,
    label: str | None = None,
    structure: str = "filter",
    structured_rate: float | None = None,
    sparse_format: str = "csr-rel",
    on_layer: Callable[[str], None] | None = None,
) -> StorageReport:
    """:func:`network_storage` (labelled ``label`` when given) and
    :func:`storage_breakeven`; the structured rate defaults to the level of the masks
    (the given masks' overall rate, else ``pruning``'s global one)."""
    result = network_storage(network, pruning, params, formats, masks=masks, on_layer=on_layer)
    if label is not None:
        result = replace(result, pruning=label)
    if structured_rate is None:
        if masks is not None:
            kept = sum(int(np.count_nonzero(m)) for m in masks.values())
            structured_rate = sum(m.size for m in masks.values()) / max(kept, 1)
        else:
            structured_rate = 1.0 / pruning.density
    if not (math.isfinite(structured_rate) and structured_rate >= 1):
        raise MaskError(f"structured rate must be finite and >= 1, got {structured_rate}")
    be = storage_breakeven(
        network,
        structure,
        structured_rate,
        params,
        sparse_format,
        seed=pruning.seed,
        cascade=pruning.cascade,
    )
    return StorageReport(
        storage=result,
        breakeven=tuple(be),
        structure=structure,
        structured_rate=float(structured_rate),
        sparse_format=sparse_format,
    )
