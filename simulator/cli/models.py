"""``prunesim models``: the built-in networks with their totals."""

from __future__ import annotations

import argparse

from simulator.cli.options import new_parser


def build_parser() -> argparse.ArgumentParser:
    return new_parser(
        "models",
        "List the built-in networks (models/*.yaml) with layer, weight and MAC counts "
        "and the joins (residual adds, concatenations) of their graphs, then the "
        "built-in Hugging Face configs (models/hf/*.json) at their default phase "
        "(prefill of 128 tokens, batch 1). 'params' adds the parameters in no layer "
        "(embeddings, biases, norms) to the weights.",
    )


def run(args: argparse.Namespace) -> int:
    from simulator.report import table
    from simulator.workloads import builtin_configs, builtin_models, load_network

    rows = []
    for name in [*builtin_models(), *builtin_configs()]:
        net = load_network(name)
        rows.append(
            [
                name,
                len(net.layers),
                len(net.prunable_layers),
                net.weight_count,
                net.macs / 1e9,
                "-" if net.graph is None else len(net.graph.joins),
                net.param_count,
                net.description,
            ]
        )
    heads = ["model", "layers", "prunable", "weights", "GMACs", "joins", "params", "description"]
    print(table(rows, heads, digits=3))
    return 0
