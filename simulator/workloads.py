"""Networks: model files in ``models/``, inline layer specs and SCALE-Sim topologies.

A model file is YAML with ``name``, ``description``, ``source`` and a list of
``layers``; each layer has a ``type`` (``conv2d``, ``linear`` or ``matmul``) and the
keys of that type (see :data:`LAYER_KEYS`). Every problem in a file is reported at
once, each with its key path.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema

from simulator.errors import ConfigError, LayerError
from simulator.layers import Conv2d, Layer, Linear, MatMul
from simulator.paths import data_dir
from simulator.yamlio import read_yaml

_INT = {"type": "integer", "minimum": 1}
_INT0 = {"type": "integer", "minimum": 0}
_PAIR = {"oneOf": [_INT, {"type": "array", "items": _INT, "minItems": 2, "maxItems": 2}]}
_PAIR0 = {"oneOf": [_INT0, {"type": "array", "items": _INT0, "minItems": 2, "maxItems": 2}]}

LAYER_KEYS: dict[str, dict[str, Any]] = {
    "conv2d": {
        "required": ["in_channels", "out_channels", "kernel", "input"],
        "properties": {
            "in_channels": _INT,
            "out_channels": _INT,
            "kernel": _PAIR,
            "input": _PAIR,
            "stride": _PAIR,
            "padding": _PAIR0,
            "dilation": _PAIR,
            "groups": _INT,
            "batch": _INT,
        },
    },
    "linear": {
        "required": ["in_features", "out_features"],
        "properties": {"in_features": _INT, "out_features": _INT, "tokens": _INT, "batch": _INT},
    },
    "matmul": {
        "required": ["m", "k", "n"],
        "properties": {"m": _INT, "k": _INT, "n": _INT, "heads": _INT, "batch": _INT},
    },
}
"""Keys of each layer type (JSON Schema fragments). Sizes are element counts."""

MODEL_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "prunesim model",
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "layers"],
    "properties": {
        "name": {"type": "string", "minLength": 1},
        "description": {"type": "string"},
        "source": {"type": "string"},
        "layers": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["name", "type"],
                "properties": {
                    "name": {"type": "string", "minLength": 1},
                    "type": {"enum": sorted(LAYER_KEYS)},
                },
            },
        },
    },
}


def _layer_schema(kind: str) -> dict[str, Any]:
    spec = LAYER_KEYS[kind]
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["name", "type", *spec["required"]],
        "properties": {"name": {"type": "string"}, "type": {"const": kind}, **spec["properties"]},
    }


@dataclass(frozen=True, kw_only=True)
class Network:
    """A network: an ordered tuple of layers with a name and provenance."""

    name: str
    layers: tuple[Layer, ...]
    description: str = ""
    source: str = ""

    @property
    def weight_count(self) -> int:
        return sum(layer.weight_count for layer in self.layers)

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


def _path(parts: Iterable[Any]) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(top level)"


def _schema_problems(data: Any, schema: Mapping[str, Any], prefix: Iterable[Any] = ()) -> list[str]:
    validator = jsonschema.Draft202012Validator(schema)
    problems = []
    for err in sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.absolute_path))):
        where = _path([*prefix, *err.absolute_path])
        if err.validator == "additionalProperties":
            extra = sorted(set(err.instance) - set(err.schema.get("properties", {})))
            known = ", ".join(sorted(err.schema.get("properties", {})))
            problems.append(f"{where}: unknown key(s) {', '.join(extra)} (known: {known})")
        elif err.validator == "oneOf":
            problems.append(
                f"{where}: expected a positive integer or a pair of them, got {err.instance!r}"
            )
        else:
            problems.append(f"{where}: {err.message}")
    return problems


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
    problems = _schema_problems(data, MODEL_SCHEMA)
    items = data.get("layers") if isinstance(data, dict) else None
    layers: list[Layer] = []
    seen: set[str] = set()
    for i, d in enumerate(items if isinstance(items, list) else []):
        if not (
            isinstance(d, dict) and isinstance(d.get("name"), str) and d.get("type") in LAYER_KEYS
        ):
            continue  # already reported by the top-level schema
        where = f"layers[{i}] ({d['name']})"
        layer_problems = _schema_problems(d, _layer_schema(d["type"]), ["layers", i])
        if d["name"] in seen:
            layer_problems.append(f"{where}.name: duplicate layer name {d['name']!r}")
        seen.add(d["name"])
        if not layer_problems:
            try:
                layers.append(layer_from_dict(d))
            except LayerError as e:
                layer_problems.append(f"{where}: {e}")
        problems += layer_problems
    if problems:
        raise ConfigError(source, problems)
    return Network(
        name=data["name"],
        layers=tuple(layers),
        description=data.get("description", ""),
        source=data.get("source", ""),
    )


def builtin_models() -> dict[str, Path]:
    """Built-in model names (file stems) and their files, sorted by name."""
    return {p.stem: p for p in sorted(data_dir("models").glob("*.yaml"))}


def load_network(name_or_path: str | Path) -> Network:
    """Load a built-in network by name (``resnet50``) or a model file by path."""
    text = str(name_or_path)
    path = Path(text)
    builtins = builtin_models()
    if text in builtins:
        path = builtins[text]
    elif text.lower().endswith(".csv") and path.is_file():
        return read_scalesim_topology(path)
    elif not path.is_file():
        raise ConfigError(
            text, f"no such model file or built-in model (built-ins: {', '.join(builtins)})"
        )
    return network_from_dict(read_yaml(path), str(path))


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
        raise ConfigError("--layer", f"layer type {kind!r} is not one of {', '.join(LAYER_KEYS)}")
    d: dict[str, Any] = {"type": kind, "name": kind}
    problems = []
    for item in filter(None, (s.strip() for s in rest.split(","))):
        key, eq, value = item.partition("=")
        key = key.strip().lower()
        if not eq or key not in _INLINE_ALIASES:
            problems.append(
                f"cannot read {item!r}: expected key=value with key one of "
                f"{', '.join(sorted(_INLINE_ALIASES))}"
            )
            continue
        target = _INLINE_ALIASES[key]
        if kind == "linear" and target in ("in_channels", "out_channels"):
            target = target.replace("channels", "features")
        if target == "name":
            d["name"] = value
            continue
        try:
            nums = [int(x) for x in value.lower().split("x")]
        except ValueError:
            problems.append(f"{key}={value!r}: expected an integer or AxB")
            continue
        d[target] = nums[0] if len(nums) == 1 else nums
    if problems:
        raise ConfigError("--layer", problems)
    problems = _schema_problems(d, _layer_schema(kind))
    if problems:
        raise ConfigError("--layer", problems)
    try:
        return layer_from_dict(d)
    except LayerError as e:
        raise ConfigError("--layer", str(e)) from None


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
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        reason = getattr(e, "strerror", None) or "not UTF-8 text"
        raise ConfigError(str(path), f"cannot read file ({reason})") from None
    layers: list[Layer] = []
    problems = []
    names: set[str] = set()
    rows = [r for r in csv.reader(lines) if any(c.strip() for c in r)]
    for n, row in enumerate(rows[1:], start=2):
        cells = [c.strip() for c in row if c.strip()]
        if len(cells) < 8:
            problems.append(
                f"row {n}: expected 8 columns (name, ifmap h, ifmap w, filter h, "
                f"filter w, channels, filters, stride), got {len(cells)}"
            )
            continue
        if cells[0] in names:
            problems.append(f"row {n}: duplicate layer name {cells[0]!r}")
            continue
        names.add(cells[0])
        try:
            h, w, r, s, c, k, st = (int(x) for x in cells[1:8])
            if st < 1:
                raise LayerError(f"layer {cells[0]!r}: stride must be positive, got {st}")
            p, q = (-(-(size - f + st) // st) for size, f in ((h, r), (w, s)))
            layers.append(
                Conv2d(
                    name=cells[0],
                    in_channels=c,
                    out_channels=k,
                    kernel_hw=(r, s),
                    input_hw=(r + st * (p - 1), s + st * (q - 1)),
                    stride_hw=(st, st),
                )
            )
        except ValueError:
            problems.append(f"row {n}: sizes must be integers, got {cells[1:8]}")
        except LayerError as e:
            problems.append(f"row {n}: {e}")
    if problems or not layers:
        raise ConfigError(str(path), problems or "no layers found")
    return Network(name=path.stem, layers=tuple(layers), source=f"SCALE-Sim topology {path.name}")
