"""The csr kernel's dense-operand miss term: its count by hand, the roofline engine's
time with and without it, the profile rules, the fit recovering it from synthetic
timings, and the cache sizes read from sysfs. Nothing here times anything."""

from __future__ import annotations

import copy
import dataclasses
import math

import numpy as np
import pytest

from simulator.calibrate import Params, fit, predict_s, profile_yaml, write_profile
from simulator.calibrate.fit import missed_lines
from simulator.calibrate.measure import Measurement, caches, machine, operand_caches
from simulator.dataflows import LayerTask
from simulator.dataflows.roofline import csr_seconds, missed_operand_lines
from simulator.errors import ConfigError
from simulator.formats import profile_mask
from simulator.hwconfig import load_platform, platform_from_dict
from simulator.layers import Linear
from simulator.masks import Pruning, generate_mask
from simulator.simulate import simulate_layer
from tests.test_calibrate import synthetic as calibrate_synthetic

MIB = 2**20


def test_missed_lines_by_hand():
    # operand 1000 x 512 fp32 = 2,048,000 B against a 1,024,000 B cache: half the
    # reads miss; a row of 512 floats is 2048 B = 32 lines of 64 B; 1000 entries
    assert missed_operand_lines(
        nnz=1000, cols=1000, n_cols=512, value_bytes=4, cache_bytes=1_024_000, line_bytes=64
    ) == pytest.approx(1000 * 32 * 0.5)
    # a row of 3 floats (12 B) still reads one line; operand 4,000 x 3 x 4 = 48,000 B
    # against 12,000 B: 3/4 miss
    assert missed_operand_lines(
        nnz=10, cols=4000, n_cols=3, value_bytes=4, cache_bytes=12_000, line_bytes=64
    ) == pytest.approx(10 * 1 * 0.75)
    # an operand that fits, no cache stated, no entries: nothing missed
    for cache, nnz in ((2_048_000, 1000), (None, 1000), (1_024_000, 0)):
        assert (
            missed_operand_lines(
                nnz=nnz, cols=1000, n_cols=512, value_bytes=4, cache_bytes=cache, line_bytes=64
            )
            == 0.0
        )


def _profile(**miss) -> dict:
    """xeon_8380 with one csr kernel (its ``csr-mkl``) and ``miss`` fields on it."""
    raw = copy.deepcopy(dict(load_platform("xeon_8380").raw))
    roof = raw["roofline"]
    roof["kernels"] = [dict(k, **miss) for k in roof["kernels"] if k["name"] == "csr-mkl"]
    return raw


def _task(platform, rows: int, cols: int, n: int, density: float) -> LayerTask:
    layer = Linear(name="l", in_features=cols, out_features=rows, tokens=n)
    mask = generate_mask(layer, Pruning(density=density))
    return LayerTask(
        layer=layer,
        profile=profile_mask(layer, mask),
        variant="sparse",
        weight_bits=32,
        index_bits=32,
        activation_bits=32,
    )


def test_engine_adds_the_missed_lines_at_their_price():
    plain = platform_from_dict(_profile())
    miss = platform_from_dict(_profile(operand_cache_bytes=1 * MIB, operand_miss_ns=0.5))
    # operand 2304 x 3136 x 4 B = 28.9 MB > 1 MiB: share 1 - 1 MiB / 28.9 MB; a row of
    # 3136 floats = 196 lines
    task = _task(plain, 256, 2304, 3136, 0.1)
    nnz = task.profile.nnz
    share = 1 - MIB / (2304 * 3136 * 4)
    extra = nnz * 196 * share * 0.5e-9
    assert csr_seconds(miss.roofline.kernels[0], task) - csr_seconds(
        plain.roofline.kernels[0], task
    ) == pytest.approx(extra, rel=1e-9)
    # an operand that fits the cache (768 x 16 x 4 B = 48 KiB) pays nothing more
    small = _task(plain, 3072, 768, 16, 0.1)
    assert csr_seconds(miss.roofline.kernels[0], small) == csr_seconds(
        plain.roofline.kernels[0], small
    )


