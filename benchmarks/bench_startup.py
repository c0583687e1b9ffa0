"""Start-up of the command line: ``prunesim --help`` against Python's own start-up.

    python benchmarks/bench_startup.py [--repeat 9] [--base PATH]

Runs, interleaved (A B A B ...), ``python -c pass`` (the floor: no prunesim at all),
``python -m simulator --help`` and ``python -m simulator schema model``, each in a
fresh process, and prints the median wall and CPU time of each and the median of
the per-pair ratios against the floor. ``--base PATH`` adds ``--help`` run from
another checkout (e.g. a worktree of an earlier commit) for comparison. The target:
``prunesim --help`` under 0.3 s, which needs the numerical libraries (numpy, pandas,
numba) to stay unloaded until a command needs them.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def timed(argv: list[str], code: Path) -> tuple[float, float]:
    """Wall and CPU seconds of one fresh process."""
    env = {**os.environ, "PYTHONPATH": str(code)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(argv, env=env, cwd=code, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--base", type=Path, help="another checkout to time --help from")
    args = parser.parse_args()
    py = sys.executable
    cases = {
        "python -c pass (floor)": ([py, "-c", "pass"], ROOT),
        "prunesim --help": ([py, "-m", "simulator", "--help"], ROOT),
        "prunesim schema model": ([py, "-m", "simulator", "schema", "model"], ROOT),
    }
    if args.base:
        cases["prunesim --help (base)"] = ([py, "-m", "simulator", "--help"], args.base)
    times: dict[str, list[tuple[float, float]]] = {k: [] for k in cases}
    for _ in range(args.repeat):
        for name, (argv, code) in cases.items():
            times[name].append(timed(argv, code))
    floor = times["python -c pass (floor)"]
    print(f"{'command':<26} {'wall s':>8} {'CPU s':>8} {'wall / floor':>13}")
    for name, runs in times.items():
        wall = statistics.median(w for w, _ in runs)
        cpu = statistics.median(c for _, c in runs)
        ratio = statistics.median(w / f for (w, _), (f, _) in zip(runs, floor, strict=True))
        print(f"{name:<26} {wall:8.3f} {cpu:8.3f} {ratio:13.2f}")


if __name__ == "__main__":
    main()
