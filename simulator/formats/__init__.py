"""Sparse storage formats, bit-exact and platform-independent.

``profile_mask(layer, mask)`` counts a mask once; ``format_stats(profile, fmt,
params)`` gives its storage in any registered format (:data:`FORMATS`);
``layer_storage`` does both for many formats. :mod:`.formulas` holds the closed
forms and i.i.d. expectations, :mod:`.encode` the actual arrays.
"""

from __future__ import annotations

import numpy as np

from simulator.formats import formulas
from simulator.formats.encode import Encoded, encode
from simulator.formats.profile import (
    MaskProfile,
    all_kept_profile,
    profile_gemm,
    profile_mask,
    profile_matrix,
)
from simulator.formats.stats import (
    FORMATS,
    FormatParams,
    FormatSpec,
    FormatStats,
    format_stats,
    register,
)
from simulator.layers import Layer

__all__ = [
    "FORMATS",
    "Encoded",
    "FormatParams",
    "FormatSpec",
    "FormatStats",
    "MaskProfile",
    "all_kept_profile",
    "encode",
    "format_stats",
    "formulas",
    "layer_storage",
    "profile_gemm",
    "profile_mask",
    "profile_matrix",
    "register",
]


def layer_storage(
    layer: Layer, mask: np.ndarray, formats: list[str] | tuple[str, ...], params: FormatParams
) -> dict[str, FormatStats]:
    """Profile a layer's mask once and give its storage in each of ``formats``."""
    profile = profile_mask(layer, mask)
    return {fmt: format_stats(profile, fmt, params) for fmt in formats}
