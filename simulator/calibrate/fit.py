"""Fitting the roofline's CPU terms to measured kernel times.

The model is the roofline engine's (``simulator/dataflows/roofline.py``) at fp32,
for a ``rows x cols`` weight matrix times ``cols x n_cols`` inputs:

- dense:  ``call + MACs x s_dense``
- sparse: ``call + nnz x n_cols x s_sparse + nnz x s_entry + rows x s_row
  + missed x s_miss``, where ``missed`` counts the lines of the dense operand
  (``cols x n_cols``) read from beyond a cache of the machine once the operand
  outgrows it (``simulator.dataflows.roofline.missed_operand_lines``)

and the latency is the largest of that compute time, the DRAM bytes over the DRAM
bandwidth and twice those bytes (read and write, staged once) over the cache
bandwidth. The fit minimises the robust (soft-L1) sum of squared log errors, so
that a 20 us GEMV counts as much as a 50 ms GEMM; the DRAM bandwidth is fitted with
the streaming triad as a prior; the cache bandwidth is the in-cache read stream.
The miss term is fitted once per cache size offered (the machine's L2 and last-level
cache) and once without; the fit with the lowest cost is kept, and a miss cost at
its lower bound is no term.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from simulator.calibrate.measure import FLOAT_BYTES, INDEX_BYTES, Measurement
from simulator.dataflows.roofline import missed_operand_lines
from simulator.errors import ConfigError

CACHE_LINE_BYTES = 64
"""Cache line the miss term counts in (x86-64 and Arm cores alike)."""
MISS_FLOOR_S = 1e-15
"""Lower bound of the fitted miss cost per line: a fit that ends there has no term."""
PRIOR_WEIGHT = 0.25
"""Weight of the streaming triad as a prior on the fitted DRAM bandwidth (one
measurement counts 1)."""


@dataclass(frozen=True, kw_only=True)
class Params:
    """The fitted terms, in seconds and bytes per second; ``s_per_miss_line`` is
    charged per missed line of the dense operand once it outgrows
    ``operand_cache_bytes`` (None: no miss term)."""

    s_per_dense_mac: float
    s_per_sparse_mac: float
    s_per_entry: float
    s_per_row: float
    s_per_call: float
    dram_bytes_per_s: float
    cache_bytes_per_s: float
    s_per_miss_line: float = 0.0
    operand_cache_bytes: float | None = None


@dataclass(frozen=True, kw_only=True)
class Fit:
    """Fitted terms, what they were fitted to, and how well they fit it."""

    params: Params
    clock: str
    measurements: tuple[Measurement, ...]
    predicted_s: tuple[float, ...]
    triad_dram_bytes_per_s: float

    def errors(self, kind: str | None = None) -> np.ndarray:
        """Relative errors (predicted / measured - 1) of one kind of kernel point:
        ``gemm`` (dense, n_cols > 1), ``gemv`` (dense, n_cols 1), ``spmm``, ``spmv``,
        ``dense``, ``sparse``, or all (None)."""
        out = []
        for m, p in zip(self.measurements, self.predicted_s, strict=True):
            if m.kind == "stream" or kind not in (None, m.kind, _group(m)):
                continue
            out.append(p / m.seconds(self.clock) - 1)
        return np.asarray(out, dtype=float)

    def residual(self, kind: str | None = None) -> float:
        """Median absolute relative error of one kind of point (NaN when none)."""
        e = self.errors(kind)
        return float(np.median(np.abs(e))) if e.size else float("nan")

    def bound_counts(self) -> dict[str, int]:
        """How many kernel points each bound sets in the fitted model."""
        out: dict[str, int] = {}
        for m in self.measurements:
            if m.kind != "stream":
                b = bound(self.params, m)
                out[b] = out.get(b, 0) + 1
        return out


def _group(m: Measurement) -> str:
    if m.kind == "dense":
        return "gemv" if m.n_cols == 1 else "gemm"
    return "spmv" if m.n_cols == 1 else "spmm"


def dram_bytes(m: Measurement) -> float:
    """Bytes the roofline moves at DRAM for a kernel point (fp32 values, 32-bit
    indices and row pointers)."""
    act = FLOAT_BYTES * (m.cols * m.n_cols + m.rows * m.n_cols)
    if m.kind == "dense":
        return FLOAT_BYTES * m.rows * m.cols + act
    return (FLOAT_BYTES + INDEX_BYTES) * m.nnz + INDEX_BYTES * (m.rows + 1) + act


def missed_lines(m: Measurement, cache_bytes: float | None) -> float:
    """Missed lines of the dense operand a sparse point is charged (fp32 values)."""
    return missed_operand_lines(
        nnz=m.nnz,
        cols=m.cols,
        n_cols=m.n_cols,
        value_bytes=FLOAT_BYTES,
        cache_bytes=cache_bytes,
        line_bytes=CACHE_LINE_BYTES,
    )


def compute_s(p: Params, m: Measurement) -> float:
    """Compute time of a kernel point, its per-call cost aside (seconds)."""
    if m.kind == "dense":
        return m.macs * p.s_per_dense_mac
    return (
        m.nnz * m.n_cols * p.s_per_sparse_mac
        + m.nnz * p.s_per_entry
        + m.rows * p.s_per_row
        + missed_lines(m, p.operand_cache_bytes) * p.s_per_miss_line
    )


def _bounds(p: Params, m: Measurement) -> dict[str, float]:
    b = dram_bytes(m)
    return {
        "compute": compute_s(p, m),
        "dram": b / p.dram_bytes_per_s,
        "cache": 2 * b / p.cache_bytes_per_s,
    }


def predict_s(p: Params, m: Measurement) -> float:
    """Predicted seconds of a dense or sparse kernel point: the largest of its compute,
    DRAM and cache bounds, plus the per-call cost (whichever bound sets it, as the
    roofline engine adds a kernel's launch)."""
    return max(_bounds(p, m).values()) + p.s_per_call


def bound(p: Params, m: Measurement) -> str:
    b = _bounds(p, m)
    return max(b, key=lambda k: b[k])


def _stream_rate(ms: Sequence[Measurement], level: str, clock: str) -> float:
    rates = [
        m.bytes_moved / m.seconds(clock) for m in ms if m.kind == "stream" and m.level == level
    ]
    if not rates:
        raise ConfigError("calibration", f"no {level} stream measurement to fit")
    return float(np.median(rates))


def fit(
    measurements: Sequence[Measurement],
    clock: str = "cpu",
    operand_caches: Sequence[int] = (),
) -> Fit:
    """Fit :class:`Params` to dense and sparse kernel points and the stream triads.
    ``clock``: fit CPU time (``cpu``) or wall time (``wall``). ``operand_caches``:
    cache sizes (bytes) to try for the dense operand's miss term; none: no term."""
    ms = tuple(measurements)
    points = [m for m in ms if m.kind in ("dense", "sparse")]
    kinds = {m.kind for m in points}
    if kinds != {"dense", "sparse"} or any(m.seconds(clock) <= 0 for m in points):
        raise ConfigError("calibration", "need positive dense and sparse kernel times to fit")
    if any(not c > 0 for c in operand_caches):
        raise ConfigError("calibration", "operand cache sizes must be positive")
    triad = _stream_rate(ms, "dram", clock)
    cache = _stream_rate(ms, "cache", clock)
    best: tuple[float, Params] | None = None
    for size in (None, *sorted(set(operand_caches))):
        if size is not None and not any(missed_lines(m, size) > 0 for m in points):
            continue  # no point outgrows this cache: the term cannot be fitted
        cost, p = _fit_terms(points, clock, triad, cache, size)
        if best is None or cost < best[0]:
            best = (cost, p)
    assert best is not None
    p = best[1]
    if p.operand_cache_bytes is not None and p.s_per_miss_line <= 10 * MISS_FLOOR_S:
        p = replace(p, s_per_miss_line=0.0, operand_cache_bytes=None)
    return Fit(
        params=p,
        clock=clock,
        measurements=ms,
        predicted_s=tuple(predict_s(p, m) if m.kind != "stream" else m.seconds(clock) for m in ms),
        triad_dram_bytes_per_s=triad,
    )


def _fit_terms(
    points: Sequence[Measurement],
    clock: str,
    triad: float,
    cache: float,
    operand_cache: float | None,
) -> tuple[float, Params]:
    """Least-squares fit of the terms with the miss term at ``operand_cache`` (None:
    without it): its cost and parameters."""
    from scipy.optimize import least_squares

    t = np.array([m.seconds(clock) for m in points])
    miss = operand_cache is not None

    def params(x: np.ndarray) -> Params:
        v = np.exp(x)
        return Params(
            s_per_dense_mac=v[0],
            s_per_sparse_mac=v[1],
            s_per_entry=v[2],
            s_per_row=v[3],
            s_per_call=v[4],
            dram_bytes_per_s=v[5],
            cache_bytes_per_s=cache,
            s_per_miss_line=v[6] if miss else 0.0,
            operand_cache_bytes=operand_cache,
        )

    def residuals(x: np.ndarray) -> np.ndarray:
        p = params(x)
        pred = np.array([predict_s(p, m) for m in points])
        return np.append(np.log(pred / t), PRIOR_WEIGHT * (x[5] - np.log(triad)))

    dense = [m for m in points if m.kind == "dense"]
    sparse = [m for m in points if m.kind == "sparse"]
    x0 = [
        np.median([m.seconds(clock) / m.macs for m in dense]),
        np.median([m.seconds(clock) / (m.nnz * m.n_cols + 1) for m in sparse]) / 2,
        1e-9,
        1e-9,
        1e-6,
        triad,
    ]
    lo = [1e-15, 1e-15, 1e-15, 1e-15, 1e-12, 1e6]
    hi = [1e-6, 1e-4, 1e-4, 1e-3, 1.0, 1e14]
    if miss:
        x0, lo, hi = [*x0, 1e-9], [*lo, MISS_FLOOR_S], [*hi, 1e-5]
    x0, lo, hi = np.log(x0), np.log(lo), np.log(hi)
    x0 = np.clip(x0, lo + 1e-9, hi - 1e-9)
    best = None
    # a few starts: the max() makes the surface piecewise smooth
    for shift in (0.0, -2.0, 2.0):
        start = x0.copy()
        start[2:5] += shift
        if miss:
            start[6] += shift
        start = np.clip(start, lo + 1e-9, hi - 1e-9)
        r = least_squares(
            residuals, start, bounds=(lo, hi), loss="soft_l1", f_scale=0.25, x_scale=1.0
        )
        if best is None or r.cost < best.cost:
            best = r
    return float(best.cost), params(best.x)
