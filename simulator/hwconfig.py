"""Hardware profiles: the fields of ``hwconfigs/*.yaml``, loading with inheritance,
and the frozen :class:`Platform` the simulator reads.

A profile names its class (``fpga | asic | cpu | gpu``) and execution model
(``systolic | eie | roofline``); code picks rules by those, never by a profile's
name. ``extends: other`` inherits another profile (a built-in name or a path
relative to the file, at most :data:`MAX_EXTENDS_DEPTH` deep) and overrides fields;
mappings merge key by key, lists and scalars replace. Unknown keys are errors;
every problem is reported at once with its key path. Units are in the key names.

Each field is declared once, as a :class:`Field` in the section tables below
(:data:`TOP_FIELDS`, :data:`COMPUTE_FIELDS`, ...): its type, default, bounds, unit and
description. :data:`HWCONFIG_SCHEMA` (validation and ``prunesim schema hwconfig``),
the defaults filled in, and the construction of the frozen dataclasses all follow
from those tables; only the rules that tie fields together (an FPGA's PE count, a
bandwidth given per cycle, a roofline peak from cores and SIMD width) are code.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simulator.errors import ConfigError, shown
from simulator.paths import data_dir
from simulator.yamlio import (
    did_you_mean,
    find_builtin,
    read_yaml,
    schema_problems,
    value_problems,
)

MAX_EXTENDS_DEPTH = 32
"""Longest ``extends:`` chain followed."""
MAX_PES = 2**24
"""Most PEs a profile may have (given, or following from an FPGA's resources)."""

PRECISIONS = ("int4", "int8", "int16", "int32", "fp16", "bf16", "fp32")
"""Keys of per-precision tables (``mac_pj``, ``peak_macs_per_s``)."""
RESOURCES = ("dsp", "lut", "ff", "bram36", "uram")
"""FPGA resource kinds."""


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()
"""Default of a field that must be given."""


@dataclass(frozen=True, kw_only=True)
class Field:
    """One profile key, declared once.

    ``kind`` is ``number | integer | string | boolean | enum | table | list |
    section``. ``default`` is :data:`REQUIRED`, ``None`` (optional, absent stays
    ``None`` or is derived in code) or the value used when the key is absent.
    ``attr`` is the dataclass attribute it fills (the key itself when ``None``;
    ``""``: read by code only). Bounds are inclusive except ``exclusive_minimum``.
    ``keys`` and ``item`` describe a table's keys (values are ``item``) or a list's
    items; ``fields`` a section's keys.
    """

    kind: str
    description: str
    unit: str = ""
    default: Any = REQUIRED
    minimum: float | None = None
    exclusive_minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    keys: tuple[str, ...] = ()
    item: Field | None = None
    fields: Mapping[str, Field] | None = None
    attr: str | None = None


def _num(desc: str, unit: str = "", default: Any = REQUIRED, *, positive=True, **kw) -> Field:
    bound = {"exclusive_minimum": 0} if positive else {"minimum": 0}
    return Field(kind="number", description=desc, unit=unit, default=default, **bound, **kw)


def _int(desc: str, default: Any = REQUIRED, *, maximum: int, **kw) -> Field:
    return Field(
        kind="integer", description=desc, default=default, minimum=1, maximum=maximum, **kw
    )


def _frac(desc: str, default: Any = REQUIRED) -> Field:
    return Field(kind="number", description=desc, default=default, exclusive_minimum=0, maximum=1)


def _table(desc: str, keys: tuple[str, ...], value: Field, default: Any = REQUIRED) -> Field:
    return Field(kind="table", description=desc, keys=keys, item=value, default=default)


def _section(desc: str, fields: Mapping[str, Field], default: Any = REQUIRED, **kw) -> Field:
    return Field(kind="section", description=desc, fields=fields, default=default, **kw)


_PJ = _num("energy", "pJ", positive=False)
_BITS = _int("width", maximum=64)

MEMORY_FIELDS: dict[str, Field] = {
    "name": Field(kind="string", description="level name, unique in the profile"),
    "kind": Field(
        kind="enum", description="what the level is", choices=("dram", "sram", "regfile")
    ),
    "size_bytes": _num(
        "capacity (per PE when per_pe); required except for dram, absent: unbounded",
        "bytes",
        math.inf,
    ),
    "per_pe": Field(kind="boolean", description="size is per PE (PE-local storage)", default=False),
    "bandwidth_bytes_per_s": _num(
        "bandwidth of the whole level (give this or bandwidth_bits_per_cycle)", "bytes/s", None
    ),
    "bandwidth_bits_per_cycle": _num(
        "bandwidth per cycle, per PE when per_pe (gives bandwidth_bytes_per_s)",
        "bits/cycle",
        None,
        attr="",
    ),
    "read_pj_per_bit": _num("read energy", "pJ/bit", positive=False),
    "write_pj_per_bit": _num("write energy", "pJ/bit", positive=False),
}
"""Keys of one ``memory`` level."""

NM_FIELDS: dict[str, Field] = {
    "n": _int("kept weights per group (N of N:M)", maximum=1024),
    "m": _int("group size (M of N:M)", maximum=1024),
    "speedup": _num("math speed-up over dense (absent: m / n)", "x", None),
}
"""Keys of ``compute.nm_sparse``: an N:M sparse unit."""

COMPUTE_FIELDS: dict[str, Field] = {
    "pes": _int("processing elements (FPGA: follows from the fpga section)", None, maximum=MAX_PES),
    "macs_per_pe_per_cycle": _int("MACs one PE does per cycle", 1, maximum=2**20),
    "array_rows": _int("systolic array rows (absent: 0)", 0, maximum=2**16),
    "array_cols": _int("systolic array columns (absent: 0)", 0, maximum=2**16),
    "dataflow": Field(
        kind="enum",
        description="systolic dataflow: weight, output or input stationary",
        choices=("ws", "os", "is"),
        default="ws",
    ),
    "zero_gating": Field(
        kind="boolean", description="zero activations gate the MAC", default=False
    ),
    "fifo_depth": _int("per-PE activation queue depth (eie)", 8, maximum=2**20),
    "activation_density": _frac("fraction of nonzero activations", 1.0),
    "nm_sparse": _section("an N:M sparse unit", NM_FIELDS, None),
}
"""Keys of ``compute``."""

ENERGY_FIELDS: dict[str, Field] = {
    "mac_pj": _table("energy of one MAC by precision (pJ)", PRECISIONS, _num("energy", "pJ")),
    "index_decode_pj": _num("energy to decode one sparse index", "pJ", 0.0, positive=False),
    "static_w": _num("static power", "W", 0.0, positive=False),
}
"""Keys of ``energy`` (they become :class:`Platform` attributes)."""

_RESOURCE_COUNT = _num("resource count", "", positive=False)
FPGA_FIELDS: dict[str, Field] = {
    "device": _table("the device's resources", RESOURCES, _RESOURCE_COUNT),
    "usable_fraction": _frac("share of the device the PEs may use", 1.0),
    "dense_pe": _table("resources of one dense PE", RESOURCES, _RESOURCE_COUNT),
    "sparse_pe": _table("resources of one sparse PE", RESOURCES, _RESOURCE_COUNT),
}
"""Keys of ``fpga``."""

ROOFLINE_FIELDS: dict[str, Field] = {
    "peak_macs_per_s": _table(
        "peak MACs per second by precision (absent: from cores, simd_bits, fma_units)",
        PRECISIONS,
        _num("peak", "MAC/s"),
        None,
    ),
    "cores": _int("cores (gives peak_macs_per_s)", None, maximum=2**20, attr=""),
    "simd_bits": _int("SIMD width (gives peak_macs_per_s)", None, maximum=2**16, attr=""),
    "fma_units_per_core": _int(
        "FMA units per core (gives peak_macs_per_s)", None, maximum=2**10, attr=""
    ),
    "dense_efficiency": _frac("achieved fraction of the peak on dense GEMM"),
    "sparse_efficiency": _frac("achieved fraction of the same peak on sparse kernels"),
    "sparse_row_overhead_ns": _num("time per sparse row", "ns", 0.0, positive=False),
    "sparse_entry_overhead_ns": _num("time per stored sparse entry", "ns", 0.0, positive=False),
    "layer_overhead_ns": _num("fixed time per layer (launch)", "ns", 0.0, positive=False),
    "sparse_index_bits": _int("index width of the sparse kernel", 32, maximum=64),
    "sparse_pointer_bits": _int("pointer width of the sparse kernel", 32, maximum=64),
}
"""Keys of ``roofline``: CPU/GPU throughput."""

TOP_FIELDS: dict[str, Field] = {
    "extends": Field(
        kind="string",
        description="profile to inherit from (built-in or path)",
        default=None,
        attr="",
    ),
    "name": Field(kind="string", description="profile name"),
    "description": Field(kind="string", description="what the profile is", default=""),
    "source": Field(kind="string", description="where its numbers come from", default=""),
    "class": Field(
        kind="enum",
        description="platform class",
        choices=("fpga", "asic", "cpu", "gpu"),
        attr="platform_class",
    ),
    "execution": Field(
        kind="enum", description="execution model", choices=("systolic", "eie", "roofline")
    ),
    "technology_nm": _num("process node", "nm", None),
    "clock_hz": _num("clock", "Hz"),
    "weight_bits": Field(
        kind="list", description="weight widths the platform runs (bits)", item=_BITS
    ),
    "activation_bits": _int("activation width (bits)", maximum=64),
    "compute": _section("processing elements", COMPUTE_FIELDS, attr=""),
    "memory": Field(
        kind="list",
        description="memory levels, outermost first",
        item=_section("one memory level", MEMORY_FIELDS),
        attr="",
    ),
    "energy": _section("energy per action", ENERGY_FIELDS, attr=""),
    "fpga": _section("FPGA resources and per-PE costs", FPGA_FIELDS, None, attr=""),
    "roofline": _section("CPU/GPU roofline", ROOFLINE_FIELDS, None, attr=""),
}
"""Top-level keys of a hardware profile."""


def field_schema(f: Field) -> dict[str, Any]:
    """The JSON Schema of one declared field."""
    desc = f.description + (f" ({f.unit})" if f.unit else "")
    out: dict[str, Any] = {"description": desc}
    if f.kind in ("number", "integer"):
        out["type"] = f.kind
        for key, value in (
            ("minimum", f.minimum),
            ("exclusiveMinimum", f.exclusive_minimum),
            ("maximum", f.maximum),
        ):
            if value is not None:
                out[key] = value
    elif f.kind == "string":
        out.update(type="string", minLength=1)
    elif f.kind == "boolean":
        out["type"] = "boolean"
    elif f.kind == "enum":
        out["enum"] = list(f.choices)
    elif f.kind == "table":
        out.update(
            type="object",
            additionalProperties=False,
            properties={k: field_schema(f.item) for k in f.keys},
            minProperties=1,
        )
    elif f.kind == "list":
        out.update(type="array", items=field_schema(f.item), minItems=1)
    elif f.kind == "section":
        out.update(
            type="object",
            additionalProperties=False,
            properties={k: field_schema(v) for k, v in f.fields.items()},
            required=[k for k, v in f.fields.items() if v.default is REQUIRED],
        )
    if f.default not in (REQUIRED, None) and not (
        isinstance(f.default, float) and not math.isfinite(f.default)
    ):
        out["default"] = f.default
    return out


HWCONFIG_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "prunesim hardware profile",
    **field_schema(_section("a prunesim hardware profile", TOP_FIELDS)),
}
"""JSON Schema of a hardware profile (``prunesim schema hwconfig`` prints it)."""


