"""Hardware profiles: every built-in loads and names its sources; broken profiles
give every problem at once, with the file and key path."""

from __future__ import annotations

import dataclasses
import json
import math
import re
from pathlib import Path

import jsonschema
import pytest

from simulator import hwconfig as hw
from simulator.cli import main
from simulator.errors import ConfigError
from simulator.hwconfig import (
    HWCONFIG_SCHEMA,
    builtin_platforms,
    by_precision,
    load_platform,
    platform_from_dict,
)
from simulator.yamlio import read_yaml

BUILTINS = sorted(builtin_platforms())
NUMBER = re.compile(r"^\s*-?\s*[\w]+:\s*\[?-?[0-9][0-9._eE+\-, ]*\]?\s*(#.*)?$")


def test_at_least_eleven_builtins_across_every_class():
    assert len(BUILTINS) >= 11
    classes = {load_platform(n).platform_class for n in BUILTINS}
    assert classes == {"fpga", "asic", "cpu", "gpu"}


@pytest.mark.parametrize("name", BUILTINS)
def test_builtin_loads_and_validates_against_the_schema(name):
    p = load_platform(name)
    assert p.name == name
    assert p.clock_hz > 0 and p.compute.pes >= 1
    assert all(lv.bandwidth_bytes_per_s > 0 for lv in p.memory)
    raw = read_yaml(builtin_platforms()[name])
    if "extends" not in raw:
        jsonschema.validate(raw, HWCONFIG_SCHEMA)


@pytest.mark.parametrize("name", BUILTINS)
def test_every_number_carries_a_source_comment(name):
    """A figure has a comment on its line or on the comment lines just above it."""
    lines = builtin_platforms()[name].read_text().splitlines()
    text = "\n".join(lines)
    assert re.search(r"source|Source|\(.*\d{4}\)", text)
    for i, line in enumerate(lines):
        if NUMBER.match(line) and "#" not in line:
            above = lines[i - 1].strip() if i else ""
            assert above.startswith("#"), f"{name}: line {i + 1} has no source: {line!r}"


def _static_w_comment(path: Path) -> str | None:
    """The comment beside a profile's ``static_w`` (on its line and the comment lines
    just above), following ``extends`` to the profile that sets it."""
    lines = path.read_text().splitlines()
    for i, line in enumerate(lines):
        if re.match(r"^\s*static_w\s*:", line):
            parts = [line.partition("#")[2]]
            j = i - 1
            while j >= 0 and lines[j].strip().startswith("#"):
                parts.insert(0, lines[j].strip().lstrip("#"))
                j -= 1
            return " ".join(x.strip() for x in parts if x.strip()) or None
    parent = read_yaml(path).get("extends")
    if parent is None:
        return None
    return _static_w_comment(builtin_platforms().get(parent) or path.parent / parent)


def _static_power_problem(path: Path) -> str | None:
    """Why a profile's static power breaks the rule of hwconfigs/README.md ("Static
    power"): a figure above zero with its source beside it, or zero only where that
    comment says the source gives zero."""
    comment = _static_w_comment(path)
    if not comment:
        return "static_w has no comment giving its source"
    if load_platform(path).static_w == 0 and "zero" not in comment.lower():
        return "static_w is 0 and its comment does not say that the source gives zero"
    return None


@pytest.mark.parametrize("name", BUILTINS)
def test_every_builtin_has_a_sourced_static_power(name):
    assert _static_power_problem(builtin_platforms()[name]) is None, name
    # no built-in's source gives zero today: every one charges idle power
    assert load_platform(name).static_w > 0, name


