"""Fuzzing the checkpoint readers: random bytes, and real fixtures with bytes flipped
or cut off. Whatever the bytes, a reader either returns a checkpoint or raises a
:class:`~simulator.errors.PrunesimError`; nothing else escapes, and nothing hangs.

Zip members carry a CRC, so flipping bytes of a ``.pt`` zip would mostly test the CRC
check; the pickle (``data.pkl``) and the storages are therefore mutated *inside* the
archive and re-zipped with a valid CRC, which sends the damage to the unpickler and
the bounds checks. The ``slow`` tests run more examples (each still seconds).
"""

from __future__ import annotations

import json
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.checkpoints import read_checkpoint
from simulator.errors import PrunesimError
from simulator.workloads import load_network

FIX = Path(__file__).resolve().parent / "fixtures"
LENET = load_network("lenet5")
RAW_FIXTURES = ["lenet5_ns_legacy.pt", "lenet5_filter.safetensors", "lenet5_ns.npz"]
ONNX_FIXTURES = ["lenet5_convs_mul.onnx", "lenet5_ns.onnx"]
ZIP_FIXTURES = ["lenet5_ns_prune.pt", "lenet5_asp.pt", "lenet5_ao_fc2.pt"]


def read_all_ways(path: Path) -> None:
    """Read with the LeNet-5 network and with a derived one; only our errors may escape."""
    for kw in ({"network": LENET}, {"input_shape": (1, 28, 28)}):
        try:
            ck = read_checkpoint(path, **kw)
        except PrunesimError:
            continue
        ck.summary()  # and what is returned is usable


def mutations(size: int, head: int = 4096):
    """(flips, truncation): byte flips, most of them in the first ``head`` bytes
    (headers and pickles live there), and maybe a cut."""
    pos = st.one_of(st.integers(0, min(size, head) - 1), st.integers(0, size - 1))
    flips = st.lists(st.tuples(pos, st.integers(0, 255)), min_size=0, max_size=12)
    return st.tuples(flips, st.one_of(st.none(), st.integers(0, size)))


def mutate(data: bytes, flips, cut) -> bytes:
    out = bytearray(data)
    for p, b in flips:
        out[p] = b
    return bytes(out if cut is None else out[:cut])


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def _mutation_test(fname: str, max_examples: int):
    data = (FIX / fname).read_bytes()

    @settings(max_examples=max_examples)
    @given(m=mutations(len(data)))
    def run(work, m):
        p = work / fname
        p.write_bytes(mutate(data, *m))
        read_all_ways(p)

    return run


@pytest.mark.parametrize("fname", RAW_FIXTURES)
def test_corrupted_fixtures(work, fname):
    _mutation_test(fname, 25)(work)


@pytest.mark.parametrize("fname", ONNX_FIXTURES)
def test_corrupted_onnx(work, fname):
    pytest.importorskip("onnx")
    _mutation_test(fname, 25)(work)


def rezip(src: Path, dst: Path, member_suffix: str, flips, cut) -> None:
    """Copy a zip, mutating the members whose names end with ``member_suffix``."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename.endswith(member_suffix) and data:
                n = len(data)
                data = mutate(
                    data, [(p % n, b) for p, b in flips], None if cut is None else cut % (n + 1)
                )
            zout.writestr(info.filename, data)


@pytest.mark.parametrize("fname", ZIP_FIXTURES)
@given(m=mutations(4096, head=512))
def test_corrupted_pickles_inside_zip(work, fname, m):
    p = work / ("pkl_" + fname)
    rezip(FIX / fname, p, "data.pkl", *m)
    read_all_ways(p)


@given(
    m=mutations(1 << 20, head=1 << 20),
    member=st.sampled_from(["data/0", "data/1", "data/3", "byteorder"]),
)
def test_corrupted_storages_inside_zip(work, m, member):
    p = work / "storage.pt"
    rezip(FIX / "lenet5_ns_prune.pt", p, member, *m)
    read_all_ways(p)


@given(
    m=mutations(1 << 16, head=1 << 16),
    member=st.sampled_from(["fc2.weight.npy", "conv1.weight.npy"]),
)
def test_corrupted_npz_members(work, m, member):
    p = work / "member.npz"
    rezip(FIX / "lenet5_ns.npz", p, member, *m)
    read_all_ways(p)


PREFIXES = [b"", b"PK\x03\x04", b"\x80\x02", b"\x80\x04\x95", b"\x10\x00\x00\x00\x00\x00\x00\x00{"]


@given(
    prefix=st.sampled_from(PREFIXES),
    body=st.binary(max_size=2048),
    suffix=st.sampled_from([".pt", ".pth", ".safetensors", ".npz", ".bin"]),
)
def test_random_bytes(work, prefix, body, suffix):
    p = work / ("random" + suffix)
    p.write_bytes(prefix + body)
    read_all_ways(p)


@given(body=st.binary(max_size=2048))
def test_random_bytes_as_onnx(work, body):
    pytest.importorskip("onnx")
    p = work / "random.onnx"
    p.write_bytes(body)
    read_all_ways(p)


@given(
    header=st.recursive(
        st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.text(max_size=8),
        lambda inner: (
            st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
        ),
        max_leaves=12,
    )
)
def test_random_safetensors_headers(work, header):
    """Any JSON header at all: only our errors."""
    text = json.dumps(header).encode()
    p = work / "h.safetensors"
    p.write_bytes(struct.pack("<Q", len(text)) + text + bytes(64))
    read_all_ways(p)


@pytest.mark.slow
@pytest.mark.parametrize("fname", RAW_FIXTURES + ZIP_FIXTURES)
def test_corrupted_fixtures_long(work, fname):
    _mutation_test(fname, 300)(work)


@pytest.mark.slow
@settings(max_examples=800)
@given(m=mutations(4096, head=1024))
def test_corrupted_pickles_long(work, m):
    p = work / "pkl_long.pt"
    rezip(FIX / "lenet5_ns_prune.pt", p, "data.pkl", *m)
    read_all_ways(p)


def test_fixtures_themselves_are_fine(work):
    for fname in RAW_FIXTURES + ZIP_FIXTURES:
        assert read_checkpoint(FIX / fname, network=LENET).layers
    assert np.load(FIX / "lenet5_masks.npz")["nonstructured/fc1"].dtype == bool
