"""Loop-nest mapping search (``compute.dram_model: mapped``): time per layer on every
layer of ResNet-50, and the dense systolic engine with it against today's engine.

In one run, interleaved (A B A B ...): A is ``run_systolic`` on every dense ResNet-50
layer with the ``scalesim_32x32_ws`` profile as built in (prunesim's DRAM heuristic);
B the same profile with ``dram_model: mapped``, its memo of mappings cleared before
every pass, so that each pass searches every layer afresh. Also the search alone
(``map_gemm`` unmemoised) per layer. Wall and CPU (``time.thread_time``) times;
ratios are medians of per-pair ratios.

Run: ``python benchmarks/bench_mapping.py``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("NUMBA_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np

from simulator.dataflows import LayerTask
from simulator.dataflows.systolic import _mapped
from simulator.formats import profile_gemm
from simulator.hwconfig import load_platform
from simulator.mapping import map_gemm
from simulator.simulate import engine
from simulator.workloads import load_network


def _task(layer) -> LayerTask:
    g = layer.gemm
    prof = profile_gemm(np.ones((g.groups, g.rows, g.cols), np.uint8))
    return LayerTask(
        layer=layer, profile=prof, variant="dense", weight_bits=8, index_bits=4, activation_bits=8
    )


def _timed(fn) -> tuple[float, float]:
    w, c = time.perf_counter(), time.thread_time()
    fn()
    return time.perf_counter() - w, time.thread_time() - c


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()

    net = load_network("resnet50")
    layers = [x for x in net.prunable_layers]
    tasks = [_task(x) for x in layers]
    base = load_platform("scalesim_32x32_ws")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "mapped.yaml"
        path.write_text(
            "extends: scalesim_32x32_ws\nname: scalesim_32x32_ws_mapped\n"
            "compute:\n  dram_model: mapped\n"
        )
        mapped = load_platform(path)
    run_a, run_b = engine(base, "dense"), engine(mapped, "dense")

    def pass_a() -> None:
        for t in tasks:
            run_a(t)

    def pass_b() -> None:
        map_gemm.cache_clear()
        for t in tasks:
            run_b(t)

    c = base.compute
    searches = [
        (x.gemm, int(c.array_rows), int(c.array_cols)) for x in layers
    ]  # effective GEMM = full GEMM for dense

    def pass_search() -> None:
        map_gemm.cache_clear()
        for g, r, k in searches:
            _mapped(mapped, g, r, k, 8.0 * g.groups * g.rows * g.cols, 8, 1)

    pass_a(), pass_b(), pass_search()  # warm-up (imports, numba caches)
    a, b, s = [], [], []
    for _ in range(args.repeats):
        a.append(_timed(pass_a))
        b.append(_timed(pass_b))
        s.append(_timed(pass_search))
    n = len(layers)
    unique = map_gemm.cache_info().misses  # searches of the last pass (distinct shapes)
    med = statistics.median
    print(f"ResNet-50: {n} layers, dense, scalesim_32x32_ws; {args.repeats} interleaved repeats")
    for name, xs in (("A today's engine", a), ("B mapped engine", b), ("search alone", s)):
        wall, cpu = med(x[0] for x in xs), med(x[1] for x in xs)
        print(
            f"  {name:18s} wall {wall * 1e3:7.2f} ms ({wall / n * 1e3:.3f} ms/layer)   "
            f"cpu {cpu * 1e3:7.2f} ms ({cpu / n * 1e3:.3f} ms/layer)"
        )
    per = med(x[1] for x in s) / unique
    print(f"  {unique} distinct GEMM shapes searched per pass: cpu {per * 1e3:.3f} ms per search")
    ratio_w = med(y[0] / x[0] for x, y in zip(a, b, strict=True))
    ratio_c = med(y[1] / x[1] for x, y in zip(a, b, strict=True))
    print(f"  B / A (median of per-pair ratios): wall {ratio_w:.2f}x, cpu {ratio_c:.2f}x")


if __name__ == "__main__":
    main()
