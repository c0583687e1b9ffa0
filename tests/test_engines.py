"""Execution models and cost: hand-computed tiny cases, the EIE agreement and
invariants that must hold."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from simulator import kernels
from simulator.cost import price
from simulator.dataflows import run_eie, run_roofline, run_systolic
from simulator.dataflows.systolic import systolic_cycles
from simulator.errors import ConfigError
from simulator.formats import profile_mask
from simulator.hwconfig import load_platform, platform_from_dict
from simulator.layers import Conv2d, GemmView, Linear
from simulator.masks import Pruning, generate_mask
from simulator.simulate import prepare_profiles, simulate_layer, simulate_network
from simulator.validate import table
from simulator.workloads import Network, load_network
from tests.tasks import task

DRAM = {
    "name": "dram",
    "kind": "dram",
    "bandwidth_bytes_per_s": 1e12,
    "read_pj_per_bit": 10,
    "write_pj_per_bit": 20,
}
BUF = {
    "name": "buf",
    "kind": "sram",
    "size_bytes": 1e9,
    "bandwidth_bits_per_cycle": 1e6,
    "read_pj_per_bit": 1,
    "write_pj_per_bit": 2,
}


def systolic(rows=2, cols=2, dataflow="ws", gating=False, buffer_bytes=1e9, **extra):
    return platform_from_dict(
        {
            "name": "tiny",
            "class": "asic",
            "execution": "systolic",
            "clock_hz": 1e9,
            "weight_bits": [8],
            "activation_bits": 8,
            "compute": {
                "pes": rows * cols,
                "array_rows": rows,
                "array_cols": cols,
                "dataflow": dataflow,
                "zero_gating": gating,
                **extra,
            },
            "memory": [DRAM, {**BUF, "size_bytes": buffer_bytes}],
            "energy": {"mac_pj": {"int8": 0.5}},
        }
    )


# --- systolic ----------------------------------------------------------------------


@pytest.mark.parametrize(("flow", "expect"), [("ws", 65), ("os", 59), ("is", 71)])
def test_systolic_cycles_by_hand(flow, expect):
    """fc 3 -> 5 over 7 tokens on a 2x2 array: reduction 3, filters 5, outputs 7; the
    count is the last cycle's index (folds' sum - 1), as SCALE-Sim reports it.
    ws: ceil(3/2) x ceil(5/2) = 6 folds of 2 (load) + 2 + 2 + 7 - 2 = 11 -> 66 - 1;
    os: ceil(7/2) x ceil(5/2) = 12 folds of 2 + 2 + 3 - 2 = 5 (no load) -> 60 - 1;
    is: ceil(3/2) x ceil(7/2) = 8 folds of 2 + 2 + 2 + 5 - 2 = 9 -> 72 - 1."""
    layer = Linear(name="fc", in_features=3, out_features=5, tokens=7)
    c = run_systolic(task(layer), systolic(dataflow=flow))
    assert c.compute_cycles == expect
    assert c.macs_done == 3 * 5 * 7
    # utilization = 105 useful MACs over 4 PEs x cycles
    assert c.pe_utilization == pytest.approx(105 / (4 * expect))


def test_systolic_groups_run_one_after_another():
    """Depthwise 3x3 conv, 4 channels, 4x4 input with padding 1: 4 groups of a 1x9 matrix
    times 16 columns; ws on 2x2: ceil(9/2)=5 x ceil(1/2)=1 folds of 4+2+16-2=20 -> 4x100-1."""
    layer = Conv2d(
        name="dw",
        in_channels=4,
        out_channels=4,
        kernel_hw=(3, 3),
        input_hw=(4, 4),
        padding_hw=(1, 1),
        groups=4,
    )
    assert run_systolic(task(layer), systolic()).compute_cycles == 399


def test_systolic_structured_sparse_and_gating():
    layer = Linear(name="fc", in_features=8, out_features=8, tokens=4)
    mask = np.zeros((8, 8), bool)
    mask[:4] = True  # filter pruning: 4 of 8 output neurons
    dense = run_systolic(task(layer), systolic())
    structured = run_systolic(task(layer, mask, "structured"), systolic())
    # ws: reduction 8 -> 4 folds; filters 8 -> 4 (dense) or 4 -> 2 (pruned); 4+2+4-2 = 8
    assert dense.compute_cycles == 4 * 4 * 8 - 1
    assert structured.compute_cycles == 4 * 2 * 8 - 1
    rand = generate_mask(layer, Pruning(density=0.25))
    sparse = run_systolic(task(layer, rand, "sparse"), systolic())
    assert sparse.compute_cycles == dense.compute_cycles  # a dense array skips nothing
    assert sparse.macs_done == dense.macs_done and sparse.macs_gated == 0
    gated = run_systolic(task(layer, rand, "sparse"), systolic(gating=True))
    assert gated.macs_done == 16 * 4 and gated.macs_gated == (64 - 16) * 4


def test_systolic_nm_unit_streams_n_of_m():
    layer = Linear(name="fc", in_features=8, out_features=2, tokens=3)
    nm_mask = generate_mask(layer, Pruning(structure="nm", nm=(2, 4)))
    p = systolic(nm_sparse={"n": 2, "m": 4})
    c = run_systolic(task(layer, nm_mask, "nm"), p)
    # reduction 8 -> 4 kept: ceil(4/2) x ceil(2/2) folds of 4+2+3-2 = 7
    assert c.compute_cycles == 2 * 1 * 7 - 1
    # weights in DRAM: 8 kept values x 8 bits + 8 x 2-bit positions
    assert c.bits("dram", "weights") == 8 * 8 and c.bits("dram", "metadata") == 8 * 2


def test_systolic_sram_and_dram_counts_ws():
    """ws, fc 4 -> 2 over 3 tokens, 2x2 array: 2 row folds, 1 column fold.
    SRAM: weights 4x2 read once, inputs 3 x 4 x 1 col fold, outputs 3 x 2 x 2 row folds."""
    layer = Linear(name="fc", in_features=4, out_features=2, tokens=3)
    c = run_systolic(task(layer), systolic(buffer_bytes=16))  # 18 B of activations: no fit
    assert c.bits("buf", "weights") == 8 * 8
    assert c.bits("buf", "inputs") == 12 * 8
    assert c.bits("buf", "outputs") == 12 * 8
    # weights, inputs once, outputs once; the reduction (4) spans 2 row folds and the 6
    # outputs (24 B at 32-bit accumulators) exceed the 5.3 B share: one spill, out and back
    assert c.bits("dram", "psums") == 2 * 6 * 32
    assert c.bits("dram") == (8 + 12 + 6) * 8 + 2 * 6 * 32


def test_systolic_dram_per_dataflow():
    """fc 64 -> 64 over 64 tokens on a 2x2 array, 8-bit, 96-byte buffer (32 B per operand):
    32 row folds and 32 column folds everywhere; inputs, weights and outputs 4 KiB each.
    ws: weights once, inputs re-fetched min(32 folds, 128 chunks) = 32 times, partial sums
    spill at 32 bits over 31 extra folds; os: inputs and weights re-fetched 32 times, no
    spill; is: inputs once, weights 32 times, spill as ws."""
    layer = Linear(name="fc", in_features=64, out_features=64, tokens=64)
    kib = 4096 * 8
    spill = 4096 * 32 * 31
    expect = {
        "ws": (kib, 32 * kib, spill),
        "os": (32 * kib, 32 * kib, 0),
        "is": (32 * kib, kib, spill),
    }
    for flow, (w, i, s) in expect.items():
        c = run_systolic(task(layer), systolic(dataflow=flow, buffer_bytes=96))
        assert c.bits("dram", "weights") == w, flow
        assert c.bits("dram", "inputs") == i, flow
        assert c.bits("dram", "psums") == 2 * s, flow  # written and read back
        assert c.bits("dram", "outputs") == kib, flow
    # with room for the activations they never leave the chip
    roomy = run_systolic(task(layer), systolic(buffer_bytes=1e6))
    assert roomy.bits("dram", "inputs") == roomy.bits("dram", "outputs") == 0
    assert roomy.bits("dram", "weights") == kib


def test_zero_gating_counts_zero_activations():
    layer = Linear(name="fc", in_features=8, out_features=8, tokens=4)
    c = run_systolic(task(layer, ad=0.5), systolic(gating=True))
    assert c.macs_done == 256 * 0.5 and c.macs_gated == 256 * 0.5


def test_systolic_matches_the_scalesim_formula_on_resnet50_shapes():
    """Independent statement of SCALE-Sim's ws model: per fold 2R + C + T - 2."""
    for layer in load_network("resnet50").layers[:10]:
        g = layer.gemm
        cycles, row_folds, col_folds = systolic_cycles(g, 32, 32, "ws")
        assert (row_folds, col_folds) == (math.ceil(g.cols / 32), math.ceil(g.rows / 32))
        folds = row_folds * col_folds
        assert cycles == folds * (2 * 32 + 32 + g.n_cols - 2) - 1


