"""From tensor names to layers: pruning conventions, matching a network, deriving one.

A :class:`Param` is one weight found in a file, with the tensor that holds its mask
where the file has one:

- ``torch.nn.utils.prune``: ``X_orig`` + ``X_mask`` (weight ``X_orig * X_mask``);
- NVIDIA ASP (apex.contrib.sparsity): ``M.__X_mma_mask`` beside ``M.X``;
- a ``X_mask`` beside ``X``, or a module's ``mask`` buffer beside its ``weight``;
- ``torch.ao.pruning`` parametrizations (``M.parametrizations.X.original``): their
  masks are not in the state_dict, so the weight's exact zeros are used, with a warning;
- otherwise a plain weight, whose exact zeros (or values under a threshold) are the mask.

Params are matched to a network's prunable layers by name (``M.weight`` for layer
``M``, under one common prefix such as ``bert.`` or ``module.``), then by the
torchvision names of AlexNet and VGG-16 (``features.N``, ``classifier.N``), then by a
mapping file, and, when no name matches at all, by order where every shape agrees.
Every tensor that is not used is reported with the reason.
"""

from __future__ import annotations

import difflib
import itertools
import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from simulator.checkpoints.source import (
    NAME_LIMIT,
    PATH_LIMIT,
    TensorInfo,
    fail,
    quoted,
    unique_name,
)
from simulator.errors import CheckpointError, ConfigError, LayerError, shown
from simulator.layers import Conv2d, Layer, Linear
from simulator.workloads import Network
from simulator.yamlio import read_yaml

_VGG_BLOCKS_4_5 = [(4, 1), (4, 2), (4, 3), (5, 1), (5, 2), (5, 3)]
TORCHVISION_ALIASES: dict[str, dict[str, str]] = {
    "alexnet": {
        "conv1": "features.0",
        "conv2": "features.3",
        "conv3": "features.6",
        "conv4": "features.8",
        "conv5": "features.10",
        "fc6": "classifier.1",
        "fc7": "classifier.4",
        "fc8": "classifier.6",
    },
    "vgg16": {
        **{
            f"conv{b}_{i}": f"features.{n}"
            for (b, i), n in zip(
                [(1, 1), (1, 2), (2, 1), (2, 2), (3, 1), (3, 2), (3, 3), *_VGG_BLOCKS_4_5],
                (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28),
                strict=True,
            )
        },
        "fc6": "classifier.0",
        "fc7": "classifier.3",
        "fc8": "classifier.6",
    },
}
"""Built-in layer name -> torchvision module name (``torchvision.models.alexnet`` and
``vgg16``). torchvision's AlexNet is the single-GPU variant (64-192-384-256-256
filters, no groups), not the grouped Caffe AlexNet of ``models/alexnet.yaml``: its
conv layers do not fit that model, and say so."""

_AO = re.compile(r"^(.*)\.parametrizations\.([^.]+)\.original$")
_ASP = re.compile(r"^(.*)\.__([^.]+)_mma_mask$")
_ASP_PRUNED = re.compile(r"^(.*)\.__([^.]+)_mma_pruned_p$")
MAX_LISTED = 12
"""Most shape mismatches spelled out in one error (the count says how many in all)."""
_BN_STATS = ("running_mean", "running_var", "num_batches_tracked")


@dataclass(frozen=True, kw_only=True)
class Param:
    """One weight in a file.

    ``key`` is the name used for matching (``conv1.weight``); ``weight`` and ``mask``
    name the tensors that hold the weight and its mask (``mask`` None: the weight's
    zeros are the mask); ``shape`` is the weight's shape as the layer sees it
    (``transpose``: the file stores the transpose, as ONNX MatMul and Gemm weights
    often are); ``layer`` is the geometry where the file gives it (ONNX).
    """

    key: str
    weight: str
    mask: str | None = None
    mask_source: str = "exact zeros"
    shape: tuple[int, ...]
    transpose: bool = False
    layer: Layer | None = None
    is_float: bool = True

    @property
    def module(self) -> str:
        return self.key[: -len(".weight")] if self.key.endswith(".weight") else self.key

    @property
    def tensors(self) -> tuple[str, ...]:
        return (self.weight,) if self.mask is None else (self.weight, self.mask)


