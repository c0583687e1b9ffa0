"""``prunesim estimate``: latency, energy and PE utilization of dense, structured and
non-structured inference of a network on hardware profiles."""

from __future__ import annotations

import argparse
import dataclasses

import pandas as pd

from simulator.cli import options as o
from simulator.cli import types as t
from simulator.report import records, table, write_csv, write_json

STRUCTURES = ("filter", "channel", "column")

EPILOG = """\
examples:
  prunesim estimate resnet50 --platform a100 --rate 8
  prunesim estimate alexnet --platform eie --sparsity 0.9 --activation-density 0.35
  prunesim estimate vgg16 --platform zcu102 --platform alveo_u250 --totals
  prunesim estimate lenet5 --platform all --rate 16 --json out/lenet.json
  prunesim estimate mymodel.yaml --platform my_accelerator.yaml --structure channel
  prunesim estimate path/to/config.json --platform a100 --phase prefill --seq-len 512

Variants, all at the same level: dense; structured (--structure pruning, run as a
smaller dense problem); non-structured ("sparse": a random mask on the engine's
sparse path, or on the dense path where the engine has none); and nm where the
platform has an N:M unit. With --checkpoint, the file's masks are the variant
their structure names (the output says which), and the others are generated at
the same per-layer densities. Latency is the largest of the compute, DRAM and
SRAM bounds; "bound" names it. Speedup and energy ratio compare with dense on the
same platform. "rate" is the rate each variant's masks reach (all weights over
kept ones; N:M keeps N of M). Filter pruning on a network with a graph also removes
the input channels that read a removed filter, with each layer keeping more filters
so that the network keeps the share asked for (see --no-cascade); a filter-pruned
checkpoint's masks cascade as they are, and the other variants take the rate they
reach.
"""


def build_parser() -> argparse.ArgumentParser:
    p = o.new_parser(
        "estimate",
        "Per-layer and total latency and energy of dense, structured, non-structured "
        "(and N:M) inference of a network on one or more hardware profiles, with the "
        "bound that set each latency, PE utilization and the energy split.",
        EPILOG,
    )
    o.add_model_arguments(p)
    p.add_argument(
        "--platform",
        action="append",
        required=True,
        metavar="P",
        help="built-in profile name (see 'prunesim platforms'; any case), profile YAML "
        "file, comma-separated list, or 'all'; repeatable",
    )
    g = p.add_argument_group("pruning (level of the pruned variants)")
    o.add_level_options(g)
    g.add_argument(
        "--structure",
        type=t.choice(STRUCTURES),
        default="filter",
        help="kind of pruning of the structured variant: filter, channel or column "
        "(default filter)",
    )
    o.add_cascade_option(g)
    g.add_argument(
        "--structured",
        dest="structure",
        action=t.Deprecated,
        new="--structure",
        convert=t.choice(STRUCTURES),
    )
    g = p.add_argument_group("precision and activity")
    o.add_bits_options(
        g, weight_bits=8, index_help="relative index bits of sparse engines (default 4)"
    )
    g.add_argument(
        "--activation-bits",
        type=t.count(1, 64),
        metavar="A",
        help="activation bits (default: the profile's)",
    )
    g.add_argument(
        "--kv-bits",
        type=t.count(1, 64),
        metavar="B",
        help="bits per KV-cache element of a transformer (the keys and values the "
        "attention products read and the k/v projections write; default: the "
        "activation bits)",
    )
    o.add_quantization_options(
        g,
        "quantization group: G consecutive inputs of a row share a scale (GPTQ/AWQ/"
        "Marlin: 128), streamed with the weights of every layer that has weights on the "
        "CPU and GPU rooflines (the accelerator engines model their own weight formats "
        "and count none; default: none counted)",
    )
    g.add_argument(
        "--activation-density",
        type=t.fraction,
        metavar="D",
        help="kept fraction of input activations on engines that skip zeros, in (0, 1] "
        "(default: the profile's)",
    )
    g = p.add_argument_group("output")
    o.add_show_options(g, "for one network on one platform")
    o.add_output_files(g, "per-layer rows as CSV (totals beside it as PATH-totals.csv)")
    o.add_checkpoint_options(p)
    p.add_argument(
        "--assume-geometry",
        action="store_true",
        help="estimate even when the network comes from a bare state_dict without "
        "--input-shape (conv inputs assumed: MACs and activations are guesses)",
    )
    return p


