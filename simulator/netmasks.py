"""Masks of a whole network: generated (or given) layer by layer, with filter
removals cascaded through the network's graph where the pruning asks for it.

Masks are made one layer at a time (the peak stays at the largest layer): in the
graph's order when cascading, since a layer's inputs depend on its producers'
removed filters; only each layer's removed-channel flags are kept between layers.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping

import numpy as np

from simulator.errors import MaskError
from simulator.formats import MaskProfile, profile_mask
from simulator.graph import Cascade, follows_input
from simulator.layers import Layer
from simulator.masks import Pruning, check_mask, generate_mask
from simulator.workloads import Network


def cascades(network: Network, pruning: Pruning) -> bool:
    """Whether ``pruning`` on ``network`` cascades: filter pruning asked to, on a
    network with a graph."""
    return pruning.cascade and pruning.structure == "filter" and network.graph is not None


def iter_masks(
    network: Network,
    pruning: Pruning,
    weights: Mapping[str, np.ndarray] | None = None,
    masks: Mapping[str, np.ndarray] | None = None,
) -> Iterator[tuple[Layer, np.ndarray]]:
    """Each prunable layer with its mask: ``masks[name]`` (checked) where given, else
    generated from ``pruning`` (ranked by ``weights`` where given), cascaded when
    :func:`cascades`: then a depthwise conv's generated mask keeps every filter, and
    its channels go with its input's (:func:`~simulator.graph.follows_input`). In the
    graph's order when cascading, else the network's."""
    weights = weights or {}
    cascading = cascades(network, pruning)

    def mask_of(layer: Layer) -> np.ndarray:
        if masks is None and cascading and follows_input(layer):
            return np.ones(layer.weight_shape, dtype=bool)
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
    for name in graph.order:
        layer = by_name[name]
        mask = cascade(layer, mask_of(layer) if layer.prunable else None)
        if layer.prunable:
            yield layer, mask


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


def network_profiles(
    network: Network,
    pruning: Pruning,
    masks: Mapping[str, np.ndarray] | None = None,
) -> dict[str, MaskProfile]:
    """The mask profile of every prunable layer, in the network's order."""
    made = {
        layer.name: profile_mask(layer, m) for layer, m in iter_masks(network, pruning, None, masks)
    }
    return {layer.name: made[layer.name] for layer in network.prunable_layers}


def effective_rate(profiles: Mapping[str, MaskProfile]) -> float:
    """The rate reached: all weights over the kept ones (``inf`` if none is kept)."""
    kept = sum(p.nnz for p in profiles.values())
    total = sum(p.weights for p in profiles.values())
    return total / kept if kept else math.inf