def test_zero_static_power_needs_a_statement(tmp_path):
    def profile(name, energy_lines=(), extends=None):
        f = tmp_path / f"{name}.yaml"
        if extends:
            f.write_text(f"extends: {extends}\nname: {name}\n")
        else:
            data = {k: v for k, v in MINIMAL.items() if k != "energy"} | {"name": name}
            lines = [f"{k}: {json.dumps(v)}" for k, v in data.items()]
            lines += ["energy:", '  mac_pj: {"int8": 0.5}', *energy_lines]
            f.write_text("\n".join(lines) + "\n")
        return f

    silent = profile("silent", ["  static_w: 0.0"])
    unsaid = profile("unsaid", ["  static_w: 0.0  # not modelled"])
    said = profile("said", ["  # the data sheet gives zero: no clock, no leakage", "  static_w: 0"])
    child = profile("child", extends="said.yaml")
    sourced = profile("sourced", ["  static_w: 1.5  # measured idle power (test)"])
    assert "no comment" in _static_power_problem(silent)
    assert "does not say" in _static_power_problem(unsaid)
    assert _static_power_problem(said) is None
    assert _static_power_problem(child) is None
    assert load_platform(child).static_w == 0
    assert _static_power_problem(sourced) is None


MINIMAL = {
    "name": "tiny",
    "class": "asic",
    "execution": "systolic",
    "clock_hz": 1e9,
    "weight_bits": [8],
    "activation_bits": 8,
    "compute": {"pes": 4, "array_rows": 2, "array_cols": 2},
    "memory": [
        {
            "name": "dram",
            "kind": "dram",
            "bandwidth_bytes_per_s": 1e9,
            "read_pj_per_bit": 10,
            "write_pj_per_bit": 10,
        },
        {
            "name": "buf",
            "kind": "sram",
            "size_bytes": 1024,
            "bandwidth_bits_per_cycle": 64,
            "read_pj_per_bit": 1,
            "write_pj_per_bit": 1,
        },
    ],
    "energy": {"mac_pj": {"int8": 0.5}},
}


def test_minimal_profile_and_derived_bandwidth():
    p = platform_from_dict(MINIMAL)
    # 64 bits per cycle at 1 GHz = 8e9 bytes/s
    assert p.level("sram").bandwidth_bytes_per_s == pytest.approx(8e9)
    assert p.level("dram").size_bytes == float("inf")


def test_every_problem_at_once_with_key_paths():
    bad = json.loads(json.dumps(MINIMAL))
    bad["clock_hz"] = -1
    bad["compute"]["arry_rows"] = 3
    bad["memory"][1]["read_pj_per_bit"] = "cheap"
    del bad["energy"]
    with pytest.raises(ConfigError) as e:
        platform_from_dict(bad, "bad.yaml")
    text = str(e.value)
    assert "bad.yaml" in text and len(e.value.problems) == 4
    assert "compute: unknown key(s) arry_rows" in text
    assert "memory[1].read_pj_per_bit" in text
    assert "clock_hz" in text and "'energy' is a required property" in text


def test_semantic_problems():
    bad = json.loads(json.dumps(MINIMAL))
    del bad["compute"]["array_cols"]
    bad["memory"] = [bad["memory"][1], {**bad["memory"][1]}]
    del bad["memory"][1]["bandwidth_bits_per_cycle"]
    with pytest.raises(ConfigError) as e:
        platform_from_dict(bad, "x.yaml")
    text = str(e.value)
    assert "array_rows and array_cols" in text
    assert "needs a dram level" in text
    assert "memory[1] (buf): give bandwidth" in text
    assert "duplicate level name 'buf'" in text


def test_inheritance_overrides_and_keeps(tmp_path):
    base = tmp_path / "base.yaml"
    import yaml

    base.write_text(yaml.safe_dump(MINIMAL))
    child = tmp_path / "child.yaml"
    child.write_text("extends: base.yaml\nname: child\ncompute: {dataflow: os}\n")
    p = load_platform(child)
    assert p.name == "child" and p.compute.dataflow == "os"
    assert p.compute.array_rows == 2  # kept from the parent
    os_builtin = load_platform("scalesim_32x32_os")
    assert os_builtin.compute.dataflow == "os" and os_builtin.compute.array_rows == 32


def test_inheritance_errors(tmp_path):
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text("extends: b.yaml\nname: a\n")
    b.write_text("extends: a.yaml\nname: b\n")
    with pytest.raises(ConfigError, match="circular"):
        load_platform(a)
    a.write_text("extends: nowhere\nname: a\n")
    with pytest.raises(ConfigError, match="no profile 'nowhere'"):
        load_platform(a)
    a.write_text("name: [broken\n")
    with pytest.raises(ConfigError, match=r"a\.yaml: not valid YAML"):
        load_platform(a)
    with pytest.raises(ConfigError, match="no such hardware profile"):
        load_platform(tmp_path / "missing.yaml")


