"""The loop-nest mapping model (``compute.dram_model: mapped``, simulator/mapping.py):
hand-computed nests, a literal loop simulation, brute force over every tile size,
compulsory traffic, and totals against SCALE-Sim v3's 32x32 ws reference.
"""

from __future__ import annotations

import itertools
import json
import math
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_scalesim_mode import _dense

from simulator import kernels, mapping
from simulator.cli import main
from simulator.cost import price
from simulator.dataflows import run_systolic
from simulator.errors import ConfigError
from simulator.hwconfig import builtin_platforms, load_platform, platform_from_dict
from simulator.mapping import (
    ORDERS,
    Budget,
    Prices,
    Window,
    evaluate_nest,
    map_gemm,
    tile_candidates,
)
from simulator.simulate import engine
from simulator.workloads import read_scalesim_topology
from simulator.yamlio import read_yaml
from tests import twins

DATA = Path(__file__).resolve().parent / "data"
SS = DATA / "scalesim"
REF = pd.read_csv(DATA / "scalesim_v3_32x32.csv")


def _nest(order, tiles, dims=(4, 6, 8), dataflow="ws", array=(2, 2)):
    return evaluate_nest(
        dims=dims,
        tiles=tiles,
        order=tuple(order),
        array=array,
        dataflow=dataflow,
        weight_bits=8,
        activation_bits=8,
        psum_bits=32,
    )


def test_hand_computed_nests():
    """M=4, K=6, N=8, tiles Mt=2, Kt=3, Nt=4: two trips of every loop; 8-bit weights
    and activations, 32-bit partial sums. W (m,k) = 24, I (k,n) = 48, O (m,n) = 32."""
    # order m, n, k: W's other loop n (pos 1) has k moving inside -> read 2x: 48 x 8
    # = 384 bits; I's other loop m (pos 0) has n, k inside -> 2x: 96 x 8 = 768;
    # O's other loop k is innermost -> no spill; outputs 32 x 8 = 256. Total 1408.
    a = _nest("mnk", (2, 3, 4))
    assert a.operand("weights").dram_read_bits == 384
    assert a.operand("inputs").dram_read_bits == 768
    assert a.operand("outputs").dram_write_bits == 256
    assert a.operand("psums").dram_write_bits == a.operand("psums").dram_read_bits == 0
    assert a.dram_bits == 1408
    # order k, m, n: W's n innermost -> once, 192; I's m (pos 1) has n inside -> 768;
    # O's k outermost with m, n moving inside -> 2 visits: one spill of 32 psums at
    # 32 bits written (1024) and read back (1024); outputs 256. Total 3264.
    b = _nest("kmn", (2, 3, 4))
    assert b.operand("weights").dram_read_bits == 192
    assert b.operand("inputs").dram_read_bits == 768
    assert b.operand("psums").dram_write_bits == b.operand("psums").dram_read_bits == 1024
    assert b.dram_bits == 3264 and b.output_visits == 2
    # order n, k, m with Mt = 4 (one trip of m): W's n outermost, k moves inside -> 2x
    # = 384; I's m innermost -> once, 384; O's k has only m inside, which never moves
    # -> no spill. Total 384 + 384 + 256 = 1024.
    c = _nest("nkm", (4, 3, 4))
    assert c.dram_bits == 1024 and c.operand("psums").dram_write_bits == 0
    # buffer deliveries, ws on 2x2 (rows: K, cols: M), tiles 2, 3, 4: k folds
    # 2 tiles x ceil(3/2) = 4, m folds 2 x 1 = 2, n (streamed) 2 trips:
    # W 24 x 2 = 48 reads, I 48 x 2 = 96 reads, O 32 x 4 = 128 writes (32-bit psums),
    # 128 - 32 accumulate reads + 32 drained = 128 reads; register file (ws: weights
    # stationary): one write per delivery (48), one read per MAC (4 x 6 x 8 = 192).
    w, i, o = (a.operand(x) for x in ("weights", "inputs", "outputs"))
    assert (w.buffer_reads, i.buffer_reads, o.buffer_writes, o.buffer_reads) == (48, 96, 128, 128)
    assert (w.regfile_writes, w.regfile_reads) == (48, 192)
    assert "for m in 0..4 step 2: for n in 0..8 step 4: for k in 0..6 step 3" in a.loop_nest()
    assert a.loop_nest(indent=True).splitlines()[2] == "    for k in 0..6 step 3:"


