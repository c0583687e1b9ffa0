"""Row-stationary (RS) execution, after Eyeriss v1 (Chen et al., ISCA 2016; JSSC 2017).

A convolution is cut into 1-D row convolutions. One PE keeps filter rows in its
filter scratch pad (spad), slides an ifmap row through its ifmap spad and
accumulates an ofmap row in its psum spad. A *logical PE set* of ``R x e`` PEs
(``R`` filter rows, ``e`` ofmap rows) computes ``e`` ofmap rows of a 2-D
convolution: filter rows are reused across a PE row, ifmap rows diagonally and
psums accumulate vertically.

**Mapping parameters** (named as in JSSC 2017 Table III). In one *pass* each PE
holds ``p`` filters x ``q`` channels of one filter row (``p*q*S`` filter entries,
``q*S`` ifmap entries, ``p`` psums) and works on ``n`` images; the array holds
``r x t`` PE sets, ``r`` on different channels and ``t`` on different filters; the
global buffer (GLB) holds the ifmap rows of ``q*r`` channels and the psums of ``m``
filters (``n`` images, ``e`` rows). Filters go from DRAM straight into the spads:
the GLB holds ifmaps and psums only (Table III allocates it to those two).

**Loop nest** (outermost first, per group; groups run one after another):
images ``n`` at a time; ofmap rows ``e`` at a time; filters ``m`` at a time (their
psums stay in the GLB); channels ``q*r`` at a time (that ifmap chunk is filled into
the GLB from DRAM); filters ``p*t`` at a time: one pass, its filters loaded into the
spads. A pass takes ``p*q*S*F*n`` cycles (one MAC per PE per cycle); with
``filter_load_stalls`` the array also waits while the pass's filters arrive at the
DRAM bandwidth.

**Placement.** A set with ``e`` up to the array's columns takes ``R`` rows x ``e``
columns; a wider set is folded into ``ceil(e/cols)`` strips stacked vertically
(CONV2 of AlexNet: 5 x 27 on 10 x 14); ``floor(rows/strip rows) x
floor(cols/strip cols)`` sets fit and ``r*t`` may not exceed it. A filter taller
than the array or wider than the ifmap spad is cut into row chunks, processed like
extra channels. A layer without spatial extent (linear, attention product) is a
1 x 1 convolution of a 1 x 1 ifmap over ``n_cols`` images.

**Counts** (elements unless stated; one group, times the groups):

- DRAM: filters ``M*C*R*S`` once per (image block, row block) at their stored width;
  ifmaps once per filter block ``ceil(M/m)``, rows of overlapping row blocks again;
  ofmaps written once. Activations are run-length coded (:func:`rlc_bits`).
- GLB: ifmap fills as the DRAM reads (decoded); ifmap reads once per pass over
  filters, multicast to the ``t`` sets; psums written once per channel chunk and read
  back for all but the first; outputs read once to DRAM. Partial sums are kept at the
  activation width (16-bit psums in Eyeriss's GLB allocation).
- spads: per MAC slot one ifmap read and one psum read and write; a filter read per
  MAC done; filter writes: each filter entry loaded into the ``e`` PEs of its set row;
  ifmap writes: each PE's row (``q`` channels, ``n`` images) once per pass.
- between PEs (a ``network`` memory level): each output of a pass moves through
  ``R*r - 1`` PEs while it accumulates.

**Zeros.** Zero activations gate the filter spad read and the MAC (energy, not
cycles) when ``compute.zero_gating``; zero weights are not detected: a
non-structured mask runs as dense. Structured pruning shrinks the filters and
channels the passes cover.

**Search** (:func:`rs_mapping`): ``e`` in ``ceil(E/j)`` (j = 1..8) and the array
width; ``p`` in 1, 2, 3, 4, 6, 8, 12, 16, 24 and ``M``; ``q`` in 1, 2, 3, 4, 6, 8, 12
and ``C``; ``t`` in 1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128 and the sets that
fit, with ``r`` the most channel sets left; ``n`` in powers of two and ``N``; all capped by
the layer and the spads. For each, ``m`` is the largest multiple of ``p*t`` (up to all
filters) whose psums fit in the GLB beside the ifmap chunk: a larger ``m`` only saves
ifmap re-reads. Mappings whose GLB share does not fit are dropped.
The mapping minimises the energy of the mapping-dependent counts (DRAM, GLB, spad
fills, PE-to-PE moves, static power over the latency), then cycles; vectorised with
NumPy and memoised per shape.
"""

from simulator.dataflows.rowstationary.engine import rs_hardware, rs_shape, run_rowstationary
from simulator.dataflows.rowstationary.rlc import rlc_bits, rlc_pairs
from simulator.dataflows.rowstationary.search import (
    RSHardware,
    RSMapping,
    RSShape,
    evaluate_mapping,
    rs_mapping,
)

__all__ = [
    "RSHardware",
    "RSMapping",
    "RSShape",
    "evaluate_mapping",
    "rlc_bits",
    "rlc_pairs",
    "rs_hardware",
    "rs_mapping",
    "rs_shape",
    "run_rowstationary",
]
