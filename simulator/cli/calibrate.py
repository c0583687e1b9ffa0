"""``prunesim calibrate cpu``: measure this machine and write a fitted CPU profile."""

from __future__ import annotations

import argparse
import os
import sys

from simulator.cli import options as o
from simulator.cli import types as t

EPILOG = """\
examples:
  prunesim calibrate cpu --quick --out this_cpu.yaml     # under a minute
  prunesim calibrate cpu --out this_cpu.yaml --force     # full calibration, replace the file
  prunesim calibrate cpu --threads 2 --out two.yaml      # BLAS on two threads
  prunesim estimate resnet50 --platform this_cpu.yaml --weight-bits 32

What is measured: numpy's BLAS matrix x matrix and matrix x vector over shapes,
scipy's CSR x dense and CSR x vector over shapes and densities, a streaming
triad from DRAM and a read stream in cache, each in interleaved rounds with medians
kept. What is
fitted: the roofline's dense efficiency, sparse rate, per-entry, per-row and
per-call overheads and the DRAM bandwidth (simulator/calibrate/fit.py). Energies
cannot be measured here: the profile copies a built-in profile's table and says
so. The profile's header records the CPU, BLAS library and kernel, threads, date,
numpy and scipy versions and every figure's fit residual. Timings are CPU time
with one thread, wall time with more; a loaded machine gives slower, noisier
figures, so calibrate on an idle one.
"""


def build_parser() -> argparse.ArgumentParser:
    p = o.new_parser(
        "calibrate",
        "Measure this machine's dense and sparse kernels and fit a hardware profile "
        "to them: a CPU profile that 'prunesim estimate --platform FILE' loads like "
        "any built-in.",
        EPILOG,
    )
    p.add_argument(
        "target",
        type=t.choice(("cpu",)),
        metavar="TARGET",
        help="what to calibrate: cpu (numpy's BLAS and scipy.sparse on this machine)",
    )
    p.add_argument(
        "--out",
        metavar="FILE",
        help="write the profile here (default: print it); an existing file is kept unless --force",
    )
    p.add_argument("--force", action="store_true", help="replace an existing --out file")
    p.add_argument(
        "--threads",
        type=t.count(1, 4096),
        default=1,
        metavar="N",
        help="BLAS threads while measuring (default 1; scipy.sparse runs on one)",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="fewer shapes and rounds: under a minute, coarser figures",
    )
    p.add_argument(
        "--name",
        default="this_cpu",
        metavar="NAME",
        help="the profile's name (default this_cpu)",
    )
    return p


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from simulator.calibrate import calibrate_cpu, profile_fields, write_profile
    from simulator.errors import ConfigError

    cpus = os.cpu_count() or 1
    if args.threads > cpus:
        raise ConfigError(
            "--threads", f"must be in [1, {cpus}] on this machine, got {args.threads}"
        )
    out = Path(args.out) if args.out else None
    if out is not None and out.exists() and not args.force:
        raise ConfigError(str(out), "file exists (use --force to replace it)")
    with o.Progress("round", "calibrating") as progress:
        cal = calibrate_cpu(
            threads=args.threads, quick=args.quick, name=args.name.strip(), progress=progress
        )
    f = profile_fields(cal.fit, cal.machine)
    cache = cal.fit.params.operand_cache_bytes
    miss = (
        f" + {f['operand_miss_ns']:.3g} ns per operand line missed beyond {cache / 2**20:.3g} MiB"
        if cache is not None and f["operand_miss_ns"] > 0
        else ""
    )
    summary = (
        f"fitted on {cal.machine.cpu_model}, {cal.machine.threads} thread(s): dense "
        f"{f['dense_efficiency'] * f['peak_fp32_macs_per_s'] / 1e9:.3g} GMAC/s, sparse "
        f"{f['sparse_efficiency'] * f['peak_fp32_macs_per_s'] / 1e9:.3g} GMAC/s + "
        f"{f['sparse_entry_overhead_ns']:.3g} ns/entry + {f['sparse_row_overhead_ns']:.3g} "
        f"ns/row{miss} + {f['layer_overhead_ns'] / 1e3:.3g} us/call, DRAM "
        f"{f['dram_bytes_per_s'] / 1e9:.3g} GB/s; median fit residual "
        f"{100 * cal.fit.residual():.1f}%"
    )
    if out is None:
        sys.stdout.write(cal.yaml)
        print(summary, file=sys.stderr)
        return 0
    path = write_profile(out, cal.yaml, overwrite=args.force)
    print(summary)
    print(f"wrote {path}")
    return 0
