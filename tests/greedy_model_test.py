import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from lockstep import assert_same_steps
from sklearn.datasets import load_digits

import localgrad

SPARSE_CE = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def _dense_network(num_units=4, width=16, batch_norm=False, seed=0):
    keras.utils.set_random_seed(seed)
    units = []
    for index in range(num_units):
        layers = [keras.layers.Dense(width, activation="relu")]
        if batch_norm:
            layers.append(keras.layers.BatchNormalization())
        units.append(keras.Sequential(layers, name=f"unit_{index}"))
    return localgrad.Network(units, keras.layers.Dense(3), input_shape=(6,))


def _dense_head(shape, num_classes):
    return keras.Sequential([keras.layers.Dense(num_classes)])


def _batch(size=32, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(size, 6)).astype("float32")
    y = (x[:, 0] > 0).astype("int32") + (x[:, 1] > 0.5).astype("int32")
    return x, y


def _sgd():
    return keras.optimizers.SGD(0.1, momentum=0.9)


def _values(variables):
    return [v.numpy().copy() for v in variables]


def _assert_all_close(first, second, atol=1e-6):
    assert len(first) == len(second)
    for a, b in zip(first, second):
        np.testing.assert_allclose(a, b, atol=atol)


def test_no_gradient_crosses_a_block_boundary():
    network = _dense_network(batch_norm=True)
    model = localgrad.GreedyModel(network, boundaries=[2], heads=_dense_head)
    model.compile(optimizer=_sgd(), loss=SPARSE_CE)
    block_0 = model.block_trainable_variables(0)
    initial = _values(model.trainable_variables)
    x, y = _batch()

    model.train_on_batch(x, y)
    greedy = _values(block_0)

    # Block 0 and its head trained alone from the same weights on the batch.
    for variable, value in zip(model.trainable_variables, initial):
        variable.assign(value)
    alone = keras.Sequential(
        [keras.Input((6,))] + network.units[:2] + [model.heads[0]]
    )
    alone.compile(optimizer=_sgd(), loss=SPARSE_CE)
    alone.train_on_batch(x, y)
    _assert_all_close(greedy, _values(block_0))

    # The same comparison would fail if the last block's loss reached block 0.
    for variable, value in zip(model.trainable_variables, initial):
        variable.assign(value)
    end_to_end = keras.Sequential([keras.Input((6,)), network])
    end_to_end.compile(optimizer=_sgd(), loss=SPARSE_CE)
    end_to_end.train_on_batch(x, y)
    unit_0 = network.units[0].trainable_variables[0]
    assert not np.allclose(unit_0.numpy(), greedy[0], atol=1e-6)


@pytest.mark.numerics
@pytest.mark.parametrize("mode", ["eager", "function", "jit"])
def test_one_block_is_plain_keras_training(mode):
    network = _dense_network(batch_norm=True)
    twin = localgrad.Network.from_config(network.get_config())
    twin.set_weights(network.get_weights())
    x, y = _batch(size=64)
    options = dict(run_eagerly=mode == "eager", jit_compile=mode == "jit")

    # Keras' moving averages, as plain Keras keeps them.
    model = localgrad.GreedyModel(network, num_blocks=1, precise_batch_norm=0)
    model.compile(optimizer=_sgd(), loss=SPARSE_CE, **options)
    model.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    twin.compile(optimizer=_sgd(), loss=SPARSE_CE, **options)
    twin.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)

    _assert_all_close(_values(network.weights), _values(twin.weights), 1e-5)
    assert model.block_optimizers[0].iterations.numpy() == 8


def test_each_block_has_its_own_optimizer_and_schedule():
    schedule = keras.optimizers.schedules.CosineDecay(0.1, decay_steps=10)
    model = localgrad.GreedyModel(
        _dense_network(), num_blocks=2, heads=_dense_head
    )
    model.compile(optimizer=keras.optimizers.SGD(schedule), loss=SPARSE_CE)
    model.trained_blocks = [1]
    x, y = _batch()
    for _ in range(3):
        model.train_on_batch(x, y)
    first, second = model.block_optimizers
    assert first is not second and first is not model.optimizer
    assert first.iterations.numpy() == 0 and second.iterations.numpy() == 3
    assert float(first.learning_rate) > float(second.learning_rate)
    assert model.optimizer.iterations.numpy() == 3


