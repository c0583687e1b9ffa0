"""Hardware profiles: the schema of ``hwconfigs/*.yaml``, loading with inheritance,
and the frozen :class:`Platform` the simulator reads.

A profile names its class (``fpga | asic | cpu | gpu``) and execution model
(``systolic | eie | roofline``); code picks rules by those, never by a profile's
name. ``extends: other`` inherits another profile (a built-in name or a path
relative to the file) and overrides fields; mappings merge key by key, lists and
scalars replace. Unknown keys are errors; every problem is reported at once with
its key path. Units are in the key names.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema

from simulator.errors import ConfigError
from simulator.paths import data_dir
from simulator.yamlio import read_yaml

_NUM = {"type": "number", "exclusiveMinimum": 0}
_NUM0 = {"type": "number", "minimum": 0}
_INT = {"type": "integer", "minimum": 1}
_FRAC = {"type": "number", "exclusiveMinimum": 0, "maximum": 1}
_PRECISIONS = ["int4", "int8", "int16", "int32", "fp16", "bf16", "fp32"]
_BY_PRECISION = {
    "type": "object",
    "additionalProperties": False,
    "properties": {p: _NUM for p in _PRECISIONS},
    "minProperties": 1,
}
_RESOURCES = {
    "type": "object",
    "additionalProperties": False,
    "properties": {k: _NUM0 for k in ("dsp", "lut", "ff", "bram36", "uram")},
    "minProperties": 1,
}


def _obj(properties: dict[str, Any], required: tuple[str, ...] = (), **extra: Any) -> dict:
    return {
        "type": "object",
        "additionalProperties": False,
        "properties": properties,
        "required": list(required),
        **extra,
    }


MEMORY_SCHEMA = _obj(
    {
        "name": {"type": "string", "minLength": 1},
        "kind": {"enum": ["dram", "sram", "regfile"]},
        "size_bytes": _NUM,
        "per_pe": {"type": "boolean", "description": "size is per PE (PE-local storage)"},
        "bandwidth_bytes_per_s": _NUM,
        "bandwidth_bits_per_cycle": _NUM,
        "read_pj_per_bit": _NUM0,
        "write_pj_per_bit": _NUM0,
    },
    ("name", "kind", "read_pj_per_bit", "write_pj_per_bit"),
)

HWCONFIG_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "prunesim hardware profile",
    **_obj(
        {
            "extends": {"type": "string", "description": "profile to inherit from"},
            "name": {"type": "string", "minLength": 1},
            "description": {"type": "string"},
            "source": {"type": "string"},
            "class": {"enum": ["fpga", "asic", "cpu", "gpu"]},
            "execution": {"enum": ["systolic", "eie", "roofline"]},
            "technology_nm": _NUM,
            "clock_hz": _NUM,
            "weight_bits": {"type": "array", "items": _INT, "minItems": 1},
            "activation_bits": _INT,
            "compute": _obj(
                {
                    "pes": _INT,
                    "macs_per_pe_per_cycle": _INT,
                    "array_rows": _INT,
                    "array_cols": _INT,
                    "dataflow": {"enum": ["ws", "os", "is"]},
                    "zero_gating": {"type": "boolean"},
                    "fifo_depth": _INT,
                    "activation_density": _FRAC,
                    "nm_sparse": _obj({"n": _INT, "m": _INT, "speedup": _NUM}, ("n", "m")),
                }
            ),
            "memory": {"type": "array", "items": MEMORY_SCHEMA, "minItems": 1},
            "energy": _obj(
                {
                    "mac_pj": _BY_PRECISION,
                    "index_decode_pj": _NUM0,
                    "static_w": _NUM0,
                },
                ("mac_pj",),
            ),
            "fpga": _obj(
                {
                    "device": _RESOURCES,
                    "usable_fraction": _FRAC,
                    "dense_pe": _RESOURCES,
                    "sparse_pe": _RESOURCES,
                },
                ("device", "dense_pe", "sparse_pe"),
            ),
            "roofline": _obj(
                {
                    "peak_macs_per_s": _BY_PRECISION,
                    "cores": _INT,
                    "simd_bits": _INT,
                    "fma_units_per_core": _INT,
                    "dense_efficiency": _FRAC,
                    "sparse_efficiency": _FRAC,
                    "sparse_row_overhead_ns": _NUM0,
                    "sparse_entry_overhead_ns": _NUM0,
                    "layer_overhead_ns": _NUM0,
                    "sparse_index_bits": _INT,
                    "sparse_pointer_bits": _INT,
                },
                ("dense_efficiency", "sparse_efficiency"),
            ),
        },
        (
            "name",
            "class",
            "execution",
            "clock_hz",
            "weight_bits",
            "activation_bits",
            "compute",
            "memory",
            "energy",
        ),
    ),
}
"""JSON Schema of a hardware profile (``prunesim schema hwconfig`` prints it)."""


@dataclass(frozen=True, kw_only=True)
class MemoryLevel:
    """One memory level. ``size_bytes`` is per PE when ``per_pe``; bandwidth is the
    whole level's (per PE times PEs for PE-local storage)."""

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
    pes: int
    macs_per_pe_per_cycle: int = 1
    array_rows: int = 0
    array_cols: int = 0
    dataflow: str = "ws"
    zero_gating: bool = False
    fifo_depth: int = 8
    activation_density: float = 1.0
    nm_sparse: NMSparse | None = None