# --- EIE -----------------------------------------------------------------------------


def eie_twin(entries, active, depth):
    """Slow event-by-event statement of the FIFO schedule."""
    work = np.maximum(entries[:, active], 1)
    n_pe, n_act = work.shape
    push = []
    started = [[0] * n_act for _ in range(n_pe)]
    finish = [0] * n_pe
    for j in range(n_act):
        t = push[-1] + 1 if push else 0
        if j >= depth:
            t = max([t] + [started[k][j - depth] for k in range(n_pe)])
        push.append(t)
        for k in range(n_pe):
            started[k][j] = max(finish[k], t + 1)
            finish[k] = started[k][j] + int(work[k, j])
    return max(finish) if n_act else 0


@pytest.mark.parametrize("depth", [1, 2, 8])
def test_eie_schedule_equals_twin(depth):
    rng = np.random.default_rng(depth)
    for _ in range(30):
        n_pe, n_col = rng.integers(1, 6), rng.integers(0, 40)
        entries = rng.integers(0, 9, size=(n_pe, n_col)).astype(np.int64)
        active = np.flatnonzero(rng.random(n_col) < 0.6).astype(np.int64)
        total, busy = kernels.eie_schedule(entries, active, depth)
        assert total == eie_twin(entries, active, depth)
        assert (busy == np.maximum(entries[:, active], 1).sum(1)).all()
        by_column = kernels.eie_schedule_columns(np.ascontiguousarray(entries.T), active, depth)
        assert by_column[0] == total and (by_column[1] == busy).all()


