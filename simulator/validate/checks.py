"""Predictions for the published and recorded references: one function per ``check``
named in ``references.yaml``, registered in :data:`CHECKS`.

Each takes the reference tables and the row's ``args`` and returns a
:class:`Prediction`: the predicted value and, where the reference is not a number in
the tables (SCALE-Sim's recorded files), the reference and the error it computed.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from simulator.cost import price
from simulator.dataflows import LayerTask, run_eie, run_roofline, run_rowstationary
from simulator.errors import ConfigError
from simulator.formats import all_kept_profile, profile_gemm, profile_mask
from simulator.hwconfig import Platform, load_platform, platform_from_dict
from simulator.layers import Layer, Linear, MatMul
from simulator.masks import Pruning, generate_mask
from simulator.simulate import engine
from simulator.workloads import load_network, read_scalesim_topology


@dataclass(frozen=True, kw_only=True)
class Prediction:
    predicted: float
    reference: float | None = None
    error: float | None = None
    detail: str = ""


CHECKS: dict[str, Callable[..., Prediction]] = {}


def check(fn: Callable[..., Prediction]) -> Callable[..., Prediction]:
    CHECKS[fn.__name__] = fn
    return fn


# --- shared helpers ------------------------------------------------------------------


def layer_latency_s(
    layer: Layer, platform: Platform, variant: str = "dense", density: float = 1.0, bits: int = 32
) -> float:
    """Roofline latency of one layer: dense, CSR at ``density`` or 2:4 (``nm``)."""
    if variant == "dense":
        mask = generate_mask(layer, Pruning(structure="dense"))
    elif variant == "nm":
        mask = generate_mask(layer, Pruning(structure="nm", nm=(2, 4)))
    else:
        mask = generate_mask(layer, Pruning(density=density))
    task = LayerTask(
        layer=layer,
        profile=profile_mask(layer, mask),
        variant=variant,
        weight_bits=bits,
        index_bits=4,
        activation_bits=bits,
    )
    return price(run_roofline(task, platform), platform, bits, bits).latency_s


def breakeven_density(layer: Layer, platform: Platform, bits: int = 32) -> float:
    """Density at which the CSR variant's latency equals dense (bisection)."""
    dense = layer_latency_s(layer, platform, bits=bits)
    lo, hi = 0.002, 1.0
    for _ in range(18):
        mid = (lo + hi) / 2
        if layer_latency_s(layer, platform, "sparse", mid, bits) < dense:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def only_kernels(platform_name: str, *names: str) -> Platform:
    """A built-in profile keeping only the sparse kernels ``names``, with no layer
    overhead (the kernel alone, as the published speed-ups measure it)."""
    p = load_platform(platform_name)
    raw = dict(p.raw)
    roof = dict(raw["roofline"])
    roof["kernels"] = [k for k in roof["kernels"] if k["name"] in names]
    roof["layer_overhead_ns"] = 0
    raw["roofline"] = roof
    return platform_from_dict(raw)


def eie_table_iv_platform(
    cls: str, tables: Mapping[str, Any], gemv: float | None = None
) -> Platform:
    """The i7-5930K or Titan X of EIE's Table IV as a roofline profile: its DRAM
    bandwidth and fp32 peak; the dense GEMM and GEMV fractions, the per-layer overhead
    and the sparse kernel of the built-in profile of its class (xeon_8380's
    ``csr-mkl``, v100's ``cusparse``), the kernel moved by the rules its profile states
    (:func:`moved_kernel`); the GEMV fraction the table states for the machine (the
    i7's MKL SGEMV) where it states one. ``gemv``: another GEMV fraction."""
    hw = tables["eie_table_iv"]["platforms"][cls]
    base_name, kernel = ("xeon_8380", "csr-mkl") if cls == "cpu" else ("v100", "cusparse")
    base = load_platform(base_name)
    roof = base.roofline
    return platform_from_dict(
        {
            "name": f"eie_table_iv_{cls}",
            "class": cls,
            "execution": "roofline",
            "clock_hz": hw["clock_hz"],
            "weight_bits": [32],
            "activation_bits": 32,
            "compute": {"pes": hw["cores"]},
            "memory": [
                {
                    "name": "dram",
                    "kind": "dram",
                    "bandwidth_bytes_per_s": hw["dram_bytes_per_s"],
                    "read_pj_per_bit": 1,
                    "write_pj_per_bit": 1,
                }
            ],
            "energy": {"mac_pj": {"fp32": 1}},
            "roofline": {
                "peak_macs_per_s": {"fp32": hw["peak_macs_per_s"]},
                "dense_gemm_efficiency": {"fp32": _fraction(roof.dense_gemm_efficiency, "fp32")},
                "dense_gemv_efficiency": {
                    "fp32": gemv
                    if gemv is not None
                    else hw.get(
                        "dense_gemv_efficiency", _fraction(roof.dense_gemv_efficiency, "fp32")
                    )
                },
                "layer_overhead_ns": roof.layer_overhead_ns,
                "kernels": [moved_kernel(base, kernel, hw)],
            },
        }
    )


