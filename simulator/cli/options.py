"""Options shared by several commands, declared once, what they mean, and progress bars."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from simulator.cli.types import count, csv_list, number, size
from simulator.errors import ConfigError
from simulator.hfconfig import PHASES, Phase


class Parser(argparse.ArgumentParser):
    """Usage errors as one line naming the option, then exit code 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def new_parser(name: str, description: str, epilog: str = "") -> Parser:
    """The parser of ``prunesim NAME``, with the options every command has."""
    p = Parser(
        prog=f"prunesim {name}",
        description=description,
        epilog=epilog or None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--max-memory",
        type=size,
        metavar="SIZE",
        help="largest allocation allowed, e.g. 4G or 512M (default: half of this "
        "machine's memory); a computation that needs more stops with an error first",
    )
    return p


def common_options(args: argparse.Namespace):
    """The options of :func:`new_parser` in force while the command runs (a context
    manager: the process's own settings come back afterwards)."""
    from simulator.memory import memory_limit, memory_limit_bytes

    limit = getattr(args, "max_memory", None)
    return memory_limit(limit if limit is not None else memory_limit_bytes())


# --- option groups ---------------------------------------------------------------------


def add_level_options(g, default_rate: str = "8") -> None:
    """The pruning level (rate, sparsity or density), per-layer levels and the seed."""
    lvl = g.add_mutually_exclusive_group()
    lvl.add_argument(
        "--rate",
        type=number,
        help=f"pruning rate: 8 keeps 1/8 of the weights (default {default_rate})",
    )
    lvl.add_argument("--sparsity", type=number, help="fraction removed, e.g. 0.875")
    lvl.add_argument("--density", type=number, help="fraction kept, e.g. 0.125")
    g.add_argument(
        "--levels",
        type=Path,
        metavar="FILE",
        help="YAML of per-layer levels overriding the global one, e.g. "
        "'fc6: {rate: 11}' or 'conv1: {sparsity: 0.16}'",
    )
    add_seed(g)


def add_cascade_option(g) -> None:
    """--no-cascade."""
    g.add_argument(
        "--no-cascade",
        dest="cascade",
        action="store_false",
        help="prune each layer on its own. By default filter pruning on a network with "
        "a graph (model files with 'inputs'/'joins', ONNX files) also removes, in every "
        "layer that reads a removed filter, the input channels it fed; across a residual "
        "add a channel goes only where every branch removed it. Every layer then keeps "
        "more filters, by one common factor on its asked density, so that the network "
        "keeps the share of weights asked for (the nearest whole filters allow; outputs "
        "show the rate reached where it differs). A checkpoint's masks cascade as they "
        "are",
    )


def add_seed(g) -> None:
    g.add_argument("--seed", type=count(0), default=0, help="mask seed (default 0)")


def add_bits_options(g, *, weight_bits: int, index_help: str) -> None:
    """Weight and relative-index widths."""
    g.add_argument(
        "--weight-bits",
        type=count(1, 64),
        default=weight_bits,
        metavar="B",
        help=f"bits per stored weight value (default {weight_bits})",
    )
    g.add_argument("--index-bits", type=count(1, 32), default=4, metavar="I", help=index_help)


GROUP_HELP = (
    "quantization group: G consecutive inputs of a row share a scale (GPTQ/AWQ/Marlin: "
    "128); every format then stores ceil(inputs / G) scales per output (default: none "
    "counted)"
)


def add_quantization_options(g, group_help: str = GROUP_HELP) -> None:
    """Group-wise weight quantization: --group-size, --scale-bits, --zero-point-bits."""
    g.add_argument(
        "--group-size",
        type=count(0),
        default=None,
        metavar="G",
        help=group_help,
    )
    g.add_argument(
        "--scale-bits",
        type=count(1, 64),
        default=16,
        metavar="S",
        help="bits per group scale (default 16, float16)",
    )
    g.add_argument(
        "--zero-point-bits",
        type=count(0, 64),
        default=0,
        metavar="Z",
        help="bits per group zero point, 0 for symmetric (default 0; AWQ/GPTQ asymmetric: "
        "the weight bits)",
    )