def group_params(
    tensors: Mapping[str, TensorInfo],
) -> tuple[dict[str, Param], list[tuple[str, str]], list[str]]:
    """Params of a flat state_dict, the tensors used by none (with reasons), warnings."""
    params: dict[str, Param] = {}
    used: set[str] = set()
    skipped: list[tuple[str, str]] = []
    ao: list[str] = []

    def add(key: str, weight: str, mask: str | None, source: str) -> None:
        info = tensors[weight]
        params[key] = Param(
            key=key,
            weight=weight,
            mask=mask,
            mask_source=source,
            shape=info.shape,
            is_float=info.is_float,
        )
        used.update((weight, mask) if mask else (weight,))

    for name in tensors:  # conventions that pair two tensors first
        if (m := _ASP.match(name)) and f"{m[1]}.{m[2]}" in tensors:
            add(f"{m[1]}.{m[2]}", f"{m[1]}.{m[2]}", name, "asp")
        elif name.endswith("_orig") and name[:-5] + "_mask" in tensors:
            add(name[:-5], name, name[:-5] + "_mask", "mask tensor")
    for name, info in tensors.items():
        if name in used:
            continue
        if m := _AO.match(name):
            add(f"{m[1]}.{m[2]}", name, None, "exact zeros")
            ao.append(f"{m[1]}.{m[2]}")
        elif m := _ASP_PRUNED.match(name):
            skipped.append((shown(name, NAME_LIMIT), "ASP's copy of the pruned values"))
            used.add(name)
        elif name.endswith("_mask") and name[:-5] in tensors and name[:-5] not in used:
            if tensors[name[:-5]].shape == info.shape:
                add(name[:-5], name[:-5], name, "mask tensor")
        elif name.endswith(".mask") and name[:-5] + ".weight" in tensors:
            w = name[:-5] + ".weight"
            if w not in used and tensors[w].shape == info.shape:
                add(w, w, name, "mask tensor")
    for name in tensors:
        if name not in used and name not in params:
            add(name, name, None, "exact zeros")
    warnings = []
    if ao:
        warnings.append(
            f"{len(ao)} weight(s) use torch.ao.pruning parametrizations "
            f"({', '.join(quoted(a) for a in ao[:4])}"
            f"{', ...' if len(ao) > 4 else ''}), whose masks live outside the state_dict; "
            "their exact zeros are taken as the mask (call sparsifier.squash_mask() "
            "before saving to store the pruned weights)"
        )
    return params, skipped, warnings


def skip_reason(param: Param, tensors: Mapping[str, TensorInfo]) -> str | None:
    """Why a param can never be a prunable layer's weight (None: it could be)."""
    info = tensors.get(param.weight)
    name = param.key
    if info is not None and info.dtype is None:
        return f"unsupported dtype {info.dtype_name}"
    if info is not None and not info.is_numeric:
        return f"not numbers ({info.dtype_name})"
    if name.rsplit(".", 1)[-1] in _BN_STATS:
        return "batch-norm statistics"
    if not param.is_float:
        return f"not floating point ({info.dtype_name if info else '?'})"
    if len(param.shape) <= 1:
        return "bias or normalization parameter (1-D)" if param.shape else "scalar"
    if len(param.shape) == 2 and "embed" in name.lower():
        return "embedding table (a look-up, not a matrix product)"
    if len(param.shape) not in (2, 4):
        return f"{len(param.shape)}-D tensor (only linear and 2-D conv layers are modelled)"
    return None


def _fits(shape: tuple[int, ...], layer: Layer) -> bool:
    want = tuple(layer.weight_shape)
    if shape == want:
        return True
    # a 1x1 conv stored for a linear layer, or a linear weight with unit dims
    return math.prod(shape) == math.prod(want) and tuple(d for d in shape if d != 1) == tuple(
        d for d in want if d != 1
    )


