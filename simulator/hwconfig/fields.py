"""Hardware-profile fields, each declared once: type, default, bounds, unit, description.

The section tables (:data:`TOP_FIELDS`, :data:`COMPUTE_FIELDS`, ...) are the single
source from which :data:`HWCONFIG_SCHEMA` (validation and ``prunesim schema
hwconfig``), the defaults filled in, and the keyword arguments of the frozen
dataclasses in :mod:`simulator.hwconfig.platform` all follow.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

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


def _table(desc: str, keys: tuple[str, ...], value: Field, default: Any = REQUIRED, **kw) -> Field:
    return Field(kind="table", description=desc, keys=keys, item=value, default=default, **kw)


def _section(desc: str, fields: Mapping[str, Field], default: Any = REQUIRED, **kw) -> Field:
    return Field(kind="section", description=desc, fields=fields, default=default, **kw)


_PJ = _num("energy", "pJ", positive=False)
_BITS = _int("width", maximum=64)

MEMORY_FIELDS: dict[str, Field] = {
    "name": Field(kind="string", description="level name, unique in the profile"),
    "kind": Field(
        kind="enum",
        description=(
            "what the level is (network: data moved between neighbouring PEs, priced per "
            "bit, no capacity)"
        ),
        choices=("dram", "sram", "regfile", "network"),
    ),
    "size_bytes": _num(
        "capacity (per PE when per_pe); required except for dram and network, absent: unbounded",
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

ROW_STATIONARY_FIELDS: dict[str, Field] = {
    "filter_spad_entries": _int("filter scratch pad of one PE", maximum=2**20, attr="filter_spad"),
    "ifmap_spad_entries": _int("ifmap scratch pad of one PE", maximum=2**20, attr="ifmap_spad"),
    "psum_spad_entries": _int("partial-sum scratch pad of one PE", maximum=2**20, attr="psum_spad"),
    "rlc_run_bits": _int("run-length code: width of a zero run", 5, maximum=32, attr="run_bits"),
    "rlc_pairs_per_word": _int(
        "run-length code: (run, level) pairs per word", 3, maximum=64, attr="pairs_per_word"
    ),
    "rlc_word_bits": _int("run-length code: word width", 64, maximum=4096, attr="word_bits"),
    "filter_load_stalls": Field(
        kind="boolean",
        description="the array waits while a pass's filters load from DRAM into the scratch pads",
        default=True,
    ),
}
"""Keys of ``compute.row_stationary``: scratch pads (entries of the activation width)
and the run-length code of activations in DRAM."""

SCNN_FIELDS: dict[str, Field] = {
    "pe_rows": _int("rows of the PE grid the input plane is tiled over", 8, maximum=2**12),
    "pe_cols": _int("columns of the PE grid", 8, maximum=2**12),
    "weight_vector": _int("F: nonzero weights per multiplier-array row", 4, maximum=256),
    "activation_vector": _int("I: nonzero activations per multiplier-array column", 4, maximum=256),
    "accumulator_banks": _int(
        "accumulator banks per PE behind the scatter crossbar", 32, maximum=2**12
    ),
    "bank_entries": _int("partial sums per accumulator bank", 32, maximum=2**20),
    "run_bits": _int("zero-run index of the compressed weights and activations", 4, maximum=32),
    "psum_bits": _int("partial-sum (accumulator) width", 24, maximum=64),
}
"""Keys of ``compute.scnn``: the SCNN-style array (defaults: SCNN's own design)."""

SPARSE_ENGINE_FIELDS: dict[str, Field] = {
    "conv": Field(
        kind="enum",
        description="engine for convolutions (absent: the platform's default sparse engine)",
        choices=("eie", "scnn"),
        default=None,
    ),
    "fc": Field(
        kind="enum",
        description=(
            "engine for fully connected and matrix-product layers (absent: the "
            "platform's default sparse engine)"
        ),
        choices=("eie", "scnn"),
        default=None,
    ),
}
"""Keys of ``compute.sparse_engines``: the sparse engine per layer kind."""

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
    "weights_resident": Field(
        kind="boolean",
        description=(
            "eie: the stored weights are loaded once into the PEs' weight SRAM (the first "
            "per-PE sram level) and stay there across inferences, filled in network order; "
            "what does not fit streams from DRAM on every pass (false: every layer streams "
            "its weights from DRAM, as FPGA-hosted engines do)"
        ),
        default=False,
    ),
    "activation_density": _frac("fraction of nonzero activations", 1.0),
    "nm_sparse": _section("an N:M sparse unit", NM_FIELDS, None),
    "row_stationary": _section(
        "execution rowstationary: per-PE scratch pads and the activation code",
        ROW_STATIONARY_FIELDS,
        None,
    ),
    "scnn": _section(
        "an SCNN-style sparse CNN array (execution scnn, or a sparse engine named scnn)",
        SCNN_FIELDS,
        None,
        attr="",
    ),
    "sparse_engines": _section(
        "the engine that runs the sparse variant, per layer kind (FPGA and ASIC)",
        SPARSE_ENGINE_FIELDS,
        None,
        attr="",
    ),
    "dram_model": Field(
        kind="enum",
        description=(
            "off-chip traffic of a systolic array: prunesim's own model, SCALE-Sim v3's "
            "(its double-buffered SRAMs in CALC bandwidth mode, counted in one-byte words; "
            "cycles are a computed requirement, DRAM never stalls), or a loop-nest mapping "
            "searched per layer (simulator/mapping.py)"
        ),
        choices=("prunesim", "scalesim", "mapped"),
        default="prunesim",
        attr="",
    ),
    "mapping_objective": Field(
        kind="enum",
        description=(
            "dram_model mapped: what the loop-nest search minimises: latency (the largest "
            "of compute, DRAM and buffer-port time), DRAM bits, or energy of DRAM and "
            "buffer traffic; ties go to less DRAM, then less buffer traffic"
        ),
        choices=("dram", "energy", "latency"),
        default="latency",
        attr="",
    ),
    "psum_bits": _int(
        "dram_model mapped: width of a partial sum held in a buffer or spilled",
        32,
        maximum=256,
        attr="",
    ),
    "scalesim_sram_bytes": _table(
        "SCALE-Sim mode, or mapped: the ifmap, filter and ofmap SRAMs (absent: the sram "
        "level in thirds for SCALE-Sim, one shared buffer for mapped)",
        ("ifmap", "filter", "ofmap"),
        _num("SRAM size", "bytes"),
        None,
        attr="",
    ),
}
"""Keys of ``compute``."""

