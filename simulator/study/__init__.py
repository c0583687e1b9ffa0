"""The study of Ma et al. (arXiv:1907.02124): is non-structured pruning beneficial on
any platform, once weights are quantized?

For every network and platform, at equal weight bits:

- **storage break-even**: the non-structured rate (relative-index CSR, fillers and
  pointers counted) whose storage equals structured pruning at each structured
  rate, per layer and network, for each weight and index width;
- **compute break-even**: the pruning rate at which non-structured execution first
  matches dense, in latency and in energy, per layer and network, found on a grid
  of rates over masks of the real layer shapes ("never" when it does not within
  the grid) and refined by log-linear interpolation between grid points;
- **structured versus non-structured** at each network's rate (Ma et al.'s
  non-structured rates where published): the structured rate at which structured
  pruning matches it on each platform;
- **at equal accuracy**: non-structured pruning at its rate against structured
  pruning at the rate a published work reached without accuracy loss
  (``accuracy_rates.yaml``, :mod:`.accuracy`), read off the structured curve;
- a **verdict** per network and platform, naming the engines behind each result;
  a win counts only beyond a stated margin (:func:`.verdict.decide`, applied when
  the verdict is derived, so finished parts serve any margin).

Mask statistics are computed once per network and reused for every platform and
bit width. Each network is one unit of work: its tables are written under
``out/parts/NETWORK-HASH/CONFIG/`` with a manifest when it finishes (see
:mod:`simulator.studyparts`), so an interrupted study resumes where it stopped.

:mod:`.config` says what is compared, :mod:`.compare` makes the tables of one
network, :mod:`.verdict` holds the verdict's rules, :mod:`.accuracy` the published
structured rates, :mod:`.runner` runs networks in worker processes and keeps their
parts.
"""

from simulator.study.compare import TABLES, TOLERANCE, first_crossing, study_network
from simulator.study.config import (
    DEFAULT_NETWORKS,
    PAPER_RATES,
    StudyConfig,
    compute_weight_bits,
    verdict_weight_bits,
)
from simulator.study.runner import StudyResult, check_out_dir, file_name, real_masks, run_study

__all__ = [
    "DEFAULT_NETWORKS",
    "PAPER_RATES",
    "TABLES",
    "TOLERANCE",
    "StudyConfig",
    "StudyResult",
    "check_out_dir",
    "compute_weight_bits",
    "file_name",
    "first_crossing",
    "real_masks",
    "run_study",
    "study_network",
    "verdict_weight_bits",
]