def _simulate(dims, tiles, order):
    """The loop nest run literally: a tile is fetched whenever the tile of that operand
    changes; an output tile evicted before its last k step is spilled (and read back
    when revisited). Element counts."""
    size = dict(zip("mkn", dims, strict=True))
    step = dict(zip("mkn", tiles, strict=True))
    starts = {d: range(0, size[d], step[d]) for d in "mkn"}

    def ext(d, s):
        return min(step[d], size[d] - s)

    resident = {"weights": None, "inputs": None, "outputs": None}
    count = Counter()
    k_done = Counter()
    k_trips = len(starts["k"])

    def evict(key):
        if key is None:
            return
        n_el = ext("m", key[0]) * ext("n", key[1])
        count["out" if k_done[key] == k_trips else "spill"] += n_el

    for point in itertools.product(*(starts[d] for d in order)):
        at = dict(zip(order, point, strict=True))
        for op, idx in (("weights", "mk"), ("inputs", "kn")):
            key = tuple(at[d] for d in idx)
            if resident[op] != key:
                resident[op] = key
                count[op] += math.prod(ext(d, at[d]) for d in idx)
        key = (at["m"], at["n"])
        if resident["outputs"] != key:
            evict(resident["outputs"])
            resident["outputs"] = key
            if k_done[key]:
                count["refill"] += ext("m", at["m"]) * ext("n", at["n"])
        k_done[key] += 1
    evict(resident["outputs"])
    assert count["spill"] == count["refill"]
    return count


def _bits(count, wb, ab, pb):
    acts = (count["inputs"] + count["out"]) * ab
    return count["weights"] * wb + acts + 2 * count["spill"] * pb


DIMS = st.tuples(st.integers(1, 5), st.integers(1, 5), st.integers(1, 5))


@settings(max_examples=60, deadline=None)
@given(dims=DIMS, data=st.data())
def test_counts_match_a_literal_run_of_the_nest(dims, data):
    tiles = tuple(data.draw(st.integers(1, d)) for d in dims)
    order = data.draw(st.sampled_from(ORDERS))
    got = evaluate_nest(
        dims=dims,
        tiles=tiles,
        order=order,
        array=(1, 1),
        dataflow="ws",
        weight_bits=4,
        activation_bits=8,
        psum_bits=32,
    )
    c = _simulate(dims, tiles, order)
    assert got.operand("weights").dram_read_bits == c["weights"] * 4
    assert got.operand("inputs").dram_read_bits == c["inputs"] * 8
    assert got.operand("psums").dram_write_bits == c["spill"] * 32
    assert got.operand("outputs").dram_write_bits == c["out"] * 8


@settings(max_examples=60, deadline=None)
@given(
    dims=DIMS,
    shared=st.integers(40, 1200),
    dataflow=st.sampled_from(["ws", "os", "is"]),
    wb=st.sampled_from([4, 8]),
)
def test_search_is_never_worse_than_brute_force_over_every_tile(dims, shared, dataflow, wb):
    """Brute force: every tile size 1..D of each dimension, six orders, each nest run
    literally; the search (on a 1x1 array its space is every tile of dims <= 16, less
    the dominated Nt) must find the same minimum, and never less than compulsory."""
    ab, pb = 8, 32
    m, k, n = dims
    best = math.inf
    for mt, kt, nt in itertools.product(range(1, m + 1), range(1, k + 1), range(1, n + 1)):
        if mt * kt * wb + kt * nt * ab + mt * nt * pb > shared:
            continue
        for order in ORDERS:
            best = min(best, _bits(_simulate(dims, (mt, kt, nt), order), wb, ab, pb))
    got = map_gemm(
        groups=1,
        dims=dims,
        array=(1, 1),
        dataflow=dataflow,
        weight_bits=wb,
        activation_bits=ab,
        budget=Budget(shared=shared),
        psum_bits=pb,
    )
    if best < math.inf:
        assert got.fits and got.dram_bits == best
    else:
        assert not got.fits
    assert got.dram_bits == _bits(_simulate(dims, got.tiles, got.order), wb, ab, pb)


