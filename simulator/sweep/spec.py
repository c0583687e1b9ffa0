"""Sweep specs: the YAML file, its validation (every problem at once, with key paths)
and its expansion into points.

A spec names the workload (``network``, ``pruning``, ``settings``), the base hardware
profile (``platform``), the pruned ``variants`` run beside dense at every point, and
``sweep``: one block of parameters, or a list of blocks combined as a grid (see
:mod:`simulator.sweep.generators` for the modes and :mod:`simulator.sweep.keys` for
the key paths)::

    network: resnet50
    platform: eie
    variants: [sparse]
    pruning: {rate: 8}
    settings: {weight_bits: 4, index_bits: 4}
    sweep:
      mode: grid
      parameters:
        compute.pes: {log_range: [16, 256], num: 5}      # 16, 32, 64, 128, 256
        compute.fifo_depth: [2, 4, 8]
        memory.dram.bandwidth_bytes_per_s: {range: [10e9, 40e9], step: 10e9}

A parameter's values: one value, a list, ``{values: [...]}``, ``{range: [start,
stop], step: s}`` (stop included when reached), ``{log_range: [start, stop], num:
n}`` (n values at a constant ratio; integers when start and stop are), or, for
``random`` and ``lhs`` blocks only, ``{uniform: [low, high]}`` and ``{log_uniform:
[low, high]}``. A value's type is checked against its field here; its bounds and the
rules between fields are the profile's validation, point by point: a point that makes
no hardware sense becomes a row with the reason, not an error.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from simulator.hwconfig import Field
from simulator.studyparts import sha256_text
from simulator.sweep.columns import KIND_DTYPES
from simulator.sweep.generators import (
    MODES,
    Block,
    combine,
)
from simulator.sweep.keys import (
    PRUNED_VARIANTS,
    WORKLOAD_FIELDS,
)

MAX_POINTS = 1_000_000
"""Most points a spec may expand to (checked before any is made)."""
MAX_VALUES = 100_000
"""Most values one parameter may list or generate."""
METRICS = ("speedup", "energy_ratio")

_TEXT = {"type": "string", "minLength": 1}
_INT = {"type": "integer"}


def _object(properties: dict, required: tuple = (), **kw: Any) -> dict:
    return {
        "type": "object",
        "additionalProperties": False,
        "properties": properties,
        "required": list(required),
        **kw,
    }


def _kind_schema(f: Field) -> dict:
    if f.kind == "enum":
        return {"enum": list(f.choices), "description": f.description}
    kind = {"number": "number", "integer": "integer", "boolean": "boolean"}.get(f.kind, "string")
    return {"type": kind, "description": f.description}


_BLOCK = _object(
    {
        "mode": {"enum": list(MODES), "description": "how the parameters combine (default grid)"},
        "parameters": {
            "type": "object",
            "minProperties": 1,
            "description": "key path -> values (a value, a list, or values/range/log_range/"
            "uniform/log_uniform)",
        },
        "samples": {**_INT, "minimum": 1, "maximum": MAX_POINTS, "description": "random, lhs"},
        "seed": {**_INT, "minimum": 0, "description": "random, lhs (default 0)"},
    },
    ("parameters",),
)

SWEEP_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "prunesim sweep spec",
    **_object(
        {
            "name": {**_TEXT, "description": "what the sweep is"},
            "description": {"type": "string"},
            "network": {**_TEXT, "description": WORKLOAD_FIELDS["network"].description},
            "platform": {**_TEXT, "description": WORKLOAD_FIELDS["platform"].description},
            "checkpoint": {
                **_TEXT,
                "description": "a pruned checkpoint (relative to the spec) mapped onto the "
                "network: its masks are the variant their structure names at every point",
            },
            "variants": {
                "type": "array",
                "items": {"enum": ["dense", *PRUNED_VARIANTS]},
                "minItems": 1,
                "uniqueItems": True,
                "description": "pruned variants run beside dense at every point (default: sparse)",
            },
            "pruning": _object(
                {
                    key.split(".", 1)[1]: _kind_schema(f)
                    for key, f in WORKLOAD_FIELDS.items()
                    if key.startswith("pruning.")
                }
            ),
            "settings": _object(
                {
                    key.split(".", 1)[1]: _kind_schema(f)
                    for key, f in WORKLOAD_FIELDS.items()
                    if key.startswith("settings.")
                }
            ),
            "sweep": {"oneOf": [_BLOCK, {"type": "array", "items": _BLOCK, "minItems": 1}]},
            "plots": _object(
                {
                    "pareto": _object(
                        {"x": _TEXT, "y": _TEXT, "variant": _TEXT},
                        ("x", "y"),
                        description="the points no other beats on both x and y (both minimised)",
                    ),
                    "breakeven": _object(
                        {
                            "x": _TEXT,
                            "y": _TEXT,
                            "variant": _TEXT,
                            "metric": {"enum": list(METRICS)},
                        },
                        ("x", "y"),
                        description="where the variant breaks even with dense over two parameters",
                    ),
                }
            ),
        },
        ("sweep",),
    ),
}
"""JSON Schema of a sweep spec's structure (``prunesim schema sweep``); parameters'
key paths and values are checked in code, against the profile's declared fields."""


