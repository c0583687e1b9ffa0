"""The default study's wall time, and what reusing mask statistics saves.

1. The whole default ``prunesim study`` (every built-in network and platform) with
   two worker processes, after a warm-up run has compiled or cached every kernel;
   target: under 60 s on 2 cores.
2. Baseline measured in the same run: ResNet-50 on every platform with its masks
   profiled once (the study's way) against re-generating and re-profiling the masks
   for every platform; prints the ratio.

Run: ``python benchmarks/bench_study.py`` (``--skip-full`` for part 2 only).
"""

from __future__ import annotations

import argparse
import tempfile
import time

from simulator.dataflows.eie import clear_schedules
from simulator.hwconfig import builtin_platforms, load_platform
from simulator.study import StudyConfig, run_study, study_network
from simulator.workloads import load_network


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--skip-full", action="store_true")
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()

    cfg = StudyConfig()
    if not args.skip_full:
        with tempfile.TemporaryDirectory() as warm:  # warm-up: JIT compile or cache load
            run_study(StudyConfig(networks=("lenet5",)), warm, jobs=1)
        with tempfile.TemporaryDirectory() as out:
            t = time.perf_counter()
            result = run_study(cfg, out, jobs=args.jobs, resume=False)
            t_study = time.perf_counter() - t
            result.write()
            t_all = time.perf_counter() - t
        print(
            f"default study ({len(cfg.networks)} networks x {len(cfg.platform_names())} "
            f"platforms, {args.jobs} processes): {t_study:.1f} s, with tables, plots and "
            f"report {t_all:.1f} s (target < 60 s)"
        )

    net = load_network("resnet50")
    one = StudyConfig(networks=("resnet50",))
    platforms = [load_platform(n) for n in builtin_platforms()]
    clear_schedules()
    t = time.perf_counter()
    study_network(net, platforms, one)
    shared = time.perf_counter() - t
    t = time.perf_counter()
    for p in platforms:  # baseline: every platform profiles its own masks
        clear_schedules()
        study_network(net, [p], one)
    separate = time.perf_counter() - t
    print(
        f"ResNet-50 on {len(platforms)} platforms: masks profiled once {shared:.1f} s, "
        f"per platform {separate:.1f} s -> reuse is {separate / shared:.1f}x faster"
    )


if __name__ == "__main__":
    main()
