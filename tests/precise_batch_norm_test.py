"""Tests of localgrad.callbacks.PreciseBatchNorm against hand computation."""

import gc
import weakref

import keras
import numpy as np
import pytest
import tensorflow as tf

import localgrad
from localgrad.callbacks import PreciseBatchNorm
from localgrad.callbacks.precise_batch_norm import batch_norm_layers

EPSILON = 1e-3  # Keras' BatchNormalization default.


def _model(**kwargs):
    keras.utils.set_random_seed(0)
    units = [
        keras.Sequential(
            [
                keras.layers.Dense(3),
                keras.layers.BatchNormalization(),
                keras.layers.ReLU(),
            ]
        )
        for _ in range(2)
    ]
    classifier = keras.Sequential(
        [keras.layers.BatchNormalization(), keras.layers.Dense(2)]
    )
    network = localgrad.Network(units, classifier, input_shape=(4,))
    head = keras.Sequential(
        [keras.layers.BatchNormalization(), keras.layers.Dense(2)]
    )
    model = localgrad.GreedyModel(network, boundaries=[1], heads=head, **kwargs)
    model.compile(
        optimizer=keras.optimizers.SGD(0.1, momentum=0.9),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


def _data(size=10, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(2.0, 3.0, size=(size, 4)).astype("float32")
    return x, rng.integers(0, 2, size)


def _normalize(z, gamma, beta):
    """BatchNorm in training mode: the batch's own (biased) moments."""
    mean, variance = z.mean(0), z.var(0)
    return gamma * (z - mean) / np.sqrt(variance + EPSILON) + beta


def _hand_statistics(model, batches):
    """Exact mean and biased variance of each BN's inputs, by hand."""
    units = model.network.units

    def weights(sequential):
        return [w.numpy().astype(np.float64) for w in sequential.weights]

    inputs = {"unit0": [], "head": [], "unit1": [], "classifier": []}
    for x in batches:
        w0, b0, g0, be0, *_ = weights(units[0])
        z0 = x @ w0 + b0
        inputs["unit0"].append(z0)
        a0 = np.maximum(_normalize(z0, g0, be0), 0)
        inputs["head"].append(a0)
        w1, b1, g1, be1, *_ = weights(units[1])
        z1 = a0 @ w1 + b1
        inputs["unit1"].append(z1)
        inputs["classifier"].append(np.maximum(_normalize(z1, g1, be1), 0))
    return {
        name: (np.concatenate(z).mean(0), np.concatenate(z).var(0))
        for name, z in inputs.items()
    }


def _layers(model):
    return {
        "unit0": model.network.units[0].layers[1],
        "unit1": model.network.units[1].layers[1],
        "head": model.heads[0].layers[0],
        "classifier": model.network.classifier.layers[0],
    }


def test_finds_every_batch_norm():
    model = _model()
    found = batch_norm_layers(model)
    assert {id(layer) for layer in found} == {
        id(layer) for layer in _layers(model).values()
    }
    assert len(found) == 4


def test_statistics_are_exact_and_nothing_else_changes():
    model = _model()
    x, y = _data(16)
    model.fit(x, y, batch_size=4, epochs=2, verbose=0)
    # Batches of 4, 4 and 2 (unequal sizes), then one that is not used.
    train_x, _ = _data(14, seed=1)
    data = tf.data.Dataset.from_tensor_slices(train_x[:10]).batch(4)
    data = data.concatenate(
        tf.data.Dataset.from_tensor_slices(train_x[10:]).batch(4)
    )
    weights = [v.numpy() for v in model.trainable_variables]
    optimizer = [v.numpy() for v in model.optimizer.variables]
    blocks = [[v.numpy() for v in o.variables] for o in model.block_optimizers]
    callback = PreciseBatchNorm(3, data)
    assert callback.recompute(model) == 10
    expected = _hand_statistics(
        model, [train_x[:4], train_x[4:8], train_x[8:10]]
    )
    for name, layer in _layers(model).items():
        mean, variance = expected[name]
        np.testing.assert_allclose(layer.moving_mean.numpy(), mean, atol=1e-5)
        np.testing.assert_allclose(
            layer.moving_variance.numpy(), variance, rtol=1e-4, atol=1e-5
        )
        assert layer.momentum == 0.99  # Put back.
    for before, after in zip(weights, model.trainable_variables):
        np.testing.assert_array_equal(before, after.numpy())
    for before, after in zip(optimizer, model.optimizer.variables):
        np.testing.assert_array_equal(before, after.numpy())
    for before, block in zip(blocks, model.block_optimizers):
        for a, b in zip(before, block.variables):
            np.testing.assert_array_equal(a, b.numpy())


def _moving(model):
    return [
        v.numpy()
        for layer in batch_norm_layers(model)
        for v in (layer.moving_mean, layer.moving_variance)
    ]


class _CheckPreciseBeforeEvaluation(keras.callbacks.Callback):
    """At each validation: the statistics are already the precise ones."""

    def __init__(self, data):
        super().__init__()
        self.data = data
        self.checked = 0

    def on_test_begin(self, logs=None):
        before = _moving(self.model)
        PreciseBatchNorm(2, self.data).recompute(self.model)
        for a, b in zip(before, _moving(self.model)):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
        self.checked += 1


def test_runs_before_each_validation_and_at_the_end():
    model = _model()
    x, y = _data(16)
    data = tf.data.Dataset.from_tensor_slices(x).batch(8)  # Same each time.
    check = _CheckPreciseBeforeEvaluation(data)
    model.fit(
        x,
        y,
        batch_size=4,
        epochs=2,
        verbose=0,
        validation_data=(x, y),
        callbacks=[PreciseBatchNorm(2, data), check],
    )
    assert check.checked == 2
    after_fit = _moving(model)
    PreciseBatchNorm(2, data).recompute(model)
    for a, b in zip(after_fit, _moving(model)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    # Without the callback the statistics are moving averages: different.
    plain = _model(precise_batch_norm=0)
    plain.fit(x, y, batch_size=4, epochs=2, verbose=0)
    assert not np.allclose(_moving(plain)[0], after_fit[0], atol=1e-3)


def test_too_few_batches_is_a_clear_error_and_changes_nothing():
    model = _model()
    before = _moving(model)
    data = tf.data.Dataset.from_tensor_slices(_data(8)[0]).batch(4)
    with pytest.raises(ValueError, match="needs 5 batches but the data gave 2"):
        PreciseBatchNorm(5, data).recompute(model)
    for a, b in zip(before, _moving(model)):
        np.testing.assert_array_equal(a, b)


def test_num_batches_must_be_positive():
    with pytest.raises(ValueError, match="num_batches"):
        PreciseBatchNorm(0, [])


def _first_unit_statistics(model, x):
    """Exact moments of the first BatchNorm's inputs over `x`, by hand.

    The first unit's BatchNorm sees `x @ w + b`, whatever the batches.
    """
    w, b = (
        v.numpy().astype(np.float64) for v in model.network.units[0].weights[:2]
    )
    z = x.astype(np.float64) @ w + b
    return z.mean(0), z.var(0)


def _assert_first_unit_statistics(model, x):
    layer = _layers(model)["unit0"]
    mean, variance = _first_unit_statistics(model, x)
    np.testing.assert_allclose(layer.moving_mean.numpy(), mean, atol=1e-5)
    np.testing.assert_allclose(
        layer.moving_variance.numpy(), variance, rtol=1e-4, atol=1e-5
    )


def _validation_split_data():
    x, y = _data(16)
    x[12:] += 10.0  # validation_split's share: far from the training part.
    return x, y


def test_fit_estimates_precise_statistics_by_default(caplog):
    x, y = _validation_split_data()
    model = _model()
    with caplog.at_level("WARNING"):
        model.fit(
            x, y, batch_size=4, epochs=2, validation_split=0.25, verbose=0
        )
    # The 12 training examples (3 batches, fewer than the default 50).
    _assert_first_unit_statistics(model, x[:12])
    notices = [r for r in caplog.records if "re-estimated on 3" in r.message]
    assert len(notices) == 1
    assert "precise_batch_norm=0" in notices[0].message


def test_precise_batch_norm_0_keeps_keras_moving_averages():
    x, y = _validation_split_data()
    model = _model(precise_batch_norm=0)
    model.fit(x, y, batch_size=4, epochs=2, validation_split=0.25, verbose=0)
    mean, _ = _first_unit_statistics(model, x[:12])
    layer = _layers(model)["unit0"]
    # Keras' averages after 6 steps at momentum 0.99: still near 0.
    assert not np.allclose(layer.moving_mean.numpy(), mean, atol=0.1)


def test_a_dataset_is_read_again_from_its_start():
    x, y = _data(12)
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(4)
    model = _model()
    model.fit(data, epochs=1, verbose=0)
    _assert_first_unit_statistics(model, x)


def test_an_estimate_reads_no_more_batches_than_an_epoch_trains_on(caplog):
    x, y = _data(12)
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(4).repeat()
    model = _model()
    with caplog.at_level("WARNING"):
        model.fit(data, steps_per_epoch=2, epochs=1, verbose=0)
    # Two batches: the examples x[:8], read again from the start.
    _assert_first_unit_statistics(model, x[:8])
    assert any(
        "re-estimated on 2 training" in r.message for r in caplog.records
    )


def test_data_that_cannot_be_read_twice_keeps_averages_and_says_how(caplog):
    x, y = _data(8)

    def batches():
        while True:
            yield x[:4], y[:4]

    model = _model()
    with caplog.at_level("WARNING"):
        model.fit(batches(), steps_per_epoch=2, epochs=1, verbose=0)
    (line,) = [r.message for r in caplog.records if "read twice" in r.message]
    assert "generator" in line and "PreciseBatchNorm(50" in line
    mean, _ = _first_unit_statistics(model, x[:4])
    assert not np.allclose(
        _layers(model)["unit0"].moving_mean.numpy(), mean, atol=0.1
    )


def test_a_given_precise_batch_norm_is_the_only_one():
    x, y = _data(16)
    first_batch = tf.data.Dataset.from_tensor_slices(x[:4]).batch(4)
    model = _model()
    model.fit(
        x,
        y,
        batch_size=4,
        epochs=1,
        verbose=0,
        callbacks=[PreciseBatchNorm(1, first_batch)],
    )
    _assert_first_unit_statistics(model, x[:4])


def test_precise_batch_norm_is_validated_and_saved():
    for bad in (-1, True, 2.5):
        with pytest.raises(ValueError, match="precise_batch_norm is a number"):
            _model(precise_batch_norm=bad)
    model = _model(precise_batch_norm=7)
    config = model.get_config()
    assert config["precise_batch_norm"] == 7
    assert type(model).from_config(config).precise_batch_norm == 7


class UsersResidual(keras.layers.Layer):
    """A residual layer as a Keras user writes one: default BatchNorm."""

    def __init__(self, width, **kwargs):
        super().__init__(**kwargs)
        self.dense = keras.layers.Dense(width)
        self.norm = keras.layers.BatchNormalization()  # Momentum 0.99.

    def call(self, x, training=None):
        return keras.ops.relu(x + self.norm(self.dense(x), training=training))


def _users_network():
    keras.utils.set_random_seed(0)
    stem = keras.Sequential(
        [
            keras.layers.Dense(32),
            keras.layers.BatchNormalization(),
            keras.layers.ReLU(),
        ]
    )
    units = [stem] + [UsersResidual(32) for _ in range(3)]
    return localgrad.Network(units, keras.layers.Dense(10), input_shape=(64,))


@pytest.mark.parametrize("precise_batch_norm", [50, 0])
def test_keras_default_batch_norm_tests_near_its_training_accuracy(
    precise_batch_norm,
):
    """Greedy blocks outrun momentum 0.99; the default follows them."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    order = np.random.default_rng(0).permutation(len(digits.target))
    # Pixels as they come (0..16): BatchNorm's inputs are far from the
    # averages' start (mean 0, variance 1).
    x, y = digits.data[order].astype("float32"), digits.target[order]
    model = localgrad.GreedyModel(
        _users_network(),
        num_blocks=2,
        heads="linear",
        precise_batch_norm=precise_batch_norm,
    )
    model.compile(
        optimizer=keras.optimizers.SGD(0.05, momentum=0.9),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    # 22 steps: momentum 0.99 keeps 0.99 ** 22 = 80 % of the averages'
    # start.
    history = model.fit(x[:1400], y[:1400], batch_size=128, epochs=2, verbose=0)
    training = history.history["accuracy"][-1]
    test = model.evaluate(x[1400:], y[1400:], verbose=0, return_dict=True)
    assert training > 0.75
    if precise_batch_norm:
        assert test["accuracy"] > training - 0.05
    else:  # Keras' averages: what the default is for.
        assert test["accuracy"] < training - 0.2  # 52 % here.


def test_estimates_trace_once_per_model_and_keep_no_model_alive():
    from localgrad.callbacks import precise_batch_norm

    x, y = _data(16)
    model = _model()
    for _ in range(2):  # Each fit adds a new PreciseBatchNorm.
        model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    assert len(precise_batch_norm._FORWARD_PASSES[model]) == 1
    alive = weakref.ref(model)
    del model
    gc.collect()
    assert alive() is None
