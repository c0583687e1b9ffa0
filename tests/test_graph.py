"""The network graph and filter pruning cascaded through it: a residual block, a
concatenation, a flatten, grouped and depthwise convs, all against numbers worked
out by hand; the graph's validation; the graphs of the built-in models and of an
ONNX model; and ``--no-cascade`` giving per-layer arithmetic."""

from __future__ import annotations

import copy
import json
import math

import numpy as np
import pytest
import yaml

from simulator.cli import main
from simulator.dataflows.task import LayerTask
from simulator.errors import ConfigError
from simulator.formats import profile_mask
from simulator.masks import Pruning
from simulator.netmasks import (
    cascade_masks,
    effective_rate,
    fit_cascade,
    network_masks,
    network_profiles,
)
from simulator.workloads import builtin_models, load_network, network_from_dict


def conv(name, cin, cout, k=3, **extra):
    return {
        "name": name,
        "type": "conv2d",
        "in_channels": cin,
        "out_channels": cout,
        "kernel": k,
        "input": 8,
        "padding": k // 2,
        **extra,
    }


# stem -> a -> b; add(b, stem) -> c (1x1) -> flatten -> fc. Every conv keeps 8x8.
BLOCK = {
    "name": "block",
    "layers": [
        conv("stem", 3, 4, inputs=["input"]),
        conv("a", 4, 4),
        conv("b", 4, 4),
        conv("c", 4, 6, k=1, inputs=["add"]),
        {"name": "fc", "type": "linear", "in_features": 6 * 64, "out_features": 10},
    ],
    "joins": [{"name": "add", "op": "add", "inputs": ["b", "stem"]}],
}


def filters(net, name, removed):
    """A mask of layer ``name`` with the filters ``removed`` pruned, all else kept."""
    m = np.ones(net.layer(name).weight_shape, dtype=bool)
    m[list(removed)] = False
    return m


def block_masks(net):
    return {
        "stem": filters(net, "stem", {2, 3}),
        "a": filters(net, "a", {1}),
        "b": filters(net, "b", {0, 2}),
        "c": filters(net, "c", {5}),
        "fc": filters(net, "fc", set()),
    }


def kept(masks):
    return {n: int(np.count_nonzero(m)) for n, m in masks.items()}


def test_residual_block_by_hand():
    net = network_from_dict(BLOCK, "block")
    out = cascade_masks(net, block_masks(net))
    # stem: filters {0,1} of 3x3x3 = 54. a reads stem: filters {0,2,3} x inputs {0,1}
    # x 9 = 54. b reads a (filter 1 gone): filters {1,3} x inputs {0,2,3} x 9 = 54.
    # add: only channel 2 is gone on both branches (b lost {0,2}, stem {2,3}), so c
    # keeps filters 0-4 x inputs {0,1,3} = 15. fc reads c flattened, 64 features a
    # channel: c's filter 5 takes 64 of its 384 inputs: 10 x 320 = 3200.
    assert kept(out) == {"stem": 54, "a": 54, "b": 54, "c": 15, "fc": 3200}
    assert not out["c"][:, 2].any() and out["c"][:5, [0, 1, 3]].all()
    assert not out["fc"][:, 5 * 64 : 6 * 64].any() and out["fc"][:, : 5 * 64].all()
    profiles = {n: profile_mask(net.layer(n), m) for n, m in out.items()}
    assert effective_rate(profiles) == pytest.approx(4260 / 3377)
    # the smaller dense problems: rows x cols x 64 output positions (fc: one column)
    macs = {
        n: LayerTask(
            layer=net.layer(n),
            profile=p,
            variant="structured",
            weight_bits=8,
            index_bits=4,
            activation_bits=8,
        )
        .effective_gemm()
        .macs
        for n, p in profiles.items()
    }
    assert macs == {
        "stem": 2 * 27 * 64,
        "a": 3 * 18 * 64,
        "b": 2 * 27 * 64,
        "c": 5 * 3 * 64,
        "fc": 10 * 320,
    }
    # the given masks are left alone
    assert kept(block_masks(net)) == {"stem": 54, "a": 108, "b": 72, "c": 20, "fc": 3840}


