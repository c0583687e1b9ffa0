"""The ``prunesim`` command line: ``main(argv) -> int``.

The only place that prints errors and picks exit codes: bad input of any kind is
one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from simulator import __version__
from simulator.errors import ConfigError, PrunesimError
from simulator.formats import FORMATS, FormatParams
from simulator.formats.formulas import EXPECTED_FORMATS
from simulator.hwconfig import HWCONFIG_SCHEMA, builtin_platforms, load_platform
from simulator.masks import STRUCTURES, Pruning, density_from, load_levels, parse_nm
from simulator.report import records, table, write_csv, write_json
from simulator.simulate import estimate_variants, prepare_profiles, simulate_network
from simulator.storage import (
    STRUCTURED_FORMAT,
    network_storage,
    storage_breakeven,
)
from simulator.units import bits_to_bytes
from simulator.workloads import (
    MODEL_SCHEMA,
    Network,
    builtin_models,
    load_network,
    parse_inline_layer,
)

EPILOG_STORAGE = """\
examples:
  prunesim storage                          # every built-in network, rate 8x, 4-bit weights/indices
  prunesim storage resnet50 --rate 8 --weight-bits 4 --index-bits 4
  prunesim storage alexnet --sparsity 0.9 --format csr-rel --format csc-rel --csv out/alexnet.csv
  prunesim storage vgg16 --structure filter --rate 4        # a structured mask in every format
  prunesim storage alexnet --levels levels.yaml             # per-layer rates (layer: {rate: 8})
  prunesim storage --layer conv2d:in=256,out=256,k=3,input=14x14,pad=1 --rate 10
  prunesim storage lenet5 --structured filter --structured-rate 4 --json out/lenet.json

