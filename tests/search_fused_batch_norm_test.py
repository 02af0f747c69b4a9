"""Tests of the fused BatchNormalization kernel swapped in for the search.

Each fused call's outputs, new moving statistics, and first and second
derivatives are compared with Keras' own BatchNormalization in float64 (its
second derivatives made exact by `exact_batch_moments`): the fused float32
values must be as close to them as Keras' own float32 values are (within a
factor of 3, plus 1e-5 of the quantity's largest magnitude: float32 loses
that much to cancellation in the second derivatives). These comparisons
also fail if a Keras release changes the layer's meaning or attributes.
"""

import threading

import keras
import numpy as np
import pytest
import tensorflow as tf

from localgrad.search.exact_moments import exact_batch_moments
from localgrad.search.fused_batch_norm import fused_batch_normalization

SETTINGS = {
    "images": dict(shape=(6, 3, 3, 4), layer={}),
    "vectors, no centre or scale": dict(
        shape=(6, 4), layer=dict(center=False, scale=False, epsilon=1e-5)
    ),
    "sequences, axis 2": dict(shape=(6, 5, 4), layer=dict(axis=2)),
}


def _layer(shape, options, dtype="float32"):
    layer = keras.layers.BatchNormalization(
        momentum=0.9, dtype=dtype, **options
    )
    layer.build(shape)
    rng = np.random.default_rng(1)
    for variable in layer.weights:  # Not the initial ones and zeros.
        values = rng.uniform(0.5, 1.5, variable.shape).astype("float32")
        variable.assign(values.astype(dtype))
    return layer


def _derivatives(layer, x, direction):
    """Output, new moving statistics, gradient and Hessian-vector product
    of sum(BN(x)^3) with respect to x and the layer's weights."""
    weights = [tf.convert_to_tensor(w) for w in layer.trainable_variables]
    statistics = [tf.convert_to_tensor(w) for w in layer.non_trainable_weights]
    with tf.GradientTape() as outer:
        outer.watch([x] + weights)
        with tf.GradientTape() as inner:
            inner.watch([x] + weights)
            y, new_statistics = layer.stateless_call(
                weights, statistics, x, training=True
            )
            loss = tf.reduce_sum(y**3)
        gradients = inner.gradient(loss, [x] + weights)
        product = tf.reduce_sum(gradients[0] * direction)
    second = outer.gradient(product, [x] + weights)
    return [y] + new_statistics + gradients + second


@pytest.mark.numerics
@pytest.mark.parametrize("setting", SETTINGS.values(), ids=list(SETTINGS))
def test_fused_calls_equal_keras_to_second_order(setting):
    shape = setting["shape"]
    layer = _layer(shape, setting["layer"])
    rng = np.random.default_rng(2)
    x = tf.constant(rng.normal(size=shape), tf.float32)
    direction = tf.constant(rng.normal(size=shape), tf.float32)
    reference = _layer(shape, setting["layer"], "float64")
    with exact_batch_moments():
        exact = _derivatives(
            reference, tf.cast(x, tf.float64), tf.cast(direction, tf.float64)
        )
        keras_values = _derivatives(layer, x, direction)
        with fused_batch_normalization([layer]):
            fused = _derivatives(layer, x, direction)
    # y, two statistics, then first and second derivatives for x and weights.
    derivatives = 2 * (1 + len(layer.trainable_weights))
    assert len(fused) == len(exact) == 3 + derivatives
    for got, keras_value, want in zip(fused, keras_values, exact):
        got, want = np.float64(got), np.asarray(want)
        keras_error = np.max(np.abs(np.float64(keras_value) - want))
        allowed = 3 * keras_error + 1e-5 * np.max(np.abs(want))
        assert np.max(np.abs(got - want)) <= allowed


def _operation_types(layer, x, training):
    @tf.function
    def call(x):
        return layer(x, training=training)

    graph = call.get_concrete_function(x).graph
    return {operation.type for operation in graph.get_operations()}


def test_only_fitting_training_calls_use_the_kernel_and_the_swap_ends():
    layer = _layer((4, 2, 2, 3), {})
    x = tf.zeros((4, 2, 2, 3))
    wide = tf.zeros((4, 2, 2, 3), tf.float64)
    double = keras.layers.BatchNormalization(dtype="float64")
    renorm = keras.layers.BatchNormalization(renorm=True)
    with fused_batch_normalization([layer, double, renorm]):
        assert "FusedBatchNormV3" in _operation_types(layer, x, True)
        assert "FusedBatchNormV3" not in _operation_types(layer, x, False)
        assert "FusedBatchNormV3" not in _operation_types(double, wide, True)
        assert "FusedBatchNormV3" not in _operation_types(renorm, x, True)
    assert "FusedBatchNormV3" not in _operation_types(layer, x, True)


def test_only_the_given_layers_change_not_the_class_nor_other_threads():
    keras_call = keras.layers.BatchNormalization.call
    searched = _layer((4, 2, 2, 3), {})
    another = _layer((4, 2, 2, 3), {})
    x = tf.zeros((4, 2, 2, 3))
    seen_by_another_thread = []
    with fused_batch_normalization([searched]):
        assert keras.layers.BatchNormalization.call is keras_call
        assert "FusedBatchNormV3" in _operation_types(searched, x, True)
        thread = threading.Thread(
            target=lambda: seen_by_another_thread.append(
                _operation_types(another, x, True)
            )
        )
        thread.start()
        thread.join()
    assert "FusedBatchNormV3" not in seen_by_another_thread[0]
    assert keras.layers.BatchNormalization.call is keras_call
    assert "call" not in vars(searched)
