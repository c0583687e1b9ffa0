"""What each figure shows, selected from the study's tables, and a digest of it.
Imports no matplotlib."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pandas as pd

FORMATS = ("png", "svg")
"""Every figure is written in each of these formats, under the same stem."""

COMPONENTS = (
    ("energy_dram_j", "DRAM"),
    ("energy_sram_j", "on-chip memory"),
    ("energy_mac_j", "MACs"),
    ("energy_index_j", "index decoding"),
    ("energy_static_j", "static"),
    ("energy_busy_j", "busy power floor"),
)
"""Energy components of the breakdown (table column, legend name), bottom to top."""

FAMILIES = ("cpu", "gpu", "fpga", "asic")
"""Platform classes (a profile's ``class``) in the order the energy plot groups them."""

NETWORK = "(network)"
"""The ``layer`` of a table's whole-network rows."""

BREAKEVEN_COLUMNS = ("latency_breakeven_rate", "energy_breakeven_rate")
"""Break-even rates (×) of the compute figure's two panels, left to right."""


def compute_data(
    sweep: pd.DataFrame, breakeven: pd.DataFrame, platform: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The rows of one platform's compute figure: the whole-network non-structured
    points (``rate``, ``speedup``, ``energy_ratio`` per ``network`` and
    ``weight_bits``) and their break-even rates (×). Selecting again from the result
    gives the same frames."""
    s = sweep[
        (sweep["platform"] == platform) & (sweep["kind"] == "sparse") & (sweep["layer"] == NETWORK)
    ]
    keys = ["platform", "kind", "layer", "network", "weight_bits"]
    s = s[[*keys, "rate", "speedup", "energy_ratio"]]
    b = breakeven[(breakeven["platform"] == platform) & (breakeven["layer"] == NETWORK)]
    b = b[["platform", "layer", "network", "weight_bits", *BREAKEVEN_COLUMNS]]
    return _sorted(s, ["network", "weight_bits", "rate"]), _sorted(b, ["network", "weight_bits"])


def storage_data(curves: pd.DataFrame, network: str, index_bits: int) -> pd.DataFrame:
    """The rows of one network's storage figure at one index width (bits)."""
    c = curves[(curves["network"] == network) & (curves["index_bits"] == index_bits)]
    keys = ["network", "index_bits", "weight_bits", "kind"]
    c = c[[*keys, "rate", "effective_rate", "bits", "dense_bits"]]
    return _sorted(c, ["kind", "weight_bits", "rate"])


def energy_data(breakdown: pd.DataFrame, network: str) -> pd.DataFrame:
    """The rows of one network's energy breakdown (J per component): per platform and
    kind, the widest weight width studied there."""
    b = breakdown[breakdown["network"] == network]
    if len(b):
        b = b.loc[b.groupby(["platform", "kind"])["weight_bits"].idxmax()]
    b = b[["network", "platform", "kind", "weight_bits", "energy_j", *(c for c, _ in COMPONENTS)]]
    return _sorted(b, ["platform", "kind"])


def _sorted(frame: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    return frame.sort_values(by, kind="stable").reset_index(drop=True)


def figure_digest(kind: str, frames: Sequence[pd.DataFrame], options: object = ()) -> str:
    """SHA-256 (hex) of everything a figure depends on: its kind, its data frames
    (columns, dtypes and every value), its options (by ``repr``), the source of this
    package and matplotlib's version. Equal digests draw equal figures."""
    h = hashlib.sha256()
    for part in (kind, _code_digest(), repr(options)):
        h.update(part.encode() + b"\0")
    for frame in frames:
        h.update(repr([(str(c), str(t)) for c, t in frame.dtypes.items()]).encode() + b"\0")
        h.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes() + b"\0")
    return h.hexdigest()


@functools.cache
def _code_digest() -> str:
    """The plotting code's digest: every module of this package, and matplotlib's
    version (a new matplotlib may draw differently)."""
    h = hashlib.sha256()
    for path in sorted(Path(__file__).parent.glob("*.py")):
        h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    try:
        h.update(version("matplotlib").encode())
    except PackageNotFoundError:
        pass
    return h.hexdigest()