def moved_kernel(base: Platform, name: str, hw: Mapping[str, float]) -> dict:
    """The csr kernel ``name`` of ``base`` moved to a chip with fp32 peak
    ``hw["peak_macs_per_s"]``, ``hw["cores"]`` cores (SMs) at ``hw["clock_hz"]``, by the
    rules the shipped profiles state: the rate as a fraction of fp32 peak carries over;
    per-entry and per-row costs carry over in core-cycles, divided over the cores; a
    per-call cost (seconds) is kept."""
    k = next(k for k in base.roofline.kernels if k.name == name)
    rate = k.rate_for(32, 32)
    assert rate is not None, f"{name} has an fp32 rate"
    fraction = rate / base.roofline.peak_for(32, 32)
    core_hz = base.compute.pes * base.clock_hz / (hw["cores"] * hw["clock_hz"])
    return {
        "name": k.name,
        "format": "csr",
        "macs_per_s": {"fp32": fraction * hw["peak_macs_per_s"]},
        "entry_ns": k.entry_ns * core_hz,
        "row_ns": k.row_ns * core_hz,
        "call_ns": k.call_ns,
        "index_bits": k.index_bits,
        "pointer_bits": k.pointer_bits,
        "source": f"{base.name} {k.name}, moved by its profile's rules",
    }


def _fraction(table: Mapping[str, float], key: str) -> float:
    return table.get(key, max(table.values()))


# --- EIE Table IV: CPU and GPU rows ---------------------------------------------------


@check
def eie_table_iv(
    tables, *, platform: str, layer: str, batch: int, kind: str = "dense"
) -> Prediction:
    """An FC layer per frame (us) on the Table IV CPU or GPU: ``dense`` (MKL, cuBLAS) or
    ``sparse`` (CSR at the layer's weight density as EIE pruned it; MKL CSRMV/CSRMM,
    cuSPARSE), fp32."""
    return Prediction(predicted=_table_iv_us(tables, platform, layer, batch, kind))


def _table_iv_us(tables, platform: str, layer: str, batch: int, kind: str) -> float:
    t4 = tables["eie_table_iv"]
    n_in, n_out = t4["layers"][layer]
    lin = Linear(name=layer, in_features=n_in, out_features=n_out, tokens=batch)
    p = eie_table_iv_platform(platform, tables)
    if kind == "dense":
        t = layer_latency_s(lin, p)
    elif kind == "sparse":
        t = layer_latency_s(lin, p, "sparse", t4["weight_density"][layer])
    else:
        raise ConfigError("eie_table_iv check", f"unknown kind {kind!r}")
    return t / batch * 1e6


@check
def eie_table_iv_ratio(tables, *, platform: str, batch: int) -> Prediction:
    """Geometric mean over Table IV's six AlexNet and VGG-16 FC layers of sparse time
    over dense time on the CPU or GPU (below 1: the pruned model runs faster)."""
    t4 = tables["eie_table_iv"]
    names = list(t4["layers"])
    b = f"b{batch}"

    def gmean(xs):
        return float(np.exp(np.mean(np.log(xs))))

    pred = gmean(
        [
            _table_iv_us(tables, platform, n, batch, "sparse")
            / _table_iv_us(tables, platform, n, batch, "dense")
            for n in names
        ]
    )
    ref = gmean([t4[platform]["sparse"][b][n] / t4[platform]["dense"][b][n] for n in names])
    return Prediction(predicted=pred, reference=ref, error=pred / ref - 1)


# --- EIE accelerator -----------------------------------------------------------------


