"""``prunesim plot-sweep``: figures and the Pareto front of a finished sweep."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from simulator.cli import options as o
from simulator.cli import types as t

EPILOG = """\
examples:
  prunesim plot-sweep prunesim-sweep-eie                    # the figures its spec asks for
  prunesim plot-sweep out/eie --pareto latency_s,energy_j --variant sparse
  prunesim plot-sweep out/eie --breakeven pruning.rate,memory.dram.bandwidth_bytes_per_s

Writes PNG and SVG into DIR/plots (or --plots). --pareto also prints the front: the
points no other beats on both quantities (both minimised).
"""


def _axes(text: str) -> tuple[str, str]:
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != 2 or not all(parts):
        raise argparse.ArgumentTypeError(f"expected X,Y (two column names), got {text[:80]!r}")
    return parts[0], parts[1]


def build_parser() -> argparse.ArgumentParser:
    p = o.new_parser(
        "plot-sweep",
        "Draw a finished sweep's figures: the Pareto front of two outputs or "
        "parameters, and where a pruned variant breaks even with dense over two "
        "swept parameters.",
        EPILOG,
    )
    p.add_argument("folder", type=Path, metavar="DIR", help="the sweep's output folder")
    p.add_argument("--pareto", type=_axes, metavar="X,Y", help="the Pareto front of X and Y")
    p.add_argument(
        "--breakeven", type=_axes, metavar="X,Y", help="the break-even over two swept parameters"
    )
    p.add_argument("--variant", metavar="V", help="the variant (default sparse)")
    p.add_argument(
        "--metric",
        type=t.choice(("speedup", "energy_ratio")),
        default="speedup",
        help="what breaks even at 1 (default speedup)",
    )
    p.add_argument("--plots", type=Path, metavar="DIR", help="where to write (default DIR/plots)")
    return p


def run(args: argparse.Namespace) -> int:
    from simulator.errors import ConfigError
    from simulator.sweep.analysis import load_sweep, pareto_front
    from simulator.sweep.plots import draw
    from simulator.sweep.spec import Plot

    table = load_sweep(args.folder)
    about = json.loads((args.folder / "sweep.json").read_text())
    variant = args.variant or "sparse"
    if variant not in set(table["variant"]):
        raise ConfigError(
            "--variant", f"the sweep ran {', '.join(about['variants'])}, not {variant}"
        )
    plots = [
        Plot(kind=kind, x=axes[0], y=axes[1], variant=variant, metric=args.metric)
        for kind, axes in (("pareto", args.pareto), ("breakeven", args.breakeven))
        if axes
    ]
    if not plots:
        plots = [Plot(**p) for p in about.get("plots", [])]
        if not plots:
            raise ConfigError(
                str(args.folder), "its spec asks for no figure: give --pareto or --breakeven"
            )
    for p in plots:
        for axis in (p.x, p.y):
            if axis not in table.columns:
                raise ConfigError(f"--{p.kind}", f"the sweep has no column {axis!r}")
        if p.kind == "breakeven" and p.variant == "dense":
            raise ConfigError("--variant", "dense breaks even with itself: give a pruned variant")
    if args.pareto:
        front = pareto_front(table, *args.pareto, variant=variant)
        swept = [c for c in about["parameters"] if table[c].nunique() > 1]
        shown = front[["index", *swept, *(c for c in args.pareto if c not in swept)]]
        print(f"Pareto front of {args.pareto[0]} and {args.pareto[1]} ({variant}, both minimised):")
        print(shown.to_string(index=False))
    paths = draw(table, plots, args.plots or args.folder / "plots", about.get("name", ""))
    for path in paths:
        print(path)
    return 0