ENERGY_FIELDS: dict[str, Field] = {
    "mac_pj": _table("energy of one MAC by precision (pJ)", PRECISIONS, _num("energy", "pJ")),
    "index_decode_pj": _num("energy to decode one sparse index", "pJ", 0.0, positive=False),
    "pointer_read_pj": _num(
        "eie: energy of one column-pointer read (two per nonzero activation per PE, from a "
        "pointer SRAM of its own; absent: pointers are bits read from the weight SRAM)",
        "pJ",
        None,
        positive=False,
    ),
    "queue_pj": _num(
        "eie: energy of one activation pushed into and popped from one PE's queue",
        "pJ",
        0.0,
        positive=False,
    ),
    "static_w": _num("static power", "W", 0.0, positive=False),
    "busy_w": _num(
        "power drawn while a layer runs: its energy is at least busy_w x latency (0: no floor)",
        "W",
        0.0,
        positive=False,
    ),
}
"""Keys of ``energy`` (they become :class:`Platform` attributes)."""

_RESOURCE_COUNT = _num("resource count", "", positive=False)
DESIGN_FIELDS: dict[str, Field] = {
    "name": Field(kind="string", description="what ships, e.g. 3 x DPUCZDX8G B4096"),
    "source": Field(kind="string", description="where its figures come from"),
    "cores": _int("cores (compute units) on the device; each runs one input", maximum=2**12),
    "core_resources": _table("the published resources of one core", RESOURCES, _RESOURCE_COUNT),
    "array_rows": _int(
        "dense: MACs along the reduction (input-channel parallelism)", None, maximum=2**16
    ),
    "array_cols": _int(
        "dense: MACs along the filters (output-channel parallelism)", None, maximum=2**16
    ),
    "lanes": _int(
        "dense: copies of the array sharing its weights, each streaming other outputs "
        "(pixel parallelism)",
        1,
        maximum=2**12,
    ),
    "double_buffered": Field(
        kind="boolean",
        description=(
            "dense: the next fold's weights load while the current fold streams, and the "
            "pipeline fills once per layer (else every fold pays load, fill and drain)"
        ),
        default=False,
    ),
    "pes_per_core": _int("sparse: EIE-style PEs of one core", None, maximum=2**20),
}
"""Keys of ``fpga.dense_design`` and ``fpga.sparse_design``: a design as it ships
(cores x architecture, with its published resources), instead of PEs that fit."""

FPGA_FIELDS: dict[str, Field] = {
    "device": _table("the device's resources", RESOURCES, _RESOURCE_COUNT),
    "usable_fraction": _frac("share of the device the PEs may use", 1.0),
    "dense_pe": _table(
        "resources of one dense PE (hypothetical design: as many as fit)",
        RESOURCES,
        _RESOURCE_COUNT,
        None,
    ),
    "sparse_pe": _table(
        "resources of one sparse PE (hypothetical design: as many as fit)",
        RESOURCES,
        _RESOURCE_COUNT,
        None,
    ),
    "dense_design": _section(
        "the dense design that ships (overrides dense_pe)", DESIGN_FIELDS, None, attr=""
    ),
    "sparse_design": _section(
        "the sparse design that ships (overrides sparse_pe)", DESIGN_FIELDS, None, attr=""
    ),
}
"""Keys of ``fpga``."""

KERNEL_LAYOUTS = ("csr", "csc", "coo", "bitmap", "tiled-csl", "tca-bme")
"""Storage formats a csr kernel's ``layout`` may name: those of
:data:`simulator.formats.FORMATS` that hold any mask and fix their own widths (the
profile layer sits beneath the formats, so the names are listed here; a test holds
them to the registry)."""

