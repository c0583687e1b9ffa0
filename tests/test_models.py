"""Built-in model files against published figures; model-file validation; inline layer
specs; SCALE-Sim topologies."""

from __future__ import annotations

import math
from pathlib import Path

import jsonschema
import pytest

from simulator.errors import ConfigError
from simulator.layers import Conv2d, Linear, MatMul
from simulator.workloads import (
    LAYER_KEYS,
    MODEL_SCHEMA,
    Network,
    builtin_models,
    load_network,
    network_from_dict,
    parse_inline_layer,
    read_scalesim_topology,
)
from simulator.yamlio import read_yaml

EXPECTED_MODELS = {
    "alexnet",
    "bert_base",
    "lenet5",
    "minilm_l6",
    "mobilenetv2",
    "resnet18",
    "resnet50",
    "vgg16",
}


def convs(net: Network) -> list[Conv2d]:
    return [lay for lay in net.layers if isinstance(lay, Conv2d)]


def bn_params(net: Network) -> int:
    """Batch-norm parameters when every conv is followed by a BN (weight and bias)."""
    return 2 * sum(c.out_channels for c in convs(net))


def biases(net: Network) -> int:
    return sum(
        lay.out_channels if isinstance(lay, Conv2d) else lay.out_features for lay in net.layers
    )


# --- built-in models ---------------------------------------------------------------------


def test_builtin_models_listed():
    assert set(builtin_models()) == EXPECTED_MODELS


@pytest.mark.parametrize("name", sorted(EXPECTED_MODELS))
def test_every_builtin_model_loads(name):
    net = load_network(name)
    assert net.name == name
    assert net.layers and net.source
    names = [lay.name for lay in net.layers]
    assert len(set(names)) == len(names)
    assert net.prunable_layers
    assert net.weight_count == sum(lay.weight_count for lay in net.prunable_layers)
    # loading by path gives the same network
    assert load_network(builtin_models()[name]).weight_count == net.weight_count


def test_resnet50():
    net = load_network("resnet50")
    # torchvision.models.resnet50 (docs model table): 25,557,032 parameters, 4.09 GFLOPS
    # (torchvision counts multiply-adds). Parameters = conv/fc weights + BN (2 per conv
    # output channel, every conv has one) + 1,000 fc biases: this checks the layer list.
    assert net.weight_count == 25_502_912
    assert bn_params(net) == 53_120
    assert net.weight_count + bn_params(net) + 1_000 == 25_557_032
    assert net.macs == pytest.approx(4.09e9, rel=0.005)
    assert len(convs(net)) == 53  # 1 stem + 16 bottlenecks x 3 + 4 downsample


def test_resnet18():
    net = load_network("resnet18")
    # torchvision.models.resnet18: 11,689,512 parameters, 1.81 GFLOPS (multiply-adds)
    assert net.weight_count + bn_params(net) + 1_000 == 11_689_512
    assert net.macs == pytest.approx(1.81e9, rel=0.005)
    assert len(convs(net)) == 20


def test_vgg16():
    net = load_network("vgg16")
    # torchvision.models.vgg16: 138,357,544 parameters (incl. 13,416 biases), 15.47 GFLOPS
    assert biases(net) == 13_416
    assert net.weight_count + biases(net) == 138_357_544
    assert net.macs == pytest.approx(15.47e9, rel=0.005)


def test_alexnet_caffe_grouped():
    net = load_network("alexnet")
    # BVLC Caffe AlexNet (grouped conv2/4/5): 60,965,224 parameters incl. biases; 0.72 G
    # MACs (Han et al., NeurIPS 2015; Sze et al., Proc. IEEE 2017, Table: 724 M MACs)
    assert net.weight_count + biases(net) == 60_965_224
    assert net.macs == pytest.approx(0.72e9, rel=0.01)
    # per-layer weights, Han et al., NeurIPS 2015, Table 4, given there to the K or M
    # (some rounded, some cut: 663,552 is "663K"): within one unit of the last digit
    published = {
        "conv1": 35e3,
        "conv2": 307e3,
        "conv3": 885e3,
        "conv4": 663e3,
        "conv5": 442e3,
        "fc6": 38e6,
        "fc7": 17e6,
        "fc8": 4e6,
    }
    for name, value in published.items():
        unit = 1e3 if value < 1e6 else 1e6
        assert abs(net.layer(name).weight_count - value) < unit, name
    assert [net.layer(n).groups for n in ("conv1", "conv2", "conv3", "conv4", "conv5")] == [
        1,
        2,
        1,
        2,
        2,
    ]


