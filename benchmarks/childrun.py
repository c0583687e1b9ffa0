"""Children measured: wall time, CPU time of the whole process tree, peak memory of
the largest process and of the tree at once, and a baseline tree exported from git.
Shared by the benchmarks that compare this tree with an earlier commit."""

from __future__ import annotations

import contextlib
import os
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Run:
    wall_s: float
    cpu_s: float
    max_rss_mb: float
    tree_rss_mb: float
    load: float


def _tree_rss_mb(root: int) -> float:
    """Resident memory of ``root`` and all its descendants now (MB; 0 where /proc is
    not readable)."""
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
            pid = int(entry.name)
            parents[pid] = int(fields[1])
            rss[pid] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
    total = 0
    for pid, size in rss.items():
        p = pid
        while p > 1 and p != root:
            p = parents.get(p, 0)
        if p == root:
            total += size
    return total / 1e6


def run_child(cmd: list[str], tree: Path, cwd: str) -> Run:
    """``cmd`` run with the code of ``tree`` first on ``PYTHONPATH``, in ``cwd``, its
    output discarded, measured: wall time, CPU time of the process and the children
    it waited for (user + system, from ``wait4``), the peak resident memory of its
    largest process (``ru_maxrss``, what ``/usr/bin/time -v`` reports) and of the
    whole tree at once (sampled from ``/proc`` every 0.2 s, Linux only), and the load
    average before it started. A failing command stops the benchmark."""
    load = os.getloadavg()[0]
    env = {**os.environ, "PYTHONPATH": str(tree)}
    start = time.perf_counter()
    child = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL)
    peak = [0.0]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.2):
            peak[0] = max(peak[0], _tree_rss_mb(child.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    if Path("/proc").is_dir():
        sampler.start()
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    done.set()
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode:
        raise SystemExit(f"{' '.join(cmd)} (in {tree}) exited {child.returncode}")
    return Run(
        wall_s=wall,
        cpu_s=usage.ru_utime + usage.ru_stime,
        max_rss_mb=usage.ru_maxrss / 1024,  # kB on Linux
        tree_rss_mb=peak[0],
        load=load,
    )


def export(rev: str, folder: Path) -> Path:
    """``rev`` of this repository as plain files in ``folder`` (``git archive``)."""
    archive = subprocess.run(
        ["git", "-C", str(HERE), "archive", "--format=tar", rev],
        check=True,
        capture_output=True,
    ).stdout
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder
