"""10,000 hardware points on ResNet-50 with full-size masks, on each sweep engine.

The sweep: the EIE profile at 8x non-structured pruning (4-bit weights and indices),
8 arrays (PEs x FIFO depth) times 1,250 price points (clock, DRAM bandwidth, SRAM
read energy, static power) = 10,000 points, dense and sparse at each (20,000 rows).
Masks are generated and profiled once per process; the counts of an array are
computed once per process and priced at each of its points (simulator/sweep/shared.py).

1. Where a point's time goes, in this process: ms per point when every point needs
   its own counts (arrays only) and when points share them (price points only).
2. The engines interleaved (serial, process pool, Dask LocalCluster; the order rotates
   each round): ``--slice`` points each, ``--rounds`` rounds; points/s from the
   median wall time, CPU time (this process and its reaped children) beside it.
3. The whole sweep, 10,000 points, on each engine: wall and CPU time; target under
   60 s on 2 cores.

Run: ``python benchmarks/bench_sweep.py`` (``--skip-full`` for 1 and 2 only). Prints
the load average before and after: on a shared machine wall time measures the
scheduler as much as the code.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import tempfile
import time
from pathlib import Path

from simulator.dataflows.eie import clear_schedules
from simulator.sweep import run_sweep, runner, spec_from_dict
from simulator.sweep.evaluate import Context, evaluate

SPEC = {
    "name": "bench-eie-resnet50",
    "network": "resnet50",
    "platform": "eie",
    "variants": ["sparse"],
    "pruning": {"rate": 8},
    "settings": {"weight_bits": 4, "index_bits": 4},
    "sweep": [
        {"parameters": {"compute.pes": [32, 64, 128, 256], "compute.fifo_depth": [4, 8]}},
        {
            "parameters": {
                "clock_hz": {"log_range": [2e8, 1.6e9], "num": 5},
                "memory.dram.bandwidth_bytes_per_s": {"log_range": [1e9, 1e11], "num": 10},
                "memory.spmat.read_pj_per_bit": {"log_range": [0.3, 1.2], "num": 5},
                "energy.static_w": {"log_range": [0.05, 0.5], "num": 5},
            }
        },
    ],
}


def cpu_s() -> float:
    """CPU seconds of this process and of its children that have ended."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def timed(spec, engine: str, jobs: int, limit: int | None) -> tuple[float, float, int]:
    """One sweep run into a fresh folder: wall s, CPU s, points. A serial run starts
    as cold as a fresh process would (no masks, counts or EIE schedules kept)."""
    if engine == "serial":
        runner._CONTEXT = None
        clear_schedules()
    with tempfile.TemporaryDirectory() as out:
        c, t = cpu_s(), time.perf_counter()
        result = run_sweep(spec, Path(out) / "s", engine=engine, jobs=jobs, limit=limit)
        wall, cpu = time.perf_counter() - t, cpu_s() - c
    assert result.computed == (limit or spec.count()) and result.invalid == 0
    return wall, cpu, result.computed


def per_point() -> None:
    """ms per point in this process: own counts for every point, or shared ones."""
    spec = spec_from_dict(SPEC, "bench")
    points = spec.points()
    arrays = points[::1250]  # one point per array: each needs its own counts
    shared = points[1:251]  # 250 price points of one array
    context = Context()
    evaluate(spec, points[:1], context)  # masks made, kernels loaded
    for label, batch in (("own counts (arrays)", arrays[1:]), ("shared counts", shared)):
        t, c = time.perf_counter(), time.thread_time()
        evaluate(spec, batch, context)
        wall, cpu = time.perf_counter() - t, time.thread_time() - c
        print(
            f"  {label:20s} {1000 * wall / len(batch):7.2f} ms/point wall, "
            f"{1000 * cpu / len(batch):7.2f} ms CPU ({len(batch)} points)"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--slice", type=int, default=2000, help="points per engine per round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--skip-full", action="store_true")
    args = ap.parse_args()
    spec = spec_from_dict(SPEC, "bench")
    print(
        f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs; {spec.count():,} points"
    )
    print("1. one process, per point (ResNet-50 on EIE, dense + sparse):")
    per_point()

    engines = ["serial", "pool", "dask"]
    runs: dict[str, list[tuple[float, float]]] = {e: [] for e in engines}
    for r in range(args.rounds):
        order = engines[r % 3 :] + engines[: r % 3]
        for engine in order:
            wall, cpu, n = timed(spec, engine, args.jobs, args.slice)
            runs[engine].append((wall, cpu))
    print(f"2. engines interleaved, {args.slice} points each, {args.rounds} rounds (median):")
    for engine in engines:
        wall = statistics.median(w for w, _ in runs[engine])
        cpu = statistics.median(c for _, c in runs[engine])
        jobs = 1 if engine == "serial" else args.jobs
        print(
            f"  {engine:7s} {args.slice / wall:7.1f} points/s  wall {wall:6.1f} s  "
            f"CPU {cpu:6.1f} s  ({jobs} process{'es' if jobs > 1 else ''}; walls "
            f"{', '.join(f'{w:.1f}' for w, _ in runs[engine])})"
        )
    if not args.skip_full:
        print(f"3. the whole sweep, {spec.count():,} points (target < 60 s on 2 cores):")
        for engine in engines:
            wall, cpu, n = timed(spec, engine, args.jobs, None)
            print(f"  {engine:7s} {n / wall:7.1f} points/s  wall {wall:6.1f} s  CPU {cpu:6.1f} s")
    print(f"load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
