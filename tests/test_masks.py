"""Pruning levels, seeded mask generators (determinism, density, structure), mask checks."""

from __future__ import annotations

import math
import tracemalloc

import numpy as np
import pytest
import twins
from hypothesis import given
from hypothesis import strategies as st

from simulator.errors import ConfigError, MaskError, ResourceError
from simulator.layers import Conv2d, Linear, MatMul
from simulator.masks import (
    Pruning,
    check_mask,
    clamp_to_layer,
    density,
    density_from,
    generate_mask,
    load_levels,
    mask_bytes_needed,
    parse_nm,
)
from simulator.memory import memory_limit

CONV = Conv2d(name="conv", in_channels=16, out_channels=32, kernel_hw=(3, 3), input_hw=(8, 8))
GCONV = Conv2d(
    name="gconv", in_channels=16, out_channels=24, kernel_hw=(3, 3), input_hw=(8, 8), groups=4
)
DW = Conv2d(
    name="dw", in_channels=32, out_channels=32, kernel_hw=(3, 3), input_hw=(8, 8), groups=32
)
FC = Linear(name="fc", in_features=100, out_features=60)
LAYERS = [CONV, GCONV, DW, FC]
ids = [lay.name for lay in LAYERS]


def gemm(layer, mask: np.ndarray) -> np.ndarray:
    g = layer.gemm
    return mask.reshape(g.groups, g.rows, g.cols)


# --- levels ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kw", "want"),
    [
        ({"rate": 8}, 0.125),
        ({"rate": "8"}, 0.125),
        ({"rate": 1}, 1.0),
        ({"sparsity": 0.875}, 0.125),
        ({"sparsity": 0}, 1.0),
        ({"density": 0.3}, 0.3),
        ({"density": 1}, 1.0),
        ({"rate": 36}, 1 / 36),
    ],
)
def test_density_from(kw, want):
    assert density_from(**kw) == pytest.approx(want)


@pytest.mark.parametrize(
    ("kw", "fragment"),
    [
        ({}, "exactly one"),
        ({"rate": 8, "sparsity": 0.5}, "exactly one"),
        ({"rate": 0.5}, "rate"),
        ({"rate": 0}, "rate"),
        ({"rate": math.inf}, "rate"),
        ({"rate": math.nan}, "rate"),
        ({"rate": "fast"}, "number"),
        ({"sparsity": 1.0}, "sparsity"),
        ({"sparsity": -0.1}, "sparsity"),
        ({"sparsity": math.nan}, "sparsity"),
        ({"density": 0}, "density"),
        ({"density": 1.5}, "density"),
        ({"density": None}, "none"),
    ],
)
def test_density_from_errors(kw, fragment):
    with pytest.raises(MaskError, match=fragment) as err:
        density_from(**kw, where="layer7")
    assert str(err.value).startswith("layer7")


def test_parse_nm():
    assert parse_nm("2:4") == (2, 4)
    assert parse_nm("1:1") == (1, 1)
    for bad in ("2-4", "2:", "5:4", "0:4", "a:b", "1:2:3"):
        with pytest.raises(MaskError):
            parse_nm(bad)


@pytest.mark.parametrize(
    "kw",
    [
        {"structure": "unstructured"},
        {"density": 0},
        {"density": 1.5},
        {"per_layer": {"fc": 0.0}},
        {"block": (0, 4)},
        {"nm": (3, 2)},
    ],
)
def test_pruning_validation(kw):
    with pytest.raises(MaskError):
        Pruning(**kw)


def test_pruning_density_of():
    p = Pruning(structure="random", density=0.2, per_layer={"fc": 0.5})
    assert p.density_of("fc") == 0.5
    assert p.density_of("conv") == 0.2
    assert Pruning(structure="nm", nm=(1, 4), density=0.9).density_of("fc") == 0.25
    assert Pruning(structure="dense", density=0.1).density_of("fc") == 1.0


def test_load_levels(tmp_path):
    path = tmp_path / "levels.yaml"
    path.write_text(
        "conv1: {rate: 4}\nfc6: {sparsity: 0.91}\nfc8: {density: 0.25}\n", encoding="utf-8"
    )
    assert load_levels(path) == pytest.approx({"conv1": 0.25, "fc6": 0.09, "fc8": 0.25})


