"""``prunesim platforms``: the built-in hardware profiles."""

from __future__ import annotations

import argparse
import math

from simulator.cli.options import new_parser


def build_parser() -> argparse.ArgumentParser:
    return new_parser("platforms", "List the built-in hardware profiles (hwconfigs/*.yaml).")


def run(args: argparse.Namespace) -> int:
    from simulator.hwconfig import builtin_platforms, load_platform
    from simulator.report import table

    rows = []
    for name in builtin_platforms():
        p = load_platform(name)
        if p.fpga is not None:
            side = math.isqrt(p.fpga.pes_that_fit(sparse=False))
            pes = f"{side}x{side} dense / {p.fpga.pes_that_fit(sparse=True)} sparse"
        else:
            pes = str(p.compute.pes)
        dram = p.level("dram")
        rows.append(
            [
                name,
                p.platform_class,
                p.execution,
                p.clock_hz / 1e6,
                pes,
                dram.bandwidth_bytes_per_s / 1e9 if dram else None,
                p.description,
            ]
        )
    print(
        table(
            rows,
            ["platform", "class", "execution", "MHz", "PEs", "DRAM GB/s", "description"],
            digits=[0, 0, 0, 0, 0, 1, 0],
        )
    )
    return 0
