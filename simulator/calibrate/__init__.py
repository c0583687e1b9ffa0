"""Calibrating a CPU profile on this machine: measure, fit, write.

:func:`calibrate_cpu` measures numpy's BLAS GEMM and GEMV, scipy's CSR x dense and
CSR x vector over shapes and densities and a streaming triad
(:mod:`~simulator.calibrate.measure`), fits the roofline's CPU terms to them
(:mod:`~simulator.calibrate.fit`) and returns the fit with the machine it ran on;
:func:`~simulator.calibrate.profile.profile_yaml` turns that into a hardware
profile that loads like any other, and :func:`write_profile` writes it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from simulator.calibrate.fit import Fit, Params, fit, predict_s
from simulator.calibrate.measure import (
    Machine,
    Measurement,
    Plan,
    measure,
    measure_shapes,
    operand_caches,
    plan,
)
from simulator.calibrate.profile import profile_fields, profile_yaml
from simulator.errors import ConfigError
from simulator.files import write_via

__all__ = [
    "Calibration",
    "Fit",
    "Machine",
    "Measurement",
    "Params",
    "Plan",
    "calibrate_cpu",
    "fit",
    "measure",
    "measure_shapes",
    "plan",
    "predict_s",
    "profile_fields",
    "profile_yaml",
    "write_profile",
]


@dataclass(frozen=True, kw_only=True)
class Calibration:
    """A calibration: the machine, the fit (with its measurements) and the profile text."""

    machine: Machine
    fit: Fit
    yaml: str


def calibrate_cpu(
    p: Plan | None = None,
    *,
    threads: int = 1,
    quick: bool = False,
    name: str = "this_cpu",
    progress: Callable[[int], Callable[[], object]] | None = None,
) -> Calibration:
    """Measure this machine with plan ``p`` (default: :func:`plan` ``(quick)``), fit
    the CPU roofline terms and build the profile. One thread fits CPU time, more fit
    wall time (CPU time then sums the threads). The dense operand's miss term is
    tried at the machine's L2 and last-level cache sizes (sysfs)."""
    if not name.strip() or not name.isprintable() or len(name) > 80:
        raise ConfigError("--name", "expected a printable name of 1 to 80 characters")
    machine, ms = measure(p or plan(quick), threads, progress)
    clock = "cpu" if threads == 1 else "wall"
    f = fit(ms, clock=clock, operand_caches=operand_caches(machine.caches))
    return Calibration(machine=machine, fit=f, yaml=profile_yaml(f, machine, name))


def write_profile(path: str | Path, text: str, *, overwrite: bool = False) -> Path:
    """Write a profile's text to ``path`` atomically (a complete file or none);
    an existing file is an error unless ``overwrite``."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise ConfigError(str(path), "file exists (use --force to replace it)")
    if path.exists() and not path.is_file():
        raise ConfigError(str(path), "not a regular file")
    return write_via(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