def test_load_levels_lists_every_problem(tmp_path):
    path = tmp_path / "levels.yaml"
    path.write_text(
        "conv1: {rate: 0.5}\n"  # rate < 1
        "conv2: {sparsity: 0.5, rate: 2}\n"  # two levels
        "conv3: {speed: 3}\n"  # unknown key
        "conv4: 8\n"  # not a mapping
        "conv5: {density: 0.5}\n",  # fine
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as err:
        load_levels(path)
    problems = err.value.problems
    assert err.value.source == str(path)
    assert len(problems) == 4, problems
    for problem, name in zip(problems, ("conv1", "conv2", "conv3", "conv4"), strict=True):
        assert problem.startswith(name), problem


@pytest.mark.parametrize("text", ["- a list\n", "", "just text\n", "a: [unclosed\n"])
def test_load_levels_bad_files(tmp_path, text):
    path = tmp_path / "levels.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_levels(path)
    assert str(path) in str(err.value)


def test_load_levels_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_levels(tmp_path / "none.yaml")


# --- generators: determinism, shape, density -------------------------------------------

STRUCTURES = ["random", "filter", "channel", "column", "block", "nm"]


@pytest.mark.parametrize("structure", STRUCTURES)
def test_generators_deterministic_per_seed_and_name_regardless_of_order(structure):
    p = Pruning(structure=structure, density=0.3, seed=11)
    forward = [generate_mask(lay, p) for lay in LAYERS]
    backward = [generate_mask(lay, p) for lay in reversed(LAYERS)][::-1]
    for a, b in zip(forward, backward, strict=True):
        np.testing.assert_array_equal(a, b)
    # another seed gives another mask; so does another layer name of the same shape
    other_seed = generate_mask(CONV, Pruning(structure=structure, density=0.3, seed=12))
    twin = Conv2d(name="conv_b", in_channels=16, out_channels=32, kernel_hw=(3, 3), input_hw=(8, 8))
    other_name = generate_mask(twin, p)
    assert not np.array_equal(forward[0], other_seed)
    assert not np.array_equal(forward[0], other_name)


@pytest.mark.parametrize("layer", LAYERS, ids=ids)
@pytest.mark.parametrize("structure", [*STRUCTURES, "dense"])
def test_mask_shape_and_dtype(layer, structure):
    mask = generate_mask(layer, Pruning(structure=structure, density=0.4))
    assert mask.shape == layer.weight_shape
    assert mask.dtype == bool
    assert check_mask(layer, mask) is mask or np.array_equal(check_mask(layer, mask), mask)


def kept_units(layer, structure: str, mask: np.ndarray, block=(4, 4)) -> tuple[int, int]:
    """(kept, total) units of a structure: weights, filters, input channels, GEMM
    columns or tiles (tiles at the border may be partial)."""
    g = gemm(layer, mask)
    if structure == "random":
        return int(mask.sum()), mask.size
    if structure == "filter":
        return int(g.any(axis=2).sum()), g.shape[0] * g.shape[1]
    if structure == "channel":
        return int(np.moveaxis(mask, 1, 0).reshape(mask.shape[1], -1).any(1).sum()), mask.shape[1]
    if structure == "column":
        return int(g.any(axis=(0, 1)).sum()), g.shape[2]
    br, bc = block
    tiles = [
        g[gi, r : r + br, c : c + bc].any()
        for gi in range(g.shape[0])
        for r in range(0, g.shape[1], br)
        for c in range(0, g.shape[2], bc)
    ]
    return int(sum(tiles)), len(tiles)


@pytest.mark.parametrize("layer", [CONV, GCONV, FC], ids=["conv", "gconv", "fc"])
@pytest.mark.parametrize("structure", ["random", "filter", "channel", "column", "block"])
@pytest.mark.parametrize("target", [0.001, 0.05, 0.25, 0.5, 0.9])
def test_achieved_density_close_to_target(layer, structure, target):
    mask = generate_mask(layer, Pruning(structure=structure, density=target, seed=2))
    kept, total = kept_units(layer, structure, mask)
    # whole units, rounded to the nearest; structured ones keep at least one
    want = round(target * total)
    if structure != "random":
        want = max(1, want)
    assert kept == want
    # equal-sized units: the weight density is then off by at most half a unit
    g = layer.gemm
    if structure != "block" or (g.rows % 4 == 0 and g.cols % 4 == 0):
        assert abs(density(mask) - target) <= max(0.5, 1 - target * total) / total + 1e-12


def test_random_density_exact():
    mask = generate_mask(FC, Pruning(structure="random", density=0.123))
    assert mask.sum() == round(0.123 * 6000) == 738


@pytest.mark.parametrize("structure", ["filter", "channel", "column", "block"])
def test_structured_keeps_at_least_one_unit(structure):
    mask = generate_mask(FC, Pruning(structure=structure, density=1e-6))
    assert mask.any()


def test_dense_and_full_density_keep_everything():
    assert generate_mask(CONV, Pruning(structure="dense", density=0.1)).all()
    assert generate_mask(CONV, Pruning(structure="filter", density=1.0)).all()


def test_nothing_to_prune_in_matmul():
    mm = MatMul(name="scores", m=4, k=4, n=4)
    with pytest.raises(MaskError, match="no weights"):
        generate_mask(mm, Pruning())


# --- structure holds -----------------------------------------------------------------


@pytest.mark.parametrize("layer", LAYERS, ids=ids)
@pytest.mark.parametrize("d", [0.2, 0.6])
def test_filter_masks_keep_whole_rows(layer, d):
    g = gemm(layer, generate_mask(layer, Pruning(structure="filter", density=d)))
    per_row = g.sum(axis=2)
    assert np.isin(per_row, [0, g.shape[2]]).all()
    assert 0 < (per_row > 0).sum() < per_row.size


@pytest.mark.parametrize("layer", LAYERS, ids=ids)
@pytest.mark.parametrize("d", [0.2, 0.6])
def test_channel_masks_keep_whole_input_channels(layer, d):
    mask = generate_mask(layer, Pruning(structure="channel", density=d))
    # dim 1 of the weight is the input channel (within its group): constant elsewhere
    per_channel = np.moveaxis(mask, 1, 0).reshape(mask.shape[1], -1)
    if mask.shape[1] == 1:  # depthwise: one channel per group, kept
        assert mask.all()
        return
    assert (per_channel.all(axis=1) | ~per_channel.any(axis=1)).all()
    assert 0 < per_channel.all(axis=1).sum() < mask.shape[1]


@pytest.mark.parametrize("layer", LAYERS, ids=ids)
@pytest.mark.parametrize("d", [0.2, 0.6])
def test_column_masks_keep_whole_gemm_columns(layer, d):
    g = gemm(layer, generate_mask(layer, Pruning(structure="column", density=d)))
    cols = g.reshape(-1, g.shape[2])
    assert (cols == cols[0]).all()
    assert 0 < cols[0].sum() < g.shape[2]


@pytest.mark.parametrize("layer", LAYERS, ids=ids)
@pytest.mark.parametrize("block", [(4, 4), (2, 3), (8, 1)])
def test_block_masks_keep_whole_tiles(layer, block):
    g = gemm(layer, generate_mask(layer, Pruning(structure="block", density=0.3, block=block)))
    br, bc = block
    groups, rows, cols = g.shape
    for gi in range(groups):
        for r0 in range(0, rows, br):
            for c0 in range(0, cols, bc):
                tile = g[gi, r0 : r0 + br, c0 : c0 + bc]
                assert tile.all() or not tile.any()


@pytest.mark.parametrize("layer", LAYERS, ids=ids)
@pytest.mark.parametrize("nm", [(2, 4), (1, 4), (3, 8), (1, 2)])
def test_nm_masks_keep_at_most_n_per_m(layer, nm):
    n, m = nm
    g = gemm(layer, generate_mask(layer, Pruning(structure="nm", nm=nm)))
    cols = g.shape[2]
    for c0 in range(0, cols, m):
        kept = g[:, :, c0 : c0 + m].sum(axis=2)
        assert (kept == min(n, min(cols, c0 + m) - c0)).all()


# --- ranking by magnitude ------------------------------------------------------------


@given(seed=st.integers(0, 2**31), d=st.floats(0.01, 0.99))
def test_magnitude_keeps_largest_abs_weights(seed, d):
    w = np.random.default_rng(seed).normal(size=FC.weight_shape)
    mask = generate_mask(FC, Pruning(structure="magnitude", density=d), weights=w)
    k = round(d * w.size)
    assert mask.sum() == k
    a = np.abs(w)
    if 0 < k < w.size:
        assert a[mask].min() >= a[~mask].max()
    # the same as sorting by hand
    assert set(np.flatnonzero(mask)) == set(np.argsort(-a.ravel(), kind="stable")[:k])


def test_magnitude_on_hand_made_weights():
    w = np.array([[0.1, -5.0, 0.2, 3.0], [-0.3, 0.0, 4.0, -0.05]])
    fc = Linear(name="tiny", in_features=4, out_features=2)
    mask = generate_mask(fc, Pruning(structure="magnitude", density=3 / 8), weights=w)
    assert mask.tolist() == [[False, True, False, True], [False, False, True, False]]


def test_structured_with_weights_ranks_by_l1_norm():
    w = np.random.default_rng(0).normal(size=CONV.weight_shape) * 0.01
    w[[3, 17, 30]] *= 1000  # three filters with by far the largest L1 norm
    mask = generate_mask(CONV, Pruning(structure="filter", density=3 / 32), weights=w)
    assert np.flatnonzero(mask.reshape(32, -1).any(1)).tolist() == [3, 17, 30]
    w2 = np.random.default_rng(1).normal(size=CONV.weight_shape) * 0.01
    w2[:, [5, 9]] *= 1000  # input channels 5 and 9
    mask2 = generate_mask(CONV, Pruning(structure="channel", density=2 / 16), weights=w2)
    assert np.flatnonzero(mask2[0, :, 0, 0]).tolist() == [5, 9]


def test_nm_with_weights_keeps_largest_in_each_group():
    w = np.array([[0.1, -5.0, 0.2, 3.0, 1.0, 2.0, -3.0, 0.5]])
    fc = Linear(name="tiny", in_features=8, out_features=1)
    mask = generate_mask(fc, Pruning(structure="nm", nm=(2, 4)), weights=w)
    assert mask.tolist() == [[False, True, False, True, False, True, True, False]]


def test_magnitude_needs_weights_and_checks_them():
    with pytest.raises(MaskError, match="needs the weights"):
        generate_mask(FC, Pruning(structure="magnitude", density=0.5))
    with pytest.raises(MaskError, match="shape"):
        generate_mask(FC, Pruning(structure="magnitude", density=0.5), weights=np.ones((100, 60)))
    bad = np.ones(FC.weight_shape)
    bad[0, 0] = np.nan
    with pytest.raises(MaskError, match="non-finite"):
        generate_mask(FC, Pruning(structure="magnitude", density=0.5), weights=bad)


# --- check_mask ------------------------------------------------------------------------


def test_check_mask_accepts_bool_and_zero_one_numbers():
    ones = np.ones(FC.weight_shape)
    for m in (ones.astype(bool), ones.astype(np.uint8), ones, ones.astype(np.float32) * 0):
        out = check_mask(FC, m)
        assert out.dtype == bool and out.shape == FC.weight_shape
        assert out.all() == bool(m.all())
    assert check_mask(FC, ones.tolist()).all()  # nested lists too


@pytest.mark.parametrize(
    ("mask", "fragment"),
    [
        (np.ones((100, 60)), "expected shape"),  # transposed
        (np.ones(6000), "expected shape"),
        (np.full((60, 100), 2), "only 0 and 1"),
        (np.full((60, 100), 0.5), "only 0 and 1"),
        (np.full((60, 100), -1), "only 0 and 1"),
        (np.where(np.eye(60, 100) > 0, np.nan, 1.0), "non-finite"),
        (np.full((60, 100), np.inf), "non-finite"),
        (np.full((60, 100), "1"), "dtype"),
    ],
)
def test_check_mask_errors(mask, fragment):
    with pytest.raises(MaskError, match=fragment) as err:
        check_mask(FC, mask, source="my.npz")
    assert "my.npz" in str(err.value) and "'fc'" in str(err.value)


def test_density_helper():
    assert density(np.array([True, False, False, False])) == 0.25
    assert density(np.zeros(0, bool)) == 0.0


# --- issue 8: memory checked before allocation; blocks and groups clamped ---------

_CONV = Conv2d(name="c", in_channels=6, out_channels=10, kernel_hw=(3, 3), input_hw=(8, 8))


@pytest.mark.parametrize("with_weights", [False, True])
@pytest.mark.parametrize(
    ("big", "fitted"),
    [
        ({"structure": "block", "block": (1000, 7)}, {"structure": "block", "block": (10, 7)}),
        ({"structure": "block", "block": (3, 10**6)}, {"structure": "block", "block": (3, 54)}),
        ({"structure": "nm", "nm": (5, 10**9)}, {"structure": "nm", "nm": (5, 54)}),
        ({"structure": "nm", "nm": (100, 1000)}, {"structure": "nm", "nm": (54, 54)}),
    ],
)
def test_blocks_and_groups_larger_than_the_layer_give_the_same_mask(big, fitted, with_weights):
    w = np.random.default_rng(1).normal(size=_CONV.weight_shape) if with_weights else None
    a = generate_mask(_CONV, Pruning(density=0.3, seed=4, **big), w)
    b = generate_mask(_CONV, Pruning(density=0.3, seed=4, **fitted), w)
    assert np.array_equal(a, b)
    assert clamp_to_layer(_CONV, Pruning(**big)) == Pruning(**fitted)


def test_huge_block_is_cheap_and_huge_layer_refused_before_allocating():
    mask = generate_mask(_CONV, Pruning(structure="block", density=0.5, block=(10**5, 10**5)))
    assert mask.shape == _CONV.weight_shape
    huge = Linear(name="fc", in_features=100_000, out_features=100_000)
    with memory_limit(2**30), pytest.raises(ResourceError, match="the random mask of layer fc"):
        generate_mask(huge, Pruning(density=0.1))


@pytest.mark.parametrize(
    "structure", ["dense", "random", "magnitude", "filter", "channel", "column", "block", "nm"]
)
@pytest.mark.parametrize("with_weights", [False, True])
def test_memory_estimate_covers_the_measured_peak(structure, with_weights):
    if structure == "magnitude" and not with_weights:
        return
    layer = Conv2d(name="c", in_channels=64, out_channels=96, kernel_hw=(3, 3), input_hw=(8, 8))
    w = np.random.default_rng(0).normal(size=layer.weight_shape) if with_weights else None
    for block, nm in (((8, 8), (2, 8)), ((1, 1), (1, 1)), ((1, 576), (3, 576))):
        pruning = Pruning(structure=structure, density=0.3, block=block, nm=nm)
        tracemalloc.start()
        generate_mask(layer, pruning, w)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert peak <= mask_bytes_needed(layer, pruning, with_weights) + 64 * 1024, block


def test_nm_and_block_bounds():
    with pytest.raises(MaskError, match="must look like 2:4"):
        parse_nm("1:" + "9" * 5000)
    with pytest.raises(MaskError, match="at most 2\\*\\*31"):
        parse_nm("1:4294967296")
    assert parse_nm(" 1 : 1000000000 ") == (1, 10**9)
    with pytest.raises(MaskError, match="block sides"):
        Pruning(structure="block", block=(0, 4))


def test_checking_a_numeric_mask_respects_the_memory_limit():
    with memory_limit(1000), pytest.raises(ResourceError, match="checking the mask"):
        check_mask(FC, np.ones(FC.weight_shape, dtype=np.float32))
    assert check_mask(FC, np.ones(FC.weight_shape, dtype=np.float32)).all()


@pytest.mark.parametrize("sizes", [(0,), (1,), (2,), (7, 8), (1000, 1, 3, 1000), (5, 0, 6)])
def test_uint32_draws_are_the_generators_own(sizes):
    """The fast draw of the random mask generator: the same numbers as ``integers``, and
    every later draw of the generator the same too (odd counts, a half held back)."""
    from simulator.masks import _uint32_draws

    a, b = np.random.default_rng([3, 4]), np.random.default_rng([3, 4])
    for size in sizes:
        want = a.integers(0, 2**32, size=size, dtype=np.uint32)
        got = _uint32_draws(b, size)
        np.testing.assert_array_equal(got, want)
        assert got.dtype == np.uint32
    later = [
        [r.integers(0, 999, 5), r.random(2), r.integers(0, 2**32, 3, np.uint32)] for r in (a, b)
    ]
    for x, y in zip(*later, strict=True):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("chunk", [1, 7, 1 << 22])
@pytest.mark.parametrize(
    ("layer", "nm"), [(FC, (2, 4)), (FC, (3, 8)), (GCONV, (2, 4)), (CONV, (1, 5))]
)
def test_nm_mask_drawn_in_chunks_is_the_whole_layer_draw(monkeypatch, chunk, layer, nm):
    """The N:M generator draws its scores a few rows at a time; the mask is the one a
    single draw of the whole layer's scores gives (the twin: one draw of uniform
    32-bit integers over the GEMM view, padded to whole groups with -inf, a stable
    sort per group)."""
    import simulator.masks as masks_module
    from simulator.masks import layer_rng

    monkeypatch.setattr(masks_module, "NM_CHUNK", chunk)
    pruning = Pruning(structure="nm", nm=nm, seed=5)
    got = gemm(layer, generate_mask(layer, pruning))
    g = layer.gemm
    n, m = nm
    score = layer_rng(5, layer.name).integers(0, 2**32, (g.groups, g.rows, g.cols), np.uint32)
    ngrp = -(-g.cols // m)
    padded = np.full((g.groups * g.rows, ngrp * m), -np.inf)
    padded[:, : g.cols] = score.reshape(-1, g.cols).astype(np.float64)
    keep = twins.nm_keep(padded.reshape(-1, m), n).astype(bool) & np.isfinite(padded.reshape(-1, m))
    want = keep.reshape(g.groups, g.rows, ngrp * m)[:, :, : g.cols]
    assert np.array_equal(got, want)


@pytest.mark.parametrize(
    ("layer", "nm"),
    [(FC, (2, 4)), (FC, (3, 8)), (CONV, (1, 5)), (FC, (4, 4)), (GCONV, (2, 4)), (DW, (3, 4))],
)
def test_generated_nm_profile_knows_its_group_maximum(layer, nm):
    """A generated N:M mask's profile states its group maximum and kept entries
    without counting; counts over its mask give the same."""
    from simulator.netmasks import layer_profiles
    from simulator.workloads import Network

    net = Network(name="one", layers=(layer,))
    p = layer_profiles(net, Pruning(structure="nm", nm=nm, seed=3))(layer)
    m = min(nm[1], layer.gemm.cols)
    assert ("group_max", m) in p._cache
    assert p.group_max(m) == twins.group_max(p.gemm, m)
    assert "nnz" in p._cache
    assert p.nnz == int(np.count_nonzero(p.gemm))


@given(
    shape=st.tuples(st.integers(1, 5), st.integers(1, 9)),
    level=st.integers(0, 65536),
    seed=st.integers(0, 2**32 - 1),
)
def test_bernoulli_is_sixteen_bit_draws_below_the_density(shape, level, seed):
    """Entry i is kept when the generator's i-th 16-bit draw (rng.bytes, little-endian)
    is below round(65536 density); at density 1 every entry is kept."""
    from simulator.masks import bernoulli

    density = level / 65536
    got = bernoulli(np.random.default_rng(seed), shape, density)
    n = int(np.prod(shape))
    if level == 65536:
        assert got.all() and got.shape == shape
        return
    raw = np.frombuffer(np.random.default_rng(seed).bytes(2 * n + 2), dtype="<u2")[:n]
    assert np.array_equal(got, (raw < level).reshape(shape))


@pytest.mark.parametrize(
    ("layer", "nm"), [(FC, (2, 4)), (FC, (3, 8)), (CONV, (1, 5)), (GCONV, (2, 4)), (DW, (3, 4))]
)
def test_generated_nm_profile_is_drawn_only_when_its_pattern_is_read(layer, nm):
    """A generated N:M profile gives its N:M storage without drawing the mask, and
    the mask it draws when asked is the generated one, with the counts it stated."""
    from simulator.formats import FormatParams, format_stats, profile_mask
    from simulator.netmasks import layer_profiles
    from simulator.workloads import Network

    pruning = Pruning(structure="nm", nm=nm, seed=3)
    p = layer_profiles(Network(name="one", layers=(layer,)), pruning)(layer)
    m = min(nm[1], layer.gemm.cols)
    params = FormatParams(weight_bits=8, nm=(min(nm[0], m), m))
    lazy = format_stats(p, "nm", params)
    assert "gemm" not in p._cache  # not drawn for its N:M storage
    drawn = generate_mask(layer, pruning)
    assert np.array_equal(p.gemm, gemm(layer, drawn).astype(np.uint8))
    full = format_stats(profile_mask(layer, drawn), "nm", params)
    for name in ("entries", "values_bits", "indices_bits", "fillers_bits", "representable", "nnz"):
        assert getattr(lazy, name) == getattr(full, name), name
    assert np.array_equal(lazy.line_entries, full.line_entries)
