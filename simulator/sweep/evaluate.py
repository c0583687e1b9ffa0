"""Evaluating points: each mask generated and profiled once, then run on many
hardware points.

:func:`evaluate` turns points into rows (see :mod:`simulator.sweep.columns`). A
point's workload (network, pruning level and seed, structure) decides its masks; the
mask profiles of the last few workloads are kept per process (:class:`Context`), so a
batch of points of one workload profiles its masks once and only the hardware
changes from point to point. Each point's profile is the base profile with the
point's hardware values set, validated as a file would be
(:func:`~simulator.hwconfig.platform_from_dict`); a point that makes no hardware
sense, or whose pruning level or settings are invalid, gives rows with status
``invalid`` and the validation's own words as the reason. Rows depend on nothing but
the point: not on the batch, the process or the order.
"""

from __future__ import annotations

import copy
import math
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import pandas as pd

from simulator.cost import PricePoints
from simulator.errors import ConfigError, PrunesimError
from simulator.formats import MaskProfile
from simulator.hwconfig import Platform, load_platform, platform_from_dict
from simulator.masks import Pruning, density_from
from simulator.netmasks import cascade_masks, effective_rate, network_profiles
from simulator.settings import Settings
from simulator.simulate import (
    ENERGY_COLUMNS,
    LayerResult,
    estimate_variants,
    prepare_profiles,
    priced_as,
    simulate_network,
)
from simulator.sweep.columns import FIRST, INVALID, OK, OUTPUTS
from simulator.sweep.keys import WORKLOAD_FIELDS, set_path
from simulator.sweep.shared import price_only
from simulator.sweep.spec import Point, SweepSpec
from simulator.workloads import Network, load_network

KEEP_COUNTS = 64
"""Sets of layer counts (one network on one hardware point, price-only values aside)
a process keeps."""
KEEP_PROFILES = 8
"""Mask sets (one variant of one workload each) whose profiles a process keeps; batches
arrive grouped by workload, so a few suffice."""

_SUMMED = ("latency_s", *ENERGY_COLUMNS, "macs_dense", "macs_done", "dram_bits")


class Context:
    """What a process reuses between points: networks, base profiles and the mask
    profiles of the last few workloads (:data:`KEEP_PROFILES` mask sets)."""

    def __init__(self) -> None:
        self.networks: dict[str, Network] = {}
        self.bases: dict[str, Mapping[str, Any]] = {}
        self.profiles: OrderedDict[tuple[str, str], dict[str, MaskProfile]] = OrderedDict()
        self.counts: OrderedDict[tuple, tuple[LayerResult, ...]] = OrderedDict()
        self.rates: dict[int, float] = {}  # id of a kept mask set -> its effective rate
        self.masks_made = 0
        """Mask sets generated and profiled so far."""

    def network(self, spec: SweepSpec, name: str) -> Network:
        if name not in self.networks:
            self.networks[name] = load_network(spec.file_of("network", name))
        return self.networks[name]

    def base(self, spec: SweepSpec, name: str) -> Mapping[str, Any]:
        if name not in self.bases:
            self.bases[name] = load_platform(spec.file_of("platform", name)).raw
        return self.bases[name]

    def mask_profiles(self, network_name: str, pruning: Pruning) -> dict[str, MaskProfile]:
        """The mask profiles of a network (as the spec names it) under ``pruning``,
        generated once and kept while recent."""
        key = (network_name, repr(pruning))
        if key in self.profiles:
            self.profiles.move_to_end(key)
            return self.profiles[key]
        while len(self.profiles) >= KEEP_PROFILES:
            self.rates.pop(id(self.profiles.popitem(last=False)[1]), None)
        made = network_profiles(self.networks[network_name], pruning)
        self.masks_made += 1
        self.profiles[key] = made
        self.rates[id(made)] = effective_rate(made)
        return made

    def checkpoint_profiles(self, spec: SweepSpec, network_name: str, cascade: bool) -> dict:
        """The mask profiles of the spec's checkpoint (read once per process); a
        filter-pruned checkpoint's removals cascade through the network's graph where
        ``cascade`` asks for it, as in ``prunesim estimate``."""
        key = (network_name, f"checkpoint cascade={cascade}")
        if key not in self.profiles:
            from simulator.checkpoints import read_checkpoint

            network = self.networks[network_name]
            ckpt = read_checkpoint(spec.checkpoint_file, network=network)
            masks = ckpt.masks(fill_missing=True)
            variant = spec.checkpoint_variant
            if variant == "structured" and cascade and network.graph is not None:
                masks = cascade_masks(network, masks)
            made = prepare_profiles(network, {variant: masks})[variant]
            self.profiles[key] = made
            self.rates[id(made)] = effective_rate(made)
        return self.profiles[key]

    def rate(self, profiles: Mapping[str, MaskProfile]) -> float:
        """The rate a mask set reaches (all weights over kept ones), computed once."""
        if id(profiles) not in self.rates:
            self.rates[id(profiles)] = effective_rate(profiles)
        return self.rates[id(profiles)]

    def counted(self, key: tuple, compute: Callable[[], tuple[LayerResult, ...]]):
        """The layer results of a hardware point without its price-only values (see
        :func:`evaluate`), computed by ``compute()`` once per ``key`` while recent."""
        if key in self.counts:
            self.counts.move_to_end(key)
            return self.counts[key]
        made = compute()
        while len(self.counts) >= KEEP_COUNTS:
            self.counts.popitem(last=False)
        self.counts[key] = made
        return made


