"""``prunesim study``: the comparison of Ma et al. on every network and platform."""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

from simulator.cli import options as o
from simulator.cli import study_llm
from simulator.cli import types as t

STRUCTURES = ("filter", "channel", "column")

EPILOG = """\
examples:
  prunesim study                                   # every built-in network and platform
  prunesim study --networks lenet5,alexnet --platforms eie,a100 --out out/small
  prunesim study --weight-bits 4,8 --index-bits 4 --structure filter,channel
  prunesim study --rate resnet50=16 --rate vgg16=13 --sweep-rates 2,4,8,16,32
  prunesim study --jobs 1 --no-resume
  prunesim study --margin 10%                      # a win must be 10 % better
  prunesim study --suite llm                       # LLMs: prefill and decode, batch 1/8/64
  prunesim study --suite llm --networks llama2_7b,llama3_8b --platforms a100,xeon_8380
  prunesim study --suite llm --networks llama2_7b --batches 1 --phases decode --blocks 0
                                                   # every block: masks redrawn per run, slow

Writes into --out: report.md and report.html (the answer, the verdict, the evidence),
tables/*.csv and *.json (every number), plots/*.png and *.svg.
Each network's results are saved as soon as it finishes (out/parts/), so an
interrupted study resumes where it stopped when run again with the same options.

--suite llm asks "is unstructured sparsity beneficial for LLM inference, and where?"
of decoder models (Hugging Face configs; default llama2_7b, llama3_8b): dense, non-structured
pruning (--sweep-rates, default 2,3.33,5; the verdict at --verdict-rate, default 2),
2:4, and structured pruning of attention heads and MLP channels at the same rates, at
4- and 8-bit weights, prefill (--seq-len) and decode (--context) at each of --batches,
on every GPU and CPU profile and the EIE-style ASIC. Each (model, phase, batch) is a
row of the verdict; --blocks of each model's blocks are simulated (default 2) and
the totals scaled by its block count (0: every block). Default --out
./prunesim-study-llm.
"""


def _net_rate(text: str) -> tuple[str, float]:
    name, eq, value = text.partition("=")
    try:
        if not eq or not name.strip():
            raise ValueError
        return name.strip(), t.rate(value)
    except (ValueError, argparse.ArgumentTypeError):
        msg = f"expected NETWORK=RATE, e.g. resnet50=8, got {text[:60]!r}"
        raise argparse.ArgumentTypeError(msg) from None


def margin(text: str) -> float:
    """A margin as a fraction (0.05) or a percentage (5%), in [0, 1)."""
    body = text.strip()
    percent = body.endswith("%")
    try:
        value = float(body[:-1] if percent else body) / (100 if percent else 1)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and 0 <= value < 1):
        msg = (
            "expected a fraction such as 0.05 or a percentage such as 5%, "
            f"below 1 (100%), got {text[:40]!r}"
        )
        raise argparse.ArgumentTypeError(msg)
    return value


def _net_path(text: str) -> tuple[str, str]:
    name, eq, value = text.partition("=")
    if not eq or not name.strip() or not value.strip():
        raise argparse.ArgumentTypeError(f"expected NETWORK=FILE, got {text[:60]!r}")
    return name.strip(), value.strip()


