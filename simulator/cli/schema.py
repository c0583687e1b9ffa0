"""``prunesim schema``: the JSON Schema of a user-written file."""

from __future__ import annotations

import argparse
import json

from simulator.cli.options import new_parser
from simulator.cli.types import choice

KINDS = ("hwconfig", "model", "sweep")


def build_parser() -> argparse.ArgumentParser:
    p = new_parser(
        "schema",
        "Print the JSON Schema of hardware profiles (hwconfig), model files (model) or "
        "sweep specs (sweep), for editor completion and checking of YAML.",
        "examples:\n  prunesim schema hwconfig > hwconfig.schema.json\n  prunesim schema model\n"
        "  prunesim schema sweep",
    )
    p.add_argument("kind", type=choice(KINDS), metavar="KIND", help=" or ".join(KINDS))
    return p


def run(args: argparse.Namespace) -> int:
    if args.kind == "hwconfig":
        from simulator.hwconfig import HWCONFIG_SCHEMA as schema
    elif args.kind == "model":
        from simulator.workloads import MODEL_SCHEMA as schema
    else:
        from simulator.sweep import SWEEP_SCHEMA as schema
    print(json.dumps(schema, indent=2))
    return 0
