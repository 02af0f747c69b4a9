"""Tests of the per-unit profiler."""

import dataclasses

import keras
import pytest

from localgrad import GreedyModel, Network, UserError, models
from localgrad.profile import UnitProfile, format_profile, profile

WIDTH = 0.125


@pytest.fixture(scope="module")
def vgg():
    return models.build("vgg11", (32, 32, 3), 10, width=WIDTH)


@pytest.fixture(scope="module")
def resnet():
    return models.build("resnet18", (16, 16, 3), 10, width=WIDTH)


@pytest.mark.parametrize("name", ["mlp", "vgg11", "resnet18", "resnet50"])
def test_unit_params_add_up_to_the_network(name):
    net = models.build(name, (16, 16, 3), 10, width=WIDTH)
    rows = profile(net)
    assert [row.name for row in rows] == net.unit_names
    assert [row.output_shape for row in rows] == net.unit_output_shapes
    total = sum(row.params for row in rows) + net.classifier.count_params()
    assert total == net.count_params()


def test_dense_unit_flops_are_exact():
    net = models.build("mlp", (28, 28, 1), 10, width=WIDTH)
    hidden = int(1024 * WIDTH)
    rows = profile(net, batch_size=3)
    assert rows[0].flops == 2 * 28 * 28 * hidden * 3
    assert rows[1].flops == 2 * hidden * hidden * 3


def test_conv_unit_flops_follow_the_formula(vgg):
    rows = profile(vgg, batch_size=2)
    # unit_00: 3×3 conv, 3 -> 8 channels, on 32×32; unit_01 8 -> 16 on 16×16.
    assert rows[0].flops == 2 * (32 * 32 * 8) * (3 * 3 * 3) * 2
    assert rows[1].flops == 2 * (16 * 16 * 16) * (3 * 3 * 8) * 2


def test_residual_unit_flops_follow_the_formula(resnet):
    rows = profile(resnet)
    # unit_00: stem 3×3 3 -> 8, then two 3×3 8 -> 8, all on 16×16.
    assert rows[0].flops == 2 * 16 * 16 * 8 * (27 + 2 * 72)
    # unit_02: 3×3 stride 2 8 -> 16, 3×3 16 -> 16, 1×1 shortcut 8 -> 16, 8×8.
    assert rows[2].flops == 2 * 8 * 8 * 16 * (72 + 144 + 8)


def test_input_shape_overrides_the_example_shape(vgg):
    small = profile(vgg)
    large = profile(vgg, input_shape=(64, 64, 3))
    # vgg11's first unit hands on its map before the pool that opens
    # the second; the last unit's map is before the classifier's pool.
    assert small[0].output_shape == (32, 32, 8)
    assert large[0].output_shape == (64, 64, 8)
    assert large[-1].output_shape == (4, 4, 64)
    assert [b.flops for b in large] == [4 * a.flops for a in small]


@pytest.mark.parametrize("name", ["vgg11", "resnet18"])
def test_activation_bytes_are_linear_in_the_batch(name, vgg, resnet):
    net = vgg if name == "vgg11" else resnet
    one = profile(net, batch_size=1)
    five = profile(net, batch_size=5)
    for a, b in zip(one, five):
        assert a.activation_bytes > 0
        assert b.activation_bytes == 5 * a.activation_bytes
        assert b.flops == 5 * a.flops
        assert b.params == a.params


def test_activation_bytes_cover_the_units_outputs(vgg):
    rows = profile(vgg, batch_size=4)
    for row in rows:
        output_bytes = 4 * 4
        for side in row.output_shape:
            output_bytes *= side
        assert row.activation_bytes > output_bytes


def test_vgg_early_units_hold_more_activations(vgg):
    rows = profile(vgg, batch_size=8)
    assert rows[0].activation_bytes > rows[-1].activation_bytes
    assert rows[1].activation_bytes > rows[-2].activation_bytes


