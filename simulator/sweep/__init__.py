"""Parameter sweeps: thousands of hardware points on one set of masks.

A sweep spec (YAML, :mod:`.spec`) names a workload, a base hardware profile and the
parameters to vary; it expands into points (:mod:`.generators`, key paths in
:mod:`.keys`).
"""

from __future__ import annotations

from simulator.sweep.spec import SWEEP_SCHEMA, Point, SweepSpec, load_spec, spec_from_dict

__all__ = ["SWEEP_SCHEMA", "Point", "SweepSpec", "load_spec", "spec_from_dict"]
