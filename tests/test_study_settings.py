"""The study honours every command-line setting: each option, parsed as the command
line parses it, reaches the tables (compared with a run without it)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from simulator.cli import main
from simulator.cli import study as study_cli
from simulator.errors import ConfigError
from simulator.study import run_study

BASE = [
    "--networks", "lenet5",
    "--platforms", "eie,a100",
    "--weight-bits", "4",
    "--index-bits", "4",
    "--structured-rates", "2",
    "--sweep-rates", "2,8",
]  # fmt: skip
ROOT = Path(__file__).resolve().parents[1]
CKPT = ROOT / "tests" / "fixtures" / "lenet5_ns_prune.pt"


def tables(tmp_path: Path, *extra: str) -> dict[str, pd.DataFrame]:
    args = study_cli.build_parser().parse_args([*BASE, *extra])
    out = tmp_path / str(abs(hash(extra)))
    return run_study(study_cli.config(args), out, resume=False, jobs=1).tables


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> dict[str, pd.DataFrame]:
    return tables(tmp_path_factory.mktemp("base"))


def test_networks_and_platforms(tmp_path):
    t = tables(tmp_path, "--networks", "lenet5,alexnet", "--platforms", "tpu_v1")
    assert set(t["verdict"]["network"]) == {"lenet5", "alexnet"}
    assert set(t["compute_sweep"]["platform"]) == {"tpu_v1"}


def test_weight_bits(tmp_path, base):
    t = tables(tmp_path, "--weight-bits", "2,8")
    assert set(t["storage_breakeven"]["weight_bits"]) == {2, 8}
    assert set(base["storage_breakeven"]["weight_bits"]) == {4}
    # a100 runs 8-bit weights natively (not 2), EIE 4-bit only: its smallest then
    assert set(t["compute_sweep"].query("platform == 'a100'")["weight_bits"]) == {8}


def test_index_bits_reach_storage_and_the_sparse_engines(tmp_path, base):
    t = tables(tmp_path, "--index-bits", "8,4")
    assert set(t["storage_breakeven"]["index_bits"]) == {4, 8}

    def eie_sparse(tab):
        rows = tab["compute_sweep"].query(
            "platform == 'eie' and kind == 'sparse' and layer == '(network)'"
        )
        return rows.set_index("rate")["energy_j"]

    # 8-bit relative indices on EIE: bigger entries, far fewer fillers at rate 348
    assert not eie_sparse(t).equals(eie_sparse(base))


def test_structure(tmp_path, base):
    t = tables(tmp_path, "--structure", "channel,column")
    assert set(t["storage_breakeven"]["structure"]) == {"channel", "column"}
    assert set(t["verdict"]["structure"]) == {"channel"}
    assert "channel" in set(t["compute_sweep"]["kind"])
    assert set(base["verdict"]["structure"]) == {"filter"}


def test_structured_and_sweep_rates(tmp_path):
    t = tables(tmp_path, "--structured-rates", "3,5", "--sweep-rates", "4,16")
    assert set(t["storage_breakeven"]["structured_rate"]) == {3.0, 5.0}
    swept = set(t["compute_sweep"].query("kind == 'sparse'")["rate"])
    assert {4.0, 16.0} <= swept and 2.0 not in swept


def test_rates(tmp_path, base):
    t = tables(tmp_path, "--rate", "lenet5=20")
    assert set(t["verdict"]["nonstructured_rate"]) == {20.0}
    assert set(base["verdict"]["nonstructured_rate"]) == {348.0}  # Ma et al.'s rate
    t = tables(tmp_path, "--networks", "resnet18", "--platforms", "tpu_v1", "--default-rate", "5")
    assert set(t["verdict"]["nonstructured_rate"]) == {5.0}


def test_seed(tmp_path, base):
    t = tables(tmp_path, "--seed", "7")
    cols = ["latency_s", "energy_j"]
    a = base["compute_sweep"].query("kind == 'sparse' and platform == 'eie'")[cols]
    b = t["compute_sweep"].query("kind == 'sparse' and platform == 'eie'")[cols]
    assert not a.reset_index(drop=True).equals(b.reset_index(drop=True))


def test_checkpoint(tmp_path, base):
    t = tables(tmp_path, "--checkpoint", f"lenet5={CKPT}")
    assert len(t["real_vs_iid"]) and base["real_vs_iid"].empty
    assert set(t["verdict"]["nonstructured_rate"]) == {10.0}  # 43,050 of 430,500 kept


def test_bad_settings_are_refused(tmp_path):
    for extra in (["--rate", "vgg16=8"], ["--index-bits", "0"], ["--weight-bits", "99"]):
        with pytest.raises(ConfigError):
            tables(tmp_path, *extra)


def test_the_command_end_to_end(capsys, tmp_path):
    """Every option at once through `prunesim study`, jobs and resume included."""
    argv = [
        "study", *BASE, "--structure", "channel", "--rate", "lenet5=20", "--seed", "3",
        "--index-bits", "8", "--out", str(tmp_path / "out"), "--jobs", "2",
    ]  # fmt: skip
    assert main(argv) == 0
    verdict = pd.read_csv(tmp_path / "out" / "tables" / "verdict.csv")
    assert set(verdict["structure"]) == {"channel"}
    assert set(verdict["nonstructured_rate"]) == {20.0}
    first = (tmp_path / "out" / "tables" / "compute_sweep.csv").read_bytes()
    capsys.readouterr()
    assert main(argv) == 0
    assert "reused earlier results for: lenet5" in capsys.readouterr().out
    assert (tmp_path / "out" / "tables" / "compute_sweep.csv").read_bytes() == first
    assert main([*argv, "--no-resume"]) == 0
    assert "reused" not in capsys.readouterr().out


def test_checkpoint_of_a_network_given_as_a_file(tmp_path):
    """Checkpoints and rates are keyed by the network's own name, also when the
    network comes from a file."""
    model = tmp_path / "my_lenet.yaml"
    model.write_text((ROOT / "models" / "lenet5.yaml").read_text())
    t = tables(tmp_path, "--networks", str(model), "--checkpoint", f"lenet5={CKPT}")
    assert set(t["verdict"]["nonstructured_rate"]) == {10.0}
    with pytest.raises(ConfigError, match="checkpoints: no network vgg16"):
        tables(tmp_path, "--checkpoint", f"vgg16={CKPT}")