def _default(fields: Mapping[str, Field], key: str) -> Any:
    return fields[key].default


def _convert(f: Field, value: Any) -> Any:
    """A validated value as the dataclass holds it (numbers as float, lists as tuples)."""
    if value is None:
        return None
    if f.kind == "number":
        return float(value)
    if f.kind == "integer":
        return int(value)
    if f.kind == "boolean":
        return bool(value)
    if f.kind == "table":
        return {k: _convert(f.item, v) for k, v in value.items()}
    if f.kind == "list":
        return tuple(_convert(f.item, v) for v in value)
    return value


def _attrs(fields: Mapping[str, Field], data: Mapping[str, Any], **derived: Any) -> dict:
    """Dataclass keyword arguments from a validated section: each field with an
    attribute, converted, its default where absent; ``derived`` values win."""
    out = {}
    for key, f in fields.items():
        name = key if f.attr is None else f.attr
        if name and name not in derived:
            out[name] = _convert(f, data.get(key, f.default))
    return {**out, **derived}


@dataclass(frozen=True, kw_only=True)
class MemoryLevel:
    """One memory level. ``size_bytes`` is per PE when ``per_pe``; bandwidth is the
    whole level's (per PE times PEs for PE-local storage). See :data:`MEMORY_FIELDS`."""

    name: str
    kind: str
    size_bytes: float
    per_pe: bool
    bandwidth_bytes_per_s: float
    read_pj_per_bit: float
    write_pj_per_bit: float