@settings(max_examples=60, deadline=None)
@given(
    dims=st.tuples(st.integers(1, 5000), st.integers(1, 5000), st.integers(1, 20000)),
    groups=st.integers(1, 4),
    kb=st.integers(0, 1024),
    dataflow=st.sampled_from(["ws", "os", "is"]),
    objective=st.sampled_from(["dram", "energy", "latency"]),
    split=st.booleans(),
)
def test_no_mapping_moves_less_than_compulsory(dims, groups, kb, dataflow, objective, split):
    m, k, n = dims
    size = kb * 8192.0
    budget = Budget(weights=size, inputs=size, outputs=size) if split else Budget(shared=size)
    prices = Prices(dram_read_pj=30, dram_write_pj=30, buffer_read_pj=0.4, buffer_write_pj=0.4)
    nest = map_gemm(
        groups=groups,
        dims=dims,
        array=(32, 16),
        dataflow=dataflow,
        weight_bits=8,
        activation_bits=8,
        budget=budget,
        objective=objective,
        prices=prices,
    )
    assert nest.operand("weights").dram_read_bits >= groups * m * k * 8
    assert nest.operand("inputs").dram_read_bits >= groups * k * n * 8
    assert nest.operand("outputs").dram_write_bits == groups * m * n * 8
    mt, kt, nt = nest.tiles
    assert 1 <= mt <= m and 1 <= kt <= k and 1 <= nt <= n
    if nest.fits:
        held = mt * kt * 8, kt * nt * 8, mt * nt * 32
        assert (max(held) <= size) if split else (sum(held) <= size)


