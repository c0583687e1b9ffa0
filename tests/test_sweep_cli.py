"""``prunesim sweep``: bad input is exit code 2 without a traceback, results load in
pandas with typed columns, and a sweep killed with SIGKILL resumes to exactly the rows
of an uninterrupted one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import yaml

from simulator.cli import main
from simulator.sweep import load_spec, run_sweep

ROOT = Path(__file__).resolve().parents[1]

SPEC = {
    "name": "small",
    "network": "lenet5",
    "platform": "eie",
    "variants": ["structured", "sparse"],
    "pruning": {"rate": 8},
    "settings": {"weight_bits": 4},
    "sweep": {
        "mode": "grid",
        "parameters": {
            "compute.pes": {"log_range": [8, 64], "num": 4},
            "compute.fifo_depth": [2, 8],
            "memory.dram.bandwidth_bytes_per_s": {"log_range": [1e9, 1e11], "num": 3},
        },
    },
}


def write(tmp_path: Path, data: dict, name: str = "spec.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_bad_input_is_exit_2_without_a_traceback(tmp_path, capsys):
    bad = write(
        tmp_path, {**SPEC, "platfrom": "eie", "sweep": {"parameters": {"compute.pess": [1]}}}
    )
    code, out, err = run(capsys, "sweep", bad, "--out", tmp_path / "o")
    assert code == 2 and out == ""
    assert "Traceback" not in err
    assert "2 problems" in err and "platfrom" in err and "did you mean pes" in err
    code, _, err = run(capsys, "sweep", tmp_path / "missing.yaml")
    assert code == 2 and "cannot read file" in err and len(err.splitlines()) == 1
    code, _, err = run(capsys, "sweep", bad, "--jobs", "0")
    assert code == 2 and "--jobs" in err and len(err.splitlines()) == 1
    code, _, err = run(capsys, "sweep", bad, "--serial", "--dask")
    assert code == 2 and "not allowed with" in err and len(err.splitlines()) == 1


def test_without_dask_installed_dask_is_one_line_naming_the_extra(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed fails
    spec = write(tmp_path, SPEC)
    code, out, err = run(capsys, "sweep", spec, "--dask", "--out", tmp_path / "o")
    assert code == 2 and out == ""
    assert err.strip() == (
        "prunesim: error: --dask: needs Dask, the optional dependency of prunesim[dask]: "
        "pip install 'prunesim[dask]'"
    )
    assert not (tmp_path / "o").exists()  # refused before anything is written


def test_without_pyarrow_parquet_is_one_line_and_csv_is_the_default(tmp_path, capsys, monkeypatch):
    from simulator.sweep import store

    monkeypatch.setattr(store, "parquet_available", lambda: False)  # as without pyarrow
    spec = write(tmp_path, SPEC)
    code, _, err = run(capsys, "sweep", spec, "--format", "parquet", "--out", tmp_path / "p")
    assert code == 2 and len(err.splitlines()) == 1 and "pip install pyarrow" in err
    code, _, err = run(capsys, "sweep", spec, "--serial", "--limit", "2", "--out", tmp_path / "c")
    assert code == 0 and "writing CSV" in err
    assert (tmp_path / "c" / "results.csv").is_file()


def test_results_load_in_pandas_with_typed_columns(tmp_path, capsys):
    spec = write(tmp_path, SPEC)
    for fmt in ("parquet", "csv"):
        out_dir = tmp_path / fmt
        code, out, _ = run(
            capsys, "sweep", spec, "--serial", "--format", fmt, "--out", out_dir, "--limit", "5"
        )
        assert code == 0, out
        assert "small: 5 points x 3 variants (dense, structured, sparse); 5 evaluated" in out
        path = out_dir / f"results.{fmt}"
        assert f"results: {path}" in out
        table = pd.read_parquet(path) if fmt == "parquet" else pd.read_csv(path)
        assert len(table) == 15
        assert str(table["compute.pes"].dtype) == "int64"
        assert str(table["index"].dtype) == "int64"
        for column in ("memory.dram.bandwidth_bytes_per_s", "latency_s", "energy_j", "speedup"):
            assert str(table[column].dtype) == "float64", column
        assert set(table["variant"]) == {"dense", "structured", "sparse"}
        assert set(table["status"]) == {"ok"}
        about = json.loads((out_dir / "sweep.json").read_text())
        assert list(table.columns) == list(about["columns"])
    a = pd.read_parquet(tmp_path / "parquet" / "results.parquet")
    b = pd.read_csv(tmp_path / "csv" / "results.csv")
    assert (a["latency_s"] == b["latency_s"]).all()  # CSV keeps every digit


def test_a_sweep_killed_with_sigkill_resumes_to_the_rows_of_an_uninterrupted_one(tmp_path):
    data = {
        **SPEC,
        "network": "alexnet",
        "variants": ["sparse"],
        "sweep": {
            "mode": "grid",
            "parameters": {
                "compute.pes": {"log_range": [8, 256], "num": 6},
                "compute.fifo_depth": [2, 4, 8, 16],
                "memory.dram.bandwidth_bytes_per_s": {"log_range": [1e9, 1e11], "num": 5},
            },
        },
    }
    path = write(tmp_path, data)
    out = tmp_path / "killed"
    argv = [sys.executable, "-m", "simulator", "sweep", str(path), "--out", str(out)]
    argv += ["--jobs", "2", "--batch-size", "4", "--format", "parquet"]
    proc = subprocess.Popen(
        argv,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 180
        while len(list((out / "chunks").glob("chunk-*.json"))) < 3:
            assert proc.poll() is None, proc.communicate()[1].decode()[-2000:]
            assert time.monotonic() < deadline, "no chunk written"
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)  # the parent and its workers, at once
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert not (out / "results.parquet").exists()
    spec = load_spec(path)
    resumed = run_sweep(spec, out, engine="serial", resume=True, fmt="parquet")
    assert resumed.reused >= 3 * 4 and resumed.computed > 0, (resumed.reused, resumed.computed)
    whole = run_sweep(spec, tmp_path / "whole", engine="serial", fmt="parquet")
    pd.testing.assert_frame_equal(resumed.table, whole.table)
    on_disk = pd.read_parquet(out / "results.parquet")
    assert len(on_disk) == 120 * 2 and not on_disk.duplicated(["point", "variant"]).any()


def _session(sid: int) -> list[int]:
    """Live processes of a session (zombies aside)."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            text = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2 :].split()
        if int(fields[3]) == sid and fields[0] != "Z":
            out.append(int(entry))
    return out


