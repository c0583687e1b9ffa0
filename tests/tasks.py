"""Layer tasks for engine tests: a layer with a mask (all kept by default) at a
precision, as the simulator hands them to an engine."""

from __future__ import annotations

import numpy as np

from simulator.dataflows import LayerTask
from simulator.formats import profile_gemm


def task(layer, mask=None, variant="dense", wb=8, ab=8, ib=4, ad=1.0):
    g = layer.gemm
    m = np.ones(layer.weight_shape, bool) if mask is None else mask
    prof = profile_gemm(np.ascontiguousarray(m.reshape(g.groups, g.rows, g.cols), np.uint8))
    return LayerTask(
        layer=layer,
        profile=prof,
        variant=variant,
        weight_bits=wb,
        index_bits=ib,
        activation_bits=ab,
        activation_density=ad,
    )