def load_mapping(path: str | Path) -> dict[str, str]:
    """A mapping file: YAML ``layer name: tensor name`` (the weight tensor, its module
    name, or for ``torch.nn.utils.prune`` files the ``_orig`` tensor)."""
    data = read_yaml(path)
    if not isinstance(data, dict) or not data:
        raise ConfigError(str(path), "expected a mapping of layer name -> tensor name")
    bad = [
        f"{shown(k)}: expected a tensor name, got {shown(v)}"
        for k, v in data.items()
        if not isinstance(v, str)
    ]
    if bad:
        raise ConfigError(str(path), bad)
    return {str(k): v for k, v in data.items()}


def _find(params: Mapping[str, Param], name: str) -> Param | None:
    if name in params:
        return params[name]
    if name + ".weight" in params:
        return params[name + ".weight"]
    return next((p for p in params.values() if name in p.tensors), None)


@dataclass(frozen=True, kw_only=True)
class Match:
    """How a file's params map onto a network."""

    pairs: tuple[tuple[Layer, Param], ...]
    unmatched: tuple[str, ...]
    skipped: tuple[tuple[str, str], ...]
    warnings: tuple[str, ...]


def match_network(
    network: Network,
    params: Mapping[str, Param],
    tensors: Mapping[str, TensorInfo],
    *,
    path: str,
    mapping: Mapping[str, str] | None = None,
    mapping_source: str = "mapping",
) -> Match:
    """Match ``params`` to the prunable layers of ``network`` (see the module docstring).

    Raises :class:`CheckpointError` listing every tensor whose shape does not fit its
    layer, and :class:`ConfigError` for mapping entries that name no layer or tensor.
    """
    prunable = network.prunable_layers
    names = {layer.name for layer in prunable}
    found: dict[str, tuple[Param, str]] = {}
    warnings: list[str] = []
    if mapping:
        problems = []
        for lname, tname in mapping.items():
            p = _find(params, tname)
            if lname not in names:
                close = _close(lname, names)
                problems.append(
                    f"{shown(lname)}: no prunable layer of that name in {shown(network.name)}"
                    + (f" (did you mean {', '.join(map(shown, close))}?)" if close else "")
                )
            elif p is None:
                close = _close(tname, tensors)
                problems.append(
                    f"{shown(lname)}: no tensor {quoted(tname)} in {shown(path, PATH_LIMIT)}"
                    + (f" (did you mean {', '.join(map(shown, close))}?)" if close else "")
                )
            else:
                found[lname] = (p, "mapping file")
        if problems:
            raise ConfigError(mapping_source, problems)
    candidates = {p.module: p for p in params.values() if p.key.endswith(".weight")}
    prefixes: Counter[str] = Counter()
    by_suffix = _suffixes(candidates, {layer.name for layer in prunable})
    for layer in prunable:
        for mod in by_suffix.get(layer.name, ()):
            prefixes[mod[: len(mod) - len(layer.name)]] += 1
    best = min(prefixes, key=lambda p: (-prefixes[p], len(p))) if prefixes else ""
    aliases = TORCHVISION_ALIASES.get(network.name, {})
    via_alias = []
    for layer in prunable:
        if layer.name in found:
            continue
        for prefix in dict.fromkeys((best, "")):
            p = candidates.get(prefix + layer.name)
            if p is None and layer.name in aliases:
                p = candidates.get(prefix + aliases[layer.name])
                if p is not None:
                    via_alias.append(layer.name)
            if p is not None:
                found[layer.name] = (p, "name")
                break
    if not found:
        weights = [p for p in params.values() if skip_reason(p, tensors) is None]
        if len(weights) == len(prunable) and all(
            _fits(p.shape, layer) for p, layer in zip(weights, prunable, strict=True)
        ):
            found = {layer.name: (p, "order") for p, layer in zip(weights, prunable, strict=True)}
            warnings.append(
                f"no tensor name matches a layer of {network.name}; the {len(weights)} "
                "weight tensors were matched to its layers by order (every shape agrees)"
            )
    problems = []
    pairs = []
    for layer in prunable:
        if layer.name not in found:
            continue
        p, how = found[layer.name]
        want = tuple(layer.weight_shape)
        if layer.name in network.stored_transposed and p.shape == want[::-1] and not p.transpose:
            p = replace(p, shape=want, transpose=True)  # a Conv1D weight, (in, out)
        if not _fits(p.shape, layer):
            problems.append(
                f"tensor {quoted(p.weight)} (matched by {how}) has shape {p.shape}, layer "
                f"{quoted(layer.name)} of {shown(network.name)} needs "
                f"{tuple(layer.weight_shape)}"
            )
        else:
            pairs.append((layer, p))
    if problems:
        hint = ""
        if via_alias and network.name == "alexnet":
            hint = (
                "; torchvision's AlexNet (64-192-384-256-256 filters, no groups) is not the "
                "grouped Caffe AlexNet of models/alexnet.yaml -- read the file without a "
                "network (geometry from the weights and an input shape) or give a model "
                "file that matches it"
            )
        listed = problems[:MAX_LISTED]
        if len(problems) > MAX_LISTED:
            listed.append(f"... and {len(problems) - MAX_LISTED} more")
        raise fail(
            path,
            f"{len(problems)} tensor(s) do not fit network {shown(network.name)}: "
            + "; ".join(listed)
            + hint,
        )
    used = {t for _, p in pairs for t in p.tensors}
    skipped = []
    for p in params.values():
        if any(t in used for t in p.tensors):
            continue
        reason = skip_reason(p, tensors) or (
            f"no layer {quoted(p.module)} in network {shown(network.name)}"
        )
        skipped += [(shown(t, NAME_LIMIT), reason) for t in p.tensors]
    unmatched = tuple(layer.name for layer in prunable if layer.name not in found)
    return Match(
        pairs=tuple(pairs), unmatched=unmatched, skipped=tuple(skipped), warnings=tuple(warnings)
    )