@dataclass(frozen=True, kw_only=True)
class Point:
    """One configuration: ``values`` of every parameter (key path, value) in the
    spec's parameter order; ``key`` its hash; ``index`` its place in the expansion."""

    index: int
    key: str
    values: tuple[tuple[str, Any], ...]

    def get(self, path: str, default: Any = None) -> Any:
        return dict(self.values).get(path, default)


@dataclass(frozen=True, kw_only=True)
class Plot:
    """A figure the spec asks for: ``kind`` pareto or breakeven, axes, the variant and
    (breakeven) the metric that breaks even at 1."""

    kind: str
    x: str
    y: str
    variant: str
    metric: str = "speedup"


@dataclass(frozen=True, kw_only=True)
class SweepSpec:
    """A validated sweep spec (see the module docstring).

    ``fixed``: the parameters every point shares (key path, value); ``blocks``: the
    swept ones; ``kinds``: every parameter's field kind (``number``, ``integer``,
    ``string``, ``enum``, ``boolean``); ``inputs``: a digest of every network and base
    profile named (their contents, so that editing a file changes the points' hashes);
    ``files``: names of networks and profiles as written -> what to load (files
    relative to the spec); ``checkpoint_variant``: the variant whose masks come from
    the spec's checkpoint (``files``' ``checkpoint``), empty without one."""

    source: str
    name: str
    variants: tuple[str, ...]
    fixed: tuple[tuple[str, Any], ...]
    blocks: tuple[Block, ...]
    kinds: tuple[tuple[str, str], ...]
    inputs: tuple[tuple[str, str], ...]
    files: tuple[tuple[str, str], ...]
    plots: tuple[Plot, ...] = ()
    checkpoint_variant: str = ""

    @property
    def parameters(self) -> tuple[str, ...]:
        """Every parameter's key path: the fixed ones, then the swept ones."""
        return tuple(p for p, _ in self.kinds)

    @property
    def swept(self) -> tuple[str, ...]:
        return tuple(p for b in self.blocks for p, _ in b.parameters)

    @property
    def all_variants(self) -> tuple[str, ...]:
        """The variants of every point's rows: dense, then the pruned ones."""
        return ("dense", *self.variants)

    def count(self) -> int:
        return math.prod(b.count() for b in self.blocks)

    def dtypes(self) -> dict[str, str]:
        """Each parameter column's pandas dtype."""
        return {p: KIND_DTYPES[k] for p, k in self.kinds}

    def digest(self) -> str:
        """A hash of what the spec asks for (its canonical form and the inputs'
        contents; not its file name or comments)."""
        doc = {
            "variants": self.variants,
            "fixed": self.fixed,
            "blocks": [
                {"mode": b.mode, "samples": b.samples, "seed": b.seed, "parameters": b.parameters}
                for b in self.blocks
            ],
            "inputs": self.inputs,
        }
        return sha256_text(json.dumps(doc, sort_keys=True, default=repr))

    def points(self, limit: int | None = None) -> list[Point]:
        """The points in expansion order (the first ``limit`` of them where given)."""
        kinds = dict(self.kinds)
        inputs = dict(self.inputs)
        fixed = dict(self.fixed)
        swept = self.swept
        combos = combine(list(self.blocks))
        if limit is not None:
            combos = combos[:limit]
        order = [p for p in self.parameters if p in fixed or p in swept]
        out = []
        for i, combo in enumerate(combos):
            values = {**fixed, **dict(zip(swept, combo, strict=True))}
            values = {p: canonical(kinds[p], values[p]) for p in order}
            used = {k: inputs[f"{k} {values[k]}"] for k in ("network", "platform")}
            if "checkpoint" in inputs:
                used["checkpoint"] = inputs["checkpoint"]
            key = sha256_text(json.dumps({"values": values, "inputs": used}, sort_keys=True))[:16]
            out.append(Point(index=i, key=key, values=tuple(values.items())))
        return out

    @property
    def checkpoint_file(self) -> str:
        """The checkpoint file whose masks the spec runs ("" without one)."""
        return dict(self.files).get("checkpoint", "")

    def file_of(self, kind: str, name: str) -> str:
        """What to load for a network or platform named ``name`` in the spec."""
        return dict(self.files)[f"{kind} {name}"]


def canonical(kind: str, value: Any) -> Any:
    """A parameter value as rows and hashes hold it: numbers of a number field as
    float (``1e9`` and ``1000000000`` are one value), integers as int."""
    if kind == "number":
        return float(value)
    if kind == "integer":
        return int(value)
    return value