def test_eie_schedule_by_hand():
    work = np.array([[5, 1, 1, 1], [1, 1, 1, 5]], dtype=np.int64)
    every = np.arange(4, dtype=np.int64)
    # depth 1: PE0 1-6, push 2 waits for PE0 to start item 1 at 6, ...: 13 cycles;
    # depth 8: no back-pressure, each PE works alone: 1 + 8 = 9 cycles
    assert kernels.eie_schedule(work, every, 1)[0] == 13
    assert kernels.eie_schedule(work, every, 8)[0] == 9
    # an empty column still costs its pointer read: 1 cycle per PE
    zero = np.zeros((2, 3), dtype=np.int64)
    assert kernels.eie_schedule(zero, np.arange(3, dtype=np.int64), 8)[0] == 4


def test_eie_alexnet_fc6_to_fc8_within_ten_percent():
    """EIE (Han et al., ISCA 2016): AlexNet FC6-FC8 at 1.88e4 frames/s on 64 PEs at
    800 MHz, weight densities 9%/9%/25%, activation densities 35.1%/35.3%/37.5%."""
    eie = load_platform("eie")
    net = load_network("alexnet")
    ref = table("eie")  # simulator/validate/references.yaml
    total = 0.0
    for name, row in ref["layers"].items():
        wd, ad = row["weight_density"], row["activation_density"]
        layer = net.layer(name)
        mask = generate_mask(layer, Pruning(density=wd))
        c = run_eie(task(layer, mask, "sparse", wb=4, ab=16, ad=ad), eie)
        total += c.compute_cycles / eie.clock_hz
    assert total == pytest.approx(1 / ref["frames_per_s"], rel=0.10)


def test_eie_alexnet_fc6_to_fc8_energy_within_thirty_percent():
    """EIE's published energy: 0.59 W (Tables V, VI) x actual time (Table IV) per layer,
    FC7's 7.198 uJ being Table VI's 138,927 frames/J; the model prices Table II's modules
    per event (hwconfigs/eie.yaml). Each layer and the total within 30 %."""
    eie = load_platform("eie")
    net = load_network("alexnet")
    ref = table("eie")
    assert ref["layers"]["fc7"]["energy_uj"] == pytest.approx(1e6 / 138_927, rel=1e-3)
    total = 0.0
    for name, row in ref["layers"].items():
        layer = net.layer(name)
        mask = generate_mask(layer, Pruning(density=row["weight_density"]))
        t = task(layer, mask, "sparse", wb=4, ab=16, ad=row["activation_density"])
        c = run_eie(t, eie)
        e = price(c, eie, 4, 16).energy_j * 1e6
        assert e == pytest.approx(ref["power_w"] * row["time_us"], rel=0.30), name
        assert e == pytest.approx(row["energy_uj"], rel=0.30), name
        assert c.words["weights_from_dram_fraction"] == 0.0
        total += e
    assert total == pytest.approx(ref["energy_uj"], rel=0.30)


def test_eie_alexnet_fc6_to_fc8_fits_on_chip_at_eie_densities():
    """EIE's point: the compressed FC6-FC8 (9/9/25 % kept, 4-bit codes and indices) fit
    the 64 x 128 KB sparse-matrix SRAM together; the dense layers do not."""
    eie = load_platform("eie")
    net = load_network("alexnet")
    fc = Network(name="fc", layers=tuple(net.layer(n) for n in ("fc6", "fc7", "fc8")))
    dens = {n: r["weight_density"] for n, r in table("eie")["layers"].items()}
    prof = prepare_profiles(fc, {"sparse": Pruning(density=0.09, per_layer=dens)})
    est = simulate_network(fc, eie, prof, weight_bits=4, activation_density=0.35)
    f = est.frame().set_index(["variant", "layer"])
    sparse = f.loc["sparse"]
    assert (sparse["weights_from_dram_fraction"] == 0).all()
    assert sparse["weights_stored_bytes"].sum() < 64 * 128 * 1024
    assert (sparse["energy_dram_j"] == 0).all()
    dense = f.loc["dense"]
    assert (dense["weights_from_dram_fraction"] > 0).all()
    assert (dense["energy_dram_j"] > 0).all()


def tiny_eie(size_bytes=1, **energy):
    return platform_from_dict(
        {
            "name": "tiny_eie",
            "class": "asic",
            "execution": "eie",
            "clock_hz": 1e9,
            "weight_bits": [4],
            "activation_bits": 16,
            "compute": {"pes": 2, "fifo_depth": 8, "weights_resident": True},
            "memory": [
                DRAM,
                {
                    "name": "spmat",
                    "kind": "sram",
                    "per_pe": True,
                    "size_bytes": size_bytes,
                    "bandwidth_bits_per_cycle": 64,
                    "read_pj_per_bit": 1,
                    "write_pj_per_bit": 1,
                },
            ],
            "energy": {"mac_pj": {"int16": 0.5}, "pointer_read_pj": 3.0, "queue_pj": 0.25},
        }
    )