def test_mobilenetv2():
    net = load_network("mobilenetv2")
    # torchvision.models.mobilenet_v2: 3,504,872 parameters, every conv followed by BN,
    # classifier bias 1,000; Sandler et al., CVPR 2018, Table 3: 300 M multiply-adds
    assert net.weight_count + bn_params(net) + 1_000 == 3_504_872
    assert net.macs == pytest.approx(300e6, rel=0.01)
    depthwise = [c for c in convs(net) if c.groups > 1]
    assert len(depthwise) == 17
    assert all(c.groups == c.in_channels == c.out_channels for c in depthwise)


def test_lenet5():
    net = load_network("lenet5")
    # Han et al., NeurIPS 2015, Table 2: 500 + 25K + 400K + 5K = 430.5K weights
    assert net.weight_count == 430_500
    assert [lay.weight_count for lay in net.layers] == [500, 25_000, 400_000, 5_000]


@pytest.mark.parametrize(
    ("name", "layers", "hidden", "intermediate"),
    [
        ("bert_base", 12, 768, 3072),  # Devlin et al., NAACL 2019: BERT-base L=12, H=768
        ("minilm_l6", 6, 384, 1536),
    ],  # all-MiniLM-L6-v2 config: 6 layers, hidden 384
)
def test_transformer_encoders(name, layers, hidden, intermediate):
    net = load_network(name)
    # per layer: Q, K, V, attention output (H x H each) and the two FFN matrices (H x 4H)
    per_layer = 4 * hidden * hidden + 2 * hidden * intermediate
    published = {"bert_base": 84_934_656, "minilm_l6": 10_616_832}[name]
    assert net.weight_count == layers * per_layer == published
    matmuls = [lay for lay in net.layers if isinstance(lay, MatMul)]
    assert len(matmuls) == 2 * layers
    assert all(not m.prunable and m.weight_count == 0 for m in matmuls)
    assert all(lay.tokens == 128 for lay in net.layers if isinstance(lay, Linear))
    # MACs at 128 tokens: 128 per weight plus 2 attention products of 128 x 128 x H
    assert net.macs == layers * (128 * per_layer + 2 * 128 * 128 * hidden)


def test_bert_base_macs_published():
    # 11.17 G MACs at 128 tokens (12 x (128 x 7,077,888 + 2 x 12 x 128 x 128 x 64))
    assert load_network("bert_base").macs == 11_173_625_856


# --- model-file validation ---------------------------------------------------------------


