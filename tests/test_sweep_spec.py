"""Sweep specs: value generators checked on their own terms, validation that lists
every problem with its key path, and points whose hashes follow their configuration."""

from __future__ import annotations

import math

import numpy as np
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from simulator.errors import ConfigError
from simulator.hwconfig import load_platform
from simulator.sweep import load_spec, spec_from_dict
from simulator.sweep.generators import (
    Block,
    Domain,
    arange_values,
    combine,
    geometric_values,
    lhs_units,
    random_units,
)
from simulator.sweep.keys import hardware_field, set_path

BASE = {"network": "lenet5", "platform": "eie", "pruning": {"rate": 8}}


def spec(**sweep):
    return spec_from_dict({**BASE, "sweep": sweep}, "test.yaml")


def problems(data) -> list[str]:
    with pytest.raises(ConfigError) as e:
        spec_from_dict(data, "bad.yaml")
    assert e.value.source == "bad.yaml"
    return e.value.problems


# --- generators ----------------------------------------------------------------------


def test_range_includes_stop_and_keeps_integers():
    assert arange_values(2, 16, 2) == (2, 4, 6, 8, 10, 12, 14, 16)
    assert arange_values(0.1, 0.3, 0.1) == pytest.approx((0.1, 0.2, 0.3))
    assert len(arange_values(0.1, 0.3, 0.1)) == 3  # 0.1 + 2 * 0.1 reaches 0.3 within rounding
    assert arange_values(1, 10, 4) == (1, 5, 9)
    assert all(isinstance(v, float) for v in arange_values(1, 2, 0.5))


def test_log_range_hits_its_ends_at_a_constant_ratio():
    v = geometric_values(16, 256, 5, integer=True)
    assert v == (16, 32, 64, 128, 256)
    f = geometric_values(1e9, 1e11, 9, integer=False)
    assert f[0] == 1e9 and f[-1] == 1e11
    ratios = np.diff(np.log(f))
    assert np.allclose(ratios, ratios[0])


def test_grid_varies_the_last_parameter_fastest_and_blocks_combine_as_a_grid():
    a = Block(mode="grid", parameters=(("a", Domain(kind="values", values=(1, 2))),))
    b = Block(
        mode="zip",
        parameters=(
            ("b", Domain(kind="values", values=(10, 20, 30))),
            ("c", Domain(kind="values", values=("x",))),  # one value repeats
        ),
    )
    assert b.points() == [(10, "x"), (20, "x"), (30, "x")]
    pts = combine([a, b])
    assert pts[:4] == [(1, 10, "x"), (1, 20, "x"), (1, 30, "x"), (2, 10, "x")]
    assert len(pts) == a.count() * b.count() == 6


@given(
    samples=st.integers(1, 200),
    dims=st.integers(1, 6),
    seed=st.integers(0, 2**32),
)
def test_lhs_has_one_sample_per_stratum_in_every_dimension(samples, dims, seed):
    u = lhs_units(samples, dims, seed)
    assert u.shape == (samples, dims)
    assert ((u >= 0) & (u < 1)).all()
    for j in range(dims):
        strata = np.floor(u[:, j] * samples).astype(int)
        assert sorted(strata) == list(range(samples))
    assert np.array_equal(u, lhs_units(samples, dims, seed))  # the seed decides


def test_lhs_on_domains_strata_in_value_and_log_space_and_balanced_values():
    n = 40
    block = Block(
        mode="lhs",
        samples=n,
        seed=7,
        parameters=(
            ("lin", Domain(kind="uniform", low=2.0, high=6.0)),
            ("log", Domain(kind="log_uniform", low=1e6, high=1e10)),
            ("pick", Domain(kind="values", values=("a", "b", "c", "d"))),
        ),
    )
    pts = block.points()
    lin = np.array([p[0] for p in pts])
    log = np.array([p[1] for p in pts])
    assert sorted(np.floor((lin - 2) / 4 * n).astype(int)) == list(range(n))
    assert sorted(np.floor(np.log(log / 1e6) / np.log(1e4) * n).astype(int)) == list(range(n))
    picks = [p[2] for p in pts]
    assert {v: picks.count(v) for v in "abcd"} == {v: 10 for v in "abcd"}


def test_random_draws_are_uniform_in_range_and_seeded():
    u = random_units(20000, 2, 3)
    assert ((u >= 0) & (u < 1)).all()
    assert abs(u.mean() - 0.5) < 0.01 and abs(u.var() - 1 / 12) < 0.005
    assert not np.array_equal(u, random_units(20000, 2, 4))
    d = Domain(kind="values", values=(1, 2, 3))
    counts = np.bincount(d.at(u[:, 0]), minlength=4)[1:]
    assert counts.min() > 6000


