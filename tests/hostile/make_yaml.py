"""Write the hostile-input corpus for user-written files into ``tests/hostile/yaml/``.

Run ``python tests/hostile/make_yaml.py`` to regenerate it; every file is small. The
cases (see ``tests/test_hostile_yaml.py``): alias bombs ("billion laughs") as a
profile, model, levels and mapping file; a recursive alias; integers of 400 to 5,000
digits in a profile, a model and a levels file; null, integer and list keys; an FPGA
whose PE count is unbounded; text that is not UTF-8. Inputs that are large by nature
(an ``extends:`` chain 1,200 deep, a 200,000-character SCALE-Sim field, deep
nesting, a model graph whose 4,000 joins form one cycle) are written at test time
by :func:`write_large`.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent / "yaml"

PROFILE = """\
name: tiny
class: asic
execution: systolic
clock_hz: 1.0e9
weight_bits: [8]
activation_bits: 8
compute: {pes: 4, array_rows: 2, array_cols: 2}
memory:
  - {name: dram, kind: dram, bandwidth_bytes_per_s: 1.0e9,
     read_pj_per_bit: 10, write_pj_per_bit: 10}
  - {name: sram, kind: sram, size_bytes: 65536, bandwidth_bits_per_cycle: 64,
     read_pj_per_bit: 0.1, write_pj_per_bit: 0.1}
energy: {mac_pj: {int8: 0.5}}
"""

FPGA = """\
name: infinite_fpga
class: fpga
execution: systolic
clock_hz: 2.0e8
weight_bits: [8]
activation_bits: 8
compute: {macs_per_pe_per_cycle: 1}
memory:
  - {name: dram, kind: dram, bandwidth_bytes_per_s: 1.0e9,
     read_pj_per_bit: 10, write_pj_per_bit: 10}
energy: {mac_pj: {int8: 0.5}}
fpga:
  device: {dsp: 2520, lut: 274080}
  dense_pe: {lut: 1.0e-300}
  sparse_pe: {lut: 450}
"""

MODEL = """\
name: tiny
layers:
  - {name: fc1, type: linear, in_features: IN, out_features: 10}
"""


def _bomb(prefix: str = "") -> str:
    """Nine levels of nine aliases: 9**9 strings once expanded."""
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 10)]
    return prefix + "\n".join(lines) + "\n"


def cases() -> dict[str, str | bytes]:
    """File name -> content of every committed case."""
    big = "9" * 5000
    return {
        "profile_alias_bomb.yaml": _bomb(PROFILE),
        "model_alias_bomb.yaml": _bomb("name: bomb\n"),
        "levels_alias_bomb.yaml": _bomb(),
        "mapping_alias_bomb.yaml": _bomb(),
        "recursive_alias.yaml": "a: &m [*m]\n",
        "profile_huge_int.yaml": PROFILE.replace("pes: 4", "pes: " + "4" * 400),
        "profile_huge_clock.yaml": PROFILE.replace("clock_hz: 1.0e9", "clock_hz: " + big),
        "model_huge_int.yaml": MODEL.replace("IN", big),
        "levels_huge_int.yaml": f"conv1: {{rate: {big}}}\n",
        "levels_huge_float.yaml": "conv1: {rate: 1e400}\n",
        "levels_null_key.yaml": "~: {rate: 8}\n",
        "levels_int_key.yaml": "1: {rate: 8}\n",
        "levels_list_key.yaml": "? [conv1, conv2]\n: {rate: 8}\n",
        "mapping_null_key.yaml": "~: conv1.weight\n",
        "mapping_int_key.yaml": "12: conv1.weight\n",
        "profile_null_key.yaml": PROFILE + "~: 1\n",
        "fpga_infinite_pes.yaml": FPGA,
        "fpga_zero_cost.yaml": FPGA.replace("dense_pe: {lut: 1.0e-300}", "dense_pe: {lut: 0}"),
        "non_utf8.yaml": b"name: \xff\xfe\x1b[31m\n",
        "escape_name.yaml": (
            "name: x\nlayers:\n"
            + '  - {name: "\\e[31mfc\\e[0m", type: linear, in_features: 1, out_features: 1}\n' * 2
        ),
    }


def write_large(folder: Path) -> dict[str, Path]:
    """Write the large cases into ``folder`` (a test's tmp_path); name -> path."""
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    base = folder / "chain_0.yaml"
    base.write_text(PROFILE)
    for i in range(1, 1201):  # chain_1200 -> chain_1199 -> ... -> chain_0
        (folder / f"chain_{i}.yaml").write_text(f"extends: chain_{i - 1}.yaml\nname: c{i}\n")
    out["extends_chain"] = folder / "chain_1200.yaml"
    topo = folder / "long_field.csv"
    topo.write_text(
        "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, "
        "Num Filter, Strides,\n"
        f"conv1, {'5' * 200_000}, 28, 5, 5, 1, 20, 1,\n"
    )
    out["scalesim_long_field"] = topo
    deep = folder / "deep.yaml"
    deep.write_text("a: " + "[" * 50_000 + "]" * 50_000 + "\n")
    out["deep_nesting"] = deep
    cycle = folder / "graph_cycle.yaml"  # 4,000 joins in one cycle, read by a layer
    joins = [f"  - {{name: j{i}, op: add, inputs: [j{i - 1}, fc]}}" for i in range(1, 4000)]
    cycle.write_text(
        "name: cycle\nlayers:\n"
        "  - {name: fc, type: linear, in_features: 4, out_features: 4, inputs: [j3999]}\n"
        "joins:\n  - {name: j0, op: add, inputs: [j3999, fc]}\n" + "\n".join(joins) + "\n"
    )
    out["graph_cycle"] = cycle
    return out


def main(folder: Path = HERE) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in cases().items():
        path = folder / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE)
