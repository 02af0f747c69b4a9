"""Tests of the model registry and its unit layers."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

import localgrad
from localgrad import models

UNIT_COUNTS = {
    "mlp": 4,
    "vgg11": 8,
    "vgg13": 10,
    "vgg16": 13,
    "vgg19": 16,
    "resnet18": 8,
    "resnet34": 16,
    "resnet50": 16,
    "resnet101": 33,
    "resnet152": 50,
    "resnet20": 10,
    "resnet32": 16,
    "cnn_al": 4,
    "vgg_al": 4,
}
WIDTH = 0.125


def _images(batch, shape, seed=0):
    return np.random.default_rng(seed).random((batch,) + shape, "float32")


def _gradients(net, images, labels):
    with tf.GradientTape() as tape:
        logits = net(images, training=True)
        loss = keras.losses.sparse_categorical_crossentropy(
            labels, logits, from_logits=True
        )
    return logits, tape.gradient(loss, net.trainable_variables)


def test_model_names_are_the_documented_ones():
    assert sorted(models.MODEL_NAMES) == sorted(UNIT_COUNTS)


@pytest.mark.parametrize("name", sorted(UNIT_COUNTS))
def test_every_model_trains_one_step(name):
    shape = (32, 32, 3)
    net = models.build(name, shape, 7, width=WIDTH)
    assert isinstance(net, localgrad.Network)
    assert net.architecture == name
    assert net.num_units == UNIT_COUNTS[name]
    assert net.unit_names == [f"unit_{i:02d}" for i in range(net.num_units)]
    logits, grads = _gradients(net, _images(4, shape), np.arange(4) % 7)
    assert logits.shape == (4, 7)
    for variable, grad in zip(net.trainable_variables, grads):
        assert grad is not None, variable.path
        assert float(tf.reduce_max(tf.abs(grad))) > 0, variable.path


@pytest.mark.parametrize("name", ["vgg19", "resnet18", "mlp"])
def test_grey_28x28_images(name):
    net = models.build(name, (28, 28, 1), 10, width=WIDTH)
    logits = net(_images(2, (28, 28, 1)))
    assert logits.shape == (2, 10)
    assert np.all(np.isfinite(logits))


def test_resnet_stem_depends_on_input_size():
    small = models.build("resnet18", (32, 32, 3), 10, width=WIDTH)
    large = models.build("resnet18", (64, 64, 3), 10, width=WIDTH)
    assert small.units[0].stem.kind == "cifar"
    assert large.units[0].stem.kind == "imagenet"
    assert small.unit_output_shapes[0] == (32, 32, 8)
    assert large.unit_output_shapes[0] == (16, 16, 8)
    assert large.unit_output_shapes[-1] == (2, 2, 64)
    assert all(unit.stem is None for unit in large.units[1:])
    logits, grads = _gradients(large, _images(2, (64, 64, 3)), np.array([0, 1]))
    assert logits.shape == (2, 10)
    assert all(float(tf.reduce_max(tf.abs(g))) > 0 for g in grads)


def test_vgg_classifier_depends_on_input_size():
    small = models.build("vgg11", (32, 32, 3), 10, width=1 / 64)
    large = models.build("vgg11", (64, 64, 3), 10, width=1 / 64)
    small_dense = [
        layer
        for layer in small.classifier.layers
        if isinstance(layer, keras.layers.Dense)
    ]
    large_dense = [
        layer
        for layer in large.classifier.layers
        if isinstance(layer, keras.layers.Dense)
    ]
    assert [layer.units for layer in small_dense] == [10]
    assert [layer.units for layer in large_dense] == [64, 64, 10]
    assert (
        sum(
            isinstance(layer, keras.layers.Dropout)
            for layer in large.classifier.layers
        )
        == 2
    )
    # The ImageNet classifier pools the last unit's 4×4×8 map (after 4
    # pools of 64) and flattens 2×2×8.
    assert large.unit_output_shapes[-1] == (4, 4, 8)
    assert isinstance(large.classifier.layers[0], keras.layers.MaxPooling2D)
    assert large_dense[0].kernel.shape == (2 * 2 * 8, 64)


def test_vgg_max_pools_open_the_units_after_them():
    net = models.build("vgg19", (32, 32, 3), 10, width=WIDTH)
    # "64 64 M 128 128 M 256 256 256 256 M 512 ... M 512 ... M": the
    # units after a pool are 2, 4, 8 and 12; the last pool opens the
    # classifier.
    pooled = [unit.pool_first for unit in net.units]
    assert [i for i, p in enumerate(pooled) if p] == [2, 4, 8, 12]
    assert net.num_units == 16
    # A unit before a pool hands on its map before pooling.
    assert net.unit_output_shapes[1] == (32, 32, 8)
    assert net.unit_output_shapes[2] == (16, 16, 16)
    assert net.unit_output_shapes[3] == (16, 16, 16)
    assert net.unit_output_shapes[-1] == (2, 2, 64)
    layer = net.classifier.layers[0]
    assert isinstance(layer, keras.layers.MaxPooling2D)
    assert net(_images(2, (32, 32, 3))).shape == (2, 10)


def test_vgg_unit_with_a_pool_pools_then_convolves():
    unit = models.ConvBNReLU(2, pool_first=True)
    images = _images(1, (4, 4, 1))
    out = unit(images, training=False)
    assert out.shape == (1, 2, 2, 2)
    # By hand: max over each 2×2 window, then the 3×3 conv ("same"), then
    # BN at its initial statistics (x / sqrt(1 + 1e-5)) and ReLU.
    pooled = images[0, :, :, 0].reshape(2, 2, 2, 2).max(axis=(1, 3))
    padded = np.pad(pooled, 1)
    kernel = np.asarray(unit.conv.kernel)[:, :, 0, :]
    want = np.zeros((2, 2, 2))
    for i in range(2):
        for j in range(2):
            window = padded[i : i + 3, j : j + 3, None]
            want[i, j] = np.sum(window * kernel, axis=(0, 1))
    want = np.maximum(want / np.sqrt(1 + 1e-5), 0)
    np.testing.assert_allclose(out[0], want, rtol=1e-5, atol=1e-6)


class _DenseThenReLU(models.ChainedUnit):
    def __init__(self, features, **kwargs):
        super().__init__(**kwargs)
        self.dense = keras.layers.Dense(features)

    def _chain(self):
        return [self.dense]

    def call(self, inputs):
        return keras.ops.relu(self.dense(inputs))


def test_a_chained_unit_builds_and_shapes_from_its_chain():
    unit = _DenseThenReLU(3)
    assert unit.compute_output_shape((None, 5)) == (None, 3)
    unit.build((None, 5))
    assert unit.dense.built and unit.dense.kernel.shape == (5, 3)
    stem = models.ResNetStem(4, kind="imagenet")
    assert stem.compute_output_shape((2, 32, 32, 3)) == (2, 8, 8, 4)
    assert stem(tf.zeros((2, 32, 32, 3))).shape == (2, 8, 8, 4)


def test_a_chained_unit_without_a_chain_names_itself():
    class Forgetful(models.ChainedUnit):
        def call(self, inputs):
            return inputs

    with pytest.raises(NotImplementedError, match="Forgetful must list"):
        Forgetful().build((None, 5))


@pytest.mark.parametrize("width", [0.25, 0.5, 0.001])
def test_width_scales_every_count(width):
    mlp = models.build("mlp", (8, 8, 1), 3, width=width)
    resnet = models.build("resnet50", (32, 32, 3), 3, width=width)
    hidden = max(1, int(1024 * width))
    assert mlp.unit_output_shapes == [(hidden,)] * 4
    stem_filters = max(1, int(64 * width))
    assert resnet.units[0].stem.filters == stem_filters
    assert resnet.unit_output_shapes[-1][-1] == 4 * max(1, int(512 * width))


def test_residual_unit_returns_its_branch():
    net = models.build("resnet18", (16, 16, 3), 10, width=WIDTH)
    identity_unit, projection_unit = net.units[1], net.units[2]
    assert identity_unit.is_residual and not models.ConvBNReLU.is_residual
    inputs = tf.nn.relu(tf.random.normal((2,) + net.unit_output_shapes[0]))
    outputs, residual = identity_unit(inputs, return_residual=True)
    np.testing.assert_allclose(
        outputs, tf.nn.relu(inputs + residual), rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(outputs, identity_unit(inputs), atol=1e-6)
    assert float(tf.reduce_mean(tf.square(residual))) > 0
    outputs, residual = projection_unit(inputs, return_residual=True)
    assert outputs.shape == residual.shape == (2, 8, 8, 16)


@pytest.mark.parametrize("side", [7, 8])
def test_projection_shortcut_equals_a_strided_1x1_conv(side):
    block = models.BasicBlock(6, strides=2)
    inputs = tf.random.normal((2, side, side, 4))
    outputs, residual = block(inputs, return_residual=True)
    assert outputs.shape == residual.shape == (2, 4, 4, 6)
    strided = tf.nn.conv2d(inputs, block.shortcut_conv.kernel, 2, "SAME")
    expected = tf.nn.relu(block.shortcut_bn(strided) + residual)
    np.testing.assert_allclose(outputs, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", ["resnet18", "resnet50", "vgg11", "mlp"])
def test_save_and_load_give_identical_outputs(name, tmp_path):
    shape = (64, 64, 3) if name == "resnet18" else (32, 32, 3)
    net = models.build(name, shape, 5, width=WIDTH)
    images = _images(3, shape)
    net(images, training=True)  # Moves the batch-norm statistics.
    path = str(tmp_path / f"{name}.keras")
    net.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, localgrad.Network)
    assert loaded.architecture == name
    assert loaded.unit_names == net.unit_names
    assert loaded.light_head_reduction == net.light_head_reduction
    assert [type(u) for u in loaded.units] == [type(u) for u in net.units]
    np.testing.assert_array_equal(loaded(images), net(images))


@pytest.mark.parametrize(
    "name,reduction",
    [("resnet18", 1), ("resnet34", 1), ("resnet50", 4), ("vgg11", 4)],
)
def test_light_heads_narrow_as_the_authors_did(name, reduction):
    # The authors' light heads keep P = C channels after ResNet-18/34's
    # basic blocks and P = C / 4 elsewhere (methods.md §2), in trained
    # models and in the search's candidates alike.
    net = models.build(name, (32, 32, 3), 10, width=WIDTH)
    assert net.light_head_reduction == reduction
    model = localgrad.GreedyModel(net, boundaries=[2], heads="light2")
    supernet = localgrad.search.RelaxedSupernet(net, heads=["light1"])
    channels = net.unit_output_shapes[1][-1]
    assert model.heads[0].reduce.filters == channels // reduction
    assert supernet.candidate_heads[1][0].reduce.filters == (
        channels // reduction
    )


@pytest.mark.numerics
@pytest.mark.parametrize("mode", ["tf_function", "jit_compile"])
def test_compiled_forward_matches_eager(mode):
    net = models.build("resnet18", (16, 16, 3), 4, width=WIDTH)
    images = _images(2, (16, 16, 3))
    forward = tf.function(
        lambda x: net(x, training=False), jit_compile=mode == "jit_compile"
    )
    np.testing.assert_allclose(
        forward(images), net(images), rtol=1e-4, atol=1e-4
    )


def test_unit_configs_round_trip():
    stem = models.ResNetStem(4, kind="imagenet")
    block = models.BottleneckBlock(3, strides=2, stem=stem, name="unit_00")
    block(tf.zeros((1, 32, 32, 3)))
    clone = models.BottleneckBlock.from_config(block.get_config())
    assert clone.get_config() == block.get_config()
    assert clone.stem.kind == "imagenet"
    assert clone(tf.zeros((1, 32, 32, 3))).shape == (1, 4, 4, 12)
    unit = models.DenseBNReLU(6, flatten=True, name="unit_01")
    assert models.DenseBNReLU.from_config(unit.get_config()).flatten


@pytest.mark.parametrize("width", [0, -0.5, math.nan, "wide"])
def test_bad_width_is_rejected(width):
    with pytest.raises(ValueError, match="width"):
        models.build("mlp", (8,), 2, width=width)


def test_bad_name_lists_the_names():
    with pytest.raises(ValueError, match="resnet152") as error:
        models.build("resnet7", (32, 32, 3), 10)
    assert "vgg19" in str(error.value)


def test_bad_shapes_and_classes_are_rejected():
    with pytest.raises(ValueError, match="channel axis"):
        models.build("vgg19", (28, 28), 10)
    with pytest.raises(ValueError, match="input_shape"):
        models.build("mlp", (0, 4), 10)
    with pytest.raises(ValueError, match="num_classes"):
        models.build("mlp", (4,), 0)
    with pytest.raises(ValueError, match="stem kind"):
        models.ResNetStem(8, kind="tiny")