@functools.cache
def _eie_layer(name: str, wd: float, ad: float) -> tuple[float, float]:
    """EIE's time (us) and energy (uJ) for one AlexNet FC layer run on its own."""
    eie = load_platform("eie")
    layer = load_network("alexnet").layer(name)
    mask = generate_mask(layer, Pruning(density=wd))
    g = layer.gemm
    prof = profile_gemm(np.ascontiguousarray(mask.reshape(g.groups, g.rows, g.cols), np.uint8))
    task = LayerTask(
        layer=layer,
        profile=prof,
        variant="sparse",
        weight_bits=4,
        index_bits=4,
        activation_bits=16,
        activation_density=ad,
    )
    counts = run_eie(task, eie)
    cost = price(counts, eie, 4, 16)
    return counts.compute_cycles / eie.clock_hz * 1e6, cost.energy_j * 1e6


def _eie_layers(tables) -> dict[str, tuple[float, float]]:
    return {
        name: _eie_layer(name, row["weight_density"], row["activation_density"])
        for name, row in tables["eie"]["layers"].items()
    }


def eie_layers_us(tables) -> dict[str, float]:
    return {name: us for name, (us, _) in _eie_layers(tables).items()}


@check
def eie_layer(tables, *, layer: str) -> Prediction:
    """EIE's time for one AlexNet FC layer (us), 64 PEs, 4-bit codes, 16-bit activations."""
    return Prediction(predicted=eie_layers_us(tables)[layer])


@check
def eie_frames(tables) -> Prediction:
    """EIE's AlexNet FC6-FC8 frames per second."""
    return Prediction(predicted=1e6 / sum(eie_layers_us(tables).values()))


@check
def eie_layer_energy(tables, *, layer: str) -> Prediction:
    """EIE's energy for one AlexNet FC layer (uJ), Table II's per-event prices."""
    return Prediction(predicted=_eie_layers(tables)[layer][1])


@check
def eie_energy(tables) -> Prediction:
    """EIE's energy for AlexNet FC6-FC8 per frame (uJ)."""
    return Prediction(predicted=sum(uj for _, uj in _eie_layers(tables).values()))


# --- Eyeriss v1 ----------------------------------------------------------------------


@functools.cache
def _eyeriss_runs(table: tuple) -> dict:
    """CONV1-5 at batch 4 with Table V's ifmap densities (the next layer's as output
    density; CONV5 its own): name -> (counts, cost)."""
    zeros = dict(table)
    names = list(zeros)
    eyeriss = load_platform("eyeriss_v1")
    net = load_network("alexnet")
    out = {}
    for i, name in enumerate(names):
        nxt = names[min(i + 1, len(names) - 1)]
        layer = replace(net.layer(name), batch=4)
        g = layer.gemm
        task = LayerTask(
            layer=layer,
            profile=all_kept_profile(g.groups, g.rows, g.cols, "weights"),
            variant="dense",
            weight_bits=16,
            index_bits=4,
            activation_bits=16,
            activation_density=1 - zeros[name],
            output_density=1 - zeros[nxt],
        )
        counts = run_rowstationary(task, eyeriss)
        out[name] = (counts, price(counts, eyeriss, 16, 16))
    return out


def eyeriss_runs(tables) -> dict:
    layers = tables["eyeriss"]["layers"]
    return _eyeriss_runs(tuple((n, row["ifmap_zeros"]) for n, row in layers.items()))


@check
def eyeriss(tables, *, quantity: str, layer: str = "total") -> Prediction:
    """AlexNet CONV1-5 on Eyeriss v1: ``latency_ms``, ``dram_mb``, ``glb_mb`` or
    ``power_mw`` (chip power: energy without DRAM over latency), of a layer or in total."""
    runs = eyeriss_runs(tables)
    chosen = runs.values() if layer == "total" else [runs[layer]]
    if quantity == "latency_ms":
        v = sum(k.latency_s for _, k in chosen) * 1e3
    elif quantity in ("dram_mb", "glb_mb"):
        level = "dram" if quantity == "dram_mb" else "global_buffer"
        v = sum(c.bits(level) for c, _ in chosen) / 8 / 1e6
    elif quantity == "power_mw":
        e = sum(k.energy_j - k.energy_dram_j for _, k in chosen)
        v = e / sum(k.latency_s for _, k in chosen) * 1e3
    else:
        raise ConfigError("eyeriss check", f"unknown quantity {quantity!r}")
    return Prediction(predicted=v)


# --- SCALE-Sim -----------------------------------------------------------------------


