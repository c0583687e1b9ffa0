"""ONNX models: weights from initializers, geometry from the graph.

Needs the optional ``onnx`` package (``pip install 'prunesim[onnx]'``). Every
``Conv`` (2-D), ``Gemm`` and ``MatMul`` whose weight input is an initializer (or a
``Constant``, possibly behind ``Identity``/``Cast``) is a prunable layer; a weight
computed as ``Mul(mask, weight)`` of two initializers gives the mask explicitly. A
``MatMul`` of two activations is an attention-style product without weights.

Geometry comes from ONNX shape inference after the graph inputs are pinned: the
user's input shape (``(C, H, W)`` or the full shape with batch) fixes their
dimensions, remaining symbolic dimensions are taken as 1 (with a warning). Where an
input's shape stays unknown, linear layers fall back to the weight's shape.
External data files are not read.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from simulator.checkpoints.naming import Param
from simulator.checkpoints.source import (
    MAX_NDIM,
    NAME_LIMIT,
    TensorInfo,
    TensorSource,
    check_regular,
    fail,
    quoted,
    unique_name,
)
from simulator.errors import CheckpointError, LayerError, shown
from simulator.graph import INPUT, Graph, Join, build_graph
from simulator.layers import Conv2d, Layer, Linear, MatMul

_PASS_THROUGH = ("Identity", "Cast")


def _import_onnx(path: str) -> Any:
    try:
        import onnx
    except ImportError:
        raise fail(
            path, "reading ONNX files needs the optional package onnx: pip install 'prunesim[onnx]'"
        ) from None
    return onnx


def _attr(node: Any, name: str, default: Any) -> Any:
    for a in node.attribute:
        if a.name == name:
            if a.type == 2:  # INT
                return int(a.i)
            if a.type == 7:  # INTS
                return [int(x) for x in a.ints]
            if a.type == 3:  # STRING
                return a.s.decode("utf-8", "replace")
            if a.type == 1:
                return float(a.f)
    return default


def _count(t: Any) -> int:
    """Values a TensorProto holds (raw bytes or typed fields)."""
    for field in ("float_data", "int32_data", "int64_data", "double_data", "uint64_data"):
        n = len(getattr(t, field))
        if n:
            return n
    return -1


class OnnxSource(TensorSource):
    """Initializers of an ONNX model as tensors; :meth:`params` finds the layers."""

    format = "onnx"

    def __init__(self, path: str | Path, input_shape: tuple[int, ...] | None = None):
        super().__init__(path)
        self._onnx = onnx = _import_onnx(self.path)
        try:
            check_regular(self.path)
            self.model = onnx.load(self.path, load_external_data=False)
        except CheckpointError:
            raise
        except Exception as e:
            raise fail(self.path, f"not a readable ONNX model ({type(e).__name__}: {e})") from None
        self.input_shape = input_shape
        self._protos: dict[str, Any] = {}
        graph = self.model.graph
        for t in graph.initializer:
            self._add(t.name, t)
        for node in graph.node:
            if node.op_type == "Constant" and len(node.output) == 1:
                for a in node.attribute:
                    if a.name == "value" and a.type == 4:  # TENSOR
                        self._add(node.output[0], a.t)
        self._shapes: dict[str, tuple[int, ...] | None] | None = None
        self.graph: Graph | None = None
        """The graph between the layers, after :meth:`params` with geometry."""

    def _add(self, name: str, t: Any) -> None:
        dims = tuple(int(d) for d in t.dims)
        if len(dims) > MAX_NDIM or any(d < 0 for d in dims):
            raise fail(self.path, f"impossible dims {dims}", name)
        try:
            dtype = np.dtype(self._onnx.helper.tensor_dtype_to_np_dtype(t.data_type))
        except Exception:
            dtype = None
        dname = str(dtype) if dtype is not None else f"ONNX type {t.data_type}"
        if t.data_location == 1:  # EXTERNAL
            dtype, dname = None, "external data (not read)"
        elif dtype is not None and dtype.kind not in "biufc":
            dtype = None
        self.tensors[name] = TensorInfo(name=name, shape=dims, dtype=dtype, dtype_name=dname)
        self._protos[name] = t

    def _load(self, info: TensorInfo) -> np.ndarray:
        t = self._protos[info.name]
        numel = math.prod(info.shape)
        raw = len(t.raw_data)
        if raw:
            if raw != numel * info.dtype.itemsize:
                raise fail(
                    self.path,
                    f"{raw} bytes of data for shape {info.shape} of {info.dtype}",
                    info.name,
                )
        elif _count(t) not in (numel, 2 * numel if info.dtype.kind == "c" else numel):
            if numel:
                raise fail(self.path, f"{_count(t)} values for shape {info.shape}", info.name)
        arr = self._onnx.numpy_helper.to_array(t)
        if arr.shape != info.shape:
            raise fail(self.path, f"data of shape {arr.shape}, dims {info.shape}", info.name)
        if not arr.dtype.isnative:
            arr = arr.astype(arr.dtype.newbyteorder("="))
        return np.array(arr, copy=True)

    # -- shapes --------------------------------------------------------------------

    def _pin_inputs(self) -> None:
        graph = self.model.graph
        inits = set(self._protos)
        given = self.input_shape
        for vi in graph.input:
            if vi.name in inits or not vi.type.HasField("tensor_type"):
                continue
            dims = vi.type.tensor_type.shape.dim
            if given is not None and len(given) in (len(dims), len(dims) - 1):
                values = given if len(given) == len(dims) else (1, *given)
                for d, v in zip(dims, values, strict=True):
                    if d.HasField("dim_value") and d.dim_value not in (v, 0):
                        raise fail(
                            self.path,
                            f"input {quoted(vi.name)} has fixed shape "
                            f"{[x.dim_value or x.dim_param for x in dims]}, "
                            f"the given input shape {tuple(given)} does not fit it",
                        )
                    d.dim_value = int(v)
                continue
            for d in dims:
                if not d.HasField("dim_value") or d.dim_value <= 0:
                    what = d.dim_param or "?"
                    d.dim_value = 1
                    self.warnings.append(
                        f"dimension {quoted(what)} of input {quoted(vi.name)} taken as 1 "
                        "(give an input shape to pin it)"
                    )

    def shapes(self) -> dict[str, tuple[int, ...] | None]:
        """Inferred shapes of the graph's values (None where unknown)."""
        if self._shapes is not None:
            return self._shapes
        self._pin_inputs()
        model = self.model
        try:
            model = self._onnx.shape_inference.infer_shapes(
                model, strict_mode=False, data_prop=True
            )
        except Exception as e:
            self.warnings.append(f"ONNX shape inference failed ({type(e).__name__}: {e})")
        shapes: dict[str, tuple[int, ...] | None] = {}
        g = model.graph
        for vi in [*g.input, *g.value_info, *g.output]:
            tt = vi.type.tensor_type if vi.type.HasField("tensor_type") else None
            if tt is None or not tt.HasField("shape"):
                shapes[vi.name] = None
                continue
            dims = [
                d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None
                for d in tt.shape.dim
            ]
            shapes[vi.name] = tuple(dims) if None not in dims else None
        for name, info in self.tensors.items():
            shapes[name] = info.shape
        self._shapes = shapes
        return shapes

    # -- layers ---------------------------------------------------------------------

    def _resolve(self, name: str, producers: dict[str, Any], depth: int = 0) -> tuple | None:
        """Where a node input comes from: ("init", name), ("mul", a, b) or None."""
        if depth > 8:
            return None
        if name in self._protos:
            return ("init", name)
        node = producers.get(name)
        if node is None:
            return None
        if node.op_type in _PASS_THROUGH and node.input:
            return self._resolve(node.input[0], producers, depth + 1)
        if node.op_type == "Mul" and len(node.input) == 2:
            a = self._resolve(node.input[0], producers, depth + 1)
            b = self._resolve(node.input[1], producers, depth + 1)
            if a and b and a[0] == "init" and b[0] == "init":
                return ("mul", a[1], b[1])
        return None

    def params(self, *, geometry: bool) -> tuple[list[Param], list[Layer], list[tuple[str, str]]]:
        """The weights of Conv/Gemm/MatMul nodes, in graph order; with ``geometry``,
        also every layer (weight-less MatMuls included) and the layers' shapes, and
        :attr:`graph`: which node each layer reads (see :class:`_GraphTracer`).

        Returns (params, layers, skipped tensors)."""
        graph = self.model.graph
        producers = {out: node for node in graph.node for out in node.output}
        shapes = self.shapes() if geometry else {}
        params: list[Param] = []
        layers: list[Layer] = []
        used: set[str] = set()
        names: set[str] = set()
        counts: dict[str, int] = {}
        made: dict[int, Layer] = {}  # graph node index -> the layer it made
        for i, node in enumerate(graph.node):
            op = node.op_type
            if op not in ("Conv", "Gemm", "MatMul") or len(node.input) < 2:
                continue
            widx = 1
            if op == "Gemm" and _attr(node, "transA", 0):
                self.warnings.append(f"Gemm {quoted(node.name)} with transA=1 is not modelled")
                continue
            src = self._resolve(node.input[widx], producers)
            label = _node_label(node, i)
            if src is None:
                if op == "MatMul" and geometry and self._resolve(node.input[0], producers) is None:
                    name = unique_name(_module_name("", node, i), names, counts)
                    layer = self._matmul(node, name, shapes)
                    if layer is not None:
                        layers.append(layer)
                        made[i] = layer
                elif op != "MatMul":
                    self.warnings.append(
                        f"{op} {quoted(label)}: weight {quoted(node.input[widx])} is not an "
                        "initializer (computed or quantized weights are not read)"
                    )
                continue
            if src[0] == "init":
                weight, mask, source = src[1], None, "exact zeros"
            else:
                a, b = src[1], src[2]
                weight, mask = (a, b) if "mask" in b.lower() or "mask" not in a.lower() else (b, a)
                source = "onnx mul"
            info = self.tensors[weight]
            wshape = info.shape
            transpose = False
            if op == "Conv":
                if len(wshape) != 4:
                    self.warnings.append(
                        f"Conv {quoted(label)} with a {len(wshape) - 2}-D kernel is not modelled"
                    )
                    continue
            elif len(wshape) != 2:
                self.warnings.append(f"{op} {quoted(label)}: weight {quoted(weight)} is not 2-D")
                continue
            elif op == "MatMul" or not _attr(node, "transB", 0):
                transpose = True
                wshape = (wshape[1], wshape[0])
            module = unique_name(_module_name(weight, node, i), names, counts)
            layer = None
            if geometry:
                layer = self._layer(op, node, module, wshape, shapes)
                layers.append(layer)
                made[i] = layer
            params.append(
                Param(
                    key=module + ".weight",
                    weight=weight,
                    mask=mask,
                    mask_source=source,
                    shape=wshape,
                    transpose=transpose,
                    layer=layer,
                    is_float=info.is_float,
                )
            )
            used.update((weight, mask) if mask else (weight,))
        skipped = [
            (
                shown(n, NAME_LIMIT),
                "bias or normalization parameter (1-D)"
                if len(t.shape) <= 1
                else "not the weight of a Conv, Gemm or MatMul",
            )
            for n, t in self.tensors.items()
            if n not in used
        ]
        if geometry:
            self.graph = self._graph(made, layers, producers)
        return params, layers, skipped

    def _graph(
        self, made: dict[int, Layer], layers: list[Layer], producers: dict[str, Any]
    ) -> Graph | None:
        """The graph between ``layers`` (see :func:`trace_graph`), or ``None`` with a
        warning where it does not hold together."""
        sources, joins = trace_graph(
            self.model.graph.node,
            made,
            lambda v: self._resolve(v, producers) is not None,
            {layer.name for layer in layers},
        )
        graph, problems = build_graph(layers, sources, joins)
        if problems:
            self.warnings.append(
                f"the graph between the layers is not used ({shown(problems[0], 200)}"
                f"{f' and {len(problems) - 1} more' if len(problems) > 1 else ''}): "
                "filter pruning stays per layer"
            )
        return graph

    def _layer(self, op: str, node: Any, name: str, wshape: tuple[int, ...], shapes: dict) -> Layer:
        x = shapes.get(node.input[0])
        try:
            if op == "Conv":
                return self._conv(node, name, wshape, x)
            out_f, in_f = wshape
            if x is None or len(x) < 1:
                self.warnings.append(f"input size of {quoted(name)} unknown: one token assumed")
                return Linear(name=name, in_features=in_f, out_features=out_f)
            lead = x[:-1] if op == "MatMul" else x[:1]  # (batch, tokens...) of the input
            batch = lead[0] if lead else 1
            tokens = math.prod(lead[1:])
            return Linear(
                name=name, in_features=in_f, out_features=out_f, tokens=tokens, batch=batch
            )
        except LayerError as e:
            raise fail(self.path, f"cannot make layer {quoted(name)} ({e})") from None

    def _conv(self, node: Any, name: str, wshape: tuple[int, ...], x: tuple | None) -> Conv2d:
        k, cg, r, s = wshape
        if x is None or len(x) != 4:
            raise fail(
                self.path,
                f"input size of Conv {quoted(name)} unknown after shape inference: "
                "pass an input shape (C, H, W)",
            )
        n, c, h, w = x
        groups = _attr(node, "group", 1)
        strides = _attr(node, "strides", [1, 1])
        dil = _attr(node, "dilations", [1, 1])
        pads = _attr(node, "pads", [0, 0, 0, 0])
        auto = _attr(node, "auto_pad", "NOTSET")
        if len(strides) != 2 or len(dil) != 2 or len(pads) != 4:
            raise fail(self.path, f"Conv {quoted(name)}: malformed strides, dilations or pads")
        if auto in ("SAME_UPPER", "SAME_LOWER"):
            pads = []
            for size, kk, st, d in zip((h, w), (r, s), strides, dil, strict=True):
                total = max((-(-size // st) - 1) * st + d * (kk - 1) + 1 - size, 0)
                pads.append(total)
            totals = pads
        elif auto == "VALID":
            totals = [0, 0]
        else:
            totals = [pads[0] + pads[2], pads[1] + pads[3]]
        pad = [t // 2 for t in totals]
        extra = [t % 2 for t in totals]
        if any(extra):
            self.warnings.append(
                f"Conv {quoted(name)}: asymmetric padding modelled as symmetric with the input "
                "one larger (same output size)"
            )
        if c != cg * groups:
            raise fail(
                self.path,
                f"Conv {quoted(name)}: input has {c} channels, weight expects {cg * groups}",
            )
        return Conv2d(
            name=name,
            in_channels=c,
            out_channels=k,
            kernel_hw=(r, s),
            input_hw=(h + extra[0], w + extra[1]),
            stride_hw=(strides[0], strides[1]),
            padding_hw=(pad[0], pad[1]),
            dilation_hw=(dil[0], dil[1]),
            groups=groups,
            batch=n,
        )

    def _matmul(self, node: Any, name: str, shapes: dict) -> Layer | None:
        a, b = shapes.get(node.input[0]), shapes.get(node.input[1])
        if a is None or b is None or len(a) < 2 or len(b) < 2:
            self.warnings.append(
                f"MatMul {quoted(name)} between activations of unknown shape: left out"
            )
            return None
        m, k = a[-2:]
        n = b[-1]
        lead = a[:-2]
        try:
            return MatMul(
                name=name,
                m=m,
                k=k,
                n=n,
                heads=math.prod(lead[1:]) if len(lead) > 1 else 1,
                batch=lead[0] if lead else 1,
            )
        except LayerError as e:
            raise fail(self.path, f"cannot make layer {quoted(name)} ({e})") from None


def _node_label(node: Any, i: int) -> str:
    return node.name or f"{node.op_type}_{i}"


def _module_name(weight: str, node: Any, i: int) -> str:
    """A layer name: the weight's module (``conv1`` of ``conv1.weight``), else the node's
    path (``/encoder/layer.0/attention/self/query/MatMul`` ->
    ``encoder.layer.0.attention.self.query``)."""
    return shown(_raw_module_name(weight, node, i), NAME_LIMIT)


def _raw_module_name(weight: str, node: Any, i: int) -> str:
    if weight.endswith(".weight"):
        return weight[: -len(".weight")]
    parts = [p for p in node.name.strip("/").split("/") if p]
    if parts and parts[-1].split("_")[0] == node.op_type:
        parts = parts[:-1]
    if parts:
        return ".".join(parts)
    return weight or f"{node.op_type}_{i}"


CHANNEL_WISE = frozenset(
    {
        "Identity",
        "Cast",
        "Relu",
        "LeakyRelu",
        "PRelu",
        "Clip",
        "Sigmoid",
        "HardSigmoid",
        "HardSwish",
        "Tanh",
        "Erf",
        "Gelu",
        "Elu",
        "Selu",
        "Softplus",
        "Dropout",
        "BatchNormalization",
        "InstanceNormalization",
        "LayerNormalization",
        "MaxPool",
        "AveragePool",
        "GlobalAveragePool",
        "GlobalMaxPool",
        "Flatten",
        "Reshape",
        "Squeeze",
        "Unsqueeze",
        "Pad",
    }
)
"""Operations that keep channels apart (one output channel per input channel, in
order): a removed channel stays removed through them."""


def trace_graph(
    nodes: Any,
    made: dict[int, Layer],
    is_constant: Any,
    taken: set[str],
) -> tuple[dict[str, tuple[str, ...]], list[Join]]:
    """Which node each layer reads, and the joins, from ONNX ``nodes`` (topologically
    sorted, as ONNX requires) where ``made[i]`` is the layer node ``i`` made.

    One pass: each value is traced to the layer or join that produced it, through
    :data:`CHANNEL_WISE` operations and ``Add``/``Sub``/``Mul``/``Div`` with a constant
    (a bias, a scale); an ``Add``/``Sum`` of activations is a join ``add``, a
    ``Concat`` along axis 1 a join ``concat``. Any other operation (a transpose, a
    product of activations, a split) is a barrier: what it outputs counts as the
    network's input, from which nothing is removed."""
    node_of: dict[str, str] = {}
    sources: dict[str, tuple[str, ...]] = {}
    joins: list[Join] = []
    names = set(taken)

    def traced(values: Any) -> tuple[str, ...]:
        return tuple(node_of.get(v, INPUT) for v in values if v)

    for i, node in enumerate(nodes):
        op = node.op_type
        outs = [o for o in node.output if o]
        if i in made:
            layer = made[i]
            data = node.input[:2] if not layer.prunable else node.input[:1]
            sources[layer.name] = traced(data)
            node_of.update({o: layer.name for o in outs[:1]})
            continue
        live = [v for v in node.input if v and not is_constant(v)]
        if op in CHANNEL_WISE and node.input:
            found = traced(node.input[:1])
        elif op in ("Add", "Sub", "Mul", "Div") and len(live) == 1:
            found = traced(live)
        elif (op in ("Add", "Sum") and len(live) >= 2) or (
            op == "Concat" and _attr(node, "axis", 0) == 1 and len(live) >= 2
        ):
            name = _free_name(node.name or f"{op}_{i}", names)
            joins.append(
                Join(name=name, op="concat" if op == "Concat" else "add", inputs=traced(live))
            )
            found = (name,)
        else:
            found = (INPUT,)
        node_of.update({o: found[0] for o in outs[:1]} if found else {})
    return sources, joins


def _free_name(wanted: str, names: set[str]) -> str:
    """``wanted`` (shortened, dots for slashes), or with a number where it is taken."""
    base = shown(wanted.strip("/").replace("/", "."), NAME_LIMIT) or "join"
    name, n = base, 1
    while name in names or name == INPUT:
        n += 1
        name = f"{base}_{n}"
    names.add(name)
    return name