# --- key paths -----------------------------------------------------------------------


def test_hardware_key_paths_through_sections_tables_and_named_lists():
    raw = dict(load_platform("a100").raw)
    assert hardware_field("compute.pes", raw)[0].kind == "integer"
    assert hardware_field("memory.hbm2.bandwidth_bytes_per_s", raw)[0].kind == "number"
    assert hardware_field("memory.1.size_bytes", raw)[0].kind == "number"
    assert hardware_field("roofline.kernels.sputnik.entry_ns", raw)[0].kind == "number"
    assert hardware_field("energy.mac_pj.int8", raw)[0].kind == "number"
    assert hardware_field("compute.dataflow", raw)[0].choices == ("ws", "os", "is")
    field, why = hardware_field("compute.pess", raw)
    assert field is None and "did you mean pes" in why
    assert "no item named dram" in hardware_field("memory.dram.size_bytes", raw)[1]
    assert "hbm2" in hardware_field("memory.dram.size_bytes", raw)[1]
    assert "a section" in hardware_field("compute", raw)[1]
    assert "no key pes" in hardware_field("clock_hz.pes", raw)[1]
    assert "no key int3" in hardware_field("energy.mac_pj.int3", raw)[1]
    data = {"compute": {"pes": 1}, "memory": [{"name": "dram"}]}
    set_path(data, "compute.scnn.pe_rows", 4)
    set_path(data, "memory.dram.size_bytes", 9.0)
    set_path(data, "memory.0.read_pj_per_bit", 1.0)
    assert data == {
        "compute": {"pes": 1, "scnn": {"pe_rows": 4}},
        "memory": [{"name": "dram", "size_bytes": 9.0, "read_pj_per_bit": 1.0}],
    }


# --- validation ----------------------------------------------------------------------


def test_every_problem_of_a_spec_at_once_with_key_paths():
    found = problems(
        {
            "network": "lenet5",
            "platfrom": "eie",
            "platform": "eie",
            "variants": ["sparse", "bogus"],
            "pruning": {"rate": 8, "density": 0.1},
            "settings": {"weight_bits": "four"},
            "sweep": [
                {
                    "mode": "zip",
                    "parameters": {"compute.pes": [1, 2], "compute.fifo_depth": [2, 4, 8]},
                },
                {
                    "mode": "grid",
                    "parameters": {
                        "compute.pess": [1],
                        "compute.fifo_depth": {"range": [2, 8], "step": -1},
                        "clock_hz": {"uniform": [1e8, 1e9]},
                        "pruning.foo": 3,
                        "memory.dram.size_bytes": ["big"],
                        "compute.dataflow": ["ws", "xx"],
                    },
                },
                {"mode": "lhs", "parameters": {"compute.pes": {"log_range": [1, 4], "num": 9}}},
            ],
        }
    )
    text = "\n".join(found)
    for expected in (
        "(top level): unknown key(s) platfrom",
        "settings.weight_bits: expected integer, got four",
        "variants[1]: expected one of",
        "pruning: give one of rate, density or sparsity",
        "sweep[0]: zip needs lists of one length (or single values), got compute.pes 2, "
        "compute.fifo_depth 3",
        "sweep[1].parameters.compute.fifo_depth: also swept in sweep[0]",
        "sweep[1].parameters.clock_hz.uniform: continuous values need mode random or lhs",
        "sweep[1].parameters.pruning.foo: unknown parameter",
        "sweep[1].parameters.compute.pess: compute has no key pess; did you mean pes?",
        "sweep[1].parameters.memory.dram.size_bytes: expected a number, got big",
        "sweep[1].parameters.compute.dataflow[1]: expected one of ws, os, is, got xx",
        "sweep[2].samples: required for mode lhs",
        "sweep[2].parameters.compute.pes: also swept in sweep[0]",
    ):
        assert expected in text, f"missing: {expected}\n{text}"
    assert len(found) >= 12