def write(tmp_path: Path, text: str, name: str = "model.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


BROKEN = """\
name: broken
layers:
  - {name: a, type: conv2d, in_channels: 3, out_channels: 8, kernel: 3, input: 8, strid: 2}
  - {name: b, type: linear, in_features: 10}
  - {name: c, type: linear, in_features: ten, out_features: 5}
  - {name: a, type: linear, in_features: 4, out_features: 4}
  - {name: e, type: conv2d, in_channels: 6, out_channels: 8, kernel: 3, input: 8, groups: 4}
  - {name: f, type: conv2d, in_channels: 8, out_channels: 8, kernel: [3], input: 8}
  - {name: g, type: linear, in_features: 4, out_features: 4}
"""


def test_broken_model_lists_every_problem_with_key_paths(tmp_path):
    path = write(tmp_path, BROKEN)
    with pytest.raises(ConfigError) as err:
        load_network(path)
    e = err.value
    assert e.source == str(path)
    assert str(path) in str(e)
    assert len(e.problems) == 6, e.problems
    expected = [  # (key path, what)
        ("layers[0]", "strid"),  # unknown key
        ("layers[1]", "out_features"),  # missing key
        ("layers[2].in_features", "integer"),  # wrong type
        ("layers[3]", "duplicate"),  # duplicate layer name
        ("layers[4]", "groups=4 does not divide in_channels=6"),
        ("layers[5].kernel", "pair"),
    ]
    for problem, (where, what) in zip(e.problems, expected, strict=True):
        assert problem.startswith(where), problem
        assert what in problem, problem
    assert "unknown" in e.problems[0]
    assert "required" in e.problems[1]


def test_model_top_level_problems(tmp_path):
    with pytest.raises(ConfigError) as err:
        load_network(write(tmp_path, "description: no name and no layers\n"))
    text = str(err.value)
    assert "'name' is a required property" in text and "'layers'" in text
    with pytest.raises(ConfigError, match="descripton"):
        load_network(
            write(
                tmp_path,
                "name: x\ndescripton: typo\nlayers:\n"
                "  - {name: a, type: linear, in_features: 2, out_features: 2}\n",
            )
        )
    with pytest.raises(ConfigError, match=r"layers\[0\]\.type"):
        load_network(write(tmp_path, "name: x\nlayers:\n  - {name: a, type: conv3d}\n"))
    with pytest.raises(ConfigError, match="layers"):
        load_network(write(tmp_path, "name: x\nlayers: []\n"))
    with pytest.raises(ConfigError):
        load_network(write(tmp_path, "- just\n- a list\n"))


def test_top_level_and_layer_problems_reported_together(tmp_path):
    path = write(
        tmp_path,
        "name: x\ndescripton: typo\nlayers:\n"
        "  - {name: a, type: linear, in_features: 2, out_feature: 2}\n",
    )
    with pytest.raises(ConfigError) as err:
        load_network(path)
    text = str(err.value)
    assert "descripton" in text and "out_feature" in text


def test_non_yaml_file_names_the_file(tmp_path):
    path = write(tmp_path, "layers: [unclosed\n  - {a: 1\n", name="notyaml.yaml")
    with pytest.raises(ConfigError) as err:
        load_network(path)
    assert err.value.source == str(path)
    assert str(path) in str(err.value)
    assert "YAML" in str(err.value)


def test_binary_file_names_the_file(tmp_path):
    path = tmp_path / "weights.yaml"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe\x00\x00")  # not text at all
    with pytest.raises(ConfigError) as err:
        load_network(path)
    assert err.value.source == str(path)


def test_missing_model_file(tmp_path):
    with pytest.raises(ConfigError, match="no such model") as err:
        load_network(tmp_path / "nope.yaml")
    assert "resnet50" in str(err.value)  # lists the built-ins


# --- inline layers ---------------------------------------------------------------------


def test_parse_inline_conv():
    c = parse_inline_layer("conv2d:in=64,out=128,k=3,input=56x56,pad=1,stride=2")
    assert isinstance(c, Conv2d)
    assert (c.in_channels, c.out_channels, c.kernel_hw, c.input_hw) == (64, 128, (3, 3), (56, 56))
    assert c.output_hw == (28, 28)  # (56 + 2 - 3) // 2 + 1
    assert c.weight_count == 128 * 64 * 9 == 73_728
    g = parse_inline_layer("conv2d:in=32,out=32,k=3x1,input=10x12,groups=32,name=dw")
    assert g.name == "dw" and g.kernel_hw == (3, 1) and g.gemm.groups == 32
    assert g.output_hw == (8, 12)


def test_parse_inline_linear_and_matmul():
    fc = parse_inline_layer("linear:in=4096,out=1000,tokens=4")
    assert isinstance(fc, Linear)
    assert (fc.in_features, fc.out_features, fc.tokens) == (4096, 1000, 4)
    assert fc.macs == 4096 * 1000 * 4
    mm = parse_inline_layer(" MatMul : m=128, kk=64, n=128, heads=12 ")
    assert isinstance(mm, MatMul)
    assert mm.macs == 12 * 128 * 64 * 128


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("conv3d:in=1,out=1,k=1,input=1", "not one of"),
        ("conv2d:in=64,out=64,k=3", "input"),  # missing key
        ("conv2d:in=64,out=64,k=3,input=8,colour=red", "colour"),  # unknown key
        ("conv2d:in=64,out=64,k=three,input=8", "integer"),
        ("conv2d:in=6,out=8,k=3,input=8,groups=4", "does not divide"),
        ("conv2d:in=6,out=8,k=9,input=8", "empty output"),
        ("linear:in=0,out=8", "in_features"),
        ("linear:in=8,out=8,heads=2", "heads"),  # a matmul key on a linear layer
        ("linear:in=8,out", "key=value"),
    ],
)
def test_parse_inline_errors(spec, fragment):
    with pytest.raises(ConfigError, match=fragment) as err:
        parse_inline_layer(spec)
    assert err.value.source == "--layer"


