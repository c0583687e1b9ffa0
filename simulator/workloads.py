"""Networks: model files in ``models/``, inline layer specs and SCALE-Sim topologies.

A model file is YAML with ``name``, ``description``, ``source`` and a list of
``layers``; each layer has a ``type`` (``conv2d``, ``linear`` or ``matmul``) and the
keys of that type (see :data:`LAYER_KEYS`). Every problem in a file is reported at
once, each with its key path.

The graph is optional: a layer's ``inputs`` names the node it reads (default: the
previous layer; the first reads ``input``), and top-level ``joins`` add or
concatenate nodes (see :mod:`simulator.graph`). A file with neither has no graph,
and structured pruning stays per layer on it.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from simulator.errors import ConfigError, LayerError, shown
from simulator.graph import JOIN_OPS, Graph, Join, build_graph
from simulator.hfconfig import DecoderBlock, Phase, build_network, read_hf_config
from simulator.layers import Conv2d, Layer, Linear, MatMul
from simulator.paths import data_dir
from simulator.yamlio import (
    did_you_mean,
    find_builtin,
    read_text_bounded,
    read_yaml,
    schema_problems,
)

_MAX = 2**31  # largest size of one layer dimension (see layers.py)
_MAX_INPUTS = 4096  # most nodes one layer or join reads
_NAMES = {
    "type": "array",
    "minItems": 1,
    "maxItems": _MAX_INPUTS,
    "items": {"type": "string", "minLength": 1},
}


def _int(description: str, default: int | None = None, minimum: int = 1) -> dict[str, Any]:
    out = {"type": "integer", "minimum": minimum, "maximum": _MAX, "description": description}
    return out if default is None else {**out, "default": default}


def _pair(description: str, default: int | None = None, minimum: int = 1) -> dict[str, Any]:
    one = {"type": "integer", "minimum": minimum, "maximum": _MAX}
    out = {
        "oneOf": [one, {"type": "array", "items": one, "minItems": 2, "maxItems": 2}],
        "description": description + " (one integer for both, or [height, width])",
    }
    return out if default is None else {**out, "default": default}


LAYER_KEYS: dict[str, dict[str, Any]] = {
    "conv2d": {
        "description": "2-D convolution, weights (out_channels, in_channels/groups, kh, kw)",
        "required": ["in_channels", "out_channels", "kernel", "input"],
        "properties": {
            "in_channels": _int("input channels"),
            "out_channels": _int("output channels (filters)"),
            "kernel": _pair("kernel size, elements"),
            "input": _pair("input height and width before padding, elements"),
            "stride": _pair("stride, elements", 1),
            "padding": _pair("zero padding on each side, elements", 0, minimum=0),
            "dilation": _pair("dilation, elements", 1),
            "groups": _int("groups (in_channels for a depthwise conv)", 1),
            "batch": _int("images per inference", 1),
        },
    },
    "linear": {
        "description": "fully connected layer, weights (out_features, in_features)",
        "required": ["in_features", "out_features"],
        "properties": {
            "in_features": _int("input features"),
            "out_features": _int("output features"),
            "tokens": _int("tokens the layer is applied to (transformers)", 1),
            "batch": _int("inputs per inference", 1),
        },
    },
    "matmul": {
        "description": "product of two activations, heads x (m x k) @ (k x n); no weights",
        "required": ["m", "k", "n"],
        "properties": {
            "m": _int("rows of the left operand"),
            "k": _int("inner size"),
            "n": _int("columns of the right operand"),
            "heads": _int("independent products (attention heads)", 1),
            "batch": _int("inputs per inference", 1),
        },
    },
}
"""Keys of each layer type (JSON Schema fragments, with defaults and descriptions).
Sizes are element counts."""

MODEL_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "prunesim model",
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "layers"],
    "properties": {
        "name": {"type": "string", "minLength": 1, "description": "network name"},
        "description": {"type": "string", "description": "what the network is"},
        "source": {"type": "string", "description": "where its shapes come from"},
        "joins": {
            "type": "array",
            "description": "nodes without weights that combine layers: add (a residual "
            "connection, equal widths) or concat (channels one after another)",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["name", "op", "inputs"],
                "properties": {
                    "name": {"type": "string", "minLength": 1, "description": "unique name"},
                    "op": {"enum": list(JOIN_OPS), "description": "add or concat"},
                    "inputs": {**_NAMES, "description": "layers or joins combined"},
                },
            },
        },
        "layers": {
            "type": "array",
            "minItems": 1,
            "description": "layers in order; each has the keys of its type (see $defs)",
            "items": {
                "type": "object",
                "required": ["name", "type"],
                "properties": {
                    "name": {"type": "string", "minLength": 1, "description": "unique layer name"},
                    "type": {"enum": sorted(LAYER_KEYS), "description": "layer type"},
                },
            },
        },
    },
}
"""JSON Schema of a model file (``prunesim schema model`` prints it): the top level,
and under ``$defs`` each layer type's keys, selected by the layer's ``type``."""


def _layer_schema(kind: str) -> dict[str, Any]:
    spec = LAYER_KEYS[kind]
    return {
        "type": "object",
        "description": spec["description"],
        "additionalProperties": False,
        "required": ["name", "type", *spec["required"]],
        "properties": {
            "name": {"type": "string", "minLength": 1, "description": "unique layer name"},
            "type": {"const": kind},
            **spec["properties"],
            "inputs": {
                **_NAMES,
                "description": "the node it reads: a layer, a join or 'input' (default: "
                "the previous layer; the first layer reads 'input')",
            },
        },
    }


MODEL_SCHEMA["$defs"] = {kind: _layer_schema(kind) for kind in LAYER_KEYS}
MODEL_SCHEMA["properties"]["layers"]["items"]["allOf"] = [
    {
        "if": {"properties": {"type": {"const": kind}}, "required": ["type"]},
        "then": {"$ref": f"#/$defs/{kind}"},
    }
    for kind in LAYER_KEYS
]
_TOP_SCHEMA = {**MODEL_SCHEMA, "$defs": {}}
_TOP_SCHEMA["properties"] = {
    **MODEL_SCHEMA["properties"],
    "layers": {
        **MODEL_SCHEMA["properties"]["layers"],
        "items": {
            k: v for k, v in MODEL_SCHEMA["properties"]["layers"]["items"].items() if k != "allOf"
        },
    },
}


@dataclass(frozen=True, kw_only=True)
class Network:
    """A network: an ordered tuple of layers with a name and provenance, and the graph
    that connects them where it is known (``None``: structured pruning stays per
    layer)."""

    name: str
    layers: tuple[Layer, ...]
    description: str = ""
    source: str = ""
    graph: Graph | None = None
    other_param_count: int = 0
    """Parameters that are in no layer (elements): embedding tables, biases, norms of
    a network read from a Hugging Face config; never pruned or computed."""
    stored_transposed: tuple[str, ...] = ()
    """Layers whose checkpoints store the weight transposed, ``(in, out)``: GPT-2's
    ``Conv1D`` modules. A checkpoint's tensor for one of them is read as its
    transpose (square ones too: the shape cannot tell)."""
    blocks: tuple[DecoderBlock, ...] = ()
    """A network read from a Hugging Face config: each transformer block's layers by
    role (:class:`~simulator.hfconfig.DecoderBlock`), the links that structured
    pruning of attention heads and MLP channels follows; empty otherwise."""

    @property
    def weight_count(self) -> int:
        """Weights of the layers (elements): what pruning acts on."""
        return sum(layer.weight_count for layer in self.layers)

    @property
    def param_count(self) -> int:
        """Every parameter (elements): the layers' weights and :attr:`other_param_count`."""
        return self.weight_count + self.other_param_count

    @property
    def macs(self) -> int:
        return sum(layer.macs for layer in self.layers)

    @property
    def prunable_layers(self) -> tuple[Layer, ...]:
        return tuple(layer for layer in self.layers if layer.prunable)

    def layer(self, name: str) -> Layer:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(name)