def test_frozen_blocks_keep_every_weight():
    network = _dense_network(num_units=6, batch_norm=True)
    model = localgrad.GreedyModel(network, num_blocks=3, heads=_dense_head)
    model.compile(optimizer=_sgd(), loss=SPARSE_CE, metrics=["accuracy"])
    model.trained_blocks = [1]
    before = [_block_weights(model, k) for k in range(3)]
    x, y = _batch()
    logs = model.train_on_batch(x, y, return_dict=True)
    after = [_block_weights(model, k) for k in range(3)]

    _assert_all_close(before[0], after[0], atol=0)  # BN statistics too.
    _assert_all_close(before[2], after[2], atol=0)
    assert not all(np.allclose(a, b) for a, b in zip(before[1], after[1]))
    assert "block_1_loss" in logs and "block_2_loss" not in logs
    assert "accuracy" not in logs  # the classifier did not run


def _block_weights(model, block):
    start, end = model.block_ranges[block]
    layers = model.network.units[start:end]
    head = (
        model.network.classifier
        if block == model.num_blocks - 1
        else model.heads[block]
    )
    return _values([w for layer in layers + [head] for w in layer.weights])


def _digits():
    images, labels = load_digits(return_X_y=True)
    x = (images / 16.0).astype("float32").reshape(-1, 8, 8, 1)
    return x, labels.astype("int32")


def _digits_model(mode="function", optimizer=None):
    keras.utils.set_random_seed(0)
    network = localgrad.models.build("mlp", (8, 8, 1), 10, width=0.125)
    model = localgrad.GreedyModel(network, num_blocks=4, heads="linear")
    model.compile(
        optimizer=optimizer or keras.optimizers.Adam(1e-2),
        loss=SPARSE_CE,
        metrics=["accuracy"],
        run_eagerly=mode == "eager",
        jit_compile=mode == "jit",
    )
    return model


def test_four_blocks_learn_digits():
    x, y = _digits()
    model = _digits_model()
    model.fit(x[:1400], y[:1400], batch_size=128, epochs=6, verbose=0)
    logs = model.evaluate(x[1400:], y[1400:], return_dict=True, verbose=0)
    for block in range(4):
        assert logs[f"block_{block}_accuracy"] > 0.75, logs
    assert logs["accuracy"] == logs["block_3_accuracy"]
    assert logs["loss"] == pytest.approx(
        sum(logs[f"block_{k}_loss"] for k in range(4)), rel=1e-5
    )


@pytest.mark.numerics
@pytest.mark.parametrize("mode", ["eager", "jit"])
def test_eager_and_xla_steps_are_the_compiled_steps(mode):
    # That these modes learn follows from taking the steps of the
    # tf.function model, which the test above shows learns. XLA fuses and
    # orders its sums differently from the graph runtime, so one step's
    # weights differ by rounding (~1e-7 here); over many steps ReLUs flip
    # and the difference compounds (1.9e-3 after 8 steps on an Intel CPU).
    # So each step starts both models from the graph model's state,
    # momentum included, and compares that one step. (SGD: Adam turns
    # float rounding in near-zero gradients into whole steps.)
    x, y = _digits()
    models = (
        _digits_model(mode, optimizer=_sgd()),
        _digits_model(optimizer=_sgd()),
    )
    initial = _values(models[1].trainable_variables)
    assert_same_steps(*models, x, y, batch_size=64, steps=4, atol=1e-5)
    assert all(o.iterations.numpy() == 4 for o in models[0].block_optimizers)
    assert not np.allclose(
        models[1].trainable_variables[0].numpy(), initial[0], atol=1e-3
    )


def test_predict_runs_the_network_alone():
    network = _dense_network()
    model = localgrad.GreedyModel(network, num_blocks=2, heads=_dense_head)
    x, _ = _batch()
    np.testing.assert_allclose(
        model.predict(x, verbose=0), network(x).numpy(), atol=1e-6
    )
    outputs = model.head_outputs(x)
    assert len(outputs) == 2
    np.testing.assert_allclose(
        outputs[1].numpy(), network(x).numpy(), atol=1e-6
    )


