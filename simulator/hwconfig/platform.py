"""The frozen objects a validated hardware profile becomes (:class:`Platform` and its
parts); their defaults come from the field tables in :mod:`simulator.hwconfig.fields`.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from simulator.hwconfig.fields import (
    COMPUTE_FIELDS,
    ENERGY_FIELDS,
    KERNEL_FIELDS,
    ROOFLINE_FIELDS,
    SCNN_FIELDS,
    TOP_FIELDS,
    default_of,
)


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
class RowStationary:
    """Scratch pads of one row-stationary PE (entries) and the run-length code of
    activations in DRAM (see :data:`ROW_STATIONARY_FIELDS`)."""

    filter_spad: int
    ifmap_spad: int
    psum_spad: int
    run_bits: int
    pairs_per_word: int
    word_bits: int
    filter_load_stalls: bool


@dataclass(frozen=True, kw_only=True)
class ScnnArray:
    """An SCNN-style array (see :data:`SCNN_FIELDS`): a ``pe_rows x pe_cols`` grid of
    PEs, each an F x I multiplier array (``weight_vector`` x ``activation_vector``)
    scattering products into ``accumulator_banks`` banks of ``bank_entries``."""

    pe_rows: int = default_of(SCNN_FIELDS, "pe_rows")
    pe_cols: int = default_of(SCNN_FIELDS, "pe_cols")
    weight_vector: int = default_of(SCNN_FIELDS, "weight_vector")
    activation_vector: int = default_of(SCNN_FIELDS, "activation_vector")
    accumulator_banks: int = default_of(SCNN_FIELDS, "accumulator_banks")
    bank_entries: int = default_of(SCNN_FIELDS, "bank_entries")
    run_bits: int = default_of(SCNN_FIELDS, "run_bits")
    psum_bits: int = default_of(SCNN_FIELDS, "psum_bits")

    @property
    def pes(self) -> int:
        return self.pe_rows * self.pe_cols

    @property
    def multipliers(self) -> int:
        """Multipliers per PE (F x I)."""
        return self.weight_vector * self.activation_vector


@dataclass(frozen=True, kw_only=True)
class Compute:
    """Processing elements (see :data:`COMPUTE_FIELDS` for units and defaults)."""

    pes: int
    macs_per_pe_per_cycle: int = default_of(COMPUTE_FIELDS, "macs_per_pe_per_cycle")
    array_rows: int = default_of(COMPUTE_FIELDS, "array_rows")
    array_cols: int = default_of(COMPUTE_FIELDS, "array_cols")
    dataflow: str = default_of(COMPUTE_FIELDS, "dataflow")
    zero_gating: bool = default_of(COMPUTE_FIELDS, "zero_gating")
    fifo_depth: int = default_of(COMPUTE_FIELDS, "fifo_depth")
    weights_resident: bool = default_of(COMPUTE_FIELDS, "weights_resident")
    activation_density: float = default_of(COMPUTE_FIELDS, "activation_density")
    nm_sparse: NMSparse | None = None
    row_stationary: RowStationary | None = None


BRAM36_BYTES = 4608
"""Bytes of one 36 Kb block RAM."""
URAM_BYTES = 36864
"""Bytes of one 288 Kb UltraRAM."""


@dataclass(frozen=True, kw_only=True)
class FpgaDesign:
    """A design as it ships (see :data:`DESIGN_FIELDS`): ``cores`` identical cores,
    each with its published resources; a dense core is an ``array_rows x array_cols``
    array repeated over ``lanes`` (pixel parallelism), a sparse core ``pes_per_core``
    EIE-style PEs. Each core runs one input (image, frame) at a time."""

    name: str
    source: str
    cores: int
    core_resources: Mapping[str, float]
    array_rows: int | None = None
    array_cols: int | None = None
    lanes: int = 1
    double_buffered: bool = False
    pes_per_core: int | None = None

    @property
    def macs_per_cycle(self) -> int:
        """MACs one core does per cycle at full use."""
        if self.pes_per_core is not None:
            return self.pes_per_core
        return (self.array_rows or 0) * (self.array_cols or 0) * self.lanes


@dataclass(frozen=True, kw_only=True)
class Fpga:
    """Device resources and what runs on them: per-PE costs (``dsp, lut, ff, bram36,
    uram``; as many PEs as fit, for a hypothetical design) or a design as it ships
    (``dense_design``, ``sparse_design``: cores with their published resources), which
    wins where both are given."""

    device: Mapping[str, float]
    usable_fraction: float
    dense_pe: Mapping[str, float] | None = None
    sparse_pe: Mapping[str, float] | None = None
    dense_design: FpgaDesign | None = None
    sparse_design: FpgaDesign | None = None

    def fit_ratio(self, sparse: bool) -> float:
        """PEs of one kind that fit, before rounding down (``inf`` when no resource
        is charged; may be huge for a tiny per-PE cost: validation bounds it)."""
        per_pe = (self.sparse_pe if sparse else self.dense_pe) or {}
        ratios = [
            self.device.get(r, 0.0) * self.usable_fraction / cost
            for r, cost in per_pe.items()
            if cost > 0
        ]
        return min(ratios) if ratios else math.inf

    def pes_that_fit(self, sparse: bool) -> int:
        """PEs of one kind that fit in the usable part of the device (0 when the
        count is not finite or no per-PE cost is given; a validated profile has 1 to
        :data:`MAX_PES`)."""
        ratio = self.fit_ratio(sparse)
        return max(0, math.floor(ratio)) if math.isfinite(ratio) else 0

    def dense_array(self) -> tuple[int, int, int, bool] | None:
        """``(rows, cols, lanes, double_buffered)`` of the dense array one input runs
        on: one core of the shipped design, else the largest square array of dense
        PEs that fits (single-buffered, one lane); None when the profile states no
        dense hardware (dense work then runs on the sparse engine)."""
        d = self.dense_design
        if d is not None:
            return d.array_rows or 1, d.array_cols or 1, d.lanes, d.double_buffered
        if self.dense_pe is None:
            return None
        side = math.isqrt(self.pes_that_fit(sparse=False))
        return side, side, 1, False

    def sparse_pes(self) -> int:
        """EIE-style PEs one input runs on: one core of the shipped sparse design, else
        as many sparse PEs as fit."""
        d = self.sparse_design
        if d is not None and d.pes_per_core is not None:
            return d.pes_per_core
        return self.pes_that_fit(sparse=True)

    def core_buffer_bytes(self) -> float | None:
        """On-chip RAM of one core of the shipped dense design (BRAM36 of 4,608 bytes,
        UltraRAM of 36,864), or None without one."""
        d = self.dense_design
        if d is None:
            return None
        r = d.core_resources
        return r.get("bram36", 0.0) * BRAM36_BYTES + r.get("uram", 0.0) * URAM_BYTES

    def cores(self, sparse: bool) -> int:
        """Inputs the chip runs at once: the shipped design's cores, else 1."""
        d = self.sparse_design if sparse else self.dense_design
        return d.cores if d is not None else 1