def test_eie_weights_beyond_the_sram_stream_from_dram_by_hand():
    """4x4 identity on 2 PEs, 4-bit codes and 4-bit indices: each PE stores 2 entries =
    16 bits; a 1-byte SRAM per PE holds 8 of them, so 2 x 8 = 16 bits (2 bytes) stream
    from DRAM per pass, half the weights: 4 entries decoded x 8 bits x 1/2 = 16 bits."""
    p = tiny_eie(size_bytes=1)
    layer = Linear(name="fc", in_features=4, out_features=4)
    c = run_eie(task(layer, np.eye(4, dtype=bool), "sparse", wb=4, ab=16, ad=1.0), p)
    assert c.words == {"weights_stored_bytes": 4.0, "weights_from_dram_fraction": 0.5}
    assert c.bits("dram", "weights") == 4 * 4 * 0.5
    assert c.bits("dram", "metadata") == 4 * 4 * 0.5
    assert c.bits("dram") == 16
    # the resident half from the SRAM; pointers have their own price, not SRAM bits
    assert c.bits("spmat", "weights") + c.bits("spmat", "metadata") == 16
    assert c.weight_room_left_bits == (0.0, 0.0)
    # two tokens: two passes over the weights, the spilled part read twice
    two = Linear(name="fc", in_features=4, out_features=4, tokens=2)
    c2 = run_eie(task(two, np.eye(4, dtype=bool), "sparse", wb=4, ab=16, ad=1.0), p)
    assert c2.bits("dram") == 32
    # the latency is bounded by DRAM bandwidth: 16 bits at 1e12 B/s
    k = price(c, p, 4, 16)
    assert k.memory_s[0] == ("dram", pytest.approx(2 / 1e12))
    assert k.energy_dram_j == pytest.approx(16 * 10e-12)
    # a 2-byte SRAM holds everything: nothing from DRAM
    big = run_eie(
        task(layer, np.eye(4, dtype=bool), "sparse", wb=4, ab=16, ad=1.0), tiny_eie(size_bytes=2)
    )
    assert big.words["weights_from_dram_fraction"] == 0 and big.bits("dram") == 0


def test_eie_network_fills_the_sram_in_layer_order():
    """Two 4x4 identities on 2 PEs with 2-byte SRAMs: the first layer's 16 bits per PE
    fill them; the second streams all of its weights."""
    p = tiny_eie(size_bytes=2)
    a = Linear(name="a", in_features=4, out_features=4)
    b = Linear(name="b", in_features=4, out_features=4)
    net = Network(name="two", layers=(a, b))
    eye = {"a": np.eye(4, dtype=bool), "b": np.eye(4, dtype=bool)}
    prof = prepare_profiles(net, {"sparse": eye})
    est = simulate_network(net, p, prof, weight_bits=4, activation_density=1.0, variants=["sparse"])
    f = est.frame().set_index("layer")
    assert f.at["a", "weights_from_dram_fraction"] == 0.0
    assert f.at["b", "weights_from_dram_fraction"] == 1.0
    assert f.at["b", "dram_bits"] == 4 * 8


def test_eie_pointer_and_queue_energy_is_count_times_price():
    """4x4 identity on 2 PEs, all 4 activations: 2 pointers x 2 PEs x 4 = 16 reads at
    3 pJ; 2 PEs x 4 = 8 activations queued at 0.25 pJ; no index-decode price."""
    p = tiny_eie(size_bytes=1024)
    layer = Linear(name="fc", in_features=4, out_features=4)
    c = run_eie(task(layer, np.eye(4, dtype=bool), "sparse", wb=4, ab=16, ad=1.0), p)
    assert c.pointer_reads == 16 and c.queue_pushes == 8
    assert price(c, p, 4, 16).energy_index_j == pytest.approx((16 * 3.0 + 8 * 0.25) * 1e-12)


def test_eie_weights_resident_needs_dram():
    raw = {
        "name": "x",
        "class": "asic",
        "execution": "eie",
        "clock_hz": 1e9,
        "weight_bits": [4],
        "activation_bits": 16,
        "compute": {"pes": 2, "weights_resident": True},
        "memory": [{**BUF, "per_pe": True}],
        "energy": {"mac_pj": {"int16": 0.5}},
    }
    with pytest.raises(ConfigError, match="weights_resident: needs a dram level"):
        platform_from_dict(raw)
    with pytest.raises(ConfigError, match="pointer_read_pj: only for profiles"):
        platform_from_dict(
            {
                **raw,
                "execution": "systolic",
                "compute": {"pes": 4, "array_rows": 2, "array_cols": 2},
                "memory": [DRAM, BUF],
                "energy": {"mac_pj": {"int8": 0.5}, "pointer_read_pj": 1.0},
            }
        )


def test_eie_fifo_depth_hides_imbalance():
    eie = load_platform("eie")
    layer = load_network("alexnet").layer("fc7")
    t = task(layer, generate_mask(layer, Pruning(density=0.09)), "sparse", wb=4, ab=16, ad=0.35)
    shallow = dataclasses.replace(eie, compute=dataclasses.replace(eie.compute, fifo_depth=1))
    c1, c8 = run_eie(t, shallow), run_eie(t, eie)
    assert c1.compute_cycles > 1.1 * c8.compute_cycles
    assert 0 < c8.load_balance <= 1


