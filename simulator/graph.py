"""The network graph (which layer reads which, residual adds, concatenations) and
structured pruning cascaded through it.

Each weight layer reads one node: the network input (:data:`INPUT`), another layer,
or a :class:`Join` (``add`` of equal-width inputs, as in a residual connection, or
``concat`` along the channels). Operations that keep channels apart (ReLU, batch
norm, pooling, flatten) need no node. A linear layer that reads ``C`` channels of a
conv output with ``in_features = C * k`` reads them flattened: channel ``c`` is
features ``c*k`` to ``c*k + k - 1``. A matmul (two activations, no weights) passes
no removal on.

:class:`Cascade` is the mask transform: fed each layer's mask in graph order, it
zeroes the input columns that read a removed channel (a filter whose weights are all
zero) and records which output channels the layer itself has lost, inputs included
(a depthwise conv that lost its input channel loses that filter; generated filter
masks keep every filter of such a conv, :func:`follows_input`, so its channels go
with its input's rather than being drawn a second time). Across an ``add``
a channel goes only where every input lost it; a ``concat`` joins its inputs'
channels in order.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from simulator.errors import shown
from simulator.layers import Conv2d, Layer, Linear

INPUT = "input"
"""The node name of the network's input (never pruned)."""
JOIN_OPS = ("add", "concat")


@dataclass(frozen=True, kw_only=True)
class Join:
    """A node without weights that combines its inputs: ``add`` (equal widths, a
    residual connection) or ``concat`` (channels one after another)."""

    name: str
    op: str
    inputs: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class Graph:
    """Which node each layer reads (``sources``: layer name -> node names, in the
    network's layer order), the joins, and ``order``: every layer name in a
    topological order (the listing order where that is one)."""

    sources: tuple[tuple[str, tuple[str, ...]], ...]
    joins: tuple[Join, ...] = ()
    order: tuple[str, ...] = ()


def _width(layer: Layer) -> int:
    """Output channels (features) of a layer; for a matmul, heads x n."""
    if isinstance(layer, Conv2d):
        return layer.out_channels
    if isinstance(layer, Linear):
        return layer.out_features
    return layer.heads * layer.n


def build_graph(
    layers: Sequence[Layer],
    sources: Mapping[str, Sequence[str]],
    joins: Sequence[Join],
    where: Mapping[str, str] | None = None,
) -> tuple[Graph | None, list[str]]:
    """The graph of ``layers`` reading ``sources`` (layer name -> node names; a layer
    not given reads the previous layer, the first one :data:`INPUT`) with ``joins``,
    and every problem found: unknown or duplicate names, a layer reading other than
    one node, joins of fewer than two inputs, cycles, and channel counts that do not
    match (add of unequal widths, a consumer whose input width is not its producer's
    output width or a whole multiple of it where a linear layer reads a flattened
    conv output). ``where`` gives each node's place for messages (default: its name).
    Returns ``(None, problems)`` when there are problems.
    """
    where = dict(where or {})
    by_name = {layer.name: layer for layer in layers}
    problems: list[str] = []

    def at(name: str, key: str) -> str:
        return f"{where.get(name, shown(name))}.{key}"

    edges: dict[str, tuple[str, ...]] = {}
    for i, layer in enumerate(layers):
        default = (INPUT,) if i == 0 else (layers[i - 1].name,)
        edges[layer.name] = tuple(sources.get(layer.name, default))
    join_names: set[str] = set()
    for j in joins:
        if j.name in by_name or j.name in join_names:
            problems.append(
                f"{at(j.name, 'name')}: '{shown(j.name)}' is already a layer's or join's name"
            )
        if j.op not in JOIN_OPS:
            problems.append(f"{at(j.name, 'op')}: {shown(j.op)} is not one of add, concat")
        if len(j.inputs) < 2:
            problems.append(f"{at(j.name, 'inputs')}: a join needs at least two inputs")
        join_names.add(j.name)
        edges.setdefault(j.name, tuple(j.inputs))
    if INPUT in edges:
        problems.append(
            f"{at(INPUT, 'name')}: {INPUT!r} is the network's input; name the layer otherwise"
        )
    known = set(edges) | {INPUT}
    for name, src in edges.items():
        bad = [s for s in src if s not in known]
        if bad:
            problems.append(
                f"{at(name, 'inputs')}: no layer or join named "
                + ", ".join(f"'{shown(b)}'" for b in bad)
            )
        if name in src:
            problems.append(f"{at(name, 'inputs')}: a node cannot read itself")
        layer = by_name.get(name)
        if layer is not None and layer.prunable and len(src) != 1:
            problems.append(
                f"{at(name, 'inputs')}: a {layer.kind} layer reads one node, got {len(src)} "
                "(combine several with a join)"
            )
        if layer is not None and not layer.prunable and not 1 <= len(src) <= 2:
            problems.append(f"{at(name, 'inputs')}: a matmul reads one or two nodes")
    if problems:
        return None, problems
    order = _topological(list(edges), edges)
    if len(order) < len(edges):
        cycle = _on_cycles(edges, set(order))
        return None, [
            f"{at(cycle[0], 'inputs')}: the graph has a cycle through "
            + ", ".join(f"'{shown(n)}'" for n in cycle[:8])
            + (f" and {len(cycle) - 8} more" if len(cycle) > 8 else "")
        ]
    _widths(order, edges, by_name, {j.name: j for j in joins}, at, problems)
    if problems:
        return None, problems
    return (
        Graph(
            sources=tuple((layer.name, edges[layer.name]) for layer in layers),
            joins=tuple(joins),
            order=tuple(n for n in order if n in by_name),
        ),
        [],
    )


