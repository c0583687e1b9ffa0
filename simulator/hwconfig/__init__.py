"""Hardware profiles: the fields of ``hwconfigs/*.yaml``, loading with inheritance,
and the frozen :class:`Platform` the simulator reads.

A profile names its class (``fpga | asic | cpu | gpu``) and execution model
(``systolic | eie | roofline``); code picks rules by those, never by a profile's
name. ``extends: other`` inherits another profile (a built-in name or a path
relative to the file, at most :data:`MAX_EXTENDS_DEPTH` deep) and overrides fields;
mappings merge key by key, lists and scalars replace. Unknown keys are errors;
every problem is reported at once with its key path. Units are in the key names.

Each field is declared once, as a :class:`Field` in the tables of :mod:`.fields`
(:data:`TOP_FIELDS`, :data:`COMPUTE_FIELDS`, ...): its type, default, bounds, unit and
description. :data:`HWCONFIG_SCHEMA` (validation and ``prunesim schema hwconfig``),
the defaults filled in, and the construction of the frozen dataclasses all follow
from those tables; only the rules that tie fields together (an FPGA's PE count, a
bandwidth given per cycle, a roofline peak from cores and SIMD width) are code.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

from simulator.errors import ConfigError, shown
from simulator.hwconfig.fields import (
    COMPUTE_FIELDS,
    DESIGN_FIELDS,
    ENERGY_FIELDS,
    FPGA_FIELDS,
    HWCONFIG_SCHEMA,
    KERNEL_FIELDS,
    MAX_EXTENDS_DEPTH,
    MAX_PES,
    MEMORY_FIELDS,
    NM_FIELDS,
    PRECISIONS,
    REQUIRED,
    RESOURCES,
    ROOFLINE_FIELDS,
    ROW_STATIONARY_FIELDS,
    TOP_FIELDS,
    Field,
    field_schema,
    section_kwargs,
)
from simulator.hwconfig.platform import (
    Compute,
    Fpga,
    FpgaDesign,
    MemoryLevel,
    NMSparse,
    Platform,
    Roofline,
    RowStationary,
    SparseKernel,
    by_precision,
    precision_bits,
)
from simulator.hwconfig.scalesim_cfg import cfg_profile
from simulator.paths import data_dir
from simulator.yamlio import (
    did_you_mean,
    find_builtin,
    read_yaml,
    schema_problems,
    value_problems,
)

__all__ = [
    "COMPUTE_FIELDS",
    "DESIGN_FIELDS",
    "ENERGY_FIELDS",
    "FPGA_FIELDS",
    "HWCONFIG_SCHEMA",
    "KERNEL_FIELDS",
    "MAX_EXTENDS_DEPTH",
    "MAX_PES",
    "MEMORY_FIELDS",
    "NM_FIELDS",
    "PRECISIONS",
    "REQUIRED",
    "RESOURCES",
    "ROOFLINE_FIELDS",
    "ROW_STATIONARY_FIELDS",
    "TOP_FIELDS",
    "Compute",
    "Field",
    "Fpga",
    "FpgaDesign",
    "MemoryLevel",
    "NMSparse",
    "Platform",
    "Roofline",
    "RowStationary",
    "SparseKernel",
    "builtin_platforms",
    "by_precision",
    "field_schema",
    "load_platform",
    "platform_from_dict",
    "precision_bits",
]


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
    ppath = _profile_path(parent, builtins, path.parent)
    if ppath is None:
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
    if ex == "rowstationary":
        if not ("array_rows" in c and "array_cols" in c and "row_stationary" in c):
            problems.append(
                "compute: a rowstationary profile needs array_rows, array_cols and row_stationary"
            )
        if "fpga" in data or not any(m["kind"] == "sram" for m in data["memory"]):
            problems.append("execution: rowstationary needs a global buffer (sram), not an FPGA")
    elif "row_stationary" in c:
        problems.append("compute.row_stationary: only with execution: rowstationary")
    named = set((c.get("sparse_engines") or {}).values())
    if "sparse_engines" in c and data["class"] not in ("fpga", "asic"):
        problems.append("compute.sparse_engines: only for fpga and asic profiles")
    if ex == "scnn" and data["class"] != "asic":
        problems.append(
            "execution: scnn is an ASIC execution model; an FPGA names it in "
            "compute.sparse_engines (conv: scnn)"
        )
    if "scnn" in c and ex != "scnn" and "scnn" not in named:
        problems.append("compute.scnn: only with execution: scnn or a sparse engine named scnn")
    if ex == "scnn" and "pes" in c:
        grid = c.get("scnn") or {}
        rows, cols = grid.get("pe_rows", 8), grid.get("pe_cols", 8)
        if c["pes"] != rows * cols:
            problems.append(
                f"compute.pes: {c['pes']} PEs, but the scnn grid is {rows} x {cols} = "
                f"{rows * cols} (give pe_rows and pe_cols in compute.scnn)"
            )
    if c.get("dram_model") == "scalesim" and (ex != "systolic" or "fpga" in data):
        problems.append("compute.dram_model: scalesim needs a systolic profile (not an FPGA)")
    if "scalesim_sram_bytes" in c and c.get("dram_model") not in ("scalesim", "mapped"):
        problems.append("compute.scalesim_sram_bytes: only with dram_model: scalesim or mapped")
    if c.get("dram_model") == "mapped" and ex != "systolic":
        problems.append("compute.dram_model: mapped needs a systolic profile")
    for key in ("mapping_objective", "psum_bits"):
        if key in c and c.get("dram_model") != "mapped":
            problems.append(f"compute.{key}: only with dram_model: mapped")
    if "pes" not in c and data["class"] != "fpga":
        problems.append("compute.pes: required (for FPGAs it follows from the fpga section)")
    if data["class"] == "fpga" and "fpga" not in data:
        problems.append("fpga: an FPGA profile needs its device resources and PE costs")
    if "fpga" in data:
        problems += _fpga_problems(data["fpga"])
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
        problems += _kernel_problems(r.get("kernels", ()), "nm_sparse" in c)
    kinds = [m["kind"] for m in data["memory"]]
    if "dram" not in kinds and ex != "eie":
        problems.append("memory: needs a dram level (only eie keeps every weight on chip)")
    if c.get("weights_resident"):
        if ex != "eie" or "fpga" in data:
            problems.append("compute.weights_resident: only with execution: eie (not an FPGA)")
        if "dram" not in kinds:
            problems.append(
                "compute.weights_resident: needs a dram level, to stream the weights "
                "that do not fit in the weight SRAM"
            )
        if "sram" not in kinds:
            problems.append("compute.weights_resident: needs an sram level to hold the weights")
    for key in ("pointer_read_pj", "queue_pj"):
        if key in data["energy"] and ex != "eie" and "fpga" not in data:
            problems.append(f"energy.{key}: only for profiles that run the eie engine")
    for i, m in enumerate(data["memory"]):
        name = shown(m["name"], 40)
        if "bandwidth_bytes_per_s" not in m and "bandwidth_bits_per_cycle" not in m:
            problems.append(
                f"memory[{i}] ({name}): give bandwidth_bytes_per_s or bandwidth_bits_per_cycle"
            )
        if m["kind"] not in ("dram", "network") and "size_bytes" not in m:
            problems.append(f"memory[{i}] ({name}).size_bytes: required for {m['kind']}")
    names = [m["name"] for m in data["memory"]]
    for n in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"memory: duplicate level name '{shown(n, 40)}'")
    return problems


def _fpga_problems(f: dict) -> list[str]:
    """Rules of the ``fpga`` section: each engine is a design that ships (cores with
    their published resources, which must fit on the device) or per-PE costs (as many
    PEs as fit, 1 to :data:`MAX_PES`); a sparse engine is required, a dense one is not
    (without one, dense work runs on the sparse engine)."""
    problems = []
    fpga = _fpga(f)
    for kind, sparse in (("dense", False), ("sparse", True)):
        design = f.get(f"{kind}_design")
        if design is not None:
            where = f"fpga.{kind}_design ({shown(design['name'], 40)})"
            need = ("pes_per_core",) if sparse else ("array_rows", "array_cols")
            wrong = (
                ("array_rows", "array_cols", "lanes", "double_buffered")
                if sparse
                else ("pes_per_core",)
            )
            problems += [
                f"{where}.{k}: required for a {kind} design" for k in need if k not in design
            ]
            problems += [
                f"{where}.{k}: only for a {'dense' if sparse else 'sparse'} design"
                for k in wrong
                if k in design
            ]
            for r, per_core in design["core_resources"].items():
                used, have = design["cores"] * per_core, f["device"].get(r, 0)
                if used > have:
                    problems.append(
                        f"{where}.core_resources.{r}: {design['cores']} cores x "
                        f"{per_core:g} = {used:g} exceed the device's {have:g} (fpga.device.{r})"
                    )
        if f"{kind}_pe" not in f:  # checked even when a design overrides it
            if sparse and design is None:
                problems.append("fpga: give sparse_pe (per-PE costs) or sparse_design (what ships)")
            continue
        ratio = fpga.fit_ratio(sparse)
        if not ratio < MAX_PES + 1:
            n = "an unbounded number of" if not math.isfinite(ratio) else f"{ratio:.3g}"
            problems.append(
                f"fpga.{kind}_pe: {n} PEs would fit, over {MAX_PES:,}; expected per-PE "
                "costs above 0 for a resource the device has, and a finite budget"
            )
        elif ratio < 1:
            problems.append(f"fpga.{kind}_pe: not one PE fits in the device's resources")
    return problems


def _fpga(f: dict) -> Fpga:
    """The frozen ``fpga`` section (designs built from their own field table)."""
    designs = {
        k: FpgaDesign(**section_kwargs(DESIGN_FIELDS, f[k])) if f.get(k) is not None else None
        for k in ("dense_design", "sparse_design")
    }
    return Fpga(**section_kwargs(FPGA_FIELDS, f, **designs))


def _kernel_problems(kernels: list, has_nm_unit: bool) -> list[str]:
    """Rules between a sparse kernel's fields: a csr kernel gives its rates, an nm
    kernel its speed-up and the N:M pattern it was measured on (and needs
    compute.nm_sparse); a csr kernel with a ``layout`` takes its widths from that
    format (no index_bits or pointer_bits); names are unique."""
    problems = []
    for i, k in enumerate(kernels):
        where = f"roofline.kernels[{i}] ({shown(k['name'], 40)})"
        if k["format"] == "csr":
            if "macs_per_s" not in k:
                problems.append(f"{where}.macs_per_s: required for a csr kernel")
            for key in ("speedup", "n", "m"):
                if key in k:
                    problems.append(f"{where}.{key}: only for an nm kernel")
            if k.get("operand_miss_ns", 0) > 0 and "operand_cache_bytes" not in k:
                problems.append(
                    f"{where}.operand_cache_bytes: required when operand_miss_ns is above 0"
                )
            if "layout" in k:
                problems += [
                    f"{where}.{key}: only without layout (the layout's format fixes its widths)"
                    for key in ("index_bits", "pointer_bits")
                    if key in k
                ]
        else:
            for key in ("speedup", "n", "m"):
                if key not in k:
                    problems.append(f"{where}.{key}: required for an nm kernel")
            for key in (
                "macs_per_s",
                "dense_macs_per_s",
                "operand_cache_bytes",
                "operand_miss_ns",
                "cache_line_bytes",
                "layout",
            ):
                if key in k:
                    problems.append(f"{where}.{key}: only for a csr kernel")
            if not has_nm_unit:
                problems.append(f"{where}: an nm kernel needs compute.nm_sparse")
    names = [k["name"] for k in kernels]
    for n in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"roofline.kernels: duplicate kernel name '{shown(n, 40)}'")
    return problems


def _platform(data: dict, path: str) -> Platform:
    """Build the frozen platform from a validated profile: each section through
    :func:`_attrs`, plus the values that follow from several fields."""
    c = data["compute"]
    clock = float(data["clock_hz"])
    fpga = _fpga(data["fpga"]) if "fpga" in data else None
    # an FPGA's PEs: one core of the dense design that ships, else the largest square
    # array of dense PEs that fits; without dense hardware, the sparse engine's PEs
    pes = c.get("pes") or 1
    if fpga is not None and not c.get("pes"):
        arr = fpga.dense_array()
        pes = arr[0] * arr[1] * arr[2] if arr else fpga.sparse_pes()
    nm = c.get("nm_sparse")
    nm_sparse = (
        NMSparse(
            **section_kwargs(NM_FIELDS, nm, speedup=float(nm.get("speedup", nm["m"] / nm["n"])))
        )
        if nm
        else None
    )
    rs = c.get("row_stationary")
    row_stationary = RowStationary(**section_kwargs(ROW_STATIONARY_FIELDS, rs)) if rs else None
    compute = Compute(
        **section_kwargs(
            COMPUTE_FIELDS, c, pes=int(pes), nm_sparse=nm_sparse, row_stationary=row_stationary
        )
    )
    memory = []
    for m in data["memory"]:
        bw = m.get("bandwidth_bytes_per_s")
        if bw is None:
            per = float(m["bandwidth_bits_per_cycle"]) / 8 * clock
            bw = per * (compute.pes if m.get("per_pe") else 1)
        memory.append(
            MemoryLevel(**section_kwargs(MEMORY_FIELDS, m, bandwidth_bytes_per_s=float(bw)))
        )
    roofline = None
    if "roofline" in data:
        r = data["roofline"]
        peak = dict(r.get("peak_macs_per_s", {}))
        if not peak:  # cores x FMA units x SIMD lanes x clock, per precision
            for p, bits in (("fp32", 32), ("fp16", 16), ("int16", 16), ("int8", 8)):
                peak[p] = r["cores"] * r["fma_units_per_core"] * (r["simd_bits"] // bits) * clock
        kernels = tuple(
            SparseKernel(**section_kwargs(KERNEL_FIELDS, k)) for k in r.get("kernels", ())
        )
        roofline = Roofline(
            **section_kwargs(ROOFLINE_FIELDS, r, peak_macs_per_s=peak), kernels=kernels
        )
    return Platform(
        **section_kwargs(
            TOP_FIELDS,
            data,
            compute=compute,
            memory=tuple(memory),
            fpga=fpga,
            roofline=roofline,
            path=path,
            raw=data,
        ),
        **section_kwargs(ENERGY_FIELDS, data["energy"]),
    )


def platform_from_dict(data: Any, source: str = "profile") -> Platform:
    """Validate a profile mapping (inheritance already resolved) and build it.

    Raises :class:`ConfigError` naming ``source`` and listing every problem."""
    problems = _problems(data)
    if problems:
        raise ConfigError(source, problems)
    return _platform(data, source)


def _profile_path(name: str, builtins: dict[str, Path], folder: Path | None = None) -> Path | None:
    """The file a profile name means: a built-in (exact, then any case), else a path
    (relative to ``folder`` where given); None if there is none."""
    path = builtins.get(name) or (folder / name if folder is not None else Path(name))
    if not path.exists():
        path = find_builtin(name, builtins) or path
    return path if path.exists() else None


def load_platform(name_or_path: str | Path) -> Platform:
    """Load a built-in profile by name (``eie``, any case: ``A100``) or a profile file
    by path. An unknown name is a :class:`ConfigError` with "did you mean"."""
    text = str(name_or_path)
    builtins = builtin_platforms()
    if text.lower().endswith(".cfg"):
        if not Path(text).is_file():
            raise ConfigError(shown(text), "no such SCALE-Sim configuration file")
        base = _resolve(builtins["scalesim_32x32_ws"])
        return platform_from_dict(cfg_profile(text, base), text)
    path = _profile_path(text, builtins)
    if path is None:
        raise ConfigError(
            shown(text),
            f"no such hardware profile file or built-in{did_you_mean(text, builtins)} "
            f"(built-ins: {', '.join(builtins)})",
        )
    return platform_from_dict(_resolve(path), str(path))
