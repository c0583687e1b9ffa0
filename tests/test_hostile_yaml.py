"""Hostile user-written files and specs through the command line: each ends in one
line on stderr and exit 2 (or, where the input is only large, a normal run), in
under 5 s and within 1 GiB. The corpus is ``tests/hostile/yaml/`` (written by
``tests/hostile/make_yaml.py``); the large cases are written at test time."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import simulator.cli  # noqa: F401  (imported once here, so each forked child starts warm)
from tests.hostile.make_yaml import HERE, cases, write_large
from tests.hostile.run import GIB, run_cli

CKPT = str(Path(__file__).parent / "fixtures" / "lenet5_ns.npz")


def _f(name: str) -> str:
    return str(HERE / name)


def _profile(f):
    return ["estimate", "lenet5", "--platform", f]


def _model(f):
    return ["storage", f]


def _levels(f):
    return ["storage", "alexnet", "--levels", f]


def _mapping(f):
    return ["inspect", CKPT, "--mapping", f]


REFUSED = {  # case -> (argv, a word the message must hold)
    "profile alias bomb": (_profile(_f("profile_alias_bomb.yaml")), "alias"),
    "model alias bomb": (_model(_f("model_alias_bomb.yaml")), "alias"),
    "levels alias bomb": (_levels(_f("levels_alias_bomb.yaml")), "alias"),
    "mapping alias bomb": (_mapping(_f("mapping_alias_bomb.yaml")), "alias"),
    "recursive alias as levels": (_levels(_f("recursive_alias.yaml")), "alias"),
    "recursive alias as profile": (_profile(_f("recursive_alias.yaml")), "alias"),
    "recursive alias as model": (_model(_f("recursive_alias.yaml")), "alias"),
    "profile huge int": (_profile(_f("profile_huge_int.yaml")), "compute.pes"),
    "profile huge clock": (_profile(_f("profile_huge_clock.yaml")), "clock_hz"),
    "model huge int": (_model(_f("model_huge_int.yaml")), "layers[0].in_features"),
    "levels huge int": (_levels(_f("levels_huge_int.yaml")), "conv1.rate"),
    "levels huge float": (_levels(_f("levels_huge_float.yaml")), "conv1.rate"),
    "levels null key": (_levels(_f("levels_null_key.yaml")), "null"),
    "levels int key": (_levels(_f("levels_int_key.yaml")), "key 1"),
    "levels list key": (_levels(_f("levels_list_key.yaml")), "key"),
    "mapping null key": (_mapping(_f("mapping_null_key.yaml")), "null"),
    "mapping int key": (_mapping(_f("mapping_int_key.yaml")), "key 12"),
    "profile null key": (_profile(_f("profile_null_key.yaml")), "null"),
    "fpga infinite PEs": (_profile(_f("fpga_infinite_pes.yaml")), "fpga.dense_pe"),
    "fpga zero cost": (_profile(_f("fpga_zero_cost.yaml")), "fpga.dense_pe"),
    "non-UTF-8 model": (_model(_f("non_utf8.yaml")), "UTF-8"),
    "non-UTF-8 levels": (_levels(_f("non_utf8.yaml")), "UTF-8"),
    "escape codes in a name": (_model(_f("escape_name.yaml")), "duplicate"),
    "levels /dev/zero": (_levels("/dev/zero"), "not a regular file"),
    "levels folder": (_levels(str(HERE)), "folder"),
    "profile /dev/zero": (_profile("/dev/zero"), "not a regular file"),
    "model /dev/zero": (_model("/dev/zero"), "not a regular file"),
    "huge layer 10^10": (["storage", "--layer", "linear:in=100000,out=100000"], "memory"),
    "huge layer 1.6x10^9": (["storage", "--layer", "linear:in=40000,out=40000"], "memory"),
    "huge conv 8x10^9": (
        ["storage", "--layer", "conv2d:in=20000,out=20000,k=20,input=20x20"],
        "memory",
    ),
    "layer int of 5000 digits": (["storage", "--layer", "linear:in=" + "9" * 5000], "in"),
}


def _run(argv, **kw):
    # the child writes to fds 1 and 2: give it the real sys.stdout/stderr, not
    # pytest's in-memory capture
    with _CAPSYS[0].disabled():
        return run_cli(argv, **kw)


_CAPSYS: list = [None]


@pytest.fixture(autouse=True)
def _real_streams(capsys):
    _CAPSYS[0] = capsys
    yield
    _CAPSYS[0] = None


def _check_refused(argv, needle):
    out = _run(argv)
    assert out.clean_refusal, (out.rc, out.stderr[-2000:], out.stdout[-500:])
    assert needle in out.stderr
    assert out.seconds < 5, out.seconds
    assert out.growth_bytes < GIB, out.growth_bytes
    assert "\x1b" not in out.stdout + out.stderr
    return out


@pytest.fixture(autouse=True)
def _memory_limit(monkeypatch):
    # the same limit on every machine: 1 GiB per allocation
    monkeypatch.setenv("PRUNESIM_MAX_MEMORY", "1G")


def test_corpus_is_what_the_script_writes(tmp_path):
    for name, content in cases().items():
        data = (HERE / name).read_bytes()
        assert data == (content if isinstance(content, bytes) else content.encode()), name
        assert len(data) < 8_000, name  # every committed case is tiny


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_hostile_input_is_refused_cleanly(case):
    _check_refused(*REFUSED[case])


def test_large_inputs_are_refused_cleanly(tmp_path):
    large = write_large(tmp_path)
    out = _check_refused(_profile(str(large["extends_chain"])), "extends")
    assert "deeper than 32" in out.stderr
    _check_refused(_model(str(large["scalesim_long_field"])), "characters")
    _check_refused(_model(str(large["deep_nesting"])), "nested")
    out = _check_refused(_model(str(large["graph_cycle"])), "cycle")
    assert "and 3993 more" in out.stderr  # 4,001 nodes on the cycle, 8 named


def test_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "levels.yaml"
    os.mkfifo(fifo)
    _check_refused(_levels(str(fifo)), "not a regular file")
    _check_refused(_mapping(str(fifo)), "not a regular file")


@pytest.mark.parametrize(
    "argv",
    [
        ["storage", "lenet5", "--structure", "block", "--block", "100000x100000"],
        ["storage", "lenet5", "--structure", "nm", "--nm", "1:1000000000"],
        ["storage", "lenet5", "--block", "100000x100000"],
        ["storage", "lenet5", "--nm", "1:1000000000"],
    ],
)
def test_blocks_and_groups_larger_than_the_layer_are_clamped(argv):
    # the mask is the same as with a block or group the size of the layer (see
    # masks.clamp_to_layer), so these run normally, in bounded memory
    out = _run(argv, timeout_s=20)
    assert out.rc == 0, out.stderr[-2000:]
    assert out.growth_bytes < GIB
    assert out.seconds < 10  # numba's first compile in a fresh cache may take a while