Bits are exact for the generated (or given) masks. The break-even table gives the
non-structured rate whose expected storage in --sparse-format equals the storage
of --structured pruning at --structured-rate in the format made for it (filter,
channel, column: compact; block: bsr; nm: nm); "never" means no rate is sparse
enough (one kept weight with its pointers already costs more).
"""


def _kib(bits: float) -> float:
    return bits_to_bytes(bits) / 1024


def _footnote(frames_or_totals, formats) -> None:
    if "nm" in formats and any(
        not t.set_index("format").at["nm", "representable"] for t in frames_or_totals
    ):
        print("  -: the mask is not N:M, so the nm format cannot hold it")


def _pair(text: str) -> tuple[int, int]:
    try:
        parts = [int(x) for x in text.lower().split("x")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected B or RxC, got {text!r}") from None
    if len(parts) == 1:
        parts *= 2
    if len(parts) != 2 or min(parts) < 1:
        raise argparse.ArgumentTypeError(f"expected positive B or RxC, got {text!r}")
    return parts[0], parts[1]


def _nm(text: str) -> tuple[int, int]:
    try:
        return parse_nm(text)
    except PrunesimError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _formats(text: str) -> list[str]:
    out = [f.strip() for f in text.split(",") if f.strip()]
    if not out:
        raise argparse.ArgumentTypeError(f"expected format names, one of {', '.join(FORMATS)}")
    bad = [f for f in out if f not in FORMATS]
    if bad:
        raise argparse.ArgumentTypeError(
            f"unknown format {', '.join(bad)} (choose from {', '.join(FORMATS)})"
        )
    return out


def _add_pruning_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("pruning (generated masks)")
    g.add_argument(
        "--structure",
        choices=[s for s in STRUCTURES if s != "magnitude"],
        default="random",
        help="mask structure: random (non-structured, exact count), filter (whole "
        "output channels), channel (input channels), column (GEMM columns), "
        "block (tiles, see --block), nm (see --nm), dense. Default: random",
    )
    _add_level_options(g)
    g.add_argument(
        "--block",
        type=_pair,
        default=(4, 4),
        metavar="RxC",
        help="tile size of block pruning and of the bsr format (default 4x4)",
    )
    g.add_argument(
        "--nm",
        type=_nm,
        default=(2, 4),
        metavar="N:M",
        help="N:M pattern of nm pruning and of the nm format (default 2:4)",
    )


def _add_level_options(g) -> None:
    """The pruning level (rate, sparsity or density), per-layer levels and the seed."""
    lvl = g.add_mutually_exclusive_group()
    lvl.add_argument(
        "--rate",
        type=float,
        help="pruning rate: 8 keeps 1/8 of the weights (default 8 when no level is given)",
    )
    lvl.add_argument("--sparsity", type=float, help="fraction removed, e.g. 0.875")
    lvl.add_argument("--density", type=float, help="fraction kept, e.g. 0.125")
    g.add_argument(
        "--levels",
        type=Path,
        metavar="FILE",
        help="YAML of per-layer levels overriding the global one, e.g. "
        "'fc6: {rate: 11}' or 'conv1: {sparsity: 0.16}'",
    )
    g.add_argument("--seed", type=_count(0), default=0, help="mask seed (default 0)")


def _add_format_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("storage formats")
    g.add_argument(
        "--weight-bits",
        type=int,
        default=4,
        metavar="B",
        help="bits per stored weight value (default 4)",
    )
    g.add_argument(
        "--index-bits",
        type=int,
        default=4,
        metavar="I",
        help="bits per relative index of csr-rel/csc-rel; a zero run longer "
        "than 2^I - 1 costs filler entries (default 4, as in EIE)",
    )
    g.add_argument(
        "--pointer-bits",
        type=int,
        metavar="P",
        help="fixed pointer width (default: ceil(log2(entries + 1)))",
    )
    g.add_argument(
        "--abs-index-bits",
        type=int,
        metavar="A",
        help="fixed absolute index width of csr/csc (default: ceil(log2 length))",
    )


def _pruning(args: argparse.Namespace, network: Network) -> Pruning:
    if args.rate is None and args.sparsity is None and args.density is None:
        args.rate = 8.0
    d = density_from(
        rate=args.rate,
        sparsity=args.sparsity,
        density=args.density,
        where="--rate/--sparsity/--density",
    )
    per_layer = load_levels(args.levels) if args.levels else {}
    unknown = sorted(set(per_layer) - {layer.name for layer in network.prunable_layers})
    if unknown:
        raise ConfigError(
            str(args.levels), f"no prunable layer named {', '.join(unknown)} in {network.name}"
        )
    return Pruning(
        structure=args.structure,
        density=d,
        per_layer=per_layer,
        block=args.block,
        nm=args.nm,
        seed=args.seed,
    )


def _networks(args: argparse.Namespace) -> list[Network]:
    if args.layer:
        if args.model:
            raise ConfigError("--layer", "give either MODEL or --layer, not both")
        layer = parse_inline_layer(args.layer)
        return [Network(name=layer.name, layers=(layer,), description="inline layer")]
    names = args.model or list(builtin_models())
    return [load_network(n) for n in names]


def _add_checkpoint_options(p: argparse.ArgumentParser, own_group: bool = True) -> None:
    g = p.add_argument_group("checkpoint (real masks)") if own_group else p
    if own_group:
        g.add_argument(
            "--checkpoint",
            type=Path,
            metavar="FILE",
            help="take the masks from a pruned checkpoint (.pt/.pth, .safetensors, "
            ".npz, .onnx); with an ONNX file no MODEL is needed",
        )
    g.add_argument(
        "--mapping",
        type=Path,
        metavar="FILE",
        help="YAML 'layer name: tensor name' for names that do not match",
    )
    g.add_argument(
        "--input-shape",
        type=_csv_list(int),
        metavar="C,H,W",
        help="input shape for a network derived from a state_dict, or to pin an "
        "ONNX model's symbolic dimensions",
    )
    g.add_argument(
        "--threshold",
        type=float,
        default=0.0,
        metavar="T",
        help="weights with |w| <= T count as pruned where the file stores no "
        "mask (default 0: exact zeros)",
    )


def _read_checkpoint(args: argparse.Namespace, path: Path):
    """The checkpoint, mapped onto MODEL when one is given, else onto its own network."""
    from simulator.checkpoints import read_checkpoint

    models = getattr(args, "model", None) or []
    if len(models) > 1:
        raise ConfigError("--model", "give at most one network to map a checkpoint onto")
    network = load_network(models[0]) if models else None
    return read_checkpoint(
        path,
        network=network,
        mapping=args.mapping,
        input_shape=args.input_shape,
        threshold=args.threshold,
    )


def _checkpoint_masks(ckpt) -> dict:
    """Masks for every prunable layer: the checkpoint's, all-kept where it has none."""
    masks = ckpt.masks()
    for layer in ckpt.network.prunable_layers:
        if layer.name not in masks:
            masks[layer.name] = np.ones(layer.weight_shape, dtype=bool)
    return masks


def _print_checkpoint_notes(ckpt) -> None:
    for name in ckpt.unmatched:
        print(f"note: no tensor for layer {name!r}: taken as unpruned", file=sys.stderr)
    for w in ckpt.warnings:
        print(f"note: {w}", file=sys.stderr)


