"""Tests that fail loudly when Keras moves what localgrad.keras_internals uses.

Each checks the behaviour localgrad needs through Keras' own public
surface, not only that the private name exists.
"""

import keras
import numpy as np
import tensorflow as tf

from localgrad import keras_internals


class _ModelWithOwnMetrics(keras.Model):
    """A model whose metrics Keras' compile containers do not hold."""

    def __init__(self, metrics):
        super().__init__()
        self.own = list(metrics)
        self.dense = keras.layers.Dense(1)

    def call(self, x):
        return self.dense(x)

    @property
    def metrics(self):
        return [keras_internals.metrics_container(self.own, name="own")]


def test_a_metrics_container_tells_monitoring_callbacks_the_direction():
    accuracy = keras.metrics.SparseCategoricalAccuracy(name="block_0_accuracy")
    model = _ModelWithOwnMetrics([accuracy])
    stopping = keras.callbacks.EarlyStopping(
        monitor="val_block_0_accuracy", mode="auto"
    )
    stopping.set_model(model)
    stopping._set_monitor_op()
    assert stopping.monitor_op is keras.ops.greater  # Maximised.


def test_adopt_value_replaces_the_wrapped_variable():
    variable = keras.Variable(np.zeros(3, "float32"), name="moved")
    value = tf.Variable(np.arange(3, dtype="float32"), name="moved")
    keras_internals.adopt_value(variable, value)
    assert variable.value is value
    variable.assign_add(np.ones(3, "float32"))
    np.testing.assert_array_equal(value.numpy(), [1.0, 2.0, 3.0])


def test_tensorflow_moments_are_swapped_for_the_block_only():
    calls = []

    def moments(x, axes, keepdims):
        calls.append(axes)
        return tf.reduce_mean(x, axes), tf.math.reduce_variance(x, axes)

    x = tf.constant([[1.0, 2.0], [3.0, 6.0]])
    with keras_internals.tensorflow_moments(moments):
        mean, _ = keras.ops.moments(x, axes=[0])
        keras.layers.BatchNormalization()(x, training=True)
    assert len(calls) == 2  # keras.ops.moments and BatchNormalization.
    np.testing.assert_allclose(mean.numpy(), [2.0, 4.0])
    keras.ops.moments(x, axes=[0])
    assert len(calls) == 2
