"""Sparse storage formats, bit-exact and platform-independent.

``profile_mask(layer, mask)`` counts a mask once; ``format_stats(profile, fmt,
params)`` gives its storage in any registered format (:data:`FORMATS`);
``layer_storage`` does both for many formats. Each format is registered once, with
all its parts (:mod:`.builtin`, and the LLM kernels' tiled formats in :mod:`.tiled`;
the registry is :mod:`.stats`): its counter, its
encoder (:func:`encode`), its closed form and i.i.d. expectation
(:func:`expected_format_bits`; the formulas are in :mod:`.formulas`) and the
structured prunings it is made for (:data:`STRUCTURED_FORMATS`).
"""

from __future__ import annotations

import numpy as np

from simulator.formats import builtin as _builtin  # noqa: F401  (registers the formats)
from simulator.formats import formulas
from simulator.formats import tiled as _tiled  # noqa: F401  (registers the LLM-kernel formats)
from simulator.formats.profile import (
    MaskProfile,
    all_kept_profile,
    drawn_nm_profile,
    factored_profile,
    packed_profile,
    profile_gemm,
    profile_mask,
    profile_matrix,
)
from simulator.formats.stats import (
    FORMATS,
    STRUCTURED_FORMATS,
    Encoded,
    FormatParams,
    FormatSpec,
    FormatStats,
    closed_form_bits,
    encodable_formats,
    encode,
    expected_format_bits,
    expected_formats,
    format_stats,
    group_scale_bits,
    register,
    structured_formats,
    unregister,
)
from simulator.layers import Layer

__all__ = [
    "FORMATS",
    "STRUCTURED_FORMATS",
    "Encoded",
    "FormatParams",
    "FormatSpec",
    "FormatStats",
    "MaskProfile",
    "all_kept_profile",
    "closed_form_bits",
    "drawn_nm_profile",
    "encodable_formats",
    "encode",
    "expected_format_bits",
    "expected_formats",
    "factored_profile",
    "format_stats",
    "formulas",
    "group_scale_bits",
    "layer_storage",
    "packed_profile",
    "profile_gemm",
    "profile_mask",
    "profile_matrix",
    "register",
    "structured_formats",
    "unregister",
]


def layer_storage(
    layer: Layer, mask: np.ndarray, formats: list[str] | tuple[str, ...], params: FormatParams
) -> dict[str, FormatStats]:
    """Profile a layer's mask once and give its storage in each of ``formats``."""
    profile = profile_mask(layer, mask)
    return {fmt: format_stats(profile, fmt, params) for fmt in formats}