def add_show_options(g, per_layer_default: str) -> None:
    """--per-layer / --totals."""
    show = g.add_mutually_exclusive_group()
    show.add_argument(
        "--per-layer",
        dest="per_layer",
        action="store_true",
        default=None,
        help=f"per-layer tables (default {per_layer_default})",
    )
    show.add_argument("--totals", dest="per_layer", action="store_false", help="totals only")


def add_model_arguments(p, what: str = "network") -> None:
    """MODEL... and --layer."""
    p.add_argument(
        "model",
        nargs="*",
        metavar="MODEL",
        help=f"built-in {what} name (see 'prunesim models'; any case), model YAML file "
        "or SCALE-Sim topology CSV; default: every built-in network",
    )
    p.add_argument(
        "--layer",
        metavar="SPEC",
        help="one inline layer instead of a network, e.g. "
        "conv2d:in=64,out=128,k=3,input=56x56,stride=1,pad=1 or linear:in=4096,out=4096",
    )
    add_phase_options(p)


def add_phase_options(p) -> None:
    """--phase, --seq-len, --batch, --context, --lm-head/--no-lm-head (Hugging Face
    configs only)."""
    d = Phase()  # the defaults
    g = p.add_argument_group(
        "transformer phase (Hugging Face configs: llama2_7b, ..., a config.json or a "
        "folder holding one)"
    )
    g.add_argument(
        "--phase",
        choices=PHASES,
        help="prefill: batch x seq-len tokens at once; decode: one new token per "
        f"sequence attending to --context cached positions (default {d.kind})",
    )
    g.add_argument(
        "--seq-len",
        type=count(1, 2**31),
        metavar="N",
        help=f"prefill: tokens per sequence (default {d.seq_len})",
    )
    g.add_argument(
        "--batch", type=count(1, 2**31), metavar="B", help=f"sequences at once (default {d.batch})"
    )
    g.add_argument(
        "--context",
        type=count(1, 2**31),
        metavar="L",
        help=f"decode: positions attended, the new token's included (default {d.context})",
    )
    head = g.add_mutually_exclusive_group()
    head.add_argument(
        "--lm-head",
        dest="lm_head",
        action="store_true",
        default=None,
        help="keep the LM head as a layer even when tied to the embeddings (default: "
        "a layer when untied)",
    )
    head.add_argument(
        "--no-lm-head", dest="lm_head", action="store_false", help="leave the LM head out"
    )


def phase(args: argparse.Namespace):
    """The :class:`~simulator.hfconfig.Phase` the phase options give, or ``None``
    where none is given."""
    given = {k: getattr(args, k, None) for k in ("phase", "seq_len", "batch", "context", "lm_head")}
    if all(v is None for v in given.values()):
        return None
    kind = given["phase"] or "prefill"
    if kind == "prefill" and given["context"] is not None:
        raise ConfigError("--context", "applies to --phase decode (prefill reads --seq-len)")
    if kind == "decode" and given["seq_len"] is not None:
        raise ConfigError("--seq-len", "applies to --phase prefill (decode reads --context)")
    if getattr(args, "layer", None):
        raise ConfigError("--phase", "the phase options apply to a model, not to --layer")
    return Phase(
        kind=kind,
        **{k: v for k, v in given.items() if k in ("seq_len", "batch", "context") and v},
        lm_head=given["lm_head"],
    )