def test_parse_inline_lists_every_problem():
    with pytest.raises(ConfigError) as err:
        parse_inline_layer("conv2d:in=x,out=y,k=3,input=8")
    assert len(err.value.problems) == 2


# --- SCALE-Sim topologies ----------------------------------------------------------------


def scalesim_ofmap(h: int, r: int, stride: int) -> int:
    """SCALE-Sim's output size (scalesim/topology_utils.py): ceil((H - R + s) / s)."""
    return math.ceil((h - r + stride) / stride)


def test_read_scalesim_alexnet(scalesim_topologies):
    path = scalesim_topologies / "alexnet.csv"
    net = read_scalesim_topology(path)
    assert net.name == "alexnet"
    assert [lay.name for lay in net.layers] == ["Conv1", "Conv2", "Conv3", "Conv4", "Conv5"]
    # columns: name, ifmap h, ifmap w, filter h, filter w, channels, filters, stride
    # Conv1: the file says 224; SCALE-Sim's ceil((224 - 11 + 4) / 4) = 55 outputs read
    # 11 + 4 x 54 = 227 input rows, which is what the layer records
    rows = [
        (227, 11, 3, 96, 4),
        (27, 5, 96, 256, 1),
        (13, 3, 256, 384, 1),
        (13, 3, 384, 384, 1),
        (13, 3, 384, 256, 1),
    ]
    for lay, (h, r, c, k, s) in zip(net.layers, rows, strict=True):
        assert (lay.input_hw, lay.kernel_hw, lay.in_channels, lay.out_channels) == (
            (h, h),
            (r, r),
            c,
            k,
        )
        assert lay.stride_hw == (s, s) and lay.padding_hw == (0, 0) and lay.groups == 1
        assert lay.weight_count == k * c * r * r
    # stride-1 layers: SCALE-Sim's ceil((H - R + 1) / 1) = H - R + 1
    for lay, (h, r, c, k, _) in zip(net.layers[1:], rows[1:], strict=True):
        assert lay.output_hw == (h - r + 1, h - r + 1)
        assert lay.macs == (h - r + 1) ** 2 * r * r * c * k
    assert net.layers[1].macs == 23 * 23 * 5 * 5 * 96 * 256 == 325_017_600
    # load_network reads a .csv path as a SCALE-Sim topology
    assert load_network(path).weight_count == net.weight_count


def test_scalesim_output_size_matches_scalesim(scalesim_topologies):
    for name in ("alexnet.csv", "resnet50.csv"):
        for lay in read_scalesim_topology(scalesim_topologies / name).layers:
            h, r, s = lay.input_hw[0], lay.kernel_hw[0], lay.stride_hw[0]
            assert lay.output_hw[0] == scalesim_ofmap(h, r, s), (name, lay.name)