def test_without_a_graph_nothing_cascades():
    flat = {k: v for k, v in BLOCK.items() if k != "joins"}
    flat["layers"] = [{k: v for k, v in d.items() if k != "inputs"} for d in BLOCK["layers"]]
    flat["layers"][3]["in_channels"] = 4
    net = network_from_dict(flat, "flat")
    assert net.graph is None
    assert kept(cascade_masks(net, block_masks(net))) == kept(block_masks(net))


def test_concat_joins_channels_in_order():
    net = network_from_dict(
        {
            "name": "cat",
            "layers": [
                conv("p", 3, 2, inputs=["input"]),
                conv("q", 3, 3, inputs=["input"]),
                conv("r", 5, 4, k=1, inputs=["cat"]),
            ],
            "joins": [{"name": "cat", "op": "concat", "inputs": ["p", "q"]}],
        },
        "cat",
    )
    masks = {"p": filters(net, "p", {1}), "q": filters(net, "q", {0}), "r": filters(net, "r", {})}
    out = cascade_masks(net, masks)
    # concat channels: p0 p1 q0 q1 q2 -> channels 1 and 2 are gone
    assert out["r"][:, [0, 3, 4]].all() and not out["r"][:, [1, 2]].any()
    assert kept(out)["r"] == 4 * 3


def test_grouped_and_depthwise_convs():
    net = network_from_dict(
        {
            "name": "groups",
            "layers": [
                conv("e", 3, 4, inputs=["input"]),
                conv("d", 4, 4, groups=4),
                conv("f", 4, 2, k=1),
                conv("g", 4, 4, groups=2, inputs=["e"]),
            ],
        },
        "groups",
    )
    masks = {n: filters(net, n, {}) for n in ("d", "f", "g")}
    masks["e"] = filters(net, "e", {0, 2})
    out = cascade_masks(net, masks)
    # depthwise d: channels 0 and 2 lose their only input, so those filters go, and
    # f loses those input channels in turn
    assert not out["d"][[0, 2]].any() and out["d"][[1, 3]].all()
    assert not out["f"][:, [0, 2]].any() and out["f"][:, [1, 3]].all()
    # g (2 groups of 2 channels): channel 0 is column 0 of group 0's filters (0, 1),
    # channel 2 column 0 of group 1's (2, 3): each filter keeps one of its 2 inputs
    assert kept(out)["g"] == 4 * 1 * 9
    assert not out["g"][:, 0].any() and out["g"][:, 1].all()


def test_generated_filter_masks_cascade_and_depthwise_follows_its_input():
    net = load_network("mobilenetv2")
    pruning = Pruning(structure="filter", density=0.25, seed=3)
    masks = network_masks(net, pruning)
    expand, dw, proj = "features.2.conv.0.0", "features.2.conv.1.0", "features.2.conv.2"
    gone = ~masks[expand].reshape(96, -1).any(1)
    # the expand conv keeps its share of filters at the density the fit solved
    solved = fit_cascade(net, pruning).densities[expand]
    assert gone.sum() == 96 - round(96 * solved)
    # the depthwise conv keeps exactly the channels its input keeps
    np.testing.assert_array_equal(~masks[dw].reshape(96, -1).any(1), gone)
    assert not masks[proj][:, gone].any()
    # cascaded or not, filter pruning at 4x keeps a quarter of the weights
    per_layer = network_masks(net, Pruning(structure="filter", density=0.25, seed=3, cascade=False))
    for made in (masks, per_layer):
        rate = sum(m.size for m in made.values()) / sum(kept(made).values())
        assert rate == pytest.approx(4, rel=0.01)


def test_residual_stream_of_transformers_is_tied_to_the_input():
    net = load_network("minilm_l6")
    masks = network_masks(net, Pruning(structure="filter", density=0.5))
    for i in range(6):
        p = f"encoder.layer.{i}"
        # the stream (embeddings) is never pruned: readers of it keep every column
        for reader in ("attention.self.query", "intermediate.dense"):
            assert masks[f"{p}.{reader}"].any(0).all()
        # intermediate.dense's removed neurons are output.dense's removed inputs
        np.testing.assert_array_equal(
            masks[f"{p}.output.dense"].any(0), masks[f"{p}.intermediate.dense"].any(1)
        )


@pytest.mark.parametrize("name", sorted(builtin_models()))
def test_every_builtin_model_has_a_graph(name):
    net = load_network(name)
    assert net.graph is not None
    assert sorted(net.graph.order) == sorted(layer.name for layer in net.layers)