def cmd_inspect(args: argparse.Namespace) -> int:
    ckpt = _read_checkpoint(args, args.checkpoint)
    s = ckpt.summary()
    rows = [
        [
            r["layer"],
            r["tensor"],
            "x".join(map(str, r["shape"])),
            int(r["weights"]),
            int(r["kept"]),
            float(r["density"]),
            r["structure"],
            r["mask_source"],
        ]
        for _, r in s.iterrows()
    ]
    total_w, total_k = int(s["weights"].sum()), int(s["kept"].sum())
    rows += [
        None,
        ["total", "", "", total_w, total_k, total_k / total_w if total_w else 0.0, "", ""],
    ]
    print(
        table(
            rows,
            ["layer", "tensor", "shape", "weights", "kept", "density", "structure", "mask from"],
            title=f"{ckpt.path} ({ckpt.format}) onto {ckpt.network.name}",
            digits=[0, 0, 0, 0, 0, 4, 0, 0],
        )
    )
    if ckpt.unmatched:
        print(f"\nlayers with no tensor ({len(ckpt.unmatched)}): {', '.join(ckpt.unmatched)}")
    if ckpt.skipped:
        print(f"\ntensors not used ({len(ckpt.skipped)}):")
        for name, why in ckpt.skipped:
            print(f"  {name}: {why}")
    for w in ckpt.warnings:
        print(f"\nwarning: {w}")
    if args.csv:
        print(f"\nwrote {write_csv(args.csv, s.assign(shape=s['shape'].map(str)))}")
    if args.json:
        doc = {
            "path": ckpt.path,
            "format": ckpt.format,
            "network": ckpt.network.name,
            "layers": records(s.assign(shape=s["shape"].map(list))),
            "unmatched": list(ckpt.unmatched),
            "skipped": [{"tensor": n, "reason": r} for n, r in ckpt.skipped],
            "warnings": list(ckpt.warnings),
        }
        print(f"wrote {write_json(args.json, doc)}")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    rows = []
    for name in builtin_models():
        net = load_network(name)
        rows.append(
            [
                name,
                len(net.layers),
                len(net.prunable_layers),
                net.weight_count,
                net.macs / 1e9,
                net.description,
            ]
        )
    print(table(rows, ["model", "layers", "prunable", "weights", "GMACs", "description"], digits=3))
    return 0


def cmd_storage(args: argparse.Namespace) -> int:
    ckpt = _read_checkpoint(args, args.checkpoint) if args.checkpoint else None
    networks = [ckpt.network] if ckpt else _networks(args)
    params = FormatParams(
        weight_bits=args.weight_bits,
        index_bits=args.index_bits,
        pointer_bits=args.pointer_bits,
        abs_index_bits=args.abs_index_bits,
        block=args.block,
        nm=args.nm,
    )
    formats = [f for group in (args.format or [list(FORMATS)]) for f in group]
    formats = list(dict.fromkeys(formats))
    per_layer = args.per_layer if args.per_layer is not None else len(networks) == 1
    frames, totals, breakeven = [], [], []
    for net in networks:
        if ckpt:
            _print_checkpoint_notes(ckpt)
            masks = _checkpoint_masks(ckpt)
            kept = sum(int(m.sum()) for m in masks.values())
            density = kept / sum(m.size for m in masks.values())
            pruning = Pruning(structure="dense", density=max(density, 1e-12), seed=args.seed)
            result = network_storage(net, pruning, params, formats, masks=masks)
            result = dataclasses.replace(result, pruning=f"masks of {ckpt.path}")
        else:
            pruning = _pruning(args, net)
            result = network_storage(net, pruning, params, formats)
        frame, tot = result.to_frame(), result.totals()
        frames.append(frame)
        totals.append(tot)
        s_rate = args.structured_rate or (1.0 / pruning.density)
        be = storage_breakeven(
            net, args.structured, s_rate, params, args.sparse_format, seed=args.seed
        )
        breakeven += be
        if per_layer:
            _print_layers(net, result.pruning, params, frame, tot, formats)
            _print_breakeven(be, args, s_rate, params, per_layer=True)
    if not per_layer:
        _print_totals(totals, formats, result.pruning, params)
        _print_breakeven(breakeven, args, s_rate, params, per_layer=False)
    long = pd.concat(frames, ignore_index=True)
    be_frame = pd.DataFrame([b.as_dict() for b in breakeven])
    if args.csv:
        path = write_csv(args.csv, long)
        be_path = write_csv(path.with_name(path.stem + "-breakeven.csv"), be_frame)
        print(f"\nwrote {path} and {be_path}")
    if args.json:
        payload = {
            "params": {
                "weight_bits": params.weight_bits,
                "index_bits": params.index_bits,
                "pointer_bits": params.pointer_bits,
                "block": params.block,
                "nm": params.nm,
            },
            "storage": records(long),
            "totals": records(pd.concat(totals, ignore_index=True)),
            "breakeven": records(be_frame),
        }
        print(f"\nwrote {write_json(args.json, payload)}")
    return 0


def _print_layers(net, label, params, frame, tot, formats) -> None:
    wide = frame.pivot(index="layer", columns="format", values="total_bits")
    ok = frame.pivot(index="layer", columns="format", values="representable")
    info = frame.drop_duplicates("layer").set_index("layer")
    rows = []
    for layer in info.index:
        cells = [_kib(wide.at[layer, f]) if ok.at[layer, f] else None for f in formats]
        rows.append(
            [layer, int(info.at[layer, "weights"]), float(info.at[layer, "density"]), *cells]
        )
    t = tot.set_index("format")
    rows.append(None)
    rows.append(
        [
            "total",
            int(t["weights"].iloc[0]),
            float(t["density"].iloc[0]),
            *[_kib(t.at[f, "total_bits"]) if t.at[f, "representable"] else None for f in formats],
        ]
    )
    rows.append(["x smaller than dense", None, None, *[t.at[f, "compression"] for f in formats]])
    title = (
        f"{net.name}: {label}, {params.weight_bits}-bit weights, "
        f"{params.index_bits}-bit relative indices — storage in KiB"
    )
    digits = [0, 0, 4, *[2] * len(formats)]
    print(table(rows, ["layer", "weights", "density", *formats], title=title, digits=digits))
    _footnote([tot], formats)