@dataclass(frozen=True, kw_only=True)
class Fpga:
    """Device resources and per-PE costs (``dsp, lut, ff, bram36, uram``)."""

    device: Mapping[str, float]
    usable_fraction: float
    dense_pe: Mapping[str, float]
    sparse_pe: Mapping[str, float]

    def pes_that_fit(self, sparse: bool) -> int:
        """PEs of one kind that fit in the usable part of the device."""
        per_pe = self.sparse_pe if sparse else self.dense_pe
        counts = [
            math.floor(self.device.get(r, 0.0) * self.usable_fraction / cost)
            for r, cost in per_pe.items()
            if cost > 0
        ]
        return max(0, min(counts)) if counts else 0

    def binding_resource(self, sparse: bool) -> str:
        per_pe = self.sparse_pe if sparse else self.dense_pe
        return min(
            (r for r, c in per_pe.items() if c > 0),
            key=lambda r: self.device.get(r, 0.0) / per_pe[r],
        )


@dataclass(frozen=True, kw_only=True)
class Roofline:
    """CPU/GPU throughput: peak MACs per second by precision and achieved fractions."""

    peak_macs_per_s: Mapping[str, float]
    dense_efficiency: float
    sparse_efficiency: float
    sparse_row_overhead_ns: float = 0.0
    sparse_entry_overhead_ns: float = 0.0
    sparse_index_bits: int = 32
    sparse_pointer_bits: int = 32
    layer_overhead_ns: float = 0.0

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
    index_decode_pj: float = 0.0
    static_w: float = 0.0
    technology_nm: float | None = None
    fpga: Fpga | None = None
    roofline: Roofline | None = None
    description: str = ""
    source: str = ""
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
        raise ConfigError(str(path), f"extends: expected a profile name or path, got {parent!r}")
    builtins = builtin_platforms()
    ppath = builtins.get(parent) or (path.parent / parent)
    if not ppath.is_file():
        raise ConfigError(
            str(path), f"extends: no profile {parent!r} (built-ins: {', '.join(builtins)})"
        )
    if str(ppath.resolve()) in chain:
        raise ConfigError(str(path), f"extends: circular inheritance through {parent!r}")
    base = _resolve(ppath, (*chain, str(path.resolve())))
    merged = _merge(base, {k: v for k, v in data.items() if k != "extends"})
    merged.pop("extends", None)
    return merged


def _path(parts: Any) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(top level)"


def _non_finite(data: Any, where: tuple = ()) -> list[str]:
    """Key paths of NaN or infinite numbers (JSON Schema bounds let NaN through)."""
    if isinstance(data, dict):
        return [p for k, v in data.items() for p in _non_finite(v, (*where, k))]
    if isinstance(data, list):
        return [p for i, v in enumerate(data) for p in _non_finite(v, (*where, i))]
    if isinstance(data, float) and not math.isfinite(data):
        return [f"{_path(where)}: expected a finite number, got {data}"]
    return []


def _problems(data: Any) -> list[str]:
    problems = _non_finite(data)
    validator = jsonschema.Draft202012Validator(HWCONFIG_SCHEMA)
    for err in sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.path))):
        where = _path(err.absolute_path)
        if err.validator == "additionalProperties":
            known = ", ".join(sorted(err.schema.get("properties", {})))
            extra = sorted(set(err.instance) - set(err.schema.get("properties", {})))
            problems.append(f"{where}: unknown key(s) {', '.join(extra)} (known: {known})")
        else:
            problems.append(f"{where}: {err.message}")
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
        f = data["fpga"]
        fpga = Fpga(
            device=f["device"],
            usable_fraction=float(f.get("usable_fraction", 1.0)),
            dense_pe=f["dense_pe"],
            sparse_pe=f["sparse_pe"],
        )
        for kind, sparse in (("dense_pe", False), ("sparse_pe", True)):
            if fpga.pes_that_fit(sparse) < 1:
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
        if "bandwidth_bytes_per_s" not in m and "bandwidth_bits_per_cycle" not in m:
            problems.append(
                f"memory[{i}] ({m['name']}): give bandwidth_bytes_per_s or bandwidth_bits_per_cycle"
            )
        if m["kind"] != "dram" and "size_bytes" not in m:
            problems.append(f"memory[{i}] ({m['name']}).size_bytes: required for {m['kind']}")
    names = [m["name"] for m in data["memory"]]
    for n in {n for n in names if names.count(n) > 1}:
        problems.append(f"memory: duplicate level name {n!r}")
    return problems


