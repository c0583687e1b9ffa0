"""``prunesim inspect``: what a pruned checkpoint holds."""

from __future__ import annotations

import argparse
from pathlib import Path

from simulator.cli import options as o

EPILOG = """\
examples:
  prunesim inspect model.pt
  prunesim inspect model.pt --model resnet50
  prunesim inspect model.onnx --input-shape 1,28,28
  prunesim inspect weights.safetensors --model minilm_l6 --json out/minilm.json
"""


def build_parser() -> argparse.ArgumentParser:
    p = o.new_parser(
        "inspect",
        "Read a pruned checkpoint without running any code from it and print each "
        "prunable layer it maps to: tensor, shape, kept weights, density, detected "
        "structure (non-structured, filter, channel, N:M, block) and where the mask "
        "came from; then the tensors it did not use and why.",
        EPILOG,
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
    o.add_checkpoint_options(p, own_group=False)
    o.add_output_files(p, "the layer table as CSV", "everything as JSON")
    return p


def run(args: argparse.Namespace) -> int:
    from simulator.errors import shown
    from simulator.report import records, table, write_csv, write_json

    ckpt = o.read_checkpoint(args, args.checkpoint)
    s = ckpt.summary()
    rows = [
        [
            shown(r["layer"]),
            shown(r["tensor"]),
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
            title=f"{shown(ckpt.path, 200)} ({ckpt.format}) onto {shown(ckpt.network.name)}",
            digits=[0, 0, 0, 0, 0, 4, 0, 0],
        )
    )
    print(f"\nas a whole: {ckpt.variant.note}")
    if ckpt.unmatched:
        names = ", ".join(shown(n) for n in ckpt.unmatched)
        print(f"\nlayers with no tensor ({len(ckpt.unmatched)}): {names}")
    if ckpt.skipped:
        print(f"\ntensors not used ({len(ckpt.skipped)}):")
        for name, why in ckpt.skipped:
            print(f"  {shown(name)}: {shown(why, 200)}")
    for w in ckpt.warnings:
        print(f"\nwarning: {shown(w, 400)}")
    if args.csv:
        print(f"\nwrote {write_csv(args.csv, s.assign(shape=s['shape'].map(str)))}")
    if args.json:
        doc = {
            "path": ckpt.path,
            "format": ckpt.format,
            "network": ckpt.network.name,
            "variant": ckpt.variant.variant,
            "geometry_assumed": ckpt.geometry_assumed,
            "layers": records(s.assign(shape=s["shape"].map(list))),
            "unmatched": list(ckpt.unmatched),
            "skipped": [{"tensor": n, "reason": r} for n, r in ckpt.skipped],
            "warnings": list(ckpt.warnings),
        }
        print(f"wrote {write_json(args.json, doc)}")
    return 0
