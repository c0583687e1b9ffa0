"""The default study's time and memory against an earlier commit, in one run.

A: ``python -m simulator study --out DIR --no-resume`` (every built-in network and
platform, two worker processes by default, tables, plots and report) run by the code
of a baseline tree; B: the same command run by this tree. Each run is a child
process, interleaved A B A B ... after one warm-up run of each tree (numba kernels
compiled or loaded from its cache). Per run: wall time, CPU time of the whole
process tree (user + system, from ``wait4``: the study process and the workers it
waited for), the peak resident memory of its largest process (``ru_maxrss``, what
``/usr/bin/time -v`` reports) and of the whole tree at once (sampled from ``/proc``
every 0.2 s, Linux only). B / A is the median of per-pair ratios; the load average
of the machine is printed beside each run (wall time under load measures the
scheduler more than the code).

The baseline is ``--baseline-tree DIR`` (a checkout, e.g. ``git worktree add DIR
58c021e``), else ``--baseline REV`` (default 58c021e, the commit before the speed
work) exported from this repository with ``git archive`` into a temporary folder.

``--reuse`` adds the older measurement: ResNet-50 on every platform with its masks
profiled once (the study's way) against profiling them for every platform.

Run: ``python benchmarks/bench_study.py`` (about 15 minutes at 3 repeats on 2 cores).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from childrun import HERE, Run, export, run_child

BASELINE = "58c021e"


def run_study(tree: Path, *extra: str) -> Run:
    """The default study (with ``extra`` options) run by the code in ``tree`` as a
    child process, measured (:func:`childrun.run_child`)."""
    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, "-m", "simulator", "study", "--out", out, "--no-resume", *extra]
        return run_child(cmd, tree, out)


def _show(name: str, r: Run) -> None:
    print(
        f"  {name:10s} wall {r.wall_s:6.1f} s  cpu {r.cpu_s:6.1f} s  "
        f"peak {r.max_rss_mb:6.0f} MB (largest process), {r.tree_rss_mb:6.0f} MB (all at once)"
        f"  load {r.load:.1f}",
        flush=True,
    )


def _report(a: list[Run], b: list[Run], name_a: str, name_b: str) -> None:
    med = statistics.median
    print("median:")
    for name, xs in ((name_a, a), (name_b, b)):
        print(
            f"  {name:10s} wall {med(x.wall_s for x in xs):6.1f} s  "
            f"cpu {med(x.cpu_s for x in xs):6.1f} s  "
            f"peak {med(x.max_rss_mb for x in xs):6.0f} MB largest, "
            f"{med(x.tree_rss_mb for x in xs):6.0f} MB all"
        )

    def ratio(field: str) -> float:
        return med(getattr(x, field) / getattr(y, field) for x, y in zip(a, b, strict=True))

    print(
        f"A / B (median of per-pair ratios, > 1: B is faster or smaller): "
        f"wall {ratio('wall_s'):.2f}x, cpu {ratio('cpu_s'):.2f}x, "
        f"peak memory {ratio('max_rss_mb'):.2f}x largest process, "
        f"{ratio('tree_rss_mb'):.2f}x all processes"
    )


def reuse() -> None:
    """ResNet-50 on every platform: mask statistics profiled once against per platform."""
    sys.path.insert(0, str(HERE))
    from simulator.dataflows import eie, scnn
    from simulator.hwconfig import builtin_platforms, load_platform
    from simulator.study import StudyConfig, study_network
    from simulator.workloads import load_network

    net = load_network("resnet50")
    one = StudyConfig(networks=("resnet50",))
    platforms = [load_platform(n) for n in builtin_platforms()]

    def clear() -> None:
        eie.clear_schedules()
        scnn.clear_schedules()

    clear()
    t = time.process_time()
    study_network(net, platforms, one)
    shared = time.process_time() - t
    t = time.process_time()
    for p in platforms:  # every platform profiles its own masks
        clear()
        study_network(net, [p], one)
    separate = time.process_time() - t
    print(
        f"ResNet-50 on {len(platforms)} platforms: masks profiled once {shared:.1f} s CPU, "
        f"per platform {separate:.1f} s -> reuse is {separate / shared:.1f}x faster"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3, help="A B pairs (default 3; 0: none)")
    ap.add_argument("--baseline-tree", type=Path, help="a checkout of the baseline")
    ap.add_argument("--baseline", default=BASELINE, help=f"baseline commit (default {BASELINE})")
    ap.add_argument("--jobs", type=int, help="worker processes of each study (default: its own)")
    ap.add_argument("--networks", help="study these networks only (A,B; default: all)")
    ap.add_argument("--reuse", action="store_true", help="also time mask statistics reuse")
    args = ap.parse_args()
    extra = ("--jobs", str(args.jobs)) if args.jobs else ()
    extra += ("--networks", args.networks) if args.networks else ()
    if args.repeats > 0:
        compare(args, extra)
    if args.reuse:
        reuse()


def compare(args: argparse.Namespace, extra: tuple[str, ...]) -> None:
    """The A B A B runs and their medians."""
    with tempfile.TemporaryDirectory() as tmp:
        if args.baseline_tree is not None:
            base, label = args.baseline_tree.resolve(), args.baseline_tree.name
        else:
            base, label = export(args.baseline, Path(tmp) / "baseline"), args.baseline
        print(f"A: {label} ({base})\nB: this tree ({HERE})")
        for tree in (base, HERE):  # warm-up, two networks in two workers as in the study:
            run_study(tree, "--networks", "lenet5,resnet18")  # kernels compiled or cached
        a, b = [], []
        for i in range(args.repeats):
            print(f"pair {i + 1}:")
            a.append(run_study(base, *extra))
            _show("A " + label, a[-1])
            b.append(run_study(HERE, *extra))
            _show("B this", b[-1])
        _report(a, b, "A " + label, "B this")


if __name__ == "__main__":
    main()