def _dense_task(layer: Layer) -> LayerTask:
    g = layer.gemm
    prof = profile_gemm(np.ones((g.groups, g.rows, g.cols), np.uint8))
    return LayerTask(
        layer=layer, profile=prof, variant="dense", weight_bits=8, index_bits=4, activation_bits=8
    )


def _scalesim_runs(cfg: Path, topology: Path) -> list[tuple[int, int]]:
    """(compute cycles, DRAM words) of each layer in prunesim's SCALE-Sim mode."""
    run = engine(load_platform(cfg), "dense")
    out = []
    for layer in read_scalesim_topology(topology).layers:
        c = run(_dense_task(layer))
        w = c.words
        words = w["dram_ifmap_words"] + w["dram_filter_words"] + w["dram_ofmap_words"]
        out.append((int(c.compute_cycles), int(words)))
    return out


def _compare(pred: list[int], ref: list[int], what: str) -> Prediction:
    if len(pred) != len(ref) or not ref:
        raise ConfigError("scalesim check", f"{len(pred)} layers predicted, {len(ref)} recorded")
    errs = [abs(p / r - 1) if r else float(p != r) for p, r in zip(pred, ref, strict=True)]
    exact = sum(p == r for p, r in zip(pred, ref, strict=True))
    return Prediction(
        predicted=float(sum(pred)),
        reference=float(sum(ref)),
        error=max(errs),
        detail=f"{exact}/{len(ref)} layers {what} exact; error = largest per-layer error",
    )


