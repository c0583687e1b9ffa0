"""``prunesim study --suite llm``: the LLM suite's options, their check against the
suite asked for, and the :class:`~simulator.study.llm.LLMStudyConfig` they make."""

from __future__ import annotations

import argparse

from simulator.cli import types as t

SUITES = ("cnn", "llm")
CNN_ONLY = {
    "structure": "--structure",
    "structured_rates": "--structured-rates",
    "rate": "--rate",
    "default_rate": "--default-rate",
    "checkpoint": "--checkpoint",
    "jobs": "--jobs",
}
LLM_ONLY = {
    "batches": "--batches",
    "phases": "--phases",
    "seq_len": "--seq-len",
    "context": "--context",
    "kv_bits": "--kv-bits",
    "llm_activation_bits": "--activation-bits",
    "group_size": "--group-size",
    "blocks": "--blocks",
    "verdict_rate": "--verdict-rate",
    "breakeven_rates": "--breakeven-rates",
}
"""Options of one suite (dest -> flag); given to the other suite they are an error."""


def add_options(p: argparse.ArgumentParser) -> None:
    """The options of ``--suite llm`` (a group of their own in ``--help``)."""
    llm = p.add_argument_group("--suite llm")
    llm.add_argument(
        "--batches",
        type=t.csv_list(int),
        metavar="B,..",
        help="batch sizes of both phases (default 1,8,64)",
    )
    llm.add_argument(
        "--phases",
        type=t.choices(("prefill", "decode")),
        metavar="P,..",
        help="prefill, decode (default both)",
    )
    llm.add_argument(
        "--seq-len", type=t.count(1, 2**31), metavar="N", help="prefill tokens (default 512)"
    )
    llm.add_argument(
        "--context",
        type=t.count(1, 2**31),
        metavar="N",
        help="decode context, the new token's included (default 1024)",
    )
    llm.add_argument(
        "--kv-bits",
        type=t.count(1, 64),
        metavar="B",
        help="bits per KV-cache element (default: the platform's activation width)",
    )
    llm.add_argument(
        "--activation-bits",
        dest="llm_activation_bits",
        type=t.count(1, 64),
        metavar="A",
        help="activation bits (default 16: weight-only quantization, W4A16 and W8A16)",
    )
    llm.add_argument(
        "--group-size",
        type=t.count(0, 2**31),
        metavar="G",
        help="weights below 8 bits carry a 16-bit scale per G inputs (default 128, as "
        "GPTQ/AWQ/Marlin; 0: none)",
    )
    llm.add_argument(
        "--blocks",
        type=t.count(0, 2**31),
        metavar="N",
        help="blocks of each model simulated, totals scaled by its block count "
        "(default 2; 0: every block)",
    )
    llm.add_argument(
        "--breakeven-rates",
        type=t.csv_list(float),
        metavar="R,..",
        help="non-structured rates searched beyond --sweep-rates for the compute "
        "break-even only (default 10,20)",
    )
    llm.add_argument(
        "--verdict-rate",
        type=t.rate,
        metavar="R",
        help="the non-structured rate of the verdict, one of --sweep-rates (default 2)",
    )


def check_suite(args: argparse.Namespace) -> None:
    """A :class:`ConfigError` for an option of the other suite."""
    from simulator.errors import ConfigError

    other = CNN_ONLY if args.suite == "llm" else LLM_ONLY
    given = [flag for dest, flag in other.items() if getattr(args, dest, None) is not None]
    if args.suite == "llm" and not args.cascade:
        given.append("--no-cascade")
    if given:
        suite = "cnn" if args.suite == "llm" else "llm"
        raise ConfigError(
            "--suite",
            f"{', '.join(given)} applies to --suite {suite} only (this is --suite {args.suite})",
        )


def config(args: argparse.Namespace):
    """The :class:`~simulator.study.llm.LLMStudyConfig` the options ask for."""
    from simulator.study.llm import LLMStudyConfig

    fields = {
        "models": args.networks,
        "weight_bits": args.weight_bits,
        "index_bits": args.index_bits,
        "rates": args.sweep_rates,
        "verdict_rate": args.verdict_rate,
        "breakeven_rates": args.breakeven_rates,
        "phases": args.phases,
        "batches": args.batches,
        "seq_len": args.seq_len,
        "context": args.context,
        "kv_bits": args.kv_bits,
        "activation_bits": args.llm_activation_bits,
        "group_size": args.group_size,
        "blocks": args.blocks,
    }
    kw = {k: v for k, v in fields.items() if v is not None}
    if args.platforms:
        kw["platforms"] = tuple(n for n in args.platforms if n.lower() != "all")
    return LLMStudyConfig(seed=args.seed, margin=args.margin, **kw)