def layer_from_dict(d: Mapping[str, Any]) -> Layer:
    """Build a layer from a validated mapping (keys as in :data:`LAYER_KEYS`)."""
    kind = d["type"]
    batch = d.get("batch", 1)
    if kind == "conv2d":
        return Conv2d(
            name=d["name"],
            in_channels=d["in_channels"],
            out_channels=d["out_channels"],
            kernel_hw=_pair(d["kernel"]),
            input_hw=_pair(d["input"]),
            stride_hw=_pair(d.get("stride", 1)),
            padding_hw=_pair(d.get("padding", 0)),
            dilation_hw=_pair(d.get("dilation", 1)),
            groups=d.get("groups", 1),
            batch=batch,
        )
    if kind == "linear":
        return Linear(
            name=d["name"],
            in_features=d["in_features"],
            out_features=d["out_features"],
            tokens=d.get("tokens", 1),
            batch=batch,
        )
    return MatMul(
        name=d["name"], m=d["m"], k=d["k"], n=d["n"], heads=d.get("heads", 1), batch=batch
    )


def _pair(v: int | list[int]) -> tuple[int, int]:
    return (v[0], v[1]) if isinstance(v, list) else (v, v)


def network_from_dict(data: Any, source: str) -> Network:
    """Validate a model mapping and build the network; every problem is reported at once.

    Raises :class:`ConfigError` naming ``source`` and each key path.
    """
    problems = schema_problems(data, _TOP_SCHEMA)  # layers: one by one, below
    items = data.get("layers") if isinstance(data, dict) else None
    layers: list[Layer] = []
    seen: set[str] = set()
    for i, d in enumerate(items if isinstance(items, list) else []):
        if not (
            isinstance(d, dict) and isinstance(d.get("name"), str) and d.get("type") in LAYER_KEYS
        ):
            continue  # already reported by the top-level schema
        where = f"layers[{i}] ({shown(d['name'])})"
        layer_problems = schema_problems(d, _layer_schema(d["type"]), ["layers", i])
        if d["name"] in seen:
            layer_problems.append(f"{where}.name: duplicate layer name")
        seen.add(d["name"])
        if not layer_problems:
            try:
                layers.append(layer_from_dict(d))
            except LayerError as e:
                layer_problems.append(f"{where}: {e}")
        problems += layer_problems
    graph = None
    if not problems:
        graph, problems = _graph(data, layers)
    if problems:
        raise ConfigError(source, problems)
    return Network(
        name=data["name"],
        layers=tuple(layers),
        description=data.get("description", ""),
        source=data.get("source", ""),
        graph=graph,
    )


