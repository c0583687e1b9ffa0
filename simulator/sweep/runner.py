"""Running a sweep: batches of points on one of three engines, chunks on disk, resume.

Points are grouped by workload (network and pruning) and cut into batches of at most
``batch_size`` points, so that a process profiles each mask once and then evaluates
it on many hardware points. Each batch is evaluated by :func:`run_batch` and written
as one chunk by whoever evaluated it: the calling process (``serial``), spawned
worker processes (``pool``, :func:`simulator.workers.run_in_workers`: no orphans,
SIGTERM and Ctrl-C stop them) or Dask workers (``dask``: a LocalCluster, or a
scheduler's address; the output folder must be one they all see). The engines
produce identical rows: a row depends on its point alone.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from simulator.errors import ConfigError
from simulator.sweep.columns import INVALID
from simulator.sweep.evaluate import Context, evaluate, workload_key
from simulator.sweep.spec import Point, SweepSpec
from simulator.sweep.store import ChunkWriter, SweepFolder, check_format
from simulator.workers import run_in_workers, sigterm_raises

ENGINES = ("serial", "pool", "dask")
BATCH_SIZE = 100
"""Most points per batch (one task, one chunk): per-task overhead dominates below
~100 evaluations (NOTES.md), and a batch is what an interruption can lose."""
DASK_EXTRA = "prunesim[dask]"

Tick = Callable[..., None]


@dataclass(frozen=True, kw_only=True)
class SweepResult:
    """A finished sweep: its table, where it was written, and what this run did.

    ``computed``: points evaluated in this run; ``reused``: points taken from
    finished chunks (resume); ``invalid``: points whose rows are invalid;
    ``notes``: chunks that were recomputed, and why."""

    spec: SweepSpec
    folder: Path
    results: Path
    table: pd.DataFrame
    points: int
    computed: int
    reused: int
    invalid: int
    engine: str
    jobs: int
    notes: tuple[str, ...] = ()


_CONTEXT: Context | None = None


def _context() -> Context:
    """The process's :class:`Context`, kept between the batches it runs."""
    global _CONTEXT
    if _CONTEXT is None:
        _CONTEXT = Context()
    return _CONTEXT


def run_batch(
    spec: SweepSpec, points: Sequence[Point], writer: ChunkWriter, tick: Tick | None = None
) -> int:
    """Evaluate a batch and write its chunk; returns its point count. ``tick()``
    after each point (worker processes send it to their parent)."""
    frame = evaluate(spec, points, _context(), (lambda: tick()) if tick else None)
    writer.write(frame, points)
    return len(points)


def plan(points: Sequence[Point], batch_size: int, jobs: int) -> list[list[Point]]:
    """Distinct points (by hash) grouped by workload, in batches of at most
    ``batch_size`` (smaller when there are too few for every job to get two)."""
    groups: dict[tuple, list[Point]] = {}
    seen: set[str] = set()
    for p in points:
        if p.key not in seen:
            seen.add(p.key)
            groups.setdefault(workload_key(p), []).append(p)
    total = len(seen)
    size = max(1, min(batch_size, math.ceil(total / (2 * jobs)) if jobs > 1 else batch_size))
    return [g[i : i + size] for g in groups.values() for i in range(0, len(g), size)]


def run_sweep(
    spec: SweepSpec,
    out: str | Path,
    *,
    engine: str = "pool",
    jobs: int | None = None,
    address: str | None = None,
    resume: bool = False,
    force: bool = False,
    fmt: str = "parquet",
    limit: int | None = None,
    batch_size: int = BATCH_SIZE,
    progress: Callable[..., Tick] | None = None,
) -> SweepResult:
    """Run ``spec`` (its first ``limit`` points where given) into the folder ``out``
    and return the table (see :mod:`simulator.sweep.store` for the folder).

    ``engine``: ``serial``, ``pool`` (``jobs`` spawned processes, default up to 2)
    or ``dask`` (a LocalCluster of ``jobs`` workers, or the scheduler at
    ``address``). ``resume`` skips the points of finished chunks; ``force`` starts a
    folder over. ``progress(total, work)`` may return a callable ticked per point.
    SIGTERM stops the run with :class:`~simulator.workers.Terminated`; finished
    chunks stay for ``resume``."""
    if engine not in ENGINES:
        raise ConfigError("engine", f"expected one of {', '.join(ENGINES)}, got {engine!r}")
    check_format(fmt)
    jobs = max(1, jobs if jobs is not None else min(2, os.cpu_count() or 1))
    if engine == "dask":
        _dask_modules()  # before anything is written
    points = spec.points(limit)
    folder = SweepFolder(out, spec, fmt)
    folder.open(resume=resume, force=force)
    message = (
        f"sweep stopped by SIGTERM; finished chunks are kept under {folder.path / 'chunks'} "
        "and --resume continues from them"
    )
    with sigterm_raises(message):
        done = folder.finished()
        todo = [p for p in points if p.key not in done]
        batches = plan(todo, batch_size, jobs if engine != "serial" else 1)
        total = sum(len(b) for b in batches)
        tick = progress(total) if progress and total else None
        writer = folder.writer()
        if batches:
            if engine == "serial":
                for batch in batches:
                    run_batch(spec, batch, writer, tick)
            elif engine == "pool":
                tasks = [(i, (spec, batch, writer)) for i, batch in enumerate(batches)]
                run_in_workers(
                    f"{__name__}:run_batch", tasks, jobs, on_tick=lambda *_: tick and tick()
                )
            else:
                _run_dask(spec, batches, writer, jobs, address, tick)
        table = folder.combine(points)
    invalid = int(table.loc[table["status"] == INVALID, "point"].nunique())
    return SweepResult(
        spec=spec,
        folder=folder.path,
        results=folder.results,
        table=table,
        points=len(points),
        computed=total,
        reused=len({p.key for p in points}) - total,
        invalid=invalid,
        engine=engine,
        jobs=1 if engine == "serial" else jobs,
        notes=tuple(folder.notes),
    )


def _dask_modules():
    """``distributed``'s Client, LocalCluster and as_completed, or a one-line
    :class:`ConfigError` naming the optional dependency."""
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise ConfigError(
            "--dask",
            f"needs Dask, the optional dependency of {DASK_EXTRA}: pip install '{DASK_EXTRA}'",
        ) from None
    return Client, LocalCluster, as_completed


def _run_dask(
    spec: SweepSpec,
    batches: list[list[Point]],
    writer: ChunkWriter,
    jobs: int,
    address: str | None,
    tick: Tick | None,
) -> None:
    """Each batch a Dask task; the workers write the chunks."""
    Client, LocalCluster, as_completed = _dask_modules()
    cluster = None
    if address:
        client = Client(address)
    else:
        cluster = LocalCluster(
            n_workers=jobs,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=logging.ERROR,
        )
        client = Client(cluster)
    try:
        shared = client.scatter(spec, broadcast=True)
        futures = [
            client.submit(run_batch, shared, batch, writer, key=f"sweep-{batch[0].key}-{i}")
            for i, batch in enumerate(batches)
        ]
        for future in as_completed(futures):
            n = future.result()
            for _ in range(n):
                if tick:
                    tick()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