def _platform(data: dict, path: str) -> Platform:
    c = data["compute"]
    clock = float(data["clock_hz"])
    fpga = None
    if "fpga" in data:
        f = data["fpga"]
        fpga = Fpga(
            device=dict(f["device"]),
            usable_fraction=float(f.get("usable_fraction", 1.0)),
            dense_pe=dict(f["dense_pe"]),
            sparse_pe=dict(f["sparse_pe"]),
        )
    # an FPGA's dense PEs form the largest square array that fits
    pes = c.get("pes") or (math.isqrt(fpga.pes_that_fit(sparse=False)) ** 2 if fpga else 1)
    nm = c.get("nm_sparse")
    compute = Compute(
        pes=int(pes),
        macs_per_pe_per_cycle=int(c.get("macs_per_pe_per_cycle", 1)),
        array_rows=int(c.get("array_rows", 0)),
        array_cols=int(c.get("array_cols", 0)),
        dataflow=c.get("dataflow", "ws"),
        zero_gating=bool(c.get("zero_gating", False)),
        fifo_depth=int(c.get("fifo_depth", 8)),
        activation_density=float(c.get("activation_density", 1.0)),
        nm_sparse=NMSparse(
            n=nm["n"], m=nm["m"], speedup=float(nm.get("speedup", nm["m"] / nm["n"]))
        )
        if nm
        else None,
    )
    memory = []
    for m in data["memory"]:
        bw = m.get("bandwidth_bytes_per_s")
        if bw is None:
            per = float(m["bandwidth_bits_per_cycle"]) / 8 * clock
            bw = per * (compute.pes if m.get("per_pe") else 1)
        memory.append(
            MemoryLevel(
                name=m["name"],
                kind=m["kind"],
                size_bytes=float(m.get("size_bytes", math.inf)),
                per_pe=bool(m.get("per_pe", False)),
                bandwidth_bytes_per_s=float(bw),
                read_pj_per_bit=float(m["read_pj_per_bit"]),
                write_pj_per_bit=float(m["write_pj_per_bit"]),
            )
        )
    roofline = None
    if "roofline" in data:
        r = data["roofline"]
        peak = dict(r.get("peak_macs_per_s", {}))
        if not peak:  # cores x FMA units x SIMD lanes x clock, per precision
            for p, bits in (("fp32", 32), ("fp16", 16), ("int16", 16), ("int8", 8)):
                peak[p] = r["cores"] * r["fma_units_per_core"] * (r["simd_bits"] // bits) * clock
        roofline = Roofline(
            peak_macs_per_s=peak,
            dense_efficiency=float(r["dense_efficiency"]),
            sparse_efficiency=float(r["sparse_efficiency"]),
            sparse_row_overhead_ns=float(r.get("sparse_row_overhead_ns", 0.0)),
            sparse_entry_overhead_ns=float(r.get("sparse_entry_overhead_ns", 0.0)),
            sparse_index_bits=int(r.get("sparse_index_bits", 32)),
            sparse_pointer_bits=int(r.get("sparse_pointer_bits", 32)),
            layer_overhead_ns=float(r.get("layer_overhead_ns", 0.0)),
        )
    e = data["energy"]
    return Platform(
        name=data["name"],
        platform_class=data["class"],
        execution=data["execution"],
        clock_hz=clock,
        weight_bits=tuple(data["weight_bits"]),
        activation_bits=int(data["activation_bits"]),
        compute=compute,
        memory=tuple(memory),
        mac_pj=dict(e["mac_pj"]),
        index_decode_pj=float(e.get("index_decode_pj", 0.0)),
        static_w=float(e.get("static_w", 0.0)),
        technology_nm=data.get("technology_nm"),
        fpga=fpga,
        roofline=roofline,
        description=data.get("description", ""),
        source=data.get("source", ""),
        path=path,
        raw=data,
    )


def platform_from_dict(data: Any, source: str = "profile") -> Platform:
    """Validate a profile mapping (inheritance already resolved) and build it."""
    problems = _problems(data)
    if problems:
        raise ConfigError(source, problems)
    return _platform(data, source)


def load_platform(name_or_path: str | Path) -> Platform:
    """Load a built-in profile by name (``eie``) or a profile file by path."""
    text = str(name_or_path)
    builtins = builtin_platforms()
    path = builtins.get(text) or Path(text)
    if not path.is_file():
        raise ConfigError(
            text, f"no such hardware profile file or built-in (built-ins: {', '.join(builtins)})"
        )
    return platform_from_dict(_resolve(path), str(path))
