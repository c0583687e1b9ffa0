"""``prunesim storage``: exact storage of every layer in every format, and the
storage break-even between structured and non-structured pruning."""

from __future__ import annotations

import argparse
import dataclasses
import math

import pandas as pd

from simulator.cli import options as o
from simulator.cli import types as t
from simulator.formats import FORMATS, STRUCTURED_FORMATS, FormatParams, expected_formats
from simulator.masks import STRUCTURES
from simulator.report import breakeven_at_most, records, table, write_csv, write_json
from simulator.storage import storage_report
from simulator.units import bits_to_bytes

BREAKEVEN_STRUCTURES = tuple(s for s in STRUCTURED_FORMATS if s != "dense")

EPILOG = """\
examples:
  prunesim storage                          # every built-in network, rate 8x, 4-bit weights/indices
  prunesim storage resnet50 --rate 8 --weight-bits 4 --index-bits 4
  prunesim storage alexnet --sparsity 0.9 --format csr-rel --format csc-rel --csv out/alexnet.csv
  prunesim storage vgg16 --structure filter --rate 4        # a filter-pruned mask in every format
  prunesim storage alexnet --levels levels.yaml             # per-layer rates (layer: {rate: 8})
  prunesim storage --layer conv2d:in=256,out=256,k=3,input=14x14,pad=1 --rate 10
  prunesim storage lenet5 --structure channel --structured-rate 4 --json out/lenet.json
  prunesim storage llama2_7b --phase decode --batch 8 --context 4096  # a Hugging Face config

Bits are exact for the generated (or given) masks. The break-even table gives the
non-structured rate whose expected storage in --sparse-format equals the storage
of structured pruning (--structure when it is structured, else filter) at
--structured-rate in the format made for it (filter, channel, column: compact;
block: bsr; nm: nm); "never" means no rate is sparse enough (one kept weight with
its pointers already costs more). "ratio" is the non-structured rate over the
rate the structured masks reach (all weights over kept ones), shown as "reached"
where it is not the rate asked for: whole filters are kept or removed. Filter
pruning on a network with a graph also removes the input channels that read a
removed filter, and each layer keeps more filters so that the network keeps the
share asked for (see --no-cascade).
"""


def build_parser() -> argparse.ArgumentParser:
    p = o.new_parser(
        "storage",
        "Exact storage (values, indices, pointers, fillers, other metadata) of every "
        "prunable layer of a network in each sparse format, the compression against "
        "dense at the same weight bits, and the storage break-even between structured "
        "and non-structured pruning.",
        EPILOG,
    )
    o.add_model_arguments(p)
    g = p.add_argument_group("pruning (generated masks)")
    g.add_argument(
        "--structure",
        type=t.choice(s for s in STRUCTURES if s != "magnitude"),
        default="random",
        help="kind of pruning: random (non-structured, exact count), filter (whole "
        "output channels), channel (input channels), column (GEMM columns), block "
        "(tiles, see --block), nm (see --nm), dense. Default: random",
    )
    o.add_level_options(g)
    o.add_cascade_option(g)
    g.add_argument(
        "--block",
        type=t.pair,
        default=(4, 4),
        metavar="RxC",
        help="tile size of block pruning and of the bsr format (default 4x4)",
    )
    g.add_argument(
        "--nm",
        type=t.nm_pattern,
        default=(2, 4),
        metavar="N:M",
        help="N:M pattern of nm pruning and of the nm format (default 2:4)",
    )
    g = p.add_argument_group("storage formats")
    o.add_bits_options(
        g,
        weight_bits=4,
        index_help="bits per relative index of csr-rel/csc-rel; a zero run longer than "
        "2^I - 1 costs filler entries (default 4, as in EIE)",
    )
    g.add_argument(
        "--pointer-bits",
        type=t.count(1, 64),
        metavar="P",
        help="fixed pointer width (default: ceil(log2(entries + 1)))",
    )
    g.add_argument(
        "--abs-index-bits",
        type=t.count(1, 64),
        metavar="A",
        help="fixed absolute index width of csr/csc (default: ceil(log2 length))",
    )
    o.add_quantization_options(g)
    g = p.add_argument_group("output")
    g.add_argument(
        "--format",
        type=t.choices(FORMATS),
        action="append",
        metavar="F",
        help=f"format(s) to show, repeatable or comma-separated: {', '.join(FORMATS)} "
        "(default: all)",
    )
    g.add_argument(
        "--structured-rate",
        type=t.rate,
        metavar="R",
        help="rate of the structured side of the break-even (default: the pruning rate)",
    )
    g.add_argument(
        "--sparse-format",
        type=t.choice(expected_formats()),
        default="csr-rel",
        help="non-structured format of the break-even (default csr-rel)",
    )
    g.add_argument(
        "--structured",
        dest="breakeven_structure",
        action=t.Deprecated,
        new="--structure",
        convert=t.choice(BREAKEVEN_STRUCTURES),
    )
    o.add_show_options(g, "for one network")
    o.add_output_files(
        g,
        "write the per-layer, per-format table as CSV (and the break-even table "
        "beside it as PATH-breakeven.csv)",
    )
    o.add_checkpoint_options(p)
    return p


