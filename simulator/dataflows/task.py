"""What an execution model is asked to run: one layer, its weight mask, a variant."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from simulator.errors import ConfigError, FormatError
from simulator.formats import FormatParams, MaskProfile, group_scale_bits
from simulator.layers import GemmView, Layer
from simulator.settings import VARIANTS, Settings, density_problems

__all__ = ["VARIANTS", "LayerTask"]


def _check(
    weight_bits,
    index_bits,
    activation_bits,
    activation_density,
    seed,
    variant,
    output_density,
    kv_bits=None,
) -> None:
    """:class:`Settings`' checks and the output density's."""
    Settings(
        weight_bits=weight_bits,
        index_bits=index_bits,
        activation_bits=activation_bits,
        activation_density=activation_density,
        seed=seed,
        variant=variant,
        kv_bits=kv_bits,
    )
    problems = density_problems("output_density", output_density)
    if problems:
        raise ConfigError("settings", problems)


_checked = functools.lru_cache(maxsize=4096, typed=True)(_check)
""":func:`_check`, once per combination of values that passes it (a failure raises
every time and is not kept); keyed with the values' types, so that ``True`` is not
taken for a checked ``1``."""


@dataclass(frozen=True, kw_only=True)
class LayerTask:
    """A layer with its (possibly pruned) weight mask, precisions and the activation
    density seen by engines that skip zero activations (``activation_mask`` overrides
    it: a bool array of the layer's ``cols`` x ``n_cols`` im2col inputs, per group
    shared)."""

    layer: Layer
    profile: MaskProfile
    variant: str
    weight_bits: int
    index_bits: int
    activation_bits: int
    activation_density: float = 1.0
    activation_mask: np.ndarray | None = None
    seed: int = 0
    output_density: float | None = None
    """Nonzero fraction of the outputs as written to DRAM by engines that code them
    (row stationary); None: ``activation_density``."""
    weight_room_bits: tuple[float, ...] | None = None
    """Engines that keep weights on chip across inferences: the weight SRAM still free
    on each PE when this layer's turn comes (earlier layers hold the rest); None: all
    of it."""
    kv_bits: int | None = None
    """Bits per KV-cache element: the cache operand a matmul reads and the outputs a
    k/v projection writes (:attr:`kv_input_count`, :attr:`kv_output_count`); None:
    ``activation_bits``."""
    group_size: int | None = None
    """Group-wise weight quantization (GPTQ/AWQ/Marlin style): ``group_size`` weights
    of a row along the reduction axis share one ``scale_bits`` scale and, when
    ``zero_point_bits`` > 0, one zero point, stored per output row of the dense matrix
    whatever the sparsity (:func:`simulator.formats.group_scale_bits`). Engines that
    count them move them with the weights' metadata. None or 0: no groups."""
    scale_bits: int = 16
    """Bits of one group scale (``group_size`` set)."""
    zero_point_bits: int = 0
    """Bits of one group zero point (0: symmetric, none)."""

    def __post_init__(self) -> None:
        """The checks of :class:`Settings`: no engine sees a bad width, density or variant."""
        values = (
            self.weight_bits,
            self.index_bits,
            self.activation_bits,
            self.activation_density,
            self.seed,
            self.variant,
            self.output_density,
            self.kv_bits,
        )
        try:
            try:
                hash(values)
            except TypeError:  # not a value that can be kept: checked as it is
                _check(*values)
            else:
                _checked(*values)
        except ConfigError as e:
            raise ConfigError(f"layer {self.layer.name!r}", e.problems) from None
        if self.group_size:
            try:
                self.quantization()
            except FormatError as e:
                raise ConfigError(f"layer {self.layer.name!r}", str(e)) from None

    def quantization(self) -> FormatParams | None:
        """The layer's group-wise quantization as format parameters (None without
        groups); raises FormatError on a bad group size or width."""
        if not self.group_size:
            return None
        return FormatParams(
            weight_bits=self.weight_bits,
            group_size=self.group_size,
            scale_bits=self.scale_bits,
            zero_point_bits=self.zero_point_bits,
        )

    def group_scales_bits(self, gemm: GemmView | None = None) -> int:
        """Bits of the group scales and zero points of ``gemm``'s dense weights (the
        layer's GEMM when None): ceil(cols / group_size) per row; 0 without groups."""
        q = self.quantization()
        if q is None:
            return 0
        g = self.layer.gemm if gemm is None else gemm
        return group_scale_bits(g.groups, g.rows, g.cols, q)

    @property
    def gemm(self) -> GemmView:
        return self.layer.gemm

    @property
    def input_count(self) -> int:
        """Input activations the layer reads: all of them, or for structured pruning
        only those of surviving groups and GEMM columns (input channels), pro rata."""
        g, e = self.layer.gemm, self.effective_gemm()
        return self.layer.input_count * e.groups * e.cols // (g.groups * g.cols)

    @property
    def output_count(self) -> int:
        """Output activations the layer writes: pro rata of surviving groups and rows
        (filters) for structured pruning. A layer's removed filters shrink the next
        layer's inputs only through its mask (cascaded filter pruning zeroes the input
        columns they fed, see :mod:`simulator.graph`)."""
        g, e = self.layer.gemm, self.effective_gemm()
        return self.layer.output_count * e.groups * e.rows // (g.groups * g.rows)

    @property
    def kv_width_bits(self) -> int:
        """Bits per KV-cache element (``kv_bits``, else ``activation_bits``)."""
        return self.activation_bits if self.kv_bits is None else self.kv_bits

    @property
    def kv_input_count(self) -> int:
        """Input elements read from the KV cache: the cache operand of an attention
        product (never pruned, so not scaled)."""
        return self.layer.kv_input_count

    @property
    def kv_output_count(self) -> int:
        """Output elements written to the KV cache, pro rata of surviving rows as
        :attr:`output_count`."""
        kv = self.layer.kv_output_count
        if not kv:
            return 0
        g, e = self.layer.gemm, self.effective_gemm()
        return kv * e.groups * e.rows // (g.groups * g.rows)

    @property
    def input_bits(self) -> int:
        """Bits of the inputs the layer reads: the KV-cache operand at
        :attr:`kv_width_bits`, the rest at ``activation_bits``."""
        n, kv = self.input_count, self.kv_input_count
        if not kv:
            return n * self.activation_bits
        return (n - kv) * self.activation_bits + kv * self.kv_width_bits

    @property
    def output_bits(self) -> int:
        """Bits of the outputs the layer writes: those bound for the KV cache at
        :attr:`kv_width_bits`, the rest at ``activation_bits``."""
        n, kv = self.output_count, self.kv_output_count
        if not kv:
            return n * self.activation_bits
        return (n - kv) * self.activation_bits + kv * self.kv_width_bits

    @property
    def input_width_bits(self) -> float:
        """Mean bits per input element, weighted by bits (:attr:`input_bits` /
        :attr:`input_count`): the one element width of an engine that tiles inputs
        at a single width. ``activation_bits`` itself when no input is cached."""
        if not self.kv_input_count:
            return self.activation_bits
        return self.input_bits / max(1, self.input_count)

    @property
    def output_width_bits(self) -> float:
        """Mean bits per output element (:attr:`output_bits` / :attr:`output_count`);
        ``activation_bits`` itself when no output is cached."""
        if not self.kv_output_count:
            return self.activation_bits
        return self.output_bits / max(1, self.output_count)

    @property
    def kv_read_bits(self) -> int:
        """Bits the layer reads from the KV cache (elements x :attr:`kv_width_bits`)."""
        return self.kv_input_count * self.kv_width_bits

    @property
    def kv_write_bits(self) -> int:
        """Bits the layer writes to the KV cache (elements x :attr:`kv_width_bits`)."""
        return self.kv_output_count * self.kv_width_bits

    def effective_gemm(self) -> GemmView:
        """The dense problem that remains: for structured pruning, the groups that keep
        anything, each with the most surviving rows and columns of any group (groups of
        a grouped or depthwise conv pruned away entirely drop out); the full GEMM
        otherwise. Computed once per task."""
        known = self.__dict__.get("_effective_gemm")
        if known is not None:
            return known
        g = self.layer.gemm
        if self.variant != "structured":
            return g
        kept_rows = self.profile.kept_rows()
        alive = kept_rows > 0
        if not alive.any():
            e = GemmView(groups=1, rows=1, cols=1, n_cols=g.n_cols)
        else:
            e = GemmView(
                groups=int(alive.sum()),
                rows=int(kept_rows[alive].max()),
                cols=max(int(self.profile.kept_cols()[alive].max()), 1),
                n_cols=g.n_cols,
            )
        object.__setattr__(self, "_effective_gemm", e)  # a frozen task's memo
        return e
