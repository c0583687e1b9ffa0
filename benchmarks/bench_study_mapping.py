"""The default study's time with the built-in dense arrays mapped (as shipped)
against today's engine: the same profiles with prunesim's DRAM heuristic.

A: the default ``prunesim study`` (every built-in network and platform, two worker
processes, nothing resumed) on copies of the built-in profiles with ``dram_model:
mapped`` and its keys removed; B: the same study on the built-ins as shipped.
Interleaved A B A B ..., after a warm-up run; wall time and CPU time (this process
plus its workers, ``resource.getrusage``). B / A is the median of per-pair ratios.

With ``--baseline-tree DIR`` (a checkout of an earlier commit, e.g. made with
``git worktree add DIR REV``), A is instead the default study run by that tree's
code and B by this one, both as ``python -m simulator study`` child processes
(CPU time of the child), so the ratio is against the study as it was.

Run: ``python benchmarks/bench_study_mapping.py`` (several minutes).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from simulator.hwconfig import builtin_platforms, load_platform
from simulator.study import StudyConfig, run_study

MAPPED_KEYS = ("dram_model:", "mapping_objective:", "psum_bits:", "scalesim_sram_bytes:")


def heuristic_copies(folder: Path) -> tuple[str, ...]:
    """Every built-in profile as a file in ``folder``; the mapped ones without their
    mapping keys (and inheriting from these copies)."""
    paths = {name: folder / f"{name}.yaml" for name in builtin_platforms()}
    for name, path in builtin_platforms().items():
        lines = path.read_text().splitlines()
        if load_platform(name).dram_model == "mapped":
            lines = [x for x in lines if not x.strip().startswith(MAPPED_KEYS)]
        text = "\n".join(lines) + "\n"
        for parent, copy in paths.items():
            text = text.replace(f"extends: {parent}\n", f"extends: {copy}\n")
        paths[name].write_text(text)
    return tuple(str(p) for p in paths.values())


def _cpu() -> float:
    me, kids = (resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _study(cfg: StudyConfig, jobs: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as out:
        w, c = time.perf_counter(), _cpu()
        run_study(cfg, out, jobs=jobs, resume=False).write()
        return time.perf_counter() - w, _cpu() - c


def _child_study(tree: Path, *extra: str) -> tuple[float, float]:
    """The default study (with ``extra`` options) run by the code in ``tree`` in a
    child process (wall, CPU)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with tempfile.TemporaryDirectory() as out:
        env = {**os.environ, "PYTHONPATH": str(tree)}
        w = time.perf_counter()
        cmd = [sys.executable, "-m", "simulator", "study", "--out", out, "--no-resume", *extra]
        subprocess.run(cmd, cwd=out, env=env, check=True, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - w
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = sum(getattr(after, f) - getattr(before, f) for f in ("ru_utime", "ru_stime"))
    return wall, cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--baseline-tree", type=Path, help="an earlier checkout to compare against")
    args = ap.parse_args()
    if args.baseline_tree is not None:
        here = Path(__file__).resolve().parents[1]
        for tree in (here, args.baseline_tree):  # warm-up: kernels compiled or cached
            _child_study(tree, "--networks", "lenet5")
        a, b = [], []
        for _ in range(args.repeats):
            a.append(_child_study(args.baseline_tree))
            b.append(_child_study(here))
        _report(a, b, f"A {args.baseline_tree.name}", "B this tree")
        return
    with tempfile.TemporaryDirectory() as tmp:
        today = StudyConfig(platforms=heuristic_copies(Path(tmp)))
        shipped = StudyConfig()
        _study(StudyConfig(networks=("lenet5",)), 1)  # warm-up: kernels compiled or cached
        a, b = [], []
        for _ in range(args.repeats):
            a.append(_study(today, args.jobs))
            b.append(_study(shipped, args.jobs))
    _report(a, b, "A today's engine", "B mapped (shipped)")


def _report(a, b, name_a: str, name_b: str) -> None:
    med = statistics.median
    for name, xs in ((name_a, a), (name_b, b)):
        print(
            f"  {name:20s} wall {med(x[0] for x in xs):6.1f} s   cpu {med(x[1] for x in xs):6.1f} s"
        )
    ratio_w = med(y[0] / x[0] for x, y in zip(a, b, strict=True))
    ratio_c = med(y[1] / x[1] for x, y in zip(a, b, strict=True))
    print(f"  B / A (median of per-pair ratios): wall {ratio_w:.2f}x, cpu {ratio_c:.2f}x")


if __name__ == "__main__":
    main()
