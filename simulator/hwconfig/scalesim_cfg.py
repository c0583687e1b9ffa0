"""A SCALE-Sim v3 configuration file (``scale.cfg``, INI) as a profile mapping in
SCALE-Sim mode (``compute.dram_model: scalesim``).

What is read: the array shape (``ArrayHeight`` x ``ArrayWidth``, any shape), the
dataflow, the three SRAM sizes and the interface bandwidth. SCALE-Sim counts one-byte
words (``word_size = 1`` in its ``single_layer_sim.py``: an SRAM of N kB holds
N x 1024 words), so the profile runs 8-bit weights and activations. ``Bandwidth``
(words per cycle) becomes the DRAM bandwidth at the profile's 1 GHz; in CALC mode
SCALE-Sim computes the bandwidth a layer needs instead of stalling, and so does the
profile. SCALE-Sim has no clock and no energies: the clock (1 GHz, cycles = ns) and
the energy figures are those of the built-in ``scalesim_32x32_ws`` profile (Horowitz,
ISSCC 2014, 45 nm), as its ``source`` says. Offsets, ``MemoryBanks``, the request
buffers (Ramulator only), the layout bank figures (custom layouts only),
``run_name`` and ``TopologyCsvLoc`` change no count; they are checked and ignored.

Refused, with the key named: ``InterfaceBandwidth: USER`` (SCALE-Sim's stall model),
``UseRamulatorTrace: True``, custom layouts and ``SparsitySupport: true``. A section
or key SCALE-Sim does not read is an error (a likely typo), as is a missing required
key or a value out of range; every problem is reported at once.
"""

from __future__ import annotations

import configparser
from pathlib import Path
from typing import Any

from simulator.errors import ConfigError, shown
from simulator.yamlio import did_you_mean, read_text_bounded

MAX_CFG_BYTES = 1 << 20
"""Largest configuration file read."""

_INT, _BOOL, _TEXT = "int", "bool", "text"
KEYS: dict[str, dict[str, tuple[str, bool]]] = {
    "general": {"run_name": (_TEXT, False)},
    "architecture_presets": {
        "arrayheight": (_INT, True),
        "arraywidth": (_INT, True),
        "ifmapsramszkb": (_INT, True),
        "filtersramszkb": (_INT, True),
        "ofmapsramszkb": (_INT, True),
        "ifmapoffset": (_INT, False),
        "filteroffset": (_INT, False),
        "ofmapoffset": (_INT, False),
        "bandwidth": (_TEXT, False),
        "dataflow": (_TEXT, True),
        "memorybanks": (_INT, False),
        "readrequestbuffer": (_INT, False),
        "writerequestbuffer": (_INT, False),
    },
    "layout": {
        "ifmapcustomlayout": (_BOOL, False),
        "ifmapsrambankbandwidth": (_INT, False),
        "ifmapsrambanknum": (_INT, False),
        "ifmapsrambankport": (_INT, False),
        "filtercustomlayout": (_BOOL, False),
        "filtersrambankbandwidth": (_INT, False),
        "filtersrambanknum": (_INT, False),
        "filtersrambankport": (_INT, False),
    },
    "sparsity": {
        "sparsitysupport": (_BOOL, False),
        "sparserep": (_TEXT, False),
        "optimizedmapping": (_BOOL, False),
        "blocksize": (_INT, False),
        "randomnumbergeneratorseed": (_INT, False),
        "nonzeroelems": (_INT, False),
    },
    "run_presets": {
        "interfacebandwidth": (_TEXT, True),
        "useramulatortrace": (_BOOL, False),
    },
    "network_presets": {"topologycsvloc": (_TEXT, False)},
}
"""Sections and (lower-case) keys SCALE-Sim 3.0.0 reads: (kind, required). Keys are
case-insensitive, as in SCALE-Sim."""