@dataclass(frozen=True, kw_only=True)
class SparseKernel:
    """One sparse kernel of a CPU/GPU profile (see :data:`KERNEL_FIELDS`): a CSR
    kernel's absolute rate on kept MACs by precision plus its per-entry, per-row and
    per-call costs (ns) and, optionally, a cost per missed cache line (ns) of the dense
    operand once that exceeds ``operand_cache_bytes``; or an N:M kernel's measured
    speed over dense GEMM."""

    name: str
    format: str
    source: str
    macs_per_s: Mapping[str, float] | None = None
    dense_macs_per_s: Mapping[str, float] | None = None
    speedup: float | None = None
    n: int | None = None
    m: int | None = None
    weight_bits: tuple[int, ...] | None = None
    activation_bits: tuple[int, ...] | None = None
    entry_ns: float = default_of(KERNEL_FIELDS, "entry_ns")
    row_ns: float = default_of(KERNEL_FIELDS, "row_ns")
    call_ns: float = default_of(KERNEL_FIELDS, "call_ns")
    operand_cache_bytes: float | None = default_of(KERNEL_FIELDS, "operand_cache_bytes")
    operand_miss_ns: float = default_of(KERNEL_FIELDS, "operand_miss_ns")
    cache_line_bytes: int = default_of(KERNEL_FIELDS, "cache_line_bytes")
    index_bits: int = default_of(KERNEL_FIELDS, "index_bits")
    pointer_bits: int = default_of(KERNEL_FIELDS, "pointer_bits")
    layout: str | None = default_of(KERNEL_FIELDS, "layout")

    def runs_widths(self, weight_bits: int, activation_bits: int) -> bool:
        """Whether the kernel runs weights of ``weight_bits`` with activations of
        ``activation_bits`` (its ``weight_bits`` and ``activation_bits`` lists; every
        width where it lists none)."""
        return (self.weight_bits is None or weight_bits in self.weight_bits) and (
            self.activation_bits is None or activation_bits in self.activation_bits
        )

    def rate_for(self, weight_bits: int, activation_bits: int) -> float | None:
        """MAC/s at the narrowest listed precision holding both operands (operands are
        widened, never narrowed); ``None`` when no listed precision holds them."""
        return _widened(self.macs_per_s or {}, max(weight_bits, activation_bits))

    def dense_rate_for(self, weight_bits: int, activation_bits: int) -> float | None:
        """The compute-as-dense rate (MAC/s on the layer's dense MACs) by the same rule;
        ``None`` when the kernel has no such term or no listed precision holds them."""
        return _widened(self.dense_macs_per_s or {}, max(weight_bits, activation_bits))