def test_format_profile_lists_every_unit(resnet):
    rows = profile(resnet, batch_size=2)
    table = format_profile(rows)
    lines = table.splitlines()
    assert len(lines) == len(rows) + 2
    assert lines[0].split()[0] == "unit"
    for row, line in zip(rows, lines[1:]):
        assert line.startswith(row.name)
        assert f"{row.params:,}" in line
    total = sum(row.params for row in rows)
    assert lines[-1].startswith("total") and f"{total:,}" in lines[-1]


def test_profiles_are_frozen(resnet):
    row = profile(resnet)[0]
    assert isinstance(row, UnitProfile)
    with pytest.raises(dataclasses.FrozenInstanceError):
        row.flops = 0


@pytest.mark.parametrize("batch_size", [0, -2, 1.5])
def test_bad_batch_size_is_rejected(batch_size, resnet):
    with pytest.raises(ValueError, match="batch_size"):
        profile(resnet, batch_size=batch_size)


def _one_unit(layers, input_shape):
    """A network whose one unit is `layers` on `input_shape`."""
    unit = keras.Sequential(layers, name="unit")
    classifier = keras.Sequential(
        [keras.layers.Flatten(), keras.layers.Dense(2)]
    )
    return Network([unit], classifier, input_shape)


def test_keras_applications_layers_are_counted_by_hand():
    # What keras.applications' families use, on 4×4×8 maps: a Dense on a
    # 4-D map (ConvNeXt), a depthwise and a separable convolution
    # (MobileNet, Xception), LayerNormalization, a squeeze-and-excite
    # scaling (EfficientNet, MobileNetV3): only convolutions and Dense
    # layers multiply-accumulate.
    inputs = keras.Input((4, 4, 8))
    dense = keras.layers.Dense(16)(inputs)  # 4·4 positions × 8 × 16
    depthwise = keras.layers.DepthwiseConv2D(3, padding="same")(dense)
    separable = keras.layers.SeparableConv2D(12, 3, padding="same")(
        keras.layers.LayerNormalization()(depthwise)
    )
    squeeze = keras.layers.Dense(12, activation="sigmoid")(
        keras.layers.GlobalAveragePooling2D(keepdims=True)(separable)
    )
    outputs = keras.layers.Multiply()([separable, squeeze])
    unit = keras.Model(inputs, outputs, name="unit")
    network = Network([unit], keras.layers.Flatten(), (4, 4, 8))
    (row,) = profile(network, batch_size=3)
    macs = (
        16 * 8 * 16  # Dense 8 -> 16 at each of 16 positions
        + 16 * 16 * 9  # depthwise 3×3 on 16 channels
        + 16 * 16 * 9  # separable: depthwise 3×3 on 16 channels,
        + 16 * 12 * 16  # then pointwise 16 -> 12
        + 12 * 12  # squeeze-and-excite's Dense on the pooled 1×1 map
    )
    assert row.flops == 2 * macs * 3
    assert row.output_shape == (4, 4, 12)


def test_an_op_it_cannot_count_is_refused_naming_it():
    network = _one_unit([keras.layers.Conv3D(4, 3)], (4, 4, 4, 2))
    with pytest.raises(UserError, match=r"\(Conv3D\) does multiply-acc"):
        profile(network)


def test_a_wrapped_convnext_balances_by_compute():
    # Its Dense layers on 4-D maps made the profiler fail (TypeError).
    convnext = keras.applications.ConvNeXtTiny(
        weights=None, input_shape=(32, 32, 3), classes=10
    )
    network = Network.from_functional(convnext)
    rows = profile(network)
    model = GreedyModel(network, num_blocks=2, balance="compute")
    (cut,) = model.boundaries
    flops = [row.flops for row in rows]
    # The cut that best balances the two blocks' FLOPs.
    assert cut == min(
        range(1, len(flops)),
        key=lambda k: max(sum(flops[:k]), sum(flops[k:])),
    )