def test_save_and_load_give_identical_predictions(tmp_path):
    model = localgrad.GreedyModel(
        localgrad.models.build("vgg11", (16, 16, 3), 5, width=0.125),
        boundaries=[2, 5],
        heads=["light2", "mlp_sr"],
    )
    model.compile(optimizer=_sgd(), loss=SPARSE_CE, metrics=["accuracy"])
    x = np.random.default_rng(0).normal(size=(8, 16, 16, 3)).astype("float32")
    y = np.arange(8) % 5
    model.fit(x, y, epochs=1, verbose=0)
    path = os.path.join(tmp_path, "model.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.boundaries == [2, 5]
    np.testing.assert_allclose(
        loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6
    )
    for ours, theirs in zip(model.head_outputs(x), loaded.head_outputs(x)):
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), atol=1e-6)
    loaded.fit(x, y, epochs=1, verbose=0)  # compiled again from the file


@pytest.mark.numerics
def test_mirrored_strategy_trains_like_one_device():
    x, y = _batch(size=64)
    weights = {}
    for name in ("one", "mirrored"):
        devices = ["/cpu:0"] if name == "one" else ["/cpu:0", "/cpu:1"]
        strategy = tf.distribute.MirroredStrategy(devices)
        with strategy.scope():
            model = localgrad.GreedyModel(
                _dense_network(), num_blocks=2, heads=_dense_head
            )
            model.compile(
                optimizer=_sgd(), loss=SPARSE_CE, metrics=["accuracy"]
            )
        model.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
        logs = model.evaluate(x, y, return_dict=True, verbose=0)
        weights[name] = (_values(model.trainable_variables), logs)
    _assert_all_close(weights["one"][0], weights["mirrored"][0], atol=1e-5)
    assert weights["one"][1]["block_1_loss"] == pytest.approx(
        weights["mirrored"][1]["block_1_loss"], rel=1e-4
    )


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(num_blocks=2, boundaries=[1]), "exactly one of"),
        (dict(), "exactly one of"),
        (dict(boundaries=[4]), "out of range"),
        (dict(boundaries=[2, 1]), "strictly increasing"),
        (dict(num_blocks=5), "can be split into 1..4 blocks"),
        (dict(boundaries=[1], balance="memory"), "cannot be combined"),
        (dict(num_blocks=2, balance="speed"), "Unknown balance"),
        (dict(num_blocks=3, heads=["linear"]), "1 heads for 2 boundaries"),
        (dict(num_blocks=2, heads="no_such_head"), "linear"),
        (dict(num_blocks=2, heads="mlp_sr"), "mlp_sr"),
    ],
)
def test_bad_configurations_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        localgrad.GreedyModel(_dense_network(), **kwargs)


def test_a_head_with_the_wrong_output_is_refused():
    def wrong(shape, num_classes):
        return keras.layers.Dense(num_classes + 1)

    with pytest.raises(ValueError, match=r"after unit 2 .* logits of shape"):
        localgrad.GreedyModel(_dense_network(), num_blocks=2, heads=wrong)


def test_memory_balance_uses_the_profile():
    network = localgrad.models.build("vgg11", (32, 32, 3), 10, width=0.125)
    model = localgrad.GreedyModel(
        network,
        num_blocks=2,
        balance="memory",
        heads="linear",
        balance_batch_size=256,
    )
    profiles = localgrad.profile(network, batch_size=256)
    costs = [p.activation_bytes + 4 * p.params for p in profiles]
    assert model.boundaries == localgrad.boundaries.balanced_boundaries(
        costs, 2
    )
    # VGG's activations are front-heavy: the first block is the shorter one.
    assert model.boundaries[0] < network.num_units / 2
    # With one example per batch, gradients dominate and the split moves.
    small = localgrad.GreedyModel(
        network,
        num_blocks=2,
        balance="memory",
        heads="linear",
        balance_batch_size=1,
    )
    assert small.boundaries[0] > model.boundaries[0]
