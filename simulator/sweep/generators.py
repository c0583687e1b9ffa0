"""Values of swept parameters: domains, and the ways blocks of them combine into points.

A :class:`Domain` is a finite list of values (``values``, ``range``, ``log_range``) or a
continuous interval (``uniform``, ``log_uniform``). A :class:`Block` combines its
domains in one of four modes:

- ``grid``: every combination, the last parameter varying fastest;
- ``zip``: the i-th value of every parameter (equal lengths; one value repeats);
- ``random``: ``samples`` independent draws, each parameter uniform over its domain;
- ``lhs``: a Latin hypercube of ``samples`` points: each parameter's unit interval is
  cut into ``samples`` strata and every stratum holds exactly one point.

Random and LHS draws map a unit number ``u`` in [0, 1) onto a domain: a finite domain
of n values takes value ``floor(u * n)`` (so an LHS spreads the values evenly), an
interval ``low + u * (high - low)`` (``log_uniform``: the same in log space). Draws
come from :func:`numpy.random.default_rng` seeded with the block's ``seed``: the same
spec gives the same points on every run and machine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

MODES = ("grid", "zip", "random", "lhs")
KINDS = ("values", "uniform", "log_uniform")


@dataclass(frozen=True, kw_only=True)
class Domain:
    """What one parameter takes: ``values`` (finite) or an interval ``[low, high]``
    (``uniform``, or ``log_uniform`` with ``low > 0``), for random and LHS draws."""

    kind: str
    values: tuple = ()
    low: float = 0.0
    high: float = 0.0

    @property
    def finite(self) -> bool:
        return self.kind == "values"

    def at(self, u: np.ndarray) -> list:
        """The values at unit numbers ``u`` in [0, 1) (one per element)."""
        u = np.asarray(u, dtype=np.float64)
        if self.kind == "values":
            n = len(self.values)
            index = np.minimum((u * n).astype(np.int64), n - 1)
            return [self.values[i] for i in index]
        if self.kind == "uniform":
            return [float(x) for x in self.low + u * (self.high - self.low)]
        lo, hi = math.log(self.low), math.log(self.high)
        return [float(x) for x in np.exp(lo + u * (hi - lo))]


@dataclass(frozen=True, kw_only=True)
class Block:
    """Parameters combined in one ``mode``; ``samples`` and ``seed`` for random and LHS."""

    mode: str
    parameters: tuple[tuple[str, Domain], ...]
    samples: int = 0
    seed: int = 0

    def count(self) -> int:
        """How many points the block gives (without making them)."""
        sizes = [len(d.values) for _, d in self.parameters]
        if self.mode == "grid":
            return math.prod(sizes)
        if self.mode == "zip":
            return max(sizes)
        return self.samples

    def points(self) -> list[tuple]:
        """The block's points, each a tuple of values in parameter order."""
        domains = [d for _, d in self.parameters]
        if self.mode == "grid":
            return _grid([d.values for d in domains])
        if self.mode == "zip":
            n = self.count()
            return [
                tuple(d.values[i if len(d.values) > 1 else 0] for d in domains) for i in range(n)
            ]
        units = (lhs_units if self.mode == "lhs" else random_units)(
            self.samples, len(domains), self.seed
        )
        columns = [d.at(units[:, j]) for j, d in enumerate(domains)]
        return list(zip(*columns, strict=True))


def _grid(lists: list[tuple]) -> list[tuple]:
    out: list[tuple] = [()]
    for values in lists:
        out = [(*head, v) for head in out for v in values]
    return out


def random_units(samples: int, dimensions: int, seed: int) -> np.ndarray:
    """``samples x dimensions`` independent uniform numbers in [0, 1)."""
    return np.random.default_rng(seed).random((samples, dimensions))


def lhs_units(samples: int, dimensions: int, seed: int) -> np.ndarray:
    """A Latin hypercube in [0, 1)^dimensions: in every column, each of the ``samples``
    strata ``[k / samples, (k + 1) / samples)`` holds exactly one value, placed at
    random within it; strata are paired across columns by random permutations."""
    rng = np.random.default_rng(seed)
    out = np.empty((samples, dimensions))
    for j in range(dimensions):
        stratum = rng.permutation(samples).astype(np.float64)
        # k + r rounds up to k + 1 for r within an ulp of 1: kept inside the stratum
        out[:, j] = np.minimum(stratum + rng.random(samples), np.nextafter(stratum + 1, 0))
    return out / samples


def combine(blocks: list[Block]) -> list[tuple]:
    """Every block's points combined as a grid (the first block varies slowest): each
    point the concatenation of one point of every block."""
    return [
        tuple(v for part in combo for v in part) for combo in _grid([b.points() for b in blocks])
    ]


def arange_values(start: float, stop: float, step: float) -> tuple:
    """``start, start + step, ...`` up to ``stop`` (included when it is reached within a
    millionth of a step), each computed as ``start + i * step``; integers when all three
    are integers."""
    n = math.floor((stop - start) / step + 1e-6) + 1
    if all(isinstance(x, int) for x in (start, stop, step)):
        return tuple(start + i * step for i in range(n))
    return tuple(float(start + i * step) for i in range(n))


def geometric_values(start: float, stop: float, num: int, integer: bool) -> tuple:
    """``num`` values from ``start`` to ``stop`` (both included) at a constant ratio;
    rounded to integers when ``integer``."""
    if num == 1:
        values = [float(start)]
    else:
        values = list(np.exp(np.linspace(math.log(start), math.log(stop), num)))
        values[0], values[-1] = float(start), float(stop)
    if integer:
        return tuple(round(v) for v in values)
    return tuple(float(v) for v in values)