@dataclass(frozen=True, kw_only=True)
class NMSparse:
    """An N:M sparse unit: math on N of every M weights, ``speedup`` over dense."""

    n: int
    m: int
    speedup: float


@dataclass(frozen=True, kw_only=True)
class Compute:
    """Processing elements (see :data:`COMPUTE_FIELDS` for units and defaults)."""

    pes: int
    macs_per_pe_per_cycle: int = _default(COMPUTE_FIELDS, "macs_per_pe_per_cycle")
    array_rows: int = _default(COMPUTE_FIELDS, "array_rows")
    array_cols: int = _default(COMPUTE_FIELDS, "array_cols")
    dataflow: str = _default(COMPUTE_FIELDS, "dataflow")
    zero_gating: bool = _default(COMPUTE_FIELDS, "zero_gating")
    fifo_depth: int = _default(COMPUTE_FIELDS, "fifo_depth")
    activation_density: float = _default(COMPUTE_FIELDS, "activation_density")
    nm_sparse: NMSparse | None = None


@dataclass(frozen=True, kw_only=True)
class Fpga:
    """Device resources and per-PE costs (``dsp, lut, ff, bram36, uram``)."""

    device: Mapping[str, float]
    usable_fraction: float
    dense_pe: Mapping[str, float]
    sparse_pe: Mapping[str, float]

    def fit_ratio(self, sparse: bool) -> float:
        """PEs of one kind that fit, before rounding down (``inf`` when no resource
        is charged; may be huge for a tiny per-PE cost: validation bounds it)."""
        per_pe = self.sparse_pe if sparse else self.dense_pe
        ratios = [
            self.device.get(r, 0.0) * self.usable_fraction / cost
            for r, cost in per_pe.items()
            if cost > 0
        ]
        return min(ratios) if ratios else math.inf

    def pes_that_fit(self, sparse: bool) -> int:
        """PEs of one kind that fit in the usable part of the device (0 when the
        count is not finite; a validated profile has 1 to :data:`MAX_PES`)."""
        ratio = self.fit_ratio(sparse)
        return max(0, math.floor(ratio)) if math.isfinite(ratio) else 0

    def binding_resource(self, sparse: bool) -> str:
        per_pe = self.sparse_pe if sparse else self.dense_pe
        return min(
            (r for r, c in per_pe.items() if c > 0),
            key=lambda r: self.device.get(r, 0.0) / per_pe[r],
        )


