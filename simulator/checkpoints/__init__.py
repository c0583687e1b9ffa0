"""Checkpoint readers: the prunable layers of a pruned model and their real masks.

``read_checkpoint(path)`` reads a PyTorch ``.pt``/``.pth`` state_dict (zip or legacy
layout, without torch and without running pickled code), a safetensors file, a NumPy
``.npz`` or an ONNX model (with the optional ``onnx`` package), finds every prunable
layer and its mask, and returns a :class:`Checkpoint`. The format is told from the
file's first bytes (ONNX, which has no magic number, from the ``.onnx`` suffix).

Masks come from the file where it has them (``torch.nn.utils.prune``'s ``X_mask``,
NVIDIA ASP's ``__X_mma_mask``, an ONNX ``Mul(mask, weight)``), else from the
weight's exact zeros, or from ``|w| > threshold``. Layers are matched to ``network``
by name (see :mod:`simulator.checkpoints.naming`), or, without a network, a network
is derived from the file (ONNX: full geometry; a state_dict: conv/linear shapes, with
an input shape for their geometry -- without one, ``geometry_assumed`` says that MACs
are not known).

Hostile files: nothing in a file is ever run (see :mod:`.torchfile`); only regular
files are opened; sizes, counts and pickle memo indices are checked before anything
is allocated for them; a tensor stored with zero strides stays a strided view; names
from the file are escaped in every message, and each message is one line.

Reading streams one layer at a time: :func:`open_checkpoint` gives a reader whose
:meth:`CheckpointReader.layers` yields layer after layer, reading only that layer's
tensors; :func:`read_checkpoint` keeps them all. Anything wrong with a file raises
:class:`~simulator.errors.CheckpointError` naming the file and the tensor.
"""

from simulator.checkpoints.reader import (
    CheckpointReader,
    open_checkpoint,
    open_source,
    read_checkpoint,
)
from simulator.checkpoints.result import FORMATS, Checkpoint, CheckpointLayer
from simulator.checkpoints.safetensors_file import write_safetensors
from simulator.checkpoints.structure import (
    MaskVariant,
    detect_structure,
    structure_variant,
)
from simulator.errors import CheckpointError

__all__ = [
    "FORMATS",
    "Checkpoint",
    "CheckpointError",
    "CheckpointLayer",
    "CheckpointReader",
    "MaskVariant",
    "detect_structure",
    "open_checkpoint",
    "open_source",
    "read_checkpoint",
    "structure_variant",
    "write_safetensors",
]
