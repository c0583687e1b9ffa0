"""This machine as a reference: held-out layer shapes measured (numpy BLAS against
scipy CSR, each shape's kernels interleaved) and predicted by a CPU profile
calibrated in the same run (or one given), with one thread and with all.

Per point the rows are informative (a single timing on a shared machine says
little); the checked rows are the medians of the absolute errors, the figures
``benchmarks/bench_calibrate.py`` holds its targets to.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from simulator.calibrate import Plan, calibrate_cpu, measure_shapes, write_profile
from simulator.calibrate.measure import ticks as calibration_ticks
from simulator.formats import profile_mask
from simulator.hwconfig import Platform, load_platform
from simulator.layers import Linear
from simulator.simulate import simulate_layer

HELD_OUT = {
    # name: (rows, cols, n_cols) of the GEMM view: out x (in x k x k) x (batch x P x Q)
    "resnet50 conv3 3x3 (28x28)": (128, 1152, 784),
    "resnet50 conv4 3x3 (14x14)": (256, 2304, 196),
    "resnet50 conv5 3x3 (7x7)": (512, 4608, 49),
    "resnet50 conv2 1x1 64->256": (256, 64, 3136),
    "bert-base ffn1 (128 tokens)": (3072, 768, 128),
    "bert-base ffn2 (128 tokens)": (768, 3072, 128),
    "fc 4096x4096 batch 16": (4096, 4096, 16),
    "fc 4096x4096 batch 1": (4096, 4096, 1),
    "resnet50 fc 2048->1000 batch 1": (1000, 2048, 1),
}
"""Layer shapes the calibration plans leave out (simulator.calibrate.measure.SHAPES)."""
QUICK_HELD_OUT = (
    "resnet50 conv4 3x3 (14x14)",
    "bert-base ffn1 (128 tokens)",
    "fc 4096x4096 batch 1",
)
DENSITIES = (0.01, 0.03, 0.1, 0.3)
QUICK_DENSITIES = (0.03, 0.1)
TARGETS = {"dense latency": 0.25, "sparse/dense ratio": 0.25}
"""Median absolute error allowed with one thread (CPU time)."""
TARGETS_ALL_THREADS = {"dense latency": 0.50, "sparse/dense ratio": 0.50}
"""With all threads the timings are wall time, which on a shared machine measures the
scheduler as much as the kernels: a looser band, stated as such."""


@dataclass(frozen=True, kw_only=True)
class HostPlan:
    """What the host section measures: the calibration plan (unused with a given
    profile), held-out shapes, densities and interleaved rounds."""

    calibration: Plan
    shapes: dict[str, tuple[int, int, int]]
    densities: tuple[float, ...]
    repeats: int


def host_plan(quick: bool = False) -> HostPlan:
    """The built-in plan; ``quick`` keeps the whole section under a minute."""
    from simulator.calibrate.measure import SHAPES, plan

    if not quick:
        return HostPlan(
            calibration=plan(False), shapes=dict(HELD_OUT), densities=DENSITIES, repeats=15
        )
    return HostPlan(
        calibration=Plan(
            shapes=SHAPES[1::2],
            densities=(0.02, 0.15),
            repeats=5,
            stream_bytes=48 * 2**20,
            cache_stream_bytes=4 * 2**20,
        ),
        shapes={k: HELD_OUT[k] for k in QUICK_HELD_OUT},
        densities=QUICK_DENSITIES,
        repeats=5,
    )


@dataclass(frozen=True, kw_only=True)
class HostPoint:
    """One measured point against its prediction (seconds, or a sparse/dense ratio)."""

    threads: int
    shape: str
    kind: str  # "dense latency" or "sparse/dense ratio"
    density: float
    measured: float
    predicted: float

    @property
    def error(self) -> float:
        return self.predicted / self.measured - 1


@dataclass(frozen=True, kw_only=True)
class HostRun:
    threads: int
    clock: str
    profile: str
    points: tuple[HostPoint, ...]
    load_average: float | None = None
    """1-minute load average when this thread count's run started (None: unknown)."""
    cores: int = 1

    @property
    def contended(self) -> bool:
        """Wall-time timings taken while other processes wanted more than every core:
        their errors measure the contention, so their medians are not checked."""
        return (
            self.clock == "wall"
            and self.load_average is not None
            and self.load_average > self.cores
        )

    def median_error(self, kind: str) -> float:
        e = [abs(p.error) for p in self.points if p.kind == kind]
        return float(np.median(e)) if e else float("nan")