CANONICAL = {
    k.lower(): k
    for k in (
        "run_name",
        "ArrayHeight",
        "ArrayWidth",
        "IfmapSramSzkB",
        "FilterSramSzkB",
        "OfmapSramSzkB",
        "IfmapOffset",
        "FilterOffset",
        "OfmapOffset",
        "Bandwidth",
        "Dataflow",
        "MemoryBanks",
        "ReadRequestBuffer",
        "WriteRequestBuffer",
        "IfmapCustomLayout",
        "IfmapSRAMBankBandwidth",
        "IfmapSRAMBankNum",
        "IfmapSRAMBankPort",
        "FilterCustomLayout",
        "FilterSRAMBankBandwidth",
        "FilterSRAMBankNum",
        "FilterSRAMBankPort",
        "SparsitySupport",
        "SparseRep",
        "OptimizedMapping",
        "BlockSize",
        "RandomNumberGeneratorSeed",
        "NonZeroElems",
        "InterfaceBandwidth",
        "UseRamulatorTrace",
        "TopologyCsvLoc",
    )
}
"""Keys as SCALE-Sim's own configuration files spell them (for messages)."""

MAX_SIDE = 2**16
MAX_SRAM_KB = 2**30


def _parse(path: Path) -> configparser.ConfigParser:
    text = read_text_bounded(path, MAX_CFG_BYTES)
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str  # keep the user's spelling for messages
    try:
        parser.read_string(text, source=str(path))
    except configparser.Error as e:
        raise ConfigError(
            str(path), f"not a SCALE-Sim configuration (INI): {shown(str(e))}"
        ) from None
    return parser


