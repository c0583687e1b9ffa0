"""Unit helpers: bit widths and conversions. Units are in the names."""

from __future__ import annotations

BITS_PER_BYTE = 8


def ceil_log2(n: int) -> int:
    """Smallest b >= 0 with 2**b >= n (0 for n <= 1): the bits needed to tell n things apart."""
    n = int(n)
    return 0 if n <= 1 else (n - 1).bit_length()


def bits_to_bytes(bits: float) -> float:
    """Bits to bytes."""
    return bits / BITS_PER_BYTE


def rate_to_density(rate: float) -> float:
    """Pruning rate (8x keeps 1/8 of the weights) to kept density."""
    return 1.0 / rate


def sparsity_to_density(sparsity: float) -> float:
    """Sparsity (fraction of weights removed) to kept density."""
    return 1.0 - sparsity
