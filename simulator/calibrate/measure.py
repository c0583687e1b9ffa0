"""Measuring this machine: BLAS GEMM/GEMV, scipy CSR x dense / x vector, memory bandwidth.

Every kernel is timed in rounds: each round runs every candidate of a group once
(dense, then each density: A B C A B C ...), so that a change of load during the
run touches all of them alike; the medians over rounds are kept. Wall time and CPU
time are both recorded (``time.thread_time`` with one thread, ``time.process_time``
otherwise).
"""

from __future__ import annotations

import contextlib
import datetime
import os
import platform
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from simulator.errors import ConfigError

FLOAT_BYTES = 4
"""Kernels run in fp32."""
INDEX_BYTES = 4
"""scipy's CSR holds 32-bit column indices and row pointers for these sizes."""
MIN_SAMPLE_S = 0.002
"""A sample shorter than this repeats the call inside the sample (timer resolution)."""


@dataclass(frozen=True, kw_only=True)
class Plan:
    """What to measure. Shapes are (rows, cols, n_cols): a ``rows x cols`` weight
    matrix times a ``cols x n_cols`` input (``n_cols`` 1: matrix x vector)."""

    shapes: tuple[tuple[int, int, int], ...]
    densities: tuple[float, ...]
    repeats: int
    stream_bytes: int
    cache_stream_bytes: int
    seed: int = 0

    def __post_init__(self) -> None:
        problems = []
        if not self.shapes:
            problems.append("no shapes to measure")
        for s in self.shapes:
            if len(s) != 3 or min(s) < 1 or s[0] * s[1] > 2**26 or s[0] * s[1] * s[2] > 2**31:
                problems.append(
                    f"shape {s}: expected three positive sizes, at most 2**26 weights and "
                    "2**31 MACs"
                )
        if not self.densities or not all(0 < d < 1 for d in self.densities):
            problems.append("densities must be in (0, 1)")
        if self.repeats < 1:
            problems.append("repeats must be at least 1")
        if self.stream_bytes < 3 * 4096 or self.cache_stream_bytes < 3 * 4096:
            problems.append("stream sizes must be at least 12 KiB")
        if problems:
            raise ConfigError("calibration plan", problems)


SHAPES = (
    (96, 864, 1600),
    (128, 2600, 1000),
    (192, 1152, 400),
    (384, 3456, 100),
    (640, 640, 96),
    (1200, 900, 32),
    (1536, 1536, 8),
    (2000, 3000, 2),
    (6000, 2000, 1),
    (5000, 1200, 1),
    (1200, 5000, 1),
)
"""Shapes of the built-in plans, chosen apart from the usual ResNet, BERT and FC layer
shapes, which stay held out for checking (benchmarks/bench_calibrate.py). Their dense
operands (cols x n_cols fp32) span 4 KiB to 10 MiB, so that some outgrow a core's L2
(0.5-2 MiB on current x86 and Arm cores) and the operand's miss term can be fitted;
the quick plan of ``prunesim validate`` (every other shape, from the second) keeps one
of those (10 MiB)."""


def plan(quick: bool = False) -> Plan:
    """The built-in plan: ``quick`` (fewer densities and rounds) or full."""
    if quick:
        return Plan(
            shapes=SHAPES,
            densities=(0.01, 0.04, 0.15),
            repeats=7,
            stream_bytes=96 * 2**20,
            cache_stream_bytes=8 * 2**20,
        )
    return Plan(
        shapes=SHAPES,
        densities=(0.005, 0.02, 0.05, 0.12, 0.3),
        repeats=15,
        stream_bytes=192 * 2**20,
        cache_stream_bytes=8 * 2**20,
    )


@dataclass(frozen=True, kw_only=True)
class Measurement:
    """Median time of one kernel on one shape: ``kind`` is ``dense`` (BLAS GEMM or
    GEMV), ``sparse`` (scipy CSR x dense or x vector) or ``stream`` (``bytes_moved``
    bytes: a triad from DRAM or a read stream in cache, ``level`` ``dram`` or ``cache``)."""

    kind: str
    rows: int = 0
    cols: int = 0
    n_cols: int = 0
    density: float = 1.0
    nnz: int = 0
    bytes_moved: int = 0
    level: str = ""
    wall_s: float
    cpu_s: float
    repeats: int
    wall_samples: tuple[float, ...] = ()
    cpu_samples: tuple[float, ...] = ()

    @property
    def macs(self) -> int:
        return self.rows * self.cols * self.n_cols

    def seconds(self, clock: str) -> float:
        return self.cpu_s if clock == "cpu" else self.wall_s


@dataclass(frozen=True, kw_only=True)
class Machine:
    """What was measured on: for the profile's header."""

    cpu_model: str
    logical_cpus: int
    simd_bits: int
    clock_hz: float
    clock_source: str
    cache_bytes: int
    caches: tuple[CacheLevel, ...] = ()
    """Every cache of one core: (level, type, bytes), from sysfs when measured."""
    blas: str
    threads: int
    date: str
    numpy_version: str
    scipy_version: str
    python_version: str
    blas_env: tuple[tuple[str, str], ...] = field(default_factory=tuple)


