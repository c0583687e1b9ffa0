"""Seconds and peak memory per billion weights of ``prunesim estimate`` on a decoder
model, against an earlier commit, in one run.

The model is Llama-2-7B's shape cut to ``--blocks`` blocks (default 4: 0.94 billion
weights with the LM head), written as a ``config.json``, a model both trees can
hold. A: the baseline tree (default 78e76c1, which held every variant's masks of
the whole network at once); B: this tree (each layer's masks made, simulated on
every platform and dropped). Each run is a child process, ``prunesim estimate
CONFIG --platform P --phase decode --rate 2 --totals``, interleaved A B A B ...
after one warm-up run of each tree on a two-block model. Per run: wall time, CPU
time, the peak resident memory (``ru_maxrss``), each also per billion weights; B / A
is the median of per-pair ratios.

``--big MODEL`` then runs this tree alone on a built-in model too big for the
baseline (e.g. ``llama2_70b``) and prints the same figures; ``--big-platform``
chooses its platforms (default: every built-in).

Run: ``python benchmarks/bench_llm.py`` (about 10 minutes on 2 cores);
``python benchmarks/bench_llm.py --repeats 0 --big llama2_70b`` (about 40 minutes).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

from childrun import HERE, Run, export, run_child

BASELINE = "78e76c1"
LLAMA2_7B = {  # models/hf/llama2_7b.json
    "model_type": "llama",
    "hidden_size": 4096,
    "intermediate_size": 11008,
    "num_attention_heads": 32,
    "num_key_value_heads": 32,
    "vocab_size": 32000,
    "max_position_embeddings": 4096,
    "tie_word_embeddings": False,
}


def weights_of(model: str) -> int:
    """Weights in the model's prunable layers (this tree's reading of it)."""
    sys.path.insert(0, str(HERE))
    from simulator.workloads import load_network

    return sum(layer.weight_count for layer in load_network(model).prunable_layers)


def estimate(tree: Path, model: str, platforms: str, cwd: str) -> Run:
    cmd = [sys.executable, "-m", "simulator", "estimate", model, "--platform", platforms]
    return run_child([*cmd, "--phase", "decode", "--rate", "2", "--totals"], tree, cwd)


def show(name: str, r: Run, giga: float) -> None:
    print(
        f"  {name:12s} wall {r.wall_s:7.1f} s  cpu {r.cpu_s:7.1f} s  peak {r.max_rss_mb:6.0f} MB"
        f"  | per G weights: {r.cpu_s / giga:6.1f} s cpu, {r.max_rss_mb / giga:6.0f} MB"
        f"  load {r.load:.1f}",
        flush=True,
    )


def config(folder: Path, blocks: int) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps({**LLAMA2_7B, "num_hidden_layers": blocks}))
    return str(folder)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=2, help="A B pairs (default 2; 0: none)")
    ap.add_argument("--blocks", type=int, default=4, help="Llama-2-7B blocks (default 4)")
    ap.add_argument("--platform", default="a100,xeon_8380,eie", help="platforms of A and B")
    ap.add_argument("--baseline-tree", type=Path, help="a checkout of the baseline")
    ap.add_argument("--baseline", default=BASELINE, help=f"baseline commit (default {BASELINE})")
    ap.add_argument("--big", help="then this tree alone on this built-in model")
    ap.add_argument("--big-platform", default="all", help="its platforms (default all)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.repeats > 0:
            if args.baseline_tree is not None:
                base, label = args.baseline_tree.resolve(), args.baseline_tree.name
            else:
                base, label = export(args.baseline, Path(tmp) / "baseline"), args.baseline
            model = config(Path(tmp) / "model", args.blocks)
            giga = weights_of(model) / 1e9
            print(f"A: {label} ({base})\nB: this tree ({HERE})")
            print(f"model: Llama-2-7B's shape, {args.blocks} blocks, {giga:.3f} G weights")
            warm = config(Path(tmp) / "warm", 1)
            for tree in (base, HERE):  # kernels compiled or loaded from the cache
                estimate(tree, warm, args.platform, tmp)
            a, b = [], []
            for i in range(args.repeats):
                print(f"pair {i + 1}:")
                a.append(estimate(base, model, args.platform, tmp))
                show("A " + label, a[-1], giga)
                b.append(estimate(HERE, model, args.platform, tmp))
                show("B this", b[-1], giga)
            med = statistics.median

            def ratio(field: str) -> float:
                pairs = zip(a, b, strict=True)
                return med(getattr(x, field) / getattr(y, field) for x, y in pairs)

            print(
                f"A / B (median of per-pair ratios, > 1: B is faster or smaller): "
                f"wall {ratio('wall_s'):.2f}x, cpu {ratio('cpu_s'):.2f}x, "
                f"peak memory {ratio('max_rss_mb'):.2f}x"
            )
        if args.big:
            giga = weights_of(args.big) / 1e9
            print(f"{args.big} on {args.big_platform}, this tree: {giga:.2f} G weights")
            show("this", estimate(HERE, args.big, args.big_platform, tmp), giga)


if __name__ == "__main__":
    main()
