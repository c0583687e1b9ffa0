"""The one place that chains the steps: masks -> counts -> cost, per layer and network.

:func:`prepare_profiles` turns pruning specs (or given masks) into mask profiles
once; :func:`simulate_network` reuses them on any platform. The engine is chosen by
the platform's class and execution model: FPGAs run dense, structured and N:M work
on a systolic array and non-structured work on an EIE-style array, each with as
many PEs as fit on the device (same chip); ASICs run their own execution model;
CPUs and GPUs the roofline.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from simulator.cost import LayerCost, price
from simulator.dataflows import (
    run_eie,
    run_roofline,
    run_rowstationary,
    run_scnn,
    run_systolic,
)
from simulator.dataflows.task import LayerTask
from simulator.errors import ConfigError
from simulator.formats import MaskProfile, all_kept_profile, profile_mask
from simulator.hwconfig import Platform
from simulator.layers import Layer
from simulator.masks import Pruning, check_mask
from simulator.netmasks import cascade_masks, cascades, layer_profiles, network_profiles
from simulator.settings import Settings, check_variant
from simulator.traffic import ExecutionCounts
from simulator.workloads import Network

if TYPE_CHECKING:
    from simulator.checkpoints import Checkpoint

ENERGY_COLUMNS = (
    "energy_j",
    "energy_dram_j",
    "energy_sram_j",
    "energy_mac_j",
    "energy_index_j",
    "energy_static_j",
    "energy_busy_j",
)
"""Energy of a layer (J) and its parts, as :meth:`LayerResult.record` names them."""


@dataclass(frozen=True, kw_only=True)
class LayerResult:
    """Counts and cost of one layer, one variant, one platform."""

    network: str
    layer: str
    platform: str
    variant: str
    density: float
    dram_bits: float
    counts: ExecutionCounts
    cost: LayerCost
    kv_read_bits: int = 0
    """Bits read from the KV cache (the cache operand of an attention product at the
    KV width), whichever memory level holds it; 0 for a layer that reads no cache."""
    kv_write_bits: int = 0
    """Bits written to the KV cache (a k/v projection's outputs at the KV width); 0
    for a layer that writes none."""

    @property
    def pe_utilization(self) -> float:
        """Busy fraction of the MAC slots over the whole latency, not just compute time."""
        c, k = self.counts, self.cost
        return c.pe_utilization * k.compute_s / k.latency_s if k.latency_s else 0.0

    def record(self) -> dict:
        """A flat row for tables (units in the names)."""
        c, k = self.counts, self.cost
        return {
            "network": self.network,
            "layer": self.layer,
            "platform": self.platform,
            "variant": self.variant,
            "engine": c.engine,
            "density": self.density,
            "latency_s": k.latency_s,
            "bound": k.bound,
            "compute_s": k.compute_s,
            "energy_j": k.energy_j,
            "energy_dram_j": k.energy_dram_j,
            "energy_sram_j": k.energy_sram_j,
            "energy_mac_j": k.energy_mac_j,
            "energy_index_j": k.energy_index_j,
            "energy_static_j": k.energy_static_j,
            "energy_busy_j": k.energy_busy_j,
            "macs_dense": c.macs_dense,
            "macs_done": c.macs_done,
            "macs_gated": c.macs_gated,
            "macs_skipped": c.macs_skipped,
            "index_decodes": c.index_decodes,
            "compute_cycles": c.compute_cycles,
            "pe_utilization": self.pe_utilization,
            "load_balance": c.load_balance,
            "dram_bits": self.dram_bits,
            "kv_read_bits": self.kv_read_bits,
            "kv_write_bits": self.kv_write_bits,
            **(c.words or {}),
            **({"mapping": c.mapping.loop_nest()} if c.mapping is not None else {}),
        }


def engine(platform: Platform, variant: str) -> Callable[[LayerTask], ExecutionCounts]:
    """The execution model that runs ``variant`` on ``platform``. On an FPGA, dense work
    runs on one core of the design that ships (else the PEs that fit); the sparse
    variant runs on the engine that ``compute.sparse_engines`` names for the layer's
    kind, where the profile names one (:meth:`Platform.sparse_engine`)."""
    named = bool(platform.raw.get("compute", {}).get("sparse_engines"))
    if platform.fpga is not None:
        array = platform.fpga.dense_array()
        if variant == "sparse" or array is None:
            pes = platform.fpga.sparse_pes()
            if named and variant == "sparse":
                return lambda t: _sparse_engine(t, platform, pes)
            return lambda t: run_eie(t, platform, pes=pes)
        rows, cols, lanes, buffered = array
        core = platform.with_sram(platform.fpga.core_buffer_bytes())  # its own RAM
        return lambda t: run_systolic(t, core, rows, cols, lanes, buffered)
    if variant == "sparse" and named:
        return lambda t: _sparse_engine(t, platform, None)
    return _by_execution(platform)


def _by_execution(platform: Platform) -> Callable[[LayerTask], ExecutionCounts]:
    """The profile's execution model (ASIC, CPU, GPU)."""
    if platform.execution == "scnn":
        return lambda t: run_scnn(t, platform)
    if platform.execution == "eie":
        return lambda t: run_eie(t, platform)
    if platform.execution == "systolic":
        return lambda t: run_systolic(t, platform)
    if platform.execution == "rowstationary":
        return lambda t: run_rowstationary(t, platform)
    return lambda t: run_roofline(t, platform)


_SPARSE_ENGINES = {"eie": run_eie, "scnn": run_scnn}


def _sparse_engine(task: LayerTask, platform: Platform, pes: int | None) -> ExecutionCounts:
    """A sparse task on the engine named for its layer kind; where none is named, on
    the FPGA's EIE array of ``pes`` PEs or the ASIC's execution model."""
    name = platform.sparse_engine(task.layer.kind)
    if name is None:
        if pes is not None:
            return run_eie(task, platform, pes=pes)
        return _by_execution(platform)(task)
    return _SPARSE_ENGINES[name](task, platform, pes=pes)


def prepare_profiles(
    network: Network, variants: Mapping[str, Pruning | Mapping[str, np.ndarray]]
) -> dict[str, dict[str, MaskProfile]]:
    """Mask profiles per variant and prunable layer, from a pruning spec (filter
    removals cascaded through the network's graph where it asks for that, see
    :mod:`simulator.netmasks`) or given masks (checked against their layers).
    ``dense`` is always included."""
    specs: dict[str, Pruning | Mapping[str, np.ndarray]] = {"dense": Pruning(structure="dense")}
    specs.update(variants)
    out: dict[str, dict[str, MaskProfile]] = {}
    for variant, spec in specs.items():
        check_variant(variant, "variants")
        if isinstance(spec, Pruning):
            out[variant] = network_profiles(network, spec)
            continue
        out[variant] = {}
        for layer in network.prunable_layers:
            if layer.name not in spec:
                raise ConfigError(f"{variant} masks", f"no mask for layer {layer.name!r}")
            mask = check_mask(layer, spec[layer.name], f"{variant} mask")
            out[variant][layer.name] = profile_mask(layer, mask)
    return out


def _settings(settings: Settings | None, overrides: Mapping[str, object]) -> Settings:
    """``settings`` (default: :class:`Settings`'s defaults) with keyword overrides,
    validated."""
    base = settings if settings is not None else Settings()
    if not overrides:
        return base
    unknown = sorted(set(overrides) - {f.name for f in fields(Settings)})
    if unknown:
        raise ConfigError("settings", f"unknown setting(s) {', '.join(unknown)}")
    return replace(base, **overrides)


def priced_as(
    layer: Layer, profile: MaskProfile | None, platform: Platform, settings: Settings
) -> tuple[str, int, int]:
    """The variant a layer runs as and its weight and activation widths (bits): a
    weightless layer, or one without a mask profile, runs as dense work at activation
    precision whatever the variant."""
    ab = settings.activation_bits or platform.activation_bits
    if profile is None or not layer.prunable:
        return "dense", ab, ab
    return settings.variant, settings.weight_bits, ab


def simulate_layer(
    layer: Layer,
    platform: Platform,
    profile: MaskProfile | None,
    settings: Settings | None = None,
    *,
    network: str = "",
    weight_room_bits: tuple[float, ...] | None = None,
    **overrides: object,
) -> LayerResult:
    """Counts and cost of one layer under ``settings`` (keyword arguments named like
    :class:`Settings`' fields override it: ``variant="sparse"``). A weightless layer
    (attention product) runs as dense work at activation precision whatever the
    variant, its KV-cache operand at ``kv_bits`` (as are the outputs a k/v projection
    writes to the cache). ``weight_room_bits``: on engines that keep weights on chip across
    inferences, the weight SRAM left on each PE by earlier layers (None: all of it)."""
    s = _settings(settings, overrides)
    ad = (
        platform.compute.activation_density
        if s.activation_density is None
        else s.activation_density
    )
    variant, wb, ab = priced_as(layer, profile, platform, s)
    if profile is None or not layer.prunable:
        g = layer.gemm
        profile = _ones_profile(g.groups, g.rows, g.cols)
    task = LayerTask(
        layer=layer,
        profile=profile,
        variant=variant,
        weight_bits=wb,
        index_bits=s.index_bits,
        activation_bits=ab,
        activation_density=ad,
        seed=s.seed,
        weight_room_bits=weight_room_bits,
        kv_bits=s.kv_bits,
        # group scales belong to a layer's weights: none for a weightless product
        group_size=s.group_size if layer.prunable else None,
        scale_bits=s.scale_bits,
        zero_point_bits=s.zero_point_bits,
    )
    counts = engine(platform, variant)(task)
    cost = price(counts, platform, wb, ab)
    drams = {m.name for m in platform.memory if m.kind == "dram"}
    return LayerResult(
        network=network,
        layer=layer.name,
        platform=platform.name,
        variant=variant,
        density=profile.density,
        dram_bits=sum(a.read_bits + a.write_bits for a in counts.accesses if a.level in drams),
        counts=counts,
        cost=cost,
        kv_read_bits=task.kv_read_bits,
        kv_write_bits=task.kv_write_bits,
    )


@functools.lru_cache(maxsize=256)
def _ones_profile(groups: int, rows: int, cols: int) -> MaskProfile:
    """The profile of an all-ones operand (weightless layers), shared by shape; its
    counts are closed forms, so no operand-sized array is made."""
    return all_kept_profile(groups, rows, cols, "activations")


@dataclass(frozen=True, kw_only=True)
class NetworkEstimate:
    """Every layer of a network under each variant on one platform."""

    network: str
    platform: str
    layers: tuple[LayerResult, ...]

    def frame(self) -> pd.DataFrame:
        """One row per (layer, variant)."""
        return pd.DataFrame([r.record() for r in self.layers])

    def totals(self) -> pd.DataFrame:
        """One row per variant: latency and energy summed over layers, PE utilization
        weighted by latency, speedup and energy ratio against dense on this platform,
        the ``engine`` that ran most of its layers and the ``main_bound``: the bound
        that set the largest share of its latency (:meth:`total_rows`)."""
        return _totals_frame(self.total_rows())

    def total_rows(self) -> list[dict]:
        """:meth:`totals` as plain rows, variants in the order they first appear. The
        sums are pandas groupby sums over the layers' columns (as :meth:`frame` has
        them); the most common engine wins, ties to the first in sorted order; the main
        bound's ties go to the bound seen first."""
        return _total_rows((self,))


def _total_rows(estimates: Iterable[NetworkEstimate]) -> list[dict]:
    """:meth:`NetworkEstimate.total_rows` of several estimates, one after the other,
    from one groupby over all their layers (each group's sum as its own)."""
    estimates = tuple(estimates)
    for e in estimates:
        if not any(r.variant == "dense" for r in e.layers):
            raise ConfigError("variants", "totals compare with dense: no dense variant simulated")
    layers = [r for e in estimates for r in e.layers]
    # the columns as record() has them: LayerCost and ExecutionCounts fields by name
    cols = {
        "estimate": [j for j, e in enumerate(estimates) for _ in e.layers],
        "variant": [r.variant for r in layers],
        "bound": [r.cost.bound for r in layers],
    }
    for c in ("latency_s", *ENERGY_COLUMNS):
        cols[c] = [getattr(r.cost, c) for r in layers]
    for c in ("macs_dense", "macs_done"):
        cols[c] = [getattr(r.counts, c) for r in layers]
    cols["dram_bits"] = [r.dram_bits for r in layers]
    for c in ("kv_read_bits", "kv_write_bits"):
        cols[c] = [getattr(r, c) for r in layers]
    df = pd.DataFrame(cols)
    keys = ["estimate", "variant"]
    sums = df.groupby(keys, sort=False)[list(SUMMED_COLUMNS)].sum()
    busy = pd.Series([r.pe_utilization for r in layers]) * df["latency_s"]
    # sorted groups, as a groupby by the variant alone sums them (the same bits)
    util = (busy.groupby([df[k] for k in keys]).sum() / sums["latency_s"]).to_dict()
    bound_s = df.groupby([*keys, "bound"], sort=False)["latency_s"].sum()
    main: dict[tuple[int, str], str] = {}
    most: dict[tuple[int, str], float] = {}
    for (j, v, b), t in bound_s.items():  # the first of equal ones, as idxmax
        if (j, v) not in most or t > most[(j, v)]:
            main[(j, v)], most[(j, v)] = b, t
    engines: dict[tuple[int, str], Counter] = {}
    for j, e in enumerate(estimates):
        for r in e.layers:
            engines.setdefault((j, r.variant), Counter())[r.counts.engine] += 1
    summed = {c: sums[c].tolist() for c in SUMMED_COLUMNS}
    at = {key: n for n, key in enumerate(sums.index)}
    rows = []
    for n, (j, v) in enumerate(sums.index):
        d = at[(j, "dense")]
        row = {c: summed[c][n] for c in SUMMED_COLUMNS}
        top = max(engines[(j, v)].values())
        rows.append(
            {
                "variant": v,
                "network": estimates[j].network,
                "platform": estimates[j].platform,
                **row,
                "pe_utilization": util[(j, v)],
                "speedup": np.float64(summed["latency_s"][d]) / summed["latency_s"][n],
                "energy_ratio": np.float64(summed["energy_j"][n]) / summed["energy_j"][d],
                "engine": min(e for e, c in engines[(j, v)].items() if c == top),
                "main_bound": main[(j, v)],
            }
        )
    return rows


SUMMED_COLUMNS = (
    "latency_s",
    *ENERGY_COLUMNS,
    "macs_dense",
    "macs_done",
    "dram_bits",
    "kv_read_bits",
    "kv_write_bits",
)
"""Columns of :meth:`NetworkEstimate.totals` summed over a variant's layers."""


def _totals_frame(rows: list[dict]) -> pd.DataFrame:
    """Total rows as a frame (``main_bound`` of object dtype, as a groupby's
    ``idxmax`` gives it)."""
    out = pd.DataFrame(rows)
    out["main_bound"] = out["main_bound"].astype(object)
    return out


def simulate_network(
    network: Network,
    platform: Platform,
    profiles: Mapping[str, Mapping[str, MaskProfile]],
    settings: Settings | None = None,
    *,
    variants: Iterable[str] | None = None,
    on_layer: Callable[[], None] | None = None,
    **overrides: object,
) -> NetworkEstimate:
    """Simulate every layer under each variant of ``profiles`` (from
    :func:`prepare_profiles`), or of ``variants``, with ``settings`` (keyword
    overrides as in :func:`simulate_layer`; the variant comes from ``variants``).
    Weightless layers count in every variant, as dense. On engines that keep weights on
    chip across inferences (``compute.weights_resident``) the network's layers fill the
    weight SRAM in network order; what does not fit streams from DRAM on every pass."""
    base = _settings(settings, overrides)
    wanted = list(variants) if variants is not None else list(profiles)
    for variant in wanted:
        check_variant(variant, "variants")
        if variant not in profiles:
            raise ConfigError("variants", f"no mask profiles for variant {variant!r}")
    sources = {v: _held(profiles[v]) for v in wanted}
    return simulate_platforms(network, [(platform, sources)], base, on_layer=on_layer)[0]


def _held(profiles: Mapping[str, MaskProfile]) -> Callable[[Layer], MaskProfile | None]:
    """A profile source over profiles held by layer name (None: the layer has none)."""
    return lambda layer: profiles.get(layer.name)


def simulate_platforms(
    network: Network,
    runs: Iterable[tuple[Platform, Mapping[str, Callable[[Layer], MaskProfile | None]]]],
    settings: Settings,
    *,
    on_layer: Callable[[], None] | None = None,
    on_profile: Callable[[object, MaskProfile], None] | None = None,
) -> tuple[NetworkEstimate, ...]:
    """Each run's platform under each of its variants, layer by layer, as
    :func:`simulate_network` simulates them: ``runs`` pairs a platform with a profile
    source per variant (a prunable layer's mask profile, made when asked: see
    :func:`~simulator.netmasks.layer_profiles`).

    Each layer's profiles are asked of their sources once (a source shared by several
    runs or variants is asked once) and dropped before the next layer, so what is
    held is one layer's masks and the results: the memory is set by the largest
    layer, not by the network. ``on_profile(source, profile)`` sees every profile
    made (to add up kept weights); ``on_layer`` is called once per layer simulated."""
    runs = list(runs)
    with _collector_set_aside():
        return _simulate_platforms(network, runs, settings, on_layer, on_profile)


@contextlib.contextmanager
def _collector_set_aside():
    """The objects that exist now (modules, compiled kernels, platforms, profiles) set
    aside from Python's cyclic garbage collector while the body runs, so that a full
    collection scans only what the body made; returned to it after (``gc.freeze``)."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _simulate_platforms(network, runs, settings, on_layer, on_profile):
    """:func:`simulate_platforms`' loop over layers, runs and variants."""
    results = [{v: [] for v in sources} for _, sources in runs]
    rooms: list[dict[str, tuple[float, ...] | None]] = [
        dict.fromkeys(sources) for _, sources in runs
    ]
    as_variant = {v: replace(settings, variant=v) for _, sources in runs for v in sources}
    for layer in network.layers:
        made: dict[int, MaskProfile | None] = {}  # this layer's profiles, by source
        for (platform, sources), out, room in zip(runs, results, rooms, strict=True):
            for variant, source in sources.items():
                prof = None
                if layer.prunable:
                    if id(source) not in made:
                        made[id(source)] = source(layer)
                        if on_profile is not None and made[id(source)] is not None:
                            on_profile(source, made[id(source)])
                    prof = made[id(source)]
                r = simulate_layer(
                    layer,
                    platform,
                    prof,
                    as_variant[variant],
                    network=network.name,
                    weight_room_bits=room[variant],
                )
                if r.counts.weight_room_left_bits is not None:
                    room[variant] = r.counts.weight_room_left_bits
                # a weightless layer reports dense; file it under the variant it belongs to
                out[variant].append(r if r.variant == variant else replace(r, variant=variant))
                if on_layer:
                    on_layer()
        del made
    return tuple(
        NetworkEstimate(
            network=network.name,
            platform=platform.name,
            layers=tuple(r for rs in out.values() for r in rs),
        )
        for (platform, _), out in zip(runs, results, strict=True)
    )


def estimate_variants(
    platform: Platform, pruning: Pruning, structured: str = "filter"
) -> dict[str, Pruning]:
    """The pruned variants compared with dense at one level: ``structured`` pruning,
    non-structured (random) pruning, and N:M where the platform has an N:M unit."""
    base = {
        "per_layer": pruning.per_layer,
        "seed": pruning.seed,
        "block": pruning.block,
        "cascade": pruning.cascade,
    }
    out = {
        "structured": Pruning(structure=structured, density=pruning.density, nm=pruning.nm, **base),
        "sparse": Pruning(structure="random", density=pruning.density, nm=pruning.nm, **base),
    }
    nm = platform.compute.nm_sparse
    if nm is not None:
        out["nm"] = Pruning(structure="nm", nm=(nm.n, nm.m), **base)
    return out


@dataclass(frozen=True, kw_only=True)
class Estimate:
    """One network on several platforms: dense against its pruned variants.

    ``level`` says what the pruned variants are (``level 8x``, per-layer levels with
    the overall rate, or where a checkpoint's masks came from); ``given_variant``
    names the variant that holds given (checkpoint) masks, ``""`` if none;
    ``variants`` the variants run on each platform, dense first;
    ``effective_rates[platform][variant]`` the rate each variant's masks reach (all
    weights over kept ones); ``cascaded``: the structured variant's filter removals
    were cascaded through the network's graph.
    """

    network: str
    level: str
    given_variant: str
    settings: Settings
    structure: str
    estimates: tuple[NetworkEstimate, ...]
    variants: Mapping[str, tuple[str, ...]]
    effective_rates: Mapping[str, Mapping[str, float]]
    cascaded: bool = False

    def frame(self) -> pd.DataFrame:
        """One row per (platform, layer, variant)."""
        return pd.DataFrame([r.record() for e in self.estimates for r in e.layers])

    def totals(self) -> pd.DataFrame:
        """One row per (platform, variant): see :meth:`NetworkEstimate.totals`, and the
        ``effective_rate`` the variant's masks reach."""
        rows = [
            {**row, "effective_rate": self.effective_rates[row["platform"]][row["variant"]]}
            for row in _total_rows(self.estimates)
        ]
        return _totals_frame(rows)


def _level(network: Network, pruning: Pruning, rate: float) -> str:
    """What the pruned variants are: one level, or per-layer levels with the ``rate``
    the non-structured masks reach overall."""
    if not pruning.per_layer:
        return f"level {1 / pruning.density:g}x"
    n = len(set(pruning.per_layer) & {layer.name for layer in network.prunable_layers})
    return f"per-layer levels ({n} of {len(network.prunable_layers)} layers), overall {rate:.3g}x"


def _given(
    network: Network, variant: str, masks: Mapping[str, np.ndarray]
) -> Callable[[Layer], MaskProfile]:
    """A profile source over given masks, each checked against its layer when asked
    (as :func:`prepare_profiles` checks them)."""
    for layer in network.prunable_layers:
        if layer.name not in masks:
            raise ConfigError(f"{variant} masks", f"no mask for layer {layer.name!r}")

    def profiled(layer: Layer) -> MaskProfile:
        return profile_mask(layer, check_mask(layer, masks[layer.name], f"{variant} mask"))

    return profiled


def estimate_network(
    network: Network,
    platforms: Iterable[Platform],
    pruning: Pruning | None = None,
    settings: Settings | None = None,
    *,
    structure: str = "filter",
    checkpoint: Checkpoint | None = None,
    assume_geometry: bool = False,
    cascade: bool = True,
    progress: Callable[[int], Callable[[], None] | None] | None = None,
) -> Estimate:
    """Dense, ``structure``-pruned, non-structured (and N:M where a platform has an
    N:M unit) inference of ``network`` on each platform, all at ``pruning``'s level.

    With ``checkpoint``, its masks (all kept where it has none) are the variant their
    structure names (:attr:`~simulator.checkpoints.Checkpoint.variant`: structured,
    nm or sparse), run on every platform, and the other variants are generated at the
    same per-layer densities; ``cascade`` says whether filter removals cascade through
    the graph for them and for the checkpoint's own structured masks (then the other
    variants take the densities the cascaded masks reach; without a checkpoint,
    ``pruning`` says). A network derived from a bare state_dict has assumed
    conv geometry (MACs unknown): it is refused unless ``assume_geometry``.
    ``progress(total)`` may return a callable ticked once per layer simulated.
    """
    platforms = list(platforms)
    settings = settings if settings is not None else Settings()
    given: dict[str, Mapping[str, np.ndarray]] = {}
    if checkpoint is not None:
        if checkpoint.geometry_assumed and not assume_geometry:
            raise ConfigError(
                checkpoint.path,
                "the network was derived from a bare state_dict, so its conv geometry "
                "(input sizes, strides) is assumed and MACs would be wrong: give "
                "--input-shape (or a MODEL to map onto), or ask for it with --assume-geometry",
            )
        v = checkpoint.variant
        masks = checkpoint.masks(fill_missing=True)
        per_layer, overall = v.per_layer_density, v.density
        if v.variant == "structured" and cascade and network.graph is not None:
            # the other variants at the densities the cascaded masks reach
            masks = cascade_masks(network, masks)
            per_layer = {n: float(np.count_nonzero(m)) / m.size for n, m in masks.items()}
            overall = sum(np.count_nonzero(m) for m in masks.values()) / sum(
                m.size for m in masks.values()
            )
        pruning = Pruning(
            density=max(overall, 1e-9),
            per_layer={n: max(d, 1e-9) for n, d in per_layer.items()},
            seed=settings.seed,
            cascade=cascade,
        )
        given = {v.variant: masks}
    elif pruning is None:
        raise ConfigError("estimate", "give a pruning level or a checkpoint")
    # each platform's variants; a spec shared by platforms (equal prunings, the same
    # given masks) has one profile source, and platforms whose N:M units differ get
    # their own; profiles are made layer by layer (see simulate_platforms)
    made: list[tuple[str, object, Callable[[Layer], MaskProfile]]] = []

    def source(variant: str, spec: Pruning | Mapping[str, np.ndarray]):
        for v, s, src in made:
            if v == variant and (s is spec or (isinstance(spec, Pruning) and s == spec)):
                return src
        src = (
            layer_profiles(network, spec)
            if isinstance(spec, Pruning)
            else _given(network, variant, spec)
        )
        made.append((variant, spec, src))
        return src

    per_platform: dict[str, dict[str, Callable[[Layer], MaskProfile]]] = {}
    for p in platforms:
        specs = {"dense": Pruning(structure="dense"), **estimate_variants(p, pruning, structure)}
        specs.update(given)
        per_platform[p.name] = {v: source(v, s) for v, s in specs.items()}
    wanted = {name: tuple(srcs) for name, srcs in per_platform.items()}
    total = len(network.layers) * sum(len(v) for v in wanted.values())
    tick = progress(total) if progress else None
    kept: dict[int, list[int]] = {id(src): [0, 0] for _, _, src in made}  # kept, all weights

    def count(src: object, prof: MaskProfile) -> None:
        kept[id(src)][0] += prof.nnz
        kept[id(src)][1] += prof.weights

    estimates = simulate_platforms(
        network,
        [(p, per_platform[p.name]) for p in platforms],
        settings,
        on_layer=tick,
        on_profile=count,
    )

    def rate(src: object) -> float:
        nnz, weights = kept[id(src)]
        return weights / nnz if nnz else math.inf

    sparse = next(src for v, _, src in made if v == "sparse")
    level = (
        checkpoint.variant.note
        if checkpoint is not None
        else _level(network, pruning, rate(sparse))
    )
    rates = {p: {v: rate(src) for v, src in srcs.items()} for p, srcs in per_platform.items()}
    return Estimate(
        network=network.name,
        level=level,
        given_variant=next(iter(given), ""),
        settings=settings,
        structure=structure,
        estimates=estimates,
        variants=wanted,
        effective_rates=rates,
        cascaded=network.graph is not None
        and (
            cascade
            if "structured" in given
            else cascades(network, replace(pruning, structure=structure))
        ),
    )