def test_eie_counts_by_hand():
    """4x4 identity on 2 PEs, all activations: PE0 holds rows 0, 2; PE1 rows 1, 3.
    Each PE has one entry in half the columns and none in the others (1 cycle each)."""
    p = load_platform("eie")
    p = dataclasses.replace(p, compute=dataclasses.replace(p.compute, pes=2))
    layer = Linear(name="fc", in_features=4, out_features=4)
    c = run_eie(task(layer, np.eye(4, dtype=bool), "sparse", wb=4, ab=16, ad=1.0), p, pes=2)
    assert c.macs_done == 4 and c.index_decodes == 4
    assert c.compute_cycles == 5  # 4 activations, one cycle each, 1 cycle pipeline latency
    assert c.bits("spmat", "weights") == 4 * 4


def test_all_ones_mask_on_sparse_engine_never_beats_dense():
    eie = load_platform("eie")
    layer = Linear(name="fc", in_features=512, out_features=256, tokens=2)
    ones = np.ones(layer.weight_shape, bool)
    dense = run_eie(task(layer, ones, "dense", wb=4, ab=16), eie)
    sparse = run_eie(task(layer, ones, "sparse", wb=4, ab=16), eie)
    assert sparse.compute_cycles >= dense.compute_cycles


# --- roofline ------------------------------------------------------------------------


CSR = {"name": "csr", "format": "csr", "macs_per_s": {"int8": 1e8}, "source": "test"}


def roofline(**r):
    return platform_from_dict(
        {
            "name": "cpu",
            "class": "cpu",
            "execution": "roofline",
            "clock_hz": 1e9,
            "weight_bits": [8, 32],
            "activation_bits": 8,
            "compute": {"pes": 1, **r.pop("compute", {})},
            "memory": [DRAM, BUF],
            "energy": {"mac_pj": {"int8": 1.0}},
            "roofline": {
                "peak_macs_per_s": {"int8": 1e9},
                "dense_gemm_efficiency": {"int8": 0.5},
                "dense_gemv_efficiency": {"int8": 1.0},
                "kernels": [CSR],
                **r,
            },
        }
    )


def test_roofline_dense_and_sparse_by_hand():
    layer = Linear(name="fc", in_features=100, out_features=10, tokens=4)
    p = roofline(kernels=[{**CSR, "row_ns": 10, "entry_ns": 1}])
    dense = run_roofline(task(layer), p)
    # 4,000 MACs at 0.5 x 1e9 MAC/s = 8 us = 8,000 cycles at 1 GHz
    assert dense.compute_cycles == pytest.approx(8000)
    mask = np.zeros((10, 100), bool)
    mask[:, :10] = True  # 100 kept
    sparse = run_roofline(task(layer, mask, "sparse"), p)
    # 100 x 4 MACs at 1e8 MAC/s = 4 us, + 100 entries x 1 ns + 10 rows x 10 ns = 4.2 us
    assert sparse.compute_cycles == pytest.approx(4200)
    assert sparse.engine == "csr (CSR)"
    # CSR with 32-bit indices and pointers: 100 x 32 + 11 x 32 bits of metadata
    assert sparse.bits("dram", "metadata") == 100 * 32 + 11 * 32


def test_roofline_runs_the_fastest_kernel_by_hand():
    # 100 kept weights x 4 columns = 400 MACs.
    # slow-rate: 400 / 1e8 = 4 us, + 100 x 1 ns = 4.1 us
    # fast-rate, costly entries: 400 / 1e9 = 0.4 us, + 100 x 50 ns = 5.4 us
    # at 64 columns: slow 6,400 / 1e8 = 64 us + 0.1 = 64.1 us; fast 6.4 + 5 = 11.4 us
    slow = {**CSR, "name": "slow", "entry_ns": 1, "index_bits": 16}
    fast = {**CSR, "name": "fast", "macs_per_s": {"int8": 1e9}, "entry_ns": 50}
    p = roofline(kernels=[slow, fast])
    mask = np.zeros((10, 100), bool)
    mask[:, :10] = True
    for tokens, name, us in ((4, "slow", 4.1), (64, "fast", 11.4)):
        layer = Linear(name="fc", in_features=100, out_features=10, tokens=tokens)
        c = run_roofline(task(layer, mask, "sparse"), p)
        assert c.engine == f"{name} (CSR)"
        assert c.compute_cycles == pytest.approx(us * 1000)
    # the chosen kernel's index width is what moves: 16-bit for "slow"
    layer = Linear(name="fc", in_features=100, out_features=10, tokens=4)
    c = run_roofline(task(layer, mask, "sparse"), p)
    assert c.bits("dram", "metadata") == 100 * 16 + 11 * 32


