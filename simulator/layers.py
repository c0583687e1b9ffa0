"""Layer descriptors and their GEMM view.

A conv layer with weights ``(K, C/g, R, S)`` is, per group, a ``K/g x (C/g*R*S)``
weight matrix times an im2col matrix of ``N*P*Q`` columns; a linear layer is an
``out x in`` matrix times ``batch*tokens`` columns; rows are output channels or
neurons. A :class:`MatMul` multiplies two activations (attention) and has no weights.
Counts are plain numbers of elements (weights, MACs, activations).

KV cache: a :class:`Linear` layer may write some of its outputs to a transformer's
key/value cache (``kv_out_features``: the k and v projections, 2/3 of GPT-2's fused
``c_attn``), and a :class:`MatMul` may read its second operand from it
(``kv_operand``: attention scores and context). Engines price those elements at the
cache's precision (:class:`~simulator.dataflows.task.LayerTask`); both default to
no cache, so layers made without them are unchanged.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

from simulator.errors import LayerError, shown


@dataclass(frozen=True, kw_only=True)
class GemmView:
    """A layer as ``groups`` independent matrix products.

    Each group multiplies a ``rows x cols`` weight (or left operand) matrix by a
    ``cols x n_cols`` input matrix.
    """

    groups: int
    rows: int
    cols: int
    n_cols: int

    @property
    def macs(self) -> int:
        """Multiply-accumulates of the whole layer."""
        return self.groups * self.rows * self.cols * self.n_cols


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _positive(layer: str, **values: int) -> None:
    bad = [f"{k}={shown(v)}" for k, v in values.items() if not _is_int(v) or not 1 <= v <= 2**31]
    if bad:
        raise LayerError(
            f"layer '{shown(layer)}': expected positive integers up to 2**31, got {', '.join(bad)}"
        )


COUNT_LIMIT = 2**62
"""Largest weight, MAC or activation count of one layer: counts are int64 in kernels."""


def _counts_fit(layer: Conv2d | Linear | MatMul) -> None:
    big = [
        f"{what} = {n:.3g}"
        for what, n in (
            ("weights", layer.weight_count),
            ("MACs", layer.macs),
            ("inputs", layer.input_count),
            ("outputs", layer.output_count),
        )
        if n >= COUNT_LIMIT
    ]
    if big:
        raise LayerError(
            f"layer '{shown(layer.name)}': {', '.join(big)}, over 2**62 "
            "(int64 counts would overflow)"
        )


@dataclass(frozen=True, kw_only=True)
class Conv2d:
    """2-D convolution, grouped and depthwise included. Sizes in elements."""

    name: str
    in_channels: int
    out_channels: int
    kernel_hw: tuple[int, int]
    input_hw: tuple[int, int]
    stride_hw: tuple[int, int] = (1, 1)
    padding_hw: tuple[int, int] = (0, 0)
    dilation_hw: tuple[int, int] = (1, 1)
    groups: int = 1
    batch: int = 1
    scalesim_ifmap_hw: tuple[int, int] | None = field(default=None, compare=False)
    """The ifmap extent as a SCALE-Sim topology gives it, where it differs from
    ``input_hw`` (SCALE-Sim's outputs may read past it: those reads are void). Only
    the SCALE-Sim memory mode reads it; not part of equality."""

    kind = "conv2d"
    prunable = True

    def __post_init__(self) -> None:
        r, s = self.kernel_hw
        h, w = self.input_hw
        _positive(
            self.name,
            in_channels=self.in_channels,
            out_channels=self.out_channels,
            kernel_h=r,
            kernel_w=s,
            input_h=h,
            input_w=w,
            stride_h=self.stride_hw[0],
            stride_w=self.stride_hw[1],
            dilation_h=self.dilation_hw[0],
            dilation_w=self.dilation_hw[1],
            groups=self.groups,
            batch=self.batch,
        )
        if not all(_is_int(p) and p >= 0 for p in self.padding_hw):
            raise LayerError(
                f"layer '{shown(self.name)}': padding must be integers >= 0, got {self.padding_hw}"
            )
        for what, n in (("in_channels", self.in_channels), ("out_channels", self.out_channels)):
            if n % self.groups:
                raise LayerError(
                    f"layer '{shown(self.name)}': groups={self.groups} does not divide {what}={n}"
                )
        p, q = self.output_hw
        if p < 1 or q < 1:
            raise LayerError(
                f"layer '{shown(self.name)}': empty output {p}x{q} (input {h}x{w}, kernel {r}x{s}, "
                f"stride {self.stride_hw}, padding {self.padding_hw}, dilation {self.dilation_hw})"
            )
        _counts_fit(self)

    @functools.cached_property
    def output_hw(self) -> tuple[int, int]:
        """Output height and width: floor((H + 2p - d(R-1) - 1) / s) + 1."""
        out = []
        for n, k, s, p, d in zip(
            self.input_hw,
            self.kernel_hw,
            self.stride_hw,
            self.padding_hw,
            self.dilation_hw,
            strict=True,
        ):
            out.append((n + 2 * p - d * (k - 1) - 1) // s + 1)
        return out[0], out[1]

    @property
    def weight_shape(self) -> tuple[int, ...]:
        """(K, C/g, R, S)."""
        return (self.out_channels, self.in_channels // self.groups, *self.kernel_hw)

    @functools.cached_property
    def gemm(self) -> GemmView:
        p, q = self.output_hw
        r, s = self.kernel_hw
        g = self.groups
        return GemmView(
            groups=g,
            rows=self.out_channels // g,
            cols=self.in_channels // g * r * s,
            n_cols=self.batch * p * q,
        )

    @property
    def input_count(self) -> int:
        """Input activations (N*C*H*W)."""
        return self.batch * self.in_channels * self.input_hw[0] * self.input_hw[1]

    @property
    def output_count(self) -> int:
        """Output activations (N*K*P*Q)."""
        p, q = self.output_hw
        return self.batch * self.out_channels * p * q

    @property
    def kv_input_count(self) -> int:
        """Input elements read from a KV cache: none."""
        return 0

    @property
    def kv_output_count(self) -> int:
        """Output elements written to a KV cache: none."""
        return 0

    @property
    def weight_count(self) -> int:
        return math.prod(self.weight_shape)

    @property
    def macs(self) -> int:
        return self.gemm.macs

    def describe(self) -> str:
        r, s = self.kernel_hw
        g = f" g{self.groups}" if self.groups > 1 else ""
        st = f" /{self.stride_hw[0]}" if self.stride_hw != (1, 1) else ""
        h, w = self.input_hw
        return f"conv {self.in_channels}->{self.out_channels} {r}x{s}{st}{g} @{h}x{w}"


@dataclass(frozen=True, kw_only=True)
class Linear:
    """Fully connected layer (or a transformer projection applied to ``tokens`` tokens)."""

    name: str
    in_features: int
    out_features: int
    tokens: int = 1
    batch: int = 1
    kv_out_features: int = 0
    """Output features per token written to the KV cache (0: none; ``out_features``
    for a k or v projection, ``2/3`` of a fused q/k/v projection's)."""

    kind = "linear"
    prunable = True

    def __post_init__(self) -> None:
        _positive(
            self.name,
            in_features=self.in_features,
            out_features=self.out_features,
            tokens=self.tokens,
            batch=self.batch,
        )
        kv = self.kv_out_features
        if not _is_int(kv) or not 0 <= kv <= self.out_features:
            raise LayerError(
                f"layer '{shown(self.name)}': kv_out_features must be an integer in "
                f"[0, out_features={self.out_features}], got {shown(kv)}"
            )
        _counts_fit(self)

    @property
    def weight_shape(self) -> tuple[int, ...]:
        """(out, in)."""
        return (self.out_features, self.in_features)

    @functools.cached_property
    def gemm(self) -> GemmView:
        return GemmView(
            groups=1,
            rows=self.out_features,
            cols=self.in_features,
            n_cols=self.batch * self.tokens,
        )

    @property
    def input_count(self) -> int:
        return self.batch * self.tokens * self.in_features

    @property
    def output_count(self) -> int:
        return self.batch * self.tokens * self.out_features

    @property
    def kv_input_count(self) -> int:
        """Input elements read from the KV cache: none."""
        return 0

    @property
    def kv_output_count(self) -> int:
        """Output elements written to the KV cache (batch x tokens x kv_out_features)."""
        return self.batch * self.tokens * self.kv_out_features

    @property
    def weight_count(self) -> int:
        return self.in_features * self.out_features

    @property
    def macs(self) -> int:
        return self.gemm.macs

    def describe(self) -> str:
        t = f" x{self.tokens} tok" if self.tokens > 1 else ""
        return f"fc {self.in_features}->{self.out_features}{t}"


@dataclass(frozen=True, kw_only=True)
class MatMul:
    """Batched product of two activations, ``heads`` times ``(m x k) @ (k x n)``
    (attention scores and context). No weights, so nothing to prune."""

    name: str
    m: int
    k: int
    n: int
    heads: int = 1
    batch: int = 1
    kv_operand: bool = False
    """The second operand (``k x n``: the keys of scores, the values of context) is
    read from the KV cache."""

    kind = "matmul"
    prunable = False

    def __post_init__(self) -> None:
        _positive(self.name, m=self.m, k=self.k, n=self.n, heads=self.heads, batch=self.batch)
        if not isinstance(self.kv_operand, bool):
            raise LayerError(
                f"layer '{shown(self.name)}': kv_operand must be true or false, "
                f"got {shown(self.kv_operand)}"
            )
        _counts_fit(self)

    @property
    def weight_shape(self) -> tuple[int, ...]:
        return ()

    @functools.cached_property
    def gemm(self) -> GemmView:
        return GemmView(groups=self.batch * self.heads, rows=self.m, cols=self.k, n_cols=self.n)

    @property
    def input_count(self) -> int:
        return self.batch * self.heads * (self.m * self.k + self.k * self.n)

    @property
    def output_count(self) -> int:
        return self.batch * self.heads * self.m * self.n

    @property
    def kv_input_count(self) -> int:
        """Input elements read from the KV cache: the second operand when
        ``kv_operand`` (batch x heads x k x n), else none."""
        return self.batch * self.heads * self.k * self.n if self.kv_operand else 0

    @property
    def kv_output_count(self) -> int:
        """Output elements written to the KV cache: none."""
        return 0

    @property
    def weight_count(self) -> int:
        return 0

    @property
    def macs(self) -> int:
        return self.gemm.macs

    def describe(self) -> str:
        return f"matmul {self.heads}x({self.m}x{self.k})@({self.k}x{self.n})"


Layer = Conv2d | Linear | MatMul
"""Any layer descriptor."""