KERNEL_FIELDS: dict[str, Field] = {
    "name": Field(kind="string", description="kernel name, unique in the profile"),
    "format": Field(
        kind="enum",
        description=(
            "what the kernel runs: csr (non-structured weights as CSR, SpMM or SpMV) or "
            "nm (the N:M unit of compute.nm_sparse)"
        ),
        choices=("csr", "nm"),
    ),
    "macs_per_s": _table(
        "csr: absolute rate on kept MACs by precision; a layer runs at the narrowest "
        "listed precision holding its operands, and not at all when none does",
        PRECISIONS,
        _num("rate", "MAC/s"),
        None,
    ),
    "dense_macs_per_s": _table(
        "csr: compute as dense: a rate on the layer's dense MACs by precision (every "
        "tile rebuilt from the sparse format and multiplied whole, as Flash-LLM does), "
        "its time added to the kept-MAC time; absent: no such term",
        PRECISIONS,
        _num("rate", "MAC/s"),
        None,
    ),
    "speedup": _num("nm: measured speed over the profile's dense GEMM, same precision", "x", None),
    "n": _int("nm: kept weights per group the speed-up was measured for", None, maximum=1024),
    "m": _int("nm: group size the speed-up was measured for", None, maximum=1024),
    "weight_bits": Field(
        kind="list",
        description=(
            "the weight widths the kernel runs (bits); a layer at another width does "
            "not run on it; absent: every width"
        ),
        item=_BITS,
        default=None,
    ),
    "activation_bits": Field(
        kind="list",
        description=(
            "the activation widths the kernel runs (bits); a layer at another width "
            "does not run on it; absent: every width"
        ),
        item=_BITS,
        default=None,
    ),
    "entry_ns": _num("time per stored entry", "ns", 0.0, positive=False),
    "row_ns": _num("time per weight row", "ns", 0.0, positive=False),
    "call_ns": _num("time per call, beyond layer_overhead_ns", "ns", 0.0, positive=False),
    "operand_cache_bytes": _num(
        "csr: cache the dense operand (the layer's cols x columns of activations, per "
        "group) is read from while it fits; absent: no miss term",
        "bytes",
        None,
    ),
    "operand_miss_ns": _num(
        "csr: time per stored entry and per cache line of the operand row it reads, on "
        "the share of those reads that miss (1 - operand_cache_bytes / operand bytes "
        "when the operand is larger; 0 when it fits)",
        "ns",
        0.0,
        positive=False,
    ),
    "cache_line_bytes": _int("csr: cache line of operand_miss_ns", 64, maximum=4096),
    "index_bits": _int("column-index width (CSR, no layout)", 32, maximum=64),
    "pointer_bits": _int("row-pointer width (CSR, no layout)", 32, maximum=64),
    "layout": Field(
        kind="enum",
        description=(
            "csr: the storage format the kernel's weights stream in, counted bit-exact "
            "by prunesim's format of that name (its own index, pointer and tile widths; "
            "the kept values at the layer's weight width); absent: CSR with index_bits "
            "and pointer_bits"
        ),
        choices=KERNEL_LAYOUTS,
        default=None,
    ),
    "source": Field(kind="string", description="where its figures come from"),
}
"""Keys of one ``roofline.kernels`` entry: a sparse kernel."""

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
    "dense_gemm_efficiency": _table(
        "achieved fraction of the peak on dense GEMM, by precision (a precision not "
        "listed takes the fraction of the narrowest listed one holding it)",
        PRECISIONS,
        _frac("fraction of peak"),
    ),
    "dense_gemv_efficiency": _table(
        "fraction of DRAM bandwidth at which dense GEMM streams its weights (the "
        "matrix-vector bound at batch 1), by precision (same rule when not listed)",
        PRECISIONS,
        _frac("fraction of DRAM bandwidth"),
    ),
    "kernels": Field(
        kind="list",
        description="sparse kernels; each layer runs on the fastest one that applies",
        item=_section("one sparse kernel", KERNEL_FIELDS),
        default=None,
        attr="",
    ),
    "layer_overhead_ns": _num("fixed time per layer (launch)", "ns", 0.0, positive=False),
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
        kind="enum",
        description="execution model",
        choices=("systolic", "eie", "roofline", "rowstationary", "scnn"),
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
        out["type"] = "string"
        if f.default != "":  # a text that may be left empty defaults to ""
            out["minLength"] = 1
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


def default_of(fields: Mapping[str, Field], key: str) -> Any:
    return fields[key].default


def convert(f: Field, value: Any) -> Any:
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
        return {k: convert(f.item, v) for k, v in value.items()}
    if f.kind == "list":
        return tuple(convert(f.item, v) for v in value)
    return value


def section_kwargs(fields: Mapping[str, Field], data: Mapping[str, Any], **derived: Any) -> dict:
    """Dataclass keyword arguments from a validated section: each field with an
    attribute, converted, its default where absent; ``derived`` values win."""
    out = {}
    for key, f in fields.items():
        name = key if f.attr is None else f.attr
        if name and name not in derived:
            out[name] = convert(f, data.get(key, f.default))
    return {**out, **derived}