def test_roofline_kernel_precision_rule():
    # a kernel runs a layer at the narrowest listed precision holding its operands
    # (operands widened), and not at all when none does
    layer = Linear(name="fc", in_features=100, out_features=10, tokens=4)
    mask = np.zeros((10, 100), bool)
    mask[:, :10] = True
    fp32_only = {**CSR, "macs_per_s": {"fp32": 2e8}}
    p = roofline(kernels=[fp32_only])
    c = run_roofline(task(layer, mask, "sparse", wb=8, ab=8), p)
    assert c.compute_cycles == pytest.approx(400 / 2e8 * 1e9)  # 8-bit layer at the fp32 rate
    int8_only = roofline()
    with pytest.raises(ConfigError, match="no csr kernel"):
        run_roofline(task(layer, mask, "sparse", wb=32, ab=32), int8_only)
    # the platform's dense rate does not enter the sparse time (absolute rates)
    q = roofline(kernels=[fp32_only], peak_macs_per_s={"int8": 1e12})
    d = run_roofline(task(layer, mask, "sparse", wb=8, ab=8), q)
    assert d.compute_cycles == pytest.approx(c.compute_cycles)


def test_roofline_gemv_bound_by_hand():
    # batch 1: 1,000 x 1,000 int8 weights = 1 MB, with 1,000 int8 inputs and outputs;
    # at 0.25 of 1e12 B/s DRAM that is 4.008 us, longer than 1e6 MACs at 0.5 x 1e15
    # MAC/s = 2 ns: DRAM sets the latency
    from simulator.cost import price

    layer = Linear(name="fc", in_features=1000, out_features=1000, tokens=1)
    p = roofline(dense_gemv_efficiency={"int8": 0.25}, peak_macs_per_s={"int8": 1e15})
    counts = run_roofline(task(layer), p)
    assert counts.compute_cycles == pytest.approx(2)
    assert counts.dram_efficiency == 0.25
    cost = price(counts, p, 8, 8)
    assert cost.latency_s == pytest.approx(1_002_000 / 0.25e12)
    assert cost.bound == p.level("dram").name
    # with more than one column each weight is reused: no GEMV bound, 1e9 MACs at
    # 5e14 MAC/s = 2 us
    big = Linear(name="fc", in_features=1000, out_features=1000, tokens=1000)
    counts = run_roofline(task(big), p)
    assert counts.compute_cycles == pytest.approx(2000) and counts.dram_efficiency == 1.0


def test_roofline_nm_speedup_only_for_nm_masks():
    layer = Linear(name="fc", in_features=64, out_features=16, tokens=8)
    p = roofline(compute={"nm_sparse": {"n": 2, "m": 4, "speedup": 2.0}})
    dense = run_roofline(task(layer), p)
    nm = run_roofline(task(layer, generate_mask(layer, Pruning(structure="nm")), "nm"), p)
    assert nm.compute_cycles == pytest.approx(dense.compute_cycles / 2)
    other = run_roofline(task(layer, generate_mask(layer, Pruning(density=0.5)), "nm"), p)
    assert other.compute_cycles == pytest.approx(dense.compute_cycles)
    # a measured nm kernel replaces the unit's datasheet speed-up
    q = roofline(
        compute={"nm_sparse": {"n": 2, "m": 4, "speedup": 2.0}},
        kernels=[
            CSR,
            {"name": "lt", "format": "nm", "speedup": 1.25, "n": 2, "m": 4, "source": "test"},
            {"name": "lt14", "format": "nm", "speedup": 9.0, "n": 1, "m": 4, "source": "test"},
        ],
    )
    nm = run_roofline(task(layer, generate_mask(layer, Pruning(structure="nm")), "nm"), q)
    assert nm.compute_cycles == pytest.approx(dense.compute_cycles / 1.25)
    assert nm.engine == "lt (2:4)"  # the 1:4 kernel does not apply to a 2:4 unit


def test_roofline_kernel_entries_are_validated_with_key_paths():
    with pytest.raises(ConfigError) as e:
        roofline(
            kernels=[
                {"name": "a", "format": "csr", "source": "x", "speedup": 2},
                {"name": "a", "format": "nm", "source": "x", "macs_per_s": {"int8": 1}},
            ]
        )
    text = str(e.value)
    for needle in (
        "kernels[0] (a).macs_per_s: required",
        "kernels[0] (a).speedup: only for an nm kernel",
        "kernels[1] (a).n: required for an nm kernel",
        "kernels[1] (a).macs_per_s: only for a csr kernel",
        "kernels[1] (a): an nm kernel needs compute.nm_sparse",
        "duplicate kernel name 'a'",
    ):
        assert needle in text, needle
    with pytest.raises(ConfigError, match=r"roofline\.kernels\[1\]: unknown key\(s\) typo"):
        roofline(kernels=[CSR, {**CSR, "name": "b", "typo": 1}])


# --- cost and network invariants ----------------------------------------------------


def test_cost_by_hand():
    layer = Linear(name="fc", in_features=4, out_features=2, tokens=3)
    p = systolic(buffer_bytes=16)
    c = run_systolic(task(layer), p)
    cost = price(c, p, 8, 8)
    # reads: weights 64 + inputs 96 + partial sums 192; writes: outputs 48 + partial sums 192
    dram_bits = (8 + 12 + 6) * 8 + 2 * 192
    e_dram = (64 + 96 + 192) * 10 + (48 + 192) * 20
    e_buf = (64 + 96) * 1 + 96 * 2
    e_mac = 24 * 0.5
    assert cost.energy_dram_j == pytest.approx(e_dram * 1e-12)
    assert cost.energy_sram_j == pytest.approx(e_buf * 1e-12)
    assert cost.energy_mac_j == pytest.approx(e_mac * 1e-12)
    assert cost.energy_j == pytest.approx((e_dram + e_buf + e_mac) * 1e-12)
    assert cost.latency_s == max(cost.compute_s, dram_bits / 8 / 1e12)
    assert cost.bound == "compute"