def _widened(table: Mapping[str, float], bits: int) -> float | None:
    """The entry of ``table`` at the narrowest precision holding ``bits``; ``None``
    when none does."""
    fits = [k for k in table if precision_bits(k) >= bits]
    if not fits:
        return None
    return by_precision({k: table[k] for k in fits}, bits)


@dataclass(frozen=True, kw_only=True)
class Roofline:
    """CPU/GPU throughput: peak MACs per second by precision, dense GEMM and GEMV
    efficiencies by precision, and the sparse kernels (see :data:`ROOFLINE_FIELDS`)."""

    peak_macs_per_s: Mapping[str, float]
    dense_gemm_efficiency: Mapping[str, float]
    dense_gemv_efficiency: Mapping[str, float]
    kernels: tuple[SparseKernel, ...] = ()
    layer_overhead_ns: float = default_of(ROOFLINE_FIELDS, "layer_overhead_ns")

    def peak_for(self, weight_bits: int, activation_bits: int) -> float:
        """Peak MACs/s at the narrowest listed precision holding both operands."""
        return by_precision(self.peak_macs_per_s, max(weight_bits, activation_bits))

    def gemm_efficiency_for(self, weight_bits: int, activation_bits: int) -> float:
        """Dense GEMM fraction of peak at the layer's precision; a precision not listed
        takes the fraction of the narrowest listed one holding it (else the widest):
        the fraction carries over, the rate follows that precision's peak."""
        return by_precision(self.dense_gemm_efficiency, max(weight_bits, activation_bits))

    def gemv_efficiency_for(self, weight_bits: int, activation_bits: int) -> float:
        """Fraction of DRAM bandwidth at which dense weights stream (same rule)."""
        return by_precision(self.dense_gemv_efficiency, max(weight_bits, activation_bits))

    def kernels_of(self, fmt: str) -> tuple[SparseKernel, ...]:
        return tuple(k for k in self.kernels if k.format == fmt)


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
    index_decode_pj: float = default_of(ENERGY_FIELDS, "index_decode_pj")
    pointer_read_pj: float | None = None
    queue_pj: float = default_of(ENERGY_FIELDS, "queue_pj")
    static_w: float = default_of(ENERGY_FIELDS, "static_w")
    busy_w: float = default_of(ENERGY_FIELDS, "busy_w")
    technology_nm: float | None = None
    fpga: Fpga | None = None
    roofline: Roofline | None = None
    description: str = default_of(TOP_FIELDS, "description")
    source: str = default_of(TOP_FIELDS, "source")
    path: str = ""
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def dram_model(self) -> str:
        """``compute.dram_model``: ``prunesim``, ``scalesim`` (SCALE-Sim's memory
        model) or ``mapped`` (a loop-nest mapping per layer); read from the profile,
        not an attribute, so that profiles without it build the same platform as before."""
        return self.raw.get("compute", {}).get("dram_model", "prunesim")

    @property
    def scnn(self) -> ScnnArray:
        """``compute.scnn``: the SCNN-style array (SCNN's own design where absent); read
        from the profile, so that profiles without it build the same platform as before."""
        data = self.raw.get("compute", {}).get("scnn") or {}
        return ScnnArray(**{k: int(v) for k, v in data.items()})

    def sparse_engine(self, layer_kind: str) -> str | None:
        """``compute.sparse_engines``: the engine named for the sparse variant of a layer
        of this kind (``conv2d``: ``conv``; any other: ``fc``), or None where the profile
        names none (then its execution model, or an FPGA's EIE array, runs it)."""
        engines = self.raw.get("compute", {}).get("sparse_engines") or {}
        return engines.get("conv" if layer_kind == "conv2d" else "fc")

    @property
    def mapping_objective(self) -> str:
        """``compute.mapping_objective`` (``dram_model: mapped``): latency (default),
        dram or energy."""
        return self.raw.get("compute", {}).get("mapping_objective", "latency")

    @property
    def psum_bits(self) -> int:
        """``compute.psum_bits`` (``dram_model: mapped``): partial-sum width, 32 by default."""
        return int(self.raw.get("compute", {}).get("psum_bits", 32))

    @property
    def scalesim_sram_bytes(self) -> Mapping[str, float] | None:
        """``compute.scalesim_sram_bytes``: ifmap, filter and ofmap SRAM bytes, or None."""
        return self.raw.get("compute", {}).get("scalesim_sram_bytes")

    def level(self, kind: str) -> MemoryLevel | None:
        """The outermost memory level of a kind (``dram``, ``sram``, ``regfile``)."""
        return self._outermost.get(kind)

    @functools.cached_property
    def _outermost(self) -> dict[str, MemoryLevel]:
        """The first memory level of each kind (kept: engines ask for them per layer)."""
        out: dict[str, MemoryLevel] = {}
        for m in self.memory:
            out.setdefault(m.kind, m)
        return out

    def with_sram(self, size_bytes: float | None) -> Platform:
        """This platform with its first sram level cut to ``size_bytes`` (one core's own
        RAM on an FPGA), its bandwidth in proportion; itself when None or not smaller."""
        first = self.level("sram")
        if size_bytes is None or first is None or not 0 < size_bytes < first.size_bytes:
            return self
        share = size_bytes / first.size_bytes
        cut = replace(
            first,
            size_bytes=float(size_bytes),
            bandwidth_bytes_per_s=first.bandwidth_bytes_per_s * share,
        )
        return replace(self, memory=tuple(cut if m is first else m for m in self.memory))

    def mac_pj_for(self, weight_bits: int, activation_bits: int) -> float:
        """Energy of one MAC at the narrowest listed precision holding both operands."""
        return by_precision(self.mac_pj, max(weight_bits, activation_bits))


def precision_bits(key: str) -> int:
    """``"int8"`` -> 8, ``"bf16"`` -> 16."""
    return int(key.lstrip("intfpb"))


@functools.cache
def _precision_for(keys: tuple[str, ...], bits: int) -> str:
    """The key :func:`by_precision` picks among ``keys`` for ``bits``."""
    ranked = sorted(keys, key=lambda k: (precision_bits(k), not k.startswith("int")))
    return next((k for k in ranked if precision_bits(k) >= bits), ranked[-1])


def by_precision(table: Mapping[str, float], bits: int) -> float:
    """The entry of the narrowest precision with at least ``bits`` (integer formats
    before floating point at equal width); the widest one when none is wide enough."""
    return table[_precision_for(tuple(table), bits)]
