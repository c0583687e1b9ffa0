"""What a checkpoint holds, mapped onto a network: :class:`Checkpoint` and its layers."""

from __future__ import annotations

import functools
import math
import types
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from simulator.checkpoints.source import (
    NAME_LIMIT,
    PATH_LIMIT,
    quoted,
)
from simulator.checkpoints.structure import (
    STRUCTURED_KINDS,
    MaskVariant,
    structure_variant,
)
from simulator.errors import shown
from simulator.memory import require_bytes
from simulator.workloads import Network

FORMATS = ("torch-zip", "torch-legacy", "safetensors", "safetensors (sharded)", "npz", "onnx")
"""Names of the formats read, as :attr:`Checkpoint.format` gives them."""


@dataclass(frozen=True, kw_only=True, eq=False)
class CheckpointLayer:
    """One prunable layer found in a checkpoint. Arrays are read-only.

    ``weight`` is the effective weight in the layer's ``weight_shape`` (``orig x mask``
    where the file keeps both; the file's own float dtype, bfloat16 widened to
    float32); ``mask`` is bool, same shape, True = kept. ``mask_source`` says where
    the mask came from: ``mask tensor``, ``asp``, ``onnx mul``, ``exact zeros`` or
    ``threshold``. ``structure`` is what :func:`detect_structure` finds.

    A tensor the file stores with zero (or overlapping) strides -- a few values
    repeated -- stays a read-only strided view of those values: ``weight`` and
    ``mask`` then take no memory of their own (``np.ascontiguousarray`` would make
    the full copy; check :func:`simulator.memory.require_bytes` first).
    """

    name: str
    tensor: str
    weight: np.ndarray | None
    mask: np.ndarray | None
    mask_source: str
    structure: str
    shape: tuple[int, ...] = ()
    kept_count: int | None = None

    @property
    def weight_shape(self) -> tuple[int, ...]:
        """The layer's weight shape (the mask's, or as recorded when not held)."""
        return tuple(self.mask.shape) if self.mask is not None else self.shape

    @property
    def weights(self) -> int:
        """Weights in the layer (count)."""
        return int(self.mask.size) if self.mask is not None else math.prod(self.shape)

    @functools.cached_property
    def kept(self) -> int:
        """Weights kept by the mask (count)."""
        return count_kept(self.mask) if self.mask is not None else int(self.kept_count or 0)

    def counted(self) -> CheckpointLayer:
        """This layer without its arrays: its shape, kept count, structure and sources
        only (see :func:`~simulator.checkpoints.read_checkpoint`'s ``arrays``)."""
        return CheckpointLayer(
            name=self.name,
            tensor=self.tensor,
            weight=None,
            mask=None,
            mask_source=self.mask_source,
            structure=self.structure,
            shape=self.weight_shape,
            kept_count=self.kept,
        )

    @property
    def density(self) -> float:
        """Kept fraction of the weights (0..1)."""
        return self.kept / self.weights if self.weights else 0.0


