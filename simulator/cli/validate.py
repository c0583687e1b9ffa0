"""``prunesim validate``: predicted against reference, with the band each must fall in."""

from __future__ import annotations

import argparse
import shutil
import sys
import time

from simulator.cli import options as o
from simulator.cli import types as t

EPILOG = """\
examples:
  prunesim validate --quick                      # under a minute, this machine included
  prunesim validate --no-measure --out results   # published and recorded references only
  prunesim validate --platform this_cpu.yaml     # this machine against a profile calibrated earlier

What is compared (references, sources and bands: simulator/validate/references.yaml):
EIE's own per-layer times and throughput; Eyeriss v1 (JSSC 2017 Table V); SCALE-Sim
v3's recorded cycles and DRAM words (exact); EIE Table IV's CPU and GPU rows at batch
1 and 64; MLPerf Inference v3.0 A100/H100 offline per-sample times; DeepSparse,
XNNPACK, Sputnik, cuSPARSE and cuSPARSELt published speed-ups; Scalpel's plain-pruning
CPU and GPU means (AlexNet); and this machine:
held-out layer shapes measured now (numpy BLAS against scipy CSR) and predicted by a
CPU profile calibrated in the same run, with one thread (CPU time) and all (wall time).

A row passes when its relative error (predicted / reference - 1) lies in its band or
its prediction in its range; 'gap' rows are known misses held where they stand.
Exit code 1 when any row falls outside its band; every row is printed either way.
"""


def build_parser() -> argparse.ArgumentParser:
    p = o.new_parser(
        "validate",
        "Predicted against reference: published accelerator, CPU and GPU figures, "
        "SCALE-Sim's recorded cycles and this machine measured now, each with its band; "
        "writes CSV and Markdown.",
        EPILOG,
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="a short measurement of this machine (under a minute in all)",
    )
    p.add_argument(
        "--no-measure",
        dest="measure",
        action="store_false",
        help="skip measuring this machine",
    )
    p.add_argument(
        "--platform",
        metavar="FILE",
        help="predict this machine with a CPU profile calibrated earlier "
        "('prunesim calibrate cpu --out FILE') instead of calibrating now",
    )
    p.add_argument(
        "--threads",
        type=t.csv_list(t.count(1, 4096)),
        metavar="N[,N...]",
        help="BLAS thread counts to measure (default: 1 and all CPUs; 1 with --platform)",
    )
    p.add_argument(
        "--out",
        default="prunesim-validate",
        metavar="DIR",
        help="write validation.csv and validation.md here (default ./prunesim-validate)",
    )
    p.add_argument(
        "--references",
        metavar="FILE",
        help="a reference file of the shipped file's form (default: the shipped one)",
    )
    return p


def _table(rows) -> str:
    from simulator.validate import error_text, number_text

    width = shutil.get_terminal_size((120, 24)).columns
    q = max(20, min(64, width - 62))
    head = (
        f"{'reference':{q}} {'predicted':>11} {'reference':>13} {'unit':9} {'error':>8} "
        f"{'band':>15}  status"
    )
    out = [head, "-" * len(head)]
    section = None
    for r in rows:
        if r.section != section:
            section = r.section
            out.append(f"[{section}]")
        name = r.quantity if len(r.quantity) <= q else r.quantity[: q - 1] + "…"
        pred = number_text(r.predicted) if r.predicted == r.predicted else "-"
        status = r.status.upper() if r.failed else r.status
        out.append(
            f"{name:{q}} {pred:>11} {r.reference_text[:13]:>13} {r.unit[:9]:9} "
            f"{error_text(r.error):>8} {r.band[:15]:>15}  {status}"
        )
    return "\n".join(out)


def run(args: argparse.Namespace) -> int:
    import os

    from simulator.errors import ConfigError
    from simulator.validate import validate, write_outputs

    cpus = os.cpu_count() or 1
    for n in args.threads or ():
        if n > cpus:
            raise ConfigError("--threads", f"must be in [1, {cpus}] on this machine, got {n}")
    if args.platform and not args.measure:
        raise ConfigError("--platform", "measures this machine: not with --no-measure")
    t0 = time.perf_counter()
    with o.Progress("round", "measuring this machine") as progress:
        report = validate(
            quick=args.quick,
            measure=args.measure,
            platform_file=args.platform,
            threads=args.threads,
            reference_file=args.references,
            progress=progress,
        )
    wall = time.perf_counter() - t0
    command = "prunesim validate" + (" --quick" if args.quick else "")
    paths = write_outputs(report, args.out, command)
    print(_table(report.rows))
    flagged = [r for r in report.rows if r.status in ("gap", "FAIL", "skipped") and r.note]
    if flagged:
        print("\nnotes:")
        for r in flagged:
            print(f"  {r.id} ({r.status}): {r.note}")
    failed = report.failed
    print(
        f"\n{len(report.rows)} rows on {report.machine}; "
        f"{sum(r.status == 'pass' for r in report.rows)} pass, "
        f"{sum(r.status == 'gap' for r in report.rows)} known gaps inside their bands, "
        f"{sum(r.status == 'info' for r in report.rows)} shown for information, "
        f"{len(failed)} outside their band; {wall:.0f} s"
    )
    print(f"wrote {paths[0]} and {paths[1]}")
    if failed:
        names = ", ".join(r.id for r in failed[:8]) + (" ..." if len(failed) > 8 else "")
        print(f"prunesim validate: {len(failed)} outside their band: {names}", file=sys.stderr)
        return 1
    return 0
