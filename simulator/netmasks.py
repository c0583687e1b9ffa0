"""Masks of a whole network: generated (or given) layer by layer, with filter
removals cascaded through the network's graph where the pruning asks for it.

Masks are made one layer at a time (the peak stays at the largest layer): in the
graph's order when cascading, since a layer's inputs depend on its producers'
removed filters; only each layer's removed-channel flags are kept between layers.

Cascaded filter pruning at rate R keeps 1/R of the network's weights: the cascade
removes more than each layer's own filters, so every layer's asked filter density is
multiplied by one common factor (capped at 1), solved by :func:`fit_cascade` on
channel counts alone (which filters each layer keeps, which input channels the graph
takes away), before the masks are drawn once at the solved densities. A common
multiplier keeps per-layer levels in proportion (a layer asked to keep half as many
filters as another still does, until one keeps them all) and leaves a layer asked
to keep everything whole when the factor is at least 1, as the cascade makes it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

import numpy as np

from simulator.errors import MaskError, shown
from simulator.formats import (
    MaskProfile,
    all_kept_profile,
    drawn_nm_profile,
    factored_profile,
    packed_profile,
    profile_mask,
)
from simulator.formats.profile import as_gemm_uint8
from simulator.graph import Cascade, follows_input
from simulator.layers import Layer
from simulator.masks import (
    LINE_STRUCTURES,
    Pruning,
    check_mask,
    clamp_to_layer,
    filter_order,
    generate_mask,
    kept_units,
    line_factors,
    mask_bytes_needed,
)
from simulator.memory import require_bytes
from simulator.workloads import Network


def cascades(network: Network, pruning: Pruning) -> bool:
    """Whether ``pruning`` on ``network`` cascades: filter pruning asked to, on a
    network with a graph."""
    return pruning.cascade and pruning.structure == "filter" and network.graph is not None


@dataclass(frozen=True, kw_only=True)
class CascadeFit:
    """The per-layer filter densities at which cascaded filter pruning reaches the
    rate asked for.

    ``factor`` multiplies every layer's asked density (``densities[name]`` =
    ``min(1, factor * asked)``); ``rate_asked`` is all weights over the weights the
    asked densities keep (``1 / density`` without per-layer levels), ``rate_reached``
    all weights over ``kept_weights`` once the removals cascade: the nearest to
    ``rate_asked`` that whole filters allow (in log rate)."""

    factor: float
    densities: Mapping[str, float]
    rate_asked: float
    rate_reached: float
    kept_weights: int
    total_weights: int


def fit_cascade(
    network: Network,
    pruning: Pruning,
    weights: Mapping[str, np.ndarray] | None = None,
) -> CascadeFit:
    """The common factor on every layer's asked filter density at which ``pruning``
    (filter pruning that :func:`cascades`) keeps the fraction of weights it asks for.

    Filters are chosen as :func:`~simulator.masks.generate_mask` chooses them (ranked
    by ``weights`` where given): the same scores at every density, the top k, so a
    layer's kept filters only grow with the factor, the inputs the cascade removes only
    shrink, and the kept weights are monotone in the factor. Those change only where
    a layer's rounded filter count does; a bisection over those points, each counted
    at channel level (:meth:`~simulator.graph.Cascade.count`), picks the nearest.
    """
    return _fit(network, pruning, weights)[0]


def _fit(
    network: Network,
    pruning: Pruning,
    weights: Mapping[str, np.ndarray] | None = None,
) -> tuple[CascadeFit, dict[str, np.ndarray]]:
    """:func:`fit_cascade`, and each drawn layer's filters, best first."""
    if not cascades(network, pruning):
        raise MaskError("fit_cascade: the pruning must be filter pruning that cascades")
    weights = weights or {}
    graph = network.graph
    by_name = {layer.name: layer for layer in network.layers}
    prunable = network.prunable_layers
    asked = {layer.name: pruning.density_of(layer.name) for layer in prunable}
    total = sum(layer.weight_count for layer in prunable)
    target = sum(asked[layer.name] * layer.weight_count for layer in prunable)
    drawn = [layer for layer in prunable if not follows_input(layer)]
    filters = sum(layer.gemm.groups * layer.gemm.rows for layer in drawn)
    # per filter: a score, its rank, its step and their sorted copy (8 bytes each)
    require_bytes(
        32 * filters,
        f"the filter counts of cascaded filter pruning on {shown(network.name)} "
        f"({filters:,} filters)",
    )
    order = {layer.name: filter_order(layer, pruning, weights.get(layer.name)) for layer in drawn}
    edges = []
    for layer in drawn:
        k_all = order[layer.name].size
        # the rounded count of kept filters goes from j to j + 1 at factor * a * k = j + 1/2
        edges.append((np.arange(1, k_all) + 0.5) / (asked[layer.name] * k_all))
    # just past each step, where rounding is no longer in doubt
    steps = np.unique(np.concatenate(edges)) * (1 + 1e-9) if edges else np.ones(1)
    # the factor below every step (every layer at its fewest filters), then each step
    factors = np.concatenate([[steps[0] / 2], steps])

    def densities(factor: float) -> dict[str, float]:
        return {n: min(1.0, factor * d) for n, d in asked.items()}

    # each layer in graph order: the layer, its filter count and ranking (None: the
    # layer keeps every filter of its own, a matmul has none)
    plan = []
    for name in graph.order:
        layer = by_name[name]
        k_all = layer.gemm.groups * layer.gemm.rows if layer.prunable else 0
        plan.append((layer, k_all, order.get(name)))

    def kept(i: int) -> int:
        factor = float(factors[i])
        cascade = Cascade(graph)
        out = 0
        for layer, k_all, ranked in plan:
            if not layer.prunable:
                cascade.count(layer, None)
                continue
            filters = np.ones(k_all, dtype=bool)
            if ranked is not None:
                d = min(1.0, factor * asked[layer.name])
                filters[ranked[kept_units(k_all, d) :]] = False
            out += cascade.count(layer, filters)
        return out

    # the first factor that keeps at least the target (the last keeps every weight),
    # then the nearer of it and the one before it
    lo, hi = -1, factors.size - 1
    counts = {hi: total}
    while hi - lo > 1:
        mid = (lo + hi) // 2
        counts[mid] = kept(mid)
        if counts[mid] >= target:
            hi = mid
        else:
            lo = mid
    pick = hi
    if lo >= 0 and abs(math.log(max(counts[lo], 1) / target)) < abs(math.log(counts[hi] / target)):
        pick = lo
    factor = float(factors[pick])
    fit = CascadeFit(
        factor=factor,
        densities=densities(factor),
        rate_asked=total / target,
        rate_reached=total / counts[pick] if counts[pick] else math.inf,
        kept_weights=counts[pick],
        total_weights=total,
    )
    return fit, order