def add_checkpoint_options(p, own_group: bool = True) -> None:
    """--checkpoint (unless the command takes it as an argument), --mapping,
    --input-shape, --threshold."""
    g = p.add_argument_group("checkpoint (real masks)") if own_group else p
    if own_group:
        g.add_argument(
            "--checkpoint",
            type=Path,
            metavar="FILE",
            help="take the masks from a pruned checkpoint (.pt/.pth, .safetensors, "
            ".npz, .onnx; a sharded safetensors model.safetensors.index.json, or a "
            "model folder holding it or model.safetensors); with an ONNX file no MODEL "
            "is needed",
        )
    g.add_argument(
        "--mapping",
        type=Path,
        metavar="FILE",
        help="YAML 'layer name: tensor name' for names that do not match",
    )
    g.add_argument(
        "--input-shape",
        type=csv_list(int),
        metavar="C,H,W",
        help="input shape for a network derived from a state_dict, or to pin an "
        "ONNX model's symbolic dimensions",
    )
    g.add_argument(
        "--threshold",
        type=number,
        default=0.0,
        metavar="T",
        help="weights with |w| <= T count as pruned where the file stores no "
        "mask (default 0: exact zeros)",
    )


def add_output_files(g, csv_help: str, json_help: str = "write everything as JSON") -> None:
    g.add_argument("--csv", type=Path, metavar="PATH", help=csv_help)
    g.add_argument("--json", type=Path, metavar="PATH", help=json_help)


# --- what the options mean -------------------------------------------------------------


def networks(args: argparse.Namespace) -> list:
    """The networks named by MODEL... or --layer (default: every built-in model file;
    the built-in Hugging Face configs only when named)."""
    from simulator.workloads import Network, builtin_models, load_network, parse_inline_layer

    spec = phase(args)
    if args.layer:
        if args.model:
            raise ConfigError("--layer", "give either MODEL or --layer, not both")
        layer = parse_inline_layer(args.layer)
        return [Network(name=layer.name, layers=(layer,), description="inline layer")]
    if spec is not None and not args.model:
        raise ConfigError("--phase", "name the model it applies to (e.g. llama2_7b)")
    return [load_network(n, phase=spec) for n in (args.model or list(builtin_models()))]


def pruning(args: argparse.Namespace, network, structure: str):
    """The :class:`~simulator.masks.Pruning` the level options give on ``network``."""
    from simulator.masks import Pruning, density_from, load_levels

    rate = args.rate
    if args.rate is None and args.sparsity is None and args.density is None:
        rate = 8.0
    d = density_from(
        rate=rate, sparsity=args.sparsity, density=args.density, where="--rate/--sparsity/--density"
    )
    per_layer = load_levels(args.levels) if args.levels else {}
    unknown = sorted(set(per_layer) - {layer.name for layer in network.prunable_layers})
    if unknown:
        raise ConfigError(
            str(args.levels), f"no prunable layer named {', '.join(unknown)} in {network.name}"
        )
    return Pruning(
        structure=structure,
        density=d,
        per_layer=per_layer,
        block=getattr(args, "block", (4, 4)),
        nm=getattr(args, "nm", (2, 4)),
        seed=args.seed,
        cascade=getattr(args, "cascade", True),
    )


def read_checkpoint(args: argparse.Namespace, path: Path):
    """The checkpoint, mapped onto MODEL when one is given, else onto its own network."""
    from simulator.checkpoints import read_checkpoint as read
    from simulator.workloads import load_network

    models = getattr(args, "model", None) or []
    if len(models) > 1:
        raise ConfigError("--model", "give at most one network to map a checkpoint onto")
    return read(  # each layer counted and dropped; masks read again when needed
        path,
        network=load_network(models[0], phase=phase(args)) if models else None,
        mapping=args.mapping,
        input_shape=args.input_shape,
        threshold=args.threshold,
        arrays=False,
    )


def checkpoint_notes(ckpt) -> None:
    """Layers without a tensor and the reader's warnings, on stderr."""
    from simulator.errors import shown

    for name in ckpt.unmatched:
        print(f"note: no tensor for layer {shown(name)}: taken as unpruned", file=sys.stderr)
    for w in ckpt.warnings:
        print(f"note: {shown(w, 400)}", file=sys.stderr)


