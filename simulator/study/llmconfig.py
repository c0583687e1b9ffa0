"""What the LLM study compares (:class:`LLMStudyConfig`) and its workloads: one
(model, phase, batch) each, built from the model's first blocks (see
:mod:`simulator.study.llm`)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path

from simulator.errors import ConfigError, shown
from simulator.hfconfig import Phase, build_network, read_hf_config
from simulator.hwconfig import Platform, builtin_platforms, load_platform
from simulator.llmprune import STRUCTURE
from simulator.settings import Settings, width_problems
from simulator.workloads import Network, builtin_configs, is_hf_config

DEFAULT_MODELS = ("llama2_7b", "llama3_8b")
"""Built-in Hugging Face configs studied by default: multi-head and grouped-query
attention."""
DEFAULT_RATES = (2.0, 10 / 3, 5.0)
"""Non-structured and structured rates: 50 %, 70 % and 80 % sparsity."""
DEFAULT_BREAKEVEN_RATES = (10.0, 20.0)
"""Non-structured rates searched beyond them for the break-even: 90 % and 95 %."""


@dataclass(frozen=True, kw_only=True)
class LLMStudyConfig:
    """What the LLM study compares (see the module docstring). Rates are pruning rates
    (2 keeps 1/2); ``blocks`` is how many blocks are simulated (0: all)."""

    models: tuple[str, ...] = DEFAULT_MODELS
    platforms: tuple[str, ...] = ()
    weight_bits: tuple[int, ...] = (4, 8)
    index_bits: tuple[int, ...] = (4, 8)
    rates: tuple[float, ...] = DEFAULT_RATES
    breakeven_rates: tuple[float, ...] = DEFAULT_BREAKEVEN_RATES
    """Further non-structured rates searched for the compute break-even only (not
    compared with structured pruning): at 8-bit weights a batch-1 decode step on
    CSR kernels breaks even near 5x, the last of the default ``rates``."""
    verdict_rate: float = 2.0
    nm: tuple[int, int] = (2, 4)
    phases: tuple[str, ...] = ("prefill", "decode")
    batches: tuple[int, ...] = (1, 8, 64)
    seq_len: int = 512
    context: int = 1024
    kv_bits: int | None = None
    activation_bits: int = 16
    """Activations (and, without ``kv_bits``, the KV cache) at 16 bits: weight-only
    quantization, W4A16 and W8A16, as LLMs are served (GPTQ, AWQ, Marlin, llama.cpp's
    and gpt-fast's weight-only modes)."""
    group_size: int | None = 128
    """Weights below 8 bits carry one ``scale_bits`` scale per ``group_size`` inputs of
    each output (GPTQ/AWQ/Marlin's 128 and 16-bit scales); 8-bit weights a scale per
    output channel, not counted. None or 0: no groups."""
    scale_bits: int = 16
    blocks: int = 2
    seed: int = 0
    margin: float = 0.05
    suite: str = field(default="llm", init=False)
    """Which study this is (the CNN study's configuration has none): picks the report."""

    def __post_init__(self) -> None:
        problems = []
        if not self.models:
            problems.append("models: need at least one")
        if not self.rates or not all(
            isinstance(r, int | float) and math.isfinite(r) and r > 1 for r in self.rates
        ):
            problems.append(f"rates: need at least one rate, each finite and > 1, got {self.rates}")
        if not all(
            isinstance(r, int | float) and math.isfinite(r) and r > 1 for r in self.breakeven_rates
        ):
            problems.append(
                f"breakeven_rates: each must be finite and > 1, got {self.breakeven_rates}"
            )
        if self.rates and not any(math.isclose(self.verdict_rate, r) for r in self.rates):
            problems.append(
                f"verdict_rate: {shown(self.verdict_rate)} is not one of the rates "
                f"({', '.join(f'{r:g}' for r in self.rates)})"
            )
        for key in ("weight_bits", "index_bits"):
            if not getattr(self, key):
                problems.append(f"{key}: need at least one width")
            for w in getattr(self, key):
                problems += width_problems(**{key: w})
        if self.kv_bits is not None:
            problems += width_problems(kv_bits=self.kv_bits)
        problems += width_problems(activation_bits=self.activation_bits)
        problems += width_problems(scale_bits=self.scale_bits)
        g = self.group_size
        if g is not None and (isinstance(g, bool) or not isinstance(g, int) or g < 0):
            problems.append(f"group_size: expected an integer >= 0 (0: none), got {shown(g)}")
        for p in self.phases:
            if p not in ("prefill", "decode"):
                problems.append(f"phases: {shown(p)!r} is not prefill or decode")
        if not self.phases:
            problems.append("phases: need at least one")
        if not self.batches:
            problems.append("batches: need at least one")
        for key, values in (
            ("batches", self.batches),
            ("seq_len", (self.seq_len,)),
            ("context", (self.context,)),
        ):
            for v in values:
                if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 2**31:
                    problems.append(f"{key}: expected integers in [1, 2**31], got {shown(v)}")
        b = self.blocks
        if isinstance(b, bool) or not isinstance(b, int) or b < 0:
            problems.append(f"blocks: expected an integer >= 0 (0: every block), got {shown(b)}")
        n, m = self.nm
        if not 1 <= n < m:
            problems.append(f"nm: expected N:M with 1 <= N < M, got {n}:{m}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            problems.append(f"seed: expected an integer >= 0, got {shown(self.seed)}")
        m_ = self.margin
        if isinstance(m_, bool) or not isinstance(m_, int | float) or not 0 <= m_ < 1:
            problems.append(f"margin: expected a fraction in [0, 1), e.g. 0.05, got {shown(m_)}")
        for name in self.models:
            if not is_hf_config(name):
                problems.append(
                    f"models: {shown(name)} is not a Hugging Face config (built-ins: "
                    f"{', '.join(builtin_configs())}, or a config.json)"
                )
        if problems:
            raise ConfigError("study configuration", problems)

    # the fields the CNN study's report and manifest read, under the LLM study's names
    @property
    def sweep_rates(self) -> tuple[float, ...]:
        """Every non-structured rate run: ``rates`` and ``breakeven_rates``."""
        return tuple(sorted({*self.rates, *self.breakeven_rates}))

    @property
    def structures(self) -> tuple[str, ...]:
        return (STRUCTURE,)

    @property
    def cascade(self) -> bool:
        return True

    @property
    def compute_index_bits(self) -> int:
        """The index width sparse engines run at: the first of ``index_bits``."""
        return self.index_bits[0]

    def settings(self, weight_bits: int) -> Settings:
        """The simulation settings at one weight width: ``activation_bits``, and the
        group scales where the weights are below 8 bits."""
        return Settings(
            weight_bits=weight_bits,
            index_bits=self.compute_index_bits,
            activation_bits=self.activation_bits,
            seed=self.seed,
            kv_bits=self.kv_bits,
            group_size=self.group_size if weight_bits < 8 else None,
            scale_bits=self.scale_bits,
        )

    def weight_widths(self, platform: Platform) -> tuple[int, ...]:
        """The weight widths run on ``platform``: every one of ``weight_bits`` on a CPU
        or GPU (weight-only quantization: weights stored and streamed at their width,
        widened to the activations' in the kernel), the ones it runs natively on an
        accelerator (its smallest if none)."""
        if platform.platform_class in ("cpu", "gpu"):
            return tuple(self.weight_bits)
        native = tuple(w for w in self.weight_bits if w in platform.weight_bits)
        return native or (min(platform.weight_bits),)

    def verdict_width(self, platform: Platform) -> int:
        """The weight width of a platform's verdict: 8 bits where it runs them, else
        the first it runs."""
        widths = self.weight_widths(platform)
        return 8 if 8 in widths else widths[0]

    def platform_names(self) -> tuple[str, ...]:
        """The platforms asked for, else every built-in GPU and CPU profile and every
        ASIC whose execution model is EIE's (a sparse engine built for FC layers)."""
        if self.platforms:
            return self.platforms
        out = []
        for name in builtin_platforms():
            p = load_platform(name)
            if p.platform_class in ("gpu", "cpu") or (
                p.platform_class == "asic" and p.execution == "eie"
            ):
                out.append(name)
        return tuple(out)

    def workloads(self) -> tuple[tuple[str, str, int], ...]:
        """(model, phase, batch) of every workload, in study order."""
        return tuple((m, ph, b) for m in self.models for ph in self.phases for b in self.batches)


def workload_name(model: str, phase: str, batch: int) -> str:
    """The ``network`` column of a workload: the model's name as
    :func:`~simulator.workloads.load_network` gives it (a built-in's name, a file's
    stem, a folder's name), its phase and batch: ``"llama2_7b decode b8"``."""
    path = config_path(model)
    if path.is_dir():
        path = path / "config.json"
    name = path.parent.resolve().name if path.name == "config.json" else path.stem
    return f"{name} {phase} b{batch}"


def config_path(model: str) -> Path:
    """The ``config.json`` (or folder) of a built-in config's name or of a path."""
    configs = builtin_configs()
    return configs[model] if model in configs else Path(model)


@dataclass(frozen=True, kw_only=True)
class Workload:
    """One workload as simulated: its network (the simulated blocks), how many of the
    model's blocks that is, and the factor its totals are scaled by."""

    name: str
    network: Network
    simulated_blocks: int
    total_blocks: int

    @property
    def scale(self) -> float:
        return self.total_blocks / self.simulated_blocks


def build_workload(model: str, phase: str, batch: int, config: LLMStudyConfig) -> Workload:
    """The network of one workload: the model's first ``config.blocks`` blocks (all
    where 0 or more than it has) at the phase and batch, without the LM head."""
    hf = read_hf_config(config_path(model))
    n = min(config.blocks or hf.layers, hf.layers)
    built = build_network(
        replace(hf, layers=n),
        Phase(
            kind=phase, batch=batch, seq_len=config.seq_len, context=config.context, lm_head=False
        ),
    )
    name = workload_name(model, phase, batch)
    network = Network(
        name=name,
        layers=built.layers,
        description=built.description,
        source=str(config_path(model)),
        blocks=built.blocks,
    )
    return Workload(name=name, network=network, simulated_blocks=n, total_blocks=hf.layers)
