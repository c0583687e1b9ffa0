"""Resume that cannot lie: the study's tables equal golden files made before parts
were reworked (tests/data/study_golden), whether the study ran in one go, was killed
at random points, or found damaged, stale or colliding parts; every part it does
not reuse is named with a reason."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from simulator.cli import main
from simulator.errors import ConfigError
from simulator.study import TABLES, StudyConfig, run_study
from simulator.study.output import write_study, write_tables
from simulator.studyparts import decode_table, encode_table

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "data" / "study_golden"
sys.path.insert(0, str(GOLDEN))
from make_golden import golden_config  # noqa: E402

TINY = GOLDEN / "tiny.yaml"


def _tiny_config(**kw) -> StudyConfig:
    fields = dict(
        networks=(str(TINY),),
        platforms=("eie",),
        weight_bits=(4,),
        index_bits=(4,),
        structured_rates=(2.0,),
        sweep_rates=(2.0, 4.0),
    )
    return StudyConfig(**{**fields, **kw})


def _same_as_golden(out: Path) -> None:
    for golden in sorted((GOLDEN / "tables").iterdir()):
        got = out / "tables" / golden.name
        assert got.read_bytes() == golden.read_bytes(), golden.name


def _parts(out: Path) -> dict[str, Path]:
    """Network name -> its part folder (the one with a manifest)."""
    found = {}
    for manifest in (out / "parts").glob("*/*/manifest.json"):
        found[json.loads(manifest.read_text())["name"]] = manifest.parent
    return found


def test_uninterrupted_and_resumed_tables_equal_the_golden_files(tmp_path):
    result = run_study(golden_config(), tmp_path, jobs=1)
    assert result.resumed == () and result.recomputed == ()
    write_tables(result)
    _same_as_golden(tmp_path)
    shutil.rmtree(tmp_path / "tables")
    again = run_study(golden_config(), tmp_path, jobs=1)
    assert again.resumed == ("lenet5", "tiny") and again.recomputed == ()
    write_tables(again)
    _same_as_golden(tmp_path)  # "" stays "" in real_vs_iid (it used to become null)
    text = (tmp_path / "tables" / "real_vs_iid.json").read_text()
    assert '"platform":""' in text


def _corrupt(path: Path, how: str) -> None:
    data = path.read_bytes()
    if how == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "flip":  # a digit changed: still valid JSON, no longer the same table
        i = next(i for i in range(len(data) // 2, len(data)) if data[i : i + 1].isdigit())
        digit = b"1" if data[i : i + 1] != b"1" else b"2"
        path.write_bytes(data[:i] + digit + data[i + 1 :])
    elif how == "delete":
        path.unlink()


DRIVER = """
import sys
sys.path.insert(0, {golden!r})
from make_golden import golden_config
from simulator.study import run_study
from simulator.study.output import write_tables

if __name__ == "__main__":
    write_tables(run_study(golden_config(), sys.argv[1], jobs=int(sys.argv[2])))
