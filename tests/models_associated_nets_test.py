"""Tests of the AL paper's networks: cnn_al, vgg_al, resnet20, resnet32."""

import keras
import numpy as np
import pytest

import localgrad
from localgrad import models

CLASSES = 10


def _conv(cin, cout, bias=True):
    """Parameters of a 3×3 convolution."""
    return 9 * cin * cout + (cout if bias else 0)


def _bn(channels):
    """gamma, beta, moving mean and moving variance."""
    return 4 * channels


def _dense(fan_in, fan_out):
    return fan_in * fan_out + fan_out


def _basic_block(cin, cout, strides):
    count = _conv(cin, cout, False) + _bn(cout)
    count += _conv(cout, cout, False) + _bn(cout)
    if strides != 1 or cin != cout:
        count += cin * cout + _bn(cout)  # The 1×1 projection shortcut.
    return count


def _cnn_al_count(channels, side):
    units = [
        _conv(channels, 32) + _conv(32, 32),
        2 * _conv(32, 32),
        _conv(32, 64) + _conv(64, 64),
        2 * _conv(64, 64),
    ]
    return units, _dense((side // 4) ** 2 * 64, CLASSES)


def _vgg_al_count(channels):
    def conv_bn(cin, cout):
        return _conv(cin, cout, False) + _bn(cout)

    units = [
        conv_bn(channels, 128) + conv_bn(128, 256),
        conv_bn(256, 256) + conv_bn(256, 512),
        2 * conv_bn(512, 512),
        _dense(2 * 2 * 512, 1024) + _dense(1024, 1024),
    ]
    return units, _dense(1024, CLASSES)


def _resnet_count(channels, depth):
    units = [_conv(channels, 16, False) + _bn(16)]
    cin = 16
    for stage, cout in enumerate((16, 32, 64)):
        for index in range(depth):
            units.append(
                _basic_block(cin, cout, 2 if stage and not index else 1)
            )
            cin = cout
    return units, _dense(64, CLASSES)


@pytest.mark.parametrize(
    "name, shape, expected",
    [
        ("cnn_al", (32, 32, 3), _cnn_al_count(3, 32)),
        ("cnn_al", (28, 28, 1), _cnn_al_count(1, 28)),
        ("vgg_al", (32, 32, 3), _vgg_al_count(3)),
        ("vgg_al", (28, 28, 1), _vgg_al_count(1)),
        ("resnet20", (32, 32, 3), _resnet_count(3, 3)),
        ("resnet32", (32, 32, 3), _resnet_count(3, 5)),
    ],
)
def test_parameter_counts_match_a_hand_count(name, shape, expected):
    units, classifier = expected
    net = models.build(name, shape, CLASSES)
    assert [unit.count_params() for unit in net.units] == units
    assert net.classifier.count_params() == classifier
    assert net.count_params() == sum(units) + classifier


def test_published_sizes():
    # He et al. (2016): ResNet-20 0.27M, ResNet-32 0.46M parameters (their
    # count has no projections and no batch-norm statistics).
    resnet20 = models.build("resnet20", (32, 32, 3), CLASSES)
    resnet32 = models.build("resnet32", (32, 32, 3), CLASSES)
    trainable = [
        sum(int(np.prod(v.shape)) for v in net.trainable_variables)
        for net in (resnet20, resnet32)
    ]
    assert 0.26e6 < trainable[0] < 0.28e6
    assert 0.46e6 < trainable[1] < 0.48e6


@pytest.mark.parametrize(
    "name, shape, unit_shapes",
    [
        (
            "cnn_al",
            (32, 32, 3),
            [(32, 32, 32), (16, 16, 32), (16, 16, 64), (8, 8, 64)],
        ),
        (
            "cnn_al",
            (28, 28, 1),
            [(28, 28, 32), (14, 14, 32), (14, 14, 64), (7, 7, 64)],
        ),
        ("vgg_al", (32, 32, 3), [(16, 16, 256), (8, 8, 512), (2, 2, 512)]),
        ("vgg_al", (28, 28, 1), [(14, 14, 256), (7, 7, 512), (2, 2, 512)]),
    ],
)
def test_al_network_shapes(name, shape, unit_shapes):
    net = models.build(name, shape, CLASSES)
    assert net.num_units == 4
    assert net.unit_output_shapes[: len(unit_shapes)] == unit_shapes
    images = np.zeros((2,) + shape, "float32")
    assert net(images).shape == (2, CLASSES)


def test_width_scales_the_al_networks():
    cnn = models.build("cnn_al", (32, 32, 3), CLASSES, width=0.5)
    vgg = models.build("vgg_al", (32, 32, 3), CLASSES, width=0.25)
    resnet = models.build("resnet20", (32, 32, 3), CLASSES, width=0.5)
    assert cnn.unit_output_shapes[-1] == (8, 8, 32)
    assert vgg.unit_output_shapes == [
        (16, 16, 64),
        (8, 8, 128),
        (2, 2, 128),
        (256,),
    ]
    assert resnet.unit_output_shapes[0] == (32, 32, 8)
    assert resnet.unit_output_shapes[-1] == (8, 8, 32)


def test_al_networks_use_elu():
    net = models.build("vgg_al", (8, 8, 1), CLASSES, width=1 / 64)
    # A conv-BN-ELU unit is negative where ReLU would be 0.
    out = net.units[0](np.full((1, 8, 8, 1), -1.0, "float32"))
    assert float(np.min(out)) < 0 and float(np.min(out)) > -1


def test_resnet_stem_is_its_own_unit():
    net = models.build("resnet32", (32, 32, 3), CLASSES, width=0.25)
    assert isinstance(net.units[0], models.ResNetStem)
    assert all(isinstance(u, models.BasicBlock) for u in net.units[1:])
    assert [u.strides for u in net.units[1:]] == [1] * 5 + [2, 1, 1, 1, 1] * 2
    assert models.stage_boundaries("resnet20") == [1, 4, 7]
    assert models.stage_boundaries("resnet32") == [1, 6, 11]
    with pytest.raises(ValueError, match="resnet20"):
        models.stage_boundaries("resnet18")


def _associated(name, **kwargs):
    shape = (16, 16, 3)
    keras.utils.set_random_seed(0)
    net = models.build(name, shape, CLASSES, width=0.125)
    model = localgrad.AssociatedModel(net, label_width=6, **kwargs)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), metrics=["accuracy"])
    return model, shape