def workload_key(point: Point) -> tuple:
    """What decides a point's masks: its network and pruning values."""
    return tuple((p, v) for p, v in point.values if p == "network" or p.startswith("pruning."))


def _pruning(values: Mapping[str, Any]) -> tuple[Pruning, str]:
    """The pruning of the pruned variants and the structured variant's kind; a
    :class:`~simulator.errors.MaskError` for an invalid level."""
    level = {
        k.split(".", 1)[1]: values[k]
        for k in ("pruning.rate", "pruning.density", "pruning.sparsity")
        if k in values
    }
    density = density_from(**level, where="pruning")
    default = WORKLOAD_FIELDS
    pruning = Pruning(
        structure="random",
        density=density,
        seed=int(values.get("pruning.seed", default["pruning.seed"].default)),
        cascade=bool(values.get("pruning.cascade", default["pruning.cascade"].default)),
    )
    return pruning, values.get("pruning.structure", default["pruning.structure"].default)


def _settings(values: Mapping[str, Any]) -> Settings:
    given = {k.split(".", 1)[1]: v for k, v in values.items() if k.startswith("settings.")}
    return Settings(**given)


def build_platform(base: Mapping[str, Any], hardware: Sequence[tuple[str, Any]], source: str):
    """The base profile with hardware values set (key path, value), validated as a file
    would be (a :class:`ConfigError` naming ``source`` lists every problem)."""
    data = copy.deepcopy(dict(base))
    for path, value in hardware:
        set_path(data, path, value)
    return platform_from_dict(data, source)


def _reason(error: PrunesimError) -> str:
    if isinstance(error, ConfigError):
        return "; ".join(error.problems)
    return str(error)