def _print_totals(totals, formats, label, params) -> None:
    rows = []
    for tot in totals:
        t = tot.set_index("format")
        rows.append(
            [
                t["network"].iloc[0],
                int(t["weights"].iloc[0]),
                float(t["density"].iloc[0]),
                *[
                    _kib(t.at[f, "total_bits"]) / 1024 if t.at[f, "representable"] else None
                    for f in formats
                ],
            ]
        )
    title = (
        f"{label}, {params.weight_bits}-bit weights, {params.index_bits}-bit relative "
        f"indices — storage in MiB"
    )
    digits = [0, 0, 4, *[2] * len(formats)]
    print(table(rows, ["network", "weights", "density", *formats], title=title, digits=digits))
    _footnote(totals, formats)


def _print_breakeven(be, args, s_rate, params, *, per_layer: bool) -> None:
    rows = []
    for b in be:
        if per_layer or b.layer == "(network)":
            name = b.layer if per_layer else b.network
            rows.append(
                [name, b.structured_rate, _kib(b.structured_bits), b.nonstructured_rate, b.ratio]
            )
    title = (
        f"\nStorage break-even: {args.structured} pruning at {s_rate:g}x "
        f"({STRUCTURED_FORMAT[args.structured]}) vs non-structured in {args.sparse_format} "
        f"(i.i.d. mask, {params.weight_bits}-bit weights, {params.index_bits}-bit index)"
    )
    print(
        table(
            rows,
            [
                "layer" if per_layer else "network",
                "structured rate",
                "KiB",
                "non-structured rate needed",
                "ratio",
            ],
            title=title,
            digits=2,
        )
    )


EPILOG_ESTIMATE = """\
examples:
  prunesim estimate resnet50 --platform a100 --rate 8
  prunesim estimate alexnet --platform eie --sparsity 0.9 --activation-density 0.35
  prunesim estimate vgg16 --platform zcu102 --platform alveo_u250 --totals
  prunesim estimate lenet5 --platform all --rate 16 --json out/lenet.json
  prunesim estimate mymodel.yaml --platform my_accelerator.yaml --structured channel

Variants, all at the same level: dense; structured (--structured pruning, run as a
smaller dense problem); non-structured ("sparse": a random mask on the engine's
sparse path, or on the dense path where the engine has none); and nm where the
platform has an N:M unit. Latency is the largest of the compute, DRAM and SRAM
bounds; "bound" names it. Speedup and energy ratio compare with dense on the same
platform.
"""


def _platforms(names: list[str]) -> list:
    flat = [n.strip() for group in names for n in group.split(",") if n.strip()]
    if flat == ["all"]:
        flat = list(builtin_platforms())
    if not flat:
        raise ConfigError("--platform", "no platform given (a name, a file, or 'all')")
    platforms = [load_platform(n) for n in flat]
    if len({p.name for p in platforms}) < len(platforms):
        raise ConfigError("--platform", "two profiles share a name: give each its own name:")
    return platforms


def _progress(total: int, enabled: bool):
    """A tqdm progress bar on stderr when it is a terminal, else a no-op callable."""
    if not enabled or not sys.stderr.isatty():
        return None, (lambda: None)
    from tqdm import tqdm

    bar = tqdm(total=total, unit="layer", leave=False, file=sys.stderr)
    return bar, (lambda: bar.update())


def cmd_estimate(args: argparse.Namespace) -> int:
    ckpt = _read_checkpoint(args, args.checkpoint) if args.checkpoint else None
    networks = [ckpt.network] if ckpt else _networks(args)
    platforms = _platforms(args.platform)
    params = FormatParams(weight_bits=args.weight_bits, index_bits=args.index_bits)
    frames, totals = [], []
    for net in networks:
        variants_all: dict = {}
        if ckpt:
            _print_checkpoint_notes(ckpt)
            pruning, variants_all = _checkpoint_variants(ckpt, args)
        else:
            pruning = _pruning(args, net)
        for p in platforms:
            for name, spec in estimate_variants(p, pruning, args.structured).items():
                variants_all.setdefault(name, spec)
        profiles = prepare_profiles(net, variants_all)
        work = len(net.layers) * sum(
            len(estimate_variants(p, pruning, args.structured)) + 1 for p in platforms
        )
        bar, tick = _progress(work, work > 200)
        for p in platforms:
            wanted = ["dense", *estimate_variants(p, pruning, args.structured)]
            est = simulate_network(
                net,
                p,
                profiles,
                weight_bits=params.weight_bits,
                index_bits=params.index_bits,
                activation_bits=args.activation_bits,
                activation_density=args.activation_density,
                seed=args.seed,
                variants=wanted,
                on_layer=tick,
            )
            frame, tot = est.frame(), est.totals()
            frames.append(frame)
            totals.append(tot)
            if bar is None and (
                args.per_layer
                or (args.per_layer is None and len(networks) == 1 and len(platforms) == 1)
            ):
                _print_estimate_layers(net, p, pruning, params, frame, wanted)
        if bar is not None:
            bar.close()
    _print_estimate_totals(pd.concat(totals, ignore_index=True), pd.concat(frames))
    long = pd.concat(frames, ignore_index=True)
    tot = pd.concat(totals, ignore_index=True)
    if args.csv:
        path = write_csv(args.csv, long)
        tpath = write_csv(path.with_name(path.stem + "-totals.csv"), tot)
        print(f"\nwrote {path} and {tpath}")
    if args.json:
        print(f"\nwrote {write_json(args.json, {'layers': records(long), 'totals': records(tot)})}")
    return 0


