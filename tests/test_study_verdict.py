"""The verdict counts only real wins: the margin rule on hand-made inputs, the
``--margin`` option, the published structured rates at equal accuracy (every one with
its source) and the comparison read off the structured curve, checked by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from simulator.cli import main
from simulator.cli.study import build_parser
from simulator.errors import ConfigError
from simulator.hwconfig import load_platform
from simulator.study import DEFAULT_NETWORKS, StudyConfig, run_study, study_network
from simulator.study import compare as compare_module
from simulator.study.accuracy import AccuracyRate, accuracy_rates, parse_rates
from simulator.study.verdict import at_rate, beyond_grid, decide, is_win
from simulator.workloads import load_network


def _verdict(**ratios: list[float]) -> pd.DataFrame:
    n = len(next(iter(ratios.values())))
    base = {
        "speedup_vs_dense": [1.0] * n,
        "energy_ratio_vs_dense": [1.0] * n,
        "latency_vs_structured_same_rate": [1.0] * n,
        "energy_vs_structured_same_rate": [1.0] * n,
        "latency_vs_structured_equal_accuracy": [math.nan] * n,
        "energy_vs_structured_equal_accuracy": [math.nan] * n,
    }
    return pd.DataFrame({**base, **ratios})


def test_noise_is_no_win_at_five_percent():
    v = _verdict(
        speedup_vs_dense=[1.0004, 1.0012, 1.06, 1.05],
        energy_ratio_vs_dense=[0.996, 0.994, 0.94, 0.952],
    )
    d = decide(v, 0.05)
    assert d["beats_dense_latency"].tolist() == [False, False, True, False]
    # 0.952 * 1.05 = 0.9996 < 1: the loser (dense) costs 1.0504x what sparse costs
    assert d["beats_dense_energy"].tolist() == [False, False, True, True]
    assert set(d["margin"]) == {0.05}
    # at margin 0 any strict improvement counts (the rule before margins)
    d0 = decide(d, 0.0)
    assert d0["beats_dense_latency"].tolist() == [True, True, True, True]
    assert d0["beats_dense_energy"].tolist() == [True, True, True, True]
    assert set(d0["margin"]) == {0.0}


def test_one_rule_for_a_ratio_and_its_inverse():
    m = 0.05
    for lat_ratio in (0.9, 0.951, 0.9523, 0.9525, 0.96, 1.0, 1.2):
        assert is_win(lat_ratio, "lower", m) == is_win(1 / lat_ratio, "higher", m)
    assert not is_win(1.05, "higher", m) and is_win(1.0501, "higher", m)


def test_structured_wins_and_equal_accuracy_by_hand():
    v = _verdict(
        latency_vs_structured_same_rate=[0.5, 0.96],
        energy_vs_structured_same_rate=[1.2, 0.94],
        latency_vs_structured_equal_accuracy=[0.9, math.nan],
        energy_vs_structured_equal_accuracy=[0.99, math.nan],
    )
    d = decide(v, 0.05)
    assert d["beats_structured_latency"].tolist() == [True, False]
    assert d["beats_structured_energy"].tolist() == [False, True]
    # unknown published rate: neither a win nor a loss
    assert d["beats_structured_at_equal_accuracy_latency"].tolist() == [True, None]
    assert d["beats_structured_at_equal_accuracy_energy"].tolist() == [False, None]


def test_interpolation_on_the_structured_curve_by_hand():
    rates = np.array([2.0, 8.0])
    # log-log: halfway between 2x and 8x in log rate is 4x; halfway between 4 and 1 in
    # log value is 2
    assert at_rate(rates, np.array([4.0, 1.0]), 4.0) == pytest.approx(2.0)
    # a power law lat = 8 / rate is exact in log-log
    r = np.array([1.5, 2.0, 4.0, 16.0])
    assert at_rate(r, 8 / r, 2.78) == pytest.approx(8 / 2.78)
    assert not beyond_grid(r, 16.0) and beyond_grid(r, 16.1)


def test_equal_accuracy_in_the_study_against_the_sweep(monkeypatch):
    """Non-structured LeNet-5 at 348x against filter pruning at a published rate of 3x
    (made up for the test), read by hand off the structured rows of the sweep."""
    fake = AccuracyRate(
        network="lenet5",
        structure="filter",
        rate=3.0,
        accuracy_loss=0.0,
        metric="top-1",
        dataset="MNIST",
        source="test",
        citation="test",
        url="",
        note="made up",
    )
    monkeypatch.setattr(compare_module, "rate_at_equal_accuracy", lambda name: fake)
    cfg = StudyConfig(
        networks=("lenet5",),
        platforms=("eie",),
        weight_bits=(4,),
        index_bits=(4,),
        structured_rates=(2.0,),
        sweep_rates=(2.0, 8.0),
    )
    t = study_network(load_network("lenet5"), [load_platform("eie")], cfg)
    v = t["verdict"].iloc[0]
    assert v["structured_rate_no_loss"] == 3.0 and v["structured_no_loss_source"] == "test"
    assert v["equal_accuracy"] == "compared"
    net = t["compute_sweep"].query("layer == '(network)'")
    st = net[net["kind"] == "filter"].sort_values("effective_rate")
    assert 3.0 in set(st["rate"])  # the published rate joined the structured grid
    lo = st[st["effective_rate"] <= 3.0].iloc[-1]
    hi = st[st["effective_rate"] > 3.0].iloc[0]
    w = (math.log(3.0) - math.log(lo["effective_rate"])) / (
        math.log(hi["effective_rate"]) - math.log(lo["effective_rate"])
    )
    lat = math.exp((1 - w) * math.log(lo["latency_s"]) + w * math.log(hi["latency_s"]))
    ns = net[(net["kind"] == "sparse") & (net["rate"] == 348.0)]["latency_s"].iloc[0]
    assert v["latency_vs_structured_equal_accuracy"] == pytest.approx(ns / lat)
    assert v["beats_structured_at_equal_accuracy_latency"] == (ns / lat * 1.05 < 1)
    assert v["nonstructured_engine"].startswith("eie ")
    assert v["structured_engine"].startswith("eie ")


def test_the_accuracy_rates_load_and_cite_their_sources():
    rates = accuracy_rates()
    assert set(DEFAULT_NETWORKS) <= set(rates)
    for name, e in rates.items():
        assert e.note, name
        if e.known:
            assert e.rate >= 1 and e.source and e.citation and e.metric and e.url, name
            assert e.accuracy_loss is not None and e.accuracy_loss <= 1.0, name
        else:
            assert e.note.startswith("unknown"), name
    # the figures as read in their sources
    assert rates["vgg16"].rate == pytest.approx(138.34 / 8.32, rel=1e-3)
    assert rates["bert_base"].rate == pytest.approx(1 / 0.36, rel=2e-3)


def test_the_accuracy_rates_file_is_checked():
    entry = {
        "structure": "filter",
        "rate": 2.0,
        "accuracy_loss": 0.1,
        "metric": "top-1",
        "dataset": "ImageNet",
        "source": "",
        "citation": "",
        "url": "",
        "note": "x",
    }
    with pytest.raises(ConfigError, match="needs its source"):
        parse_rates({"networks": {"n": entry}}, "f")
    with pytest.raises(ConfigError, match="ratee: unknown key"):
        parse_rates({"networks": {"n": {**entry, "ratee": 1}}}, "f")
    with pytest.raises(ConfigError, match="rate: expected a finite number"):
        parse_rates({"networks": {"n": {**entry, "rate": 0.5, "source": "s"}}}, "f")


@pytest.mark.parametrize(
    ("text", "value"), [("0.05", 0.05), ("5%", 0.05), (" 12.5% ", 0.125), ("0", 0.0)]
)
def test_margin_option(text, value):
    assert build_parser().parse_args(["--margin", text]).margin == pytest.approx(value)
    assert build_parser().parse_args([]).margin == 0.05


@pytest.mark.parametrize("text", ["5", "100%", "-1%", "abc", "nan", "1", "inf%"])
def test_bad_margin_is_refused(capsys, text, tmp_path):
    code = main(["study", "--margin", text, "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and "--margin" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("bad", [1.0, -0.01, math.nan, True, "5%"])
def test_margin_in_the_config(bad):
    with pytest.raises(ConfigError, match="margin"):
        StudyConfig(margin=bad)


def test_parts_serve_any_margin(tmp_path):
    cfg = StudyConfig(
        networks=("lenet5",),
        platforms=("eie", "a100"),
        weight_bits=(8,),
        index_bits=(4,),
        structured_rates=(2.0,),
        sweep_rates=(2.0, 8.0),
    )
    first = run_study(cfg, tmp_path)
    loose = StudyConfig(**{**cfg.__dict__, "margin": 0.0})
    again = run_study(loose, tmp_path)
    assert again.resumed == ("lenet5",)
    v0, v5 = again.tables["verdict"], first.tables["verdict"]
    assert set(v0["margin"]) == {0.0} and set(v5["margin"]) == {0.05}
    assert (v0["beats_dense_latency"] == (v0["speedup_vs_dense"] > 1)).all()
    fresh = run_study(loose, tmp_path / "fresh", resume=False).tables["verdict"]
    pd.testing.assert_frame_equal(v0, fresh)