_compile_note = False


def first_compile_note() -> None:
    """One line on stderr when the numerical kernels first compile (first use after an
    install: several seconds, once per process however many commands it runs)."""
    global _compile_note
    if _compile_note:
        return
    _compile_note = True
    from simulator import kernels

    kernels.on_first_compile(
        lambda: print(
            "prunesim: compiling the numerical kernels for this install (once; a few seconds)",
            file=sys.stderr,
            flush=True,
        )
    )


def clock(seconds: float) -> str:
    """Seconds as ``m:ss`` (``h:mm:ss`` from an hour)."""
    m, sec = divmod(round(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


class Progress:
    """``progress(total, work=None) -> tick`` for the library's long calls, ``total``
    steps of ``work`` units in all (steps weighted alike where ``work`` is None);
    ``tick(note="", work=1.0)`` ends a step of that much work, ``note`` saying what
    it was. On a terminal: a tqdm bar on stderr (when ``total`` exceeds
    ``min_total``), its percentage and time left counted in work. Otherwise a line
    on stderr when a named call (``desc``) starts, then at most one every
    ``interval_s`` seconds (steps done, percentage, the note, time elapsed and left)
    and one when the work is done, for a run that took longer than ``interval_s``.
    Use as a context manager: every bar it opened is closed on exit, before any
    output."""

    def __init__(
        self, unit: str, desc: str | None = None, min_total: int = 0, interval_s: float = 10.0
    ):
        self.unit, self.desc, self.min_total = unit, desc, min_total
        self.interval_s = interval_s
        self._bars: list = []

    def __call__(self, total: int, work: float | None = None):
        if total <= self.min_total:
            return lambda *_, **__: None
        work_total = float(work if work is not None else total)
        if sys.stderr.isatty():
            return self._bar(total, work_total)
        return self._log(total, work_total)

    def _bar(self, total: int, work_total: float):
        from tqdm import tqdm

        bar = tqdm(
            total=work_total,
            desc=self.desc,
            leave=False,
            file=sys.stderr,
            smoothing=0,  # time left from the average rate: steps are weighted by work
            bar_format="{desc}: {percentage:3.0f}%|{bar}| {postfix} [{elapsed}<{remaining}]",
        )
        self._bars.append(bar)
        steps = [0]

        def tick(note: str = "", work: float = 1.0) -> None:
            steps[0] += 1
            bar.set_postfix_str(f"{steps[0]}/{total} {self.unit}s {note}".rstrip(), refresh=False)
            bar.update(work)

        return tick

    def _log(self, total: int, work_total: float):
        import time

        start = time.monotonic()
        state = {"steps": 0, "work": 0.0, "last": start}
        name = self.desc or "prunesim"
        if self.desc:  # a named long call says it started
            every = f"; a line every {self.interval_s:g} s" if self.interval_s > 0 else ""
            print(f"{name}: {total} {self.unit}s to do{every}", file=sys.stderr, flush=True)

        def tick(note: str = "", work: float = 1.0) -> None:
            state["steps"] += 1
            state["work"] += work
            now = time.monotonic()
            done = state["steps"] >= total
            if now - state["last"] < self.interval_s and not (
                done and now - start >= self.interval_s
            ):
                return
            state["last"] = now
            frac = min(state["work"] / work_total, 1.0) if work_total > 0 else 1.0
            elapsed = now - start
            left = f", about {clock(elapsed * (1 - frac) / frac)} left" if 0 < frac < 1 else ""
            what = f", {note}" if note else ""
            print(
                f"{name}: {state['steps']}/{total} {self.unit}s ({100 * frac:.0f} %){what}, "
                f"{clock(elapsed)} elapsed{left}",
                file=sys.stderr,
                flush=True,
            )

        return tick

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        for bar in self._bars:
            bar.close()
