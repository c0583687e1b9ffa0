"""prunesim: hardware cost model and simulator for sparse versus dense DNN inference.

Layers and networks (:mod:`simulator.workloads`), masks (:mod:`simulator.masks`),
real checkpoints (:mod:`simulator.checkpoints`), bit-exact storage formats
(:mod:`simulator.formats`, :mod:`simulator.storage`), hardware profiles
(:mod:`simulator.hwconfig`), execution models and cost (:mod:`simulator.dataflows`,
:mod:`simulator.cost`, :mod:`simulator.simulate`) and the study of Ma et al.
(:mod:`simulator.study`). The command line is :mod:`simulator.cli`.
"""

__version__ = "0.1.0"
