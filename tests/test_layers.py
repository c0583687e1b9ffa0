"""Layer geometry and GEMM view, against numbers computed by hand in the comments."""

from __future__ import annotations

import pytest

from simulator.errors import LayerError
from simulator.layers import Conv2d, GemmView, Linear, MatMul


def conv(**kw) -> Conv2d:
    base = dict(name="c", in_channels=3, out_channels=64, kernel_hw=(7, 7), input_hw=(224, 224))
    return Conv2d(**(base | kw))


def test_resnet_stem_conv():
    # 3 -> 64, 7x7 /2, padding 3 on 224x224: (224 + 6 - 6 - 1) // 2 + 1 = 112
    c = conv(stride_hw=(2, 2), padding_hw=(3, 3))
    assert c.output_hw == (112, 112)
    assert c.weight_shape == (64, 3, 7, 7)
    assert c.weight_count == 64 * 3 * 49 == 9408
    assert c.gemm == GemmView(groups=1, rows=64, cols=147, n_cols=112 * 112)
    assert c.macs == 64 * 147 * 12544 == 118_013_952
    assert c.input_count == 3 * 224 * 224 == 150_528
    assert c.output_count == 64 * 112 * 112 == 802_816


@pytest.mark.parametrize(
    ("kw", "out"),
    [
        # no padding: 32 - 3 + 1 = 30
        (dict(kernel_hw=(3, 3), input_hw=(32, 32)), (30, 30)),
        # dilation 2 makes a 3x3 kernel span 5: 32 - 5 + 1 = 28
        (dict(kernel_hw=(3, 3), input_hw=(32, 32), dilation_hw=(2, 2)), (28, 28)),
        # stride 2, 'same' padding 1: (32 + 2 - 3) // 2 + 1 = 16
        (dict(kernel_hw=(3, 3), input_hw=(32, 32), stride_hw=(2, 2), padding_hw=(1, 1)), (16, 16)),
        # AlexNet conv1: 11x11 /4 on 227: (227 - 11) // 4 + 1 = 55
        (dict(kernel_hw=(11, 11), input_hw=(227, 227), stride_hw=(4, 4)), (55, 55)),
        # floor: 224 with 11x11 /4 gives (224 - 11) // 4 + 1 = 54 (213 / 4 = 53.25)
        (dict(kernel_hw=(11, 11), input_hw=(224, 224), stride_hw=(4, 4)), (54, 54)),
        # asymmetric everything: h (10 + 2 - 2 - 1) // 2 + 1 = 5,
        # w (20 + 4 - 2*4 - 1) // 3 + 1 = 6
        (
            dict(
                kernel_hw=(3, 5),
                input_hw=(10, 20),
                stride_hw=(2, 3),
                padding_hw=(1, 2),
                dilation_hw=(1, 2),
            ),
            (5, 6),
        ),
        # kernel equal to the input: a single output
        (dict(kernel_hw=(7, 7), input_hw=(7, 7)), (1, 1)),
    ],
)
def test_conv_output_size(kw, out):
    assert conv(**kw).output_hw == out


def test_grouped_conv_alexnet_conv2():
    # Caffe AlexNet conv2: 96 -> 256, 5x5, pad 2, 2 groups on 27x27
    c = conv(
        in_channels=96,
        out_channels=256,
        kernel_hw=(5, 5),
        input_hw=(27, 27),
        padding_hw=(2, 2),
        groups=2,
    )
    assert c.output_hw == (27, 27)
    assert c.weight_shape == (256, 48, 5, 5)
    assert c.weight_count == 307_200
    assert c.gemm == GemmView(groups=2, rows=128, cols=48 * 25, n_cols=729)
    assert c.macs == 2 * 128 * 1200 * 729 == 223_948_800


def test_depthwise_conv():
    # MobileNet-V2 features.1: depthwise 3x3 on 32 x 112 x 112, padding 1
    c = conv(
        in_channels=32,
        out_channels=32,
        kernel_hw=(3, 3),
        input_hw=(112, 112),
        padding_hw=(1, 1),
        groups=32,
    )
    assert c.weight_shape == (32, 1, 3, 3)
    assert c.weight_count == 288
    assert c.gemm == GemmView(groups=32, rows=1, cols=9, n_cols=112 * 112)
    assert c.macs == 32 * 9 * 12544 == 3_612_672
    # depthwise with channel multiplier 2: 32 -> 64, each group 2 rows
    c2 = conv(in_channels=32, out_channels=64, kernel_hw=(3, 3), input_hw=(8, 8), groups=32)
    assert c2.gemm == GemmView(groups=32, rows=2, cols=9, n_cols=36)