def _platforms(names: list[str]) -> list:
    from simulator.errors import ConfigError
    from simulator.hwconfig import builtin_platforms, load_platform

    flat = [n.strip() for group in names for n in group.split(",") if n.strip()]
    if [n.lower() for n in flat] == ["all"]:
        flat = list(builtin_platforms())
    if not flat:
        raise ConfigError("--platform", "no platform given (a name, a file, or 'all')")
    platforms = [load_platform(n) for n in flat]
    if len({p.name for p in platforms}) < len(platforms):
        raise ConfigError("--platform", "two profiles share a name: give each its own name:")
    return platforms


def run(args: argparse.Namespace) -> int:
    from simulator.settings import Settings
    from simulator.simulate import estimate_network

    o.first_compile_note()
    settings = Settings(
        weight_bits=args.weight_bits,
        index_bits=args.index_bits,
        activation_bits=args.activation_bits,
        activation_density=args.activation_density,
        seed=args.seed,
        kv_bits=args.kv_bits,
        group_size=args.group_size,
        scale_bits=args.scale_bits,
        zero_point_bits=args.zero_point_bits,
    )
    ckpt = o.read_checkpoint(args, args.checkpoint) if args.checkpoint else None
    networks = [ckpt.network] if ckpt else o.networks(args)
    platforms = _platforms(args.platform)
    results = []
    for net in networks:
        with o.Progress("layer", min_total=200) as progress:
            results.append(
                estimate_network(
                    net,
                    platforms,
                    None if ckpt else o.pruning(args, net, "random"),
                    settings,
                    structure=args.structure,
                    checkpoint=ckpt,
                    assume_geometry=args.assume_geometry,
                    cascade=args.cascade,
                    progress=progress,
                )
            )
    if ckpt:
        o.checkpoint_notes(ckpt)
    show = args.per_layer
    if show is None:
        show = len(networks) == 1 and len(platforms) == 1
    for est in results:
        if est.given_variant:
            variant = est.given_variant
            print(f"{est.network}: the checkpoint's masks are the {variant!r} variant")
            print(f"  ({est.level})\n")
        if show:
            for e in est.estimates:
                _print_layers(est, e)
    tot = pd.concat([e.totals() for e in results], ignore_index=True)
    _print_totals(tot)
    _print_dram_weights(results)
    if args.csv or args.json:
        long = pd.concat([e.frame() for e in results], ignore_index=True)
    if args.csv:
        path = write_csv(args.csv, long)
        tpath = write_csv(path.with_name(path.stem + "-totals.csv"), tot)
        print(f"\nwrote {path} and {tpath}")
    if args.json:
        doc = {
            "settings": dataclasses.asdict(settings),
            "networks": [
                {
                    "network": e.network,
                    "level": e.level,
                    "structure": e.structure,
                    "cascaded": e.cascaded,
                    "checkpoint_variant": e.given_variant or None,
                    "variants": {k: list(v) for k, v in e.variants.items()},
                }
                for e in results
            ],
            "layers": records(long),
            "totals": records(tot),
        }
        print(f"\nwrote {write_json(args.json, doc)}")
    return 0


def _print_dram_weights(results) -> None:
    """A note where weights kept on chip (EIE) did not all fit and stream from DRAM."""
    spilled: dict[tuple[str, str, str], list[float]] = {}
    for est in results:
        for e in est.estimates:
            for r in e.layers:
                share = (r.counts.words or {}).get("weights_from_dram_fraction", 0.0)
                if share > 0:
                    key = (r.network, r.platform, r.variant)
                    n_mb = spilled.setdefault(key, [0, 0.0])
                    n_mb[0] += 1
                    n_mb[1] += r.counts.words["weights_stored_bytes"] * share / 1e6
    for (net, plat, variant), (n, mb) in sorted(spilled.items()):
        print(
            f"\nnote: {net} {variant} on {plat}: the weights of {n} layer(s) do not "
            f"fit the on-chip weight SRAM; {mb:.3g} MB stream from DRAM on every pass "
            "(weights_from_dram_fraction per layer)"
        )


