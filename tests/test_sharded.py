"""Sharded safetensors checkpoints (a Hugging Face ``model.safetensors.index.json``
and its shards): read tensor by tensor, the same layers as one file, and every
malformed index refused with the file and the tensor named."""

from __future__ import annotations

import json

import numpy as np
import pytest

from simulator.checkpoints import read_checkpoint
from simulator.checkpoints.reader import open_source
from simulator.checkpoints.safetensors_file import write_safetensors
from simulator.cli import main
from simulator.errors import CheckpointError
from simulator.workloads import load_network

TINY = "tests/fixtures/tiny_llama"


def _tensors() -> dict[str, np.ndarray]:
    """Every weight of the tiny Llama, 60 % of each zeroed at random (and a norm)."""
    net = load_network(TINY)
    rng = np.random.default_rng(0)
    out = {}
    for layer in net.prunable_layers:
        w = rng.standard_normal(layer.weight_shape).astype(np.float32)
        w[rng.random(w.shape) < 0.6] = 0
        out[layer.name + ".weight"] = w
    out["model.norm.weight"] = np.ones(256, dtype=np.float32)
    return out


def _shard(folder, tensors, parts=3, index_name="model.safetensors.index.json"):
    names = list(tensors)
    wmap = {}
    for i in range(parts):
        shard = f"model-{i + 1:05d}-of-{parts:05d}.safetensors"
        chunk = names[i::parts]
        write_safetensors(folder / shard, {n: tensors[n] for n in chunk})
        wmap.update(dict.fromkeys(chunk, shard))
    (folder / index_name).write_text(
        json.dumps({"metadata": {"total_size": 0}, "weight_map": wmap})
    )
    return folder / index_name


def test_shards_read_as_one_file(tmp_path):
    tensors = _tensors()
    one = tmp_path / "one"
    one.mkdir()
    write_safetensors(one / "model.safetensors", tensors)
    sharded = tmp_path / "sharded"
    sharded.mkdir()
    index = _shard(sharded, tensors)
    net = load_network(TINY)
    want = read_checkpoint(one / "model.safetensors", network=net)
    for path in (index, sharded, one):  # the index, its folder, a folder of one file
        got = read_checkpoint(path, network=net)
        assert [cl.name for cl in got.layers] == [cl.name for cl in want.layers]
        for g, w in zip(got.layers, want.layers, strict=True):
            assert np.array_equal(g.mask, w.mask) and np.array_equal(g.weight, w.weight)
            assert np.array_equal(g.mask, tensors[w.tensor] != 0)
    assert read_checkpoint(index, network=net).format == "safetensors (sharded)"


def test_a_shard_is_open_only_while_its_tensors_are_read(tmp_path):
    index = _shard(tmp_path, _tensors())
    with open_source(index) as src:
        names = list(src.tensors)
        for name in names:
            src.load(name)
            assert src._open is not None and name in src._open[1].tensors
    assert src._open is None


def test_the_estimate_command_reads_a_sharded_folder(tmp_path, capsys):
    _shard(tmp_path, _tensors())
    code = main(["estimate", TINY, "--checkpoint", str(tmp_path), "--platform", "a100", "--totals"])
    out = capsys.readouterr().out
    assert code == 0 and "sparse" in out


def _index(tmp_path, wmap):
    p = tmp_path / "model.safetensors.index.json"
    p.write_text(json.dumps({"weight_map": wmap}) if not isinstance(wmap, str) else wmap)
    return p