def _close(name: str, names: Iterable[str]) -> list[str]:
    """Up to three names like ``name`` ("did you mean"), among at most 2,000 (the
    comparison is quadratic in the name's length)."""
    pool = list(itertools.islice(names, 2000))
    return difflib.get_close_matches(name[:200], [n[:200] for n in pool], 3)


def _suffixes(modules: Iterable[str], names: set[str]) -> dict[str, list[str]]:
    """Layer name -> the modules that are it or end in ``.<name>`` (one pass over the
    modules, looking at as many trailing dotted parts as the longest layer name has)."""
    depth = max((n.count(".") + 1 for n in names), default=0)
    out: dict[str, list[str]] = {}
    for mod in modules:
        cut = len(mod)
        for _ in range(depth):
            cut = mod.rfind(".", 0, cut)
            tail = mod[cut + 1 :]
            if tail in names:
                out.setdefault(tail, []).append(mod)
            if cut < 0:
                break
    return out


def _module_names(keys: list[str]) -> list[str]:
    names = [k[: -len(".weight")] if k.endswith(".weight") else k for k in keys]
    if names and all(n.startswith("module.") for n in names):  # nn.DataParallel
        names = [n[len("module.") :] for n in names]
    return names


def derive_network(
    params: Mapping[str, Param],
    tensors: Mapping[str, TensorInfo],
    *,
    path: str,
    input_shape: tuple[int, ...] | None,
) -> tuple[Network, Match]:
    """A network of the conv and linear layers that a state_dict's weight shapes give.

    Weights do not record strides, padding or pooling: every conv layer is taken at
    the input size ``input_shape = (C, H, W)``, stride 1, no padding (a warning says
    so; weight counts and masks are exact, MACs are estimates). A depthwise conv
    (``C/g == 1`` after a layer with as many outputs) gets ``groups = channels``.
    ``(T, F)`` or ``(T,)`` gives a network of linear layers ``T`` tokens per layer.
    Without an input shape the layers are still listed (conv layers at their kernel
    size, linear layers at one token) with a warning that MACs are not known; the
    reader marks such a network ``geometry_assumed``. Names are escaped for display.
    Linear in the number of params.
    """
    cands = []
    skipped = []
    for p in params.values():
        reason = skip_reason(p, tensors)
        if reason is None:
            cands.append(p)
        else:
            skipped += [(shown(t, NAME_LIMIT), reason) for t in p.tensors]
    if not cands:
        raise fail(path, "no conv or linear weight (2-D or 4-D floating-point tensor) found")
    has_conv = any(len(p.shape) == 4 for p in cands)
    shape = tuple(input_shape) if input_shape is not None else None
    if shape is not None and (
        not 1 <= len(shape) <= 3 or not all(isinstance(d, int) and d >= 1 for d in shape)
    ):
        raise CheckpointError(f"input shape must be 1 to 3 positive integers, got {shape}")
    if has_conv and shape is not None and len(shape) != 3:
        raise fail(
            path,
            "a state_dict with conv layers needs an input shape (C, H, W), "
            f"got {len(shape)} dimension(s)",
        )
    tokens = shape[0] if shape is not None and len(shape) in (1, 2) and not has_conv else 1
    names = [shown(n, NAME_LIMIT) for n in _module_names([p.key for p in cands])]
    layers: list[Layer] = []
    pairs = []
    prev_out = shape[0] if has_conv and shape is not None else None
    seen: set[str] = set()
    counts: dict[str, int] = {}
    for p, base in zip(cands, names, strict=True):
        name = unique_name(base, seen, counts)
        try:
            if len(p.shape) == 4:
                k, cg, r, s = p.shape
                groups = prev_out // cg if cg == 1 and prev_out == k and k > 1 else 1
                h, w = (shape[1], shape[2]) if shape is not None else (r, s)
                layer: Layer = Conv2d(
                    name=name,
                    in_channels=cg * groups,
                    out_channels=k,
                    kernel_hw=(r, s),
                    input_hw=(max(h, r), max(w, s)),
                    groups=groups,
                )
                prev_out = k
            else:
                layer = Linear(
                    name=name, in_features=p.shape[1], out_features=p.shape[0], tokens=tokens
                )
        except LayerError as e:
            raise fail(path, f"cannot make a layer of it ({e})", p.weight) from None
        layers.append(layer)
        pairs.append((layer, replace(p, layer=layer)))
    first = next((lay for lay in layers if isinstance(lay, Conv2d)), None)
    if first is not None and shape is not None and first.in_channels != shape[0]:
        raise fail(
            path,
            f"input shape {shape} has {shape[0]} channels, the first conv takes "
            f"{first.in_channels}",
            pairs[layers.index(first)][1].weight,
        )
    warnings = []
    if shape is None:
        warnings.append(
            "network derived from weight shapes without an input shape: layers, weights "
            "and masks are exact, but MACs and activation sizes are not known (conv "
            "layers taken at their kernel size, linear layers at one token) -- give a "
            "model file, or an input shape, before estimating latency or energy"
        )
    elif has_conv:
        warnings.append(
            f"network derived from weight shapes: every conv layer taken at the input size "
            f"{shape[1]}x{shape[2]} with stride 1 and no padding (a state_dict records no "
            "strides, padding or pooling); weights and masks are exact, MACs are estimates "
            "-- give a model file for exact geometry"
        )
    net = Network(
        name=shown(Path(path).stem, NAME_LIMIT),
        layers=tuple(layers),
        description=f"derived from the weight shapes of {shown(Path(path).name, NAME_LIMIT)}",
        source=str(path),
    )
    return net, Match(
        pairs=tuple(pairs), unmatched=(), skipped=tuple(skipped), warnings=tuple(warnings)
    )
