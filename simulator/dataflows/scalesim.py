"""SCALE-Sim v3's memory model (``compute.dram_model: scalesim``): DRAM words per
operand as its double-buffered SRAMs count them in ``InterfaceBandwidth: CALC`` mode.

SCALE-Sim counts words of one byte (``word_size = 1`` in ``single_layer_sim.py``), so
an SRAM of ``n`` bytes holds ``n`` words whatever the operand width. Its read buffers
(``read_buffer_estimate_bw.py``) never stall: they keep the distinct addresses the
array demanded in 100 sets of ``size // 100`` words and, once the active half (50 sets)
is full, prefetch and start afresh, so a word is read from DRAM once per such epoch in
which it is demanded. Its write buffer (``write_buffer.py``) drains half the ofmap SRAM
at a time in lines of the array's width. :mod:`simulator.kernels` replays both over
SCALE-Sim's own demand order (``scalesim_read_words``, ``scalesim_ofmap_writes``);
reproduced exactly for the 177 layers of ``tests/data/scalesim_v3_32x32.csv`` and the
runs in ``tests/data/scalesim/``.

A layer SCALE-Sim cannot describe is mapped as closely as it allows, and said so
here: a GEMM without convolution geometry (linear, matmul, or a convolution whose
structured pruning left a reduction that is not whole channels, or a dilated one) is
a 1x1 convolution on a 1 x outputs ifmap; groups and batch repeat the layer
(SCALE-Sim has neither); padding widens the ifmap (as SCALE-Sim's topologies do: it
stores padded ifmaps).
"""

from __future__ import annotations

import functools

import numpy as np

from simulator.dataflows.task import LayerTask
from simulator.hwconfig import Platform
from simulator.kernels import scalesim_ofmap_writes, scalesim_read_words
from simulator.layers import Conv2d, GemmView

FLOWS = {"ws": 0, "os": 1, "is": 2}


def sram_bytes(platform: Platform) -> tuple[int, int, int]:
    """(ifmap, filter, ofmap) SRAM bytes: the profile's, or its sram level in thirds."""
    given = platform.scalesim_sram_bytes
    if given:
        return int(given["ifmap"]), int(given["filter"]), int(given["ofmap"])
    sram = next((lv for lv in platform.memory if lv.kind == "sram"), None)
    third = int(sram.size_bytes // 3) if sram is not None else 0
    return third, third, third


def geometry(task: LayerTask, g: GemmView) -> tuple[np.ndarray, int]:
    """SCALE-Sim's layer description (``geom`` of the kernels) for one group, and how
    many times SCALE-Sim would run it (groups x batch)."""
    layer = task.layer
    if isinstance(layer, Conv2d):
        fh, fw = layer.kernel_hw
        if layer.dilation_hw == (1, 1) and g.cols % (fh * fw) == 0:
            ph, pw = layer.padding_hw
            h, w = layer.scalesim_ifmap_hw or (
                layer.input_hw[0] + 2 * ph,
                layer.input_hw[1] + 2 * pw,
            )
            eh, ew = layer.output_hw
            sh, sw = layer.stride_hw
            c = g.cols // (fh * fw)
            geom = (h, w, c, fh, fw, sh, g.rows, eh, ew, sw)
            return np.array(geom, dtype=np.int64), g.groups * layer.batch
    geom = (1, g.n_cols, g.cols, 1, 1, 1, g.rows, 1, g.n_cols, 1)
    return np.array(geom, dtype=np.int64), g.groups


def dram_words(
    task: LayerTask, g: GemmView, platform: Platform, rows: int, cols: int, dataflow: str
) -> tuple[int, int, int]:
    """(ifmap reads, filter reads, ofmap writes) in SCALE-Sim's words, whole layer."""
    geom, repeat = geometry(task, g)
    ins, wts, outs = _replay(
        tuple(int(x) for x in geom), rows, cols, FLOWS[dataflow], sram_bytes(platform)
    )
    if outs < 0:  # the kernel's line ring overflowed: never seen, but never silent
        raise RuntimeError(f"SCALE-Sim write-buffer replay overflowed on {task.layer.name}")
    return ins * repeat, wts * repeat, outs * repeat


@functools.lru_cache(maxsize=4096)
def _replay(
    geom: tuple[int, ...], rows: int, cols: int, flow: int, sizes: tuple[int, int, int]
) -> tuple[int, int, int]:
    """The kernels' counts of one layer description (memoised: a dense and a
    non-structured variant describe the same layer to SCALE-Sim)."""
    g = np.array(geom, dtype=np.int64)
    i_bytes, f_bytes, o_bytes = sizes
    ins = scalesim_read_words(flow, 0, g, rows, cols, 50 * (i_bytes // 100))
    wts = scalesim_read_words(flow, 1, g, rows, cols, 50 * (f_bytes // 100))
    outs, _ = scalesim_ofmap_writes(flow, g, rows, cols, o_bytes, cols)
    return int(ins), int(wts), int(outs)