def run(args: argparse.Namespace) -> int:
    o.first_compile_note()
    ckpt = o.read_checkpoint(args, args.checkpoint) if args.checkpoint else None
    networks = [ckpt.network] if ckpt else o.networks(args)
    params = FormatParams(
        weight_bits=args.weight_bits,
        index_bits=args.index_bits,
        pointer_bits=args.pointer_bits,
        abs_index_bits=args.abs_index_bits,
        block=args.block,
        nm=args.nm,
        group_size=args.group_size,
        scale_bits=args.scale_bits,
        zero_point_bits=args.zero_point_bits,
    )
    formats = list(dict.fromkeys(f for group in (args.format or [FORMATS]) for f in group))
    structure = getattr(args, "breakeven_structure", None) or (
        args.structure if args.structure in BREAKEVEN_STRUCTURES else "filter"
    )
    per_layer = args.per_layer if args.per_layer is not None else len(networks) == 1
    reports = []
    for net in networks:
        if ckpt:
            from simulator.masks import Pruning

            o.checkpoint_notes(ckpt)
            variant = ckpt.variant
            # a filter-pruned checkpoint's removals cascade like generated ones
            kind = "filter" if variant.variant == "structured" else "dense"
            rep = storage_report(
                net,
                Pruning(structure=kind, seed=args.seed, cascade=args.cascade),
                params,
                formats,
                masks=ckpt.masks(fill_missing=True),
                label=variant.note,
                structure=structure,
                structured_rate=args.structured_rate,
                sparse_format=args.sparse_format,
            )
        else:
            rep = storage_report(
                net,
                o.pruning(args, net, args.structure),
                params,
                formats,
                structure=structure,
                structured_rate=args.structured_rate,
                sparse_format=args.sparse_format,
            )
        reports.append(rep)
        if per_layer:
            _print_layers(net.name, rep, params, formats)
            _print_breakeven(rep, params, per_layer=True)
    if not per_layer:
        _print_totals(reports, params, formats)
        _print_breakeven(reports, params, per_layer=False)
    long = pd.concat([r.storage.to_frame() for r in reports], ignore_index=True)
    be = pd.concat([r.breakeven_frame() for r in reports], ignore_index=True)
    if args.csv:
        path = write_csv(args.csv, long)
        be_path = write_csv(path.with_name(path.stem + "-breakeven.csv"), be, breakeven_at_most(be))
        print(f"\nwrote {path} and {be_path}")
    if args.json:
        payload = {
            "params": dataclasses.asdict(params),
            "networks": [
                {
                    "network": r.storage.network,
                    "pruning": r.storage.pruning,
                    "cascaded": r.storage.cascaded,
                    "effective_rate": r.storage.effective_rate,
                }
                for r in reports
            ],
            "storage": records(long),
            "totals": records(pd.concat([r.storage.totals() for r in reports])),
            "breakeven": records(be, breakeven_at_most(be)),
        }
        print(f"\nwrote {write_json(args.json, payload)}")
    return 0