def _graph(data: Mapping[str, Any], layers: list[Layer]) -> tuple[Graph | None, list[str]]:
    """The graph a validated model mapping declares (``inputs``, ``joins``), or
    ``None`` where it declares none; every problem found, with its key path."""
    items, joins = data["layers"], data.get("joins", [])
    sources = {d["name"]: d["inputs"] for d in items if "inputs" in d}
    if not sources and not joins:
        return None, []
    where = {d["name"]: f"layers[{i}] ({shown(d['name'])})" for i, d in enumerate(items)}
    where.update({d["name"]: f"joins[{i}] ({shown(d['name'])})" for i, d in enumerate(joins)})
    return build_graph(
        layers,
        sources,
        [Join(name=d["name"], op=d["op"], inputs=tuple(d["inputs"])) for d in joins],
        where,
    )


def builtin_models() -> dict[str, Path]:
    """Built-in model files (``models/*.yaml``; names are file stems), sorted by name:
    the networks a command runs when none is named."""
    return {p.stem: p for p in sorted(data_dir("models").glob("*.yaml"))}


def builtin_configs() -> dict[str, Path]:
    """Built-in Hugging Face configs (``models/hf/*.json``; names are file stems),
    sorted by name. Billions of weights: named explicitly, never run by default."""
    return {p.stem: p for p in sorted((data_dir("models") / "hf").glob("*.json"))}


def is_hf_config(name_or_path: str | Path) -> bool:
    """Whether ``name_or_path`` names a Hugging Face config: a built-in one, a
    ``.json`` file, or a folder holding ``config.json``."""
    text = str(name_or_path)
    if text in builtin_configs():
        return True
    path = Path(text)
    return text.lower().endswith(".json") or (path.is_dir() and (path / "config.json").exists())


