"""The columns of a sweep's result table and their types.

One row per point and variant: ``index`` (the point's place in the expansion),
``point`` (its configuration's hash), ``status`` (``ok`` or ``invalid``) and
``reason`` (why a point is invalid: the profile's validation, the pruning level or
the simulator, in their own words; empty when ok), every parameter under its key
path, the ``variant``, then the outputs: network totals of the variant on the
point's hardware (:data:`OUTPUTS`). Outputs of an invalid row are empty (NaN).
"""

from __future__ import annotations

from simulator.simulate import ENERGY_COLUMNS

FIRST = (("index", "int64"), ("point", "string"), ("status", "string"), ("reason", "string"))
"""Columns before the parameters."""

OUTPUTS: tuple[tuple[str, str], ...] = (
    ("variant", "string"),
    ("latency_s", "float64"),
    *((name, "float64") for name in ENERGY_COLUMNS),
    ("speedup", "float64"),
    ("energy_ratio", "float64"),
    ("macs_dense", "float64"),
    ("macs_done", "float64"),
    ("dram_bits", "float64"),
    ("pe_utilization", "float64"),
    ("effective_rate", "float64"),
    ("pes", "Int64"),
    ("engine", "string"),
    ("main_bound", "string"),
)
"""The variant and the outputs, with their pandas dtypes: latency (s), energy (J) and
its parts, speedup and energy ratio against dense on the same point, MACs of the
dense network and MACs done, DRAM bits moved, PE utilization (latency-weighted), the
rate the variant's masks reach (all weights over kept ones), the PEs the platform
has (FPGAs: as many as fit), the engine that ran most layers and the bound that set
most of the latency."""

NUMERIC_OUTPUTS = tuple(n for n, t in OUTPUTS if t != "string")

KIND_DTYPES = {
    "number": "float64",
    "integer": "int64",
    "string": "string",
    "enum": "string",
    "boolean": "bool",
}
"""A parameter's column type from its field's kind."""

OK = "ok"
INVALID = "invalid"