@pytest.mark.parametrize(
    ("wmap", "needle"),
    [
        ("{not json", "not valid JSON"),
        ({}, 'non-empty "weight_map"'),
        ([1, 2], 'non-empty "weight_map"'),
        ({"a.weight": "../outside.safetensors"}, "not a file name in the index's folder"),
        ({"a.weight": "/etc/passwd"}, "not a file name in the index's folder"),
        ({"a.weight": 3}, "not a file name"),
        ({"a.weight": "missing.safetensors"}, "cannot open file"),
        ({"nowhere.weight": "s1.safetensors"}, "the shard has no such tensor"),
        ({"a.weight": "s1.safetensors", "b.weight": "s2.safetensors"}, "also in shard"),
    ],
)
def test_bad_indexes_are_refused_naming_file_and_tensor(tmp_path, wmap, needle):
    write_safetensors(tmp_path / "s1.safetensors", {"a.weight": np.ones((2, 2), np.float32)})
    write_safetensors(
        tmp_path / "s2.safetensors",
        {"a.weight": np.ones((2, 2), np.float32), "b.weight": np.ones(2, np.float32)},
    )
    with pytest.raises(CheckpointError) as e:
        open_source(_index(tmp_path, wmap)).close()
    assert needle in str(e.value)
    assert ".safetensors" in str(e.value) or "index.json" in str(e.value)


def test_a_folder_without_a_checkpoint_is_refused(tmp_path, capsys):
    code = main(["estimate", TINY, "--checkpoint", str(tmp_path), "--platform", "a100"])
    err = capsys.readouterr().err
    assert code == 2 and "model.safetensors" in err and len(err.strip().splitlines()) == 1


def test_a_checkpoint_read_without_arrays_streams_its_masks(tmp_path):
    """Read counted (arrays=False), a checkpoint holds no weight or mask; its masks
    come from the file again, in network order each layer once, equal to those of a
    checkpoint read whole; the estimate from either is the same."""
    from simulator.hwconfig import load_platform
    from simulator.simulate import estimate_network

    tensors = _tensors()
    index = _shard(tmp_path, tensors)
    net = load_network(TINY)
    whole = read_checkpoint(index, network=net)
    lean = read_checkpoint(index, network=net, arrays=False)
    assert whole.arrays_held and not lean.arrays_held
    assert all(cl.mask is None and cl.weight is None for cl in lean.layers)
    assert [(cl.name, cl.weights, cl.kept, cl.structure) for cl in lean.layers] == [
        (cl.name, cl.weights, cl.kept, cl.structure) for cl in whole.layers
    ]
    assert lean.variant == whole.variant
    streamed = lean.masks(fill_missing=True)
    assert list(streamed) == list(whole.masks(fill_missing=True))
    for name, mask in whole.masks(fill_missing=True).items():
        assert name in streamed and np.array_equal(streamed[name], mask)
    # out of order: read again from the start
    first = net.prunable_layers[0].name
    assert np.array_equal(streamed[first], whole.masks()[first])
    assert "nope" not in streamed
    platforms = [load_platform("a100"), load_platform("eie")]
    a = estimate_network(net, platforms, checkpoint=whole).frame()
    b = estimate_network(net, platforms, checkpoint=lean).frame()
    assert a.equals(b)


def test_gpt2_conv1d_weights_are_read_transposed(tmp_path):
    """GPT-2 stores its projections as Conv1D weights, (in, out): each is read as its
    transpose, the square c_proj too (its shape cannot tell), so a zeroed input row of
    the file is a pruned input channel (a column) of the layer."""
    cfg = {
        "model_type": "gpt2",
        "n_embd": 64,
        "n_head": 4,
        "n_layer": 1,
        "vocab_size": 100,
        "n_positions": 128,
    }
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    net = load_network(str(tmp_path))
    assert set(net.stored_transposed) == {
        n.name for n in net.prunable_layers if n.name.startswith("transformer.h.")
    }
    rng = np.random.default_rng(1)
    tensors = {}
    for layer in net.prunable_layers:
        if layer.name not in net.stored_transposed:
            continue
        out_f, in_f = layer.weight_shape
        w = rng.standard_normal((in_f, out_f)).astype(np.float32)  # Conv1D: (in, out)
        w[: in_f // 4] = 0  # the first quarter of the inputs pruned
        tensors[layer.name + ".weight"] = w
    write_safetensors(tmp_path / "model.safetensors", tensors)
    ck = read_checkpoint(tmp_path / "model.safetensors", network=net)
    assert {cl.name for cl in ck.layers} == set(net.stored_transposed)
    for cl in ck.layers:
        stored = tensors[cl.tensor]
        assert cl.mask.shape == stored.T.shape
        assert np.array_equal(cl.mask, stored.T != 0)
        assert cl.structure == "channel"
