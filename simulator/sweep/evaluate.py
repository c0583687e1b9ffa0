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
from dataclasses import replace
from typing import Any

import pandas as pd

from simulator.cost import price
from simulator.errors import ConfigError, PrunesimError
from simulator.formats import MaskProfile
from simulator.hwconfig import Platform, load_platform, platform_from_dict
from simulator.masks import Pruning, density_from
from simulator.netmasks import effective_rate, network_profiles
from simulator.settings import Settings
from simulator.simulate import (
    ENERGY_COLUMNS,
    LayerResult,
    estimate_variants,
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
            self.profiles.popitem(last=False)
        made = network_profiles(self.networks[network_name], pruning)
        self.masks_made += 1
        self.profiles[key] = made
        return made

    def layer_results(
        self,
        network: Network,
        base: Mapping[str, Any],
        hardware: Sequence[tuple[str, Any]],
        platform: Platform,
        profiles: Mapping[str, Mapping[str, MaskProfile]],
        settings: Settings,
        variants: Sequence[str],
        key: tuple,
    ) -> tuple[LayerResult, ...]:
        """Every layer of every variant on the point's ``platform``. The counts come
        from the platform without the point's price-only values
        (:mod:`simulator.sweep.shared`), computed once for every point that shares
        the rest (``key`` says what else they share: network, masks, settings), and
        are priced with the point's own values."""
        priced = {p for p, _ in hardware if price_only(p, platform)}
        if not priced:
            return simulate_network(network, platform, profiles, settings, variants=variants).layers
        rest = tuple((p, v) for p, v in hardware if p not in priced)
        key = (rest, *key)
        counted = self.counts.get(key)
        if counted is None:
            view = build_platform(base, rest, platform.path or platform.name)
            counted = simulate_network(network, view, profiles, settings, variants=variants).layers
            while len(self.counts) >= KEEP_COUNTS:
                self.counts.popitem(last=False)
            self.counts[key] = counted
        else:
            self.counts.move_to_end(key)
        out, layers = [], iter(counted)
        for variant in variants:
            s = replace(settings, variant=variant)
            for layer in network.layers:
                r = next(layers)
                prof = profiles[variant].get(layer.name) if layer.prunable else None
                _, wb, ab = priced_as(layer, prof, platform, s)
                out.append(replace(r, cost=price(r.counts, platform, wb, ab)))
        return tuple(out)


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


def _totals(layers: Sequence[LayerResult], variant: str) -> dict[str, Any]:
    """One variant's network totals, as :meth:`NetworkEstimate.totals` defines them
    (sums exactly rounded with :func:`math.fsum`; without building a DataFrame)."""
    records = [r.record() for r in layers if r.variant == variant]
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


def evaluate_point(spec: SweepSpec, point: Point, context: Context) -> list[dict[str, Any]]:
    """The rows of one point: one per variant (dense first), in column order."""
    values = dict(point.values)
    head = {"index": point.index, "point": point.key}
    variants = spec.all_variants

    def invalid(reason: str, only: Sequence[str] = variants) -> list[dict[str, Any]]:
        return [{**head, "status": INVALID, "reason": reason, **values, "variant": v} for v in only]

    try:
        network = context.network(spec, values["network"])
        base = context.base(spec, values["platform"])
        hardware = [(p, v) for p, v in point.values if p not in WORKLOAD_FIELDS]
        platform = build_platform(base, hardware, f"point {point.key}")
        settings = _settings(values)
        pruning, structure = _pruning(values)
    except PrunesimError as e:
        return invalid(_reason(e))
    specs = {"dense": Pruning(structure="dense"), **estimate_variants(platform, pruning, structure)}
    runnable = [v for v in variants if v in specs]
    try:
        profiles = {v: context.mask_profiles(values["network"], specs[v]) for v in runnable}
        key = (
            values["platform"],
            values["network"],
            tuple((v, repr(specs[v])) for v in runnable),
            settings,
        )
        layers = context.layer_results(
            network, base, hardware, platform, profiles, settings, runnable, key
        )
    except PrunesimError as e:
        return invalid(_reason(e))
    totals = {v: _totals(layers, v) for v in runnable}
    dense = totals["dense"]
    rows = []
    for v in variants:
        if v not in totals:
            rows += invalid("the platform has no N:M unit (compute.nm_sparse)", [v])
            continue
        t = totals[v]
        rows.append(
            {
                **head,
                "status": OK,
                "reason": "",
                **values,
                "variant": v,
                **{k: t[k] for k in ("latency_s", *ENERGY_COLUMNS)},
                "speedup": dense["latency_s"] / t["latency_s"] if t["latency_s"] else math.nan,
                "energy_ratio": t["energy_j"] / dense["energy_j"]
                if dense["energy_j"]
                else math.nan,
                **{k: t[k] for k in ("macs_dense", "macs_done", "dram_bits", "pe_utilization")},
                "effective_rate": effective_rate(profiles[v]),
                "pes": platform.compute.pes,
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
    typed table (:func:`frame`); ``tick()`` after each point."""
    context = context if context is not None else Context()
    rows: list[dict[str, Any]] = []
    for point in points:
        rows += evaluate_point(spec, point, context)
        if tick is not None:
            tick()
    return frame(spec, rows)


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