def _kib(bits: float) -> float:
    return bits_to_bytes(bits) / 1024


def _footnote(totals: list[pd.DataFrame], formats: list[str]) -> None:
    if "nm" in formats and any(not t.set_index("format").at["nm", "representable"] for t in totals):
        print("  -: the mask is not N:M, so the nm format cannot hold it")


def _title(label: str, params: FormatParams, unit: str) -> str:
    groups = ""
    if params.group_size:
        zero = f" + {params.zero_point_bits}-bit zero" if params.zero_point_bits else ""
        groups = f", {params.scale_bits}-bit scale{zero} per {params.group_size} inputs"
    return (
        f"{label}, {params.weight_bits}-bit weights, {params.index_bits}-bit relative "
        f"indices{groups} — storage in {unit}"
    )


def _print_layers(name: str, rep, params: FormatParams, formats: list[str]) -> None:
    frame, tot = rep.storage.to_frame(), rep.storage.totals()
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
    title = _title(f"{name}: {rep.storage.pruning}", params, "KiB")
    digits = [0, 0, 4, *[2] * len(formats)]
    print(table(rows, ["layer", "weights", "density", *formats], title=title, digits=digits))
    _footnote([tot], formats)
    _rate_note([rep])


def _print_totals(reports: list, params: FormatParams, formats: list[str]) -> None:
    rows, totals = [], []
    for rep in reports:
        t = rep.storage.totals().set_index("format")
        totals.append(t.reset_index())
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
    title = _title(reports[-1].storage.pruning, params, "MiB")
    digits = [0, 0, 4, *[2] * len(formats)]
    print(table(rows, ["network", "weights", "density", *formats], title=title, digits=digits))
    _footnote(totals, formats)
    _rate_note(reports)


def differ(asked: float, reached: float) -> bool:
    """Whether a rate reached is worth showing beside the one asked (0.5% apart)."""
    return not math.isclose(asked, reached, rel_tol=0.005)


def _rate_note(reports: list) -> None:
    """A line per network whose masks reach a rate other than the one asked for, and
    one saying that filter removals cascaded (each asked rate is then solved for)."""
    for rep in reports:
        r = rep.storage
        if math.isfinite(r.rate_asked) and differ(r.rate_asked, r.effective_rate):
            print(
                f"  {r.network}: rate reached {r.effective_rate:.3g}x, asked "
                f"{r.rate_asked:.3g}x (all weights / kept; whole filters)"
            )
    cascaded = [rep.storage.network for rep in reports if rep.storage.cascaded]
    if cascaded:
        print(
            "  filter removals cascade through the graph of "
            + ", ".join(cascaded)
            + " (--no-cascade: each layer on its own)"
        )


def _print_breakeven(reports, params: FormatParams, *, per_layer: bool) -> None:
    reports = [reports] if per_layer else reports
    rows = []
    for rep in reports:
        for b in rep.breakeven:
            if per_layer or b.layer == "(network)":
                name = b.layer if per_layer else b.network
                rows.append(
                    [
                        name,
                        b.structured_rate,
                        b.structured_effective_rate
                        if differ(b.structured_rate, b.structured_effective_rate)
                        else None,
                        _kib(b.structured_bits),
                        b.nonstructured_rate,
                        b.ratio,
                    ]
                )
    rep = reports[-1]
    title = (
        f"\nStorage break-even: {rep.structure} pruning at {rep.structured_rate:g}x "
        f"({STRUCTURED_FORMATS[rep.structure]}) vs non-structured in {rep.sparse_format} "
        f"(i.i.d. mask, {params.weight_bits}-bit weights, {params.index_bits}-bit index)"
    )
    headers = [
        "layer" if per_layer else "network",
        "structured rate",
        "reached",
        "KiB",
        "non-structured rate needed",
        "ratio",
    ]
    if all(row[2] is None for row in rows):  # every rate reached is the one asked
        rows = [row[:2] + row[3:] for row in rows]
        headers = headers[:2] + headers[3:]
    print(table(rows, headers, title=title, digits=2))