def test_conv_batch_scales_activations_and_macs():
    one = conv(kernel_hw=(3, 3), input_hw=(10, 10), padding_hw=(1, 1))
    four = conv(kernel_hw=(3, 3), input_hw=(10, 10), padding_hw=(1, 1), batch=4)
    assert four.gemm.n_cols == 4 * 100
    assert four.macs == 4 * one.macs == 4 * 64 * 27 * 100
    assert four.input_count == 4 * 3 * 100
    assert four.output_count == 4 * 64 * 100
    assert four.weight_count == one.weight_count == 64 * 27


def test_linear():
    # BERT-base intermediate.dense: 768 -> 3072 on 128 tokens, batch 2
    fc = Linear(name="fc", in_features=768, out_features=3072, tokens=128, batch=2)
    assert fc.weight_shape == (3072, 768)
    assert fc.weight_count == 2_359_296
    assert fc.gemm == GemmView(groups=1, rows=3072, cols=768, n_cols=256)
    assert fc.macs == 3072 * 768 * 256 == 603_979_776
    assert fc.input_count == 2 * 128 * 768 == 196_608
    assert fc.output_count == 2 * 128 * 3072 == 786_432
    assert fc.prunable
    # a classifier on one image: MACs == weights
    fc8 = Linear(name="fc8", in_features=4096, out_features=1000)
    assert fc8.macs == fc8.weight_count == 4_096_000


def test_matmul():
    # BERT-base attention scores: 12 heads of (128 x 64) @ (64 x 128)
    mm = MatMul(name="scores", m=128, k=64, n=128, heads=12)
    assert mm.weight_shape == ()
    assert mm.weight_count == 0
    assert not mm.prunable
    assert mm.gemm == GemmView(groups=12, rows=128, cols=64, n_cols=128)
    assert mm.macs == 12 * 128 * 64 * 128 == 12_582_912
    assert mm.input_count == 12 * (128 * 64 + 64 * 128) == 196_608
    assert mm.output_count == 12 * 128 * 128 == 196_608
    assert MatMul(name="x", m=2, k=3, n=4, heads=5, batch=6).macs == 6 * 5 * 2 * 3 * 4


@pytest.mark.parametrize(
    ("kw", "fragment"),
    [
        (dict(in_channels=0), "in_channels=0"),
        (dict(out_channels=-8), "out_channels=-8"),
        (dict(kernel_hw=(0, 3)), "kernel_h=0"),
        (dict(input_hw=(224, 0)), "input_w=0"),
        (dict(stride_hw=(0, 1)), "stride_h=0"),
        (dict(dilation_hw=(1, 0)), "dilation_w=0"),
        (dict(batch=0), "batch=0"),
        (dict(groups=0), "groups=0"),
        (dict(padding_hw=(-1, 0)), "padding"),
        (dict(in_channels=6, out_channels=8, groups=4), "does not divide in_channels=6"),
        (dict(in_channels=8, out_channels=6, groups=4), "does not divide out_channels=6"),
        (dict(kernel_hw=(5, 5), input_hw=(3, 3)), "empty output"),
        (dict(kernel_hw=(3, 3), input_hw=(5, 5), dilation_hw=(3, 3)), "empty output"),
        (dict(in_channels=3.0), "in_channels=3.0"),
    ],
)
def test_conv_invalid_geometry(kw, fragment):
    with pytest.raises(LayerError, match=fragment) as err:
        conv(**kw)
    assert "'c'" in str(err.value)  # names the layer


def test_conv_error_lists_every_bad_size():
    with pytest.raises(LayerError) as err:
        conv(in_channels=0, kernel_hw=(3, -1), batch=0)
    for fragment in ("in_channels=0", "kernel_w=-1", "batch=0"):
        assert fragment in str(err.value)


@pytest.mark.parametrize(
    ("cls", "kw"),
    [
        (Linear, dict(in_features=0, out_features=10)),
        (Linear, dict(in_features=10, out_features=-1)),
        (Linear, dict(in_features=10, out_features=10, tokens=0)),
        (MatMul, dict(m=0, k=1, n=1)),
        (MatMul, dict(m=1, k=1, n=1, heads=0)),
        (MatMul, dict(m=1, k=1, n=1, batch=-2)),
    ],
)
def test_linear_and_matmul_invalid_sizes(cls, kw):
    with pytest.raises(LayerError, match="positive"):
        cls(name="x", **kw)


def test_conv_float_padding_rejected():
    with pytest.raises(LayerError):
        conv(kernel_hw=(3, 3), input_hw=(8, 8), padding_hw=(1.0, 1.0))