def _print_layers(est, e) -> None:
    frame = e.frame()
    variants = list(est.variants[e.platform])
    lat = frame.pivot(index="layer", columns="variant", values="latency_s")
    en = frame.pivot(index="layer", columns="variant", values="energy_j")
    bound = frame.pivot(index="layer", columns="variant", values="bound")
    rows = [
        [
            layer,
            *[lat.at[layer, v] * 1e6 for v in variants],
            *[en.at[layer, v] * 1e6 for v in variants],
            "/".join(str(bound.at[layer, v]) for v in variants),
        ]
        for layer in dict.fromkeys(frame["layer"])
    ]
    headers = [
        "layer",
        *[f"{v} us" for v in variants],
        *[f"{v} uJ" for v in variants],
        "bound (" + "/".join(variants) + ")",
    ]
    title = (
        f"{est.network} on {e.platform}: {est.settings.weight_bits}-bit weights, "
        f"{est.level} — latency and energy per layer"
    )
    print(table(rows, headers, title=title, digits=[0, *[2] * (2 * len(variants)), 0]))
    print()
    kv = frame[(frame["kv_read_bits"] > 0) | (frame["kv_write_bits"] > 0)]
    if len(kv):  # layers that read or write a transformer's KV cache
        title = f"{est.network} on {e.platform}: KV-cache traffic per layer (kB)"
        cols = ["layer", "variant", "kv_read_bits", "kv_write_bits"]
        rows = [[n, v, r / 8e3, w / 8e3] for n, v, r, w in kv[cols].values.tolist()]
        heads = ["layer", "variant", "read kB", "written kB"]
        print(table(rows, heads, title=title, digits=[0, 0, 1, 1]))
        print()
    words = ["dram_ifmap_words", "dram_filter_words", "dram_ofmap_words"]
    if set(words) <= set(frame.columns):  # SCALE-Sim mode: its own per-layer counts
        cols = ["layer", "variant", "compute_cycles", *words]
        title = f"{est.network} on {e.platform}: cycles and DRAM words, as SCALE-Sim counts them"
        heads = ["layer", "variant", "cycles", "DRAM ifmap reads", "filter reads", "ofmap writes"]
        print(table(frame[cols].values.tolist(), heads, title=title, digits=[0] * 6))
        print()
    if "weights_from_dram_fraction" in frame.columns:  # weights kept on chip (EIE)
        share = frame.pivot(index="layer", columns="variant", values="weights_from_dram_fraction")
        layers = list(dict.fromkeys(frame["layer"]))
        title = f"{est.network} on {e.platform}: share of stored weights read from DRAM per pass"
        print(
            table(
                [[n, *[share.at[n, v] * 100 for v in variants]] for n in layers],
                ["layer", *[f"{v} %" for v in variants]],
                title=title,
                digits=[0, *[1] * len(variants)],
            )
        )
        print()
    if "mapping" in frame.columns:  # dram_model: mapped: the loop nest chosen per layer
        print(f"{est.network} on {e.platform}: loop nests (outermost first)")
        for r in frame[frame["mapping"].notna()].itertuples():
            print(f"  {r.layer} [{r.variant}]: {r.mapping}")
        print()


def _print_totals(tot: pd.DataFrame) -> None:
    parts = ("dram", "sram", "mac", "index", "static", "busy")
    rows = []
    for _, r in tot.iterrows():
        e = r["energy_j"]
        split = [r[f"energy_{k}_j"] / e * 100 if e else 0.0 for k in parts]
        rows.append(
            [
                r["network"],
                r["platform"],
                r["variant"],
                r["engine"],
                r["latency_s"] * 1e3,
                r["speedup"],
                r["energy_j"] * 1e3,
                r["energy_ratio"],
                r["pe_utilization"],
                r["effective_rate"],
                r["main_bound"],
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
        "rate",
        "main bound",
        "energy % DRAM/SRAM/MAC/idx/static/busy",
    ]
    title = "Totals (speedup and energy ratio against dense on the same platform)"
    print(table(rows, headers, title=title, digits=[0, 0, 0, 0, 3, 2, 3, 2, 2, 2, 0, 0]))