def load_network(name_or_path: str | Path, *, phase: Phase | None = None) -> Network:
    """Load a built-in network by name (``resnet50``, ``llama2_7b``), a model file by
    path, a Hugging Face ``config.json`` or a folder holding one.

    ``phase`` (prefill or decode, sequence length, batch, context, LM head) applies
    to Hugging Face configs only (default: prefill of 128 tokens at batch 1); see
    :mod:`simulator.hfconfig`.
    """
    text = str(name_or_path)
    path = Path(text)
    builtins = builtin_models()
    configs = builtin_configs()
    if text in configs:
        path = configs[text]
    elif text in builtins:
        path = builtins[text]
    elif not path.exists() and not text.lower().endswith(".json"):
        every = {**builtins, **configs}
        found = find_builtin(text, every)
        if found is None:
            raise ConfigError(
                shown(text),
                f"no such model file or built-in model{did_you_mean(text, every)} "
                f"(built-ins: {', '.join(every)})",
            )
        path = found
    if is_hf_config(path):
        return _from_hf_config(path, phase)
    if phase is not None:
        raise ConfigError(
            shown(text),
            "a phase (prefill/decode, sequence length, batch, context, LM head) applies "
            "to Hugging Face configs only (config.json, a folder holding one, or a "
            f"built-in one: {', '.join(configs)})",
        )
    if path.suffix.lower() == ".csv":
        return read_scalesim_topology(path)
    return network_from_dict(read_yaml(path), str(path))


def _from_hf_config(path: Path, phase: Phase | None) -> Network:
    if path.is_dir():
        path = path / "config.json"
    config = read_hf_config(path)
    built = build_network(config, phase)
    name = path.parent.resolve().name if path.name == "config.json" else path.stem
    return Network(
        name=name,
        layers=built.layers,
        description=built.description,
        source=f"Hugging Face config {path}",
        other_param_count=built.other_param_count,
        stored_transposed=built.stored_transposed,
        blocks=built.blocks,
    )


_INLINE_ALIASES = {
    "in": "in_channels",
    "out": "out_channels",
    "k": "kernel",
    "kernel": "kernel",
    "input": "input",
    "stride": "stride",
    "pad": "padding",
    "padding": "padding",
    "dilation": "dilation",
    "groups": "groups",
    "batch": "batch",
    "tokens": "tokens",
    "heads": "heads",
    "m": "m",
    "n": "n",
    "kk": "k",
    "name": "name",
}


def parse_inline_layer(spec: str) -> Layer:
    """Parse ``TYPE:key=value,...`` into a layer, e.g.
    ``conv2d:in=64,out=128,k=3,input=56x56,pad=1`` or ``linear:in=4096,out=4096``.

    Pairs are written ``AxB``. For ``linear``, ``in``/``out`` mean features; for
    ``matmul`` use ``m``, ``kk`` (inner size), ``n`` and ``heads``.
    """
    kind, _, rest = spec.partition(":")
    kind = kind.strip().lower()
    if kind not in LAYER_KEYS:
        raise ConfigError(
            "--layer", f"layer type '{shown(kind)}' is not one of {', '.join(LAYER_KEYS)}"
        )
    d: dict[str, Any] = {"type": kind, "name": kind}
    problems = []
    for item in filter(None, (s.strip() for s in rest.split(","))):
        key, eq, value = item.partition("=")
        key = key.strip().lower()
        if not eq or key not in _INLINE_ALIASES:
            problems.append(
                f"cannot read '{shown(item)}': expected key=value with key one of "
                f"{', '.join(sorted(_INLINE_ALIASES))}"
            )
            continue
        target = _INLINE_ALIASES[key]
        if kind == "linear" and target in ("in_channels", "out_channels"):
            target = target.replace("channels", "features")
        if target == "name":
            d["name"] = value
            continue
        parts = value.lower().split("x")
        if not all(re.fullmatch(r"\s*[0-9]{1,40}\s*", x) for x in parts) or len(parts) > 2:
            problems.append(
                f"{shown(key)}='{shown(value, 40)}': expected an integer (at most 40 digits) or AxB"
            )
            continue
        nums = [int(x) for x in parts]
        d[target] = nums[0] if len(nums) == 1 else nums
    if problems:
        raise ConfigError("--layer", problems)
    problems = schema_problems(d, _layer_schema(kind))
    if problems:
        raise ConfigError("--layer", problems)
    try:
        return layer_from_dict(d)
    except LayerError as e:
        raise ConfigError("--layer", str(e)) from None