def build_parser() -> argparse.ArgumentParser:
    p = o.new_parser(
        "study",
        "The comparison of Ma et al. (arXiv:1907.02124): pruning judged on top of "
        "quantization, non-structured against structured, on every network and "
        "platform: storage and compute break-even rates, structured against "
        "non-structured at each network's rate, a verdict table, plots and a report.",
        EPILOG,
    )
    p.add_argument(
        "--suite",
        type=t.choice(study_llm.SUITES),
        default="cnn",
        metavar="S",
        help="cnn: the CNN study of Ma et al. (default); llm: decoder LLMs in prefill "
        "and decode (see below)",
    )
    lists = (
        (
            "--networks",
            t.csv_list(str),
            "A,B",
            "networks, built-in names or files (default: "
            "lenet5, alexnet, vgg16, resnet18, resnet50, mobilenetv2, bert_base)",
        ),
        (
            "--platforms",
            t.csv_list(str),
            "A,B",
            "hardware profiles, or 'all' (default: every built-in)",
        ),
        ("--weight-bits", t.csv_list(int), "B,..", "weight widths (default 1,2,4,8,16)"),
        (
            "--index-bits",
            t.csv_list(int),
            "I,..",
            "relative index widths of the storage "
            "break-even; the first one is also the sparse engines' index (default 4,8)",
        ),
        (
            "--structure",
            t.choices(STRUCTURES),
            "S,..",
            "kinds of structured pruning: filter, "
            "channel, column (default filter; the first one runs on the hardware)",
        ),
        (
            "--structured-rates",
            t.csv_list(float),
            "R,..",
            "structured rates of the storage break-even (default 2,4,8,16)",
        ),
        (
            "--sweep-rates",
            t.csv_list(float),
            "R,..",
            "rates searched for the compute break-even (default 1.5,2,4,8,16,32,64,128)",
        ),
    )
    for flag, kind, metavar, text in lists:
        p.add_argument(flag, type=kind, metavar=metavar, help=text)
    p.add_argument(
        "--structures",
        dest="structure",
        action=t.Deprecated,
        new="--structure",
        convert=t.choices(STRUCTURES),
    )
    p.add_argument(
        "--rate",
        type=_net_rate,
        action="append",
        metavar="NET=R",
        help="non-structured rate of a network for the verdict (default: Ma et al.'s "
        "lenet5=348, alexnet=36, resnet50=8; others --default-rate)",
    )
    p.add_argument(
        "--default-rate",
        type=t.rate,
        default=None,
        metavar="R",
        help="rate of networks without one (default 8)",
    )
    p.add_argument(
        "--margin",
        type=margin,
        default=0.05,
        metavar="M",
        help="how much better non-structured pruning must be to count as a win in the "
        "verdict, as a fraction or a percentage (default 0.05 = 5%%): a speedup above "
        "1 + M, a latency or energy ratio below 1 / (1 + M); results of an earlier run "
        "are reused under any margin",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="DIR",
        help="output folder (default ./prunesim-study, with --suite llm ./prunesim-study-llm)",
    )
    p.add_argument(
        "--jobs",
        type=t.count(1, 256),
        metavar="N",
        help="networks studied at a time in worker processes (default: up to 2)",
    )
    p.add_argument(
        "--no-resume",
        action="store_true",
        help="recompute everything instead of reusing finished networks",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="replace the results of another study (other options) in --out; without "
        "it such a folder is refused, so that nothing is overwritten",
    )
    p.add_argument(
        "--checkpoint",
        type=_net_path,
        action="append",
        metavar="NET=FILE",
        help="use a pruned checkpoint's real masks as the network's non-structured "
        "pruning (its own rate), compared with i.i.d. masks of the same per-layer "
        "densities; repeatable",
    )
    o.add_seed(p)
    o.add_cascade_option(p)
    study_llm.add_options(p)
    return p


def config(args: argparse.Namespace):
    """The :class:`~simulator.study.StudyConfig` the options ask for."""
    from simulator.study import StudyConfig

    fields = {
        "networks": args.networks,
        "weight_bits": args.weight_bits,
        "index_bits": args.index_bits,
        "structures": args.structure,
        "structured_rates": args.structured_rates,
        "sweep_rates": args.sweep_rates,
    }
    kw = {k: v for k, v in fields.items() if v is not None}
    if args.platforms:
        kw["platforms"] = tuple(n for n in args.platforms if n.lower() != "all")
    return StudyConfig(
        rates=dict(args.rate or []),
        default_rate=args.default_rate if args.default_rate is not None else 8.0,
        seed=args.seed,
        cascade=args.cascade,
        checkpoints=dict(args.checkpoint or []),
        margin=args.margin,
        **kw,
    )


def run(args: argparse.Namespace) -> int:
    from simulator.study import run_study

    study_llm.check_suite(args)
    if args.suite == "llm":
        from simulator.study.llmrun import run_llm_study

        cfg = study_llm.config(args)
        o.first_compile_note()
        with o.Progress("step", "study") as progress:
            result = run_llm_study(
                cfg,
                args.out or Path("prunesim-study-llm"),
                progress=progress,
                resume=not args.no_resume,
                force=args.force,
            )
        return _written(result)
    cfg = config(args)
    o.first_compile_note()
    jobs = args.jobs if args.jobs is not None else min(2, os.cpu_count() or 1)
    with o.Progress("step", "study") as progress:
        result = run_study(
            cfg,
            args.out or Path("prunesim-study"),
            progress=progress,
            resume=not args.no_resume,
            jobs=jobs,
            force=args.force,
        )
    return _written(result)


def _written(result) -> int:
    """Write the study's tables, plots and report; print its verdict and where."""
    from simulator.study.report import verdict_table

    with o.Progress("figure", "plots") as progress:
        report = result.write(progress=progress)
    print(verdict_table(result))
    if getattr(result.config, "suite", "cnn") == "llm":
        from simulator.study.llmreport import accuracy_sentences, answer_sentences, blocks_note

        v = result.tables["verdict"]
        print(f"\n{blocks_note(v)}")
        t = result.tables
        sentences = answer_sentences(v, t["compute_breakeven"], t["structured_vs_nonstructured"])
        sentences += accuracy_sentences(v, result.config.nm)
        print("\n" + "\n".join(sentences))
    if result.resumed:
        print(f"\n(reused earlier results for: {', '.join(result.resumed)})")
    for line in result.recomputed:
        print(f"note: recomputed {line}", file=sys.stderr)
    print(
        f"\nreport: {report}\ntables: {result.out_dir / 'tables'}\n"
        f"plots:  {result.out_dir / 'plots'}"
    )
    return 0