def test_models_command_counts_the_joins(capsys):
    assert main(["models"]) == 0
    rows = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines()}
    # resnet50: 16 bottlenecks; resnet18: 8 blocks; mobilenetv2: 10 residual blocks;
    # bert_base: 2 residual adds in each of 12 layers; chains have none
    joins = {name: int(rows[name][5]) for name in ("resnet50", "resnet18", "mobilenetv2")}
    assert joins == {"resnet50": 16, "resnet18": 8, "mobilenetv2": 10}
    assert rows["bert_base"][5] == "24" and rows["vgg16"][5] == "0"


def test_chains_solve_to_the_square_root_of_the_rate():
    """On a chain, filter pruning that keeps a fraction d of the filters of every layer
    keeps about d^2 of the weights (d of the filters, d of their inputs): VGG-16 asked
    for rate r is drawn at filter density about 1/sqrt(r) and reaches r; per layer
    (``cascade=False``) the same density would reach about r^2 (1/d^2)."""
    net = load_network("vgg16")
    for r in (2, 4, 16):
        pruning = Pruning(structure="filter", density=1 / r)
        fit = fit_cascade(net, pruning)
        assert fit.factor == pytest.approx(math.sqrt(r), rel=0.01)
        assert fit.rate_asked == pytest.approx(r)
        assert fit.rate_reached == pytest.approx(r, rel=0.01)
        assert effective_rate(network_profiles(net, pruning)) == pytest.approx(fit.rate_reached)
        uncascaded = Pruning(structure="filter", density=1 / r, cascade=False)
        assert effective_rate(network_profiles(net, uncascaded)) == pytest.approx(r, rel=0.01)


def bad(doc, *expected):
    with pytest.raises(ConfigError) as e:
        network_from_dict(doc, "bad.yaml")
    msg = str(e.value)
    assert "bad.yaml" in msg
    for text in expected:
        assert text in msg, msg
    return msg


def block_with(**layer_keys):
    """BLOCK with some keys of its layers changed: ``a={"in_channels": 5}``."""
    doc = copy.deepcopy(BLOCK)
    for d in doc["layers"]:
        d.update(layer_keys.get(d["name"], {}))
    return doc


def test_graph_problems_are_all_reported_with_their_key_paths():
    doc = block_with(stem={"inputs": ["nope"]}, c={"inputs": ["add", "a"]})
    doc["joins"] = [
        {"name": "add", "op": "add", "inputs": ["b"]},
        {"name": "a", "op": "concat", "inputs": ["a", "b"]},
    ]
    bad(
        doc,
        "layers[0] (stem).inputs: no layer or join named 'nope'",
        "layers[3] (c).inputs: a conv2d layer reads one node, got 2",
        "joins[0] (add).inputs: a join needs at least two inputs",
        "'a' is already a layer's or join's name",
    )


def test_graph_channel_counts_are_checked():
    doc = block_with(a={"in_channels": 5}, b={"out_channels": 3}, fc={"in_features": 385})
    doc["layers"] += [
        {"name": "fc2", "type": "linear", "in_features": 20, "out_features": 10},
        conv("d", 8, 2, k=1, inputs=["cat"]),
    ]
    doc["joins"].append({"name": "cat", "op": "concat", "inputs": ["stem", "b"]})
    bad(
        doc,
        "layers[1] (a).inputs: 'stem' gives 4 channels, in_channels is 5",
        "joins[0] (add).inputs: add of unequal widths ('b': 3, 'stem': 4)",
        "layers[3] (c).inputs: 'add' gives 3 channels, in_channels is 4",
        "layers[4] (fc).inputs: 'c' gives 6 channels, in_features is 385, not a multiple",
        "layers[5] (fc2).inputs: 'fc' gives 10 features, in_features is 20",
        "layers[6] (d).inputs: 'cat' gives 7 channels, in_channels is 8",
    )


def test_graph_cycles_reserved_names_and_unknown_keys():
    layers = [conv("a", 4, 4, inputs=["b"]), conv("b", 4, 4), conv("c", 4, 4)]
    msg = bad({"name": "c", "layers": layers}, "the graph has a cycle through 'a', 'b'")
    assert "'c'" not in msg  # c only reads from the cycle
    reserved = {"name": "r", "layers": [conv("input", 3, 4, inputs=["input"])]}
    bad(reserved, "'input' is the network's input")
    typo = {**BLOCK, "joins": [{"name": "add", "op": "mul", "inputs": ["b", "stem"], "x": 1}]}
    bad(typo, "joins[0]: unknown key(s) x", "joins[0].op")
    self_read = {"name": "s", "layers": [conv("a", 4, 4, inputs=["a"])]}
    bad(self_read, "layers[0] (a).inputs: a node cannot read itself")