def _cpuinfo() -> dict[str, str]:
    out: dict[str, str] = {}
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines()[:200]:
            key, _, value = line.partition(":")
            out.setdefault(key.strip(), value.strip())
    return out


CacheLevel = tuple[int, str, int]
"""A cache of one core as sysfs reports it: (level, type, bytes), type ``Data``,
``Unified`` or ``Instruction``."""


def _size_bytes(text: str) -> int | None:
    text = text.strip().upper()
    scale = {"K": 2**10, "M": 2**20, "G": 2**30}.get(text[-1:], 1)
    try:
        return int(text.rstrip("KMG")) * scale
    except ValueError:
        return None


def caches(root: Path = Path("/sys/devices/system/cpu/cpu0/cache")) -> tuple[CacheLevel, ...]:
    """The caches of CPU 0 by level (sysfs, as lscpu reads them); empty when they
    cannot be read."""
    out = []
    with contextlib.suppress(OSError):
        for entry in sorted(root.glob("index*"))[:16]:
            with contextlib.suppress(OSError, ValueError):
                size = _size_bytes((entry / "size").read_text()[:32])
                level = int((entry / "level").read_text()[:8])
                kind = (entry / "type").read_text()[:32].strip()
                if size:
                    out.append((level, kind, size))
    return tuple(sorted(out))


def operand_caches(levels: tuple[CacheLevel, ...]) -> tuple[int, ...]:
    """Data caches from level 2 up (L2, last level): the sizes the fit tries for the
    dense operand's miss term."""
    return tuple(sorted({b for lv, kind, b in levels if lv >= 2 and kind != "Instruction"}))


def _cache_bytes(levels: tuple[CacheLevel, ...]) -> int:
    """Largest CPU cache, or 32 MiB when none can be read."""
    return max((b for _, _, b in levels), default=32 * 2**20)


