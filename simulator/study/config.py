"""What the study compares: :class:`StudyConfig`, and Ma et al.'s rates."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from simulator.errors import ConfigError, shown
from simulator.hwconfig import Platform, builtin_platforms
from simulator.settings import Settings, width_problems

DEFAULT_NETWORKS = (
    "lenet5",
    "alexnet",
    "vgg16",
    "resnet18",
    "resnet50",
    "mobilenetv2",
    "bert_base",
)
PAPER_RATES = {"lenet5": 348.0, "alexnet": 36.0, "resnet50": 8.0}
"""Non-structured pruning rates at near-zero accuracy loss (Ma et al., arXiv:1907.02124)."""


@dataclass(frozen=True, kw_only=True)
class StudyConfig:
    """What the study compares. Rates are pruning rates (8 keeps 1/8)."""

    networks: tuple[str, ...] = DEFAULT_NETWORKS
    platforms: tuple[str, ...] = ()
    weight_bits: tuple[int, ...] = (1, 2, 4, 8, 16)
    index_bits: tuple[int, ...] = (4, 8)
    structures: tuple[str, ...] = ("filter",)
    structured_rates: tuple[float, ...] = (2.0, 4.0, 8.0, 16.0)
    sweep_rates: tuple[float, ...] = (1.5, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0)
    rates: Mapping[str, float] = field(default_factory=dict)
    """Non-structured rate of a network for the verdict, by network name; networks
    not named take Ma et al.'s rate (:data:`PAPER_RATES`) where published, else
    ``default_rate``."""
    default_rate: float = 8.0
    seed: int = 0
    cascade: bool = True
    """Filter pruning removes, in every layer that reads a removed filter, the input
    channels it fed, where the network has a graph (see :mod:`simulator.graph`)."""
    checkpoints: Mapping[str, str] = field(default_factory=dict)
    """Network name -> pruned checkpoint whose real masks replace the generated
    non-structured masks at the network's rate (compared with i.i.d. masks of the same
    per-layer densities)."""
    margin: float = 0.05
    """How much better a result must be to count as a win in the verdict, as a
    fraction: A beats B when B costs more than ``1 + margin`` times what A costs, in
    latency (a speedup above ``1 + margin``) or in energy (an energy ratio below
    ``1 / (1 + margin)``); see :func:`simulator.study.verdict.decide`. The verdict
    applies it when it is derived, so results computed under one margin are reused
    under another."""

    def __post_init__(self) -> None:
        problems = []
        for key in ("structured_rates", "sweep_rates"):
            if not getattr(self, key) or min(getattr(self, key)) < 1:
                problems.append(f"{key}: need at least one rate, each >= 1")
        for s in self.structures:
            if s not in ("filter", "channel", "column"):
                problems.append(f"structures: {s!r} is not filter, channel or column")
        for key in ("weight_bits", "index_bits"):
            if not getattr(self, key):
                problems.append(f"{key}: need at least one width")
            for w in getattr(self, key):
                problems += width_problems(**{key: w})
        if not isinstance(self.cascade, bool):
            problems.append(f"cascade: expected true or false, got {shown(self.cascade)}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            problems.append(f"seed: expected an integer >= 0, got {shown(self.seed)}")
        for name, r in {**self.rates, "default_rate": self.default_rate}.items():
            if not (isinstance(r, int | float) and math.isfinite(r) and r >= 1):
                problems.append(f"rates: {shown(name)}: must be finite and >= 1, got {shown(r)}")
        m = self.margin
        if isinstance(m, bool) or not isinstance(m, int | float) or not 0 <= m < 1:
            problems.append(f"margin: expected a fraction in [0, 1), e.g. 0.05, got {shown(m)}")
        for net, path in self.checkpoints.items():
            if not Path(path).is_file():
                problems.append(f"checkpoints: {shown(net)}: no such file {shown(path, 200)}")
        if problems:
            raise ConfigError("study configuration", problems)

    @property
    def compute_index_bits(self) -> int:
        """The relative index width sparse engines run at: the first of ``index_bits``
        (the storage break-even uses them all)."""
        return self.index_bits[0]

    def settings(self, weight_bits: int) -> Settings:
        """The simulation settings of the compute half at ``weight_bits``."""
        return Settings(weight_bits=weight_bits, index_bits=self.compute_index_bits, seed=self.seed)

    def rate_of(self, network: str) -> float:
        return float(self.rates.get(network, PAPER_RATES.get(network, self.default_rate)))

    def check_names(self, networks: Iterable[str]) -> None:
        """Every network that ``rates`` and ``checkpoints`` name is among ``networks``
        (the studied networks' own names, also for networks given as files); a
        :class:`ConfigError` otherwise."""
        studied = set(networks)
        problems = [
            f"{key}: no network {', '.join(map(shown, unknown))} among those studied "
            f"({', '.join(sorted(studied))})"
            for key, unknown in (
                ("rates", sorted(set(self.rates) - studied)),
                ("checkpoints", sorted(set(self.checkpoints) - studied)),
            )
            if unknown
        ]
        if problems:
            raise ConfigError("study configuration", problems)

    def platform_names(self) -> tuple[str, ...]:
        return self.platforms or tuple(builtin_platforms())


def compute_weight_bits(config: StudyConfig, platform: Platform) -> tuple[int, ...]:
    """The study's weight widths the platform runs natively (its smallest one if none)."""
    native = tuple(w for w in config.weight_bits if w in platform.weight_bits)
    return native or (min(platform.weight_bits),)


def verdict_weight_bits(platform: Platform) -> int:
    """The width of a platform's verdict: 8 bits where it runs them, else its first."""
    return 8 if 8 in platform.weight_bits else platform.weight_bits[0]
