"""What a simulation is asked at: one validated, frozen settings object.

:class:`Settings` holds the bit widths, the activation side, the seed and the
variant of a simulation. It is checked once, when it is made, and passed down to
every engine: no public function accepts a negative width, a density outside
(0, 1] or an unknown variant. Bad values raise :class:`~simulator.errors.ConfigError`
listing every problem at once.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

from simulator.errors import ConfigError, shown

VARIANTS = ("dense", "structured", "sparse", "nm")
"""dense: unpruned; structured: filter/channel/column pruning run as a smaller dense
problem; sparse: non-structured mask on the engine's sparse path; nm: N:M mask."""

MAX_BITS = 64
"""Widest value or activation width accepted (bits)."""
MAX_INDEX_BITS = 32
"""Widest relative index accepted (bits), as in the storage formats."""
MAX_SEED = 2**63 - 1


def _int_in(problems: list[str], name: str, value: object, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        problems.append(f"{name}: expected an integer, got {shown(value)}")
    elif not low <= value <= high:
        problems.append(f"{name}: must be in [{low}, {high}], got {shown(value)}")


def width_problems(**widths: object) -> list[str]:
    """Problems with bit widths given by name (``weight_bits=4``): each an integer in
    [1, :data:`MAX_BITS`] (``index_bits``: [1, :data:`MAX_INDEX_BITS`]); ``None``
    means "not given" and passes."""
    problems: list[str] = []
    for name, value in widths.items():
        if value is not None:
            high = MAX_INDEX_BITS if name == "index_bits" else MAX_BITS
            _int_in(problems, name, value, 1, high)
    return problems


def density_problems(name: str, value: object) -> list[str]:
    """Problems with a kept fraction: a finite number in (0, 1]; ``None`` passes."""
    if value is None:
        return []
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return [f"{name}: expected a number in (0, 1], got {shown(value)}"]
    if not (math.isfinite(value) and 0 < value <= 1):
        return [f"{name}: must be in (0, 1], got {shown(value)}"]
    return []


def check_variant(variant: object, where: str = "variant") -> str:
    """``variant`` if it is one of :data:`VARIANTS`, else a :class:`ConfigError`."""
    if variant not in VARIANTS:
        raise ConfigError(where, f"{shown(variant)} is not one of {', '.join(VARIANTS)}")
    return str(variant)


@dataclass(frozen=True, kw_only=True)
class Settings:
    """The settings of one simulation.

    ``weight_bits``: bits per stored weight value; ``index_bits``: bits per relative
    index on sparse engines; ``activation_bits``: bits per activation (None: the
    platform's); ``activation_density``: kept fraction of input activations on
    engines that skip zero activations (None: the platform's); ``seed``: seed of
    anything drawn at random (activation masks); ``variant``: one of
    :data:`VARIANTS`; ``kv_bits``: bits per element of a transformer's key/value
    cache, read by attention products and written by the k/v projections (None: the
    activation precision); ``group_size``: group-wise weight quantization (GPTQ/AWQ/
    Marlin style): that many weights of a row along the reduction axis share one
    ``scale_bits`` scale and, when ``zero_point_bits`` > 0, one zero point, stored with
    the weights of every layer that has weights (None or 0: no groups; engines that
    count them: see :class:`~simulator.dataflows.LayerTask`).
    """

    weight_bits: int = 8
    index_bits: int = 4
    activation_bits: int | None = None
    activation_density: float | None = None
    seed: int = 0
    variant: str = "dense"
    kv_bits: int | None = None
    group_size: int | None = None
    scale_bits: int = 16
    zero_point_bits: int = 0

    def __post_init__(self) -> None:
        problems = width_problems(
            weight_bits=self.weight_bits,
            index_bits=self.index_bits,
            activation_bits=self.activation_bits,
            kv_bits=self.kv_bits,
        )
        if self.weight_bits is None or self.index_bits is None:
            problems.append("weight_bits and index_bits must be given")
        problems += density_problems("activation_density", self.activation_density)
        _int_in(problems, "seed", self.seed, 0, MAX_SEED)
        if self.variant not in VARIANTS:
            problems.append(f"variant: {shown(self.variant)} is not one of {', '.join(VARIANTS)}")
        if self.group_size is not None:
            _int_in(problems, "group_size", self.group_size, 0, 2**31)
        _int_in(problems, "scale_bits", self.scale_bits, 1, MAX_BITS)
        _int_in(problems, "zero_point_bits", self.zero_point_bits, 0, MAX_BITS)
        if problems:
            raise ConfigError("settings", problems)
        # plain Python ints and floats from here on (numpy scalars would reach numba)
        object.__setattr__(self, "weight_bits", int(self.weight_bits))
        object.__setattr__(self, "index_bits", int(self.index_bits))
        object.__setattr__(self, "seed", int(self.seed))
        if self.activation_bits is not None:
            object.__setattr__(self, "activation_bits", int(self.activation_bits))
        if self.activation_density is not None:
            object.__setattr__(self, "activation_density", float(self.activation_density))
        if self.kv_bits is not None:
            object.__setattr__(self, "kv_bits", int(self.kv_bits))
        for key in ("group_size", "scale_bits", "zero_point_bits"):
            if getattr(self, key) is not None:
                object.__setattr__(self, key, int(getattr(self, key)))