@dataclass(frozen=True, kw_only=True, eq=False)
class Checkpoint:
    """What a checkpoint holds, mapped onto a network.

    ``format`` is one of :data:`FORMATS`; ``network`` the given network or the one
    derived from the file; ``layers`` one entry per matched prunable layer, in
    network order; ``unmatched`` the network's prunable layers that found no tensor;
    ``skipped`` every tensor of the file that no layer uses, with the reason;
    ``warnings`` anything the user should know (assumed geometry, masks kept
    outside the file). ``geometry_assumed``: the network was derived from weight shapes
    alone, without an input shape -- its layers and masks are exact, but its MACs and
    activation sizes are placeholders (refuse to estimate from it unless asked).

    Names from the file are kept as they are in ``layers[i].tensor``; the names in
    ``skipped`` and in a derived network are escaped for display (control characters
    as ``\\x1b``, see :func:`simulator.errors.shown`), and every message is one
    printable line.
    """

    path: str
    format: str
    network: Network
    layers: tuple[CheckpointLayer, ...]
    unmatched: tuple[str, ...] = ()
    skipped: tuple[tuple[str, str], ...] = ()
    warnings: tuple[str, ...] = ()
    geometry_assumed: bool = False

    reread: Callable[[], Iterator[CheckpointLayer]] | None = field(default=None, repr=False)
    """Reads the layers again, with their arrays, one at a time (set when the layers
    are held without them)."""

    @property
    def arrays_held(self) -> bool:
        """Whether the layers hold their weights and masks (else :meth:`masks` reads
        them from the file again, one layer at a time)."""
        return self.reread is None

    def masks(self, fill_missing: bool = False) -> Mapping[str, np.ndarray]:
        """Layer name -> mask (bool, the layer's weight shape, read-only), in network
        order. ``fill_missing``: every prunable layer of the network gets one, all kept
        (``np.ones``) where the file has none (the layers in ``unmatched``).

        When the layers do not hold their arrays, the masks are read from the file
        when asked for, one at a time (:class:`StreamedMasks`): in network order each
        layer is read once and only the last one asked for is held."""
        if self.reread is not None:
            return StreamedMasks(self, fill_missing)
        found = {cl.name: cl.mask for cl in self.layers}
        if not fill_missing:
            return found
        out = {}
        for layer in self.network.prunable_layers:
            mask = found.get(layer.name)
            if mask is None:
                require_bytes(
                    layer.weight_count,
                    f"the all-kept mask of layer {quoted(layer.name)}",
                    "map the checkpoint onto a smaller network",
                )
                mask = np.ones(layer.weight_shape, dtype=bool)
                mask.setflags(write=False)
            out[layer.name] = mask
        return out

    @functools.cached_property
    def variant(self) -> MaskVariant:
        """Which simulation variant the checkpoint's masks are (see :class:`MaskVariant`):
        ``structured`` when every layer is one of :data:`STRUCTURED_KINDS` (dense and
        empty layers aside), ``nm`` when every layer is N:M (or dense or empty),
        ``dense`` when nothing is pruned, else ``sparse``. ``density`` counts every
        prunable layer of the network (unmatched layers as all kept);
        ``per_layer_density`` the matched layers."""
        return mask_variant(self)

    def weights(self) -> dict[str, np.ndarray]:
        """Layer name -> effective weight (the layer's weight shape); read from the
        file again when the layers do not hold them."""
        if self.reread is not None:
            return {cl.name: cl.weight for cl in self.reread()}
        return {cl.name: cl.weight for cl in self.layers}

    def summary(self) -> pd.DataFrame:
        """One row per layer: layer, tensor (escaped for display), shape, weights
        (count), kept (count), density (kept fraction), structure, mask_source."""
        return summary_frame(self.layers)


class StreamedMasks(Mapping):
    """A checkpoint's masks read from its file when asked for (see
    :meth:`Checkpoint.masks`): the layer name -> mask mapping of a checkpoint whose
    layers do not hold their arrays.

    Asked in network order (as estimates and storage ask), each layer is read once,
    and only the mask last asked for is held: the memory is set by the largest layer.
    A layer asked for out of order reads the file again from its start. A layer
    without a tensor is all kept when ``fill_missing`` (else it is not a key)."""

    def __init__(self, ckpt: Checkpoint, fill_missing: bool):
        self._ckpt = ckpt
        matched = {cl.name for cl in ckpt.layers}
        self._names = [
            layer.name
            for layer in ckpt.network.prunable_layers
            if fill_missing or layer.name in matched
        ]
        self._matched = matched
        self._shapes = {layer.name: layer.weight_shape for layer in ckpt.network.prunable_layers}
        self._order = [cl.name for cl in ckpt.layers]
        self._reading: Iterator[CheckpointLayer] | None = None
        self._at = -1  # position in _order of the layer last read

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self._shapes or name not in self._names:
            raise KeyError(name)
        if name not in self._matched:
            require_bytes(
                math.prod(self._shapes[name]),
                f"the all-kept mask of layer {quoted(name)}",
                "map the checkpoint onto a smaller network",
            )
            mask = np.ones(self._shapes[name], dtype=bool)
            mask.setflags(write=False)
            return mask
        want = self._order.index(name)
        if self._reading is None or want <= self._at:  # (again) from the start
            assert self._ckpt.reread is not None
            self._reading, self._at = self._ckpt.reread(), -1
        for cl in self._reading:
            self._at += 1
            if self._at == want:
                assert cl.name == name and cl.mask is not None
                return cl.mask
        raise KeyError(name)  # the file changed under us: fewer layers than listed

    def __contains__(self, name: object) -> bool:  # without reading the mask
        return name in self._names

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


