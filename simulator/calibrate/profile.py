"""A fitted calibration as a hardware profile: the field mapping and the YAML text.

:func:`profile_fields` is the one place that turns fitted terms into profile
fields; the rest of the module only formats them with their comments.
"""

from __future__ import annotations

import json
import math

from simulator.calibrate.fit import CACHE_LINE_BYTES as FIT_LINE_BYTES
from simulator.calibrate.fit import Fit
from simulator.calibrate.measure import Machine

REFERENCE_PROFILE = "xeon_8380"
"""Built-in profile whose energy table a calibrated profile copies (nothing here can
measure energy)."""
FMA_UNITS_PER_CORE = 2
"""Assumed FMA units per core for the stated peak (the fit gives absolute rates; the
peak only scales them into fractions)."""
BY = "measured by prunesim calibrate cpu"


def peak_macs_per_s(machine: Machine) -> float:
    """fp32 peak of the threads used: threads x FMA units x SIMD lanes x clock."""
    return machine.threads * FMA_UNITS_PER_CORE * (machine.simd_bits // 32) * machine.clock_hz


def profile_fields(fit: Fit, machine: Machine) -> dict[str, float]:
    """Profile fields from the fitted terms: the roofline's rates as fractions of the
    fp32 peak, its overheads in ns, the DRAM and cache bandwidths. The peak is raised
    to the measured dense rate should that exceed it (a clock read low)."""
    p = fit.params

    def ns(seconds: float) -> float:  # a term at the fit's lower bound is no term
        return seconds * 1e9 if seconds > 1e-13 else 0.0

    dense_rate = 1 / p.s_per_dense_mac
    peak = max(peak_macs_per_s(machine), dense_rate)
    return {
        "peak_fp32_macs_per_s": peak,
        "dense_efficiency": dense_rate / peak,
        "sparse_efficiency": min(1.0, 1 / p.s_per_sparse_mac / peak),
        "sparse_entry_overhead_ns": ns(p.s_per_entry),
        "sparse_row_overhead_ns": ns(p.s_per_row),
        "operand_miss_ns": ns(p.s_per_miss_line) if p.operand_cache_bytes is not None else 0.0,
        "layer_overhead_ns": ns(p.s_per_call),
        "dram_bytes_per_s": p.dram_bytes_per_s,
        "cache_bytes_per_s": p.cache_bytes_per_s,
    }


def _g(x: float) -> str:
    """A number as YAML reads it back (4 significant digits, never 0 for a positive)."""
    if x == 0:
        return "0.0"
    text = f"{x:.4g}"
    if "e" not in text and "." not in text:
        text += ".0"
    if "e" in text and "." not in text.split("e")[0]:
        mant, exp = text.split("e")
        text = f"{mant}.0e{exp}"
    return text


def _pct(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{100 * x:.1f}%"


def profile_yaml(fit: Fit, machine: Machine, name: str = "this_cpu") -> str:
    """The calibrated profile as YAML text with its measurement metadata."""
    from simulator.hwconfig import load_platform

    ref = load_platform(REFERENCE_PROFILE)
    f = profile_fields(fit, machine)
    ref_dram = ref.level("dram")
    ref_cache = max((lv for lv in ref.memory if lv.kind != "dram"), key=lambda lv: lv.size_bytes)
    ref_cores = ref.compute.pes or 1  # the reference profile states one PE per core
    static_w = ref.static_w * machine.threads / ref_cores
    n = {k: len(fit.errors(k)) for k in ("gemm", "gemv", "sparse")}
    bounds = fit.bound_counts()
    clock = "CPU time (one thread)" if fit.clock == "cpu" else "wall time"
    env = ", ".join(f"{k}={v}" for k, v in machine.blas_env) or "none"
    lanes = machine.simd_bits // 32
    lines = [
        f"# This machine, {BY} on {machine.date}.",
        f"# CPU: {machine.cpu_model} ({machine.logical_cpus} logical CPUs, {machine.simd_bits}-bit"
        f" SIMD, {machine.clock_hz / 1e9:.3g} GHz reported, largest cache"
        f" {machine.cache_bytes // 2**20} MiB)",
        f"# Caches of one core (sysfs): {_caches(machine)}",
        f"# BLAS: {machine.blas}; {machine.threads} thread(s); OpenBLAS overrides: {env}",
        f"# numpy {machine.numpy_version}, scipy {machine.scipy_version}, "
        f"Python {machine.python_version}; fp32 throughout",
        f"# Kernels: numpy matmul (BLAS GEMM/GEMV) on {n['gemm']} + {n['gemv']} shapes, scipy"
        f" CSR x dense / x vector on {n['sparse']} shape-density points, a DRAM triad"
        " and an in-cache read stream.",
        f"# Medians of {_repeats(fit)} interleaved rounds of {clock}; fitted in log space",
        "# (simulator/calibrate/fit.py). Bounds set by the fitted model: "
        + ", ".join(f"{k} {v}" for k, v in sorted(bounds.items()))
        + ".",
        f"# Fit residual, median |predicted / measured - 1|: all {_pct(fit.residual())}.",
        f"# Energies: no measurement is possible here; copied from the built-in {ref.name}",
        "# profile (its sources and scaling rules), static power scaled by threads / its cores.",
        f"name: {json.dumps(name)}",
        "description: "
        + json.dumps(
            f"{machine.cpu_model[:60]}, {machine.threads} thread(s), fp32 numpy/scipy, calibrated"
        ),
        "source: "
        + json.dumps(f"prunesim calibrate cpu ({machine.date}); energies from {ref.name}"),
        "class: cpu",
        "execution: roofline",
        f"clock_hz: {_g(machine.clock_hz)}             # {machine.clock_source}",
        "weight_bits: [32]                 # numpy and scipy compute in fp32: narrower weights"
        " run at these fp32 rates",
        "activation_bits: 32",
        "compute:",
        f"  pes: {machine.threads}                          # threads used",
        f"  macs_per_pe_per_cycle: {FMA_UNITS_PER_CORE * lanes}         # fp32: "
        f"{FMA_UNITS_PER_CORE} FMA units x {lanes} lanes (assumed; documentation)",
        "memory:",
        "  - name: dram",
        "    kind: dram",
        f"    bandwidth_bytes_per_s: {_g(f['dram_bytes_per_s'])}   # {BY}: fitted to the"
        f" memory-bound kernels, triad prior {fit.triad_dram_bytes_per_s / 1e9:.3g} GB/s;"
        f" residual GEMV {_pct(fit.residual('gemv'))}",
        f"    read_pj_per_bit: {_g(ref_dram.read_pj_per_bit)}        # copied from {ref.name}",
        f"    write_pj_per_bit: {_g(ref_dram.write_pj_per_bit)}       # copied from {ref.name}",
        "  - name: cache",
        "    kind: sram",
        f"    size_bytes: {machine.cache_bytes}           # largest cache (sysfs)",
        f"    bandwidth_bytes_per_s: {_g(f['cache_bytes_per_s'])}   # {BY}: in-cache read"
        " stream (BLAS dot)",
        f"    read_pj_per_bit: {_g(ref_cache.read_pj_per_bit)}        # copied from {ref.name}"
        f" {ref_cache.name}",
        f"    write_pj_per_bit: {_g(ref_cache.write_pj_per_bit)}       # copied from {ref.name}"
        f" {ref_cache.name}",
        "energy:",
        f"  mac_pj:                         # copied from {ref.name}",
        *[f"    {k}: {_g(v)}" for k, v in ref.mac_pj.items()],
        f"  index_decode_pj: {_g(ref.index_decode_pj)}          # copied from {ref.name}",
        f"  static_w: {_g(static_w)}                  # {ref.name}'s {_g(ref.static_w)} W x "
        f"{machine.threads} / {ref_cores} cores (estimate)",
        "roofline:",
        "  peak_macs_per_s:",
        f"    fp32: {_g(f['peak_fp32_macs_per_s'])}             # threads x FMA units x lanes"
        " x clock (or the measured dense rate if higher)",
        "  dense_gemm_efficiency:",
        f"    fp32: {_g(f['dense_efficiency'])}            # {BY}: "
        f"{1e-9 / fit.params.s_per_dense_mac:.3g} GMAC/s BLAS GEMM; residual GEMM"
        f" {_pct(fit.residual('gemm'))}",
        "  dense_gemv_efficiency:",
        "    fp32: 1.0                     # the DRAM bandwidth above is fitted to these GEMVs"
        f" themselves; residual GEMV {_pct(fit.residual('gemv'))}",
        f"  layer_overhead_ns: {_g(f['layer_overhead_ns'])}         # {BY}: per call",
        "  kernels:",
        "    - name: csr-scipy",
        "      format: csr",
        "      source: " + json.dumps(f"{BY} ({machine.date}): scipy CSR x dense / x vector"),
        "      macs_per_s:",
        f"        fp32: {_g(f['sparse_efficiency'] * f['peak_fp32_macs_per_s'])}   # {BY}: "
        f"absolute, one thread; residual CSR x dense {_pct(fit.residual('spmm'))}, CSR x vector"
        f" {_pct(fit.residual('spmv'))} (one set of terms serves both)",
        f"      entry_ns: {_g(f['sparse_entry_overhead_ns'])}   # {BY}: per stored entry",
        f"      row_ns: {_g(f['sparse_row_overhead_ns'])}     # {BY}: per row",
        *_miss_lines(fit, f["operand_miss_ns"]),
        "      index_bits: 32              # scipy CSR: int32 column indices",
        "      pointer_bits: 32            # int32 row pointers",
    ]
    return "\n".join(lines) + "\n"


def _caches(machine: Machine) -> str:
    names = {"Data": "d", "Instruction": "i", "Unified": ""}
    parts = [
        f"L{lv}{names.get(kind, kind)} {_size(b)}"
        for lv, kind, b in machine.caches
        if kind != "Instruction"
    ]
    return ", ".join(parts) or "not readable"


def _size(nbytes: float) -> str:
    for unit, scale in (("MiB", 2**20), ("KiB", 2**10)):
        if nbytes >= scale and nbytes % scale == 0:
            return f"{int(nbytes // scale)} {unit}"
    return f"{int(nbytes)} B"


def _miss_lines(fit: Fit, miss_ns: float) -> list[str]:
    """The kernel's miss term, when the fit kept one."""
    cache = fit.params.operand_cache_bytes
    if cache is None or miss_ns <= 0:
        return []
    return [
        f"      operand_cache_bytes: {int(cache)}   # {BY}: the cache ({_size(cache)}, sysfs)"
        " whose fit of the miss term was best",
        f"      operand_miss_ns: {_g(miss_ns)}   # {BY}: per missed 64-byte line of the dense"
        " operand once it outgrows that cache",
        f"      cache_line_bytes: {FIT_LINE_BYTES}",
    ]


def _repeats(fit: Fit) -> int:
    return max((m.repeats for m in fit.measurements), default=0)