def test_sigterm_stops_every_worker_and_keeps_the_finished_chunks(tmp_path):
    data = {
        **SPEC,
        "network": "alexnet",
        "variants": ["sparse"],
        "sweep": {
            "parameters": {
                "compute.pes": {"log_range": [8, 256], "num": 6},
                "compute.fifo_depth": [2, 4, 8, 16, 32],
            },
        },
    }
    path = write(tmp_path, data)
    out = tmp_path / "stopped"
    argv = [sys.executable, "-m", "simulator", "sweep", str(path), "--out", str(out)]
    argv += ["--jobs", "2", "--batch-size", "1", "--format", "csv"]
    proc = subprocess.Popen(
        argv,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 180
        while len(list((out / "chunks").glob("chunk-*.json"))) < 2:
            assert proc.poll() is None, proc.communicate()[1].decode()[-2000:]
            assert time.monotonic() < deadline, "no chunk written"
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
        deadline = time.monotonic() + 5
        while (left := _session(proc.pid)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert left == []
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    text = err.decode()
    assert proc.returncode == 143 and "stopped by SIGTERM" in text and "--resume" in text
    assert "Traceback" not in text
    assert len(list((out / "chunks").glob("chunk-*.json"))) >= 2
    assert not (out / "results.csv").exists()