# --- ONNX --------------------------------------------------------------------------


def _onnx_model(path, broadcast: bool = False):
    """stem conv -> relu -> conv a -> conv b; add(b, relu(stem)); depthwise conv d;
    concat(d, stem); flatten; Gemm fc. Filters 2 and 3 of stem and 0 of b are zero.
    With ``broadcast``, the add takes a one-channel conv of a instead of the stem
    (ONNX broadcasts it over b's 4 channels)."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)

    def weight(name, shape, zero=()):
        w = rng.normal(size=shape).astype(np.float32)
        w[list(zero)] = 0
        return numpy_helper.from_array(w, name)

    inits = [
        weight("stem.weight", (4, 3, 3, 3), zero=(2, 3)),
        weight("a.weight", (4, 4, 3, 3)),
        weight("b.weight", (4, 4, 3, 3), zero=(0,)),
        weight("d.weight", (4, 1, 3, 3)),
        weight("fc.weight", (10, 8 * 64)),
        weight("e.weight", (1, 4, 3, 3)),
    ]
    pads = {"pads": [1, 1, 1, 1]}
    nodes = [
        helper.make_node("Conv", ["x", "stem.weight"], ["s"], name="/stem/Conv", **pads),
        helper.make_node("Relu", ["s"], ["sr"], name="/relu/Relu"),
        helper.make_node("Conv", ["sr", "a.weight"], ["a"], name="/a/Conv", **pads),
        helper.make_node("Conv", ["a", "b.weight"], ["b"], name="/b/Conv", **pads),
        helper.make_node("Conv", ["a", "e.weight"], ["e"], name="/e/Conv", **pads),
        helper.make_node("Add", ["b", "e" if broadcast else "sr"], ["sum"], name="/add/Add"),
        helper.make_node("Conv", ["sum", "d.weight"], ["d"], name="/d/Conv", group=4, **pads),
        helper.make_node("Concat", ["d", "s"], ["cat"], name="/cat/Concat", axis=1),
        helper.make_node("Flatten", ["cat"], ["flat"], name="/flatten/Flatten"),
        helper.make_node("Gemm", ["flat", "fc.weight"], ["y"], name="/fc/Gemm", transB=1),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.save(model, path)
    return path


def test_onnx_graph_is_traced_through_adds_concats_and_flatten(tmp_path):
    from simulator.checkpoints import read_checkpoint

    ck = read_checkpoint(_onnx_model(tmp_path / "res.onnx"))
    g = ck.network.graph
    assert g is not None, ck.warnings
    sources = dict(g.sources)
    assert sources == {
        "stem": ("input",),
        "a": ("stem",),
        "b": ("a",),
        "e": ("a",),
        "d": ("add.Add",),
        "fc": ("cat.Concat",),
    }
    joins = {j.name: (j.op, j.inputs) for j in g.joins}
    assert joins == {"add.Add": ("add", ("b", "stem")), "cat.Concat": ("concat", ("d", "stem"))}
    # the file's zero filters, cascaded: a loses inputs 2 and 3; the add loses no
    # channel (b lost 0, the stem 2 and 3), so d keeps all; the concat's channels 4 + 2
    # and 4 + 3 (the stem's) are gone, 64 features each in fc
    out = cascade_masks(ck.network, ck.masks())
    assert kept(out)["a"] == 4 * 2 * 9
    assert kept(out)["d"] == 4 * 9
    assert not out["fc"][:, 6 * 64 :].any() and out["fc"][:, : 6 * 64].all()


def test_onnx_graph_that_does_not_hold_is_dropped_with_a_warning(tmp_path):
    from simulator.checkpoints import read_checkpoint

    ck = read_checkpoint(_onnx_model(tmp_path / "b.onnx", broadcast=True))
    assert ck.network.graph is None
    assert any("add of unequal widths" in w and "per layer" in w for w in ck.warnings)
    masks = ck.masks()
    assert kept(cascade_masks(ck.network, masks)) == kept(masks)


# --- CLI -----------------------------------------------------------------------------


def _storage_json(capsys, tmp_path, *extra):
    out = tmp_path / "s.json"
    args = ["storage", "resnet18", "--structure", "filter", "--rate", "4", "--format", "compact"]
    code = main([*args, "--totals", "--json", str(out), *extra])
    capsys.readouterr()
    assert code == 0
    return json.loads(out.read_text())


def test_cli_no_cascade_gives_per_layer_arithmetic(capsys, tmp_path):
    doc = _storage_json(capsys, tmp_path, "--no-cascade")
    net = load_network("resnet18")
    by_layer = {r["layer"]: r for r in doc["storage"]}
    for layer in net.prunable_layers:
        k = layer.weight_shape[0]
        per_filter = layer.weight_count // k
        assert by_layer[layer.name]["nnz"] == round(k / 4) * per_filter, layer.name
    (info,) = doc["networks"]
    assert info["cascaded"] is False
    expected = net.weight_count / sum(
        round(layer.weight_shape[0] / 4) * layer.weight_count // layer.weight_shape[0]
        for layer in net.prunable_layers
    )
    assert info["effective_rate"] == pytest.approx(expected)
    assert doc["totals"][0]["effective_rate"] == pytest.approx(expected)

    cascaded = _storage_json(capsys, tmp_path)
    (info2,) = cascaded["networks"]
    assert info2["cascaded"] is True
    assert info2["effective_rate"] == pytest.approx(4, rel=0.01)
    be = {r["layer"]: r for r in cascaded["breakeven"]}
    assert be["(network)"]["structured_effective_rate"] == pytest.approx(info2["effective_rate"])


def test_cli_estimate_shows_the_effective_rate(capsys, tmp_path):
    path = tmp_path / "block.yaml"
    path.write_text(yaml.safe_dump(BLOCK))
    out = tmp_path / "e.json"
    args = ["estimate", str(path), "--platform", "a100", "--rate", "2", "--totals"]
    assert main([*args, "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "PE util  rate" in text
    doc = json.loads(out.read_text())
    assert doc["networks"][0]["cascaded"] is True
    rates = {r["variant"]: r["effective_rate"] for r in doc["totals"]}
    assert rates["dense"] == 1 and rates["sparse"] == pytest.approx(2, rel=0.01)
    # whole filters of a small block: the nearest to 2x the cascade can reach
    fit = fit_cascade(network_from_dict(BLOCK, "block"), Pruning(structure="filter", density=0.5))
    assert rates["structured"] == pytest.approx(fit.rate_reached)
    assert main([*args, "--no-cascade", "--json", str(out)]) == 0
    capsys.readouterr()
    doc = json.loads(out.read_text())
    rates = {r["variant"]: r["effective_rate"] for r in doc["totals"]}
    # per layer: stem keeps 2 of 4 filters, a and b 2 of 4, c 3 of 6, fc 5 of 10
    assert rates["structured"] == pytest.approx(2.0)
    assert doc["networks"][0]["cascaded"] is False
    assert not math.isnan(rates["nm"])


def test_cli_checkpoint_filter_masks_cascade(capsys, tmp_path):
    """A filter-pruned checkpoint's own masks cascade like generated ones."""
    from pathlib import Path

    from simulator.checkpoints import read_checkpoint

    fixture = Path(__file__).parent / "fixtures" / "lenet5_filter.safetensors"
    net = load_network("lenet5")
    masks = read_checkpoint(fixture, network=net).masks()
    weights = sum(m.size for m in masks.values())
    own = weights / sum(kept(masks).values())
    cascaded = weights / sum(kept(cascade_masks(net, masks)).values())
    assert cascaded > own
    out = tmp_path / "e.json"
    for extra, rate in (([], cascaded), (["--no-cascade"], own)):
        args = ["estimate", "lenet5", "--checkpoint", str(fixture), "--platform", "a100"]
        assert main([*args, "--totals", "--json", str(out), *extra]) == 0
        capsys.readouterr()
        doc = json.loads(out.read_text())
        assert doc["networks"][0]["checkpoint_variant"] == "structured"
        got = {r["variant"]: r["effective_rate"] for r in doc["totals"]}
        assert got["structured"] == pytest.approx(rate)
        assert got["sparse"] == pytest.approx(rate, rel=0.01)  # at the same kept weights