def _topological(names: list[str], edges: Mapping[str, tuple[str, ...]]) -> list[str]:
    """Kahn's order, taking nodes in listing order where several are ready."""
    waiting = {n: sum(s != INPUT for s in edges[n]) for n in names}
    readers: dict[str, list[str]] = {}
    for n in names:
        for s in edges[n]:
            if s != INPUT:
                readers.setdefault(s, []).append(n)
    rank = {n: i for i, n in enumerate(names)}
    ready = [rank[n] for n, w in waiting.items() if w == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        n = names[heapq.heappop(ready)]
        order.append(n)
        for r in readers.get(n, []):
            waiting[r] -= 1
            if waiting[r] == 0:
                heapq.heappush(ready, rank[r])
    return order


def _on_cycles(edges: Mapping[str, tuple[str, ...]], ordered: set[str]) -> list[str]:
    """The nodes that a topological order left out, less those that only read from a
    cycle (no left-out node reads them): the nodes on cycles, in listing order."""
    left = [n for n in edges if n not in ordered]
    readers = dict.fromkeys(left, 0)
    for n in left:
        for s in edges[n]:
            if s in readers:
                readers[s] += 1
    free = [n for n, k in readers.items() if k == 0]
    while free:
        n = free.pop()
        del readers[n]
        for s in edges[n]:
            if s in readers:
                readers[s] -= 1
                if readers[s] == 0:
                    free.append(s)
    return [n for n in left if n in readers]


def _widths(order, edges, by_name, joins, at, problems):
    """Output width (None: unknown) and whether it is a spatial (conv) output, per node;
    appends the channel-count problems."""
    widths: dict[str, int | None] = {INPUT: None}
    spatial: dict[str, bool | None] = {INPUT: None}
    for name in order:
        src = edges[name]
        w_in = [widths[s] for s in src]
        layer = by_name.get(name)
        if layer is None:  # a join
            join = joins[name]
            known = [w for w in w_in if w is not None]
            if join.op == "add":
                if len(set(known)) > 1:
                    got = ", ".join(f"'{shown(s)}': {w}" for s, w in zip(src, w_in, strict=True))
                    problems.append(f"{at(name, 'inputs')}: add of unequal widths ({got})")
                widths[name] = known[0] if known else None
            else:
                widths[name] = sum(known) if len(known) == len(w_in) else None
            flags = [spatial[s] for s in src]
            spatial[name] = any(flags) if join.op == "add" else all(flags)
            continue
        widths[name] = _width(layer)
        spatial[name] = isinstance(layer, Conv2d)
        if not layer.prunable or w_in[0] is None:
            continue
        got, s = w_in[0], src[0]
        if isinstance(layer, Conv2d) and layer.in_channels != got:
            problems.append(
                f"{at(name, 'inputs')}: '{shown(s)}' gives {got} channels, "
                f"in_channels is {layer.in_channels}"
            )
        elif isinstance(layer, Linear) and layer.in_features != got:
            if not (spatial[s] and layer.in_features % got == 0):
                what = "channels" if spatial[s] else "features"
                flat = f", not a multiple of {got} (flattened)" if spatial[s] else ""
                problems.append(
                    f"{at(name, 'inputs')}: '{shown(s)}' gives {got} {what}, in_features "
                    f"is {layer.in_features}{flat}"
                )
    return widths, spatial


def follows_input(layer: Layer) -> bool:
    """A conv whose every filter reads one input channel (depthwise, with or without a
    channel multiplier): its channels are its input's, so filter pruning that cascades
    does not choose its filters on their own: they go with their input channel."""
    return isinstance(layer, Conv2d) and layer.groups == layer.in_channels > 1


class Cascade:
    """Filter removal cascaded through a graph: call it with each layer's mask in
    ``graph.order`` (non-prunable layers give ``None``); it returns the mask with the
    input columns of removed channels zeroed (a new array where anything changes)."""

    def __init__(self, graph: Graph):
        self.graph = graph
        self._sources = dict(graph.sources)
        self._joins = {j.name: j for j in graph.joins}
        self._removed: dict[str, np.ndarray | None] = {INPUT: None}

    def removed(self, node: str) -> np.ndarray | None:
        """Output channels of ``node`` that are gone (bool per channel), ``None`` if none
        can be (the input, a matmul, a join of such). A join's inputs must have been
        fed already (graph order)."""
        stack = [node]
        while stack:  # joins of joins, without recursion
            name = stack[-1]
            if name in self._removed:
                stack.pop()
                continue
            if name not in self._joins:
                raise KeyError(f"layer {name!r} read before its mask was given")
            join = self._joins[name]
            todo = [s for s in join.inputs if s not in self._removed]
            if todo:
                stack.extend(todo)
                continue
            parts = [self._removed[s] for s in join.inputs]
            if any(p is None for p in parts):
                self._removed[name] = None
            elif join.op == "add":
                self._removed[name] = np.logical_and.reduce(parts)
            else:
                self._removed[name] = np.concatenate(parts)
            stack.pop()
        return self._removed[node]

    def count(self, layer: Layer, filters: np.ndarray | None) -> int:
        """The channel-level twin of calling with a filter mask: ``filters`` says which
        output channels the layer's own mask keeps (``None`` for a layer without
        weights); returns the weights kept once the removed input channels are taken
        out, and records the layer's removed output channels, without building a
        weight-sized mask."""
        if filters is None or not layer.prunable:
            self._removed[layer.name] = None
            return 0
        (src,) = self._sources[layer.name]
        gone = self.removed(src)
        k = filters.size
        if isinstance(layer, Conv2d):
            g = layer.groups
            cpg = layer.in_channels // g
            per_col = layer.kernel_hw[0] * layer.kernel_hw[1]  # weights per input channel
            if g == 1:
                cols = cpg - int(np.count_nonzero(gone)) if gone is not None else cpg
                self._removed[layer.name] = ~filters if cols else np.ones(k, dtype=bool)
                return int(np.count_nonzero(filters)) * cols * per_col
            cols = (
                np.full(g, cpg, dtype=np.int64)
                if gone is None
                else cpg - gone.reshape(g, cpg).sum(axis=1, dtype=np.int64)
            )
            kept = filters.reshape(g, k // g).sum(axis=1, dtype=np.int64)
            self._removed[layer.name] = ~filters | np.repeat(cols == 0, k // g)
            return int(kept @ cols) * per_col
        cols = (
            layer.in_features
            if gone is None
            else int(np.count_nonzero(~gone)) * (layer.in_features // gone.size)
        )
        self._removed[layer.name] = ~filters if cols else np.ones(k, dtype=bool)
        return int(np.count_nonzero(filters)) * cols

    def filter_mask(self, layer: Layer, filters: np.ndarray) -> np.ndarray:
        """The cascaded mask of a prunable layer whose own mask keeps the output channels
        ``filters``: what calling with that filter mask returns, made in one step (one
        weight-sized array); records the layer's removed output channels."""
        rows, cols = self.filter_factors(layer, filters)
        if rows.shape[0] == 1:  # only the kept filters' rows are written
            mask = np.zeros((rows.shape[1], cols.shape[1]), dtype=bool)
            mask[rows[0]] = cols[0]
        else:
            mask = rows[:, :, None] & cols[:, None, :]
        return mask.reshape(layer.weight_shape)

    def filter_factors(self, layer: Layer, filters: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`filter_mask` as its two factors, in the layer's GEMM view: kept rows
        (filters) ``(groups, rows)`` and kept columns (inputs that survive, each input
        channel's R*S weights side by side) ``(groups, cols)``; the mask keeps ``(g, i,
        j)`` where both do. Records the layer's removed output channels."""
        (src,) = self._sources[layer.name]
        gone = self.removed(src)
        k = filters.size
        if isinstance(layer, Conv2d):
            g = layer.groups
            cpg = layer.in_channels // g
            inputs = np.ones((g, cpg), dtype=bool) if gone is None else ~gone.reshape(g, cpg)
            # each input channel's R*S weights side by side: rows of a GEMM matrix
            cols = np.repeat(inputs, layer.kernel_hw[0] * layer.kernel_hw[1], axis=1)
            self._removed[layer.name] = ~filters | np.repeat(~inputs.any(axis=1), k // g)
            return filters.reshape(g, k // g), cols
        inputs = (
            np.ones(layer.in_features, dtype=bool)
            if gone is None
            else np.repeat(~gone, layer.in_features // gone.size)
        )
        self._removed[layer.name] = ~filters if inputs.any() else np.ones(k, dtype=bool)
        return filters.reshape(1, k), inputs.reshape(1, -1)

    def __call__(self, layer: Layer, mask: np.ndarray | None) -> np.ndarray | None:
        if mask is None or not layer.prunable:
            self._removed[layer.name] = None
            return mask
        (src,) = self._sources[layer.name]
        gone = self.removed(src)
        if gone is not None and gone.any():
            if isinstance(layer, Conv2d):
                g = layer.groups
                k, cpg = layer.out_channels, layer.in_channels // g
                keep = ~gone.reshape(g, 1, cpg, 1)
                mask = (mask.reshape(g, k // g, cpg, -1) & keep).reshape(mask.shape)
            else:
                keep = np.repeat(~gone, layer.in_features // gone.size)
                mask = mask & keep[None, :]
        self._removed[layer.name] = ~mask.reshape(mask.shape[0], -1).any(axis=1)
        return mask