def iter_masks(
    network: Network,
    pruning: Pruning,
    weights: Mapping[str, np.ndarray] | None = None,
    masks: Mapping[str, np.ndarray] | None = None,
) -> Iterator[tuple[Layer, np.ndarray]]:
    """Each prunable layer with its mask: ``masks[name]`` (checked) where given, else
    generated from ``pruning`` (ranked by ``weights`` where given), cascaded when
    :func:`cascades`: then generated masks are drawn at the densities
    :func:`fit_cascade` solves (the rate asked for is reached overall; given masks
    cascade as they are), a depthwise conv's generated mask keeps every filter, and
    its channels go with its input's (:func:`~simulator.graph.follows_input`). In the
    graph's order when cascading, else the network's."""
    weights = weights or {}
    cascading = cascades(network, pruning)

    def mask_of(layer: Layer) -> np.ndarray:
        if masks is None:
            return generate_mask(layer, pruning, weights.get(layer.name))
        if layer.name not in masks:
            raise MaskError(f"no mask given for layer {layer.name!r}")
        return check_mask(layer, masks[layer.name])

    if not cascading:
        for layer in network.prunable_layers:
            yield layer, mask_of(layer)
        return
    graph = network.graph
    cascade = Cascade(graph)
    by_name = {layer.name: layer for layer in network.layers}
    if masks is not None:
        for name in graph.order:
            layer = by_name[name]
            mask = cascade(layer, mask_of(layer) if layer.prunable else None)
            if layer.prunable:
                yield layer, mask
        return
    # generated: each layer's filters at the solved density, the inputs its producers
    # removed taken out, in one weight-sized array per layer
    fit, order = _fit(network, pruning, weights)
    for name in graph.order:
        layer = by_name[name]
        if not layer.prunable:
            cascade(layer, None)
            continue
        require_bytes(
            mask_bytes_needed(layer, pruning, name in weights),
            f"the filter mask of layer {shown(name)} ({layer.weight_count:,} weights)",
            "prune a smaller layer, or stream it in parts",
        )
        k_all = layer.gemm.groups * layer.gemm.rows
        filters = np.ones(k_all, dtype=bool)
        if name in order:
            filters[order[name][kept_units(k_all, fit.densities[name]) :]] = False
        yield layer, cascade.filter_mask(layer, filters)


