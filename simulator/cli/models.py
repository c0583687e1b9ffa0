"""``prunesim models``: the built-in networks with their totals."""

from __future__ import annotations

import argparse

from simulator.cli.options import new_parser


def build_parser() -> argparse.ArgumentParser:
    return new_parser(
        "models",
        "List the built-in networks (models/*.yaml) with layer, weight and MAC counts "
        "and the joins (residual adds, concatenations) of their graphs.",
    )


def run(args: argparse.Namespace) -> int:
    from simulator.report import table
    from simulator.workloads import builtin_models, load_network

    rows = []
    for name in builtin_models():
        net = load_network(name)
        rows.append(
            [
                name,
                len(net.layers),
                len(net.prunable_layers),
                net.weight_count,
                net.macs / 1e9,
                "-" if net.graph is None else len(net.graph.joins),
                net.description,
            ]
        )
    heads = ["model", "layers", "prunable", "weights", "GMACs", "joins", "description"]
    print(table(rows, heads, digits=3))
    return 0