def test_a_profile_without_the_term_is_unchanged():
    """No miss fields: the csr time is the rate, entry, row and call terms alone."""
    p = platform_from_dict(_profile())
    k = p.roofline.kernels[0]
    assert k.operand_cache_bytes is None and k.operand_miss_ns == 0.0
    task = _task(p, 256, 2304, 3136, 0.1)
    g, nnz = task.gemm, task.profile.nnz
    by_hand = (
        nnz * g.n_cols / k.rate_for(32, 32)
        + (nnz * k.entry_ns + g.rows * k.row_ns + k.call_ns) * 1e-9
    )
    assert csr_seconds(k, task) == pytest.approx(by_hand, rel=1e-12)


@pytest.mark.parametrize(
    ("fields", "needle"),
    [
        ({"operand_miss_ns": 0.5}, "operand_cache_bytes: required when operand_miss_ns"),
        ({"operand_miss_ns": -1.0, "operand_cache_bytes": MIB}, "operand_miss_ns"),
        ({"operand_cache_bytes": 0, "operand_miss_ns": 1.0}, "operand_cache_bytes"),
        ({"cache_line_bytes": 0}, "cache_line_bytes"),
        ({"operand_miss_typo": 1.0}, "operand_miss_typo"),
    ],
)
def test_bad_miss_fields_are_errors_naming_the_key(fields, needle):
    with pytest.raises(ConfigError, match=needle):
        platform_from_dict(_profile(**fields), "p.yaml")


def test_miss_fields_only_on_a_csr_kernel():
    raw = copy.deepcopy(dict(load_platform("a100").raw))
    nm = [k for k in raw["roofline"]["kernels"] if k["format"] == "nm"]
    assert nm, "a100 has an nm kernel"
    nm[0]["operand_miss_ns"] = 1.0
    with pytest.raises(ConfigError, match=r"operand_miss_ns: only for a csr kernel"):
        platform_from_dict(raw, "a100.yaml")


# --- the fit ---------------------------------------------------------------------

TRUE = Params(
    s_per_dense_mac=1 / 40e9,
    s_per_sparse_mac=1 / 8e9,
    s_per_entry=1.0e-9,
    s_per_row=8e-9,
    s_per_call=4e-6,
    dram_bytes_per_s=15e9,
    cache_bytes_per_s=60e9,
    s_per_miss_line=0.8e-9,
    operand_cache_bytes=2 * MIB,
)
SHAPES = (
    (96, 864, 1600),  # operand 5.3 MiB
    (128, 2600, 1000),  # 9.9 MiB
    (320, 1600, 640),  # 3.9 MiB
    (192, 1152, 400),  # 1.8 MiB: fits 2 MiB
    (640, 640, 96),
    (1536, 1536, 8),
    (4000, 300, 4),
    (6000, 2000, 1),
    (8000, 200, 1),
    (32, 128, 2),
)
DENSITIES = (0.002, 0.01, 0.05, 0.2)


def synthetic(params: Params, noise: float, rng) -> list[Measurement]:
    """:func:`tests.test_calibrate.synthetic` on these shapes, the triads exact."""
    return calibrate_synthetic(params, noise, rng, shapes=SHAPES, stream_noise=False)


def test_synthetic_sparse_time_by_hand():
    """The model the synthetic timings come from, one point by hand: 128 x 2600 at 5 %
    with 1000 columns, operand 10.4 MB against 2 MiB."""
    rows, cols, n = 128, 2600, 1000
    nnz = round(0.05 * rows * cols)
    m = Measurement(
        kind="sparse", rows=rows, cols=cols, n_cols=n, nnz=nnz, wall_s=1, cpu_s=1, repeats=1
    )
    lines = math.ceil(1000 * 4 / 64)  # 63
    share = 1 - 2 * MIB / (cols * n * 4)
    by_hand = 4e-6 + nnz * n / 8e9 + nnz * 1e-9 + rows * 8e-9 + nnz * lines * share * 0.8e-9
    assert missed_lines(m, 2 * MIB) == pytest.approx(nnz * lines * share)
    assert predict_s(TRUE, m) == pytest.approx(by_hand, rel=1e-12)