def _values(parser: configparser.ConfigParser, problems: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for section in parser.sections():
        if section not in KEYS:
            problems.append(
                f"[{shown(section, 40)}]: not a SCALE-Sim section{did_you_mean(section, KEYS)}"
            )
            continue
        keys = KEYS[section]
        for given, raw in parser.items(section):
            key = given.lower()
            where = f"[{section}] {shown(given, 40)}"
            if key not in keys:
                names = [CANONICAL[k] for k in keys]
                problems.append(f"{where}: not a key of [{section}]{did_you_mean(given, names)}")
                continue
            if key in out:
                problems.append(f"{where}: given twice (keys are case-insensitive)")
                continue
            kind = keys[key][0]
            raw = raw.strip()
            if kind == _INT:
                try:
                    out[key] = int(raw)
                except ValueError:
                    problems.append(f"{where}: expected an integer, got {shown(raw, 40)}")
            elif kind == _BOOL:
                value = configparser.ConfigParser.BOOLEAN_STATES.get(raw.lower())
                if value is None:
                    problems.append(f"{where}: expected true or false, got {shown(raw, 40)}")
                else:
                    out[key] = value
            else:
                out[key] = raw
    for section, keys in KEYS.items():
        for key, (_, required) in keys.items():
            if required and key not in out:
                problems.append(f"[{section}] {CANONICAL[key]}: required")
    return out


def cfg_profile(path: str | Path, base: dict) -> dict:
    """The profile mapping of a SCALE-Sim configuration file; ``base`` (the resolved
    ``scalesim_32x32_ws`` profile) lends the clock and energy figures. Raises
    :class:`ConfigError` naming the file and every bad key."""
    path = Path(path)
    problems: list[str] = []
    v = _values(_parse(path), problems)
    for key, name, top in (
        ("arrayheight", "[architecture_presets] ArrayHeight", MAX_SIDE),
        ("arraywidth", "[architecture_presets] ArrayWidth", MAX_SIDE),
        ("ifmapsramszkb", "[architecture_presets] IfmapSramSzkB", MAX_SRAM_KB),
        ("filtersramszkb", "[architecture_presets] FilterSramSzkB", MAX_SRAM_KB),
        ("ofmapsramszkb", "[architecture_presets] OfmapSramSzkB", MAX_SRAM_KB),
        ("memorybanks", "[architecture_presets] MemoryBanks", MAX_SIDE),
    ):
        if key in v and not 1 <= v[key] <= top:
            problems.append(f"{name}: expected 1 to {top:,}, got {v[key]}")
    for key in ("ifmapoffset", "filteroffset", "ofmapoffset"):
        if key in v and v[key] < 0:
            name = CANONICAL[key]
            problems.append(f"[architecture_presets] {name}: expected >= 0, got {v[key]}")
    df = v.get("dataflow", "ws").strip().lower()
    if "dataflow" in v and df not in ("ws", "os", "is"):
        problems.append(
            f"[architecture_presets] Dataflow: expected ws, os or is, got {shown(v['dataflow'])}"
        )
    bw = 10
    if "bandwidth" in v:
        try:
            bw = int(v["bandwidth"].split(",")[0])
            if bw < 1:
                raise ValueError
        except ValueError:
            problems.append(
                "[architecture_presets] Bandwidth: expected a positive integer (words/cycle), "
                f"got {shown(v['bandwidth'], 40)}"
            )
    mode = v.get("interfacebandwidth", "CALC")
    if mode == "USER":
        problems.append(
            "[run_presets] InterfaceBandwidth: USER (SCALE-Sim's bandwidth-limited stall "
            "model) is not modelled; prunesim reproduces CALC, where bandwidth is a computed "
            "requirement"
        )
    elif mode != "CALC":
        problems.append(
            f"[run_presets] InterfaceBandwidth: expected CALC or USER, got {shown(mode, 40)}"
        )
    for key, name, what in (
        ("useramulatortrace", "[run_presets] UseRamulatorTrace", "Ramulator DRAM traces"),
        ("ifmapcustomlayout", "[layout] IfmapCustomLayout", "custom SRAM layouts"),
        ("filtercustomlayout", "[layout] FilterCustomLayout", "custom SRAM layouts"),
        ("sparsitysupport", "[sparsity] SparsitySupport", "SCALE-Sim's synthetic sparsity"),
    ):
        if v.get(key):
            problems.append(f"{name}: true is not modelled ({what}); set it to false")
    if problems:
        raise ConfigError(str(path), problems)
    rows, cols = v["arrayheight"], v["arraywidth"]
    kb = {k: v[f"{k}sramszkb"] for k in ("ifmap", "filter", "ofmap")}
    run = v.get("run_name") or path.stem
    dram = next(m for m in base["memory"] if m["kind"] == "dram")
    sram = next(m for m in base["memory"] if m["kind"] == "sram")
    return {
        "name": run,
        "description": (
            f"SCALE-Sim configuration {path.name}: {rows}x{cols} systolic array, {df}, "
            f"ifmap/filter/ofmap SRAM {kb['ifmap']}/{kb['filter']}/{kb['ofmap']} kB, "
            "SCALE-Sim memory model (CALC)"
        ),
        "source": (
            f"SCALE-Sim v3 configuration {path}; SCALE-Sim reports no energy and no clock: "
            "the 1 GHz clock and the energies are the built-in scalesim_32x32_ws profile's "
            f"({base.get('source', '')})"
        ),
        "class": "asic",
        "execution": "systolic",
        "technology_nm": base.get("technology_nm", 45),
        "clock_hz": base["clock_hz"],
        "weight_bits": [8],
        "activation_bits": 8,
        "compute": {
            "pes": rows * cols,
            "array_rows": rows,
            "array_cols": cols,
            "dataflow": df,
            "zero_gating": False,
            "dram_model": "scalesim",
            "scalesim_sram_bytes": {k: n * 1024 for k, n in kb.items()},
        },
        "memory": [
            {
                "name": "dram",
                "kind": "dram",
                "bandwidth_bytes_per_s": bw * float(base["clock_hz"]),
                "read_pj_per_bit": dram["read_pj_per_bit"],
                "write_pj_per_bit": dram["write_pj_per_bit"],
            },
            {
                "name": "sram",
                "kind": "sram",
                "size_bytes": sum(kb.values()) * 1024,
                "bandwidth_bits_per_cycle": (rows + 2 * cols) * 8,
                "read_pj_per_bit": sram["read_pj_per_bit"],
                "write_pj_per_bit": sram["write_pj_per_bit"],
            },
        ],
        "energy": dict(base["energy"]),
    }