@dataclass(frozen=True, kw_only=True)
class Roofline:
    """CPU/GPU throughput: peak MACs per second by precision and achieved fractions
    (see :data:`ROOFLINE_FIELDS`)."""

    peak_macs_per_s: Mapping[str, float]
    dense_efficiency: float
    sparse_efficiency: float
    sparse_row_overhead_ns: float = _default(ROOFLINE_FIELDS, "sparse_row_overhead_ns")
    sparse_entry_overhead_ns: float = _default(ROOFLINE_FIELDS, "sparse_entry_overhead_ns")
    sparse_index_bits: int = _default(ROOFLINE_FIELDS, "sparse_index_bits")
    sparse_pointer_bits: int = _default(ROOFLINE_FIELDS, "sparse_pointer_bits")
    layer_overhead_ns: float = _default(ROOFLINE_FIELDS, "layer_overhead_ns")

    def peak_for(self, weight_bits: int, activation_bits: int) -> float:
        """Peak MACs/s at the narrowest listed precision holding both operands."""
        return by_precision(self.peak_macs_per_s, max(weight_bits, activation_bits))


@dataclass(frozen=True, kw_only=True)
class Platform:
    """A validated hardware profile (see :data:`HWCONFIG_SCHEMA`)."""

    name: str
    platform_class: str
    execution: str
    clock_hz: float
    weight_bits: tuple[int, ...]
    activation_bits: int
    compute: Compute
    memory: tuple[MemoryLevel, ...]
    mac_pj: Mapping[str, float]
    index_decode_pj: float = _default(ENERGY_FIELDS, "index_decode_pj")
    static_w: float = _default(ENERGY_FIELDS, "static_w")
    technology_nm: float | None = None
    fpga: Fpga | None = None
    roofline: Roofline | None = None
    description: str = _default(TOP_FIELDS, "description")
    source: str = _default(TOP_FIELDS, "source")
    path: str = ""
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def level(self, kind: str) -> MemoryLevel | None:
        """The outermost memory level of a kind (``dram``, ``sram``, ``regfile``)."""
        return next((m for m in self.memory if m.kind == kind), None)

    def mac_pj_for(self, weight_bits: int, activation_bits: int) -> float:
        """Energy of one MAC at the narrowest listed precision holding both operands."""
        return by_precision(self.mac_pj, max(weight_bits, activation_bits))


