"""Parameter sweeps: thousands of hardware points on one set of masks.

A sweep spec (YAML, :mod:`.spec`) names a workload, a base hardware profile and the
parameters to vary; :func:`run_sweep` expands it into points (:mod:`.generators`, key
paths in :mod:`.keys`), evaluates them batched per mask (:mod:`.evaluate`) serially,
on a local process pool or on Dask (:mod:`.runner`), and writes resumable chunks and
one table of rows (:mod:`.store`, columns in :mod:`.columns`).
"""

from __future__ import annotations

from simulator.sweep.runner import ENGINES, SweepResult, run_sweep
from simulator.sweep.spec import SWEEP_SCHEMA, Point, SweepSpec
from simulator.sweep.specfile import load_spec, spec_from_dict

__all__ = [
    "ENGINES",
    "SWEEP_SCHEMA",
    "Point",
    "SweepResult",
    "SweepSpec",
    "load_spec",
    "run_sweep",
    "spec_from_dict",
]
