"""Blocks on devices: variables, optimizer slots and steps where asked."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import localgrad
from localgrad.blocks import placement

SPARSE_CE = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
CPU = "/device:CPU:{}"


def _network(num_units=6, seed=0):
    keras.utils.set_random_seed(seed)
    units = [
        keras.Sequential(
            [
                keras.layers.Dense(8, activation="relu"),
                keras.layers.BatchNormalization(),
            ],
            name=f"unit_{k}",
        )
        for k in range(num_units)
    ]
    return localgrad.Network(units, keras.layers.Dense(3), input_shape=(5,))


def _data(size=32, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(size, 5)).astype("float32")
    return x, (x[:, 0] > 0).astype("int32")


def _device_index(variable):
    spec = tf.DeviceSpec.from_string(variable.value.device)
    assert spec.device_type == "CPU"
    return spec.device_index


def _compiled(devices, num_blocks=3, **compile_options):
    model = localgrad.GreedyModel(
        _network(), num_blocks=num_blocks, heads="linear", devices=devices
    )
    model.compile(
        optimizer=keras.optimizers.SGD(0.1, momentum=0.9),
        loss=SPARSE_CE,
        metrics=["accuracy"],
        **compile_options,
    )
    return model


def test_each_block_lives_on_its_device():
    model = _compiled(["/cpu:0", "/cpu:1", "/cpu:2"])
    assert model.devices == [CPU.format(k) for k in range(3)]
    x, y = _data()
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    for k, block in enumerate(model.blocks):
        variables = block.variables  # BatchNorm statistics included.
        slots = [
            v
            for v in block.optimizer.variables
            if v is not block.optimizer.iterations
        ]
        assert len(slots) >= len(block.trainable_variables)
        trackers = [block.trackers.loss] + block.trackers.block_metrics
        tracked = [v for t in trackers for v in t.variables]
        for variable in variables + slots + tracked:
            assert _device_index(variable) == k, variable.path
        assert _device_index(block.optimizer.iterations) == k
    # The classifier is the last block's head: on the last device.
    assert _device_index(model.network.classifier.kernel) == 2


@pytest.mark.numerics
def test_placed_training_equals_unplaced_training():
    x, y = _data(size=48)
    weights = []
    for devices in (None, ["/cpu:1", "/cpu:2", "/cpu:0"]):
        model = _compiled(devices)
        model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0)
        weights.append([v.numpy() for v in model.weights])
        logs = model.evaluate(x, y, return_dict=True, verbose=0)
        assert set(logs) >= {"accuracy", "block_0_loss", "block_2_accuracy"}
    for placed, unplaced in zip(*weights):
        np.testing.assert_allclose(placed, unplaced, atol=1e-6)
    np.testing.assert_allclose(
        model.predict(x, verbose=0), model.network(x).numpy(), atol=1e-6
    )


def test_several_blocks_share_a_device_and_extra_devices_idle():
    shared = _compiled(["/cpu:1", "/cpu:2"], num_blocks=4)
    assert shared.devices == [CPU.format(k) for k in (1, 1, 2, 2)]
    with pytest.warns(UserWarning, match=r"CPU:2'\] stay idle"):
        idle = localgrad.GreedyModel(
            _network(),
            num_blocks=2,
            heads="linear",
            devices=["/cpu:0", "/cpu:1", "/cpu:2"],
        )
    assert idle.devices == [CPU.format(0), CPU.format(1)]


@pytest.mark.parametrize(
    "devices, message",
    [
        (["/cpu:0", "/gpu:7"], r"'/gpu:7' does not exist.*available"),
        (["/cpu:9"], r"'/cpu:9' does not exist.*CPU:2"),
        ("/cpu:0", "must be a list"),
        (["/job:worker/replica:0/task:1/device:CPU:0"], "connect"),
        (["not a device"], "not a device name"),
    ],
)
def test_bad_devices_are_refused(devices, message):
    with pytest.raises(ValueError, match=message):
        localgrad.GreedyModel(
            _network(), num_blocks=2, heads="linear", devices=devices
        )


def test_devices_under_a_mirrored_strategy_are_refused():
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        with pytest.raises(ValueError, match="drop devices="):
            localgrad.GreedyModel(
                _network(), num_blocks=2, heads="linear", devices=["/cpu:1"]
            )


def test_resolve_device_reads_short_and_full_names():
    assert placement.resolve_device("/cpu:1") == CPU.format(1)
    assert placement.resolve_device("/device:CPU:2") == CPU.format(2)
    full = "/job:localhost/replica:0/task:0/device:CPU:0"
    assert placement.resolve_device(full) == CPU.format(0)