def test_fpga_pes_that_fit_by_hand():
    p = load_platform("zcu102")
    f = p.fpga
    for sparse in (False, True):
        per = f.sparse_pe if sparse else f.dense_pe
        expect = min(int(f.device[r] * f.usable_fraction // c) for r, c in per.items() if c > 0)
        assert f.pes_that_fit(sparse) == expect
    assert f.pes_that_fit(True) < f.pes_that_fit(False)  # a sparse PE costs more


def test_by_precision_picks_the_narrowest_that_holds():
    table = {"int8": 1.0, "fp16": 2.0, "int16": 1.5, "fp32": 4.0}
    assert by_precision(table, 4) == 1.0
    assert by_precision(table, 8) == 1.0
    assert by_precision(table, 9) == 1.5  # int16 before fp16 at equal width
    assert by_precision(table, 32) == 4.0
    assert by_precision(table, 64) == 4.0  # nothing wider: the widest


def test_schema_and_platforms_commands(capsys):
    assert main(["schema", "hwconfig"]) == 0
    schema = json.loads(capsys.readouterr().out)
    jsonschema.Draft202012Validator.check_schema(schema)
    assert main(["schema", "model"]) == 0
    json.loads(capsys.readouterr().out)
    assert main(["platforms"]) == 0
    out = capsys.readouterr().out
    for name in BUILTINS:
        assert name in out


# --- profile fields declared once (issue 8, item 6) -----------------------------

BEFORE = Path(__file__).parent / "data" / "hwconfig_builtins_before.json"
NEW_SINCE = {"scnn", "rtx4090"}  # profiles added after that loader
"""Built-in profiles added after that dump."""


def _dump(p) -> dict:
    """A Platform as JSON-able data (non-finite floats spelled out), without the
    file path and the raw mapping."""

    def enc(v):
        if isinstance(v, float) and not math.isfinite(v):
            return {"float": repr(v)}
        if isinstance(v, dict):
            return {k: enc(x) for k, x in v.items()}
        if isinstance(v, list | tuple):
            return [enc(x) for x in v]
        return v

    d = dataclasses.asdict(p)
    d.pop("raw")
    d.pop("path")
    if d["compute"]["row_stationary"] is None:  # a section added later, absent before
        del d["compute"]["row_stationary"]
    # EIE's per-event energies and weight residency, added later, at their defaults
    if d["compute"]["weights_resident"] is False:
        del d["compute"]["weights_resident"]
    if d["pointer_read_pj"] is None and d["queue_pj"] == 0.0:
        del d["pointer_read_pj"], d["queue_pj"]
    if d["busy_w"] == 0:  # a field added later (cpu/gpu only), absent before
        del d["busy_w"]
    for k in (d.get("roofline") or {}).get("kernels", ()):  # the operand miss term, later
        if k["operand_cache_bytes"] is None and k["operand_miss_ns"] == 0:
            del k["operand_cache_bytes"], k["operand_miss_ns"], k["cache_line_bytes"]
        # added later
        for key in ("weight_bits", "activation_bits", "dense_macs_per_s", "layout"):
            if k[key] is None:
                del k[key]
    for key in ("dense_design", "sparse_design"):  # sections added later, absent before
        if d.get("fpga") and d["fpga"][key] is None:
            del d["fpga"][key]
    return json.loads(json.dumps(enc(d)))


def test_builtins_load_to_the_same_platform_as_the_previous_loader():
    # tests/data/hwconfig_builtins_before.json was dumped from the loader as it was
    # before the fields were declared once (commit aab3570), with _dump's rules; the
    # cpu/gpu entries were re-dumped when the roofline gained sparse-kernel entries,
    # per-precision dense efficiencies and dynamic-plus-idle energy (their values
    # changed on purpose, see hwconfigs/README.md "Roofline"), and again when the GPU
    # GEMV fraction was refitted net of the per-layer overhead and cpu/gpu profiles
    # gained busy_w ("CPU and GPU energy"); eyeriss_v1 has since moved to the
    # row-stationary model, and eie to per-event energies from its Table II with a
    # DRAM level for weights that do not fit, on purpose; zcu102 runs dense work on
    # the DPU that ships (3 x B4096, fpga.dense_design) since, on purpose: its
    # compute.pes is one core's 2,048 MACs, and alveo_u250 on the DPUCADX8G (4 x xDNN
    # v3) that Vitis AI 1.1 ran on it, at that design's 350 MHz, and everything else
    # is as before
    before = json.loads(BEFORE.read_text())
    assert sorted(before) == sorted(set(BUILTINS) - NEW_SINCE)
    for name in sorted(set(BUILTINS) - NEW_SINCE):
        now = _dump(load_platform(name))
        if name == "zcu102":
            assert now["fpga"].pop("dense_design")["cores"] == 3
            assert now["compute"].pop("pes") == 16 * 16 * 8
            before[name]["compute"].pop("pes")
            assert "B4096" in now.pop("description")  # the texts now name the DPU
            assert "DPU" in now.pop("source")
            before[name].pop("description"), before[name].pop("source")
        if name == "alveo_u250":
            assert now["fpga"].pop("dense_design")["cores"] == 4
            assert now["compute"].pop("pes") == 96 * 16 * 4
            before[name]["compute"].pop("pes")
            assert (now.pop("clock_hz"), before[name].pop("clock_hz")) == (350e6, 300e6)
            for a, b in zip(now["memory"], before[name]["memory"], strict=True):
                if a["kind"] == "sram":  # bits per cycle x the clock
                    ratio = a.pop("bandwidth_bytes_per_s") / b.pop("bandwidth_bytes_per_s")
                    assert ratio == pytest.approx(350 / 300)
            assert "DPUCADX8G" in now.pop("description")
            assert "ML Suite" in now.pop("source")
            before[name].pop("description"), before[name].pop("source")
        if name == "a100":  # Flash-LLM (csr, fp16) and Sparse-Marlin (nm, W4A16), on purpose
            added = now["roofline"]["kernels"][3:]
            del now["roofline"]["kernels"][3:]
            assert [(k["name"], k["weight_bits"]) for k in added] == [
                ("flash-llm", [16]),
                ("sparse-marlin", [4]),
            ]
        if name == "xeon_8380":  # GEMV fraction of a current LLM runtime (8480+), on purpose
            assert now["roofline"].pop("dense_gemv_efficiency") == {"int8": 0.463}
            assert before[name]["roofline"].pop("dense_gemv_efficiency") == {"fp32": 0.221}
            # deepsparse streams the vendor's bitmap layout, on purpose (its source says so)
            deepsparse = now["roofline"]["kernels"][1]
            assert (deepsparse.pop("layout"), deepsparse["name"]) == ("bitmap", "deepsparse")
            assert "compressed-tensors" in deepsparse.pop("source")
            before[name]["roofline"]["kernels"][1].pop("source")
        if name not in ("eyeriss_v1", "eie"):
            assert now == before[name], name


def test_every_dataclass_field_is_declared_once_with_its_default():
    sections = [
        (hw.MemoryLevel, hw.MEMORY_FIELDS, set()),
        (hw.NMSparse, hw.NM_FIELDS, set()),
        (hw.Compute, hw.COMPUTE_FIELDS, set()),
        (hw.Roofline, hw.ROOFLINE_FIELDS, {"kernels"}),
        (hw.SparseKernel, hw.KERNEL_FIELDS, set()),
        (hw.Fpga, hw.FPGA_FIELDS, {"dense_design", "sparse_design"}),
        (hw.FpgaDesign, hw.DESIGN_FIELDS, set()),
        (
            hw.Platform,
            {**hw.TOP_FIELDS, **hw.ENERGY_FIELDS},
            {"compute", "memory", "fpga", "roofline", "path", "raw"},
        ),
    ]
    for cls, table, structural in sections:
        declared = {
            (key if f.attr is None else f.attr): f for key, f in table.items() if f.attr != ""
        }
        names = {f.name for f in dataclasses.fields(cls)}
        assert names - structural == set(declared), cls.__name__
        for f in dataclasses.fields(cls):
            spec = declared.get(f.name)
            if (
                spec is not None
                and f.default is not dataclasses.MISSING
                and spec.default is not None
            ):
                assert f.default == spec.default, (cls.__name__, f.name)
        for key, f in table.items():
            assert f.description, (cls.__name__, key)


def test_schema_is_valid_and_carries_descriptions_defaults_and_bounds():
    jsonschema.Draft202012Validator.check_schema(HWCONFIG_SCHEMA)
    compute = HWCONFIG_SCHEMA["properties"]["compute"]["properties"]
    assert compute["fifo_depth"]["default"] == 8 and compute["fifo_depth"]["maximum"] > 8
    assert "Hz" in HWCONFIG_SCHEMA["properties"]["clock_hz"]["description"]
    assert HWCONFIG_SCHEMA["additionalProperties"] is False


def test_unknown_keys_are_errors_at_every_level():
    bad = json.loads(json.dumps(MINIMAL))
    bad["colour"] = "red"
    bad["memory"][0]["latency"] = 3
    bad["energy"]["mac_pj"]["int9"] = 1.0
    with pytest.raises(ConfigError) as e:
        platform_from_dict(bad, "bad.yaml")
    text = str(e.value)
    assert len(e.value.problems) == 3
    assert "(top level): unknown key(s) colour" in text
    assert "memory[0]: unknown key(s) latency" in text
    assert "energy.mac_pj: unknown key(s) int9" in text


def test_non_finite_and_out_of_range_numbers_in_a_mapping():
    bad = json.loads(json.dumps(MINIMAL))
    bad["clock_hz"] = float("nan")
    bad["compute"]["pes"] = 2**40
    with pytest.raises(ConfigError) as e:
        platform_from_dict(bad, "bad.yaml")
    assert "clock_hz: expected a finite number" in str(e.value)
    assert "compute.pes: expected at most 2**24" in str(e.value)


def test_names_ignore_case_and_suggest(tmp_path):
    assert load_platform("A100") == load_platform("a100")
    assert load_platform("ZCU-102").name == "zcu102"
    with pytest.raises(ConfigError, match="did you mean a100"):
        load_platform("a10")
    child = tmp_path / "child.yaml"
    child.write_text("extends: EIE\nname: child\n")
    assert load_platform(child).execution == "eie"


def test_extends_chains_are_bounded(tmp_path):
    import yaml

    (tmp_path / "c0.yaml").write_text(yaml.safe_dump(MINIMAL))
    for i in range(1, 1201):
        (tmp_path / f"c{i}.yaml").write_text(f"extends: c{i - 1}.yaml\nname: c{i}\n")
    assert load_platform(tmp_path / "c32.yaml").name == "c32"
    with pytest.raises(ConfigError, match="deeper than 32") as e:
        load_platform(tmp_path / "c1200.yaml")
    assert len(e.value.problems) == 1


@pytest.mark.parametrize(
    ("dense_pe", "needle"),
    [
        ({"lut": 1e-300}, "PEs would fit, over 16,777,216"),
        ({"lut": 0}, "an unbounded number of PEs"),
        ({"bram36": 5000}, "not one PE fits"),
    ],
)
def test_fpga_pe_counts_must_be_finite_and_bounded(dense_pe, needle):
    raw = read_yaml(builtin_platforms()["zcu102"])
    raw["fpga"]["dense_pe"] = dense_pe
    with pytest.raises(ConfigError, match=needle) as e:
        platform_from_dict(raw, "fpga.yaml")
    assert all(p.startswith("fpga.dense_pe") for p in e.value.problems)


@pytest.mark.parametrize("name", BUILTINS)
def test_every_builtin_resolved_passes_the_printed_schema(name, capsys):
    assert main(["schema", "hwconfig"]) == 0
    schema = json.loads(capsys.readouterr().out)
    jsonschema.validate(hw._resolve(builtin_platforms()[name]), schema)