@pytest.mark.parametrize(
    "name, kwargs, ranges",
    [
        ("cnn_al", {"num_blocks": 4}, [(0, 1), (1, 2), (2, 3), (3, 4)]),
        ("vgg_al", {"num_blocks": 4}, [(0, 1), (1, 2), (2, 3), (3, 4)]),
        (
            "resnet20",
            {"boundaries": models.stage_boundaries("resnet20")},
            [(0, 1), (1, 4), (4, 7), (7, 10)],
        ),
    ],
)
def test_the_published_al_split_trains(name, kwargs, ranges):
    model, shape = _associated(name, **kwargs)
    assert model.block_ranges == ranges
    for k, (_, end) in enumerate(ranges):
        assert (
            model.bridges[k].input_shape[1:]
            == (model.network.unit_output_shapes[end - 1])
        )
    rng = np.random.default_rng(0)
    x = rng.random((8,) + shape, "float32")
    y = np.arange(8) % CLASSES
    unit_variables = [
        v for unit in model.network.units for v in unit.trainable_variables
    ]
    before = [v.numpy().copy() for v in unit_variables]
    history = model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    assert np.all(np.isfinite(history.history["block_3_loss"]))
    assert all(
        not np.array_equal(a, b.numpy()) for a, b in zip(before, unit_variables)
    ), "every unit of every component trains"
    scores = model.predict(x, verbose=0)
    assert scores.shape == (8, CLASSES)
    assert np.all((scores > 0) & (scores < 1))


@pytest.mark.parametrize("name", ["cnn_al", "vgg_al", "resnet20"])
def test_save_and_load_give_identical_outputs(name, tmp_path):
    net = models.build(name, (8, 8, 3), CLASSES, width=1 / 16)
    images = np.random.default_rng(0).random((3, 8, 8, 3), "float32")
    net(images, training=True)  # Moves the batch-norm statistics.
    path = str(tmp_path / f"{name}.keras")
    net.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.architecture == name
    assert loaded.unit_names == net.unit_names
    np.testing.assert_array_equal(loaded(images), net(images))
