"""``prunesim calibrate``: the fit recovers known terms, a tiny calibration gives a
profile that loads and estimates, the profile's engine agrees with the fit's model,
and the command's errors. Nothing here asserts on how fast anything runs."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from simulator.calibrate import (
    Measurement,
    Params,
    Plan,
    calibrate_cpu,
    fit,
    predict_s,
    profile_fields,
    profile_yaml,
    write_profile,
)
from simulator.calibrate.measure import FLOAT_BYTES, machine
from simulator.cli import main
from simulator.errors import ConfigError
from simulator.formats import profile_mask
from simulator.hwconfig import load_platform
from simulator.layers import Linear
from simulator.simulate import simulate_layer

TRUE = Params(
    s_per_dense_mac=1 / 40e9,
    s_per_sparse_mac=1 / 5e9,
    s_per_entry=1.5e-9,
    s_per_row=8e-9,
    s_per_call=4e-6,
    dram_bytes_per_s=15e9,
    cache_bytes_per_s=60e9,
)
SHAPES = (
    (96, 864, 1600),
    (192, 1152, 400),
    (640, 640, 96),
    (1536, 1536, 8),
    (4000, 300, 4),
    (6000, 2000, 1),
    (8000, 200, 1),
    (64, 64, 1),
    (32, 128, 2),
)
DENSITIES = (0.002, 0.01, 0.05, 0.2)


def synthetic(
    params: Params, noise: float, rng, shapes=SHAPES, stream_noise: bool = True
) -> list[Measurement]:
    """Kernel points of ``shapes`` at :data:`DENSITIES` and stream triads, timed by
    ``params`` (the fit's own model) times log-normal noise (the triads exact unless
    ``stream_noise``)."""
    out = []
    for level, nbytes, bw in (
        ("dram", 3 * 2**26, params.dram_bytes_per_s),
        ("cache", 3 * 2**20, params.cache_bytes_per_s),
    ):
        t = nbytes / bw * (math.exp(rng.normal(0, noise)) if stream_noise else 1.0)
        out.append(
            Measurement(
                kind="stream", bytes_moved=nbytes, level=level, wall_s=t, cpu_s=t, repeats=5
            )
        )
    for rows, cols, n in shapes:
        points = [
            Measurement(kind="dense", rows=rows, cols=cols, n_cols=n, wall_s=1, cpu_s=1, repeats=5)
        ]
        for d in DENSITIES:
            nnz = max(1, round(d * rows * cols))
            points.append(
                Measurement(
                    kind="sparse",
                    rows=rows,
                    cols=cols,
                    n_cols=n,
                    density=d,
                    nnz=nnz,
                    wall_s=1,
                    cpu_s=1,
                    repeats=5,
                )
            )
        for m in points:
            t = predict_s(params, m) * math.exp(rng.normal(0, noise))
            out.append(dataclasses.replace(m, wall_s=t, cpu_s=t))
    return out


def test_fit_recovers_known_parameters(rng):
    f = fit(synthetic(TRUE, 0.03, rng))
    got, want = f.params, TRUE
    for name, tol in (
        ("s_per_dense_mac", 0.05),
        ("s_per_sparse_mac", 0.10),
        ("s_per_entry", 0.15),
        ("s_per_row", 0.30),
        ("s_per_call", 0.30),
        ("dram_bytes_per_s", 0.10),
        ("cache_bytes_per_s", 0.10),
    ):
        assert getattr(got, name) == pytest.approx(getattr(want, name), rel=tol), name
    assert f.residual() < 0.05
    assert f.residual("gemm") < 0.05 and f.residual("sparse") < 0.05


def test_fit_without_noise_is_close_to_exact(rng):
    f = fit(synthetic(TRUE, 0.0, rng))
    assert f.residual() < 1e-3
    assert f.params.s_per_dense_mac == pytest.approx(TRUE.s_per_dense_mac, rel=1e-3)


def test_fit_needs_dense_and_sparse_points(rng):
    ms = [m for m in synthetic(TRUE, 0.0, rng) if m.kind != "sparse"]
    with pytest.raises(ConfigError, match="dense and sparse"):
        fit(ms)


def test_profile_engine_agrees_with_the_fitted_model(rng, tmp_path):
    """The written profile, run by the roofline engine, predicts what the fit's
    model predicts (up to the profile's 4 significant digits)."""
    f = fit(synthetic(TRUE, 0.0, rng))
    m = dataclasses.replace(machine(1), clock_hz=2.0e9, simd_bits=256)
    path = write_profile(tmp_path / "p.yaml", profile_yaml(f, m, name="my: cpu # 1"))
    platform = load_platform(path)
    assert platform.name == "my: cpu # 1"
    fields = profile_fields(f, m)
    assert platform.roofline.dense_gemm_efficiency["fp32"] == pytest.approx(
        fields["dense_efficiency"], 1e-3
    )
    for rows, cols, n in ((256, 2304, 196), (4096, 4096, 1), (3072, 768, 128), (50, 70, 3)):
        layer = Linear(name="l", in_features=cols, out_features=rows, tokens=n)
        for d in (1.0, 0.3, 0.05, 0.004):
            mask = np.zeros(rows * cols, bool)
            nnz = max(1, round(d * rows * cols))
            mask[rng.choice(rows * cols, nnz, replace=False)] = True
            variant = "dense" if d == 1 else "sparse"
            r = simulate_layer(
                layer,
                platform,
                profile_mask(layer, mask.reshape(rows, cols)),
                variant=variant,
                weight_bits=32,
                activation_bits=32,
            )
            point = Measurement(
                kind=variant,
                rows=rows,
                cols=cols,
                n_cols=n,
                density=d,
                nnz=nnz,
                wall_s=1,
                cpu_s=1,
                repeats=1,
            )
            assert r.cost.latency_s == pytest.approx(predict_s(f.params, point), rel=2e-3)


TINY = Plan(
    shapes=((8, 16, 4), (24, 8, 1), (16, 32, 2)),
    densities=(0.25, 0.5),
    repeats=2,
    stream_bytes=3 * 2**16,
    cache_stream_bytes=3 * 2**14,
)


def test_tiny_calibration_loads_and_estimates(tmp_path, capsys):
    ticks = []

    def progress(total):
        ticks.append(total)
        return lambda *_: ticks.append(None)

    cal = calibrate_cpu(TINY, threads=1, name="tiny_cpu", progress=progress)
    assert ticks[0] == (len(TINY.shapes) + 2) * TINY.repeats
    assert len(ticks) == ticks[0] + 1
    text = cal.yaml
    assert "measured by prunesim calibrate cpu" in text and "residual" in text
    assert "copied from xeon_8380" in text
    for fact in ("BLAS:", "numpy", "scipy", "thread", "CPU:"):
        assert fact in text
    path = write_profile(tmp_path / "tiny.yaml", text)
    platform = load_platform(path)
    assert platform.name == "tiny_cpu" and platform.roofline is not None
    assert main(["estimate", "lenet5", "--platform", str(path), "--totals"]) == 0
    out, _ = capsys.readouterr()
    assert "tiny_cpu" in out
    with pytest.raises(ConfigError, match="exists"):
        write_profile(path, text)
    assert write_profile(path, text, overwrite=True) == path


def test_plan_rejects_bad_values():
    with pytest.raises(ConfigError) as e:
        Plan(shapes=(), densities=(0.0, 1.5), repeats=0, stream_bytes=10, cache_stream_bytes=10)
    assert len(e.value.problems) == 4


def test_dram_bytes_match_the_roofline_count():
    from simulator.calibrate.fit import dram_bytes

    m = Measurement(kind="dense", rows=3, cols=5, n_cols=7, wall_s=1, cpu_s=1, repeats=1)
    assert dram_bytes(m) == FLOAT_BYTES * (15 + 35 + 21)


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["calibrate"], "TARGET"),
        (["calibrate", "gpu"], "not one of cpu"),
        (["calibrate", "cpu", "--threads", "0"], "--threads"),
        (["calibrate", "cpu", "--threads", "lots"], "expected an integer"),
        (["calibrate", "cpu", "--threads", "4000"], "--threads: must be in [1,"),
        (["calibrate", "cpu", "--name", ""], "--name"),
        (["calibrate", "cpu", "--bogus"], "unrecognized arguments"),
    ],
)
def test_calibrate_bad_options_exit_2(capsys, argv, needle):
    assert main(argv) == 2
    _, err = capsys.readouterr()
    assert needle in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_calibrate_refuses_to_overwrite_before_measuring(capsys, tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("keep me\n")
    assert main(["calibrate", "cpu", "--quick", "--out", str(path)]) == 2
    _, err = capsys.readouterr()
    assert "exists" in err and "--force" in err
    assert path.read_text() == "keep me\n"


def test_calibrate_help(capsys):
    assert main(["calibrate", "--help"]) == 0
    out, _ = capsys.readouterr()
    assert "prunesim calibrate cpu" in out and "--quick" in out and "--threads" in out


def test_calibrate_writes_prints_and_replaces(capsys, tmp_path, monkeypatch):
    import simulator.calibrate as cal

    monkeypatch.setattr(cal, "plan", lambda quick=False: TINY)
    path = tmp_path / "out" / "cpu.yaml"
    assert main(["calibrate", "cpu", "--quick", "--out", str(path), "--name", "here"]) == 0
    out, _ = capsys.readouterr()
    assert f"wrote {path}" in out and "GMAC/s" in out
    assert load_platform(path).name == "here"
    assert main(["calibrate", "cpu", "--out", str(path), "--force", "--name", "again"]) == 0
    capsys.readouterr()
    assert load_platform(path).name == "again"
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]  # no temporary left
    assert main(["calibrate", "cpu"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("# This machine") and "name:" in out and "fit residual" in err
