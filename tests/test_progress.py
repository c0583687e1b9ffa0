"""Progress of long calls: a bar on a terminal, log lines when output is redirected,
and the study's steps weighted by their expected work."""

from __future__ import annotations

import io
import re
import time

import pytest

from simulator.cli.options import Progress, clock
from simulator.study import StudyConfig, run_study


def test_clock():
    assert [clock(s) for s in (0, 59.4, 61, 3600, 3725)] == [
        "0:00",
        "0:59",
        "1:01",
        "1:00:00",
        "1:02:05",
    ]


def test_redirected_output_gets_log_lines_with_work_weighted_percentages(capsys):
    with Progress("step", "study", interval_s=0) as progress:
        tick = progress(3, work=10.0)
        tick("lenet5: storage", 1.0)
        tick("lenet5: eie, 4-bit", 4.0)
        tick("lenet5: a100, 8-bit", 5.0)
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "study: 3 steps to do"
    assert re.fullmatch(
        r"study: 1/3 steps \(10 %\), lenet5: storage, 0:00 elapsed, about 0:00 left", lines[1]
    )
    assert lines[2].startswith("study: 2/3 steps (50 %), lenet5: eie, 4-bit, 0:00 elapsed")
    assert (
        lines[3].startswith("study: 3/3 steps (100 %), lenet5: a100, 8-bit")
        and "left" not in lines[3]
    )


def test_log_lines_are_spaced_by_the_interval(capsys):
    with Progress("step", "study", interval_s=3600) as progress:
        tick = progress(100)
        for _ in range(100):
            tick("x")
    assert capsys.readouterr().err.splitlines() == ["study: 100 steps to do; a line every 3600 s"]


def test_a_terminal_gets_a_bar(monkeypatch):
    err = io.StringIO()
    err.isatty = lambda: True
    monkeypatch.setattr("sys.stderr", err)
    with Progress("step", "study") as progress:
        tick = progress(4, work=8.0)
        tick("a", 2.0)
        time.sleep(0.15)  # tqdm redraws at most every 0.1 s
        tick("b", 2.0)
    text = err.getvalue()
    assert "study:  50%" in text and "2/4 steps b" in text


@pytest.mark.parametrize("jobs", [1, 2])
def test_study_steps_add_up_to_the_work_announced(tmp_path, jobs):
    calls = []

    def progress(total, work=None):
        calls.append(("start", total, work))
        return lambda note="", w=1.0: calls.append(("tick", note, w))

    cfg = StudyConfig(
        networks=("lenet5", "resnet18"),
        platforms=("eie", "a100"),
        weight_bits=(8,),
        index_bits=(4,),
        structured_rates=(2.0,),
        sweep_rates=(2.0, 8.0),
    )
    run_study(cfg, tmp_path, progress=progress, jobs=jobs)
    (_, total, work), ticks = calls[0], calls[1:]
    assert len(ticks) == total == 2 * 3  # per network: storage, then each platform
    assert sum(w for _, _, w in ticks) == pytest.approx(work)
    notes = {n for _, n, _ in ticks}
    assert {"lenet5: storage", "resnet18: a100, 8-bit"} <= notes
    assert any(n.startswith("lenet5: eie, ") for n in notes)
    # resnet18's steps weigh more than lenet5's: more weights and layers
    weight = {n: w for _, n, w in ticks}
    assert weight["resnet18: storage"] > weight["lenet5: storage"]


def test_a_resumed_study_counts_only_what_is_left(tmp_path):
    calls = []

    def progress(total, work=None):
        calls.append((total, work))
        return lambda note="", w=1.0: None

    cfg = StudyConfig(
        networks=("lenet5",),
        platforms=("eie",),
        weight_bits=(8,),
        index_bits=(4,),
        structured_rates=(2.0,),
        sweep_rates=(2.0, 8.0),
    )
    run_study(cfg, tmp_path, progress=progress, jobs=1)
    assert len(calls) == 1 and calls[0][0] == 2  # storage, then eie
    run_study(cfg, tmp_path, progress=progress, jobs=1)
    assert len(calls) == 1  # nothing left to do: no progress at all
