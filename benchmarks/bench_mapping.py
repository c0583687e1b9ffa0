"""Loop-nest mapping search (``compute.dram_model: mapped``): ``prunesim estimate
resnet50 --platform all`` with the built-in dense arrays mapped, against today's
engine, the same profiles with prunesim's DRAM heuristic instead.

In one run, interleaved (A B A B ...), after one warm-up pass of each:

- A: every built-in profile, the mapped ones switched back to ``dram_model:
  prunesim`` (no search);
- B: every built-in profile as shipped, the memo of mappings and tilings cleared
  before every pass, so each pass searches every layer afresh;
- C: the whole library call behind ``prunesim estimate resnet50 --platform all``
  (``estimate_network``: masks generated, profiled and simulated), memo and the SCNN
  engine's kept activation masks cleared;
- D: the same call with today's engine (A's profiles).

A and B simulate the same mask profiles (dense, filter-pruned, non-structured and
2:4 at 8x, made once). Wall and CPU (``time.thread_time``) times; B / A is the
median of per-pair ratios. Also the search alone: CPU per distinct GEMM shape.

Run: ``python benchmarks/bench_mapping.py``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from dataclasses import replace

os.environ.setdefault("NUMBA_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

from simulator.dataflows.scnn import clear_schedules
from simulator.hwconfig import builtin_platforms, load_platform
from simulator.mapping import clear_memo, map_gemm
from simulator.masks import Pruning
from simulator.simulate import (
    estimate_network,
    estimate_variants,
    prepare_profiles,
    simulate_network,
)
from simulator.workloads import load_network

MAPPED_KEYS = ("dram_model", "mapping_objective", "psum_bits", "scalesim_sram_bytes")


def heuristic(p):
    """The profile with prunesim's DRAM heuristic in place of the mapping."""
    compute = {k: v for k, v in p.raw.get("compute", {}).items() if k not in MAPPED_KEYS}
    return replace(p, raw={**p.raw, "compute": compute})


def _timed(fn) -> tuple[float, float]:
    w, c = time.perf_counter(), time.thread_time()
    fn()
    return time.perf_counter() - w, time.thread_time() - c


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()

    net = load_network("resnet50")
    shipped = [load_platform(n) for n in builtin_platforms()]
    today = [heuristic(p) for p in shipped]
    mapped = [p.name for p in shipped if p.dram_model == "mapped"]
    pruning = Pruning(density=1 / 8)
    specs = {"dense": Pruning(structure="dense")}
    for p in shipped:
        specs.update(estimate_variants(p, pruning, "filter"))
    profiles = prepare_profiles(net, specs)

    def simulate(platforms) -> None:
        for p in platforms:
            wanted = {"dense": 0, **estimate_variants(p, pruning, "filter")}
            simulate_network(net, p, {v: profiles[v] for v in wanted})

    def pass_a() -> None:
        simulate(today)

    def pass_b() -> None:
        clear_memo()
        simulate(shipped)

    def pass_c() -> None:
        clear_memo()
        clear_schedules()  # the SCNN engine's drawn activation masks too
        estimate_network(net, shipped, pruning)

    def pass_d() -> None:
        clear_schedules()
        estimate_network(net, today, pruning)

    pass_a(), pass_b(), pass_c(), pass_d()  # warm-up: imports, numba caches
    a, b, c, d = [], [], [], []
    for _ in range(args.repeats):
        a.append(_timed(pass_a))
        b.append(_timed(pass_b))
        c.append(_timed(pass_c))
        d.append(_timed(pass_d))
    searches = map_gemm.cache_info().misses
    clear_memo()
    search = _timed(lambda: simulate(shipped))[1]
    med = statistics.median
    print(
        f"ResNet-50 ({len(net.layers)} layers) on {len(shipped)} built-in profiles, "
        f"{len(mapped)} mapped ({', '.join(mapped)}); {args.repeats} interleaved repeats"
    )
    for name, xs in (
        ("A today's engine", a),
        ("B mapped, fresh search", b),
        ("C whole estimate", c),
        ("D whole, today's engine", d),
    ):
        wall, cpu = med(x[0] for x in xs), med(x[1] for x in xs)
        print(f"  {name:24s} wall {wall * 1e3:8.1f} ms   cpu {cpu * 1e3:8.1f} ms")
    ratio_w = med(y[0] / x[0] for x, y in zip(a, b, strict=True))
    ratio_c = med(y[1] / x[1] for x, y in zip(a, b, strict=True))
    print(f"  B / A (median of per-pair ratios): wall {ratio_w:.2f}x, cpu {ratio_c:.2f}x")
    ratio_w = med(y[0] / x[0] for x, y in zip(d, c, strict=True))
    ratio_c = med(y[1] / x[1] for x, y in zip(d, c, strict=True))
    print(f"  C / D (median of per-pair ratios): wall {ratio_w:.2f}x, cpu {ratio_c:.2f}x")
    print(f"  {searches} searches per pass (distinct layer shapes x profiles x variants)")
    print(
        f"  one pass with a cold memo: cpu {search * 1e3:.1f} ms, "
        f"{search / max(1, searches) * 1e3:.3f} ms per search at most"
    )


if __name__ == "__main__":
    main()