def mask_variant(ckpt: Checkpoint) -> MaskVariant:
    """The :attr:`Checkpoint.variant` of a checkpoint."""
    structures = tuple(dict.fromkeys(cl.structure for cl in ckpt.layers))
    kinds = set(structures)
    if kinds <= {"dense"}:
        variant = "dense"
    elif kinds <= STRUCTURED_KINDS:
        variant = "structured"
    elif all(structure_variant(k) in ("nm", "dense") or k == "empty" for k in kinds):
        variant = "nm"
    else:
        variant = "sparse"
    kept = sum(cl.kept for cl in ckpt.layers)
    total = sum(cl.weights for cl in ckpt.layers)
    matched = {cl.name for cl in ckpt.layers}
    for layer in ckpt.network.prunable_layers:
        if layer.name not in matched:  # taken as unpruned
            kept += layer.weight_count
            total += layer.weight_count
    density = kept / total if total else 1.0
    pruned = [k for k in structures if k not in ("dense", "empty")] or list(structures)
    what = ", ".join(pruned[:4]) + (", ..." if len(pruned) > 4 else "")
    kind = "pruning" if variant in ("structured", "nm") else "masks"
    if variant == "dense":
        what, kind = "nothing pruned", ""
    elif variant == "sparse" and kinds - {"dense", "empty", "non-structured"}:
        kind = "masks, run as non-structured"
    note = (
        f"masks of {shown(ckpt.path, PATH_LIMIT)}: {what}{' ' + kind if kind else ''} "
        f"({variant}), density {density:.3g}"
    )
    return MaskVariant(
        variant=variant,
        structures=structures,
        density=density,
        per_layer_density=types.MappingProxyType({cl.name: cl.density for cl in ckpt.layers}),
        note=note,
    )


def summary_frame(layers: tuple[CheckpointLayer, ...] | list[CheckpointLayer]) -> pd.DataFrame:
    """The :meth:`Checkpoint.summary` table of some layers."""
    columns = ["layer", "tensor", "shape", "weights", "kept", "density", "structure", "mask_source"]
    rows = [
        (
            cl.name,
            shown(cl.tensor, NAME_LIMIT),
            cl.weight_shape,
            cl.weights,
            cl.kept,
            cl.density,
            cl.structure,
            cl.mask_source,
        )
        for cl in layers
    ]
    return pd.DataFrame(rows, columns=columns)


def count_kept(mask: np.ndarray) -> int:
    """``np.count_nonzero(mask)``, counting each zero-stride (broadcast) axis once and
    multiplying: a broadcast mask is counted in the time its stored values take."""
    zero = [
        i for i, (n, s) in enumerate(zip(mask.shape, mask.strides, strict=True)) if n > 1 and not s
    ]
    if not zero:
        return int(np.count_nonzero(mask))
    index = tuple(slice(0, 1) if i in zero else slice(None) for i in range(mask.ndim))
    return int(np.count_nonzero(mask[index])) * math.prod(mask.shape[i] for i in zero)