def test_scalesim_bad_rows_listed(tmp_path):
    path = write(
        tmp_path,
        "name,h,w,r,s,c,k,stride,\nL1,8,8,3,3,4,4,1,\nL2,8,8,3,3,4\n"
        "L3,8,8,x,3,4,4,1,\nL4,2,2,3,3,4,4,1,\n",
        name="topo.csv",
    )
    with pytest.raises(ConfigError) as err:
        read_scalesim_topology(path)
    problems = err.value.problems
    assert len(problems) == 3
    assert problems[0].startswith("row 3") and "8 columns" in problems[0]
    assert problems[1].startswith("row 4") and "integers" in problems[1]
    assert problems[2].startswith("row 5") and "empty output" in problems[2]
    with pytest.raises(ConfigError, match="no layers"):
        read_scalesim_topology(write(tmp_path, "header only\n", name="empty.csv"))


# --- issue 8: complete model schema, names, hostile topology fields -------------


@pytest.mark.parametrize("name", sorted(builtin_models()))
def test_every_builtin_model_validates_against_the_model_schema(name):
    jsonschema.Draft202012Validator.check_schema(MODEL_SCHEMA)
    jsonschema.validate(read_yaml(builtin_models()[name]), MODEL_SCHEMA)


def test_model_schema_describes_every_layer_key():
    defs = MODEL_SCHEMA["$defs"]
    assert set(defs) == set(LAYER_KEYS)
    for kind, schema in defs.items():
        assert schema["additionalProperties"] is False and schema["description"]
        for key, prop in schema["properties"].items():
            assert key in ("name", "type") or prop["description"], (kind, key)
    assert defs["conv2d"]["properties"]["stride"]["default"] == 1
    assert defs["linear"]["properties"]["tokens"]["default"] == 1
    assert "in_features" in defs["linear"]["required"]


@pytest.mark.parametrize(
    "layer",
    [
        {"name": "fc", "type": "linear", "in_features": 4, "out_features": 2, "bias": True},
        {"name": "fc", "type": "linear", "in_features": 4},
        {"name": "fc", "type": "linear", "in_features": 4, "out_features": 2, "tokens": 0},
        {
            "name": "c",
            "type": "conv2d",
            "in_channels": 1,
            "out_channels": 1,
            "kernel": 3,
            "input": 8,
            "stride": [1, 2, 3],
        },
    ],
)
def test_bad_layer_keys_rejected_by_loader_and_schema(layer):
    data = {"name": "m", "layers": [layer]}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(data, MODEL_SCHEMA)
    with pytest.raises(ConfigError, match=r"layers\[0\]"):
        network_from_dict(data, "m.yaml")


def test_unknown_layer_key_is_named():
    data = {
        "name": "m",
        "layers": [
            {"name": "fc", "type": "linear", "in_features": 4, "out_features": 2, "bais": 1}
        ],
    }
    with pytest.raises(ConfigError, match=r"layers\[0\]: unknown key\(s\) bais"):
        network_from_dict(data, "m.yaml")


def test_model_names_ignore_case_and_suggest():
    assert load_network("ResNet50") == load_network("resnet50")
    assert load_network("BERT-base").name == load_network("bert_base").name
    with pytest.raises(ConfigError, match="did you mean resnet50"):
        load_network("resnet5")


def test_scalesim_long_field_and_long_line_are_refused(tmp_path):
    head = (
        "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, "
        "Num Filter, Strides,\n"
    )
    p = tmp_path / "t.csv"
    p.write_text(head + f"conv1, {'5' * 300}, 28, 5, 5, 1, 20, 1,\n")
    with pytest.raises(ConfigError, match="row 2: a field of 300 characters"):
        read_scalesim_topology(p)
    p.write_text(head + f"conv1, {'5' * 200_000}, 28, 5, 5, 1, 20, 1,\n")
    with pytest.raises(ConfigError, match="row 2: a line of 200,0"):
        read_scalesim_topology(p)


def test_huge_layers_are_refused_before_any_count_overflows():
    with pytest.raises(ConfigError, match="over 2\\*\\*62"):
        parse_inline_layer("conv2d:in=2000000000,out=2000000000,k=2000,input=4000")