STRUCTURED_KINDS = {
    "dense",
    "empty",
    "filter",
    "channel",
    "column",
    "filter+channel",
    "filter+column",
}


def _checkpoint_variants(ckpt, args) -> tuple[Pruning, dict]:
    """The checkpoint's masks as the variant they are (structured, N:M or sparse), and
    a pruning at the same per-layer densities for the generated counterparts."""
    masks = _checkpoint_masks(ckpt)
    structures = {cl.structure for cl in ckpt.layers}
    if structures <= STRUCTURED_KINDS:
        variant = "structured"
    elif all(":" in s or s in ("dense", "empty") for s in structures):
        variant = "nm"
    else:
        variant = "sparse"
    per_layer = {cl.name: max(cl.density, 1e-9) for cl in ckpt.layers}
    kept = sum(int(m.sum()) for m in masks.values())
    density = max(kept / sum(m.size for m in masks.values()), 1e-9)
    pruning = Pruning(structure="random", density=density, per_layer=per_layer, seed=args.seed)
    return pruning, {variant: masks}


def _print_estimate_layers(net, platform, pruning, params, frame, variants) -> None:
    lat = frame.pivot(index="layer", columns="variant", values="latency_s")
    en = frame.pivot(index="layer", columns="variant", values="energy_j")
    bound = frame.pivot(index="layer", columns="variant", values="bound")
    rows = []
    for layer in dict.fromkeys(frame["layer"]):
        rows.append(
            [
                layer,
                *[lat.at[layer, v] * 1e6 for v in variants],
                *[en.at[layer, v] * 1e6 for v in variants],
                "/".join(str(bound.at[layer, v]) for v in variants),
            ]
        )
    headers = [
        "layer",
        *[f"{v} us" for v in variants],
        *[f"{v} uJ" for v in variants],
        "bound (" + "/".join(variants) + ")",
    ]
    title = (
        f"{net.name} on {platform.name}: {params.weight_bits}-bit weights, "
        f"level {1 / pruning.density:g}x — latency and energy per layer"
    )
    digits = [0, *[2] * (2 * len(variants)), 0]
    print(table(rows, headers, title=title, digits=digits))
    print()


def _print_estimate_totals(tot, frames) -> None:
    main_bound = frames.groupby(["network", "platform", "variant"]).apply(
        lambda d: d.groupby("bound")["latency_s"].sum().idxmax(), include_groups=False
    )
    rows = []
    for _, r in tot.iterrows():
        e = r["energy_j"]
        split = [
            r[f"energy_{k}_j"] / e * 100 if e else 0.0
            for k in ("dram", "sram", "mac", "index", "static")
        ]
        engine = (
            frames[
                (frames["network"] == r["network"])
                & (frames["platform"] == r["platform"])
                & (frames["variant"] == r["variant"])
            ]["engine"]
            .mode()
            .iloc[0]
        )
        rows.append(
            [
                r["network"],
                r["platform"],
                r["variant"],
                engine,
                r["latency_s"] * 1e3,
                r["speedup"],
                r["energy_j"] * 1e3,
                r["energy_ratio"],
                r["pe_utilization"],
                main_bound[(r["network"], r["platform"], r["variant"])],
                "/".join(f"{x:.0f}" for x in split),
            ]
        )
    headers = [
        "network",
        "platform",
        "variant",
        "engine",
        "latency ms",
        "speedup",
        "energy mJ",
        "energy ratio",
        "PE util",
        "main bound",
        "energy % DRAM/SRAM/MAC/idx/static",
    ]
    print(
        table(
            rows,
            headers,
            title="Totals (speedup and energy ratio against dense on the same platform)",
            digits=[0, 0, 0, 0, 3, 2, 3, 2, 2, 0, 0],
        )
    )


EPILOG_STUDY = """\
examples:
  prunesim study                                   # every built-in network and platform
  prunesim study --networks lenet5,alexnet --platforms eie,a100 --out out/small
  prunesim study --weight-bits 4,8 --index-bits 4 --structures filter,channel
  prunesim study --rate resnet50=16 --rate vgg16=13 --sweep-rates 2,4,8,16,32
  prunesim study --jobs 1 --no-resume

Writes into --out: tables/*.csv and *.json (every number), plots/*.png and report.md.
Each network's results are saved as soon as it finishes (out/parts/), so an
interrupted study resumes where it stopped when run again with the same options.
"""


