"""A csr kernel's ``layout``: the storage format its weights stream in, counted
bit-exact, against hand computation; the kernel choice by roofline time with it; the
field's checks (one-line errors naming the file and key)."""

from __future__ import annotations

import numpy as np
import pytest

from simulator.cli import main
from simulator.dataflows import LayerTask, run_roofline
from simulator.dataflows.roofline import best_csr_kernel
from simulator.errors import ConfigError
from simulator.formats import FORMATS, STRUCTURED_FORMATS, profile_mask
from simulator.hwconfig import KERNEL_FIELDS, load_platform, platform_from_dict
from simulator.layers import Linear

RATE = {"fp32": 1.0e11}


def _platform(*kernels: dict):
    """xeon_8380 with only ``kernels`` and no layer overhead."""
    raw = dict(load_platform("xeon_8380").raw)
    roof = dict(raw["roofline"])
    roof["kernels"] = [
        {"format": "csr", "macs_per_s": RATE, "source": "test", **k} for k in kernels
    ]
    roof["layer_overhead_ns"] = 0
    raw["roofline"] = roof
    return platform_from_dict(raw)


def _task(rows: int, cols: int, density: float, wb: int = 32, tokens: int = 1, **kw):
    layer = Linear(name="fc", in_features=cols, out_features=rows, tokens=tokens)
    mask = np.random.default_rng(7).random((rows, cols)) < density
    return LayerTask(
        layer=layer,
        profile=profile_mask(layer, mask),
        variant="sparse",
        weight_bits=wb,
        index_bits=4,
        activation_bits=32,
        **kw,
    ), int(mask.sum())


def _dram(counts, operand: str) -> float:
    return sum(a.read_bits for a in counts.accesses if a.level == "ddr4" and a.operand == operand)


def test_bitmap_layout_streams_one_bit_per_weight_and_the_kept_values_by_hand():
    task, nnz = _task(96, 200, 0.3)
    counts = run_roofline(task, _platform({"name": "bm", "layout": "bitmap"}))
    assert counts.engine == "bm (bitmap)"
    assert _dram(counts, "metadata") == 96 * 200  # one presence bit per dense weight
    assert _dram(counts, "weights") == nnz * 32  # the kept values at the weight width


def test_bitmap_layout_adds_the_group_scales_by_hand():
    task, nnz = _task(96, 200, 0.3, wb=4, group_size=64, scale_bits=16, zero_point_bits=4)
    counts = run_roofline(task, _platform({"name": "bm", "layout": "bitmap"}))
    # ceil(200 / 64) = 4 groups a row, a 16-bit scale and a 4-bit zero point each
    assert _dram(counts, "metadata") == 96 * 200 + 96 * 4 * 20
    assert _dram(counts, "weights") == nnz * 4


def test_without_layout_the_kernel_streams_csr_at_its_widths_by_hand():
    task, nnz = _task(96, 200, 0.3)
    counts = run_roofline(task, _platform({"name": "c", "index_bits": 16, "pointer_bits": 24}))
    assert counts.engine == "c (CSR)"
    assert _dram(counts, "metadata") == nnz * 16 + (96 + 1) * 24


def test_csr_layout_takes_the_formats_computed_widths_by_hand():
    task, nnz = _task(96, 200, 0.3)
    counts = run_roofline(task, _platform({"name": "c", "layout": "csr"}))
    # column index ceil(log2 200) = 8 bits; pointers ceil(log2(nnz + 1)) bits, rows + 1
    pointer = int(np.ceil(np.log2(nnz + 1)))
    assert _dram(counts, "metadata") == nnz * 8 + 97 * pointer


@pytest.mark.parametrize(
    ("density", "expected"),
    [(0.3, "bitmap"), (0.01, "csr32")],
)
def test_kernel_choice_by_roofline_time_with_layouts(density, expected):
    # equal rates: at one column both are bound by their bytes, so the smaller format
    # runs: at 30 % a bitmap (1 bit a weight) beats 32-bit CSR (9.6 bits a weight); at
    # 1 % CSR (0.32 bits a weight plus pointers) beats the bitmap
    p = _platform({"name": "csr32"}, {"name": "bitmap", "layout": "bitmap"})
    task, nnz = _task(512, 1024, density)
    kernel, _, _ = best_csr_kernel(task, p)
    assert kernel.name == expected
    bitmap_bits, csr_bits = 512 * 1024, nnz * 32 + 513 * 32
    assert (bitmap_bits < csr_bits) == (expected == "bitmap")


def test_kernel_choice_keeps_compute_when_compute_binds():
    # many columns: compute binds both; the bitmap kernel at half the rate loses
    slow = {"name": "bitmap", "layout": "bitmap", "macs_per_s": {"fp32": 0.5e11}}
    p = _platform({"name": "csr32"}, slow)
    task, _ = _task(512, 1024, 0.3, tokens=4096)
    assert best_csr_kernel(task, p)[0].name == "csr32"


def test_layouts_are_registered_formats_that_hold_any_mask():
    layouts = KERNEL_FIELDS["layout"].choices
    assert set(layouts) <= set(FORMATS)
    assert not set(layouts) & set(STRUCTURED_FORMATS.values())


def _profile_file(tmp_path, kernel: str) -> str:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "extends: xeon_8380\nname: bad\nroofline:\n  kernels:\n"
        "    - name: k\n      source: test\n" + kernel,
        encoding="utf-8",
    )
    return str(path)


@pytest.mark.parametrize(
    ("kernel", "message"),
    [
        (
            "      format: csr\n      macs_per_s: {fp32: 1.0e11}\n      layout: bitmapp\n",
            "roofline.kernels[0].layout: expected one of csr, csc, coo, bitmap",
        ),
        (
            "      format: csr\n      macs_per_s: {fp32: 1.0e11}\n      layout: bitmap\n"
            "      index_bits: 8\n",
            "roofline.kernels[0] (k).index_bits: only without layout",
        ),
        (
            "      format: nm\n      speedup: 1.2\n      n: 2\n      m: 4\n      layout: bitmap\n",
            "roofline.kernels[0] (k).layout: only for a csr kernel",
        ),
    ],
)
def test_bad_layout_is_a_config_error_naming_the_file_and_key(tmp_path, kernel, message):
    path = _profile_file(tmp_path, kernel)
    with pytest.raises(ConfigError, match=r"bad\.yaml") as err:
        load_platform(path)
    assert message in str(err.value)


def test_unknown_layout_on_the_command_line_is_one_line_and_exit_2(tmp_path, capsys):
    kernel = "      format: csr\n      macs_per_s: {fp32: 1.0e11}\n      layout: bitmapp\n"
    path = _profile_file(tmp_path, kernel)
    assert main(["estimate", "alexnet", "--platform", path]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "bad.yaml" in err and "roofline.kernels[0].layout" in err and "bitmapp" in err
