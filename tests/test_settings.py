"""The library validates at its boundary: one settings object, checked once."""

import numpy as np
import pytest

from simulator.dataflows.task import LayerTask
from simulator.errors import ConfigError, ResourceError, shown
from simulator.formats import all_kept_profile, profile_gemm, profile_mask
from simulator.hwconfig import load_platform
from simulator.layers import Linear
from simulator.masks import Pruning, generate_mask
from simulator.memory import memory_limit, parse_bytes, require_bytes
from simulator.settings import Settings
from simulator.simulate import prepare_profiles, simulate_layer, simulate_network
from simulator.study import StudyConfig
from simulator.workloads import load_network

BAD = [
    {"index_bits": -1},
    {"index_bits": 0},
    {"index_bits": 33},
    {"weight_bits": 0},
    {"weight_bits": 10**400},
    {"weight_bits": 4.0},
    {"weight_bits": True},
    {"activation_bits": -8},
    {"activation_density": -1},
    {"activation_density": 0},
    {"activation_density": 1.5},
    {"activation_density": float("nan")},
    {"seed": -1},
    {"seed": 2**64},
    {"variant": "bogus"},
]


@pytest.mark.parametrize(
    "bad", BAD, ids=lambda b: f"{next(iter(b))}={next(iter(b.values()))!s:.12}"
)
def test_bad_settings_are_refused_everywhere(bad):
    layer = Linear(name="fc", in_features=16, out_features=8)
    prof = profile_mask(layer, generate_mask(layer, Pruning(density=0.5)))
    p = load_platform("eie")
    key = next(iter(bad))
    with pytest.raises(ConfigError, match=key):
        Settings(**bad)
    with pytest.raises(ConfigError, match=key):
        simulate_layer(layer, p, prof, **bad)
    net = load_network("lenet5")
    profiles = prepare_profiles(net, {"sparse": Pruning(density=0.5)})
    if key != "variant":
        with pytest.raises(ConfigError, match=key):
            simulate_network(net, p, profiles, **bad)
    fields = {
        "weight_bits": 8,
        "index_bits": 4,
        "activation_bits": 8,
        "activation_density": 1.0,
        "seed": 0,
        "variant": "sparse",
    }
    fields.update(bad)
    with pytest.raises(ConfigError, match=key):
        LayerTask(layer=layer, profile=prof, **fields)


def test_every_problem_at_once_and_unknown_names():
    with pytest.raises(ConfigError) as e:
        Settings(weight_bits=0, index_bits=-1, variant="x")
    assert len(e.value.problems) == 3
    net = load_network("lenet5")
    profiles = prepare_profiles(net, {})
    with pytest.raises(ConfigError, match="unknown setting"):
        simulate_network(net, load_platform("eie"), profiles, index_bit=4)
    with pytest.raises(ConfigError, match="no mask profiles for variant 'sparse'"):
        simulate_network(net, load_platform("eie"), profiles, variants=["sparse"])
    with pytest.raises(ConfigError, match="variants"):
        simulate_network(net, load_platform("eie"), profiles, variants=["bogus"])


def test_settings_become_plain_python_numbers():
    s = Settings(
        weight_bits=np.int64(4), index_bits=np.int32(5), activation_density=np.float32(0.5)
    )
    assert type(s.weight_bits) is int and type(s.index_bits) is int
    assert type(s.activation_density) is float


def test_study_config_checks_its_widths_and_seed():
    for bad in ({"index_bits": (4, 0)}, {"weight_bits": ()}, {"seed": -2}, {"index_bits": (40,)}):
        with pytest.raises(ConfigError):
            StudyConfig(networks=("lenet5",), **bad)
    assert StudyConfig(index_bits=(8, 4)).settings(4) == Settings(weight_bits=4, index_bits=8)


def test_all_kept_profile_matches_a_real_all_ones_mask():
    a = all_kept_profile(3, 5, 7)
    b = profile_gemm(np.ones((3, 5, 7), np.uint8))
    for axis in ("row", "col"):
        assert (a.line_nnz(axis) == b.line_nnz(axis)).all()
        assert (a.gap_hist(axis) == b.gap_hist(axis)).all()
        for ib in (1, 4, 8):
            assert (a.line_fillers(axis, ib) == b.line_fillers(axis, ib)).all()
    assert (a.kept_rows() == b.kept_rows()).all() and (a.kept_cols() == b.kept_cols()).all()
    assert a.nnz == b.nnz == 105


def test_huge_weightless_layer_is_not_materialised():
    # a 10^5 x 10^5 all-ones operand would be 10 GB; its profile costs nothing
    a = all_kept_profile(1, 100_000, 100_000)
    assert a.nnz == 10**10 and a.gemm.nbytes == 10**10 and a.gemm.base.nbytes == 1


def test_memory_budget():
    assert parse_bytes("2G") == 2 * 2**30 and parse_bytes("512MiB") == 512 * 2**20
    assert parse_bytes("1000") == 1000
    for bad in ("", "-1G", "2X", "1e999", "0"):
        with pytest.raises(ConfigError):
            parse_bytes(bad)
    with memory_limit(1000):
        require_bytes(1000, "a small array")
        with pytest.raises(ResourceError, match=r"fc would need 2\.0 KiB.*--max-memory"):
            require_bytes(2000, "the mask of fc")


def test_shown_is_bounded_and_escaped():
    assert shown("fc\x1b[31m\n") == "fc\\x1b[31m\\n"
    assert shown("x" * 1000, limit=10) == "xxxxxxx..."
    assert shown(10**5000) == "<integer of 16610 bits>"
    assert shown(b"\x00ab") == "\\x00ab"
    nested = []
    for _ in range(10_000):
        nested = [nested]
    assert shown(nested) == "<list>"


def test_memory_limit_follows_the_address_space_limit(monkeypatch):
    import resource

    from simulator import memory

    monkeypatch.delenv("PRUNESIM_MAX_MEMORY", raising=False)
    ram = memory.physical_memory_bytes()
    monkeypatch.setattr(memory, "_mapped_bytes", lambda: 2**30)
    monkeypatch.setattr(resource, "getrlimit", lambda _: (3 * 2**30, resource.RLIM_INFINITY))
    assert memory.physical_memory_bytes() == min(ram, 2 * 2**30)
    assert memory.memory_limit_bytes() == min(ram, 2 * 2**30) // 2