def test_fit_recovers_the_miss_term_and_its_cache(rng):
    f = fit(synthetic(TRUE, 0.03, rng), operand_caches=(2 * MIB, 480 * MIB))
    got = f.params
    assert got.operand_cache_bytes == 2 * MIB  # the 480 MiB cache holds every operand
    assert got.s_per_miss_line == pytest.approx(TRUE.s_per_miss_line, rel=0.15)
    assert got.s_per_sparse_mac == pytest.approx(TRUE.s_per_sparse_mac, rel=0.10)
    assert got.s_per_entry == pytest.approx(TRUE.s_per_entry, rel=0.15)
    assert f.residual("sparse") < 0.05


def test_fit_picks_the_cache_the_timings_follow(rng):
    """Timings made with a 4 MiB cache: of the 2 and 4 MiB offered the fit keeps 4."""
    true = dataclasses.replace(TRUE, operand_cache_bytes=4 * MIB)
    f = fit(synthetic(true, 0.0, rng), operand_caches=(2 * MIB, 4 * MIB))
    assert f.params.operand_cache_bytes == 4 * MIB
    assert f.params.s_per_miss_line == pytest.approx(0.8e-9, rel=1e-3)


def test_fit_drops_a_term_the_timings_do_not_have(rng):
    none = dataclasses.replace(TRUE, s_per_miss_line=0.0, operand_cache_bytes=None)
    f = fit(synthetic(none, 0.0, rng), operand_caches=(2 * MIB,))
    assert f.params.operand_cache_bytes is None and f.params.s_per_miss_line == 0.0
    assert f.residual() < 1e-3


def test_fit_without_caches_has_no_term(rng):
    f = fit(synthetic(TRUE, 0.0, rng))
    assert f.params.operand_cache_bytes is None and f.params.s_per_miss_line == 0.0
    with pytest.raises(ConfigError, match="cache sizes must be positive"):
        fit(synthetic(TRUE, 0.0, rng), operand_caches=(0,))


def test_profile_carries_the_term_and_the_engine_agrees(rng, tmp_path):
    f = fit(synthetic(TRUE, 0.0, rng), operand_caches=(2 * MIB,))
    m = dataclasses.replace(
        machine(1),
        clock_hz=2.0e9,
        simd_bits=256,
        caches=((1, "Data", 48 * 2**10), (2, "Unified", 2 * MIB), (3, "Unified", 32 * MIB)),
    )
    text = profile_yaml(f, m)
    assert "L1d 48 KiB, L2 2 MiB, L3 32 MiB" in text
    platform = load_platform(write_profile(tmp_path / "p.yaml", text))
    (k,) = platform.roofline.kernels
    assert k.operand_cache_bytes == 2 * MIB
    assert k.operand_miss_ns == pytest.approx(0.8, rel=1e-3)
    for rows, cols, n in ((256, 2304, 3136), (3072, 768, 128), (128, 1152, 784)):
        layer = Linear(name="l", in_features=cols, out_features=rows, tokens=n)
        mask = np.zeros(rows * cols, bool)
        nnz = round(0.05 * rows * cols)
        mask[rng.choice(rows * cols, nnz, replace=False)] = True
        r = simulate_layer(
            layer,
            platform,
            profile_mask(layer, mask.reshape(rows, cols)),
            variant="sparse",
            weight_bits=32,
            activation_bits=32,
        )
        point = Measurement(
            kind="sparse", rows=rows, cols=cols, n_cols=n, nnz=nnz, wall_s=1, cpu_s=1, repeats=1
        )
        assert r.cost.latency_s == pytest.approx(predict_s(f.params, point), rel=2e-3)


def test_caches_read_from_a_sysfs_tree(tmp_path):
    levels = (
        (1, "Data", "48K"),
        (1, "Instruction", "32K"),
        (2, "Unified", "2048K"),
        (3, "Unified", "30M"),
    )
    for i, (level, kind, size) in enumerate(levels):
        d = tmp_path / f"index{i}"
        d.mkdir()
        (d / "level").write_text(f"{level}\n")
        (d / "type").write_text(f"{kind}\n")
        (d / "size").write_text(f"{size}\n")
    (tmp_path / "index9").mkdir()  # unreadable entries are skipped
    got = caches(tmp_path)
    assert got == (
        (1, "Data", 48 * 2**10),
        (1, "Instruction", 32 * 2**10),
        (2, "Unified", 2 * MIB),
        (3, "Unified", 30 * MIB),
    )
    assert operand_caches(got) == (2 * MIB, 30 * MIB)
    assert caches(tmp_path / "absent") == ()