def load_average() -> float | None:
    try:
        return float(os.getloadavg()[0])
    except (OSError, AttributeError):  # pragma: no cover - not on every system
        return None


def thread_counts() -> tuple[int, ...]:
    n = os.cpu_count() or 1
    return (1,) if n == 1 else (1, n)


def predicted_s(platform: Platform, shape, density: float, rng) -> float:
    """Predicted seconds of a held-out (rows, cols, columns) shape as a linear layer
    at fp32: dense, or an i.i.d. CSR mask at ``density``."""
    rows, cols, n = shape
    layer = Linear(name="held_out", in_features=cols, out_features=rows, tokens=n)
    if density >= 1:
        mask, variant = np.ones((rows, cols), bool), "dense"
    else:
        mask, variant = rng.random((rows, cols)) < density, "sparse"
    r = simulate_layer(
        layer,
        platform,
        profile_mask(layer, mask),
        variant=variant,
        weight_bits=32,
        activation_bits=32,
    )
    return r.cost.latency_s


def per_round(a: Sequence[float], b: Sequence[float]) -> float:
    """Median of per-round ratios: a round's kernels ran under the same load."""
    return float(np.median(np.asarray(a) / np.asarray(b)))


def total_ticks(p: HostPlan, threads: Sequence[int], calibrate: bool) -> int:
    per = len(p.shapes) * p.repeats + (calibration_ticks(p.calibration) if calibrate else 0)
    return per * len(threads)


def run_host(
    p: HostPlan,
    *,
    threads: Sequence[int],
    platform_file: str | Path | None = None,
    tick: Callable[[], object] = lambda: None,
) -> tuple[HostRun, ...]:
    """Measure ``p``'s held-out shapes at each thread count and predict them with a
    profile calibrated at that count in the same run (or ``platform_file``)."""
    runs = []
    for t in threads:
        clock = "cpu" if t == 1 else "wall"
        load = load_average()
        if platform_file is None:
            progress = lambda total: lambda *_: tick()  # noqa: E731
            cal = calibrate_cpu(p.calibration, threads=t, name=f"this_cpu_{t}t", progress=progress)
            with tempfile.TemporaryDirectory() as tmp:
                path = write_profile(Path(tmp) / "this_cpu.yaml", cal.yaml)
                platform = load_platform(path)
            profile = f"calibrated in this run ({t} thread{'s' if t > 1 else ''})"
        else:
            platform = load_platform(platform_file)
            profile = str(platform_file)
        ms = measure_shapes(
            list(p.shapes.values()), p.densities, repeats=p.repeats, threads=t, seed=7, tick=tick
        )
        rng = np.random.default_rng(11)
        samples = "cpu_samples" if clock == "cpu" else "wall_samples"
        per = 1 + len(p.densities)
        points = []
        for k, (name, shape) in enumerate(p.shapes.items()):
            dense, sparse = ms[k * per], ms[k * per + 1 : (k + 1) * per]
            p_dense = predicted_s(platform, shape, 1.0, rng)
            points.append(
                HostPoint(
                    threads=t,
                    shape=name,
                    kind="dense latency",
                    density=1.0,
                    measured=dense.seconds(clock),
                    predicted=p_dense,
                )
            )
            for m in sparse:
                points.append(
                    HostPoint(
                        threads=t,
                        shape=name,
                        kind="sparse/dense ratio",
                        density=m.density,
                        measured=per_round(getattr(m, samples), getattr(dense, samples)),
                        predicted=predicted_s(platform, shape, m.density, rng) / p_dense,
                    )
                )
        runs.append(
            HostRun(
                threads=t,
                clock=clock,
                profile=profile,
                points=tuple(points),
                load_average=load,
                cores=os.cpu_count() or 1,
            )
        )
    return tuple(runs)
