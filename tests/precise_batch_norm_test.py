"""Tests of localgrad.callbacks.PreciseBatchNorm against hand computation."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import localgrad
from localgrad.callbacks import PreciseBatchNorm
from localgrad.callbacks.precise_batch_norm import batch_norm_layers

EPSILON = 1e-3  # Keras' BatchNormalization default.


def _model():
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
    model = localgrad.GreedyModel(network, boundaries=[1], heads=head)
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
    plain = _model()
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