@pytest.mark.parametrize(("dram_bytes_per_s", "bound"), [(1e12, "compute"), (1e6, "dram")])
def test_static_power_is_charged_for_the_whole_latency_by_hand(dram_bytes_per_s, bound):
    """The layer of test_cost_by_hand on a platform with 2 W of static power: the
    static energy is 2 W x the latency, whichever bound set it, and adds to the rest."""
    layer = Linear(name="fc", in_features=4, out_features=2, tokens=3)
    p = platform_from_dict(
        {
            "name": "tiny",
            "class": "asic",
            "execution": "systolic",
            "clock_hz": 1e9,
            "weight_bits": [8],
            "activation_bits": 8,
            "compute": {"pes": 4, "array_rows": 2, "array_cols": 2, "dataflow": "ws"},
            "memory": [
                {**DRAM, "bandwidth_bytes_per_s": dram_bytes_per_s},
                {**BUF, "size_bytes": 16},
            ],
            "energy": {"mac_pj": {"int8": 0.5}, "static_w": 2.0},
        }
    )
    cost = price(run_systolic(task(layer), p), p, 8, 8)
    # as in test_cost_by_hand: 592 DRAM bits (74 bytes), and the dynamic energy
    dram_s = ((8 + 12 + 6) * 8 + 2 * 192) / 8 / dram_bytes_per_s
    dynamic_pj = (64 + 96 + 192) * 10 + (48 + 192) * 20 + (64 + 96) + 96 * 2 + 24 * 0.5
    latency = dram_s if bound == "dram" else cost.compute_s
    assert cost.bound == bound
    assert cost.latency_s == pytest.approx(latency)
    assert cost.latency_s == pytest.approx(max(cost.compute_s, dram_s))
    assert cost.energy_static_j == pytest.approx(2.0 * latency)
    assert cost.energy_j == pytest.approx(dynamic_pj * 1e-12 + 2.0 * latency)
    if bound == "dram":  # 74 us of DRAM time against 13 ns of compute
        assert cost.latency_s == pytest.approx(74e-6)
        assert cost.compute_s < cost.latency_s / 100


@pytest.mark.parametrize("platform", ["eie", "scalesim_32x32_ws", "a100", "zcu102", "tpu_v1"])
def test_network_invariants(platform):
    p = load_platform(platform)
    net = load_network("lenet5")
    prof = prepare_profiles(
        net,
        {"structured": Pruning(structure="filter", density=0.25), "sparse": Pruning(density=0.25)},
    )
    est = simulate_network(net, p, prof, weight_bits=4)
    frame, totals = est.frame(), est.totals().set_index("variant")
    for r in est.layers:
        k = r.cost
        assert k.latency_s >= k.compute_s and all(k.latency_s >= t for _, t in k.memory_s)
        parts = (
            k.energy_dram_j
            + k.energy_sram_j
            + k.energy_mac_j
            + k.energy_index_j
            + k.energy_static_j
            + k.energy_busy_j
        )
        assert k.energy_j == pytest.approx(parts)
        assert 0 <= r.counts.pe_utilization <= 1
        # every MAC of the dense layer is done, gated or skipped: none lost, none twice
        c = r.counts
        assert c.macs_done + c.macs_gated + c.macs_skipped == c.macs_dense
        assert min(c.macs_done, c.macs_gated, c.macs_skipped) >= 0
    for v in ("dense", "structured", "sparse"):
        rows = frame[frame["variant"] == v]
        assert totals.at[v, "energy_j"] == pytest.approx(rows["energy_j"].sum())
        assert totals.at[v, "latency_s"] == pytest.approx(rows["latency_s"].sum())
    assert totals.at["dense", "speedup"] == 1.0


def test_weightless_layers_run_dense_in_every_variant():
    net = load_network("minilm_l6")
    small = Network(name="x", layers=net.layers[:8])
    prof = prepare_profiles(small, {"sparse": Pruning(density=0.1)})
    est = simulate_network(small, load_platform("scalesim_32x32_ws"), prof)
    f = est.frame().set_index(["variant", "layer"])
    scores = "encoder.layer.0.attention.scores"
    assert f.at[("dense", scores), "latency_s"] == f.at[("sparse", scores), "latency_s"]


def test_simulate_layer_defaults_to_profile_precision():
    layer = Linear(name="fc", in_features=64, out_features=64)
    p = load_platform("eie")
    mask = generate_mask(layer, Pruning(density=0.1))
    r = simulate_layer(layer, p, profile_mask(layer, mask), variant="sparse", weight_bits=4)
    assert r.variant == "sparse" and r.cost.energy_mac_j > 0
    assert r.density == pytest.approx(0.1, abs=0.01)
    g = GemmView(groups=1, rows=64, cols=64, n_cols=1)
    assert g.macs == layer.macs