def _csv_list(kind):
    def parse(text: str):
        try:
            out = tuple(kind(x.strip()) for x in text.split(",") if x.strip())
        except ValueError:
            msg = f"expected a comma-separated list, got {text!r}"
            raise argparse.ArgumentTypeError(msg) from None
        if not out:
            raise argparse.ArgumentTypeError("expected at least one value")
        if kind is float and not all(math.isfinite(x) for x in out):
            raise argparse.ArgumentTypeError(f"expected finite numbers, got {text!r}")
        return out

    return parse


def _count(low: int):
    """An integer of at least ``low``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
        return value

    return parse


def _net_rate(text: str) -> tuple[str, float]:
    name, _, value = text.partition("=")
    try:
        return name.strip(), float(value)
    except ValueError:
        msg = f"expected NETWORK=RATE, e.g. resnet50=8, got {text!r}"
        raise argparse.ArgumentTypeError(msg) from None


def _net_path(text: str) -> tuple[str, str]:
    name, eq, value = text.partition("=")
    if not eq or not name.strip() or not value.strip():
        raise argparse.ArgumentTypeError(f"expected NETWORK=FILE, got {text!r}")
    return name.strip(), value.strip()


def cmd_study(args: argparse.Namespace) -> int:
    from simulator.study import PAPER_RATES, StudyConfig, run_study
    from simulator.studyreport import verdict_table, write_study

    rates = dict(PAPER_RATES)
    given = dict(args.rate or [])
    rates.update(given)
    fields = {
        "networks": args.networks,
        "weight_bits": args.weight_bits,
        "index_bits": args.index_bits,
        "structures": args.structures,
        "structured_rates": args.structured_rates,
        "sweep_rates": args.sweep_rates,
    }
    kw = {k: v for k, v in fields.items() if v is not None}
    if args.platforms:
        names = [n for n in args.platforms if n != "all"]
        kw["platforms"] = tuple(names) if names else ()
    config = StudyConfig(
        rates=rates,
        default_rate=args.default_rate,
        seed=args.seed,
        checkpoints=dict(args.checkpoint or []),
        **kw,
    )
    for name in config.platform_names():
        load_platform(name)
    studied = {load_network(n).name for n in config.networks}
    unknown = sorted(set(given) - studied)
    if unknown:
        raise ConfigError(
            "--rate",
            f"no network {', '.join(unknown)} among those studied ({', '.join(sorted(studied))})",
        )
    for name, rate in given.items():
        if not (math.isfinite(rate) and rate >= 1):
            raise ConfigError("--rate", f"{name}: rate must be finite and >= 1, got {rate}")
    jobs = args.jobs if args.jobs is not None else min(2, os.cpu_count() or 1)

    bar = None

    def progress(total: int):
        nonlocal bar
        if not sys.stderr.isatty():
            return None
        from tqdm import tqdm

        bar = tqdm(total=total, unit="step", desc="study", file=sys.stderr, leave=False)
        return lambda: bar.update()

    try:
        result = run_study(
            config, args.out, progress=progress, resume=not args.no_resume, jobs=jobs
        )
    finally:
        if bar is not None:
            bar.close()
    report = write_study(result)
    print(verdict_table(result))
    if result.resumed:
        print(f"\n(reused earlier results for: {', '.join(result.resumed)})")
    print(
        f"\nreport: {report}\ntables: {result.out_dir / 'tables'}\n"
        f"plots:  {result.out_dir / 'plots'}"
    )
    return 0


def cmd_platforms(args: argparse.Namespace) -> int:
    rows = []
    for name in builtin_platforms():
        p = load_platform(name)
        if p.fpga is not None:
            side = math.isqrt(p.fpga.pes_that_fit(sparse=False))
            pes = f"{side}x{side} dense / {p.fpga.pes_that_fit(sparse=True)} sparse"
        else:
            pes = str(p.compute.pes)
        dram = p.level("dram")
        rows.append(
            [
                name,
                p.platform_class,
                p.execution,
                p.clock_hz / 1e6,
                pes,
                dram.bandwidth_bytes_per_s / 1e9 if dram else None,
                p.description,
            ]
        )
    print(
        table(
            rows,
            ["platform", "class", "execution", "MHz", "PEs", "DRAM GB/s", "description"],
            digits=[0, 0, 0, 0, 0, 1, 0],
        )
    )
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    schema = HWCONFIG_SCHEMA if args.kind == "hwconfig" else MODEL_SCHEMA
    print(json.dumps(schema, indent=2))
    return 0


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line naming the option, then exit code 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="prunesim",
        description="Does this pruning make inference cheaper on this machine? Bit-exact "
        "sparse storage, traffic, latency and energy of dense, structured and "
        "non-structured inference.",
    )
    parser.add_argument("--version", action="version", version=f"prunesim {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser(
        "models",
        help="list the built-in networks with their totals",
        description="List the built-in networks (models/*.yaml) with layer, weight and MAC counts.",
    )
    p.set_defaults(func=cmd_models)

    p = sub.add_parser(
        "storage",
        help="exact storage of every layer in every sparse format",
        description="Exact storage (values, indices, pointers, fillers, other metadata) of "
        "every prunable layer of a network in each sparse format, the compression "
        "against dense at the same weight bits, and the storage break-even "
        "between structured and non-structured pruning.",
        epilog=EPILOG_STORAGE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "model",
        nargs="*",
        metavar="MODEL",
        help="built-in network name (see 'prunesim models'), model YAML file or "
        "SCALE-Sim topology CSV; default: every built-in network",
    )
    p.add_argument(
        "--layer",
        metavar="SPEC",
        help="one inline layer instead of a network, e.g. "
        "conv2d:in=64,out=128,k=3,input=56x56,stride=1,pad=1 or "
        "linear:in=4096,out=4096",
    )
    _add_pruning_options(p)
    _add_format_options(p)
    g = p.add_argument_group("output")
    g.add_argument(
        "--format",
        type=_formats,
        action="append",
        metavar="F",
        help=f"format(s) to show, repeatable or comma-separated: "
        f"{', '.join(FORMATS)} (default: all)",
    )
    g.add_argument(
        "--structured",
        choices=sorted(set(STRUCTURED_FORMAT) - {"dense"}),
        default="filter",
        help="structured pruning of the break-even (default filter)",
    )
    g.add_argument(
        "--structured-rate", type=float, metavar="R", help="its rate (default: the pruning rate)"
    )
    g.add_argument(
        "--sparse-format",
        choices=EXPECTED_FORMATS,
        default="csr-rel",
        help="non-structured format of the break-even (default csr-rel)",
    )
    show = g.add_mutually_exclusive_group()
    show.add_argument(
        "--per-layer",
        dest="per_layer",
        action="store_true",
        default=None,
        help="per-layer tables (default for one network)",
    )
    show.add_argument(
        "--totals",
        dest="per_layer",
        action="store_false",
        help="network totals only (default for several networks)",
    )
    g.add_argument(
        "--csv",
        type=Path,
        metavar="PATH",
        help="write the per-layer, per-format table as CSV (and the break-even "
        "table beside it as PATH-breakeven.csv)",
    )
    g.add_argument("--json", type=Path, metavar="PATH", help="write everything as JSON")
    _add_checkpoint_options(p)
    p.set_defaults(func=cmd_storage)

    p = sub.add_parser(
        "inspect",
        help="what a pruned checkpoint holds: layers, shapes, density, structure",
        description="Read a pruned checkpoint without running any code from it and print "
        "each prunable layer it maps to: tensor, shape, kept weights, density, "
        "detected structure (non-structured, filter, channel, N:M, block) and "
        "where the mask came from; then the tensors it did not use and why.",
        epilog="examples:\n  prunesim inspect model.pt\n  prunesim inspect model.pt --model "
        "resnet50\n  prunesim inspect model.onnx --input-shape 1,28,28\n  prunesim "
        "inspect weights.safetensors --model minilm_l6 --json out/minilm.json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "checkpoint",
        type=Path,
        metavar="CHECKPOINT",
        help="a .pt/.pth state_dict, .safetensors, .npz or .onnx file",
    )
    p.add_argument(
        "--model",
        dest="model",
        action="append",
        metavar="MODEL",
        help="network to map the tensors onto (built-in name or YAML); default: "
        "derived from the file",
    )
    _add_checkpoint_options(p, own_group=False)
    p.add_argument("--csv", type=Path, metavar="PATH", help="the layer table as CSV")
    p.add_argument("--json", type=Path, metavar="PATH", help="everything as JSON")
    p.set_defaults(func=cmd_inspect)

    p = sub.add_parser(
        "estimate",
        help="latency, energy and PE utilization of dense, structured and "
        "non-structured inference on hardware profiles",
        description="Per-layer and total latency and energy of dense, structured, "
        "non-structured (and N:M) inference of a network on one or more hardware "
        "profiles, with the bound that set each latency, PE utilization and the "
        "energy split.",
        epilog=EPILOG_ESTIMATE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "model",
        nargs="*",
        metavar="MODEL",
        help="built-in network name, model YAML file or SCALE-Sim topology CSV "
        "(default: every built-in network)",
    )
    p.add_argument("--layer", metavar="SPEC", help="one inline layer instead of a network")
    p.add_argument(
        "--platform",
        action="append",
        required=True,
        metavar="P",
        help="built-in profile name (see 'prunesim platforms'), profile YAML file, "
        "comma-separated list, or 'all'; repeatable",
    )
    g = p.add_argument_group("pruning (level of the pruned variants)")
    _add_level_options(g)
    g.add_argument(
        "--structured",
        choices=["filter", "channel", "column"],
        default="filter",
        help="structured pruning of the structured variant (default filter)",
    )
    g.add_argument("--block", type=_pair, default=(4, 4), metavar="RxC", help=argparse.SUPPRESS)
    g.add_argument("--nm", type=_nm, default=(2, 4), metavar="N:M", help=argparse.SUPPRESS)
    g = p.add_argument_group("precision and activity")
    g.add_argument(
        "--weight-bits", type=int, default=8, metavar="B", help="weight bits (default 8)"
    )
    g.add_argument(
        "--index-bits",
        type=int,
        default=4,
        metavar="I",
        help="relative index bits of sparse engines (default 4)",
    )
    g.add_argument(
        "--activation-bits",
        type=_count(1),
        metavar="A",
        help="activation bits (default: the profile's)",
    )
    g.add_argument(
        "--activation-density",
        type=float,
        metavar="D",
        help="kept fraction of input activations on engines that skip zeros "
        "(default: the profile's)",
    )
    g = p.add_argument_group("output")
    show = g.add_mutually_exclusive_group()
    show.add_argument(
        "--per-layer",
        dest="per_layer",
        action="store_true",
        default=None,
        help="per-layer table (default for one network on one platform)",
    )
    show.add_argument("--totals", dest="per_layer", action="store_false", help="totals only")
    g.add_argument(
        "--csv",
        type=Path,
        metavar="PATH",
        help="per-layer rows as CSV (totals beside it as PATH-totals.csv)",
    )
    g.add_argument("--json", type=Path, metavar="PATH", help="everything as JSON")
    _add_checkpoint_options(p)
    p.set_defaults(func=cmd_estimate, structure="random")

    p = sub.add_parser(
        "study",
        help="is non-structured pruning beneficial on any platform? the full study",
        description="The comparison of Ma et al. (arXiv:1907.02124): pruning judged on top "
        "of quantization, non-structured against structured, on every network and "
        "platform: storage and compute break-even rates, structured against "
        "non-structured at each network's rate, a verdict table, plots and a "
        "report.",
        epilog=EPILOG_STUDY,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    for flag, kind, metavar, text in (
        (
            "--networks",
            str,
            "A,B",
            "networks (default: lenet5, alexnet, vgg16, resnet18, "
            "resnet50, mobilenetv2, bert_base)",
        ),
        ("--platforms", str, "A,B", "hardware profiles, or 'all' (default: every built-in)"),
        ("--weight-bits", int, "B,..", "weight widths (default 1,2,4,8,16)"),
        (
            "--index-bits",
            int,
            "I,..",
            "relative index widths of the storage break-even (default 4,8)",
        ),
        (
            "--structures",
            str,
            "S,..",
            "structured pruning kinds: filter, channel, column "
            "(default filter; the first one runs on the hardware)",
        ),
        (
            "--structured-rates",
            float,
            "R,..",
            "structured rates of the storage break-even (default 2,4,8,16)",
        ),
        (
            "--sweep-rates",
            float,
            "R,..",
            "rates searched for the compute break-even (default 1.5,2,4,8,16,32,64,128)",
        ),
    ):
        p.add_argument(flag, type=_csv_list(kind), metavar=metavar, help=text)
    p.add_argument(
        "--rate",
        type=_net_rate,
        action="append",
        metavar="NET=R",
        help="non-structured rate of a network for the verdict (default: Ma et "
        "al.'s lenet5=348, alexnet=36, resnet50=8; others --default-rate)",
    )
    p.add_argument(
        "--default-rate",
        type=float,
        default=8.0,
        metavar="R",
        help="rate of networks without one (default 8)",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=Path("prunesim-study"),
        metavar="DIR",
        help="output folder (default ./prunesim-study)",
    )
    p.add_argument(
        "--jobs",
        type=_count(1),
        metavar="N",
        help="networks studied at a time in worker processes (default: up to 2)",
    )
    p.add_argument(
        "--no-resume",
        action="store_true",
        help="recompute everything instead of reusing finished networks",
    )
    p.add_argument(
        "--checkpoint",
        type=_net_path,
        action="append",
        metavar="NET=FILE",
        help="use a pruned checkpoint's real masks as the network's non-structured "
        "pruning (its own rate), compared with i.i.d. masks of the same "
        "per-layer densities; repeatable",
    )
    p.add_argument("--seed", type=_count(0), default=0, help="mask seed (default 0)")
    p.set_defaults(func=cmd_study)

    p = sub.add_parser(
        "platforms",
        help="list the built-in hardware profiles",
        description="List the built-in hardware profiles (hwconfigs/*.yaml).",
    )
    p.set_defaults(func=cmd_platforms)

    p = sub.add_parser(
        "schema",
        help="print the JSON Schema of a user file",
        description="Print the JSON Schema of hardware profiles or model files "
        "(for editor completion of YAML).",
    )
    p.add_argument("kind", choices=["hwconfig", "model"])
    p.set_defaults(func=cmd_schema)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (2 for any bad input)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # argparse: --help (0) or a usage error (2)
        return int(e.code or 0)
    try:
        ad = getattr(args, "activation_density", None)
        if ad is not None and not 0 < ad <= 1:
            raise ConfigError("--activation-density", f"must be in (0, 1], got {ad}")
        if getattr(args, "structured_rate", None) is not None and args.structured_rate < 1:
            raise ConfigError("--structured-rate", f"must be >= 1, got {args.structured_rate}")
        return args.func(args)
    except PrunesimError as e:
        print(f"prunesim: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("prunesim: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into e.g. `head`: stop quietly
        sys.stdout = open(os.devnull, "w")
        return 0


if __name__ == "__main__":
    sys.exit(main())
