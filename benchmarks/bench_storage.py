"""Format statistics throughput: prunesim against scipy.sparse, in the same run.

Builds ResNet-50-sized masks (every prunable layer of models/resnet50.yaml, 25.5 M
weights, density 0.1), then times, after JIT warm-up and on one thread:

- prunesim: relative-index CSR statistics (per-row entries, fillers, pointers) of
  every layer;
- scipy: ``scipy.sparse.csr_matrix`` built from the same masks (structure only,
  no fillers) and, as a fuller peer, the same plus NumPy filler counting from
  its ``indices``;
- prunesim: the whole network in every registered format.

Prints medians and the ratios. Run: ``python benchmarks/bench_storage.py``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("NUMBA_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import scipy.sparse as sp

from simulator.formats import FORMATS, FormatParams, format_stats, profile_gemm
from simulator.masks import Pruning, generate_mask
from simulator.workloads import load_network


def median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--density", type=float, default=0.1)
    ap.add_argument("--index-bits", type=int, default=4)
    args = ap.parse_args()

    net = load_network("resnet50")
    pruning = Pruning(structure="random", density=args.density, seed=1)
    gemms, mats = [], []
    for layer in net.prunable_layers:
        mask = generate_mask(layer, pruning)
        g = layer.gemm
        gemms.append(np.ascontiguousarray(mask.reshape(g.groups, g.rows, g.cols), np.uint8))
        mats.append(mask.reshape(g.groups * g.rows, g.cols))  # groups == 1 in ResNet-50
    weights = sum(m.size for m in mats)
    params = FormatParams(weight_bits=4, index_bits=args.index_bits)

    def ours_csr_rel():
        return [format_stats(profile_gemm(m), "csr-rel", params).total_bits for m in gemms]

    def scipy_build():
        return [sp.csr_matrix(m).nnz for m in mats]

    def scipy_build_and_fillers():
        out = []
        for m in mats:
            a = sp.csr_matrix(m)
            a.sort_indices()
            prev = np.empty_like(a.indices)
            prev[1:] = a.indices[:-1]
            starts = a.indptr[:-1][np.diff(a.indptr) > 0]
            prev[starts] = -1
            gaps = a.indices - prev - 1
            out.append(int((gaps >> args.index_bits).sum()))
        return out

    def ours_every_format():
        for m in gemms:
            p = profile_gemm(m)
            for fmt in FORMATS:
                format_stats(p, fmt, params)

    # warm-up (JIT compile or cache load) and a cross-check of the filler counts
    ours = ours_csr_rel()
    fill = scipy_build_and_fillers()
    ours_fill = [format_stats(profile_gemm(m), "csr-rel", params).fillers for m in gemms]
    assert ours_fill == fill, "filler counts differ from the scipy-based count"
    ours_every_format()
    scipy_build()
    assert ours

    t_ours = median_time(ours_csr_rel, args.repeats)
    t_sp = median_time(scipy_build, args.repeats)
    t_sp_f = median_time(scipy_build_and_fillers, args.repeats)
    t_all = median_time(ours_every_format, args.repeats)
    mw = weights / 1e6
    print(
        f"ResNet-50 masks: {len(mats)} layers, {weights:,} weights, density {args.density}, "
        f"median of {args.repeats}, one thread"
    )
    for label, t in (
        ("prunesim csr-rel statistics", t_ours),
        ("scipy csr_matrix build", t_sp),
        ("scipy build + NumPy fillers", t_sp_f),
    ):
        print(f"  {label:<32} {t * 1e3:8.1f} ms  {mw / t:8.0f} Mweights/s")
    print(f"  prunesim, all {len(FORMATS)} formats          {t_all * 1e3:8.1f} ms")
    print(
        f"ratio: prunesim is {t_sp / t_ours:.1f}x scipy's build throughput "
        f"({t_sp_f / t_ours:.1f}x build + fillers); target >= 5x"
    )
    print(f"whole ResNet-50 in every format: {t_all:.3f} s (target < 0.5 s)")


if __name__ == "__main__":
    main()