def _totals(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Network totals of one variant's layer records, as
    :meth:`~simulator.simulate.NetworkEstimate.totals` defines them (sums exactly
    rounded with :func:`math.fsum`; without building a DataFrame)."""
    out: dict[str, Any] = {k: math.fsum(r[k] for r in records) for k in _SUMMED}
    latency = out["latency_s"]
    out["pe_utilization"] = (
        math.fsum(r["pe_utilization"] * r["latency_s"] for r in records) / latency
        if latency
        else math.nan
    )
    engines: dict[str, int] = {}
    bounds: dict[str, list[float]] = {}
    for r in records:
        engines[r["engine"]] = engines.get(r["engine"], 0) + 1
        bounds.setdefault(r["bound"], []).append(r["latency_s"])
    most = max(engines.values())
    out["engine"] = min(e for e, n in engines.items() if n == most)
    shares = {b: math.fsum(s) for b, s in bounds.items()}
    out["main_bound"] = max(shares, key=lambda b: shares[b])
    return out


@dataclass(frozen=True, kw_only=True)
class _Ready:
    """A valid point, ready to simulate: its platform, settings, the mask profiles of
    each variant run and the rates they reach; ``shared``: the key of the counts it
    shares with other points (None when it shares nothing), ``rest``: its hardware
    values without the price-only ones."""

    point: Point
    values: Mapping[str, Any]
    network: Network
    base: Mapping[str, Any]
    platform: Platform
    settings: Settings
    profiles: Mapping[str, Mapping[str, MaskProfile]]
    rates: Mapping[str, float]
    variants: tuple[str, ...]
    rest: tuple[tuple[str, Any], ...]
    shared: tuple | None


def _invalid(spec: SweepSpec, point: Point, reason: str, only: Sequence[str] | None = None):
    values = dict(point.values)
    return [
        {"index": point.index, "point": point.key, "status": INVALID, "reason": reason}
        | values
        | {"variant": v}
        for v in (only or spec.all_variants)
    ]


def _prepare(spec: SweepSpec, point: Point, context: Context) -> _Ready | list[dict[str, Any]]:
    """A point ready to simulate, or its invalid rows."""
    values = dict(point.values)
    try:
        network = context.network(spec, values["network"])
        base = context.base(spec, values["platform"])
        hardware = tuple((p, v) for p, v in point.values if p not in WORKLOAD_FIELDS)
        platform = build_platform(base, hardware, f"point {point.key}")
        settings = _settings(values)
        pruning, structure = _pruning(values)
        specs = {
            "dense": Pruning(structure="dense"),
            **estimate_variants(platform, pruning, structure),
        }
        variants = tuple(v for v in spec.all_variants if v in specs)
        profiles = {
            v: context.mask_profiles(values["network"], specs[v])
            for v in variants
            if v != spec.checkpoint_variant
        }
        if spec.checkpoint_variant in variants:
            cascade = values.get("pruning.cascade", WORKLOAD_FIELDS["pruning.cascade"].default)
            profiles[spec.checkpoint_variant] = context.checkpoint_profiles(
                spec, values["network"], cascade
            )
            specs[spec.checkpoint_variant] = f"checkpoint cascade={cascade}"
    except PrunesimError as e:
        return _invalid(spec, point, _reason(e))
    rest = tuple((p, v) for p, v in hardware if not price_only(p, platform))
    shared = None
    if len(rest) < len(hardware):
        masks = tuple((v, repr(specs[v])) for v in variants)
        shared = (values["platform"], rest, values["network"], masks, settings)
    return _Ready(
        point=point,
        values=values,
        network=network,
        base=base,
        platform=platform,
        settings=settings,
        profiles=profiles,
        rates={v: context.rate(p) for v, p in profiles.items()},
        variants=variants,
        rest=rest,
        shared=shared,
    )


def _simulate(ready: _Ready, platform: Platform) -> tuple[LayerResult, ...]:
    return simulate_network(
        ready.network, platform, ready.profiles, ready.settings, variants=ready.variants
    ).layers


def _own_records(ready: _Ready) -> dict[str, list[dict[str, Any]]]:
    """Layer records per variant, simulated on the point's own platform."""
    out: dict[str, list[dict[str, Any]]] = {v: [] for v in ready.variants}
    for r in _simulate(ready, ready.platform):
        out[r.variant].append(r.record())
    return out


def _shared_records(
    group: Sequence[_Ready], counted: Sequence[LayerResult]
) -> list[dict[str, list[dict[str, Any]]]]:
    """Layer records per variant of each point of ``group`` (points that share their
    counts), each layer's counts priced on every point's platform at once
    (:class:`~simulator.cost.PricePoints`, equal to :func:`~simulator.cost.price`)."""
    first = group[0]
    prices = PricePoints(tuple(g.platform for g in group))
    out: list[dict[str, list[dict[str, Any]]]] = [{v: [] for v in first.variants} for _ in group]
    results = iter(counted)
    for variant in first.variants:
        s = replace(first.settings, variant=variant)
        for layer in first.network.layers:
            r = next(results)
            c = r.counts
            prof = first.profiles[variant].get(layer.name) if layer.prunable else None
            _, wb, ab = priced_as(layer, prof, first.platform, s)
            cost = {k: v.tolist() for k, v in prices.price(c, wb, ab).items()}
            for j, records in enumerate(out):
                latency = cost["latency_s"][j]
                records[variant].append(
                    {
                        **{k: cost[k][j] for k in ("latency_s", *ENERGY_COLUMNS)},
                        "bound": cost["bound"][j],
                        "macs_dense": c.macs_dense,
                        "macs_done": c.macs_done,
                        "dram_bits": r.dram_bits,
                        # as LayerResult.record: busy MAC slots over the whole latency
                        "pe_utilization": c.pe_utilization * cost["compute_s"][j] / latency
                        if latency
                        else 0.0,
                        "engine": c.engine,
                    }
                )
    return out


def _rows(
    spec: SweepSpec, ready: _Ready, records: Mapping[str, Sequence[Mapping[str, Any]]]
) -> list[dict[str, Any]]:
    """The rows of a simulated point: one per variant (dense first), in column order."""
    point = ready.point
    totals = {v: _totals(records[v]) for v in ready.variants}
    dense = totals["dense"]
    rows = []
    for v in spec.all_variants:
        if v not in totals:
            rows += _invalid(spec, point, "the platform has no N:M unit (compute.nm_sparse)", [v])
            continue
        t = totals[v]
        rows.append(
            {"index": point.index, "point": point.key, "status": OK, "reason": ""}
            | dict(ready.values)
            | {
                "variant": v,
                **{k: t[k] for k in ("latency_s", *ENERGY_COLUMNS)},
                "speedup": dense["latency_s"] / t["latency_s"] if t["latency_s"] else math.nan,
                "energy_ratio": t["energy_j"] / dense["energy_j"]
                if dense["energy_j"]
                else math.nan,
                **{k: t[k] for k in ("macs_dense", "macs_done", "dram_bits", "pe_utilization")},
                "effective_rate": ready.rates[v],
                "pes": ready.platform.compute.pes,
                "engine": t["engine"],
                "main_bound": t["main_bound"],
            }
        )
    return rows


def evaluate(
    spec: SweepSpec,
    points: Sequence[Point],
    context: Context | None = None,
    tick: Callable[[], None] | None = None,
) -> pd.DataFrame:
    """The rows of ``points`` (one per point and variant, in the points' order) as a
    typed table (:func:`frame`); ``tick()`` once per point.

    Points whose hardware differs only in price-only values (:mod:`.shared`) share
    their counts: the network is simulated once on the base profile with their other
    values (per :class:`Context`, while recent) and each layer's counts are priced on
    all their platforms at once. Other points are simulated on their own platform."""
    context = context if context is not None else Context()
    done: list[list[dict[str, Any]] | None] = [None] * len(points)
    groups: dict[tuple, list[tuple[int, _Ready]]] = {}
    for i, point in enumerate(points):
        ready = _prepare(spec, point, context)
        if isinstance(ready, _Ready) and ready.shared is not None:
            groups.setdefault(ready.shared, []).append((i, ready))
            continue
        if isinstance(ready, _Ready):
            try:
                ready = _rows(spec, ready, _own_records(ready))
            except PrunesimError as e:
                ready = _invalid(spec, point, _reason(e))
        done[i] = ready
        if tick is not None:
            tick()
    for key, members in groups.items():
        group = [r for _, r in members]
        first = group[0]
        try:
            counted = context.counted(
                key,
                lambda first=first: _simulate(
                    first, build_platform(first.base, first.rest, f"point {first.point.key}")
                ),
            )
            records = _shared_records(group, counted)
            rows = [_rows(spec, r, rec) for r, rec in zip(group, records, strict=True)]
        except PrunesimError as e:
            rows = [_invalid(spec, r.point, _reason(e)) for r in group]
        for (i, _), point_rows in zip(members, rows, strict=True):
            done[i] = point_rows
            if tick is not None:
                tick()
    return frame(spec, [row for rows in done for row in rows])


def dtypes(spec: SweepSpec) -> dict[str, str]:
    """Every column of a sweep's table and its pandas dtype, in order."""
    return {**dict(FIRST), **spec.dtypes(), **dict(OUTPUTS)}


def frame(spec: SweepSpec, rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Rows as a table with every column of :func:`dtypes`, typed (missing outputs of
    invalid rows are NaN / NA)."""
    types = dtypes(spec)
    data = {c: [r.get(c) for r in rows] for c in types}
    out = pd.DataFrame(data, columns=list(types))
    return out.astype(types)
