"""The ``prunesim`` command line: ``main(argv) -> int``.

One module per command (parse, one library call, render); options shared by
several commands are declared once in :mod:`simulator.cli.options`. This module
only dispatches: it imports the chosen command's module (and so the numerical
libraries) only when that command runs, which keeps ``prunesim --help`` instant.
It is the only place that prints errors and picks exit codes: bad input of any kind
is one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Sequence

from simulator import __version__

COMMANDS = {
    "study": "is non-structured pruning beneficial on any platform? the full study",
    "estimate": "latency, energy and PE utilization of dense, structured and "
    "non-structured inference on hardware profiles",
    "storage": "exact storage of every layer in every sparse format, and the break-even",
    "calibrate": "measure this machine's dense and sparse kernels and fit a CPU profile",
    "validate": "predicted against reference: published figures, SCALE-Sim and this "
    "machine, each with its band",
    "sweep": "thousands of hardware points from a YAML spec: grid, zip, random or Latin "
    "hypercube, on a process pool or Dask, resumable, into Parquet or CSV",
    "plot-sweep": "figures of a finished sweep: Pareto front, break-even over two parameters",
    "inspect": "what a pruned checkpoint holds: layers, shapes, density, structure",
    "models": "list the built-in networks with their totals",
    "platforms": "list the built-in hardware profiles",
    "schema": "print the JSON Schema of a user file (hardware profile, model, sweep spec)",
}
"""Command name -> one-line help; the module ``simulator.cli.<name>`` implements it."""

USAGE = "usage: prunesim [--version] [--help] COMMAND [options]"
HELP = f"""{USAGE}

Does this pruning make inference cheaper on this machine? Bit-exact sparse storage,
traffic, latency and energy of dense, structured and non-structured inference on
FPGA, ASIC, CPU and GPU profiles.

commands:
{{commands}}

Run 'prunesim COMMAND --help' for a command's options and examples. Start with
'prunesim study' (the whole comparison on the built-in networks and platforms).
"""


def _help() -> str:
    width = max(map(len, COMMANDS))
    lines = "\n".join(f"  {name.ljust(width)}  {text}" for name, text in COMMANDS.items())
    return HELP.format(commands=lines)


def _command(word: str) -> str | None:
    """The command ``word`` names (any case), or None after printing a suggestion."""
    name = word.lower()
    if name in COMMANDS:
        return name
    import difflib

    close = difflib.get_close_matches(name, COMMANDS, n=1, cutoff=0.6)
    hint = f"; did you mean '{close[0]}'?" if close else f" (choose from {', '.join(COMMANDS)})"
    print(f"prunesim: error: unknown command {word[:40]!r}{hint}", file=sys.stderr)
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (0 done, 2 bad input, 130 interrupted)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(_help(), end="")
        return 0
    if args[0] == "--version":
        print(f"prunesim {__version__}")
        return 0
    if args[0].startswith("-"):
        print(
            f"prunesim: error: expected a command before {args[0][:40]!r} ({USAGE})",
            file=sys.stderr,
        )
        return 2
    name = _command(args[0])
    if name is None:
        return 2
    from simulator.errors import PrunesimError

    module = importlib.import_module(f"simulator.cli.{name.replace('-', '_')}")
    parser = module.build_parser()
    try:
        ns = parser.parse_args(args[1:])
    except SystemExit as e:  # argparse: --help (0) or a usage error (2)
        return int(e.code or 0)
    try:
        from simulator.cli.options import common_options

        with common_options(ns):
            return module.run(ns)
    except PrunesimError as e:
        stopped = getattr(e, "signum", None) is not None  # a signal, not bad input
        print(f"prunesim: {'stopped' if stopped else 'error'}: {e}", file=sys.stderr)
        return getattr(e, "exit_code", 2) if stopped else 2
    except MemoryError:  # last resort: every large allocation is checked before it is made
        print(
            "prunesim: error: out of memory; lower the problem size or raise the memory "
            "available (--max-memory sets the limit checked before large allocations)",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        print("prunesim: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into e.g. `head`: stop quietly
        sys.stdout = open(os.devnull, "w")
        return 0


if __name__ == "__main__":
    sys.exit(main())
