"""Key paths of a sweep: what each swept parameter names, and how a value is set.

A parameter is a key path. ``network`` and ``platform`` name the workload's network
and the base hardware profile; ``pruning.*`` and ``settings.*`` the pruning level and
the simulator settings (:data:`WORKLOAD_FIELDS`); any other path is a field of the
hardware profile, checked against its declared fields (:mod:`simulator.hwconfig.fields`):
``compute.pes``, ``clock_hz``, ``energy.mac_pj.int8``. In a list of named items a
segment is an item's name (``memory.dram.bandwidth_bytes_per_s``,
``roofline.kernels.sputnik.entry_ns``) or its position (``memory.0.size_bytes``).
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from typing import Any

from simulator.errors import shown
from simulator.hwconfig import TOP_FIELDS, Field
from simulator.settings import VARIANTS
from simulator.yamlio import did_you_mean

STRUCTURES = ("filter", "channel", "column")
"""Kinds of structured pruning the structured variant may take (as ``prunesim estimate``)."""
LEVELS = ("rate", "density", "sparsity")
"""Ways to give the pruning level; a point has exactly one."""
LEVELS_PATHS = tuple(f"pruning.{k}" for k in LEVELS)
PRUNED_VARIANTS = tuple(v for v in VARIANTS if v != "dense")


def _f(kind: str, description: str, default: Any = None, **kw: Any) -> Field:
    return Field(kind=kind, description=description, default=default, **kw)


WORKLOAD_FIELDS: dict[str, Field] = {
    "network": _f("string", "built-in network or model file (relative to the spec)"),
    "platform": _f("string", "base hardware profile: built-in name or file (relative to the spec)"),
    "pruning.rate": _f("number", "pruning rate of the pruned variants: 8 keeps 1/8", 8.0),
    "pruning.density": _f("number", "kept fraction, in (0, 1] (instead of rate)"),
    "pruning.sparsity": _f("number", "removed fraction, in [0, 1) (instead of rate)"),
    "pruning.structure": _f(
        "enum", "kind of pruning of the structured variant", "filter", choices=STRUCTURES
    ),
    "pruning.seed": _f("integer", "seed of the generated masks", 0),
    "pruning.cascade": _f("boolean", "filter removals cascade through the network's graph", True),
    "settings.weight_bits": _f("integer", "bits per stored weight value", 8),
    "settings.index_bits": _f("integer", "bits per relative index on sparse engines", 4),
    "settings.activation_bits": _f("integer", "bits per activation (absent: the profile's)"),
    "settings.activation_density": _f(
        "number", "kept fraction of input activations (absent: the profile's)"
    ),
    "settings.seed": _f("integer", "seed of anything drawn at simulation (activation masks)", 0),
    "settings.kv_bits": _f(
        "integer", "bits per KV-cache element of a transformer (absent: the activation bits)"
    ),
    "settings.group_size": _f(
        "integer",
        "quantization group: that many inputs of a row share a scale, streamed with the "
        "weights on CPU and GPU rooflines (absent or 0: none)",
    ),
    "settings.scale_bits": _f("integer", "bits per group scale", 16),
    "settings.zero_point_bits": _f("integer", "bits per group zero point (0: symmetric)", 0),
}
"""Parameters of the workload and the simulation, beside the hardware fields."""

SCALAR_KINDS = ("number", "integer", "string", "boolean", "enum")


def is_workload(path: str) -> bool:
    return path in WORKLOAD_FIELDS


def hardware_field(path: str, profile: Mapping[str, Any]) -> tuple[Field | None, str]:
    """The declared field a hardware key path names in ``profile`` (resolved data), or
    ``(None, why)``."""
    field = Field(kind="section", description="", fields=TOP_FIELDS)
    node: Any = profile
    done: list[str] = []
    for part in path.split("."):
        where = ".".join(done) or "the profile"
        if field.kind == "section":
            known = dict(field.fields or {})
            known.pop("extends", None)
            if part not in known:
                hint = did_you_mean(part, known) if part else ""
                return None, f"{shown(where)} has no key {shown(part, 40)}{hint}"
            field = known[part]
            node = node.get(part) if isinstance(node, dict) else None
        elif field.kind == "table":
            if part not in field.keys:
                return None, (
                    f"{shown(where)} has no key {shown(part, 40)} (known: {', '.join(field.keys)})"
                )
            field = field.item
            node = node.get(part) if isinstance(node, dict) else None
        elif field.kind == "list":
            items = node if isinstance(node, list) else []
            named = [
                i for i, it in enumerate(items) if isinstance(it, dict) and it.get("name") == part
            ]
            if named:
                node = items[named[0]]
            elif part.isdigit() and int(part) < len(items):
                node = items[int(part)]
            else:
                names = [str(it.get("name")) for it in items if isinstance(it, dict)]
                return None, (
                    f"{shown(where)} has no item named {shown(part, 40)} "
                    f"(names: {', '.join(shown(n, 40) for n in names) or 'none'})"
                )
            field = field.item
        else:
            return None, f"{shown(where)} is a single value; it has no key {shown(part, 40)}"
        done.append(part)
    if field.kind not in SCALAR_KINDS:
        return None, f"{shown(path)} is a {field.kind}; name one of its keys"
    return field, ""


def value_problem(field: Field, value: Any) -> str | None:
    """Why ``value`` cannot be a value of ``field`` (its type, not its bounds), or None:
    bounds and the rules between fields are the profile's validation, point by point."""
    kind = field.kind
    if kind == "number" and (isinstance(value, bool) or not isinstance(value, numbers.Real)):
        return f"expected a number, got {shown(value)}"
    if kind == "integer" and (isinstance(value, bool) or not isinstance(value, numbers.Integral)):
        return f"expected an integer, got {shown(value)}"
    if kind == "string" and not isinstance(value, str):
        return f"expected a text, got {shown(value)}"
    if kind == "boolean" and not isinstance(value, bool):
        return f"expected true or false, got {shown(value)}"
    if kind == "enum" and value not in field.choices:
        return f"expected one of {', '.join(field.choices)}, got {shown(value)}"
    return None


def set_path(profile: dict, path: str, value: Any) -> None:
    """Set a hardware key path in ``profile`` (resolved data, changed in place),
    making the sections and tables on the way; list items must exist (checked by
    :func:`hardware_field`)."""
    node: Any = profile
    parts = path.split(".")
    for part in parts[:-1]:
        if isinstance(node, list):
            named = [it for it in node if isinstance(it, dict) and it.get("name") == part]
            node = named[0] if named else node[int(part)]
        else:
            if not isinstance(node.get(part), dict | list):
                node[part] = {}
            node = node[part]
    node[parts[-1]] = value