@check
def scalesim_32x32(tables, *, data: Path, dataflow: str, quantity: str) -> Prediction:
    """Totals over AlexNet and ResNet-50 on SCALE-Sim's 32x32 array (``cycles`` or
    ``dram_words``) against tests/data/scalesim_v3_32x32.csv."""
    import csv
    import tempfile

    with open(data / "scalesim_v3_32x32.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["dataflow"] == dataflow]
    base = (data / "scalesim" / "scale.cfg").read_text().splitlines()
    text = "\n".join(
        f"Dataflow : {dataflow}" if ln.split(":")[0].strip() == "Dataflow" else ln for ln in base
    )
    pred: list[tuple[int, int]] = []
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / f"scale_{dataflow}.cfg"
        cfg.write_text(text + "\n")
        for topo in ("alexnet", "resnet50"):
            pred += _scalesim_runs(cfg, data / "scalesim" / f"{topo}.csv")
        ref = [
            (
                int(r["compute_cycles"]),
                int(r["dram_ifmap_reads"])
                + int(r["dram_filter_reads"])
                + int(r["dram_ofmap_writes"]),
            )
            for topo in ("alexnet", "resnet50")
            for r in rows
            if r["topology"] == topo
        ]
    i = 0 if quantity == "cycles" else 1
    return _compare([p[i] for p in pred], [r[i] for r in ref], quantity)


@check
def scalesim_small3(tables, *, data: Path, quantity: str) -> Prediction:
    """Totals over the nine small3 runs (8x16, 16x8, 5x12; ws/os/is)."""
    import csv

    small = data / "scalesim" / "small3"
    pred: list[int] = []
    ref: list[int] = []
    i = 0 if quantity == "cycles" else 1
    for cfg in sorted(small.glob("*.cfg")):
        pred += [p[i] for p in _scalesim_runs(cfg, small / "small3.csv")]
        comp = _read_report(small / f"{cfg.stem}_COMPUTE_REPORT.csv", csv)
        acc = _read_report(small / f"{cfg.stem}_DETAILED_ACCESS_REPORT.csv", csv)
        if quantity == "cycles":
            ref += [int(r["Total Cycles"]) for r in comp]
        else:
            ref += [
                int(r["DRAM IFMAP Reads"])
                + int(r["DRAM Filter Reads"])
                + int(r["DRAM OFMAP Writes"])
                for r in acc
            ]
    return _compare(pred, ref, quantity)


def _read_report(path: Path, csv) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return [
            {k.strip(): v.strip() for k, v in r.items() if k is not None}
            for r in csv.DictReader(f, skipinitialspace=True)
        ]


# --- MLPerf --------------------------------------------------------------------------


def bert_large(tokens: int, batch: int) -> list[Layer]:
    """BERT-large's encoder matrix products (24 layers, hidden 1024, 16 heads,
    intermediate 4096) at ``tokens`` per sequence."""
    out: list[Layer] = []
    for i in range(24):
        p = f"encoder.layer.{i}."
        for n in ("query", "key", "value", "output"):
            out.append(
                Linear(name=p + n, in_features=1024, out_features=1024, tokens=tokens, batch=batch)
            )
        out.append(MatMul(name=p + "scores", m=tokens, k=64, n=tokens, heads=16, batch=batch))
        out.append(MatMul(name=p + "context", m=tokens, k=tokens, n=64, heads=16, batch=batch))
        out.append(
            Linear(name=p + "ffn1", in_features=1024, out_features=4096, tokens=tokens, batch=batch)
        )
        out.append(
            Linear(name=p + "ffn2", in_features=4096, out_features=1024, tokens=tokens, batch=batch)
        )
    return out


@check
def mlperf_offline(
    tables, *, platform: str, model: str, batch: int, tokens: int = 384
) -> Prediction:
    """Per-sample time (us) of dense int8 inference at ``batch`` on one GPU."""
    from simulator.simulate import simulate_layer

    p = load_platform(platform)
    if model == "resnet50":
        layers = [replace(layer, batch=batch) for layer in load_network("resnet50").layers]
    elif model == "bert_large":
        layers = bert_large(tokens, batch)
    else:
        raise ConfigError("mlperf check", f"unknown model {model!r}")
    total = 0.0
    for layer in layers:
        g = layer.gemm
        prof = all_kept_profile(g.groups, g.rows, g.cols, "weights") if layer.prunable else None
        r = simulate_layer(layer, p, prof, variant="dense", weight_bits=8, activation_bits=8)
        total += r.cost.latency_s
    return Prediction(predicted=total / batch * 1e6)


# --- Vitis AI DPU: ResNet-50 on FPGA profiles --------------------------------------


def fpga_dense_image(platform: Platform, model: str = "resnet50") -> tuple[float, float]:
    """(seconds, DRAM bits) of one image, dense int8, on one core of the profile's dense
    engine (a DPU core runs one image at a time)."""
    from simulator.simulate import simulate_layer

    seconds = bits = 0.0
    for layer in load_network(model).layers:
        g = layer.gemm
        prof = all_kept_profile(g.groups, g.rows, g.cols, "weights") if layer.prunable else None
        r = simulate_layer(layer, platform, prof, variant="dense", weight_bits=8, activation_bits=8)
        seconds += r.cost.latency_s
        bits += r.dram_bits
    return seconds, bits


@check
def fpga_resnet50(
    tables, *, platform: str, quantity: str, clock_hz: float | None = None
) -> Prediction:
    """ResNet-50 on an FPGA profile's dense engine: ``latency`` (ms, one image on one
    core, as the model zoo's one-thread figure) or ``throughput`` (images/s with every
    core busy, each on its own image, the DRAM bandwidth shared: the lesser of cores /
    latency and bandwidth / DRAM bytes per image). ``clock_hz``: the same design run at
    this clock (Hz) instead of the profile's, its memories' bytes/s unchanged (a board
    that clocks the same core otherwise)."""
    p = load_platform(platform)
    if clock_hz is not None:
        p = replace(p, clock_hz=float(clock_hz))
    seconds, bits = fpga_dense_image(p)
    if quantity == "latency":
        at = f" at {p.clock_hz / 1e6:.0f} MHz" if clock_hz is not None else ""
        return Prediction(predicted=seconds * 1e3, detail=f"one core{at}, {seconds * 1e3:.2f} ms")
    cores = p.fpga.cores(sparse=False) if p.fpga is not None else 1
    dram = p.level("dram")
    by_dram = dram.bandwidth_bytes_per_s * 8 / bits if bits else float("inf")
    fps = min(cores / seconds, by_dram)
    bound = "DRAM" if by_dram < cores / seconds else "compute"
    return Prediction(predicted=fps, detail=f"{cores} core(s), {bound}-bound")


# --- sparse kernels ------------------------------------------------------------------


def _ffn(tokens: int = 128) -> Linear:
    return Linear(name="ffn", in_features=768, out_features=3072, tokens=tokens)


@check
def deepsparse_speedup(tables, *, sparsity: float) -> Prediction:
    """DeepSparse-class kernel on the Xeon, BERT-base FFN1 at 128 tokens, fp32."""
    p = only_kernels("xeon_8380", "deepsparse")
    layer = _ffn()
    return Prediction(
        predicted=layer_latency_s(layer, p) / layer_latency_s(layer, p, "sparse", 1 - sparsity)
    )


@check
def scalpel_speedup(
    tables, *, platform: str, kernel: str, layers: str = "all", batch: int = 1
) -> Prediction:
    """Plain (non-structured) pruning as Scalpel compares it: AlexNet at Han et al.'s
    per-layer kept fractions, dense time over CSR time on ``platform`` with only its
    csr kernel ``kernel``, fp32, at ``batch``; ``layers``: ``all``, ``conv`` or ``fc``."""
    density = tables["scalpel"]["alexnet_weight_density"]
    p = only_kernels(platform, kernel)
    dense = sparse = 0.0
    for layer in load_network("alexnet").layers:
        kind = "fc" if isinstance(layer, Linear) else "conv"
        if layers not in ("all", kind):
            continue
        layer = replace(layer, batch=batch)
        dense += layer_latency_s(layer, p)
        sparse += layer_latency_s(layer, p, "sparse", density[layer.name])
    return Prediction(
        predicted=dense / sparse, detail=f"dense {1e3 * dense:.3g} ms, CSR {1e3 * sparse:.3g} ms"
    )


@check
def xnnpack_speedup(tables) -> Prediction:
    """XNNPACK sparse on the Cortex-A72: MobileNet v1 1x1 conv 512 -> 512 at 14x14, 90 %."""
    p = only_kernels("cortex_a72", "xnnpack-sparse")
    layer = Linear(name="pw", in_features=512, out_features=512, tokens=14 * 14)
    return Prediction(
        predicted=layer_latency_s(layer, p) / layer_latency_s(layer, p, "sparse", 0.1)
    )


@check
def sputnik_speedup(tables) -> Prediction:
    """Sputnik on the V100: BERT-base FFN1 at 128 tokens, 90 % sparse, fp32 (one GEMM,
    without the dense rest of the network)."""
    p = only_kernels("v100", "sputnik")
    layer = _ffn()
    return Prediction(
        predicted=layer_latency_s(layer, p) / layer_latency_s(layer, p, "sparse", 0.1)
    )


@check
def cusparse_breakeven(tables) -> Prediction:
    """cuSPARSE on the V100: break-even density on BERT-base FFN1, fp32."""
    return Prediction(predicted=breakeven_density(_ffn(), only_kernels("v100", "cusparse")))


@check
def cusparselt_speedup(tables, *, platform: str) -> Prediction:
    """cuSPARSELt 2:4 over dense on a 4096^3 fp16 GEMM."""
    p = only_kernels(platform, "sputnik", "cusparselt")
    layer = Linear(name="g", in_features=4096, out_features=4096, tokens=4096)
    return Prediction(
        predicted=layer_latency_s(layer, p, bits=16) / layer_latency_s(layer, p, "nm", bits=16)
    )


@check
def csr_breakeven(tables, *, rows: int, cols: int, n_cols: int) -> Prediction:
    """The MKL-class CSR kernel (moved from this project's host by the transfer rule)
    on the Xeon: break-even density of a GEMM shape, fp32."""
    layer = Linear(name="g", in_features=cols, out_features=rows, tokens=n_cols)
    return Prediction(predicted=breakeven_density(layer, only_kernels("xeon_8380", "csr-mkl")))


# --- SCNN ------------------------------------------------------------------------------


@functools.cache
def _scnn_network(network: str, layers: tuple) -> tuple[float, float, float, float]:
    """(DCNN latency, DCNN energy, SCNN latency, SCNN energy) of a network's conv
    layers on the scnn profile, each layer at its (weight, activation) densities."""
    from simulator.dataflows import run_scnn

    p = load_platform("scnn")
    net = load_network(network)
    out = [0.0, 0.0, 0.0, 0.0]
    for name, wd, ad in layers:
        layer = net.layer(name)
        for j, variant in enumerate(("dense", "sparse")):
            spec = Pruning(structure="dense") if variant == "dense" else Pruning(density=wd)
            task = LayerTask(
                layer=layer,
                profile=profile_mask(layer, generate_mask(layer, spec)),
                variant=variant,
                weight_bits=16,
                index_bits=4,
                activation_bits=16,
                activation_density=ad if variant == "sparse" else 1.0,
            )
            cost = price(run_scnn(task, p), p, 16, 16)
            out[2 * j] += cost.latency_s
            out[2 * j + 1] += cost.energy_j
    return tuple(out)


def _scnn_layers(tables, network: str, density: float | None) -> tuple:
    rows = tables["scnn"]["densities"][network]
    return tuple(
        (name, density or r["weight"], density or r["activation"]) for name, r in rows.items()
    )


@check
def scnn(tables, *, network: str, quantity: str, density: float | None = None) -> Prediction:
    """SCNN over its dense baseline (DCNN) on a network's conv layers: ``speedup``
    (DCNN time / SCNN time) or ``energy`` (DCNN energy / SCNN energy); ``density``
    sets every layer's weight and activation density (the paper's sweep)."""
    d_t, d_e, s_t, s_e = _scnn_network(network, _scnn_layers(tables, network, density))
    return Prediction(predicted=d_t / s_t if quantity == "speedup" else d_e / s_e)


# --- LLM decode: dense tokens/s -----------------------------------------------------


def with_dram_bandwidth(platform_name: str, name: str, bytes_per_s: float) -> Platform:
    """A built-in profile with its DRAM level's bandwidth replaced (another memory
    variant of the same chip, e.g. the A100's 80 GB HBM2e card), named ``name``."""
    raw = dict(load_platform(platform_name).raw)
    raw["name"] = name
    memory = [dict(level) for level in raw["memory"]]
    drams = [level for level in memory if level["kind"] == "dram"]
    if len(drams) != 1:
        raise ConfigError(f"platform {platform_name!r}", "needs exactly one dram level")
    drams[0]["bandwidth_bytes_per_s"] = bytes_per_s
    raw["memory"] = memory
    return platform_from_dict(raw)


@dataclass(frozen=True, kw_only=True)
class DecodeStep:
    """One dense decode step of a network on a platform: ``latency_s`` in all,
    ``overhead_s`` of it the per-layer fixed cost (``layer_overhead_ns`` x layers),
    ``dram_bytes`` moved, over ``layers`` layers."""

    latency_s: float
    overhead_s: float
    dram_bytes: float
    layers: int

    @property
    def tokens_per_s(self) -> float:
        """Tokens per second per sequence: one over the step's latency."""
        return 1.0 / self.latency_s


def dense_decode_step(
    network: str, platform: Platform, *, batch: int, context: int, bits: int
) -> DecodeStep:
    """Dense decode step of the built-in Hugging Face ``network`` (``batch`` sequences,
    ``context`` cached positions), weights and activations at ``bits``, layer by layer
    on the roofline."""
    from simulator.hfconfig import Phase
    from simulator.simulate import simulate_layer

    net = load_network(network, phase=Phase(kind="decode", batch=batch, context=context))
    latency = overhead = dram_bits = 0.0
    for layer in net.layers:
        g = layer.gemm
        prof = all_kept_profile(g.groups, g.rows, g.cols, "weights") if layer.prunable else None
        r = simulate_layer(
            layer, platform, prof, variant="dense", weight_bits=bits, activation_bits=bits
        )
        latency += r.cost.latency_s
        overhead += r.counts.overhead_s
        dram_bits += r.dram_bits
    return DecodeStep(
        latency_s=latency, overhead_s=overhead, dram_bytes=dram_bits / 8, layers=len(net.layers)
    )


@check
def llm_decode_tokens_per_s(
    tables,
    *,
    network: str,
    platform: str,
    memory: str | None = None,
    batch: int = 1,
    context: int,
    bits: int = 16,
) -> Prediction:
    """Dense decode tokens/s (per sequence) of ``network`` on ``platform``; ``memory``:
    a path into the tables giving another DRAM bandwidth (bytes/s) for the same chip."""
    if memory is None:
        p = load_platform(platform)
    else:
        node: Any = tables
        for part in memory.split("."):
            node = node[part]
        p = with_dram_bandwidth(platform, f"{platform}_{memory.split('.')[-1]}", float(node))
    step = dense_decode_step(network, p, batch=batch, context=context, bits=bits)
    stream = step.latency_s - step.overhead_s
    return Prediction(
        predicted=step.tokens_per_s,
        detail=(
            f"{step.latency_s * 1e3:.2f} ms a token: {step.dram_bytes / 1e9:.2f} GB streamed in "
            f"{stream * 1e3:.2f} ms, {step.layers} layers x "
            f"{step.overhead_s / step.layers * 1e6:.2f} us overhead = "
            f"{step.overhead_s * 1e3:.2f} ms"
        ),
    )
