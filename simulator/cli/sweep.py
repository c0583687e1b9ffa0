"""``prunesim sweep``: thousands of hardware points from a YAML spec."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from simulator.cli import options as o
from simulator.cli import types as t

EPILOG = """\
examples:
  prunesim sweep examples/sweep_eie.yaml                     # a local process pool
  prunesim sweep examples/sweep_eie.yaml --limit 20 --out out/eie --format csv
  prunesim sweep examples/sweep_breakeven.yaml --dask        # a Dask LocalCluster
  prunesim sweep spec.yaml --dask tcp://scheduler:8786       # a running Dask cluster
  prunesim sweep spec.yaml --resume                          # skip finished points
  prunesim schema sweep                                      # the spec's schema

A spec names a network, its pruning, a base hardware profile and the parameters to
vary by key path (compute.pes, memory.dram.bandwidth_bytes_per_s, pruning.rate, ...):
lists, range, log_range, or uniform and log_uniform for random and lhs blocks (see
'prunesim schema sweep' and the README). Each point's profile is validated as a file
would be; a point that makes no hardware sense is a row with status 'invalid' and the
reason. Writes into --out: results.parquet (or .csv), one row per point and variant
with every parameter and output; chunks/ with the finished points, which --resume
reuses; plots/ when the spec asks for them.
"""


def build_parser() -> argparse.ArgumentParser:
    p = o.new_parser(
        "sweep",
        "Evaluate a grid, zip, random or Latin-hypercube set of hardware points (and "
        "pruning levels, bit widths) from a YAML spec: each mask is made once and "
        "evaluated on many points, on a local process pool or Dask, into a resumable "
        "table of rows (Parquet or CSV).",
        EPILOG,
    )
    p.add_argument("spec", type=Path, metavar="SPEC", help="the sweep spec (YAML)")
    p.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="output folder (default ./prunesim-sweep-NAME, NAME the spec's name)",
    )
    engine = p.add_argument_group("engine (default: a local process pool)")
    how = engine.add_mutually_exclusive_group()
    how.add_argument("--serial", action="store_true", help="evaluate in this process only")
    how.add_argument(
        "--dask",
        nargs="?",
        const="local",
        metavar="ADDRESS",
        help="run on Dask: a LocalCluster of --jobs workers, or the scheduler at ADDRESS "
        "(tcp://host:8786; its workers must see --out). Needs prunesim[dask]",
    )
    engine.add_argument(
        "--jobs",
        type=t.count(1, 256),
        metavar="N",
        help="worker processes (default: up to 2)",
    )
    engine.add_argument(
        "--batch-size",
        type=t.count(1, 100_000),
        default=100,
        metavar="N",
        help="most points per task and per chunk (default 100)",
    )
    g = p.add_argument_group("what to run and write")
    g.add_argument(
        "--limit", type=t.count(1), metavar="N", help="only the first N points of the spec"
    )
    g.add_argument(
        "--format",
        type=t.choice(("parquet", "csv")),
        help="results and chunks as Parquet (default; pyarrow) or CSV (default without pyarrow)",
    )
    g.add_argument("--resume", action="store_true", help="skip the points of finished chunks")
    g.add_argument("--force", action="store_true", help="start over in a folder that holds a sweep")
    return p


def run(args: argparse.Namespace) -> int:
    from simulator.sweep import load_spec, run_sweep
    from simulator.sweep.store import parquet_available

    spec = load_spec(args.spec)
    fmt = args.format
    if fmt is None:
        fmt = "parquet" if parquet_available() else "csv"
        if fmt == "csv":
            print(
                "note: pyarrow is not installed, writing CSV (pip install pyarrow for Parquet)",
                file=sys.stderr,
            )
    out = args.out or Path(f"prunesim-sweep-{spec.name}")
    engine = "serial" if args.serial else "dask" if args.dask else "pool"
    o.first_compile_note()
    start = time.perf_counter()
    with o.Progress("point", "sweep") as progress:
        result = run_sweep(
            spec,
            out,
            engine=engine,
            jobs=args.jobs,
            address=None if args.dask in (None, "local") else args.dask,
            resume=args.resume,
            force=args.force,
            fmt=fmt,
            limit=args.limit,
            batch_size=args.batch_size,
            progress=progress,
        )
    wall = time.perf_counter() - start
    for note in result.notes:
        print(f"note: recomputed {note}", file=sys.stderr)
    how = "serially" if result.engine == "serial" else f"on {result.jobs} {result.engine} workers"
    rate = f", {result.computed / wall:,.1f} points/s" if result.computed and wall > 0 else ""
    print(
        f"{spec.name}: {result.points:,} points x {len(spec.all_variants)} variants "
        f"({', '.join(spec.all_variants)}); {result.computed:,} evaluated {how} in "
        f"{o.clock(wall)}{rate}, {result.reused:,} reused; {result.invalid:,} invalid"
    )
    print(f"results: {result.results}")
    if spec.plots:
        from simulator.sweep.plots import draw

        paths = draw(result.table, spec.plots, result.folder / "plots", spec.name)
        print(f"plots:   {', '.join(str(p) for p in paths if p.suffix == '.png')} (and .svg)")
    return 0
