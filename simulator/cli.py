"""The ``prunesim`` command line: ``main(argv) -> int``.

The only place that prints errors and picks exit codes: bad input of any kind is
one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from simulator import __version__
from simulator.errors import ConfigError, PrunesimError
from simulator.formats import FORMATS, FormatParams
from simulator.formats.formulas import EXPECTED_FORMATS
from simulator.masks import STRUCTURES, Pruning, density_from, load_levels, parse_nm
from simulator.report import records, table, write_csv, write_json
from simulator.storage import (
    STRUCTURED_FORMAT,
    network_storage,
    storage_breakeven,
)
from simulator.units import bits_to_bytes
from simulator.workloads import Network, builtin_models, load_network, parse_inline_layer

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
    g.add_argument("--seed", type=int, default=0, help="mask seed (default 0)")


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
    networks = _networks(args)
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
            _print_layers(net, pruning, params, frame, tot, formats)
            _print_breakeven(be, args, s_rate, params, per_layer=True)
    if not per_layer:
        _print_totals(totals, formats, networks, args, params)
        s_rate = args.structured_rate or (1.0 / _pruning(args, networks[0]).density)
        _print_breakeven(breakeven, args, s_rate, params, per_layer=False)
    import pandas as pd

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


def _print_layers(net, pruning, params, frame, tot, formats) -> None:
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
        f"{net.name}: {pruning.label}, {params.weight_bits}-bit weights, "
        f"{params.index_bits}-bit relative indices — storage in KiB"
    )
    digits = [0, 0, 4, *[2] * len(formats)]
    print(table(rows, ["layer", "weights", "density", *formats], title=title, digits=digits))
    _footnote([tot], formats)


def _print_totals(totals, formats, networks, args, params) -> None:
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
    pr = _pruning(args, networks[0])
    title = (
        f"{pr.label}, {params.weight_bits}-bit weights, {params.index_bits}-bit relative "
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
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
    p.set_defaults(func=cmd_storage)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (2 for any bad input)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # argparse: --help (0) or a usage error (2)
        return int(e.code or 0)
    try:
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