@st.composite
def searches(draw):
    """A GEMM (or a convolution's) search: dims, array, tilings, bits, a shared or split
    budget (tight ones included: nothing fits), activations on chip or not, groups,
    objective and prices (bandwidths of zero included: infinite and NaN keys)."""
    dataflow = draw(st.sampled_from(["ws", "os", "is"]))
    array = (draw(st.integers(1, 64)), draw(st.integers(1, 64)))
    window = None
    if draw(st.booleans()):
        r, s = draw(st.integers(1, 5)), draw(st.integers(1, 5))
        stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
        h, w = draw(st.integers(r, 40)), draw(st.integers(s, 40))
        out = ((h - r) // stride[0] + 1, (w - s) // stride[1] + 1)
        window = Window(
            channels=draw(st.integers(1, 300)),
            kernel=(r, s),
            input_hw=(h, w),
            output_hw=out,
            stride=stride,
            images=draw(st.integers(1, 3)),
        )
        dims = (
            draw(st.integers(1, 600)),
            window.channels * r * s,
            window.images * out[0] * out[1],
        )
    else:
        dims = (draw(st.integers(1, 5000)), draw(st.integers(1, 5000)), draw(st.integers(1, 9000)))
    bits = (float(draw(st.sampled_from([4, 8, 8.5]))), 8.0, float(draw(st.sampled_from([16, 32]))))
    size = float(draw(st.integers(0, 2**24)))
    if draw(st.booleans()):
        budget = Budget(shared=size)
    else:
        budget = Budget(weights=size, inputs=size / 2, outputs=float(draw(st.integers(0, 2**22))))
    bandwidth = draw(st.sampled_from([0.0, 1e9, 4e11]))
    prices = Prices(
        dram_read_pj=draw(st.sampled_from([0.0, 20.0])),
        dram_write_pj=20.0,
        buffer_read_pj=draw(st.sampled_from([0.0, 0.5])),
        buffer_write_pj=0.6,
        compute_s=draw(st.sampled_from([0.0, 1e-4])),
        dram_bytes_per_s=bandwidth,
        buffer_bits_per_s=draw(st.sampled_from([0.0, 1e12])),
    )
    return dict(
        dims=dims,
        array=array,
        dataflow=dataflow,
        window=window,
        bits=bits,
        budget=budget,
        on_chip=draw(st.booleans()),
        groups=draw(st.integers(1, 4)),
        objective=draw(st.sampled_from(["dram", "energy", "latency"])),
        prices=prices,
    )


@settings(max_examples=150, deadline=None)
@given(searches())
def test_search_kernel_matches_its_twin(case):
    """The search kernel against its NumPy twin (every candidate's counts and keys as
    arrays, ranked by np.lexsort): the same nest, bit for bit the same keys."""
    tilings = mapping._tilings(case["dims"], case["array"], case["dataflow"], case["window"])
    b, pr = case["budget"], case["prices"]
    got, keys = kernels.map_search(
        np.array(case["dims"], dtype=np.int64),
        *(mapping._rows(t) for t in tilings),
        mapping._INSIDE_ALL,
        np.array(case["bits"]),
        np.array([np.nan if b.shared is None else b.shared, b.weights, b.inputs, b.outputs]),
        case["on_chip"],
        case["groups"],
        mapping.OBJECTIVES.index(case["objective"]),
        np.array(
            [
                pr.dram_read_pj,
                pr.dram_write_pj,
                pr.buffer_read_pj,
                pr.buffer_write_pj,
                pr.compute_s,
                pr.dram_bytes_per_s,
                pr.buffer_bits_per_s,
            ]
        ),
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        want, want_keys = twins.map_search(
            case["dims"],
            tilings,
            case["bits"],
            b,
            case["on_chip"],
            case["groups"],
            case["objective"],
            pr,
        )
    assert tuple(int(x) for x in got) == want
    np.testing.assert_array_equal(keys, want_keys)  # NaN where NaN, else equal


def test_candidates_are_stated():
    assert list(tile_candidates(100, 32)) == [32, 64, 96, 100]
    assert list(tile_candidates(5, 8)) == [5]
    big = tile_candidates(2304, 32)
    assert {32, 64, 128, 256, 512, 1024, 2048, 2304, 1152, 768} <= set(big)
    assert all(x % 32 == 0 or x == 2304 for x in big)


def test_psums_stay_on_chip_when_an_output_tile_fits_with_k_innermost():
    """ResNet-50 conv3_x 3x3: M=128, K=1152, N=784, 8-bit; a 64 KB buffer holds a
    32 x 256 tile of 32-bit outputs beside a 32 x 32 weight and a 32 x 256 input tile,
    so the search keeps every partial sum on chip. Any nest with k innermost never
    spills; the same nest with k outermost does."""
    nest = map_gemm(
        groups=1,
        dims=(128, 1152, 784),
        array=(32, 32),
        dataflow="ws",
        weight_bits=8,
        activation_bits=8,
        budget=Budget(shared=64 * 1024 * 8),
    )
    assert nest.fits and nest.output_visits == 1
    assert nest.operand("psums").dram_write_bits == 0
    assert nest.operand("outputs").dram_write_bits == 128 * 784 * 8
    for order in ("mnk", "nmk"):
        inner = _nest(order, (32, 32, 256), dims=(128, 1152, 784), array=(32, 32))
        assert inner.operand("psums").dram_write_bits == 0
    outer = _nest("kmn", (32, 32, 256), dims=(128, 1152, 784), array=(32, 32))
    assert outer.operand("psums").dram_write_bits == (36 - 1) * 128 * 784 * 32


def test_objectives():
    """Latency: no slower than the DRAM-optimal nest; energy: no more DRAM + buffer
    energy than it."""
    kw = dict(
        groups=1,
        dims=(256, 2304, 3136),
        array=(32, 32),
        dataflow="ws",
        weight_bits=8,
        activation_bits=8,
        budget=Budget(shared=96 * 1024 * 8),
    )
    prices = Prices(
        dram_read_pj=30.5,
        dram_write_pj=30.5,
        buffer_read_pj=0.43,
        buffer_write_pj=0.43,
        compute_s=1e-3,
        dram_bytes_per_s=1e10,
    )
    base = map_gemm(**kw, prices=prices)
    lat = map_gemm(**kw, objective="latency", prices=prices)
    eng = map_gemm(**kw, objective="energy", prices=prices)

    def latency(x):
        return max(prices.compute_s, x.dram_bits / 8 / prices.dram_bytes_per_s)

    def energy(x):
        e = 0.0
        for t in x.traffic:
            width = {"weights": 8, "inputs": 8, "outputs": 32, "psums": 32}[t.operand]
            e += (t.dram_read_bits + t.dram_write_bits) * 30.5
            e += (t.buffer_reads + t.buffer_writes) * width * 0.43
        return e

    assert latency(lat) <= latency(base)
    assert base.dram_bits <= min(lat.dram_bits, eng.dram_bits)
    assert energy(eng) <= energy(base) * 1.05  # the output drain is priced at 8 bits there


# --- wiring: the profile field, the engine, the CLI --------------------------------------


def _mapped(tmp_path, extra=""):
    """scalesim_32x32_ws mapped over its SRAMs as one shared 192 KB buffer (``extra``:
    more compute keys, e.g. the three SRAMs)."""
    text = (Path(__file__).parents[1] / "hwconfigs" / "scalesim_32x32_ws.yaml").read_text()
    lines = [x for x in text.splitlines() if not x.startswith("  scalesim_sram_bytes:")]
    (tmp_path / "shared.yaml").write_text(
        "\n".join(lines).replace("name: scalesim_32x32_ws", "name: ws_shared")
    )
    path = tmp_path / "mapped.yaml"
    path.write_text(
        "extends: shared.yaml\nname: ws_mapped\ncompute:\n  dram_model: mapped\n" + extra
    )
    return load_platform(path)


def test_profile_field_and_refusals(tmp_path):
    p = _mapped(tmp_path, "  mapping_objective: latency\n  psum_bits: 24\n")
    assert (p.dram_model, p.mapping_objective, p.psum_bits) == ("mapped", "latency", 24)
    layer = read_scalesim_topology(SS / "alexnet.csv").layers[2]
    c = run_systolic(_dense(layer), p)
    assert c.mapping is not None and c.mapping.psum_bits == 24 and "mapped" in c.engine
    assert c.bits("dram") == c.mapping.dram_bits
    assert run_systolic(_dense(layer), load_platform("tpu_v1")).mapping.array == (256, 256)
    bad = tmp_path / "bad.yaml"
    bad.write_text("extends: eie\nname: x\ncompute:\n  dram_model: mapped\n")
    with pytest.raises(ConfigError, match="mapped needs a systolic profile"):
        load_platform(bad)
    bad.write_text("extends: eie\nname: x\ncompute:\n  mapping_objective: dram\n")
    with pytest.raises(ConfigError, match="only with dram_model: mapped"):
        load_platform(bad)


def test_fpga_dense_array_can_be_mapped():
    raw = read_yaml(builtin_platforms()["alveo_u250"])
    raw["fpga"].pop("dense_design")  # a square array of the dense PEs that fit
    p = platform_from_dict(raw)
    layer = read_scalesim_topology(SS / "alexnet.csv").layers[1]
    c = engine(p, "dense")(_dense(layer))
    assert c.mapping is not None and c.mapping.array[0] == c.mapping.array[1] > 32
    # the DPU as it ships (one B4096 core, 16 x 16 x 8 lanes) maps the same way
    c = engine(load_platform("zcu102"), "dense")(_dense(layer))
    assert c.mapping is not None and c.mapping.array == (16, 16)


@pytest.mark.parametrize("topology", ["alexnet", "resnet50"])
@pytest.mark.parametrize("split", [False, True])
def test_totals_against_scalesim_32x32_ws(tmp_path, topology, split):
    """Whole-network DRAM bytes of the mapped model over SCALE-Sim's DRAM words (one
    byte each; SCALE-Sim reads every im2col window from DRAM, spills partial sums on
    every row fold, keeps no activation on chip between layers and does no loop-order
    search). Measured: AlexNet conv 0.090 (shared 192 KB) / 0.110 (3 x 64 KB),
    ResNet-50 0.189 / 0.209. Band: at least compulsory, at most SCALE-Sim's own."""
    extra = "  scalesim_sram_bytes: {ifmap: 65536, filter: 65536, ofmap: 65536}\n"
    p = _mapped(tmp_path, extra if split else "")
    ref = REF[(REF["topology"] == topology) & (REF["dataflow"] == "ws")]
    words = ref[["dram_ifmap_reads", "dram_filter_reads", "dram_ofmap_writes"]].to_numpy().sum()
    run = engine(p, "dense")
    total = compulsory = latency = 0.0
    for layer in read_scalesim_topology(SS / f"{topology}.csv").layers:
        task = _dense(layer)
        c = run(task)
        g = c.mapping
        m, k, _ = g.dims
        # weights once; activations once unless they stay on chip; an input that no
        # window reads (a strided 1x1 conv skips rows) need not move
        needed = _needed_inputs(layer)
        acts = 0 if g.activations_on_chip else needed + task.output_count
        compulsory += g.groups * m * k + acts
        total += c.bits("dram") / 8
        latency += price(c, p, 8, 8).latency_s
    ratio = total / words
    assert total >= compulsory
    assert 0.05 <= ratio <= 1.0, ratio
    # no slower than SCALE-Sim's compute cycles at 1 GHz, within 25 %
    assert latency <= 1.25 * ref["compute_cycles"].sum() * 1e-9


def test_estimate_json_carries_the_loop_nest(tmp_path, capsys):
    path = tmp_path / "m.yaml"
    path.write_text("extends: scalesim_32x32_ws\nname: m\ncompute:\n  dram_model: mapped\n")
    out = tmp_path / "e.json"
    args = ["estimate", str(SS / "alexnet.csv"), "--platform", str(path), "--per-layer"]
    assert main([*args, "--json", str(out)]) == 0
    rows = [r for r in json.loads(out.read_text())["layers"] if r["variant"] == "dense"]
    assert len(rows) == 5 and all(r["mapping"].startswith("for ") for r in rows)
    assert all(r["dram_psums_write_bits"] >= 0 for r in rows)
    text = capsys.readouterr().out
    assert f"Conv3 [dense]: {rows[2]['mapping']}" in text


# --- convolution windows and activations on chip -------------------------------------


def _needed_inputs(layer) -> int:
    """Input elements some window of a convolution reads (all inputs of other layers),
    counted from coordinates."""
    if layer.kind != "conv2d":
        return layer.input_count
    (h, w), (p, q) = layer.input_hw, layer.output_hw
    ys = {
        y * layer.stride_hw[0] - layer.padding_hw[0] + r * layer.dilation_hw[0]
        for y in range(p)
        for r in range(layer.kernel_hw[0])
    }
    xs = {
        x * layer.stride_hw[1] - layer.padding_hw[1] + s * layer.dilation_hw[1]
        for x in range(q)
        for s in range(layer.kernel_hw[1])
    }
    rows = sum(0 <= y < h for y in ys)
    cols = sum(0 <= x < w for x in xs)
    return layer.batch * layer.in_channels * rows * cols


def _conv_tiles(w, nt):
    """The n tiles of a windowed nest, literally: lists of (image, p, q) outputs (whole
    images, bands of whole rows, or pieces of one row, as the model snaps Nt)."""
    b, (p, q) = w.images, w.output_hw
    if nt >= p * q:
        per = min(b, nt // (p * q))
        return [
            [(i, y, x) for i in range(i0, min(b, i0 + per)) for y in range(p) for x in range(q)]
            for i0 in range(0, b, per)
        ]
    if nt >= q:
        pr = nt // q
        return [
            [(i, y, x) for y in range(y0, min(p, y0 + pr)) for x in range(q)]
            for i in range(b)
            for y0 in range(0, p, pr)
        ]
    return [
        [(i, y, x) for x in range(x0, min(q, x0 + nt))]
        for i in range(b)
        for y in range(p)
        for x0 in range(0, q, nt)
    ]


def _window_inputs(w, k_range, outs):
    """Distinct (image, channel, row, column) inputs that the outputs ``outs`` read
    through the reduction positions ``k_range`` (K in (channel, r, s) order, every tap
    of a touched channel fetched)."""
    r, s = w.kernel
    chans = {kk // (r * s) for kk in k_range}
    got = set()
    for i, y, x in outs:
        for c in chans:
            for a in range(r):
                for bb in range(s):
                    yy = y * w.stride[0] - w.padding[0] + a * w.dilation[0]
                    xx = x * w.stride[1] - w.padding[1] + bb * w.dilation[1]
                    if 0 <= yy < w.input_hw[0] and 0 <= xx < w.input_hw[1]:
                        got.add((i, c, yy, xx))
    return len(got)


def _simulate_conv(w, m, tiles, order):
    """Input elements a nest fetches from DRAM, the loop nest run literally over the
    convolution's own coordinates: the inputs each (k, n) tile's windows read, or its
    im2col columns where those are fewer over the whole run."""
    mt, kt, nt = tiles
    r, s = w.kernel
    k = w.channels * r * s
    ranges = {
        "m": list(range(0, m, mt)),
        "k": [range(k0, min(k, k0 + kt)) for k0 in range(0, k, kt)],
        "n": _conv_tiles(w, nt),
    }
    resident, windows, columns = None, 0, 0
    for point in itertools.product(*(range(len(ranges[d])) for d in order)):
        at = dict(zip(order, point, strict=True))
        key = (at["k"], at["n"])
        if key != resident:
            resident = key
            ks, ns = ranges["k"][at["k"]], ranges["n"][at["n"]]
            windows += _window_inputs(w, ks, ns)
            columns += len(ks) * len(ns)
    return min(windows, columns)


WINDOWS = st.builds(
    lambda c, r, s, h, wd, st_, pad, d, b: (c, (r, s), (h, wd), (st_, st_), (pad, pad), (d, d), b),
    st.integers(1, 3),
    st.integers(1, 3),
    st.integers(1, 3),
    st.integers(3, 7),
    st.integers(3, 7),
    st.integers(1, 3),
    st.integers(0, 1),
    st.integers(1, 2),
    st.integers(1, 2),
)


@settings(max_examples=40, deadline=None)
@given(win=WINDOWS, data=st.data())
def test_window_fetch_matches_a_literal_run_over_coordinates(win, data):
    """A convolution's inputs are fetched once per tile that reads them: the model's
    input DRAM traffic equals a literal run of the nest that collects, per (k, n)
    tile, the distinct input pixels its windows read; and it never exceeds the im2col
    count nor falls below the inputs some window reads."""
    c, (r, s), (h, wd), stride, pad, dil, b = win
    p = (h + 2 * pad[0] - dil[0] * (r - 1) - 1) // stride[0] + 1
    q = (wd + 2 * pad[1] - dil[1] * (s - 1) - 1) // stride[1] + 1
    if p < 1 or q < 1:
        return
    w = Window(
        channels=c,
        kernel=(r, s),
        input_hw=(h, wd),
        output_hw=(p, q),
        stride=stride,
        padding=pad,
        dilation=dil,
        images=b,
    )
    m, k, n = 2, c * r * s, b * p * q
    tiles = (
        data.draw(st.integers(1, m)),
        data.draw(st.integers(1, k)),
        data.draw(st.integers(1, n)),
    )
    order = data.draw(st.sampled_from(ORDERS))
    nest = evaluate_nest(
        dims=(m, k, n),
        tiles=tiles,
        order=order,
        array=(1, 1),
        dataflow="ws",
        weight_bits=8,
        activation_bits=8,
        window=w,
    )
    got = nest.operand("inputs").dram_read_bits / 8
    assert got == _simulate_conv(w, m, nest.tiles, order)
    plain = evaluate_nest(
        dims=(m, k, n),
        tiles=nest.tiles,
        order=order,
        array=(1, 1),
        dataflow="ws",
        weight_bits=8,
        activation_bits=8,
    )
    assert got <= plain.operand("inputs").dram_read_bits / 8


def test_window_hand_computed():
    """3x3 conv, stride 1, padding 1, 4 channels of 8x8, one image: P = Q = 8, K = 36,
    N = 64. Whole tiles: every input read once, 4 x 64 = 256 (im2col: 36 x 64 = 2304).
    Bands of 2 output rows (Nt = 16): band 0 reads rows 0-2, bands 1-2 four rows each,
    band 3 rows 5-7: 3 + 4 + 4 + 3 = 14 rows of 8, x 4 channels = 448. K tiles of 9 (one
    channel each) with those bands: the same 448. K tiles of 12 straddle channels:
    tiles 0-11, 12-23, 24-35 touch channels {0,1}, {1,2}, {2,3}: 6 visits, 6 x 14 x 8
    = 672. Outputs in row pieces of 4 (Nt = 4): rows read per output row 2,3,...,3,2 =
    22, columns per piece 5 + 5 = 10: 4 x 22 x 10 = 880."""
    w = Window(channels=4, kernel=(3, 3), input_hw=(8, 8), output_hw=(8, 8), padding=(1, 1))

    def fetched(kt, nt):
        nest = evaluate_nest(
            dims=(8, 36, 64),
            tiles=(8, kt, nt),
            order=("m", "k", "n"),
            array=(1, 1),
            dataflow="ws",
            weight_bits=8,
            activation_bits=8,
            window=w,
        )
        return nest.operand("inputs").dram_read_bits / 8

    assert fetched(36, 64) == 256
    assert fetched(36, 16) == fetched(9, 16) == 448
    assert fetched(12, 16) == 672
    assert fetched(36, 4) == 880


def test_activations_stay_on_chip_when_they_fit(tmp_path):
    """SCALE-Sim's AlexNet Conv3 (13x13x256 -> 11x11x384, 8-bit: 43,264 + 46,464 B)
    fits a 192 KB shared buffer beside its working tiles: only its 884,736 weights
    move, once. With 3 x 32 KB split buffers its input does not fit: inputs and
    outputs move."""
    layer = read_scalesim_topology(SS / "alexnet.csv").layers[2]
    assert (layer.input_count, layer.output_count) == (43264, 46464)
    shared = run_systolic(_dense(layer), _mapped(tmp_path))
    nest = shared.mapping
    assert nest.activations_on_chip and "activations on chip" in nest.loop_nest()
    assert shared.bits("dram") == 884736 * 8
    extra = "  scalesim_sram_bytes: {ifmap: 32768, filter: 32768, ofmap: 32768}\n"
    split = run_systolic(_dense(layer), _mapped(tmp_path, extra)).mapping
    assert not split.activations_on_chip
    assert split.operand("outputs").dram_write_bits == 46464 * 8
    assert split.operand("inputs").dram_read_bits >= 43264 * 8


@given(
    dim=st.integers(1, 600),
    taps=st.integers(1, 12),
    tiles=st.lists(st.integers(1, 700), min_size=1, max_size=6),
)
def test_k_window_counts_equal_the_tiles_cut_by_numpy(dim, taps, tiles):
    """Channels each K tile touches, summed and at most, against the tiles cut one by
    one with NumPy."""
    visits, most = kernels.k_window_counts(
        np.int64(dim), np.int64(taps), np.array(tiles, dtype=np.int64)
    )
    for j, t in enumerate(tiles):
        starts = np.arange(0, dim, t)
        ends = np.minimum(starts + t, dim)
        ch = (ends - 1) // taps - starts // taps + 1
        assert visits[j] == ch.sum() and most[j] == ch.max()


@settings(max_examples=60, deadline=None)
@given(
    dims=st.tuples(st.integers(1, 300), st.integers(1, 9), st.integers(1, 60)),
    array=st.tuples(st.integers(1, 40), st.integers(1, 40)),
    dataflow=st.sampled_from(["ws", "os", "is"]),
    conv=st.booleans(),
    on_chip=st.booleans(),
    data=st.data(),
)
def test_one_candidates_counts_equal_the_vectorised_evaluation(
    dims, array, dataflow, conv, on_chip, data
):
    """The counts a chosen nest reports, in Python integers, against the vectorised
    evaluation of every candidate and order (the search's own arithmetic)."""
    m, channels, side = dims
    window = None
    k, n = channels, side
    if conv:
        window = mapping.Window(
            channels=channels,
            kernel=(3, 3),
            input_hw=(side, side),
            output_hw=(side, side),
            padding=(1, 1),
        )
        k, n = channels * 9, side * side
    tilings = mapping._tilings((m, k, n), array, dataflow, window)
    pick = tuple(data.draw(st.integers(0, len(t.tile) - 1)) for t in tilings)
    order = data.draw(st.integers(0, 5))
    want = mapping._one(
        mapping._evaluate((m, k, n), tilings, tuple(np.array([i]) for i in pick), on_chip),
        order,
        0,
    )
    assert mapping._counts_of((m, k, n), tilings, pick, order, on_chip) == want