"""


@pytest.mark.slow
def test_killed_at_random_points_and_damaged_parts_resume_to_the_same_tables(tmp_path):
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER.format(golden=str(GOLDEN)))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = tmp_path / "study"
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    for attempt in range(4):
        delay = rng.uniform(0.5, 5.0)
        proc = subprocess.Popen(
            [sys.executable, str(driver), str(out), str(1 + attempt % 2)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            proc.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode in (0, -signal.SIGKILL), (seed, err.decode()[-2000:])
    result = run_study(golden_config(), out, jobs=1)
    write_tables(result)
    _same_as_golden(out)

    rounds = [
        {"lenet5": ("compute_sweep.json", "truncate"), "tiny": ("verdict.json", "empty")},
        {"lenet5": ("storage_curves.json", "flip"), "tiny": ("manifest.json", "delete")},
        {"lenet5": ("real_vs_iid.json", "delete"), "tiny": ("manifest.json", "truncate")},
    ]
    for damage in rounds:
        parts = _parts(out)
        assert set(parts) == {"lenet5", "tiny"}
        for name, (file, how) in damage.items():
            _corrupt(parts[name] / file, how)
        result = run_study(golden_config(), out, jobs=1 + (damage is rounds[1]))
        assert result.resumed == ()
        reasons = dict(line.split(": ", 1) for line in result.recomputed)
        assert set(reasons) == {"lenet5", "tiny"}, result.recomputed
        for name, (file, _) in damage.items():
            if file != "manifest.json":
                assert file in reasons[name], reasons
        write_tables(result)
        _same_as_golden(out)


def test_names_that_the_safe_form_merges_keep_their_own_parts(tmp_path):
    models = []
    for i, name in enumerate(("net a", "net_a")):
        path = tmp_path / f"m{i}.yaml"
        path.write_text(
            f"name: {name}\nlayers:\n"
            f"  - {{name: fc, type: linear, in_features: {16 * (i + 1)}, out_features: 8}}\n"
        )
        models.append(str(path))
    cfg = _tiny_config(networks=tuple(models))
    first = run_study(cfg, tmp_path / "out")
    again = run_study(cfg, tmp_path / "out")
    assert again.resumed == ("net a", "net_a") and again.recomputed == ()
    for result in (first, again):
        assert sorted(result.tables["verdict"]["network"]) == ["net a", "net_a"]
    pd.testing.assert_frame_equal(first.tables["verdict"], again.tables["verdict"])
    assert len(list((tmp_path / "out" / "parts").iterdir())) == 2
    report = write_study(again).read_text()  # one plot each, none replacing the other
    storage = sorted(p.name for p in (tmp_path / "out" / "plots").glob("storage_*.png"))
    assert len(storage) == 2 and all(f"plots/{name}" in report for name in storage)


def _lenet5_checkpoint(path: Path, density: float) -> None:
    rng = np.random.default_rng(0)
    arrays = {}
    shapes = {"conv1": (20, 1, 5, 5), "conv2": (50, 20, 5, 5), "fc1": (500, 800), "fc2": (10, 500)}
    for name, shape in ((f"{n}.weight", s) for n, s in shapes.items()):
        w = rng.normal(size=shape).astype(np.float32) + 3
        w[rng.random(shape) > density] = 0
        arrays[name] = w
    np.savez(path, **arrays)


def test_a_checkpoint_rewritten_with_the_same_size_and_date_is_noticed(tmp_path):
    ckpt, other = tmp_path / "lenet5.npz", tmp_path / "other.npz"
    _lenet5_checkpoint(ckpt, 0.5)
    _lenet5_checkpoint(other, 0.2)
    assert ckpt.stat().st_size == other.stat().st_size
    cfg = _tiny_config(networks=("lenet5",), checkpoints={"lenet5": str(ckpt)})
    first = run_study(cfg, tmp_path / "out")
    stat = ckpt.stat()
    ckpt.write_bytes(other.read_bytes())  # as `cp -p` or `rsync -a` would leave it
    os.utime(ckpt, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert (ckpt.stat().st_size, ckpt.stat().st_mtime_ns) == (stat.st_size, stat.st_mtime_ns)
    second = run_study(cfg, tmp_path / "out")
    assert second.resumed == ()
    assert second.recomputed == ("lenet5: changed since its part was computed: checkpoint",)
    rates = [r.tables["verdict"]["nonstructured_rate"].iloc[0] for r in (first, second)]
    assert rates[0] == pytest.approx(2, rel=0.2) and rates[1] == pytest.approx(5, rel=0.2)


def test_studies_with_other_settings_keep_their_own_parts(tmp_path):
    out = tmp_path / "out"
    seeds = {s: run_study(_tiny_config(seed=s), out) for s in (0, 1)}
    assert all(r.resumed == () for r in seeds.values())
    for s in (0, 1):  # both parts are still there: each run reuses its own
        again = run_study(_tiny_config(seed=s), out)
        assert again.resumed == ("tiny",) and again.recomputed == ()
        pd.testing.assert_frame_equal(again.tables["verdict"], seeds[s].tables["verdict"])
    assert not seeds[0].tables["compute_sweep"].equals(seeds[1].tables["compute_sweep"])
    # without resume, everything is recomputed and nothing is called stale
    fresh = run_study(_tiny_config(seed=0), out, resume=False)
    assert fresh.resumed == () and fresh.recomputed == ()


def test_an_edited_network_file_is_noticed(tmp_path):
    model = tmp_path / "m.yaml"
    text = "name: m\nlayers:\n  - {name: fc, type: linear, in_features: 32, out_features: 8}\n"
    model.write_text(text)
    cfg = _tiny_config(networks=(str(model),))
    run_study(cfg, tmp_path / "out")
    model.write_text(text.replace("32", "64"))
    again = run_study(cfg, tmp_path / "out")
    assert again.recomputed == ("m: changed since its part was computed: network",)


@pytest.mark.parametrize("bad", ["report.md", "plots", "tables", "tables/verdict.csv"])
def test_an_output_folder_that_cannot_take_the_results_is_refused_first(tmp_path, bad, capsys):
    out = tmp_path / "out"
    path = out / bad
    path.parent.mkdir(parents=True, exist_ok=True)
    if bad.endswith((".md", ".csv")):
        path.mkdir()
    else:
        path.write_text("a file")
    started = time.monotonic()
    with pytest.raises(ConfigError, match=str(path)):
        run_study(_tiny_config(), out)
    assert time.monotonic() - started < 5  # refused before any work
    assert not (out / "parts").exists()
    argv = ["study", "--networks", str(TINY), "--platforms", "eie", "--out", str(out)]
    assert main([*argv, "--jobs", "1"]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "Traceback" not in err


def test_write_study_leaves_no_temporary_files(tmp_path):
    result = run_study(_tiny_config(), tmp_path)
    write_study(result)
    hidden = [p for p in tmp_path.rglob(".*") if p.is_file()]
    assert hidden == []
    assert (tmp_path / "report.md").is_file()
    assert {p.name for p in (tmp_path / "tables").iterdir()} == {
        f"{t}.{ext}" for t in TABLES for ext in ("csv", "json")
    }


_text = st.text(alphabet=st.characters(codec="utf-8"), max_size=6)
_float = st.floats(allow_nan=True, allow_infinity=True)


@given(
    st.lists(
        st.tuples(_text, st.none() | _text, _float, st.integers(-(2**62), 2**62), st.booleans())
    )
)
def test_a_table_survives_its_part_file_exactly(rows):
    frame = pd.DataFrame(rows, columns=["s", "maybe", "x", "n", "b"])
    frame["s"] = frame["s"].astype("str")
    if len(frame):
        frame["maybe"] = frame["maybe"].astype("str")
        frame["x"] = frame["x"].astype("float64")
        frame["n"] = frame["n"].astype("int64")
        frame["b"] = frame["b"].astype("bool")
    back = decode_table(encode_table(frame))
    pd.testing.assert_frame_equal(back, frame.reset_index(drop=True))
    assert back.to_csv(index=False) == frame.to_csv(index=False)
    assert back.to_json(orient="records", double_precision=15) == frame.to_json(
        orient="records", double_precision=15
    )


def test_computing_a_network_uses_no_presentation_code():
    """The files left out of the parts' code hash (the report, plots, CLI) are not
    what computes a network: a change to them may reuse every finished part."""
    from simulator.study.runner import PRESENTATION

    modules = [
        "simulator." + p.removesuffix("/").removesuffix(".py").replace("/", ".")
        for p in PRESENTATION
    ]
    code = (
        "import sys\n"
        "from simulator.hwconfig import load_platform\n"
        "from simulator.study import StudyConfig\n"
        "from simulator.study.runner import _network_job\n"
        "from simulator.workloads import load_network\n"
        "from simulator.study import study_network\n"
        "cfg = StudyConfig(networks=('lenet5',), platforms=('eie', 'a100'), weight_bits=(8,),\n"
        "                  index_bits=(4,), structured_rates=(2.0,), sweep_rates=(2.0, 8.0))\n"
        "platforms = [load_platform(n) for n in cfg.platforms]\n"
        "study_network(load_network('lenet5'), platforms, cfg)\n"
        f"print([m for m in {modules!r} if m in sys.modules])\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    assert out.stdout.strip().splitlines()[-1] == "[]"