def precision_bits(key: str) -> int:
    """``"int8"`` -> 8, ``"bf16"`` -> 16."""
    return int(key.lstrip("intfpb"))


def by_precision(table: Mapping[str, float], bits: int) -> float:
    """The entry of the narrowest precision with at least ``bits`` (integer formats
    before floating point at equal width); the widest one when none is wide enough."""
    ranked = sorted(table, key=lambda k: (precision_bits(k), not k.startswith("int")))
    for key in ranked:
        if precision_bits(key) >= bits:
            return table[key]
    return table[ranked[-1]]


def builtin_platforms() -> dict[str, Path]:
    """Built-in profile names (file stems) and their files."""
    return {p.stem: p for p in sorted(data_dir("hwconfigs").glob("*.yaml"))}


def _merge(base: Any, over: Any) -> Any:
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for k, v in over.items():
            out[k] = _merge(base[k], v) if k in base else copy.deepcopy(v)
        return out
    return copy.deepcopy(over)


def _resolve(path: Path, chain: tuple[str, ...] = ()) -> dict:
    data = read_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError(str(path), "expected a mapping of profile keys")
    parent = data.get("extends")
    if parent is None:
        return data
    if not isinstance(parent, str):
        raise ConfigError(
            str(path), f"extends: expected a profile name or path, got {shown(parent)}"
        )
    if len(chain) >= MAX_EXTENDS_DEPTH:
        raise ConfigError(
            str(chain[0]) if chain else str(path),
            f"extends: chain deeper than {MAX_EXTENDS_DEPTH} profiles (at {shown(str(path))})",
        )
    builtins = builtin_platforms()
    ppath = builtins.get(parent) or (path.parent / parent)
    if not ppath.exists():
        ppath = find_builtin(parent, builtins) or ppath
    if not ppath.exists():
        raise ConfigError(
            str(path),
            f"extends: no profile '{shown(parent)}'{did_you_mean(parent, builtins)} "
            f"(built-ins: {', '.join(builtins)})",
        )
    if str(ppath.resolve()) in chain:
        raise ConfigError(str(path), f"extends: circular inheritance through '{shown(parent)}'")
    base = _resolve(ppath, (*chain, str(path.resolve())))
    merged = _merge(base, {k: v for k, v in data.items() if k != "extends"})
    merged.pop("extends", None)
    return merged


def _problems(data: Any) -> list[str]:
    """Every problem of a resolved profile: the declared fields' (schema) first; the
    rules between fields only when those pass."""
    problems = value_problems(data) + schema_problems(data, HWCONFIG_SCHEMA)
    if problems:
        return problems
    c, ex = data["compute"], data["execution"]
    if ex == "systolic" and not ("array_rows" in c and "array_cols" in c):
        if data["class"] != "fpga":
            problems.append("compute: a systolic profile needs array_rows and array_cols")
    if "pes" not in c and data["class"] != "fpga":
        problems.append("compute.pes: required (for FPGAs it follows from the fpga section)")
    if data["class"] == "fpga" and "fpga" not in data:
        problems.append("fpga: an FPGA profile needs its device resources and PE costs")
    if "fpga" in data:
        fpga = Fpga(**_attrs(FPGA_FIELDS, data["fpga"]))
        for kind, sparse in (("dense_pe", False), ("sparse_pe", True)):
            ratio = fpga.fit_ratio(sparse)
            if not ratio < MAX_PES + 1:
                n = "an unbounded number of" if not math.isfinite(ratio) else f"{ratio:.3g}"
                problems.append(
                    f"fpga.{kind}: {n} PEs would fit, over {MAX_PES:,}; expected per-PE "
                    "costs above 0 for a resource the device has, and a finite budget"
                )
            elif ratio < 1:
                problems.append(f"fpga.{kind}: not one PE fits in the device's resources")
    if data["class"] in ("cpu", "gpu") and "roofline" not in data:
        problems.append(f"roofline: a {data['class']} profile needs its roofline section")
    if ex == "roofline" and "roofline" in data:
        r = data["roofline"]
        if "peak_macs_per_s" not in r and not all(
            k in r for k in ("cores", "simd_bits", "fma_units_per_core")
        ):
            problems.append(
                "roofline: give peak_macs_per_s, or cores, simd_bits and fma_units_per_core"
            )
    kinds = [m["kind"] for m in data["memory"]]
    if "dram" not in kinds and ex != "eie":
        problems.append("memory: needs a dram level (only eie keeps every weight on chip)")
    for i, m in enumerate(data["memory"]):
        name = shown(m["name"], 40)
        if "bandwidth_bytes_per_s" not in m and "bandwidth_bits_per_cycle" not in m:
            problems.append(
                f"memory[{i}] ({name}): give bandwidth_bytes_per_s or bandwidth_bits_per_cycle"
            )
        if m["kind"] != "dram" and "size_bytes" not in m:
            problems.append(f"memory[{i}] ({name}).size_bytes: required for {m['kind']}")
    names = [m["name"] for m in data["memory"]]
    for n in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"memory: duplicate level name '{shown(n, 40)}'")
    return problems