MAX_TOPOLOGY_BYTES = 4 * 2**20
"""Largest SCALE-Sim topology file read (bytes)."""
MAX_FIELD_CHARS = 200
"""Longest field of a SCALE-Sim topology row (characters)."""
MAX_LINE_CHARS = 4096
"""Longest line of a SCALE-Sim topology file (characters)."""


def read_scalesim_topology(path: str | Path) -> Network:
    """Read a SCALE-Sim topology CSV (name, IFMAP H, IFMAP W, filter H, filter W,
    channels, filters, stride) as a network of unpadded conv layers.

    SCALE-Sim treats the IFMAP as already padded and computes the output size as
    ceil((H - R + stride) / stride). Where the stride does not divide H - R that is
    one more than a valid convolution gives, so the layer's input is taken as
    R + stride * (P - 1), the extent those P outputs read (AlexNet's conv1: 224 in
    the file, 227 here, 55 x 55 outputs either way).
    """
    path = Path(path)
    lines = read_text_bounded(path, MAX_TOPOLOGY_BYTES).splitlines()
    layers: list[Layer] = []
    problems = []
    names: set[str] = set()
    for n, line in enumerate(lines, start=1):
        if len(line) > MAX_LINE_CHARS:
            raise ConfigError(
                str(path),
                f"row {n}: a line of {len(line):,} characters; expected at most "
                f"{MAX_LINE_CHARS:,} (fields of at most {MAX_FIELD_CHARS} characters)",
            )
    try:
        rows = [r for r in csv.reader(lines) if any(c.strip() for c in r)]
    except csv.Error as e:
        raise ConfigError(str(path), f"not a CSV topology: {shown(str(e))}") from None
    for n, row in enumerate(rows[1:], start=2):
        cells = [c.strip() for c in row if c.strip()]
        long = next((c for c in cells if len(c) > MAX_FIELD_CHARS), None)
        if long is not None:
            problems.append(
                f"row {n}: a field of {len(long):,} characters ({shown(long, 30)}); "
                f"expected names and numbers of at most {MAX_FIELD_CHARS} characters"
            )
            continue
        if len(cells) < 8:
            problems.append(
                f"row {n}: expected 8 columns (name, ifmap h, ifmap w, filter h, "
                f"filter w, channels, filters, stride), got {len(cells)}"
            )
            continue
        if cells[0] in names:
            problems.append(f"row {n}: duplicate layer name {shown(cells[0])}")
            continue
        names.add(cells[0])
        try:
            h, w, r, s, c, k, st = (int(x) for x in cells[1:8])
            if st < 1:
                raise LayerError(f"layer {shown(cells[0])}: stride must be positive, got {st}")
            p, q = (-(-(size - f + st) // st) for size, f in ((h, r), (w, s)))
            layers.append(
                Conv2d(
                    name=cells[0],
                    in_channels=c,
                    out_channels=k,
                    kernel_hw=(r, s),
                    input_hw=(r + st * (p - 1), s + st * (q - 1)),
                    stride_hw=(st, st),
                    scalesim_ifmap_hw=(h, w),
                )
            )
        except ValueError:
            got = ", ".join(shown(c, 20) for c in cells[1:8])
            problems.append(f"row {n}: sizes must be integers, got {got}")
        except LayerError as e:
            problems.append(f"row {n}: {e}")
    if problems or not layers:
        raise ConfigError(str(path), problems or "no layers found")
    return Network(name=path.stem, layers=tuple(layers), source=f"SCALE-Sim topology {path.name}")