def test_structured_pruning_shrinks_its_own_activations():
    """Filter pruning 8 -> 2 output neurons writes a quarter of the outputs; column
    pruning 16 -> 4 inputs reads a quarter of the inputs (per layer, not cascaded)."""
    layer = Linear(name="fc", in_features=16, out_features=8, tokens=4)
    p = roofline()
    rows = np.zeros((8, 16), bool)
    rows[:2] = True
    cols = np.zeros((8, 16), bool)
    cols[:, :4] = True
    dense = run_roofline(task(layer), p)
    by_rows = run_roofline(task(layer, rows, "structured"), p)
    by_cols = run_roofline(task(layer, cols, "structured"), p)
    assert dense.bits("dram", "outputs") == 8 * 4 * 8
    assert dense.bits("dram", "inputs") == 16 * 4 * 8
    assert by_rows.bits("dram", "outputs") == 2 * 4 * 8
    assert by_rows.bits("dram", "inputs") == 16 * 4 * 8
    assert by_cols.bits("dram", "inputs") == 4 * 4 * 8
    assert by_cols.bits("dram", "outputs") == 8 * 4 * 8


def pe_entries_twin(m, pes, index_bits):
    """Slow statement: PE k's slice is rows k, k + pes, ...; relative-index CSC of it."""
    groups, _, cols = m.shape
    entries = np.zeros((pes, groups * cols), dtype=np.int64)
    for g in range(groups):
        for k in range(pes):
            part = m[g, k::pes]
            for c in range(cols):
                prev = -1
                for i in np.flatnonzero(part[:, c]):
                    entries[k, g * cols + c] += 1 + ((i - prev - 1) >> index_bits)
                    prev = i
    return entries, m.astype(np.int64).sum(axis=1).reshape(-1)


@pytest.mark.parametrize("pes", [1, 3, 8])
def test_pe_column_entries_equals_twin(pes):
    rng = np.random.default_rng(pes)
    for _ in range(20):
        shape = (rng.integers(1, 3), rng.integers(1, 30), rng.integers(1, 12))
        m = (rng.random(shape) < rng.random()).astype(np.uint8)
        m[:, rng.random(shape[1]) < 0.3] = 0  # whole rows pruned, as filter pruning does
        b = int(rng.integers(1, 4))
        packed = np.packbits(m, axis=-1)
        row_nnz = m.sum(axis=2, dtype=np.int64).reshape(-1)
        got = kernels.pe_column_entries(packed, shape[2], pes, b, row_nnz, False)
        want = pe_entries_twin(m, pes, b)
        assert (got[0] == want[0]).all() and (got[1] == want[1]).all()


def test_eie_dense_block_matches_the_simulated_schedule():
    """The closed form for an all-ones matrix equals simulating its mask."""
    eie = load_platform("eie")
    layer = Linear(name="fc", in_features=300, out_features=200, tokens=3)
    ones = np.ones(layer.weight_shape, bool)
    dense = run_eie(task(layer, ones, "dense", wb=4, ab=16, ad=0.4), eie)
    sim = run_eie(task(layer, ones, "sparse", wb=4, ab=16, ad=0.4), eie)
    assert dense.compute_cycles == sim.compute_cycles
    assert dense.macs_done == sim.macs_done and dense.index_decodes == sim.index_decodes


def test_filter_pruning_of_a_depthwise_conv_drops_whole_groups():
    """Depthwise 3x3, 64 channels: filter pruning to 16 leaves 16 groups of one filter;
    the rest of the groups no longer run (ws on 32x32: 16 folds of 2*32+32+T-2)."""
    layer = Conv2d(
        name="dw",
        in_channels=64,
        out_channels=64,
        kernel_hw=(3, 3),
        input_hw=(56, 56),
        padding_hw=(1, 1),
        groups=64,
    )
    mask = generate_mask(layer, Pruning(structure="filter", density=0.25))
    p = load_platform("scalesim_32x32_ws")
    dense = run_systolic(task(layer), p)
    pruned = run_systolic(task(layer, mask, "structured"), p)
    t = 56 * 56
    assert dense.compute_cycles == 64 * (2 * 32 + 32 + t - 2) - 1
    assert pruned.compute_cycles == 16 * (2 * 32 + 32 + t - 2) - 1
    assert pruned.macs_done == dense.macs_done / 4


@given(
    st.lists(st.integers(0, 10**9), min_size=2, max_size=12),
)
def test_eie_stopping_rule_is_numpys_mean_and_std(cycles):
    """EIE's sampled columns stop when the standard error is 0.5 % of the mean: the
    plain-float sums give NumPy's mean and ``std(ddof=1)`` to the bit, so the rule
    stops where NumPy's would."""
    from simulator.dataflows.eie import _numpy_order_sum, _settled

    c = np.asarray(cycles, dtype=np.float64)
    floats = [float(x) for x in cycles]
    assert _numpy_order_sum(floats) == float(np.add.reduce(c))
    mean = _numpy_order_sum(floats) / len(floats)
    squares = [(x - mean) * (x - mean) for x in floats]
    assert mean == float(c.mean())
    assert math.sqrt(_numpy_order_sum(squares) / (len(floats) - 1)) == float(c.std(ddof=1))
    assert _settled(cycles) == bool(c.std(ddof=1) / np.sqrt(c.size) <= 0.005 * c.mean())
