"""``prunesim estimate resnet50 --platform all`` after warm-up, this tree against a
baseline tree (another checkout, e.g. ``git worktree add /tmp/base 78e76c1``).

Each tree runs in its own long-lived worker process (``PYTHONPATH`` set to the tree),
which imports the package and makes one warm-up call (kernels compiled or loaded from
numba's cache), then times calls on request. Before every timed call the worker
empties every cache of the package (``functools`` caches, the mapping memo, the SCNN
and EIE schedules and drawn activations), so each call starts as a fresh process
would, less its start-up. Timed, interleaved A B A B:

- ``cli``: the whole command in process, ``simulator.cli.main(["estimate",
  "resnet50", "--platform", "all"])``, its tables printed to a buffer;
- ``lib``: the library call behind it (``estimate_network``, then ``frame()`` and
  ``totals()``).

Wall (``time.perf_counter``) and CPU (``time.thread_time``) medians per tree, and
B / A as the median of per-pair ratios. The target: the command under 1 s after
warm-up. Both workers run one thread (``NUMBA_NUM_THREADS=1``).

Run: ``python benchmarks/bench_estimate_all.py --base /tmp/base``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

TREE = Path(__file__).resolve().parents[1]
ARGV = ["estimate", "resnet50", "--platform", "all"]
TARGET_S = 1.0


def _clear_caches() -> None:
    """Every cache of the package, as a fresh process has them: empty."""
    from simulator.dataflows import eie, scnn
    from simulator.mapping import clear_memo

    clear_memo()
    scnn.clear_schedules()
    eie.clear_schedules()
    for name, module in list(sys.modules.items()):
        if name == "simulator" or name.startswith("simulator."):
            for obj in list(vars(module).values()):
                if callable(getattr(obj, "cache_clear", None)):
                    obj.cache_clear()


def worker() -> None:
    """Serve timed calls: one line in (``cli`` or ``lib``), one JSON line out."""
    from simulator.cli import main as cli_main
    from simulator.cli.estimate import _platforms
    from simulator.masks import Pruning
    from simulator.simulate import estimate_network
    from simulator.workloads import load_network

    def cli() -> None:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            if cli_main(ARGV) != 0:
                raise SystemExit("the estimate command failed")

    def lib() -> None:
        est = estimate_network(
            load_network("resnet50"), _platforms(["all"]), Pruning(density=1 / 8)
        )
        est.frame()
        est.totals()

    calls = {"cli": cli, "lib": lib}
    for fn in calls.values():  # warm-up: imports, numba caches
        _clear_caches()
        fn()
    print("ready", flush=True)
    for line in sys.stdin:
        _clear_caches()
        w, c = time.perf_counter(), time.thread_time()
        calls[line.strip()]()
        out = {"wall_s": time.perf_counter() - w, "cpu_s": time.thread_time() - c}
        print(json.dumps(out), flush=True)


def _start(tree: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(tree), "NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "--worker"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tree,
    )
    if proc.stdout.readline().strip() != "ready":
        raise SystemExit(f"the worker for {tree} did not start")
    return proc


def _ask(proc: subprocess.Popen, kind: str) -> tuple[float, float]:
    proc.stdin.write(kind + "\n")
    proc.stdin.flush()
    out = json.loads(proc.stdout.readline())
    return out["wall_s"], out["cpu_s"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", type=Path, required=True, help="the baseline tree (A)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    if "--worker" in sys.argv:
        worker()
        return
    args = ap.parse_args()
    base = args.base.resolve()
    head = subprocess.run(
        ["git", "-C", str(base), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    a, b = _start(base), _start(TREE)
    runs: dict[tuple[str, str], list[tuple[float, float]]] = {}
    try:
        for _ in range(args.repeats):
            for kind in ("cli", "lib"):
                for name, proc in (("A", a), ("B", b)):
                    runs.setdefault((kind, name), []).append(_ask(proc, kind))
    finally:
        for proc in (a, b):
            proc.stdin.close()
            proc.wait()
    med = statistics.median
    print(
        f"prunesim {' '.join(ARGV)}, after warm-up, caches emptied before each call; "
        f"{args.repeats} interleaved repeats, load average {os.getloadavg()[0]:.1f}"
    )
    print(f"  A = {base} ({head or 'not a git tree'}), B = {TREE}")
    for kind, what in (("cli", "whole command"), ("lib", "library call")):
        for name in ("A", "B"):
            xs = runs[(kind, name)]
            wall, cpu = med(x[0] for x in xs), med(x[1] for x in xs)
            print(f"  {what:14s} {name}: wall {wall:6.3f} s   cpu {cpu:6.3f} s")
        pairs = list(zip(runs[(kind, "A")], runs[(kind, "B")], strict=True))
        rw = med(y[0] / x[0] for x, y in pairs)
        rc = med(y[1] / x[1] for x, y in pairs)
        print(f"  {what:14s} B / A (median of per-pair ratios): wall {rw:.2f}x, cpu {rc:.2f}x")
    wall = med(x[0] for x in runs[("cli", "B")])
    cpu = med(x[1] for x in runs[("cli", "B")])
    met = "met" if wall < TARGET_S else "NOT met"
    print(
        f"target: the command under {TARGET_S:g} s after warm-up: {met} "
        f"(B: wall {wall:.3f} s, cpu {cpu:.3f} s)"
    )


if __name__ == "__main__":
    main()
