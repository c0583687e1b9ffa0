"""prunesim: hardware cost model and simulator for sparse versus dense DNN inference.

Layers and networks (:mod:`simulator.layers`, :mod:`simulator.workloads`), masks
(:mod:`simulator.masks`), bit-exact storage formats (:mod:`simulator.formats`) and
whole-network storage with break-even (:mod:`simulator.storage`).
"""

__version__ = "0.1.0"