def cascade_masks(network: Network, masks: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``masks`` (one per prunable layer, checked) with filter removals cascaded
    through the network's graph (see :class:`~simulator.graph.Cascade`), in the
    network's order; a network without a graph gets them back as they are."""
    return network_masks(network, Pruning(structure="filter"), masks=masks)


def network_masks(
    network: Network,
    pruning: Pruning,
    weights: Mapping[str, np.ndarray] | None = None,
    masks: Mapping[str, np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """A mask for every prunable layer, in the network's order (see :func:`iter_masks`)."""
    made = {layer.name: m for layer, m in iter_masks(network, pruning, weights, masks)}
    return {layer.name: made[layer.name] for layer in network.prunable_layers}


ProfileSource = Callable[[Layer], MaskProfile]
"""A prunable layer's mask profile, made when asked (see :func:`layer_profiles`)."""


def layer_profiles(
    network: Network,
    pruning: Pruning,
    masks: Mapping[str, np.ndarray] | None = None,
) -> ProfileSource:
    """The mask profile of each prunable layer of ``network``, made when its layer is
    asked for: the profiles :func:`network_profiles` makes, one layer at a time.

    A mask that is drawn or given layer by layer (non-structured, block, N:M; given
    masks, checked) is made when asked and not kept, so a caller that drops each
    profile before asking for the next layer holds one layer's mask at a time. Masks
    that keep everything or whole rows and columns are profiled from their factors
    (nothing weight-sized is made), all at once: cascaded filter pruning must walk
    the graph in order. Generated non-structured masks are kept bit-packed (an
    eighth of the memory), as :func:`network_profiles` keeps them."""
    if masks is None and pruning.structure == "dense":

        def dense(layer: Layer) -> MaskProfile:
            g = layer.gemm
            return all_kept_profile(g.groups, g.rows, g.cols, layer.name)

        return dense
    if masks is None and pruning.structure in LINE_STRUCTURES:
        made = {
            layer.name: factored_profile(rows, cols, layer.name)
            for layer, (rows, cols) in iter_factors(network, pruning)
        }
        return lambda layer: made[layer.name]
    if cascades(network, pruning):  # given masks of a cascaded filter pruning
        made = {
            layer.name: profile_mask(layer, m)
            for layer, m in iter_masks(network, pruning, None, masks)
        }
        return lambda layer: made[layer.name]
    if masks is not None:

        def given(layer: Layer) -> MaskProfile:
            if layer.name not in masks:
                raise MaskError(f"no mask given for layer {layer.name!r}")
            return profile_mask(layer, check_mask(layer, masks[layer.name]))

        return given
    if pruning.structure == "nm":  # N:M by construction: its counts are known, and
        # the mask is drawn only where an engine reads its pattern
        return lambda layer: drawn_nm_profile(
            layer,
            clamp_to_layer(layer, pruning).nm,
            lambda: as_gemm_uint8(layer, generate_mask(layer, pruning)),
        )
    profile = packed_profile if pruning.structure == "random" else profile_mask
    return lambda layer: profile(layer, generate_mask(layer, pruning))


def network_profiles(
    network: Network,
    pruning: Pruning,
    masks: Mapping[str, np.ndarray] | None = None,
) -> dict[str, MaskProfile]:
    """The mask profile of every prunable layer, in the network's order, all held at
    once (see :func:`layer_profiles`): generated masks that keep everything (dense) or
    whole rows and columns (filter, channel and column pruning, cascaded or not) are
    profiled from their factors without being made
    (:func:`~simulator.formats.all_kept_profile`,
    :func:`~simulator.formats.factored_profile`), and generated non-structured masks
    are kept bit-packed."""
    source = layer_profiles(network, pruning, masks)
    return {layer.name: source(layer) for layer in network.prunable_layers}


def iter_factors(
    network: Network, pruning: Pruning
) -> Iterator[tuple[Layer, tuple[np.ndarray, np.ndarray]]]:
    """Each prunable layer with the two factors of the mask :func:`iter_masks` generates
    for a line structure (filter, channel, column; :func:`~simulator.masks.line_factors`):
    kept rows ``(groups, rows)`` and kept columns ``(groups, cols)`` of its GEMM view,
    filter removals cascaded where :func:`cascades`. In the same order as
    :func:`iter_masks`."""
    if not cascades(network, pruning):
        for layer in network.prunable_layers:
            yield layer, line_factors(layer, pruning)
        return
    graph = network.graph
    cascade = Cascade(graph)
    by_name = {layer.name: layer for layer in network.layers}
    fit, order = _fit(network, pruning)
    for name in graph.order:
        layer = by_name[name]
        if not layer.prunable:
            cascade(layer, None)
            continue
        k_all = layer.gemm.groups * layer.gemm.rows
        filters = np.ones(k_all, dtype=bool)
        if name in order:
            filters[order[name][kept_units(k_all, fit.densities[name]) :]] = False
        yield layer, cascade.filter_factors(layer, filters)


def effective_rate(profiles: Mapping[str, MaskProfile]) -> float:
    """The rate reached: all weights over the kept ones (``inf`` if none is kept)."""
    kept = sum(p.nnz for p in profiles.values())
    total = sum(p.weights for p in profiles.values())
    return total / kept if kept else math.inf