def test_domain_problems():
    def only(param):
        return problems({**BASE, "sweep": {"parameters": {"compute.pes": param}}})

    assert "step: expected a number above 0" in only({"range": [1, 8], "step": 0})[0]
    assert "expected low < high" in only({"range": [8, 1]})[0]
    assert "expected [low, high]" in only({"range": [1]})[0]
    assert "repeat once rounded to integers" in only({"log_range": [1, 4], "num": 9})[0]
    assert "num: expected an integer" in only({"log_range": [1, 4]})[0]
    assert "bounds above 0 on a log scale" in only({"log_range": [0, 4], "num": 3})[0]
    assert "one of values, range" in only({"range": [1, 2], "values": [1]})[0]
    assert "unknown key(s) num for range" in only({"range": [1, 2], "num": 3})[0]
    assert "non-empty list" in only([])[0]
    assert "expected an integer, got 1.5" in only([1.5])[0]
    assert "more than 100,000 values" in only({"range": [1, 10**6]})[0]
    random = {**BASE, "sweep": {"mode": "random", "samples": 3, "parameters": {}}}
    random["sweep"]["parameters"]["compute.pes"] = {"uniform": [1, 8]}
    assert problems(random) == [
        "sweep.parameters.compute.pes: an integer field takes listed values, range or log_range"
    ]
    levels = {**BASE, "sweep": {"parameters": {"pruning.rate": [2], "pruning.density": [0.5]}}}
    assert "sweep one of pruning.rate" in problems(levels)[0]
    huge = {
        **BASE,
        "sweep": {
            "parameters": {
                f"compute.{k}": list(range(1, 200))
                for k in ("pes", "fifo_depth", "macs_per_pe_per_cycle")
            }
        },
    }
    assert "more than 1,000,000 points" in problems(huge)[0]


def test_unknown_network_and_platform_are_problems_with_suggestions():
    found = problems(
        {"network": "resnet5", "platform": "a10", "sweep": {"parameters": {"clock_hz": 1e9}}}
    )
    assert any("network resnet5" in p and "did you mean resnet50" in p for p in found)
    assert any("platform a10" in p and "did you mean a100" in p for p in found)
    missing = problems({"platform": "eie", "sweep": {"parameters": {"clock_hz": 1}}})
    assert missing == ["network: required (give it, or sweep it)"]


def test_points_hashes_and_columns():
    s = spec(
        mode="grid",
        parameters={
            "compute.pes": {"log_range": [16, 64], "num": 3},
            "memory.dram.bandwidth_bytes_per_s": [1e9, 2000000000],
        },
    )
    assert s.count() == 6
    pts = s.points()
    assert [p.index for p in pts] == list(range(6))
    assert [p.get("compute.pes") for p in pts] == [16, 16, 32, 32, 64, 64]
    assert all(isinstance(p.get("memory.dram.bandwidth_bytes_per_s"), float) for p in pts)
    assert len({p.key for p in pts}) == 6
    assert s.parameters[:3] == ("network", "platform", "pruning.rate")
    assert s.dtypes()["compute.pes"] == "int64"
    # the hash is the configuration's: parameter order and number spelling do not matter
    same = spec(
        mode="grid",
        parameters={
            "memory.dram.bandwidth_bytes_per_s": [1000000000, 2e9],
            "compute.pes": [16, 32, 64],
        },
    )
    assert {p.key for p in same.points()} == {p.key for p in pts}
    assert s.points(limit=2) == pts[:2]
    # a fixed level given as another parameter is another configuration
    other = spec_from_dict(
        {**BASE, "pruning": {"rate": 4}, "sweep": {"parameters": {"compute.pes": [16]}}}, "x"
    )
    assert other.points()[0].key != pts[0].key
    # a swept level replaces the fixed one
    swept = spec_from_dict(
        {**BASE, "pruning": {"density": 0.5}, "sweep": {"parameters": {"pruning.rate": [2, 4]}}},
        "x",
    )
    assert "pruning.density" not in swept.parameters
    assert [p.get("pruning.rate") for p in swept.points()] == [2.0, 4.0]


def test_editing_a_profile_changes_the_hashes(tmp_path):
    profile = tmp_path / "mine.yaml"
    profile.write_text("extends: eie\nname: mine\nclock_hz: 800e6\n")
    path = tmp_path / "spec.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "network": "lenet5",
                "platform": "mine.yaml",
                "sweep": {"parameters": {"compute.pes": [4]}},
            }
        )
    )
    first = load_spec(path)
    assert first.file_of("platform", "mine.yaml") == str(profile)
    profile.write_text("extends: eie\nname: mine\nclock_hz: 900e6\n")
    second = load_spec(path)
    assert first.points()[0].key != second.points()[0].key
    assert first.digest() != second.digest()
    assert math.isclose(len(first.digest()), 64)