def _platform(data: dict, path: str) -> Platform:
    """Build the frozen platform from a validated profile: each section through
    :func:`_attrs`, plus the values that follow from several fields."""
    c = data["compute"]
    clock = float(data["clock_hz"])
    fpga = Fpga(**_attrs(FPGA_FIELDS, data["fpga"])) if "fpga" in data else None
    # an FPGA's dense PEs form the largest square array that fits
    pes = c.get("pes") or (math.isqrt(fpga.pes_that_fit(sparse=False)) ** 2 if fpga else 1)
    nm = c.get("nm_sparse")
    nm_sparse = (
        NMSparse(**_attrs(NM_FIELDS, nm, speedup=float(nm.get("speedup", nm["m"] / nm["n"]))))
        if nm
        else None
    )
    compute = Compute(**_attrs(COMPUTE_FIELDS, c, pes=int(pes), nm_sparse=nm_sparse))
    memory = []
    for m in data["memory"]:
        bw = m.get("bandwidth_bytes_per_s")
        if bw is None:
            per = float(m["bandwidth_bits_per_cycle"]) / 8 * clock
            bw = per * (compute.pes if m.get("per_pe") else 1)
        memory.append(MemoryLevel(**_attrs(MEMORY_FIELDS, m, bandwidth_bytes_per_s=float(bw))))
    roofline = None
    if "roofline" in data:
        r = data["roofline"]
        peak = dict(r.get("peak_macs_per_s", {}))
        if not peak:  # cores x FMA units x SIMD lanes x clock, per precision
            for p, bits in (("fp32", 32), ("fp16", 16), ("int16", 16), ("int8", 8)):
                peak[p] = r["cores"] * r["fma_units_per_core"] * (r["simd_bits"] // bits) * clock
        roofline = Roofline(**_attrs(ROOFLINE_FIELDS, r, peak_macs_per_s=peak))
    return Platform(
        **_attrs(
            TOP_FIELDS,
            data,
            compute=compute,
            memory=tuple(memory),
            fpga=fpga,
            roofline=roofline,
            path=path,
            raw=data,
        ),
        **_attrs(ENERGY_FIELDS, data["energy"]),
    )


def platform_from_dict(data: Any, source: str = "profile") -> Platform:
    """Validate a profile mapping (inheritance already resolved) and build it.

    Raises :class:`ConfigError` naming ``source`` and listing every problem."""
    problems = _problems(data)
    if problems:
        raise ConfigError(source, problems)
    return _platform(data, source)


def load_platform(name_or_path: str | Path) -> Platform:
    """Load a built-in profile by name (``eie``, any case: ``A100``) or a profile file
    by path. An unknown name is a :class:`ConfigError` with "did you mean"."""
    text = str(name_or_path)
    builtins = builtin_platforms()
    path = builtins.get(text) or Path(text)
    if not path.exists():
        path = find_builtin(text, builtins) or path
    if not path.exists():
        raise ConfigError(
            shown(text),
            f"no such hardware profile file or built-in{did_you_mean(text, builtins)} "
            f"(built-ins: {', '.join(builtins)})",
        )
    return platform_from_dict(_resolve(path), str(path))
