"""Execution models: each turns a :class:`LayerTask` on a platform into
:class:`~simulator.traffic.ExecutionCounts`.

- :func:`run_systolic`: dense systolic array (ws/os/is), SCALE-Sim's cycle model;
- :func:`run_eie`: EIE-style sparse PE array, cycles simulated from the mask;
- :func:`run_roofline`: CPU and GPU roofline with dense and sparse-kernel terms;
- :func:`run_rowstationary`: Eyeriss's row-stationary array, mapping searched per layer;
- :func:`run_scnn`: SCNN's sparse Cartesian-product array, cycles simulated from the masks.
"""

from simulator.dataflows.eie import run_eie
from simulator.dataflows.roofline import run_roofline
from simulator.dataflows.rowstationary import run_rowstationary
from simulator.dataflows.scnn import run_scnn
from simulator.dataflows.systolic import run_systolic
from simulator.dataflows.task import VARIANTS, LayerTask

__all__ = [
    "VARIANTS",
    "LayerTask",
    "run_eie",
    "run_roofline",
    "run_rowstationary",
    "run_scnn",
    "run_systolic",
]
