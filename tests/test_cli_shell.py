"""The shell of the command line: dispatch, help, names, deprecations, start-up,
rendering that does not depend on the terminal, and what the output says."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

from simulator.cli import main

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_plain_prunesim_and_help_print_the_commands(capsys):
    for argv in ([], ["--help"], ["-h"]):
        code, out, err = run(capsys, *argv)
        assert code == 0 and err == ""
        for name in ("study", "estimate", "storage", "inspect", "models", "platforms", "schema"):
            assert f"  {name}" in out
    code, out, _ = run(capsys, "--version")
    assert code == 0 and out.startswith("prunesim ")


def test_help_imports_nothing_heavy():
    """`prunesim --help` must be instant: no numpy, pandas, numba or scipy."""
    code = (
        "import sys; from simulator.cli import main; main(['--help']); "
        "print(sorted(m for m in ('numpy', 'pandas', 'numba', 'scipy', 'matplotlib', "
        "'jsonschema', 'yaml') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=ENV, check=True
    ).stdout
    assert out.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["estimte"], "did you mean 'estimate'"),
        (["STORAGE", "--layer", "linear:in=8,out=8", "--format", "dense"], None),
        (["bogus"], "choose from study, estimate"),
        (["--rate", "8"], "expected a command"),
        (["storage", "--layer", "linear:in=8,out=8", "--structure", "filtr"], "did you mean"),
        (["storage", "--layer", "linear:in=8,out=8", "--format", "csr_rel"], "did you mean"),
        (["schema", "hwconf"], "did you mean 'hwconfig'"),
    ],
)
def test_names_in_any_case_with_suggestions(capsys, argv, needle):
    code, _, err = run(capsys, *argv)
    if needle is None:
        assert code == 0
    else:
        assert code == 2 and needle in err and len(err.strip().splitlines()) == 1


def test_choices_are_case_insensitive(capsys):
    code, out, _ = run(
        capsys,
        "storage",
        "--layer",
        "linear:in=64,out=32",
        "--structure",
        "FILTER",
        "--format",
        "CSR-REL,Compact",
        "--rate",
        "4",
    )
    assert code == 0 and "filter 4x" in out and "csr-rel" in out and "compact" in out
    code, out, _ = run(capsys, "schema", "MODEL")
    assert code == 0 and json.loads(out)["title"]


def test_old_spellings_still_work_with_a_note(capsys):
    code, out, err = run(
        capsys, "storage", "lenet5", "--structured", "channel", "--format", "csr-rel"
    )
    assert code == 0 and "--structured is deprecated" in err and "use --structure" in err
    assert "Storage break-even: channel pruning" in out
    code, out, err = run(
        capsys,
        "estimate",
        "lenet5",
        "--platform",
        "eie",
        "--structured",
        "column",
        "--json",
        os.devnull,
    )
    assert code == 0 and "--structured is deprecated" in err
    from simulator.cli import study

    ns = study.build_parser().parse_args(["--structures", "column,filter"])
    assert ns.structure == ("column", "filter")
    assert "--structures is deprecated" in capsys.readouterr().err


def test_one_name_per_idea_in_the_help():
    from simulator.cli import estimate, storage, study

    for module in (estimate, storage, study):
        text = module.build_parser().format_help()
        assert "--structure " in text or "--structure S" in text
        assert "--structured " not in text and "--structures" not in text


def test_structure_of_the_breakeven_follows_the_mask(capsys):
    code, out, _ = run(capsys, "storage", "lenet5", "--structure", "channel", "--rate", "4")
    assert code == 0 and "Storage break-even: channel pruning at 4x" in out
    code, out, _ = run(capsys, "storage", "lenet5", "--rate", "4")
    assert code == 0 and "Storage break-even: filter pruning at 4x" in out


def test_levels_titles_say_what_the_levels_are(capsys, tmp_path):
    levels = tmp_path / "levels.yaml"
    names, rates = ["conv1", "conv2", "fc1", "fc2"], (2, 4, 16, 4)
    from simulator.workloads import load_network

    assert [layer.name for layer in load_network("lenet5").prunable_layers] == names
    levels.write_text("".join(f"{n}: {{rate: {r}}}\n" for n, r in zip(names, rates, strict=True)))
    code, out, _ = run(
        capsys, "estimate", "lenet5", "--platform", "eie", "--levels", str(levels), "--per-layer"
    )
    assert code == 0
    title = next(line for line in out.splitlines() if "latency and energy per layer" in line)
    # 430,500 weights; kept 500/2 + 25,000/4 + 400,000/16 + 5,000/4 = 32,750: 13.1x
    assert "per-layer levels (4 of 4 layers)" in title and "8x" not in title
    assert "overall 13.1x" in title


def test_json_says_every_setting(capsys, tmp_path):
    est, sto = tmp_path / "e.json", tmp_path / "s.json"
    code, _, _ = run(
        capsys,
        "estimate",
        "lenet5",
        "--platform",
        "eie",
        "--index-bits",
        "5",
        "--activation-density",
        "0.5",
        "--seed",
        "3",
        "--json",
        str(est),
    )
    assert code == 0
    doc = json.loads(est.read_text())
    assert doc["settings"] == {
        "weight_bits": 8,
        "index_bits": 5,
        "activation_bits": None,
        "activation_density": 0.5,
        "seed": 3,
        "variant": "dense",
        "kv_bits": None,
        "group_size": None,
        "scale_bits": 16,
        "zero_point_bits": 0,
    }
    assert doc["networks"][0]["level"] == "level 8x"
    assert {"engine", "main_bound"} <= set(doc["totals"][0])
    code, _, _ = run(capsys, "storage", "lenet5", "--abs-index-bits", "12", "--json", str(sto))
    assert code == 0
    assert json.loads(sto.read_text())["params"]["abs_index_bits"] == 12


def test_estimate_prints_per_layer_tables_on_a_terminal(tmp_path):
    """With a progress bar on the terminal, the per-layer tables still come."""
    primary, secondary = pty.openpty()
    try:
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "simulator",
                "estimate",
                "lenet5",
                "--platform",
                "all",
                "--per-layer",
            ],
            stdout=subprocess.PIPE,
            stderr=secondary,
            text=True,
            env=ENV,
            timeout=300,
            check=False,
        )
    finally:
        os.close(secondary)
        os.close(primary)
    assert proc.returncode == 0
    from simulator.hwconfig import builtin_platforms

    assert proc.stdout.count("latency and energy per layer") == len(builtin_platforms())
    assert "Totals" in proc.stdout


def test_first_compile_says_what_it_is_doing(tmp_path):
    """A cold kernel cache (a fresh install) prints one line when the kernels compile;
    a warm one prints nothing."""
    env = {**ENV, "NUMBA_CACHE_DIR": str(tmp_path / "cache")}
    argv = [sys.executable, "-m", "simulator", "storage", "--layer", "linear:in=8,out=8"]
    first = subprocess.run(argv, capture_output=True, text=True, env=env, check=True)
    second = subprocess.run(argv, capture_output=True, text=True, env=env, check=True)
    note = "prunesim: compiling the numerical kernels"
    assert first.stderr.count(note) == 1
    assert note not in second.stderr


FIXTURES = ROOT / "tests" / "fixtures"


def test_estimate_says_which_variant_holds_the_checkpoint(capsys):
    ckpt = str(FIXTURES / "lenet5_filter.safetensors")
    code, out, _ = run(capsys, "estimate", "lenet5", "--checkpoint", ckpt, "--platform", "eie")
    assert code == 0
    assert "the checkpoint's masks are the 'structured' variant" in out
    assert "filter pruning (structured)" in out
    ckpt = str(FIXTURES / "lenet5_ns_prune.pt")
    code, out, _ = run(capsys, "estimate", "lenet5", "--checkpoint", ckpt, "--platform", "eie")
    assert code == 0 and "the checkpoint's masks are the 'sparse' variant" in out


def test_estimate_refuses_assumed_geometry_unless_asked(capsys):
    ckpt = str(FIXTURES / "lenet5_filter.safetensors")
    code, _, err = run(capsys, "estimate", "--checkpoint", ckpt, "--platform", "eie")
    assert code == 2 and "--assume-geometry" in err and len(err.strip().splitlines()) == 1
    code, out, _ = run(
        capsys, "estimate", "--checkpoint", ckpt, "--platform", "eie", "--assume-geometry"
    )
    assert code == 0 and "Totals" in out
    code, out, _ = run(capsys, "inspect", ckpt)  # listing needs no geometry
    assert code == 0 and "fc1" in out
    code, out, _ = run(capsys, "storage", "--checkpoint", ckpt)  # nor does storage
    assert code == 0 and "csr-rel" in out


def test_names_from_files_are_escaped_in_tables(capsys, tmp_path):
    model = tmp_path / "evil.yaml"
    model.write_text(
        'name: "net\\e[2J"\nlayers:\n  - {type: linear, name: "fc\\e[31m\\nprunesim: '
        'error: forged", in_features: 8, out_features: 8}\n'
    )
    code, out, err = run(capsys, "storage", str(model), "--format", "csr-rel")
    assert code == 0
    assert "\x1b" not in out + err and "\\x1b[31m" in out and "\nprunesim: error" not in out


@pytest.mark.slow
def test_a_parallel_study_compiles_once_and_says_so(tmp_path):
    """Workers load the kernels the parent compiled: one note, not one per worker."""
    env = {**ENV, "NUMBA_CACHE_DIR": str(tmp_path / "cache")}
    argv = [
        sys.executable, "-m", "simulator", "study", "--networks", "lenet5,alexnet",
        "--platforms", "eie,a100", "--weight-bits", "4", "--index-bits", "4",
        "--structured-rates", "2", "--sweep-rates", "2,8", "--jobs", "2",
        "--out", str(tmp_path / "out"),
    ]  # fmt: skip
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, check=True)
    assert proc.stderr.count("prunesim: compiling the numerical kernels") == 1


def test_max_memory_stops_work_before_it_allocates(capsys):
    argv = ["storage", "--layer", "linear:in=4096,out=4096", "--format", "csr-rel"]
    code, _, err = run(capsys, *argv, "--max-memory", "1M")
    assert code == 2 and "over the memory limit of 1.0 MiB" in err and "--max-memory" in err
    assert len(err.strip().splitlines()) == 1
    code, _, err = run(capsys, *argv, "--max-memory", "lots")
    assert code == 2 and "--max-memory" in err
    code, out, _ = run(capsys, *argv, "--max-memory", "1G")
    assert code == 0 and "csr-rel" in out
    from simulator.memory import memory_limit_bytes, physical_memory_bytes

    assert memory_limit_bytes() == physical_memory_bytes() // 2  # not left set after a run


def test_platforms_with_different_nm_units_each_get_their_own_masks(tmp_path):
    """A 1:4 unit beside a 2:4 one: each platform runs masks of its own pattern."""
    from simulator.hwconfig import load_platform
    from simulator.masks import Pruning
    from simulator.simulate import estimate_network
    from simulator.workloads import load_network

    one_four = tmp_path / "a100_1of4.yaml"
    one_four.write_text(
        "extends: a100\nname: a100_1of4\ncompute:\n  nm_sparse: {n: 1, m: 4, speedup: 2.0}\n"
    )
    platforms = [load_platform("a100"), load_platform(str(one_four))]
    est = estimate_network(load_network("lenet5"), platforms, Pruning(density=0.25))
    nm = est.totals().query("variant == 'nm'").set_index("platform")["engine"]
    # a100's cuSPARSELt entry was measured on 2:4: the 1:4 unit runs at its own speed-up
    assert nm["a100"] == "cusparselt (2:4)" and nm["a100_1of4"] == "1:4 sparse GEMM"
