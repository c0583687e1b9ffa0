"""Reading a checkpoint layer by layer: the format told from the file, tensors matched
to the network, masks found or made, broadcast tensors kept as views."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np

from simulator.checkpoints.naming import (
    Match,
    Param,
    derive_network,
    group_params,
    load_mapping,
    match_network,
)
from simulator.checkpoints.npzfile import NpzSource
from simulator.checkpoints.onnxfile import OnnxSource
from simulator.checkpoints.result import Checkpoint, CheckpointLayer
from simulator.checkpoints.safetensors_file import (
    INDEX_NAME,
    SafetensorsSource,
    ShardedSafetensorsSource,
    is_safetensors,
    is_shard_index,
)
from simulator.checkpoints.source import (
    NAME_LIMIT,
    TensorSource,
    fail,
    open_regular,
    quoted,
)
from simulator.checkpoints.structure import (
    detect_structure,
)
from simulator.checkpoints.torchfile import TorchLegacySource, TorchZipSource
from simulator.errors import CheckpointError, ConfigError, MaskError, shown
from simulator.layers import Layer
from simulator.masks import check_mask
from simulator.memory import require_bytes
from simulator.workloads import Network


def _overlaps(a: np.ndarray) -> bool:
    """Whether ``a`` repeats elements of its memory (zero or overlapping strides)."""
    if a.size <= 1 or a.flags.c_contiguous or a.flags.f_contiguous:
        return False
    return a.size > _extent(a)


def _extent(a: np.ndarray) -> int:
    """Elements of memory a (non-negatively strided) view spans."""
    return 1 + sum((n - 1) * s for n, s in zip(a.shape, a.strides, strict=True)) // a.itemsize


def _compact(a: np.ndarray) -> np.ndarray:
    """The memory under a non-negatively strided view, as a read-only 1-D array."""
    return np.lib.stride_tricks.as_strided(
        a, shape=(_extent(a),), strides=(a.itemsize,), writeable=False
    )


def _restride(values: np.ndarray, like: np.ndarray) -> np.ndarray:
    """``values`` (one per element of ``_compact(like)``) viewed with ``like``'s strides."""
    return np.lib.stride_tricks.as_strided(
        values,
        shape=like.shape,
        strides=[s // like.itemsize * values.itemsize for s in like.strides],
        writeable=False,
    )


def open_source(path: str | Path, *, input_shape: tuple[int, ...] | None = None) -> TensorSource:
    """The tensor reader for a file, chosen by its first bytes (ONNX by suffix)."""
    path = Path(path)
    if path.is_dir():  # a model folder: its (sharded) safetensors
        for name in (INDEX_NAME, "model.safetensors"):
            if (path / name).is_file():
                path = path / name
                break
        else:
            raise fail(
                path,
                f"a folder without {INDEX_NAME} or model.safetensors; give the checkpoint file",
            )
    if is_shard_index(path):
        return ShardedSafetensorsSource(path)
    try:
        with open_regular(path) as f:
            head = f.read(16)
    except OSError as e:
        raise fail(path, f"cannot read file ({e.strerror or e})") from None
    suffix = path.suffix.lower()
    if not head:
        raise fail(path, "empty file")
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        if suffix == ".npz":
            return NpzSource(path)
        try:
            return TorchZipSource(path)
        except CheckpointError as e:
            if "read it as an .npz" in str(e):
                return NpzSource(path)
            raise
    if suffix == ".onnx":
        return OnnxSource(path, input_shape)
    if head[:1] == b"\x80":
        return TorchLegacySource(path)
    if is_safetensors(head) or suffix == ".safetensors":
        return SafetensorsSource(path)
    if head[:6] == b"\x93NUMPY":
        raise fail(path, "a single .npy array, not a checkpoint (save several with np.savez)")
    raise fail(
        path,
        f"unrecognised checkpoint format (first bytes {head[:8]!r}); expected a PyTorch "
        ".pt/.pth (zip or legacy), .safetensors, .npz or .onnx file",
    )


def _finite(path: str, name: str, arr: np.ndarray, what: str) -> None:
    if arr.dtype.kind in "fc" and not np.isfinite(arr).all():
        bad = int(np.count_nonzero(~np.isfinite(arr)))
        raise fail(path, f"{bad} NaN or infinite value(s) in the {what}", name)


class CheckpointReader:
    """An open checkpoint mapped onto a network, read layer by layer.

    ``network``, ``unmatched``, ``skipped`` and ``format`` are known once it is open
    (from the file's metadata, no tensor read yet); :meth:`layers` reads and yields
    one :class:`CheckpointLayer` at a time; ``warnings`` may grow while it does.
    Use it as a context manager (or call :meth:`close`).
    """

    geometry_assumed: bool = False
    """True when the network was derived from weight shapes without an input shape."""

    def __init__(
        self,
        path: str | Path,
        *,
        network: Network | None = None,
        mapping: str | Path | None = None,
        input_shape: tuple[int, ...] | None = None,
        threshold: float = 0.0,
    ):
        if not (isinstance(threshold, int | float) and 0 <= threshold < float("inf")):
            raise ConfigError("threshold", f"must be a finite number >= 0, got {threshold!r}")
        if input_shape is not None:
            input_shape = tuple(input_shape)
            if not input_shape or not all(
                isinstance(d, int | np.integer) and d >= 1 for d in input_shape
            ):
                raise ConfigError(
                    "input shape",
                    f"expected positive integers such as (3, 224, 224), got {input_shape}",
                )
            input_shape = tuple(int(d) for d in input_shape)
        mapped = load_mapping(mapping) if mapping is not None else None
        self.path = str(path)
        self.threshold = float(threshold)
        self.source = open_source(path, input_shape=input_shape)
        try:
            match = self._plan(network, mapped, str(mapping), input_shape)
        except BaseException:
            self.source.close()
            raise
        self.format: str = self.source.format
        self.unmatched = match.unmatched
        self.skipped = tuple(self.source.other) + match.skipped
        self.warnings: list[str] = [*self.source.warnings, *match.warnings]
        self._pairs = match.pairs

    def _plan(
        self,
        network: Network | None,
        mapping: dict[str, str] | None,
        mapping_source: str,
        input_shape: tuple[int, ...] | None,
    ) -> Match:
        src = self.source
        if isinstance(src, OnnxSource):
            try:
                params, layers, skipped = src.params(geometry=network is None)
            except CheckpointError:
                raise
            except Exception as e:  # a corrupt graph
                raise fail(
                    self.path, f"cannot read the ONNX graph ({type(e).__name__}: {e})"
                ) from None
            byname = {p.key: p for p in params}
            if network is None:
                if not params:
                    raise fail(
                        self.path, "no Conv, Gemm or MatMul with an initializer weight found"
                    )
                self.network = Network(
                    name=shown(Path(self.path).stem, NAME_LIMIT),
                    layers=tuple(layers),
                    description=f"derived from the ONNX graph of {Path(self.path).name}",
                    source=self.path,
                    graph=src.graph,
                )
                m = Match(
                    pairs=tuple((p.layer, p) for p in params), unmatched=(), skipped=(), warnings=()
                )
            else:
                m = self._match(network, byname, mapping, mapping_source)
            return Match(
                pairs=m.pairs,
                unmatched=m.unmatched,
                skipped=tuple(skipped) + m.skipped,
                warnings=m.warnings,
            )
        params, skipped, warnings = group_params(src.tensors)
        if network is None:
            if mapping:
                raise ConfigError(mapping_source, "a mapping file needs a network to map onto")
            self.network, m = derive_network(
                params, src.tensors, path=self.path, input_shape=input_shape
            )
            self.geometry_assumed = input_shape is None
        else:
            m = self._match(network, params, mapping, mapping_source)
        return Match(
            pairs=m.pairs,
            unmatched=m.unmatched,
            skipped=tuple(skipped) + m.skipped,
            warnings=tuple(warnings) + m.warnings,
        )

    def _match(self, network, params, mapping, mapping_source) -> Match:
        """Map ``params`` onto a given network (which the reader then reports)."""
        self.network = network
        return match_network(
            network,
            params,
            self.source.tensors,
            path=self.path,
            mapping=mapping,
            mapping_source=mapping_source,
        )

    def layers(self) -> Iterator[CheckpointLayer]:
        """Read and yield each matched layer, in network order."""
        for layer, param in self._pairs:
            yield self.read_layer(layer, param)

    def read_layer(self, layer: Layer, param: Param) -> CheckpointLayer:
        """Read one layer's weight and mask from the file."""
        src, path = self.source, self.path
        lname = quoted(layer.name)
        w = src.load(param.weight)
        if w.dtype.kind not in "fiu":
            raise fail(path, f"weights must be numbers, found {w.dtype}", param.weight)
        m = src.load(param.mask) if param.mask is not None else None  # read once
        if _overlaps(w):
            lazy = self._broadcast_layer(layer, param, w, m)
            if lazy is not None:
                return lazy
        what = f"the weight and mask of layer {lname} (tensor {quoted(param.weight)})"
        hint = "save the weight with real strides (tensor.contiguous()) or map fewer layers"
        require_bytes(w.size * (w.itemsize + 1), what, hint)
        _finite(path, param.weight, w, f"weights of layer {lname}")
        mask = None
        source = param.mask_source
        if m is not None:
            if _overlaps(m):
                require_bytes(m.size * (m.itemsize + 1), what, hint)
                m = np.array(m, copy=True)
            _finite(path, param.mask, m, f"mask of layer {lname}")
            if source == "onnx mul" and _binary(w) and not _binary(m):
                w, m = m, w  # Mul(weight, mask) with names that did not tell
                param = replace(param, weight=param.mask, mask=param.weight)
            if m.shape != w.shape:
                raise fail(
                    path, f"mask shape {m.shape} differs from weight shape {w.shape}", param.mask
                )
            if param.transpose:
                m = m.T
            try:
                mask = check_mask(
                    layer, m.reshape(layer.weight_shape), source=f"{path}: {param.mask}"
                )
            except MaskError as e:
                raise fail(path, str(e), param.mask) from None
        if param.transpose:
            w = w.T
        w = np.ascontiguousarray(w.reshape(layer.weight_shape))
        if not w.flags.writeable:
            w = w.copy()
        if mask is None and self.threshold > 0:
            mask, source = np.abs(w) > self.threshold, "threshold"
        elif mask is None:
            mask, source = w != 0, "exact zeros"
        mask = np.ascontiguousarray(mask, dtype=bool)
        if not mask.all():
            w *= mask  # in place (w is this reader's own copy): no second weight-sized array
        w.setflags(write=False)
        mask.setflags(write=False)
        return CheckpointLayer(
            name=layer.name,
            tensor=param.weight,
            weight=w,
            mask=mask,
            mask_source=source,
            structure=detect_structure(layer, mask),
        )

    def _broadcast_layer(
        self, layer: Layer, param: Param, w: np.ndarray, m: np.ndarray | None
    ) -> CheckpointLayer | None:
        """A layer whose weight the file stores with zero or overlapping strides (and its
        mask tensor, if any, with the same strides), kept as strided views of the stored
        values. None: it needs a full copy after all (different strides, a reshape)."""
        if m is not None and (
            m.shape != w.shape
            or [s // m.itemsize for s in m.strides] != [s // w.itemsize for s in w.strides]
        ):
            return None
        view = w.T if param.transpose else w
        try:
            view = view.reshape(layer.weight_shape, copy=False)
        except ValueError:
            return None
        flat = _compact(w)
        _finite(self.path, param.weight, flat, f"weights of layer {quoted(layer.name)}")
        if m is not None:
            mflat = _compact(m)
            _finite(self.path, param.mask, mflat, f"mask of layer {quoted(layer.name)}")
            if not _binary(mflat):
                raise fail(self.path, "mask values must be 0 or 1 (or True/False)", param.mask)
            keep, source = mflat != 0, param.mask_source
        elif self.threshold > 0:
            keep, source = np.abs(flat) > self.threshold, "threshold"
        else:
            keep, source = flat != 0, "exact zeros"
        values = np.where(keep, flat, np.zeros((), flat.dtype))
        values.setflags(write=False)
        keep.setflags(write=False)
        mask = _restride(keep, view)
        return CheckpointLayer(
            name=layer.name,
            tensor=param.weight,
            weight=_restride(values, view),
            mask=mask,
            mask_source=source,
            structure=detect_structure(layer, mask),
        )

    def close(self) -> None:
        """Release the file."""
        self.source.close()

    def __enter__(self) -> CheckpointReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _binary(a: np.ndarray) -> bool:
    return a.dtype == bool or bool(((a == 0) | (a == 1)).all())


def open_checkpoint(
    path: str | Path,
    *,
    network: Network | None = None,
    mapping: str | Path | None = None,
    input_shape: tuple[int, ...] | None = None,
    threshold: float = 0.0,
) -> CheckpointReader:
    """Open a checkpoint for reading layer by layer (arguments as :func:`read_checkpoint`)."""
    return CheckpointReader(
        path, network=network, mapping=mapping, input_shape=input_shape, threshold=threshold
    )


def read_checkpoint(
    path: str | Path,
    *,
    network: Network | None = None,
    mapping: str | Path | None = None,
    input_shape: tuple[int, ...] | None = None,
    threshold: float = 0.0,
    arrays: bool = True,
) -> Checkpoint:
    """Read a checkpoint's prunable layers and masks.

    ``network``: the network to map onto (None: derive it from the file; a state_dict
    gives its layers' weight shapes, and ``input_shape = (C, H, W)`` their geometry --
    without it the conv geometry is assumed and ``geometry_assumed`` is True).
    ``mapping``: a YAML file ``layer name: tensor name`` for names that do not match.
    ``input_shape``: for a derived network, and to pin an ONNX model's symbolic input
    dimensions (``(C, H, W)`` or the full shape). ``threshold``: plain weights with
    ``|w| <= threshold`` count as pruned (0: exact zeros only); masks stored in the
    file take precedence. ``arrays=False``: each layer is read, counted (shape, kept
    weights, structure) and dropped, so the memory is set by the largest layer; the
    checkpoint's :meth:`~Checkpoint.masks` and :meth:`~Checkpoint.weights` then read
    the file again, layer by layer.

    Raises :class:`CheckpointError` (file, tensor) for anything wrong with the file,
    :class:`~simulator.errors.ConfigError` for a bad mapping file or argument.
    """
    kw = {
        "network": network,
        "mapping": mapping,
        "input_shape": input_shape,
        "threshold": threshold,
    }
    with open_checkpoint(path, **kw) as reader:
        if arrays:
            layers = tuple(reader.layers())
        else:
            layers = tuple(cl.counted() for cl in reader.layers())
        names = [cl.name for cl in layers]

        def reread() -> Iterator[CheckpointLayer]:
            with open_checkpoint(path, **kw) as again:
                for i, cl in enumerate(again.layers()):
                    if i >= len(names) or cl.name != names[i]:
                        raise fail(path, "the file changed while it was being read")
                    yield cl

        return Checkpoint(
            path=reader.path,
            format=reader.format,
            network=reader.network,
            layers=layers,
            unmatched=tuple(reader.unmatched),
            skipped=tuple(reader.skipped),
            warnings=tuple(reader.warnings),
            geometry_assumed=reader.geometry_assumed,
            reread=None if arrays else reread,
        )
