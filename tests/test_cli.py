"""The command line: output, files, and one-line errors with exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from simulator.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_models_lists_every_network(capsys):
    code, out, _ = run(capsys, "models")
    assert code == 0
    for name in (
        "lenet5",
        "alexnet",
        "vgg16",
        "resnet18",
        "resnet50",
        "mobilenetv2",
        "bert_base",
        "minilm_l6",
    ):
        assert name in out
    assert "25,502,912" in out and "430,500" in out


def test_storage_per_layer_table_and_files(capsys, tmp_path):
    csv_path, json_path = tmp_path / "out" / "lenet.csv", tmp_path / "lenet.json"
    code, out, err = run(
        capsys,
        "storage",
        "lenet5",
        "--rate",
        "10",
        "--weight-bits",
        "8",
        "--index-bits",
        "5",
        "--csv",
        str(csv_path),
        "--json",
        str(json_path),
    )
    assert code == 0, err
    for text in ("conv1", "fc2", "total", "x smaller than dense", "break-even", "csr-rel"):
        assert text in out
    frame = pd.read_csv(csv_path)
    assert set(frame["layer"]) == {"conv1", "conv2", "fc1", "fc2"}
    dense = frame[frame["format"] == "dense"]
    assert dense["total_bits"].sum() == 430_500 * 8  # every weight at 8 bits
    be = pd.read_csv(tmp_path / "out" / "lenet-breakeven.csv")
    assert list(be["layer"]) == ["conv1", "conv2", "fc1", "fc2", "(network)"]
    doc = json.loads(json_path.read_text())
    assert doc["params"]["weight_bits"] == 8 and doc["params"]["index_bits"] == 5
    assert len(doc["storage"]) == len(frame)
    assert {r["format"] for r in doc["totals"]} == set(frame["format"])


def test_storage_group_scales_and_llm_formats(capsys, tmp_path):
    # a 4096 x 512 projection at 2:4: every format gains 512 x 32 groups of a 16-bit
    # scale and a 4-bit zero point (hand computation); the LLM kernels' formats listed
    csv_path = tmp_path / "fc.csv"
    argv = ["storage", "--layer", "linear:in=4096,out=512", "--structure", "nm"]
    argv += ["--weight-bits", "4", "--group-size", "128", "--zero-point-bits", "4"]
    argv += ["--format", "nm,tiled-csl,tca-bme", "--csv", str(csv_path)]
    code, out, err = run(capsys, *argv)
    assert code == 0, err
    assert "16-bit scale + 4-bit zero per 128 inputs" in out
    frame = pd.read_csv(csv_path).set_index("format")
    assert (frame["scales_bits"] == 512 * 32 * 20).all()
    # Sparse-Marlin: 4-bit values and 2-bit positions of 2 kept per 4, plus the scales
    assert frame.at["nm", "total_bits"] == 512 * 4096 // 2 * 6 + 512 * 32 * 20
    code, out, err = run(capsys, "storage", "--help")
    assert "tiled-csl" in out and "tca-bme" in out and "--group-size" in out
    code, _, err = run(capsys, "storage", "lenet5", "--group-size", "-1")
    assert code == 2 and "--group-size" in err and "Traceback" not in err


def test_storage_several_networks_prints_totals(capsys):
    code, out, _ = run(capsys, "storage", "lenet5", "alexnet", "--format", "dense,csr-rel")
    assert code == 0
    assert "storage in MiB" in out and "alexnet" in out and "lenet5" in out
    assert "conv3" not in out  # totals only


def test_storage_inline_layer_and_levels(capsys, tmp_path):
    code, out, err = run(
        capsys, "storage", "--layer", "linear:in=64,out=32", "--sparsity", "0.9", "--format", "csr"
    )
    assert code == 0, err
    assert "2,048" in out  # 64 x 32 weights
    levels = tmp_path / "levels.yaml"
    levels.write_text("fc6: {rate: 11}\nconv1: {sparsity: 0.16}\n")
    code, out, err = run(capsys, "storage", "alexnet", "--levels", str(levels), "--format", "dense")
    assert code == 0, err
    assert "0.0909" in out and "0.8400" in out  # 1/11 and 1 - 0.16


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["storage", "nosuchnet"], "nosuchnet: no such model"),
        (["storage", "lenet5", "--rate", "0.5"], "rate must be"),
        (["storage", "lenet5", "--sparsity", "1.5"], "sparsity must be"),
        (["storage", "lenet5", "--weight-bits", "0"], "--weight-bits"),
        (["storage", "lenet5", "--pointer-bits", "2"], "pointer"),
        (["storage", "--layer", "conv2d:in=3,out=4,k=5,input=3"], "empty output"),
        (["storage", "--layer", "conv2d:in=3,out=4,k=3,input=8,groups=2"], "groups=2"),
        (["storage", "--layer", "pool:k=2"], "layer type 'pool'"),
        (["storage", "--layer", "linear:in=4,bogus=3"], "bogus"),
        (["storage", "lenet5", "--structured-rate", "0.5"], "--structured-rate"),
        (["storage", "lenet5", "--structure", "nm", "--structured", "nm", "--nm", "3:2"], "N:M"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(capsys, argv, needle):
    code, _, err = run(capsys, *argv)
    assert code == 2
    assert needle in err
    assert "Traceback" not in err


def test_bad_files_name_the_file(capsys, tmp_path):
    bad_model = tmp_path / "net.yaml"
    bad_model.write_text("name: x\nlayers:\n  - {name: a, type: linear, in_features: 0}\n")
    code, _, err = run(capsys, "storage", str(bad_model))
    assert code == 2 and str(bad_model) in err and "out_features" in err and "in_features" in err
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: [unclosed\n")
    code, _, err = run(capsys, "storage", str(broken))
    assert code == 2 and "not valid YAML" in err
    levels = tmp_path / "levels.yaml"
    levels.write_text("nolayer: {rate: 4}\n")
    code, _, err = run(capsys, "storage", "lenet5", "--levels", str(levels))
    assert code == 2 and "nolayer" in err and str(levels) in err
    levels.write_text("fc1: {rate: 0.3, sparsity: 0.5}\n")
    code, _, err = run(capsys, "storage", "lenet5", "--levels", str(levels))
    assert code == 2 and "exactly one" in err
    blocker = tmp_path / "file"
    blocker.write_text("")
    code, _, err = run(capsys, "storage", "lenet5", "--csv", str(blocker / "x.csv"))
    assert code == 2 and "cannot write" in err
    code, _, err = run(capsys, "storage", "lenet5", "--json", str(tmp_path / "\0.json"))
    assert code == 2 and "cannot write" in err


def test_usage_errors_exit_2_and_help_exits_0(capsys):
    code, _, err = run(capsys, "storage", "--format", "zip")
    assert code == 2 and "'zip' is not one of" in err
    code, out, _ = run(capsys, "storage", "--help")
    assert code == 0 and "examples:" in out and "--index-bits" in out
    code, out, _ = run(capsys)  # plain `prunesim` prints the help
    assert code == 0 and "commands:" in out and "estimate" in out


def test_console_entry_point_runs_without_traceback():
    proc = subprocess.run(
        [sys.executable, "-m", "simulator", "storage", "lenet5", "--rate", "0"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("prunesim: error:") and "Traceback" not in proc.stderr


def test_estimate_per_layer_and_files(capsys, tmp_path):
    code, out, err = run(
        capsys,
        "estimate",
        "lenet5",
        "--platform",
        "eie",
        "--rate",
        "8",
        "--weight-bits",
        "4",
        "--csv",
        str(tmp_path / "e.csv"),
        "--json",
        str(tmp_path / "e.json"),
    )
    assert code == 0, err
    assert "fc1" in out and "Totals" in out and "speedup" in out
    frame = pd.read_csv(tmp_path / "e.csv")
    assert set(frame["variant"]) == {"dense", "structured", "sparse"}
    assert set(frame["layer"]) == {"conv1", "conv2", "fc1", "fc2"}
    totals = pd.read_csv(tmp_path / "e-totals.csv").set_index("variant")
    assert totals.at["dense", "speedup"] == 1.0
    assert totals.at["sparse", "energy_j"] == pytest.approx(
        frame[frame["variant"] == "sparse"]["energy_j"].sum()
    )
    doc = json.loads((tmp_path / "e.json").read_text())
    assert len(doc["layers"]) == len(frame) and len(doc["totals"]) == 3


def test_estimate_several_platforms_totals_only(capsys):
    code, out, err = run(
        capsys, "estimate", "lenet5", "--platform", "eie,scalesim_32x32_ws", "--totals"
    )
    assert code == 0, err
    assert "eie" in out and "scalesim_32x32_ws" in out and "conv2" not in out


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["estimate", "lenet5", "--platform", "nosuch"], "no such hardware profile"),
        (
            ["estimate", "lenet5", "--platform", "eie", "--activation-density", "2"],
            "--activation-density",
        ),
        (["estimate", "lenet5", "--platform", "eie", "--rate", "0.1"], "rate must be"),
    ],
)
def test_estimate_bad_input(capsys, argv, needle):
    code, _, err = run(capsys, *argv)
    assert code == 2 and needle in err and "Traceback" not in err


def test_estimate_broken_profile_lists_problems(capsys, tmp_path):
    bad = tmp_path / "hw.yaml"
    bad.write_text("name: x\nclass: asic\nexecution: warp\nclock_hz: 1e9\n")
    code, _, err = run(capsys, "estimate", "lenet5", "--platform", str(bad))
    assert code == 2 and str(bad) in err and "execution" in err and "weight_bits" in err


FIXTURES = Path(__file__).resolve().parent / "fixtures"


def test_inspect_lists_layers_and_skipped_tensors(capsys, tmp_path):
    path = FIXTURES / "lenet5_ns_prune.pt"
    code, out, err = run(
        capsys, "inspect", str(path), "--model", "lenet5", "--json", str(tmp_path / "i.json")
    )
    assert code == 0, err
    assert "fc1.weight_orig" in out and "non-structured" in out and "mask tensor" in out
    assert "43,050" in out  # 10% of 430,500 kept (tests/fixtures/README.md)
    assert "conv1.bias" in out
    doc = json.loads((tmp_path / "i.json").read_text())
    assert [r["layer"] for r in doc["layers"]] == ["conv1", "conv2", "fc1", "fc2"]
    assert sum(r["kept"] for r in doc["layers"]) == 43_050


def test_storage_and_estimate_take_a_checkpoint(capsys, tmp_path):
    code, _, err = run(
        capsys,
        "storage",
        "--checkpoint",
        str(FIXTURES / "lenet5_ns.onnx"),
        "--format",
        "dense,csr",
        "--weight-bits",
        "8",
        "--csv",
        str(tmp_path / "s.csv"),
    )
    assert code == 0, err
    frame = pd.read_csv(tmp_path / "s.csv")
    csr = frame[frame["format"] == "csr"]
    assert csr["nnz"].sum() == 43_050
    code, _out, err = run(
        capsys,
        "estimate",
        "lenet5",
        "--checkpoint",
        str(FIXTURES / "lenet5_filter.safetensors"),
        "--platform",
        "eie",
        "--totals",
        "--csv",
        str(tmp_path / "e.csv"),
    )
    assert code == 0, err
    e = pd.read_csv(tmp_path / "e.csv")
    # the filter-pruned file is run as the structured variant, at its own density
    assert set(e["variant"]) == {"dense", "structured", "sparse"}
    s = e[e["variant"] == "structured"]
    assert (
        s["density"].round(3).tolist() == e[e["variant"] == "sparse"]["density"].round(3).tolist()
    )


def test_bad_checkpoint_is_one_line(capsys, tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"PK\x03\x04garbage")
    code, _, err = run(capsys, "inspect", str(bad))
    assert code == 2 and str(bad) in err and "Traceback" not in err
    code, _, err = run(capsys, "storage", "--checkpoint", str(tmp_path / "missing.pt"))
    assert code == 2 and "missing.pt" in err


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["storage", "lenet5", "--seed", "-1"], "--seed"),
        (["storage", "lenet5", "--format", ""], "--format"),
        (["estimate", "lenet5", "--platform", ","], "no platform given"),
        (
            ["estimate", "lenet5", "--platform", "eie", "--activation-bits", "0"],
            "--activation-bits",
        ),
        (["study", "--networks", ""], "--networks"),
        (["study", "--jobs", "0"], "--jobs"),
        (["study", "--networks", "lenet5", "--rate", "bogus=8"], "no network bogus"),
        (["study", "--sweep-rates", "nan,2"], "finite"),
        (["storage", "--layer", "linear:in=99999999999999999999,out=4"], "2**31"),
        (["storage", "--layer", "linear:in=1000000,out=1000000"], "over the memory limit"),
    ],
)
def test_more_bad_input(capsys, tmp_path, argv, needle):
    code, _, err = run(capsys, *argv, *(["--out", str(tmp_path)] if argv[0] == "study" else []))
    assert code == 2 and needle in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1  # one line, no usage block


@pytest.mark.parametrize(
    ("name", "text", "needle"),
    [
        ("dup.csv", "name,h,w,fh,fw,c,k,s\nc1,8,8,3,3,2,4,1\nc1,8,8,3,3,2,4,1\n", "duplicate"),
        ("zero.csv", "name,h,w,fh,fw,c,k,s\nc1,8,8,3,3,2,4,0\n", "stride"),
        (
            "only.yaml",
            "name: x\nlayers:\n  - {name: a, type: matmul, m: 2, k: 2, n: 2}\n",
            "no layers with weights",
        ),
    ],
)
def test_bad_model_files(capsys, tmp_path, name, text, needle):
    path = tmp_path / name
    path.write_text(text)
    code, _, err = run(capsys, "storage", str(path))
    assert code == 2 and needle in err and "Traceback" not in err


def test_binary_topology_and_broken_profiles(capsys, tmp_path):
    csv = tmp_path / "bin.csv"
    csv.write_bytes(b"name,a\n\xff\xfe,1\n")
    code, _, err = run(capsys, "storage", str(csv))
    assert code == 2 and "not UTF-8" in err
    for body, needle in (
        ("extends: eie\nname: n\nclock_hz: .nan\n", "finite"),
        ("extends: zcu102\nname: z\nfpga: {dense_pe: {uram: 1}}\n", "not one PE fits"),
    ):
        prof = tmp_path / "hw.yaml"
        prof.write_text(body)
        code, _, err = run(capsys, "estimate", "lenet5", "--platform", str(prof))
        assert code == 2 and needle in err and "Traceback" not in err


def test_estimate_notes_weights_that_stream_from_dram(capsys, tmp_path):
    """EIE keeps weights on chip; AlexNet's FC layers do not fit: one note per
    (network, platform, variant) with spilled layers, in sorted order, whose layer count
    and megabytes are those of the per-layer CSV (counted here with pandas)."""
    path = tmp_path / "alexnet.csv"
    code, out, _ = run(capsys, "estimate", "alexnet", "--platform", "eie", "--csv", str(path))
    assert code == 0
    rows = pd.read_csv(path)
    spilled = rows[rows["weights_from_dram_fraction"] > 0]
    want = []
    for (net, plat, variant), g in spilled.groupby(["network", "platform", "variant"]):
        mb = (g["weights_stored_bytes"] * g["weights_from_dram_fraction"]).sum() / 1e6
        want.append(f"note: {net} {variant} on {plat}: the weights of {len(g)} layer(s) do not")
        want.append(f"{mb:.3g} MB stream from DRAM")
    assert len(want) == 6  # dense, sparse and structured all spill at 8x
    notes = [line for line in out.splitlines() if line.startswith("note: alexnet")]
    assert len(notes) == 3
    for note, (head, size) in zip(notes, zip(want[::2], want[1::2], strict=True), strict=True):
        assert note.startswith(head) and size in note


def test_estimate_group_size_streams_scales_and_refuses_a_negative_one(capsys, tmp_path):
    """--group-size on estimate: the A100's dense DRAM traffic grows by the scales (a
    16-bit scale per 128 inputs of every output, summed over BERT-base's weighted
    layers, counted here from its layers); a negative size is one line, exit 2."""
    from simulator.workloads import load_network

    out = {}
    for name, extra in (("plain", []), ("grouped", ["--group-size", "128"])):
        path = tmp_path / f"{name}.csv"
        argv = ["estimate", "bert_base", "--platform", "a100", "--csv", str(path), *extra]
        code, _, _ = run(capsys, *argv)
        assert code == 0
        rows = pd.read_csv(path.with_name(path.stem + "-totals.csv"))
        out[name] = rows.set_index("variant")["dram_bits"]
    scales = sum(
        layer.gemm.groups * layer.gemm.rows * -(-layer.gemm.cols // 128) * 16
        for layer in load_network("bert_base").prunable_layers
    )
    assert out["grouped"]["dense"] - out["plain"]["dense"] == scales
    code, _, err = run(capsys, "estimate", "bert_base", "--platform", "a100", "--group-size", "-1")
    assert code == 2 and "--group-size" in err and "Traceback" not in err
