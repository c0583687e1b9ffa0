"""SCNN-style sparse CNN engine: kernel against its twin, conservation laws
(hypothesis), the bank-conflict expectation, the engine choice per layer kind, and the
published SCNN figures (validate rows)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from simulator import kernels
from simulator.dataflows import LayerTask, run_scnn
from simulator.dataflows.scnn import bank_stalls, conv_geometry, conv_steps
from simulator.errors import ConfigError
from simulator.formats import profile_mask
from simulator.hwconfig import load_platform, platform_from_dict
from simulator.layers import Conv2d, Linear
from simulator.simulate import engine
from tests import twins
from tests.tasks import task

SCNN = load_platform("scnn")


@st.composite
def schedules(draw):
    groups, pes, steps = draw(st.integers(1, 3)), draw(st.integers(1, 5)), draw(st.integers(1, 6))
    f, i = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    w = rng.integers(0, 3 * f + 2, (groups, pes, steps)).astype(np.int64)
    a = rng.integers(0, 3 * i + 2, (pes, steps)).astype(np.int64)
    stall = rng.random(f * i + 1) * draw(st.sampled_from([0.0, 1.0]))
    return w, a, f, i, stall


@settings(max_examples=60, deadline=None)
@given(schedules())
def test_schedule_kernel_matches_its_twin(case):
    w, a, f, i, stall = case
    a_of = np.zeros(w.shape[0], dtype=np.int64)
    got = kernels.scnn_schedule(w, a[None], a_of, np.int64(f), np.int64(i), stall)
    want = twins.scnn_schedule(w, a[None], a_of, f, i, stall)
    assert got[0] == pytest.approx(want[0])
    np.testing.assert_allclose(got[1], want[1])
    for g, t in zip(got[2:], want[2:], strict=True):
        np.testing.assert_array_equal(g, t)
        assert g.dtype == np.int64


@settings(max_examples=60, deadline=None)
@given(schedules())
def test_shared_schedule_is_the_schedule_with_weights_shared_by_every_pe(case):
    """The convolutions' kernel: each barrier group's weight steps the same for every PE,
    the same numbers bit for bit as the general kernel on the broadcast copy."""
    w, a, f, i, stall = case
    shared = w[:, 0, :]
    copy = np.ascontiguousarray(np.broadcast_to(shared[:, None, :], w.shape))
    acts = np.stack([a, a[::-1]])  # two conv groups' activations
    a_of = np.arange(w.shape[0], dtype=np.int64) % 2
    want = kernels.scnn_schedule(copy, acts, a_of, np.int64(f), np.int64(i), stall)
    by_step = np.ascontiguousarray(acts.transpose(0, 2, 1))
    got = kernels.scnn_shared_schedule(
        np.ascontiguousarray(shared), by_step, a_of, np.int64(f), np.int64(i), stall
    )
    assert got[0] == want[0]
    for g, t in zip(got[1:], want[1:], strict=True):
        np.testing.assert_array_equal(g, t)
        assert g.dtype == t.dtype


@settings(max_examples=60, deadline=None)
@given(schedules())
def test_row_schedule_is_the_schedule_with_activations_shared_by_every_pe(case):
    """The fully connected layers' kernel: one barrier group whose activations every PE
    sees, the same numbers bit for bit as the general kernel on the broadcast copy."""
    w, a, f, i, stall = case
    entries, active = w[0], a[0]
    if active.size % 2:  # mostly single activations, as a fully connected layer has them
        active = np.minimum(active, 1)
    shared = np.ascontiguousarray(np.broadcast_to(active, entries.shape))[None]
    want = kernels.scnn_schedule(
        entries[None], shared, np.zeros(1, dtype=np.int64), np.int64(f), np.int64(i), stall
    )
    columns = np.ascontiguousarray(entries.T)
    got = kernels.scnn_row_schedule(columns, active, np.int64(f), np.int64(i), stall)
    assert got[0] == want[0]
    for g, t in zip(got[1:], want[1:], strict=True):
        np.testing.assert_array_equal(g, t)
        assert g.dtype == t.dtype


@settings(max_examples=60, deadline=None)
@given(schedules())
def test_no_pe_finishes_before_its_share_of_entries(case):
    w, a, f, i, stall = case
    total, busy, _slots, products, _base = kernels.scnn_schedule(
        w, a[None], np.zeros(w.shape[0], dtype=np.int64), np.int64(f), np.int64(i), stall
    )
    share = np.array(
        [
            sum(
                math.ceil(w[g, p, c] / f) * math.ceil(a[p, c] / i)
                for g in range(w.shape[0])
                for c in range(w.shape[2])
            )
            for p in range(w.shape[1])
        ]
    )
    assert np.all(busy >= share - 1e-9)
    assert np.all(busy * f * i >= products - 1e-9)  # F x I products per cycle at most
    assert total >= busy.max(initial=0) - 1e-9  # the barriers wait for the slowest
    assert total * w.shape[1] * f * i >= products.sum() - 1e-9


def _conv(draw):
    c, k = draw(st.integers(1, 4)), draw(st.integers(1, 9))
    r = draw(st.integers(1, 3))
    h = draw(st.integers(r, 12))
    stride = draw(st.integers(1, 3))
    pad = draw(st.integers(0, r - 1))
    groups = draw(st.sampled_from([g for g in (1, 2) if c % g == 0 and k % g == 0]))
    return Conv2d(
        name="c",
        in_channels=c * groups if groups > 1 and c % groups else c,
        out_channels=k,
        kernel_hw=(r, r),
        input_hw=(h, h + draw(st.integers(0, 3))),
        stride_hw=(stride, stride),
        padding_hw=(pad, pad),
        groups=groups,
    )


@st.composite
def conv_tasks(draw):
    layer = _conv(draw)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    wd = draw(st.sampled_from([0.0, 0.1, 0.5, 1.0]) | st.floats(0.0, 1.0))
    ad = draw(st.sampled_from([0.05, 0.3, 1.0]) | st.floats(0.01, 1.0))
    mask = rng.random(layer.weight_shape) < wd
    acts = rng.random((layer.in_channels, *layer.input_hw)) < ad
    variant = draw(st.sampled_from(["sparse", "dense"]))
    task = LayerTask(
        layer=layer,
        profile=profile_mask(layer, mask),
        variant=variant,
        weight_bits=16,
        index_bits=4,
        activation_bits=16,
        activation_mask=acts,
    )
    return task, mask, acts


def _tiny(rows: int, cols: int):
    raw = dict(SCNN.raw)
    compute = dict(raw["compute"])
    compute["pes"] = rows * cols
    compute["scnn"] = {**compute["scnn"], "pe_rows": rows, "pe_cols": cols}
    return platform_from_dict({**raw, "compute": compute})


TINY = _tiny(2, 3)


@settings(max_examples=40, deadline=None)
@given(conv_tasks())
def test_work_done_plus_skipped_is_dense_work(case):
    """Conservation: MACs done (products landing on an output, from the masks) plus
    MACs skipped equal the layer's dense MACs; done equals a direct convolution of the
    masks (all ones for the dense variant: all MACs but those on padding); the array
    never beats F x I x PEs per cycle."""
    task, mask, acts = case
    c = run_scnn(task, TINY)
    layer = task.layer
    assert c.macs_done + c.macs_skipped == layer.macs
    if task.variant == "dense":  # DCNN: every weight and activation; padding is not stored
        mask, acts = np.ones_like(mask), np.ones_like(acts)
        if layer.padding_hw == (0, 0):
            assert c.macs_done == layer.macs
    cg, kg = layer.in_channels // layer.groups, layer.out_channels // layer.groups
    want = sum(
        twins.effectual_macs(
            mask[g * kg : (g + 1) * kg],
            acts[g * cg : (g + 1) * cg],
            layer.stride_hw,
            layer.padding_hw,
            layer.dilation_hw,
        )
        for g in range(layer.groups)
    )
    assert c.macs_done == want
    array = TINY.scnn
    lanes = array.pes * array.multipliers
    assert c.compute_cycles * lanes >= c.words["scnn_products"] - 1e-9
    assert c.words["scnn_products"] >= c.macs_done  # edge products are discarded
    assert 0 <= c.pe_utilization <= 1


@settings(max_examples=30, deadline=None)
@given(conv_tasks())
def test_steps_cover_every_nonzero_once(case):
    """Every nonzero activation lands in exactly one PE's tile and phase; every nonzero
    weight in one output-channel group and phase."""
    task, mask, acts = case
    layer = task.layer
    geo = conv_geometry(layer, TINY.scnn)
    cg = layer.in_channels // layer.groups
    kg = layer.out_channels // layer.groups
    w_steps, a_steps, a_of, _, n_kc = conv_steps(layer, mask, acts, TINY.scnn, geo)
    assert a_of.tolist() == [g for g in range(layer.groups) for _ in range(n_kc)]
    for g in range(layer.groups):
        assert a_steps[g].sum() == acts[g * cg : (g + 1) * cg].sum()
        assert w_steps[a_of == g, 0, :].sum() == mask[g * kg : (g + 1) * kg].sum()


def test_bank_stalls_match_a_monte_carlo_of_uniform_hashing():
    exact = bank_stalls(16, 32)
    rng = np.random.default_rng(0)
    for n in (1, 4, 16):
        draws = rng.integers(0, 32, (20000, n))
        loads = np.array([np.bincount(d, minlength=32).max() for d in draws])
        assert exact[n] == pytest.approx(loads.mean() - 1, abs=0.02)
    assert exact[0] == exact[1] == 0


def test_fc_runs_at_a_quarter_of_peak_when_dense():
    """SCNN's fully connected mapping: one activation against F weights per cycle, so a
    dense layer on a 4 x 4 array reaches at most 25% of peak (the paper's figure)."""
    layer = Linear(name="fc", in_features=256, out_features=512)
    c = run_scnn(task(layer, wb=16, ab=16), SCNN)
    assert c.macs_done == layer.macs
    assert c.pe_utilization == pytest.approx(0.25, rel=0.01)


def _with(base: str, **compute):
    raw = dict(load_platform(base).raw)
    raw["compute"] = {**raw["compute"], **compute}
    return platform_from_dict(raw)


def test_sparse_engines_pick_the_engine_per_layer_kind():
    p = _with("scnn", sparse_engines={"fc": "eie"})
    conv = Conv2d(name="c", in_channels=8, out_channels=8, kernel_hw=(3, 3), input_hw=(8, 8))
    fc = Linear(name="f", in_features=64, out_features=64)
    for layer, want in ((conv, "scnn"), (fc, "eie")):
        t = task(layer, variant="sparse", wb=16, ab=16)
        assert engine(p, "sparse")(t).engine.startswith(want)
        assert engine(p, "dense")(t).engine.startswith("scnn")


def test_fpga_with_sparse_engines_runs_scnn_on_conv():
    p = _with("zcu102", sparse_engines={"conv": "scnn", "fc": "eie"})
    conv = Conv2d(name="c", in_channels=8, out_channels=8, kernel_hw=(3, 3), input_hw=(16, 16))
    t = task(conv, variant="sparse")
    assert engine(p, "sparse")(t).engine.startswith("scnn")
    # without the line, the FPGA's EIE-style array runs convolutions too
    plain = _with("zcu102", sparse_engines={})
    assert engine(plain, "sparse")(t).engine.startswith("eie")
    # the built-in FPGA profiles declare it
    for name in ("zcu102", "alveo_u250"):
        assert engine(load_platform(name), "sparse")(t).engine.startswith("scnn"), name


@pytest.mark.parametrize(
    ("compute", "message"),
    [
        ({"sparse_engines": {"conv": "scnnn"}}, "sparse_engines"),
        ({"sparse_engines": {"pool": "eie"}}, "sparse_engines"),
        ({"scnn": {"pe_rows": 4}}, r"compute\.pes"),
    ],
)
def test_bad_scnn_settings_fail_clearly(compute, message):
    with pytest.raises(ConfigError, match=message):
        _with("scnn", **compute)


def test_scnn_only_where_named():
    with pytest.raises(ConfigError, match=r"compute\.scnn: only with"):
        _with("eie", scnn={"pe_rows": 8})
    with pytest.raises(ConfigError, match="only for fpga and asic"):
        _with("a100", sparse_engines={"fc": "eie"})


@pytest.mark.parametrize(
    "row",
    [
        "scnn/alexnet-speedup",
        "scnn/vgg16-speedup",
        "scnn/dense-point-energy",
        "scnn/dense-point-speedup",
    ],
)
def test_published_scnn_figures_within_30_percent(row):
    """SCNN over DCNN (Parashar et al., ISCA 2017, via simulator/validate/references.yaml):
    AlexNet 2.37x and VGGNet 3.52x speed-up; at 1.0/1.0 density 0.79x speed and 1.33x
    energy."""
    from simulator.validate import references
    from simulator.validate.checks import CHECKS

    refs = references()
    spec = next(c for c in refs["checks"] if c["id"] == row)
    ref = refs["tables"]
    for key in spec["ref"].split("."):
        ref = ref[key]
    got = CHECKS[spec["check"]](refs["tables"], **spec["args"]).predicted
    assert got == pytest.approx(ref, rel=0.3)


@pytest.mark.parametrize("banks", [32, 24])
@pytest.mark.parametrize(
    ("stride", "pad", "dilation", "kernel"),
    [(1, 1, 1, 3), (2, 1, 1, 3), (2, 3, 1, 7), (1, 0, 1, 1), (2, 2, 2, 3)],
)
def test_bank_stalls_kernel_equals_twin(stride, pad, dilation, kernel, banks):
    """The numba bank-stall sampler against its numpy twin on random masks, strided,
    padded and dilated convolutions, power-of-two and other bank counts, with a
    budget that stops it part way."""
    from dataclasses import replace

    from simulator import kernels as k

    rng = np.random.default_rng(stride * 10 + kernel)
    layer = Conv2d(
        name="c",
        in_channels=6,
        out_channels=40,
        kernel_hw=(kernel, kernel),
        input_hw=(23, 19),
        stride_hw=(stride, stride),
        padding_hw=(pad, pad),
        dilation_hw=(dilation, dilation),
    )
    array = replace(TINY.scnn, accumulator_banks=banks)
    geo = conv_geometry(layer, array)
    wm = rng.random(layer.weight_shape) < 0.3
    am = rng.random((6, 23, 19)) < 0.5
    n_kc = -(-40 // geo["kc"])
    steps = np.array(
        [
            [
                rng.integers(n_kc),
                rng.integers(6),
                rng.integers(array.pe_rows),
                rng.integers(array.pe_cols),
            ]
            for _ in range(40)
        ],
        dtype=np.int64,
    )
    geom = np.array(
        (geo["kc"], *geo["tile"], stride, stride, dilation, dilation, pad, pad, *layer.output_hw),
        dtype=np.int64,
    )
    for budget in (10**9, 3000):
        got = k.scnn_bank_stalls(
            wm.astype(np.uint8),
            am.astype(np.uint8),
            steps,
            geom,
            np.int64(array.weight_vector),
            np.int64(array.activation_vector),
            np.int64(array.accumulator_banks),
            np.int64(budget),
        )
        want = twins.scnn_bank_stalls(layer, wm, am, array, geo, steps, budget)
        assert np.array_equal(got[1], want[1])
        assert np.allclose(got[0], want[0], rtol=0, atol=0)
        assert got[1].sum() > 0


@given(
    data=st.data(),
    shape=st.tuples(st.integers(1, 6), st.integers(1, 12), st.integers(1, 12)),
    pes=st.integers(1, 9),
    phases=st.integers(1, 4),
)
def test_activation_counts_kernel_equals_twin(data, shape, pes, phases):
    seed = data.draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    am = (rng.random(shape) < 0.4).astype(np.uint8)
    first = data.draw(st.integers(0, shape[0] - 1))
    channels = data.draw(st.integers(1, shape[0] - first))
    pe_map = rng.integers(0, pes, size=shape[1:]).astype(np.int64)
    phase_map = rng.integers(0, phases, size=shape[1:]).astype(np.int64)
    got = kernels.scnn_activation_counts(am, first, channels, pe_map, phase_map, pes, phases)
    want = twins.scnn_activation_counts(am, first, channels, pe_map, phase_map, pes, phases)
    assert np.array_equal(got, want)


@given(
    shape=st.tuples(st.integers(1, 3), st.integers(1, 7), st.integers(1, 9)),
    i=st.integers(1, 5),
    seed=st.integers(0, 2**32 - 1),
)
def test_activation_vectors_kernel_by_hand(shape, i, seed):
    """Vectors of I per (conv group, step) over the PEs: ceil(a / I) summed, as NumPy
    counts them; and every nonzero activation."""
    a = np.random.default_rng(seed).integers(0, 20, size=shape).astype(np.int64)
    total, vectors = kernels.scnn_activation_vectors(a, np.int64(i))
    assert total == int(a.sum())
    assert np.array_equal(vectors, np.ceil(a / i).astype(np.int64).sum(axis=2))


@given(
    data=st.data(),
    shape=st.tuples(st.integers(1, 4), st.integers(1, 13), st.integers(1, 13)),
    kernel=st.tuples(st.integers(1, 5), st.integers(1, 5)),
    stride=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    dilation=st.tuples(st.integers(1, 2), st.integers(1, 2)),
)
def test_window_counts_kernel_equals_twin(data, shape, kernel, stride, dilation):
    """Any kernel, stride, dilation and padding (output sizes as a convolution has
    them), against the padded plane cut window by window."""
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    am = (rng.random(shape) < data.draw(st.sampled_from([0.0, 0.3, 1.0]))).astype(np.uint8)
    pad = tuple(data.draw(st.integers(0, 3)) for _ in range(2))
    out = []
    for n, k, st_, d, pd_ in zip(shape[1:], kernel, stride, dilation, pad, strict=True):
        span = d * (k - 1) + 1
        out.append((n + 2 * pd_ - span) // st_ + 1)
    assume(min(out) >= 1)
    geom = np.array((*kernel, *stride, *dilation, *pad, *out), dtype=np.int64)
    got = kernels.scnn_window_counts(am, geom)
    assert np.array_equal(got, twins.scnn_window_counts(am, geom))


@given(
    data=st.data(),
    shape=st.tuples(st.integers(1, 12), st.integers(1, 5), st.integers(1, 4), st.integers(1, 4)),
    phases=st.integers(1, 4),
)
def test_weight_counts_kernel_equals_twin(data, shape, phases):
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    groups = data.draw(st.integers(1, 3))
    wm = (rng.random((shape[0] * groups, *shape[1:])) < 0.4).astype(np.uint8)
    kg = shape[0]
    kc = data.draw(st.integers(1, kg))
    phase_map = rng.integers(0, phases, size=shape[2:]).astype(np.int64)
    got = kernels.scnn_weight_counts(wm, kg, kc, phase_map, phases)
    want = twins.scnn_weight_counts(wm, kg, kc, phase_map, phases)
    assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])
