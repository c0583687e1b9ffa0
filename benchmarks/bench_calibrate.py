"""A calibrated CPU profile against this machine on layer shapes the calibration did not use.

Calibrates (``prunesim calibrate cpu``'s library call; ``--quick`` for the short
plan) or loads a calibrated profile (``--profile FILE``), then measures held-out
ResNet-50, BERT-base and FC layer shapes at several densities: numpy's BLAS
against scipy's CSR, each shape's kernels interleaved (dense, d1, d2, ... in every
round; ratios are medians of per-round ratios), CPU time beside wall time.
Predictions come from ``simulate_layer`` with the profile, fp32 weights and
activations, real random masks. Prints per shape the
dense latency error, the sparse/dense ratio errors and the break-even density, and
the medians against the targets: dense latency and sparse/dense ratio median
absolute error <= 25%, break-even density within +-30% of the measured one.

Run: ``python benchmarks/bench_calibrate.py [--quick | --profile FILE] [--repeats 15]``.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import numpy as np

from simulator.calibrate import calibrate_cpu, measure_shapes, write_profile
from simulator.hwconfig import load_platform
from simulator.validate.host import DENSITIES, HELD_OUT, per_round, predicted_s
from simulator.validate.host import TARGETS as HOST_TARGETS

TARGETS = {**HOST_TARGETS, "break-even density": 0.30}


def crossing(densities, ratios) -> float:
    """Density where sparse/dense = 1, linear between the bracketing points (or from
    the nearest two beyond the measured range)."""
    d, r = np.asarray(densities, float), np.asarray(ratios, float)
    above = np.nonzero(r >= 1)[0]
    i = int(above[0]) if above.size else len(d) - 1
    i = min(max(i, 1), len(d) - 1)
    d0, d1, r0, r1 = d[i - 1], d[i], r[i - 1], r[i]
    if r1 == r0:
        return float("nan")
    return float(d0 + (1 - r0) * (d1 - d0) / (r1 - r0))


def predicted_breakeven(platform, shape, dense_s: float, rng) -> float:
    lo, hi = 1e-4, 1.0
    for _ in range(18):  # bisection in log density
        mid = float(np.sqrt(lo * hi))
        if predicted_s(platform, shape, mid, rng) < dense_s:
            lo = mid
        else:
            hi = mid
    return float(np.sqrt(lo * hi))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    src = ap.add_mutually_exclusive_group()
    src.add_argument("--profile", help="a calibrated profile to check (default: calibrate now)")
    src.add_argument("--quick", action="store_true", help="calibrate with the quick plan")
    ap.add_argument("--save", help="write the profile calibrated now to this file")
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()

    if args.profile:
        platform = load_platform(args.profile)
        print(f"profile: {args.profile}")
    else:
        t0, c0 = time.perf_counter(), time.process_time()
        cal = calibrate_cpu(threads=args.threads, quick=args.quick)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        print(
            f"calibrated ({'quick' if args.quick else 'full'} plan) in {wall:.1f} s wall, "
            f"{cpu:.1f} s CPU; fit residual {100 * cal.fit.residual():.1f}%"
        )
        path = args.save or f"/tmp/bench_calibrate_{os.getpid()}.yaml"
        write_profile(path, cal.yaml, overwrite=True)
        platform = load_platform(path)
    clock = "cpu" if args.threads == 1 else "wall"

    t0 = time.perf_counter()
    ms = measure_shapes(
        list(HELD_OUT.values()), DENSITIES, repeats=args.repeats, threads=args.threads, seed=7
    )
    print(
        f"measured {len(HELD_OUT)} held-out shapes x (dense + {len(DENSITIES)} densities), "
        f"{args.repeats} interleaved rounds, in {time.perf_counter() - t0:.1f} s; errors "
        f"against {'CPU' if clock == 'cpu' else 'wall'} time (wall beside it)\n"
    )
    rng = np.random.default_rng(11)
    dense_err, ratio_err, be_err, ratio_err_wall = [], [], [], []
    per = 1 + len(DENSITIES)
    header = (
        f"{'shape':32} {'dense ms cpu/wall':>18} {'pred':>7} {'err':>6}  "
        f"{'ratio meas -> pred at ' + ','.join(map(str, DENSITIES)):44} {'break-even':>18}"
    )
    print(header)
    for k, (name, shape) in enumerate(HELD_OUT.items()):
        group = ms[k * per : (k + 1) * per]
        dense, sparse = group[0], group[1:]
        t_dense = dense.seconds(clock)
        p_dense = predicted_s(platform, shape, 1.0, rng)
        dense_err.append(p_dense / t_dense - 1)
        # medians of per-round ratios: a round's kernels ran under the same load
        samples = "cpu_samples" if clock == "cpu" else "wall_samples"
        meas_ratio = [per_round(getattr(m, samples), getattr(dense, samples)) for m in sparse]
        wall_ratio = [per_round(m.wall_samples, dense.wall_samples) for m in sparse]
        pred_ratio = [predicted_s(platform, shape, m.density, rng) / p_dense for m in sparse]
        ratio_err += [p / m - 1 for p, m in zip(pred_ratio, meas_ratio, strict=True)]
        ratio_err_wall += [p / m - 1 for p, m in zip(pred_ratio, wall_ratio, strict=True)]
        be_meas = crossing(DENSITIES, meas_ratio)
        be_pred = predicted_breakeven(platform, shape, p_dense, rng)
        be_err.append(be_pred / be_meas - 1)
        ratios = " ".join(f"{m:.2f}>{p:.2f}" for m, p in zip(meas_ratio, pred_ratio, strict=True))
        print(
            f"{name:32} {1e3 * t_dense:8.3f}/{1e3 * dense.wall_s:<9.3f} {1e3 * p_dense:7.3f} "
            f"{100 * dense_err[-1]:+5.0f}%  {ratios:44} {be_meas:.3f}>{be_pred:.3f} "
            f"({100 * be_err[-1]:+.0f}%)"
        )

    def med(x) -> float:
        return float(np.median(np.abs(x)))

    be = np.abs(be_err)
    rows = [
        ("dense latency", med(dense_err), "median |error|"),
        ("sparse/dense ratio", med(ratio_err), "median |error|"),
        ("break-even density", med(be_err), "median |error|"),
    ]
    print("\ntarget                 value    target  met")
    for what, value, how in rows:
        ok = value <= TARGETS[what]
        print(
            f"{what:22} {100 * value:5.1f}%  <={100 * TARGETS[what]:3.0f}%  {'yes' if ok else 'NO'}"
            f"  ({how})"
        )
    print(
        f"break-even within +-30%: {int((be <= 0.30).sum())} of {be.size} shapes; "
        f"sparse/dense ratio against wall time: median |error| {100 * med(ratio_err_wall):.1f}%"
    )


if __name__ == "__main__":
    main()