def blas_info() -> str:
    """BLAS library, version and kernel as threadpoolctl reports them."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:  # pragma: no cover - a dependency
        return "unknown (threadpoolctl not installed)"
    libs = [i for i in threadpool_info() if i.get("user_api") == "blas"]
    if not libs:
        return "unknown (no BLAS reported)"
    i = libs[0]
    return f"{i.get('internal_api')} {i.get('version')} kernel {i.get('architecture')}"


def machine(threads: int) -> Machine:
    import scipy

    info = _cpuinfo()
    flags = set(info.get("flags", "").split())
    simd = 512 if "avx512f" in flags else 256 if "avx2" in flags or "avx" in flags else 128
    try:
        clock, source = float(info.get("cpu MHz", "")) * 1e6, "/proc/cpuinfo cpu MHz when measured"
    except ValueError:
        clock, source = 2.0e9, "not reported by this system: 2 GHz assumed"
    env = tuple(
        (k, os.environ[k]) for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if k in os.environ
    )
    levels = caches()
    return Machine(
        cpu_model=info.get("model name") or platform.processor() or platform.machine(),
        logical_cpus=os.cpu_count() or 1,
        simd_bits=simd,
        clock_hz=clock,
        clock_source=source,
        cache_bytes=_cache_bytes(levels),
        caches=levels,
        blas=blas_info(),
        threads=threads,
        date=datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        numpy_version=np.__version__,
        scipy_version=scipy.__version__,
        python_version=platform.python_version(),
        blas_env=env,
    )


@contextlib.contextmanager
def blas_threads(threads: int) -> Iterator[None]:
    """BLAS limited to ``threads`` threads while measuring."""
    cpus = os.cpu_count() or 1
    if not 1 <= threads <= cpus:
        raise ConfigError("--threads", f"must be in [1, {cpus}] on this machine, got {threads}")
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=threads, user_api="blas"):
        yield


def _inner(call: Callable[[], object]) -> int:
    """Calls per sample so that a sample lasts at least MIN_SAMPLE_S (after a warm-up)."""
    call()
    t = time.perf_counter()
    call()
    dt = time.perf_counter() - t
    return max(1, min(1000, int(MIN_SAMPLE_S / max(dt, 1e-9)) + 1)) if dt < MIN_SAMPLE_S else 1


def time_interleaved(
    calls: list[Callable[[], object]], repeats: int, threads: int, tick: Callable[[], object]
) -> list[tuple[list[float], list[float]]]:
    """(wall s, CPU s) of each round per call, timed in ``repeats`` interleaved rounds."""
    cpu_clock = time.thread_time if threads == 1 else time.process_time
    inner = [_inner(c) for c in calls]
    walls: list[list[float]] = [[] for _ in calls]
    cpus: list[list[float]] = [[] for _ in calls]
    for _ in range(repeats):
        for i, call in enumerate(calls):
            c0, w0 = cpu_clock(), time.perf_counter()
            for _ in range(inner[i]):
                call()
            w1, c1 = time.perf_counter(), cpu_clock()
            walls[i].append((w1 - w0) / inner[i])
            cpus[i].append((c1 - c0) / inner[i])
        tick()
    return list(zip(walls, cpus, strict=True))


def _shape_calls(shape: tuple[int, int, int], densities, rng) -> tuple[list, list]:
    import scipy.sparse as sp

    rows, cols, n = shape
    w = rng.standard_normal((rows, cols), dtype=np.float32)
    x = rng.standard_normal((cols, n), dtype=np.float32)
    if n == 1:
        x = np.ascontiguousarray(x[:, 0])
    metas = [
        Measurement(kind="dense", rows=rows, cols=cols, n_cols=n, wall_s=0, cpu_s=0, repeats=0)
    ]
    calls: list[Callable[[], object]] = [lambda: w @ x]
    for d in densities:
        keep = rng.random((rows, cols)) < d
        a = sp.csr_matrix(np.where(keep, w, np.float32(0)))
        a.sort_indices()
        metas.append(
            Measurement(
                kind="sparse",
                rows=rows,
                cols=cols,
                n_cols=n,
                density=float(d),
                nnz=int(a.nnz),
                wall_s=0,
                cpu_s=0,
                repeats=0,
            )
        )
        calls.append(lambda a=a: a @ x)
    return metas, calls


def _stream_calls(nbytes: int, level: str) -> tuple[list, list]:
    """DRAM: a triad a = b + s*c over three arrays of ``nbytes / 3`` bytes, in chunks
    that stay in cache for the product (12 bytes per element: two reads, one write).
    Cache: a read stream (BLAS dot product) over two arrays of ``nbytes / 2`` bytes
    that fit the cache, as the kernels read their operands there."""
    if level == "cache":
        n = max(1024, nbytes // (2 * FLOAT_BYTES))
        x, y = np.ones(n, np.float32), np.ones(n, np.float32)
        meta = Measurement(
            kind="stream",
            bytes_moved=2 * n * FLOAT_BYTES,
            level=level,
            wall_s=0,
            cpu_s=0,
            repeats=0,
        )
        return [meta], [lambda: np.dot(x, y)]
    n = max(1024, nbytes // (3 * FLOAT_BYTES))
    a = np.zeros(n, np.float32)
    b = np.ones(n, np.float32)
    c = np.ones(n, np.float32)
    chunk = 65536
    tmp = np.empty(chunk, np.float32)

    def triad() -> None:
        for i in range(0, n, chunk):
            j = min(n, i + chunk)
            t = tmp[: j - i]
            np.multiply(c[i:j], np.float32(3.0), out=t)
            np.add(b[i:j], t, out=a[i:j])

    meta = Measurement(
        kind="stream", bytes_moved=3 * n * FLOAT_BYTES, level=level, wall_s=0, cpu_s=0, repeats=0
    )
    return [meta], [triad]


def ticks(p: Plan) -> int:
    """Progress units of :func:`measure`: one per round of each group."""
    return (len(p.shapes) + 2) * p.repeats


def _run_groups(groups, repeats: int, threads: int, tick) -> list[Measurement]:
    from dataclasses import replace

    out: list[Measurement] = []
    for make in groups:
        metas, calls = make()
        times = time_interleaved(calls, repeats, threads, tick)
        out += [
            replace(
                m,
                wall_s=float(np.median(w)),
                cpu_s=float(np.median(c)),
                repeats=repeats,
                wall_samples=tuple(w),
                cpu_samples=tuple(c),
            )
            for m, (w, c) in zip(metas, times, strict=True)
        ]
        del calls
    return out


def measure_shapes(
    shapes,
    densities,
    *,
    repeats: int,
    threads: int = 1,
    seed: int = 0,
    tick: Callable[[], object] = lambda: None,
) -> tuple[Measurement, ...]:
    """Dense and sparse times of ``shapes`` at ``densities`` (each shape's kernels
    interleaved), as :func:`measure` takes them: for checking a profile on other
    shapes."""
    rng = np.random.default_rng(seed)
    with blas_threads(threads):
        groups = [lambda s=s: _shape_calls(tuple(s), densities, rng) for s in shapes]
        return tuple(_run_groups(groups, repeats, threads, tick))


def measure(
    p: Plan, threads: int = 1, progress: Callable[[int], Callable[[], object]] | None = None
) -> tuple[Machine, tuple[Measurement, ...]]:
    """Measure ``p`` on this machine with BLAS at ``threads`` threads."""
    tick = (progress or (lambda total: lambda *_: None))(ticks(p))
    rng = np.random.default_rng(p.seed)
    with blas_threads(threads):
        info = machine(threads)
        groups = [
            lambda: _stream_calls(p.stream_bytes, "dram"),
            lambda: _stream_calls(p.cache_stream_bytes, "cache"),
            *[lambda s=s: _shape_calls(s, p.densities, rng) for s in p.shapes],
        ]
        return info, tuple(_run_groups(groups, p.repeats, threads, tick))
